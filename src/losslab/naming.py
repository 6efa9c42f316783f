"""The names of a sweep's runs and of the report's rows: one rule for the job (its run's name at start,
:func:`losslab.ui.job_name`), the sweep (its children renamed at the end, :func:`losslab.ui.name_children`) and
the report (its rows, :mod:`losslab.report.rows`). A row is the loss plus every swept parameter other than the
seed keys (``huber · delta=0.5``); a run's name adds each seed key that varies (``huber · delta=0.5 · seed=1``).

Plain Python on MLflow ``Run`` objects (``run.data.params``, ``run.data.tags``, ``run.info``): it imports
nothing but the tag names (:mod:`losslab.store`), so a job names its run without importing the report package.
"""

from __future__ import annotations

from losslab.store import choice_tag

# What makes two runs of one row different draws rather than different settings. Runs are paired (between
# rows) and counted (within a row) by all of them together: sweeping trainer.seed with run.seed fixed gives
# as many seeds as values, and a split × seed study pairs split k, seed s of one row with the same of another.
SEED_KEYS = ("run.seed", "trainer.seed", "trainer.data_seed", "task.split_seed")
_ROW_PREFIXES = ("loss.", "task.", "model.", "trainer.", "hardware.", "run.")
_NOT_ROW_KEYS = ("loss.fitted.", "task.label.", "trainer.output_dir", "trainer.logging_dir", "trainer.disable_tqdm")


def _loss(run) -> str:
    return run.data.tags.get(choice_tag("loss")) or run.info.run_name


def short(value: str | None) -> str:
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
    return f"{name}={short(run.data.params.get(key))}"


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
