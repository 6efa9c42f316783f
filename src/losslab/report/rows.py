"""A sweep's finished runs as the report's rows: one row per loss and per setting of any other swept parameter;
within a row, one value per seed key (every seed a run was given, and the split it was trained on)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

# What makes two runs of one row different draws rather than different settings. Runs are paired (between
# rows) and counted (within a row) by all of them together: sweeping trainer.seed with run.seed fixed gives
# as many seeds as values, and a split × seed study pairs split k, seed s of one row with the same of another.
SEED_KEYS = ("run.seed", "trainer.seed", "trainer.data_seed", "task.split_seed")
_ROW_PREFIXES = ("loss.", "task.", "model.", "trainer.", "hardware.", "run.")
_NOT_ROW_KEYS = ("loss.fitted.", "task.label.", "trainer.output_dir", "trainer.logging_dir", "trainer.disable_tqdm")
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


def _loss(run) -> str:
    return run.data.tags.get("choice.loss") or run.info.run_name


def _short(value: str | None) -> str:
    """A param as a row label shows it: floats to 4 significant digits (Optuna's 1.4553179565665342)."""
    try:
        return f"{float(value):.4g}" if value is not None and "." in value else str(value)
    except ValueError:
        return str(value)


def _varying(runs: list, keys) -> list[str]:
    by_loss: dict[str, list] = {}
    for r in runs:
        by_loss.setdefault(_loss(r), []).append(r)

    def varies(key: str) -> bool:
        groups = by_loss.values() if key.startswith("loss.") else [runs]
        return any(len({r.data.params.get(key) for r in group}) > 1 for group in groups)

    return sorted(k for k in keys if varies(k))


def _part(run, key: str) -> str | None:
    if key.startswith("loss.") and key not in run.data.params:
        return None
    name = key.removeprefix("loss.").removeprefix("run.")
    return f"{name}={_short(run.data.params.get(key))}"


def row_labels(runs: list) -> dict[str, str]:
    """run id -> row label: the loss, plus every swept parameter other than the seed keys. A loss's own knob
    (``loss.delta``) counts when it varies between runs of that same loss."""
    keys = {k for r in runs for k in r.data.params if k.startswith(_ROW_PREFIXES)
            and not k.startswith(_NOT_ROW_KEYS) and k not in SEED_KEYS}
    varying = _varying(runs, keys)
    return {r.info.run_id: " · ".join([_loss(r)] + [p for k in varying if (p := _part(r, k))]) for r in runs}


def run_labels(runs: list) -> dict[str, str]:
    """run id -> the run's own name in a sweep: its row label plus each seed key that varies
    (``huber · delta=0.5 · seed=1``), by the same rule as :func:`row_labels`."""
    rows = row_labels(runs)
    varying = _varying(runs, {k for r in runs for k in r.data.params if k in SEED_KEYS})
    if "run.seed" in varying:  # trainer.seed / data_seed follow ${seed} unless set apart
        varying = [k for k in varying if k == "run.seed" or any(
            r.data.params.get(k) != r.data.params.get("run.seed") for r in runs)]
    return {r.info.run_id: " · ".join([rows[r.info.run_id]] + [p for k in varying if (p := _part(r, k))])
            for r in runs}


def row_label(run, runs: list) -> str:
    """The row ``run`` belongs to among ``runs`` (a sweep's finished runs)."""
    return row_labels(runs)[run.info.run_id]


def order(run) -> tuple[int, int]:
    """Rows come in the sweep's order (job number), whatever order parallel jobs started in."""
    return int(run.data.tags.get("losslab.job_num", 1 << 30)), run.info.start_time


def group(runs: list) -> list[Row]:
    labels = row_labels(runs)
    rows: dict[str, Row] = {}
    for run in sorted(runs, key=order):
        rows.setdefault(labels[run.info.run_id], Row(labels[run.info.run_id])).runs.append(run)
    return list(rows.values())
