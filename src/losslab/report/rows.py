"""A sweep's finished runs as the report's rows: one row per loss and per setting of any other swept parameter;
within a row, one value per seed key (every seed a run was given, and the split it was trained on)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from losslab.naming import SEED_KEYS, row_label, row_labels, run_labels  # noqa: F401  (the rows' rule)
from losslab.store import JOB_NUM_TAG

_NOT_SUITE = ("loss", "runtime", "samples_per_second", "steps_per_second", "epoch")


def seed_key(run) -> tuple:
    """The run's draw: the values of :data:`SEED_KEYS` it logged (its run id when it logged none)."""
    values = tuple(run.data.params.get(k) for k in SEED_KEYS)
    return values if any(v is not None for v in values) else (run.info.run_id,)


def split_key(run) -> str:
    """The split a run was trained and tested on (``task.split_seed``; absent: the default split)."""
    return str(run.data.params.get("task.split_seed", "default"))


@dataclass
class Row:
    label: str
    runs: list = field(default_factory=list)

    def values(self, metric: str, prefix: str = "test_") -> dict[tuple, float]:
        """seed key -> the value of ``metric`` (logged as ``<prefix><metric>``), for the runs that logged it."""
        key = f"{prefix}{metric}"
        return {seed_key(r): r.data.metrics[key] for r in self.runs if key in r.data.metrics}

    def seeds(self) -> int:
        return len({seed_key(r) for r in self.runs})

    def mean(self, metric: str, prefix: str = "test_") -> float:
        values = list(self.values(metric, prefix).values())
        return statistics.fmean(values) if values else float("nan")


def suite_metrics(runs: list) -> list[str]:
    """The test metrics of the task's suite that every finished job logged (test_loss and timings left out)."""
    keys = None
    for run in runs:
        names = {k[len("test_"):] for k in run.data.metrics if k.startswith("test_")}
        keys = names if keys is None else keys & names
    return sorted(k for k in keys or () if k not in _NOT_SUITE)


def order(run) -> tuple[int, int]:
    """Rows come in the sweep's order (job number), whatever order parallel jobs started in."""
    return int(run.data.tags.get(JOB_NUM_TAG, 1 << 30)), run.info.start_time


def group(runs: list) -> list[Row]:
    labels = row_labels(runs)
    rows: dict[str, Row] = {}
    for run in sorted(runs, key=order):
        rows.setdefault(labels[run.info.run_id], Row(labels[run.info.run_id])).runs.append(run)
    return list(rows.values())
