"""MLflow: the store, the life of a run (one per job, a child of its sweep's parent run), params, tags and
artifacts.

Metric histories (train loss per logging step, eval metrics per evaluation, final test metrics) come from
the Trainer's own ``MLflowCallback`` (``report_to: [mlflow]``, as :class:`losslab.callbacks.MLflowLogger`),
which reuses the run started here. A job's identity (its hashes) is :mod:`losslab.identity`; its earlier
attempts and what a resumed run already holds are :mod:`losslab.resume`. This module knows nothing about
any particular loss. Every MLflow call goes through :mod:`losslab.store`.
"""

from __future__ import annotations

import contextlib
import traceback
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from losslab import faults, identity, locks, secrets, store
from losslab.cluster import parent_run_id
from losslab.errors import ConfigError
from losslab.secrets import mask_text
from losslab.paths import sqlite_path  # noqa: F401  (here for callers; a leaf module, so faults.py can use it)
from losslab.store import (ATTEMPTS_TAG, CHECKPOINTS_TAG, CONFIG_HASH_TAG, DEVICE_NAME_TAG, ERROR_FILE, ERROR_TAG,
                           FAILED_TAG, FINISHED_TAG, JOB_DIR_TAG, JOB_NUM_TAG, OVERRIDES_TAG, RESUMED_FROM_TAG,
                           SWEEP_HASH_TAG, SWEEP_TAG, TASK_KIND_TAG, Store)

# torch is imported inside job_tags only: the sweep's parent process, the report and the preflight path import
# this module and load no model


def ui_command(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {mask_text(uri)}"  # printed: a password in the URI is not


def ensure_experiment(uri: str, name: str, artifact_location: str | None = None) -> str:
    """Create the store (schema) and the experiment if they do not exist yet; return the experiment id.

    Call it once before parallel jobs start: concurrent writers racing on a fresh sqlite store fail.
    """
    client = Store(uri)
    exp = client.experiment(name)
    if exp is not None and exp.lifecycle_stage == "deleted":  # its runs could not be written: refused first

        raise ConfigError(f"the MLflow experiment {name!r} (id {exp.experiment_id}) in {uri} is deleted; restore "
                          f"it with MLFLOW_TRACKING_URI={uri} mlflow experiments restore --experiment-id "
                          f"{exp.experiment_id}, or choose another tracking.experiment")
    if exp is not None:
        return exp.experiment_id
    if artifact_location and "://" not in artifact_location and str(uri).startswith(("http://", "https://")):
        artifact_location = None  # a tracking server: artifacts go through it, not into one node's folder
    location = Path(artifact_location).resolve().as_uri() if artifact_location and "://" not in artifact_location \
        else artifact_location
    return client.create_experiment(name, artifact_location=location)  # or the one a parallel job created


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

    walk(secrets.mask_tree(OmegaConf.to_container(cfg, resolve=True)), "")  # a password is logged as ***
    return flat


def start_parent(tracking: DictConfig, tags: dict[str, str]) -> str:
    """The parent run of a sweep (client API: no run becomes active in the launching process).

    Running the same sweep again (same ``sweep_hash`` tag) reopens its parent, so the children of every
    attempt stay under one parent."""
    client = Store(tracking.uri)
    exp_id = ensure_experiment(tracking.uri, tracking.experiment, tracking.get("artifact_location"))
    digest = tags.get(SWEEP_HASH_TAG)
    if digest:
        earlier = client.tagged(exp_id, SWEEP_HASH_TAG, digest, order_by=["attributes.start_time DESC"],
                                max_results=1)
        if earlier:
            run_id = earlier[0].info.run_id
            attempts = int(earlier[0].data.tags.get(ATTEMPTS_TAG, "1")) + 1
            client.set_status(run_id, "RUNNING")
            for key, value in {**tags, ATTEMPTS_TAG: str(attempts)}.items():
                client.set_tag(run_id, key, value)
            if ERROR_TAG in earlier[0].data.tags:  # the earlier attempt's (a signal, the launcher), not this one's
                with contextlib.suppress(Exception):
                    client.delete_tag(run_id, ERROR_TAG)
            return run_id
    run = client.create_run(exp_id, run_name=tags.get(SWEEP_TAG, "sweep"), tags=tags)
    return run.info.run_id


def children(uri: str, parent_id: str) -> list:
    """Every run of a sweep: the parent's children, and finished runs of other sweeps it reused."""
    client = Store(uri)
    exp_id = client.run(parent_id).info.experiment_id
    own = client.children(parent_id, exp_id, max_results=50000)
    reused = client.tagged(exp_id, store.reused_by_tag(parent_id), "1", max_results=50000)
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
        point = last.data.tags.get(OVERRIDES_TAG) or key
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
    client = Store(uri)
    finished, failed = latest_per_job(children(uri, run_id))
    client.set_tag(run_id, FINISHED_TAG, str(len(finished)))
    client.set_tag(run_id, FAILED_TAG, str(len(failed)))
    client.end_run(run_id, "FAILED" if failed else "FINISHED")
    return finished, failed


def job_tags(cfg: DictConfig) -> dict[str, str]:
    tags = {TASK_KIND_TAG: str(cfg.task.kind)}
    if str(cfg.hardware.get("device")) == "cuda":   # which GPU: the report's hardware line names it
        import torch

        if torch.cuda.is_available():
            tags[DEVICE_NAME_TAG] = torch.cuda.get_device_name()
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        for group, choice in hc.runtime.choices.items():
            if not group.startswith("hydra/"):
                tags[store.choice_tag(group)] = str(choice)
        tags[JOB_DIR_TAG] = hc.runtime.output_dir
        if hc.job.get("num") is not None:
            tags[JOB_NUM_TAG] = str(hc.job.num)
        tags[OVERRIDES_TAG] = " ".join(secrets.mask_overrides(hc.overrides.task))[:5000]
    return tags


def _record_error(exc: BaseException) -> None:
    with contextlib.suppress(Exception):
        store.active.set_tag(ERROR_TAG, mask_text(f"{type(exc).__name__}: {exc}")[:5000])
        store.active.log_text(mask_text("".join(traceback.format_exception(exc))), ERROR_FILE)


def _start_child(cfg: DictConfig, run_name: str, tags: dict[str, str]):
    """Start (and make active) a new run for this job: in its store and experiment, a child of the sweep's
    parent run when there is one."""
    tracking = cfg.tracking
    exp_id = ensure_experiment(tracking.uri, tracking.experiment, tracking.get("artifact_location"))

    return Store(tracking.uri).start_run(exp_id, run_name, parent_run_id(tracking.uri), tags)


@contextlib.contextmanager
def job_run(cfg: DictConfig, run_name: str, job, resume=None):
    """One MLflow run for this job (``job``: its :class:`losslab.identity.Identity`, as tags): FINISHED on
    success, FAILED (with the error attached) if it raises.

    With ``resume`` (a :class:`losslab.resume.Previous`: an interrupted attempt with a checkpoint) the job
    continues in that attempt's run; the points that run already holds are ``resume.logged``, for the
    callers that log metrics to skip."""
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
            run = Store(cfg.tracking.uri).resume_run(resume.unfinished.info.run_id)
            _forget_error(cfg.tracking.uri, run)  # the attempt's old error is not this one's
            store.active.set_tags({**tags, RESUMED_FROM_TAG: resume.checkpoint})
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
                store.active.log_params(dict(params[i:i + 100]))  # 1-s timeout: a flush or end_run waited ~1 s
            store.active.log_text(config_yaml(cfg), "config/config.yaml")
            yield run
    except BaseException as exc:
        _record_error(faults.explain(exc, cfg))
        exc.losslab_run_id = run.info.run_id  # recorded: the caller need not record it again
        with contextlib.suppress(Exception):  # the store itself may be on the full disk
            store.active.end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")
        raise
    else:
        store.active.end("FINISHED")
    finally:
        lock.release()


def _forget_error(uri: str, run) -> None:
    """Drop an interrupted attempt's ``error`` tag and ``error.txt`` when it is resumed."""
    if ERROR_TAG in run.data.tags:
        with contextlib.suppress(Exception):
            Store(uri).delete_tag(run.info.run_id, ERROR_TAG)
    with contextlib.suppress(Exception):
        Store.delete_artifact(run, ERROR_FILE)


def config_yaml(cfg: DictConfig) -> str:
    """The composed config as logged (``config/config.yaml``), secrets masked."""
    return OmegaConf.to_yaml(OmegaConf.create(secrets.mask_tree(OmegaConf.to_container(cfg, resolve=True))))


def record_failed_job(cfg: DictConfig, run_name: str, job, exc: BaseException) -> str | None:
    """A sweep job that failed before its run started (a bad option, missing data) still becomes a FAILED
    child run carrying the error, so the sweep's summary and the UI show it (``job``: its identity, None when
    the config cannot be resolved). Returns its run id."""
    if not parent_run_id(cfg.tracking.uri):
        return None
    run = _start_child(cfg, run_name, job_tags(cfg) | (job.tags() if job else {}))
    _record_error(exc)
    store.active.end("FAILED")
    return run.info.run_id


def log_metrics(metrics: dict[str, float], step: int, logged=None) -> None:
    """Log metrics into the active run (no-op without one); with ``logged`` (a
    :class:`losslab.resume.LoggedSteps`), the points a resumed run already has are skipped."""
    if logged is not None:
        metrics = logged.new(metrics, step)
    if metrics and store.active.run() is not None:
        store.active.log_metrics(metrics, step)


def log_params(params: dict) -> None:
    if params and store.active.run() is not None:
        store.active.log_params({k: str(v) for k, v in params.items()})


def log_file(path: str, artifact_dir: str) -> None:
    """Log a local file as an artifact of the active run, under ``artifact_dir`` (no-op without a run)."""
    if store.active.run() is not None:
        store.active.log_artifact(path, artifact_dir)
