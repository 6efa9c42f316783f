"""Task label transforms: a task's labels checked and turned into what a loss takes, per problem kind."""

from __future__ import annotations

import math

import torch

from losslab import kinds
from losslab.errors import DataError
from losslab.kinds import MULTI_LABEL, REGRESSION, SEQ2SEQ, SINGLE_LABEL, TOKEN
from losslab.tasks.splits import SPLITS


def target_type(task):
    """The conversion of one item's label to what the task's losses take: its kind's ``target`` (float, int, a
    row of floats), floats for distributions; None where the labels are token ids made at tokenization (token
    tasks, language models, seq2seq). An unknown kind is refused."""
    kind = kinds.get(task.kind)  # refuses a kind it does not know
    return kinds.floats if task.get("targets") == "distribution" else kind.target


def _convert(ds, column: str, fn, desc: str):
    """``column`` replaced by ``fn(value)`` with the new values' type: ``map`` into an existing column would keep
    the old type (class names stay strings, integer targets stay integers)."""
    ds = ds.map(lambda r: {"__converted": fn(r[column])}, remove_columns=[column], desc=desc)
    return ds.rename_column("__converted", column)


def check_and_convert(ds, task, files):
    """Check every label and bring it to its kind's type; map string class names to ids.

    Returns the splits and the class names (from ``task.labels``, or the sorted names found in train).
    """
    column, names = task.label_column, task.get("labels")
    names = list(names) if names else None
    convert = target_type(task)  # refuses a kind it does not know

    def fail(split, row, value, why):
        where = files.get(split, task.data.get("path"))
        raise DataError(f"task data: {split} row {row} ({where}), column {column!r}: label {value!r} {why}")

    kind = kinds.get(task.kind).name
    if kind == SINGLE_LABEL and task.get("targets") == "distribution":
        kind = "distribution"
    check = _CHECKS.get(kind)
    if check is None:  # causal_lm: a language model's labels are its own tokens
        return ds, names
    return check(ds, task, column, names, convert, fail)


def _distributions(ds, task, column, names, convert, fail):
    k = task.get("num_labels")
    for split in SPLITS:
        for row, v in enumerate(ds[split][column]):
            if not isinstance(v, (list, tuple)) or len(v) != k or \
                    not all(isinstance(x, (int, float)) and math.isfinite(x) for x in v) or \
                    min(v) < 0 or abs(sum(v) - 1) > 1e-4:
                fail(split, row, v, f"is not a distribution over {k} classes (task.targets=distribution)")
    return ds, names


def _class_ids(ds, task, column, names, convert, fail):
    values = {s: ds[s][column] for s in SPLITS}
    if any(isinstance(v, str) for v in values["train"]):
        names = names or sorted({v for v in values["train"] if v is not None})
        index = {n: i for i, n in enumerate(names)}
        for split in SPLITS:
            for row, v in enumerate(values[split]):
                if v not in index:
                    fail(split, row, v, f"is not one of the classes {names} (task.labels, or the train split's)")
        return _convert(ds, column, lambda v: index[v], "class ids"), names
    k = task.get("num_labels") or (len(names) if names else None)
    found = k is None  # the classes are the train split's ids (train is checked first)
    for split in SPLITS:
        for row, v in enumerate(values[split]):
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                fail(split, row, v, f"is not a class id in 0..{(k or 1) - 1} (task.num_labels={k})")
            if k is not None and v >= k:
                if found:  # an id only validation or test has would add an output no row trains
                    fail(split, row, v, f"is not a class id of the train split (0..{k - 1}); fix the "
                                        "label, or set task.num_labels to the number of classes")
                fail(split, row, v, f"is not a class id in 0..{k - 1} (task.num_labels={k})")
        if k is None:
            k = max(values["train"]) + 1
    if names is None and found:
        names = [str(i) for i in range(k)]
    return ds, names


def _numbers(ds, task, column, names, convert, fail):
    for split in SPLITS:
        for row, v in enumerate(ds[split][column]):
            if v is None:
                fail(split, row, v, "is empty or marked missing (NA, n/a, ... in a CSV file)")
            try:
                if v is None or isinstance(v, bool):
                    raise ValueError
                number = float(v)
            except (TypeError, ValueError):
                fail(split, row, v, "is not a number")
            if not math.isfinite(number):  # nan, inf, -inf: a loss and every metric of it would be too
                fail(split, row, v, "is not a finite number")
    return ds, names


def _tags(ds, task, column, names, convert, fail):
    values = {s: ds[s][column] for s in SPLITS}
    if any(isinstance(v, str) for row in values["train"] for v in row):
        names = names or sorted({v for row in values["train"] for v in row})
        index = {n: i for i, n in enumerate(names)}
        for split in SPLITS:
            for row, tags in enumerate(values[split]):
                unknown = [t for t in tags if t not in index]
                if unknown:
                    fail(split, row, unknown[0], f"is not one of the tags {names} (task.labels, or train's)")
        ds = _convert(ds, column, lambda tags: [index[t] for t in tags], "tag ids")
    return ds, names


def _label_rows(ds, task, column, names, convert, fail):
    k = task.get("num_labels") or (len(names) if names else None)
    for split in SPLITS:
        for row, v in enumerate(ds[split][column]):
            if not isinstance(v, (list, tuple)) or (k is not None and len(v) != k) or \
                    any(x not in (0, 1, -100) for x in v):
                fail(split, row, v, f"is not a list of {k} values in {{0, 1}} (task.num_labels={k})")
    return _convert(ds, column, convert, "float targets"), names  # BCE needs floats


def _target_texts(ds, task, column, names, convert, fail):
    for split in SPLITS:
        for row, v in enumerate(ds[split][column]):
            if not isinstance(v, str) or not v.strip():
                fail(split, row, v, "is not a non-empty target text")
    return ds, names


# each kind's labels checked (and converted), by kind; soft targets (task.targets=distribution) apart
_CHECKS = {"distribution": _distributions, SINGLE_LABEL: _class_ids, REGRESSION: _numbers, TOKEN: _tags,
           MULTI_LABEL: _label_rows, SEQ2SEQ: _target_texts}


# objectives of a regression suite that are undefined when every label is the same (a correlation divides by
# the labels' spread, R² by their variance): the run would log NaN, or the Trainer's initial best, -1.797e308
UNDEFINED_ON_CONSTANT_LABELS = {"pearson", "spearman", "r2"}


def check_objective_defined(ds, task, files) -> None:
    """Refuse validation labels on which ``task.objective`` is undefined (all equal, for a correlation or R²),
    on the rows the job evaluates (after ``task.max_eval_samples``), before anything trains."""
    if task.kind != REGRESSION or task.get("objective") not in UNDEFINED_ON_CONSTANT_LABELS:
        return
    values = {float(v) for v in ds["validation"][task.label_column]}
    if len(values) == 1:
        where = files.get("validation", task.data.get("path"))
        raise DataError(
            f"task data: the validation split ({where}), column {task.label_column!r}: all "
            f"{len(ds['validation'])} rows have the label {values.pop()!r}, and task.objective={task.objective} "
            "is undefined on constant labels; use validation rows with varied labels (more of them: "
            "task.max_eval_samples), or set task.objective=mse")


class LevelsFromDistribution(torch.nn.Module):
    """Feeds a loss that takes class ids from a task whose labels are distributions over C ordered levels.

    The class id is the level of the distribution's mean (rounded half up); the Trainer counted C label
    elements per item, so ``num_items_in_batch / C`` items are handed on. ``task=rating_dist``: the rounded
    mean rating for ``cross_entropy`` and ``coral``, the raters' distribution itself for ``soft_cross_entropy``.
    """

    def __init__(self, loss, num_levels: int):
        super().__init__()
        self.loss, self.num_levels = loss, num_levels
        for name in ("predictions", "predict_levels", "attach"):
            if hasattr(loss, name):
                setattr(self, name, getattr(loss, name))

    @staticmethod
    def levels(labels: torch.Tensor) -> torch.Tensor:
        t = labels.float()
        mean = (t * torch.arange(t.size(-1), device=t.device)).sum(-1)
        return torch.floor(mean + 0.5).long()

    def forward(self, outputs, labels, num_items_in_batch=None):
        n = None if num_items_in_batch is None else num_items_in_batch / self.num_levels
        return self.loss(outputs, self.levels(labels), num_items_in_batch=n)
