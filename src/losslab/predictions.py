"""Per-item predictions of a finished run, kept as MLflow artifacts so any analysis can be redone from the store.

Every finished run logs ``predictions/validation.parquet`` and ``predictions/test.parquet``, written once at
the end from the final (best) model. Columns:

- ``item``: the row's index within its split as loaded (after ``task.max_*_samples``), so rows evaluated in
  length order map back to the data;
- ``prediction``: what the task's metric suite judges for that row (float32): a regression value, a row of
  class or label scores, a row of predicted tag ids or next-token NLLs (padding positions removed); for a
  generation task the generated text; for the ratings suite the K levels' scores, followed by the predicted
  level when the loss decodes its own (coral, corn; ``losslab.metrics.levels``);
- ``label``: the row's reference in the same form (a number, a class id, a distribution, a row of 0/1, a row
  of tag ids with -100 where a token is not scored, a text).

:func:`read` gives them back as arrays; :func:`download` fetches a run's from its MLflow store, in item order;
:func:`score` runs the task's metric suite on any subset of items
(what a bootstrap over test items calls per resample).
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

from losslab import metrics
from losslab.store import Store

# pyarrow is imported inside functions: run.py imports this module before preflight has checked the config

ARTIFACT_DIR = "predictions"
PAD = -100  # the Trainer pads rows of different lengths with -100 when it concatenates evaluation batches


def _rows(array) -> list:
    """Rows of a (possibly -100-padded) array as Python lists, trailing padding removed."""
    array = np.asarray(array)
    if array.ndim == 1:
        return array.tolist()
    out = []
    for row in array.reshape(array.shape[0], -1) if array.ndim > 2 else array:
        row = row.tolist()
        while row and row[-1] == PAD:
            row.pop()
        out.append(row)
    return out


def table(predictions, labels, items, decode=None):
    """A ``pyarrow.Table`` of one split's predictions. ``decode``: token ids -> texts (generation tasks)."""
    import pyarrow as pa

    predictions = predictions[0] if isinstance(predictions, tuple) else predictions
    if decode is not None:
        preds, labs = decode(predictions), decode(labels)
        return pa.table({"item": pa.array(items, pa.int64()), "prediction": preds, "label": labs})
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.ndim == 2 and predictions.shape[1] == 1 and labels.ndim == 1:  # one regression output
        predictions = predictions[:, 0]
    preds, labs = _rows(predictions), _rows(labels)
    if predictions.ndim == 2 and labels.ndim == 2 and predictions.shape[1] == labels.shape[1] and \
            labels.dtype.kind in "iu":  # per-position rows: keep the prediction's row as long as its label's
        preds = [p[:len(lab)] for p, lab in zip(preds, labs)]
    ptype = pa.float32() if predictions.ndim == 1 else pa.list_(pa.float32())
    ltype = (pa.float32() if labels.dtype.kind == "f" else pa.int64())
    ltype = ltype if labels.ndim == 1 else pa.list_(ltype)
    return pa.table({"item": pa.array(items, pa.int64()), "prediction": pa.array(preds, ptype),
                     "label": pa.array(labs, ltype)})


def write(path, predictions, labels, items, decode=None) -> None:
    import pyarrow.parquet as pq

    pq.write_table(table(predictions, labels, items, decode), str(path), compression="zstd")


def _stack(column: list):
    """A list of rows as one array: rows of different lengths padded with -100, as the Trainer does."""
    if not column or not isinstance(column[0], (list, tuple, np.ndarray)):
        return np.asarray(column)
    width = max(len(r) for r in column)
    if all(len(r) == width for r in column):
        return np.asarray([list(r) for r in column])
    kind = float if any(isinstance(v, float) for r in column for v in r) else int
    out = np.full((len(column), width), PAD, dtype=kind)
    for i, r in enumerate(column):
        out[i, :len(r)] = r
    return out


def read(path):
    """``(items, predictions, labels)`` of a predictions file; ragged rows padded with -100."""
    import pyarrow.parquet as pq

    t = pq.read_table(str(path)).to_pydict()
    items = np.asarray(t["item"], dtype=np.int64)
    if t["prediction"] and isinstance(t["prediction"][0], str):  # generated texts
        return items, np.asarray(t["prediction"], dtype=object), np.asarray(t["label"], dtype=object)
    return items, _stack(t["prediction"]), _stack(t["label"])


@contextlib.contextmanager
def _no_progress_bar():
    """No MLflow progress bar per downloaded artifact (one per run would fill a sweep's summary)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def download(uri: str, run_id: str, split: str, folder: str):
    """``(items, predictions, labels)`` of a run's ``split`` (``validation`` or ``test``) from the MLflow store
    at ``uri``, downloaded into ``folder`` and sorted by item, so runs of one split line up row for row; ``None``
    for a run that logged no predictions (made before they were logged)."""
    try:
        with _no_progress_bar():
            path = Store(uri).download_artifact(run_id, f"{ARTIFACT_DIR}/{split}.parquet", folder)
    except Exception:  # an older run: no predictions artifact
        return None
    items, preds, labels = read(path)
    order = np.argsort(items, kind="mergesort")
    return items[order], preds[order], labels[order]


def score(suite: str, predictions, labels, label_names: list[str] | None = None) -> dict[str, float]:
    """The metric suite ``suite`` on these rows (any subset of a split's items), as the Trainer computes it at
    evaluation: the suite's ``score`` with every row counted once."""
    return {k: float(v[0]) for k, v in metrics.get(suite).score(predictions, labels, label_names=label_names).items()}
