"""MLflow: the store, one run per job (a child of its sweep's parent run), params, tags and artifacts.

Metric histories (train loss per logging step, eval metrics per evaluation, final test metrics) come from
the Trainer's own ``MLflowCallback`` (``report_to: [mlflow]``), which reuses the run started here. This
module knows nothing about any particular loss.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

CONFIG_HASH_TAG = "losslab.config_hash"
SWEEP_HASH_TAG = "losslab.sweep_hash"
CHECKPOINTS_TAG = "losslab.checkpoint_dir"
# where a job writes, not what it computes: left out of the identity of a job (its config hash)
_PLACE_KEYS = {"paths": None, "tracking": None, "trainer": ("output_dir", "logging_dir", "disable_tqdm")}
CONFIG_GROUPS = ("task", "model", "loss", "hardware", "trainer", "tracking", "experiment")


def ui_command(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {uri}"


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` store, else None."""
    return Path(uri[len("sqlite:///"):]) if str(uri).startswith("sqlite:///") else None


_ready: set[str] = set()  # stores this process has seen created


def ready_store(uri: str, wait: float = 60.0) -> None:
    """Create a sqlite store's schema once, whoever comes first: under a file lock beside the store
    (``<store>.lock``), so parallel jobs on a fresh store never migrate its schema at the same time."""
    path = sqlite_path(uri)
    if path is None or uri in _ready:
        return
    from mlflow.tracking import MlflowClient

    from losslab import locks

    path.parent.mkdir(parents=True, exist_ok=True)
    with locks.waiting(path.with_name(path.name + ".lock"), wait, f"the MLflow store {path}"):
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)  # creates or migrates the schema
    _ready.add(uri)


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    ready_store(uri)
    return MlflowClient(tracking_uri=uri)


def ensure_experiment(uri: str, name: str, artifact_location: str | None = None) -> str:
    """Create the store (schema) and the experiment if they do not exist yet; return the experiment id.

    Call it once before parallel jobs start: concurrent writers racing on a fresh sqlite store fail.
    """
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    if artifact_location and "://" not in artifact_location and str(uri).startswith(("http://", "https://")):
        artifact_location = None  # a tracking server: artifacts go through it, not into one node's folder
    location = Path(artifact_location).resolve().as_uri() if artifact_location and "://" not in artifact_location \
        else artifact_location
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by a parallel job
        return client.get_experiment_by_name(name).experiment_id


def flatten(cfg: DictConfig) -> dict[str, str]:
    """The composed config as namespaced params: ``loss.delta``, ``trainer.learning_rate``, ... and top-level
    values as ``run.<key>`` (a bare ``seed`` would collide with the Trainer's own ``seed`` param, which MLflow
    refuses to change when ``trainer.seed`` differs)."""
    flat: dict[str, str] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            flat[prefix if "." in prefix else f"run.{prefix}"] = str(node)[:6000]

    from losslab import secrets

    walk(secrets.mask_tree(OmegaConf.to_container(cfg, resolve=True)), "")  # a password is logged as ***
    return flat


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def config_hash(cfg: DictConfig) -> str:
    """The identity of a job: its composed, resolved config less where it writes (output dirs, the store).
    Two jobs with the same hash compute the same thing, whatever their directories or sweep."""
    conf = OmegaConf.to_container(cfg, resolve=True)
    for key, fields in _PLACE_KEYS.items():
        if fields is None:
            conf.pop(key, None)
        else:
            for f in fields:
                conf.get(key, {}).pop(f, None)
    if not conf.get("task", {}).get("label_noise", 1):  # no noise (the default): a job keeps its pre-knob hash
        conf["task"].pop("label_noise")
    return _digest(conf)


def sweep_hash(config: DictConfig) -> str:
    """The identity of a sweep: its command-line overrides and sweeper parameters, less hydra/ overrides
    (the same sweep on another launcher is the same sweep)."""
    params = config.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    return _digest({"overrides": sorted(config.hydra.overrides.task), "params": params,
                    "experiment": config.tracking.experiment})


@dataclass
class Previous:
    """What an earlier attempt at the same job (same config hash) left: a finished run to reuse, or an
    unfinished run with a checkpoint to resume into."""

    finished: object | None = None       # mlflow Run
    unfinished: object | None = None     # mlflow Run whose checkpoint folder still has a checkpoint
    checkpoint: str | None = None
    logged: dict[str, int] = field(default_factory=dict)  # metric key -> last step it was logged at


def previous_attempt(cfg: DictConfig, digest: str) -> Previous:
    """Look the job up in the store by its config hash (not by directory name).

    A RUNNING attempt whose process is alive (it holds the lock in its checkpoint folder, see
    :mod:`losslab.locks`) is never taken over: :class:`losslab.faults.JobRunning` is raised. The attempt to
    resume is locked here, so two jobs restarted at once cannot both resume it."""
    from losslab import locks
    from losslab.faults import JobRunning

    locks.release_all()  # an earlier job of this process (a sweep on the basic launcher) is over
    tracking = cfg.tracking
    client = _client(tracking.uri)
    exp = client.get_experiment_by_name(tracking.experiment)
    if exp is None:
        return Previous()
    runs = client.search_runs([exp.experiment_id], filter_string=f"tags.`{CONFIG_HASH_TAG}` = '{digest}'",
                              order_by=["attributes.start_time DESC"], max_results=100)

    def running(run, who):
        folder = run.data.tags.get(CHECKPOINTS_TAG)
        return JobRunning(f"this job (same composed config) is already running as MLflow run {run.info.run_id} "
                          f"({who}, writing {folder}); it is not started twice: wait for it to end, or stop it "
                          "and run this command again to resume it")

    for run in runs:  # a live attempt, wherever it is in the list
        folder = run.data.tags.get(CHECKPOINTS_TAG)
        who = locks.holder(locks.job_lock_path(folder)) if folder and run.info.status == "RUNNING" else None
        if who:
            raise running(run, who)
    done = [run for run in runs if run.info.status == "FINISHED"]
    previous = Previous(finished=done[0] if done else None)
    for run in runs:  # newest first: an unfinished attempt after the last finished one, with a checkpoint
        if run.info.status == "FINISHED":
            break
        folder = run.data.tags.get(CHECKPOINTS_TAG)
        checkpoint = last_complete_checkpoint(folder) if folder and Path(folder).is_dir() else None
        if checkpoint:
            if locks.try_lock(locks.job_lock_path(folder), _lock_note()) is None:  # a twin got there first
                raise running(run, locks.holder(locks.job_lock_path(folder)) or "another process")
            previous.unfinished, previous.checkpoint = run, checkpoint
            previous.logged = {key: max(m.step for m in client.get_metric_history(run.info.run_id, key))
                               for key in run.data.metrics}
            break
    return previous


def last_complete_checkpoint(folder: str) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` that the Trainer finished writing (it writes
    ``trainer_state.json`` last); a partial one (a full disk, a kill mid-save) is never resumed from."""
    import re

    found = []
    for child in Path(folder).iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", child.name)
        if m and child.is_dir() and (child / "trainer_state.json").is_file():
            try:
                json.loads((child / "trainer_state.json").read_text())
            except (OSError, ValueError):  # cut short
                continue
            found.append((int(m.group(1)), str(child)))
    return max(found)[1] if found else None


def _lock_note() -> str:
    import socket

    return f"pid {os.getpid()} on {socket.gethostname()}"


# metric key -> last step already in the resumed run's history: those steps are not logged twice
_already_logged: dict[str, int] = {}


def is_new(key: str, step: int) -> bool:
    """False for a metric point a resumed run logged before it was interrupted."""
    return step > _already_logged.get(key, -1)


def start_parent(tracking: DictConfig, tags: dict[str, str]) -> str:
    """The parent run of a sweep (client API: no run becomes active in the launching process).

    Running the same sweep again (same ``sweep_hash`` tag) reopens its parent, so the children of every
    attempt stay under one parent."""
    client = _client(tracking.uri)
    exp_id = ensure_experiment(tracking.uri, tracking.experiment, tracking.get("artifact_location"))
    digest = tags.get(SWEEP_HASH_TAG)
    if digest:
        earlier = client.search_runs([exp_id], filter_string=f"tags.`{SWEEP_HASH_TAG}` = '{digest}'",
                                     order_by=["attributes.start_time DESC"], max_results=1)
        if earlier:
            run_id = earlier[0].info.run_id
            attempts = int(earlier[0].data.tags.get("losslab.attempts", "1")) + 1
            client.update_run(run_id, status="RUNNING")
            for key, value in {**tags, "losslab.attempts": str(attempts)}.items():
                client.set_tag(run_id, key, value)
            return run_id
    run = client.create_run(exp_id, run_name=tags.get("losslab.sweep", "sweep"), tags=tags)
    return run.info.run_id


def children(uri: str, parent_id: str) -> list:
    """Every run of a sweep: the parent's children, and finished runs of other sweeps it reused."""
    client = _client(uri)
    exp_id = client.get_run(parent_id).info.experiment_id
    own = client.search_runs([exp_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                             max_results=50000)
    reused = client.search_runs([exp_id], filter_string=f"tags.`losslab.reused_by.{parent_id}` = '1'",
                                max_results=50000)
    return own + [r for r in reused if r.info.run_id not in {o.info.run_id for o in own}]


def latest_per_job(runs: list) -> tuple[list, list]:
    """(finished, failed): per config hash, the finished run if there is one, else its latest attempt."""
    by_job: dict[str, list] = {}
    for run in runs:
        by_job.setdefault(run.data.tags.get(CONFIG_HASH_TAG, run.info.run_id), []).append(run)
    finished, failed = [], []
    for attempts in by_job.values():
        done = [r for r in attempts if r.info.status == "FINISHED"]
        if done:
            finished.append(max(done, key=lambda r: r.info.start_time))
        else:
            failed.append(max(attempts, key=lambda r: r.info.start_time))
    return finished, failed


def reuse_in_sweep(uri: str, run) -> None:
    """Count a finished run of another sweep as part of the current one (it is not run again)."""
    from losslab.cluster import parent_run_id  # the environment, or the sweep dir on another machine

    parent = parent_run_id(uri)
    if parent and run.data.tags.get("mlflow.parentRunId") != parent:
        _client(uri).set_tag(run.info.run_id, f"losslab.reused_by.{parent}", "1")


def finish_parent(uri: str, run_id: str) -> tuple[list, list]:
    """Close a sweep's parent run: FINISHED when every job has a finished run, else FAILED. Returns the
    (finished, failed) runs, one per job."""
    client = _client(uri)
    finished, failed = latest_per_job(children(uri, run_id))
    client.set_tag(run_id, "children.finished", str(len(finished)))
    client.set_tag(run_id, "children.failed", str(len(failed)))
    client.set_terminated(run_id, "FAILED" if failed else "FINISHED")
    return finished, failed


def job_tags(cfg: DictConfig) -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig

    from losslab import secrets

    tags = {"losslab.task_kind": str(cfg.task.kind)}
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        for group, choice in hc.runtime.choices.items():
            if not group.startswith("hydra/"):
                tags[f"choice.{group}"] = str(choice)
        tags["losslab.job_dir"] = hc.runtime.output_dir
        if hc.job.get("num") is not None:
            tags["losslab.job_num"] = str(hc.job.num)
        tags["losslab.overrides"] = " ".join(secrets.mask_overrides(hc.overrides.task))[:5000]
    return tags


def _record_error(exc: BaseException) -> None:
    import mlflow

    with contextlib.suppress(Exception):
        mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
        mlflow.log_text("".join(traceback.format_exception(exc)), "error.txt")
        mlflow.flush_async_logging()


def _start_child(cfg: DictConfig, run_name: str, tags: dict[str, str]):
    """Start (and make active) a new run for this job: in its store and experiment, a child of the sweep's
    parent run when there is one."""
    import mlflow

    tracking = cfg.tracking
    exp_id = ensure_experiment(tracking.uri, tracking.experiment, tracking.get("artifact_location"))
    mlflow.set_tracking_uri(tracking.uri)
    from losslab.cluster import parent_run_id  # the environment, or the sweep dir on another machine

    return mlflow.start_run(experiment_id=exp_id, run_name=run_name, parent_run_id=parent_run_id(tracking.uri),
                            tags=tags)


@contextlib.contextmanager
def job_run(cfg: DictConfig, run_name: str, digest: str, resume: Previous | None = None):
    """One MLflow run for this job: FINISHED on success, FAILED (with the error attached) if it raises.

    With ``resume`` (an interrupted attempt with a checkpoint) the job continues in that attempt's run, and
    the metric points it had already logged are not logged again."""
    import mlflow

    from losslab import faults, locks

    tags = {**job_tags(cfg), CONFIG_HASH_TAG: digest, CHECKPOINTS_TAG: str(cfg.trainer.output_dir)}
    _already_logged.clear()
    # held while the run is RUNNING, dropped by the kernel if this process dies: how a twin knows it is alive
    lock = locks.try_lock(locks.job_lock_path(cfg.trainer.output_dir), _lock_note())
    if lock is None:
        raise faults.JobRunning(f"another process ({locks.holder(locks.job_lock_path(cfg.trainer.output_dir))}) "
                                f"is writing {cfg.trainer.output_dir}; not started twice")
    try:
        if resume is not None and resume.checkpoint:
            mlflow.set_tracking_uri(cfg.tracking.uri)
            run = mlflow.start_run(run_id=resume.unfinished.info.run_id)
            _forget_error(cfg.tracking.uri, run)  # the attempt's old error is not this one's
            mlflow.set_tags({**tags, "losslab.resumed_from": resume.checkpoint})
            _already_logged.update(resume.logged)
        else:
            run = _start_child(cfg, run_name, tags)
    except BaseException:
        lock.release()
        raise
    try:
        with faults.stopping_on_sigterm():  # a scheduler's SIGTERM ends the run KILLED, as Ctrl-C does
            params = list(flatten(cfg).items())
            for i in range(0, len(params), 100):  # asynchronously: written while the job starts training
                mlflow.log_params(dict(params[i:i + 100]), synchronous=False)
            mlflow.log_text(config_yaml(cfg), "config/config.yaml")
            yield run
    except BaseException as exc:
        _record_error(faults.explain(exc, cfg))
        exc.losslab_run_id = run.info.run_id  # recorded: the caller need not record it again
        with contextlib.suppress(Exception):  # the store itself may be on the full disk
            mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    else:
        mlflow.flush_async_logging()
        mlflow.end_run("FINISHED")
    finally:
        _already_logged.clear()
        lock.release()


def _forget_error(uri: str, run) -> None:
    """Drop an interrupted attempt's ``error`` tag and ``error.txt`` when it is resumed."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if "error" in run.data.tags:
        with contextlib.suppress(Exception):
            _client(uri).delete_tag(run.info.run_id, "error")
    with contextlib.suppress(Exception):
        repo = get_artifact_repository(run.info.artifact_uri)
        if any(f.path == "error.txt" for f in repo.list_artifacts()):
            repo.delete_artifacts("error.txt")


def config_yaml(cfg: DictConfig) -> str:
    """The composed config as logged (``config/config.yaml``), secrets masked."""
    from losslab import secrets

    return OmegaConf.to_yaml(OmegaConf.create(secrets.mask_tree(OmegaConf.to_container(cfg, resolve=True))))


def record_failed_job(cfg: DictConfig, run_name: str, digest: str | None, exc: BaseException) -> str | None:
    """A sweep job that failed before its run started (a bad option, missing data) still becomes a FAILED
    child run carrying the error, so the sweep's summary and the UI show it. Returns its run id."""
    import mlflow

    from losslab.cluster import parent_run_id

    if not parent_run_id(cfg.tracking.uri):
        return None
    run = _start_child(cfg, run_name, job_tags(cfg) | ({CONFIG_HASH_TAG: digest} if digest else {}))
    _record_error(exc)
    mlflow.end_run("FAILED")
    return run.info.run_id


def log_metrics(metrics: dict[str, float], step: int) -> None:
    """Log metrics into the active run (no-op without one); points a resumed run already has are skipped."""
    import mlflow

    metrics = {k: v for k, v in metrics.items() if is_new(k, step)}
    if metrics and mlflow.active_run() is not None:
        mlflow.log_metrics(metrics, step=step)


def log_params(params: dict) -> None:
    import mlflow

    if params and mlflow.active_run() is not None:
        mlflow.log_params({k: str(v) for k, v in params.items()})


def log_file(path: str, artifact_dir: str) -> None:
    """Log a local file as an artifact of the active run, under ``artifact_dir`` (no-op without a run)."""
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifact(path, artifact_dir)
