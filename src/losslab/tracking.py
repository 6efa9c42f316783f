"""MLflow: the store, one run per job (a child of its sweep's parent run), params, tags and artifacts.

Metric histories (train loss per logging step, eval metrics per evaluation, final test metrics) come from
the Trainer's own ``MLflowCallback`` (``report_to: [mlflow]``), which reuses the run started here. This
module knows nothing about any particular loss.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PARENT_RUN_ENV = "LOSSLAB_PARENT_RUN_ID"
CONFIG_GROUPS = ("task", "model", "loss", "hardware", "trainer", "tracking", "experiment")


def ui_command(uri: str) -> str:
    return f"mlflow ui --backend-store-uri {uri}"


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
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

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def start_parent(tracking: DictConfig, tags: dict[str, str]) -> str:
    """The parent run of a sweep (client API: no run becomes active in the launching process)."""
    client = _client(tracking.uri)
    exp_id = ensure_experiment(tracking.uri, tracking.experiment, tracking.get("artifact_location"))
    run = client.create_run(exp_id, run_name=tags.get("losslab.sweep", "sweep"), tags=tags)
    return run.info.run_id


def finish_parent(uri: str, run_id: str) -> dict[str, int]:
    """Close a sweep's parent run; tag it with how its children ended."""
    client = _client(uri)
    parent = client.get_run(run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{run_id}'", max_results=10000
    )
    counts: dict[str, int] = {}
    for child in children:
        counts[child.info.status] = counts.get(child.info.status, 0) + 1
    for status, n in counts.items():
        client.set_tag(run_id, f"children.{status.lower()}", str(n))
    client.set_terminated(run_id, "FINISHED" if counts.get("FAILED", 0) == 0 else "FAILED")
    return counts


def job_tags(cfg: DictConfig) -> dict[str, str]:
    from hydra.core.hydra_config import HydraConfig

    tags = {"losslab.task_kind": str(cfg.task.kind)}
    if HydraConfig.initialized():
        hc = HydraConfig.get()
        for group, choice in hc.runtime.choices.items():
            if not group.startswith("hydra/"):
                tags[f"choice.{group}"] = str(choice)
        tags["losslab.job_dir"] = hc.runtime.output_dir
        tags["losslab.overrides"] = " ".join(hc.overrides.task)[:5000]
    return tags


@contextlib.contextmanager
def job_run(cfg: DictConfig, run_name: str):
    """One MLflow run for this job: FINISHED on success, FAILED (with the error attached) if it raises."""
    import mlflow

    tracking = cfg.tracking
    exp_id = ensure_experiment(tracking.uri, tracking.experiment, tracking.get("artifact_location"))
    mlflow.set_tracking_uri(tracking.uri)
    parent = os.environ.get(PARENT_RUN_ENV)
    run = mlflow.start_run(experiment_id=exp_id, run_name=run_name, parent_run_id=parent, tags=job_tags(cfg))
    try:
        params = list(flatten(cfg).items())
        for i in range(0, len(params), 100):  # asynchronously: written while the job starts training
            mlflow.log_params(dict(params[i:i + 100]), synchronous=False)
        mlflow.log_text(OmegaConf.to_yaml(cfg, resolve=True), "config/config.yaml")
        yield run
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        with contextlib.suppress(Exception):
            mlflow.set_tag("error", f"{type(exc).__name__}: {exc}"[:5000])
            mlflow.log_text("".join(traceback.format_exception(exc)), "error.txt")
            mlflow.flush_async_logging()
        mlflow.end_run(status)
        raise
    else:
        mlflow.flush_async_logging()
        mlflow.end_run("FINISHED")


def log_metrics(metrics: dict[str, float], step: int) -> None:
    """Log metrics into the active run (no-op without one)."""
    import mlflow

    if metrics and mlflow.active_run() is not None:
        mlflow.log_metrics(metrics, step=step)


def log_params(params: dict) -> None:
    import mlflow

    if params and mlflow.active_run() is not None:
        mlflow.log_params({k: str(v) for k, v in params.items()})
