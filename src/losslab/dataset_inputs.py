"""A job's train / validation / test splits as MLflow dataset inputs (``mlflow.log_inputs``): a name, a content
digest, the source and the number of rows, never a copy of the data. The runs table's *Dataset* column shows
them, so two runs on different data (another file, ``task.split_seed``, ``task.max_train_samples``) are told
apart at a glance.

The digest hashes the rows the job actually uses (after selection and label conversion), in Arrow form: the same
data gives the same digest on any machine, whatever its cache paths or file dates.
"""

from __future__ import annotations

import hashlib

SPLITS = ("train", "validation", "test")
CONTEXTS = {"train": "training", "validation": "validation", "test": "testing"}


def digest(ds, batch_rows: int = 10_000) -> str:
    """A content digest of a ``datasets.Dataset``: sha256 over its column names and types and its rows (Arrow IPC
    of each batch), 16 hex digits."""
    import pyarrow as pa

    h = hashlib.sha256(str(ds.features).encode())
    for batch in ds.with_format("arrow").iter(batch_size=batch_rows):
        sink = pa.BufferOutputStream()
        table = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        h.update(sink.getvalue().to_pybytes())
    return h.hexdigest()[:16]


def source(task, split: str):
    """Where the split came from, as an MLflow dataset source: its file (a local path or a URL), the hub data set,
    or the loader that built it (a shipped corpus, a package)."""
    import warnings

    from losslab import store
    from losslab.secrets import mask_text  # a source never carries credentials: s3://***@bucket/x.csv

    data = task.data
    file = data.get(split)
    if isinstance(file, str) and file and not data.get("path"):
        with warnings.catch_warnings():  # "can be interpreted in multiple ways": both are the local file
            warnings.simplefilter("ignore")
            return store.file_source(mask_text(file))
    if data.get("path"):
        return store.hub_source(path=mask_text(data.path), config_name=data.get("name"), split=split,
                                data_files=mask_text(file) if isinstance(file, str) and file else None)
    loader = data.get("loader")
    target = loader.get("_target_") if loader is not None else None
    return store.code_source({"loader": str(target or "unknown"), "split": split})


def datasets(cfg, splits) -> list:
    """The job's splits as ``mlflow.data`` datasets named ``<task>/<split>`` (e.g. ``regression/train``)."""
    from losslab import store

    label = cfg.task.get("label_column")
    return [store.split_dataset(splits[split], source=source(cfg.task, split), name=f"{cfg.task.name}/{split}",
                                digest=digest(splits[split]),
                                targets=label if label in splits[split].column_names else None)
            for split in SPLITS if split in splits]


def log(cfg, splits) -> list:
    """Log the splits as inputs of the active MLflow run (no-op without one: another rank, no tracking)."""
    from losslab import store

    if store.active.run() is None:
        return []
    found = datasets(cfg, splits)
    split = [d.name.rsplit("/", 1)[1] for d in found]
    store.active.log_inputs(found, [CONTEXTS[s] for s in split], [{"split": s} for s in split])
    return found
