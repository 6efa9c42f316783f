"""What the MLflow UI shows of a sweep at a glance (issue 16).

- **Run names that say what differs.** A job names its run at start from the sweep's swept keys (known to the
  launching process, passed on in ``LOSSLAB_SWEPT`` and the parent's ``losslab.swept`` tag): the loss, then
  every other swept value, the seed keys last (``huber · delta=0.5 · seed=1``). At the end of the sweep the
  children are renamed by :func:`losslab.naming.run_labels`, the rule of the report's rows, so names and
  rows agree. A single run is named after its loss.
- **The answer on the parent's page.** The parent run's description (``mlflow.note.content``, Markdown on its
  overview) is the report's one-line answer and table, with its plots (artifacts under ``report/``) below;
  each job's run gets a one-line description (task, loss, the objective on test and on validation).
- **The judging metrics where the eye goes.** ``objective/test_<objective>`` and
  ``objective/validation_<objective>`` (e.g. ``objective/test_pearson``): one chart section, ``objective``, in
  the chart view; the names of the runs table's columns say the task's objective.
- The data splits as dataset inputs: :mod:`losslab.dataset_inputs`.

Nothing here runs on a rank other than 0 or without an active run (every function is then a no-op).
"""

from __future__ import annotations

import logging
import math
import os

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from losslab import dataset_inputs, secrets, store, tracking
from losslab.metrics import greater_is_better
from losslab.naming import SEED_KEYS, run_labels, short
from losslab.store import NOTE_LIMIT, NOTE_TAG, PARENT_TAG, RUN_NAME_TAG, SWEPT_TAG, Store

log = logging.getLogger("losslab")

SWEPT_ENV = "LOSSLAB_SWEPT"
SECTION = "objective/"  # the judging metrics' prefix: their own section in the chart view
_SEP = " · "


def judging_metrics(objective: str) -> tuple[str, str]:
    """(test, validation) metric names of the task's objective: ``objective/test_pearson``, ..."""
    return f"{SECTION}test_{objective}", f"{SECTION}validation_{objective}"


# ---------------------------------------------------------------------------------------------------- names

def swept_keys(config) -> list[str]:
    """The keys a multirun sweeps (those given several values or a range): from its command-line overrides and
    its sweeper's params (``hydra.sweeper.params``, where presets and ``hparams_search`` put them); Hydra's own
    keys (``hydra/launcher``, ``hydra.*``) left out."""
    overrides = list(config.hydra.overrides.task)
    params = config.hydra.sweeper.get("params")
    if params is not None:
        overrides += [f"{k}={v}" for k, v in OmegaConf.to_container(params, resolve=False).items()]
    keys = []
    for o in OverridesParser.create().parse_overrides(overrides):
        key = o.key_or_group
        if o.is_sweep_override() and not key.startswith("hydra") and key not in keys:
            keys.append(key)
    return keys


def _param(key: str) -> str:
    """The MLflow param a swept key is logged as (``seed`` -> ``run.seed``, :func:`losslab.tracking.flatten`)."""
    return key if "." in key else f"run.{key}"


def job_name(cfg, swept: list[str] | None = None) -> str:
    """This job's run name: its loss, then each other swept value (sorted by param, the seed keys last), by the
    rule of :func:`losslab.naming.run_labels`. Without swept keys (a single run): the loss alone."""
    choices = dict(HydraConfig.get().runtime.choices) if HydraConfig.initialized() else {}
    loss = choices.get("loss") or str(cfg.tracking.get("run_name") or "run")
    parts = [loss]
    keys = sorted((k for k in swept or [] if k != "loss"), key=lambda k: (_param(k) in SEED_KEYS, _param(k)))
    for key in keys:
        if key in choices:  # another config group swept: its option
            parts.append(f"{key}={choices[key]}")
            continue
        value = OmegaConf.select(cfg, key, default=None)
        shown = secrets.MASK if secrets.is_secret(key) else short(None if value is None else str(value))
        shown = secrets.mask_text(shown)  # a URL's password: s3://***@bucket/x.csv
        parts.append(f"{key.removeprefix('loss.')}={shown}")
    return _SEP.join(parts)


def _swept_now() -> list[str] | None:
    """The swept keys of the sweep this job belongs to: from the environment (set by the launching process), else
    the parent run's ``losslab.swept`` tag (a job on another machine); None outside a sweep."""
    run = store.active.run()
    parent = run.data.tags.get(PARENT_TAG) if run else None
    if not parent:
        return None
    if SWEPT_ENV in os.environ:
        return [k for k in os.environ[SWEPT_ENV].split(",") if k]
    try:
        tag = store.active.store().run(parent).data.tags.get(SWEPT_TAG)
    except Exception:  # the parent is unreadable: the job keeps the loss as its name until the sweep ends
        return None
    return None if tag is None else [k for k in tag.split(",") if k]


def start_sweep(config, parent_id: str) -> None:
    """In the launching process, before any job: the swept keys for the jobs (environment) and for jobs on other
    machines (the parent's tag)."""
    keys = swept_keys(config)
    os.environ[SWEPT_ENV] = ",".join(keys)
    Store(config.tracking.uri).set_tag(parent_id, SWEPT_TAG, ",".join(keys))


def name_children(uri: str, parent_id: str, finished: list) -> dict[str, str]:
    """At the end of a sweep: rename its own finished children by :func:`losslab.naming.run_labels` (runs
    of other sweeps that it reused keep their names), and log their datasets on the parent. Returns run id -> the
    new name."""
    os.environ.pop(SWEPT_ENV, None)
    if not finished:
        return {}
    client = Store(uri)
    labels = run_labels(finished)
    renamed = {}
    for run in finished:
        name = labels[run.info.run_id]
        if run.data.tags.get(PARENT_TAG) == parent_id and run.info.run_name != name:
            client.set_tag(run.info.run_id, RUN_NAME_TAG, name)
            renamed[run.info.run_id] = name
    log_parent_datasets(uri, parent_id, finished)
    return renamed


# ---------------------------------------------------------------------------------------------------- a job

def start_job(cfg, splits) -> None:
    """At the start of a job's run (rank 0, inside ``tracking.job_run``): name it by what its sweep varies, and
    log its data splits as dataset inputs."""
    if store.active.run() is None:
        return
    swept = _swept_now()
    if swept:
        store.active.set_tag(RUN_NAME_TAG, job_name(cfg, swept))
    try:
        dataset_inputs.log(cfg, splits)
    except Exception:  # the data's record is a convenience: never the reason a job fails
        log.warning("the data splits could not be logged as MLflow dataset inputs", exc_info=True)


def _fmt(x) -> str:
    return "–" if x is None or not math.isfinite(float(x)) else f"{float(x):.4f}"


def job_note(cfg, loss: str, test: float | None, validation: float | None) -> str:
    o = str(cfg.task.objective)
    arrow = "↑" if greater_is_better(o) else "↓"
    return (f"task `{cfg.task.name}` · loss `{loss}` · test {o} {arrow} **{_fmt(test)}** "
            f"(validation {_fmt(validation)})")


def end_job(cfg, test_metrics: dict, validation: float, step: int, logged=None) -> None:
    """At the end of a job's run: the judging metrics (``objective/test_<o>``, ``objective/validation_<o>``) and
    the run's one-line description. ``logged``: the points a resumed run already holds
    (:class:`losslab.resume.LoggedSteps`), not logged again."""
    run = store.active.run()
    if run is None:
        return

    test = test_metrics.get(f"test_{cfg.task.objective}")
    names = judging_metrics(str(cfg.task.objective))
    tracking.log_metrics({k: float(v) for k, v in zip(names, (test, validation)) if v is not None}, step, logged)
    loss = store.active.store().run(run.info.run_id).data.tags.get(store.choice_tag("loss")) or run.info.run_name
    store.active.set_tag(NOTE_TAG, job_note(cfg, loss, test, validation))


# ---------------------------------------------------------------------------------------------------- the parent

def log_parent_datasets(uri: str, parent_id: str, runs: list) -> None:
    """The datasets of a sweep's runs, each once, as inputs of its parent run (its *Dataset* column)."""
    seen, inputs = set(), []
    for run in runs:
        for given in (run.inputs.dataset_inputs if run.inputs else []):
            d = given.dataset
            if (d.name, d.digest) not in seen:
                seen.add((d.name, d.digest))
                inputs.append(given)
    if inputs:
        Store(uri).log_dataset_inputs(parent_id, inputs)


def describe_sweep(uri: str, parent_id: str, note: str) -> None:
    """The report on the parent run's overview page (its description): ``note`` from
    :func:`losslab.report.note.sweep_note`, cut to MLflow's longest tag value."""
    Store(uri).set_tag(parent_id, NOTE_TAG, note[:NOTE_LIMIT])
