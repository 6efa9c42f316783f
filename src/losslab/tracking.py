"""MLflow: the store, the life of a run (one per job, a child of its sweep's parent run), params, tags and
artifacts.

Metric histories (train loss per logging step, eval metrics per evaluation, final test metrics) come from
the Trainer's own ``MLflowCallback`` (``report_to: [mlflow]``, as :class:`losslab.callbacks.MLflowLogger`),
which reuses the run started here. A job's identity (its hashes) is :mod:`losslab.identity`; its earlier
attempts and what a resumed run already holds are :mod:`losslab.resume`. This module knows nothing about
any particular loss.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from losslab.identity import CHECKPOINTS_TAG, CONFIG_HASH_TAG, SWEEP_HASH_TAG
from losslab.paths import sqlite_path  # noqa: F401  (here for callers; a leaf module, so faults.py can use it)


def ui_command(uri: str) -> str:
    from losslab.secrets import mask_text

    return f"mlflow ui --backend-store-uri {mask_text(uri)}"  # printed: a password in the URI is not


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
    if exp is not None and exp.lifecycle_stage == "deleted":  # its runs could not be written: refused first
        from losslab.errors import ConfigError

        raise ConfigError(f"the MLflow experiment {name!r} (id {exp.experiment_id}) in {uri} is deleted; restore "
                          f"it with MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id "
                          f"{exp.experiment_id}, or choose another tracking.experiment")
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
            if "error" in earlier[0].data.tags:  # the earlier attempt's (a signal, the launcher), not this one's
                with contextlib.suppress(Exception):
                    client.delete_tag(run_id, "error")
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
    """(finished, failed): per job (config hash), the finished run if there is one, else its latest attempt.

    A job whose identity changed under the same command (its data edited, another losslab version) counts
    once, as its latest identity: of the jobs with the same overrides, the one attempted last."""
    by_job: dict[str, list] = {}
    for run in runs:
        by_job.setdefault(run.data.tags.get(CONFIG_HASH_TAG, run.info.run_id), []).append(run)
    latest: dict[str, list] = {}  # the command-line overrides -> the attempts of its latest job
    for key, attempts in by_job.items():
        last = max(attempts, key=lambda r: r.info.start_time)
        point = last.data.tags.get("losslab.overrides") or key
        if point not in latest or max(r.info.start_time for r in latest[point]) < last.info.start_time:
            latest[point] = attempts
    finished, failed = [], []
    for attempts in latest.values():
        done = [r for r in attempts if r.info.status == "FINISHED"]
        if done:
            finished.append(max(done, key=lambda r: r.info.start_time))
        else:
            failed.append(max(attempts, key=lambda r: r.info.start_time))
    return finished, failed


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
    if str(cfg.hardware.get("device")) == "cuda":   # which GPU: the report's hardware line names it
        import torch

        if torch.cuda.is_available():
            tags["losslab.device_name"] = torch.cuda.get_device_name()
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

    from losslab.secrets import mask_text  # a URI's password in the message or a traceback line is not logged

    with contextlib.suppress(Exception):
        mlflow.set_tag("error", mask_text(f"{type(exc).__name__}: {exc}")[:5000])
        mlflow.log_text(mask_text("".join(traceback.format_exception(exc))), "error.txt")


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
def job_run(cfg: DictConfig, run_name: str, job, resume=None):
    """One MLflow run for this job (``job``: its :class:`losslab.identity.Identity`, as tags): FINISHED on
    success, FAILED (with the error attached) if it raises.

    With ``resume`` (a :class:`losslab.resume.Previous`: an interrupted attempt with a checkpoint) the job
    continues in that attempt's run; the points that run already holds are ``resume.logged``, for the
    callers that log metrics to skip."""
    import mlflow

    from losslab import faults, identity, locks

    if identity.of(cfg) != job:  # the params and config.yaml logged below must be what was hashed
        raise RuntimeError("the job's config changed after its identity was taken (not only where it writes); "
                           "fill in any derived value before losslab.identity.config_hash")
    # where it writes is logged as it is now (trainer.output_dir: the checkpoints' folder, a resumed one's own)
    tags = {**job_tags(cfg), **job.tags(), CHECKPOINTS_TAG: str(cfg.trainer.output_dir)}
    # held while the run is RUNNING, dropped by the kernel if this process dies: how a twin knows it is alive
    lock = locks.try_lock(locks.job_lock_path(cfg.trainer.output_dir))
    if lock is None:
        raise faults.JobRunning(f"another process ({locks.holder(locks.job_lock_path(cfg.trainer.output_dir))}) "
                                f"is writing {cfg.trainer.output_dir}; not started twice")
    try:
        if resume is not None and resume.checkpoint:
            mlflow.set_tracking_uri(cfg.tracking.uri)
            run = mlflow.start_run(run_id=resume.unfinished.info.run_id)
            _forget_error(cfg.tracking.uri, run)  # the attempt's old error is not this one's
            mlflow.set_tags({**tags, "losslab.resumed_from": resume.checkpoint})
        else:
            run = _start_child(cfg, run_name, tags)
    except BaseException:
        lock.release()
        raise
    try:
        # a scheduler's SIGTERM ends the run KILLED, as Ctrl-C does; a store deleted meanwhile stops it in one line
        with faults.stopping_on_sigterm(), faults.watching_store(cfg.tracking.uri, run.info.run_id):
            params = list(flatten(cfg).items())
            for i in range(0, len(params), 100):  # synchronously (~0.05 s): MLflow's async queue polls with a
                mlflow.log_params(dict(params[i:i + 100]))  # 1-s timeout, so a flush or end_run waited ~1 s
            mlflow.log_text(config_yaml(cfg), "config/config.yaml")
            yield run
    except BaseException as exc:
        _record_error(faults.explain(exc, cfg))
        exc.losslab_run_id = run.info.run_id  # recorded: the caller need not record it again
        with contextlib.suppress(Exception):  # the store itself may be on the full disk
            mlflow.end_run("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    else:
        mlflow.end_run("FINISHED")
    finally:
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


def record_failed_job(cfg: DictConfig, run_name: str, job, exc: BaseException) -> str | None:
    """A sweep job that failed before its run started (a bad option, missing data) still becomes a FAILED
    child run carrying the error, so the sweep's summary and the UI show it (``job``: its identity, None when
    the config cannot be resolved). Returns its run id."""
    import mlflow

    from losslab.cluster import parent_run_id

    if not parent_run_id(cfg.tracking.uri):
        return None
    run = _start_child(cfg, run_name, job_tags(cfg) | (job.tags() if job else {}))
    _record_error(exc)
    mlflow.end_run("FAILED")
    return run.info.run_id


def log_metrics(metrics: dict[str, float], step: int, logged=None) -> None:
    """Log metrics into the active run (no-op without one); with ``logged`` (a
    :class:`losslab.resume.LoggedSteps`), the points a resumed run already has are skipped."""
    import mlflow

    if logged is not None:
        metrics = logged.new(metrics, step)
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
