"""The MLflow store: every call losslab makes to MLflow goes through this module (no other module imports
``mlflow``), and every tag name losslab writes or reads is defined here, once.

- :class:`Store`: one tracking URI and MLflow's client API on it: experiments, runs by id, searches, tags,
  statuses, metric histories, artifacts, dataset inputs. A sqlite store's schema is created once per process,
  under a file lock beside it, before its first use (:meth:`Store.ready`): parallel jobs on a fresh store
  never migrate its schema at the same time.
- :data:`active`: this process's active run (MLflow's fluent API), the run a job's Trainer logs into too
  (its ``MLflowCallback`` reuses it). :meth:`Store.start_run` and :meth:`Store.resume_run` make a run active;
  ``active.set_tags``, ``active.log_params``, ... write into it; ``active.end`` ends it.
- dataset entities: what a job's data splits are recorded as (:func:`file_source`, :func:`hub_source`,
  :func:`code_source`, :func:`split_dataset`; used by :mod:`losslab.dataset_inputs`).

MLflow is imported inside the functions that call it: importing this module costs nothing (``train.py --help``
and the preflight stay instant). What a run holds and when (a job's run, a sweep's parent run) is
:mod:`losslab.tracking`; what is masked before anything is written is :mod:`losslab.secrets`.
"""

from __future__ import annotations

import functools

# ---------------------------------------------------------------------------------------------------- tags

# MLflow's own tags
PARENT_TAG = "mlflow.parentRunId"  # a sweep's job: its parent run
RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"  # a run's description: Markdown on its overview page
NOTE_LIMIT = 8000  # MLflow's longest tag value
ERROR_TAG = "error"  # a failed (or stopped) run's error in one line; the traceback is its artifact error.txt
ERROR_FILE = "error.txt"

# a job's run: what makes two jobs the same job (:mod:`losslab.identity`)
CONFIG_HASH_TAG = "losslab.config_hash"  # the job under this version: finished runs are reused by it
JOB_KEY_TAG = "losslab.job_key"  # the job under any version: who ran this config before
VERSION_TAG = "losslab.version"
CHECKPOINTS_TAG = "losslab.checkpoint_dir"  # where a job's checkpoints are: what a resume looks in
# a job's run: where and how it ran
TASK_KIND_TAG = "losslab.task_kind"
DEVICE_NAME_TAG = "losslab.device_name"  # the GPU's name (the report's hardware line)
JOB_DIR_TAG = "losslab.job_dir"
JOB_NUM_TAG = "losslab.job_num"  # the job's number in its sweep
OVERRIDES_TAG = "losslab.overrides"  # the command-line overrides (a sweep's parent: the sweep's)
RESUMED_FROM_TAG = "losslab.resumed_from"  # the checkpoint a resumed run continued from
CHOICE_PREFIX = "choice."  # choice.<group>: the option of each config group (choice.loss, choice.model)
REUSED_BY_PREFIX = "losslab.reused_by."  # + a parent run id: a finished run another sweep counts as its own

# a sweep's parent run
SWEEP_TAG = "losslab.sweep"  # its name (``sweep <dir>``)
COMMAND_TAG = "losslab.command"
SWEEP_DIR_TAG = "losslab.sweep_dir"
SWEEP_HASH_TAG = "losslab.sweep_hash"  # the same sweep again reopens the same parent
ATTEMPTS_TAG = "losslab.attempts"
SWEPT_TAG = "losslab.swept"  # the swept keys, for jobs on other machines
RACE_TAG = "losslab.race"  # a race's state (JSON)
FINISHED_TAG = "children.finished"  # how many jobs finished, and failed, when the sweep ended
FAILED_TAG = "children.failed"


def choice_tag(group: str) -> str:
    """The tag of a config group's chosen option: ``choice.loss``."""
    return f"{CHOICE_PREFIX}{group}"


def reused_by_tag(parent_id: str) -> str:
    """The tag a sweep (its parent run id) puts on a finished run of another sweep that it counts as its own."""
    return f"{REUSED_BY_PREFIX}{parent_id}"


# ---------------------------------------------------------------------------------------------------- a store

_ready: set[str] = set()  # stores this process has seen created


class Store:
    """One MLflow tracking store (a tracking URI: ``sqlite:///...``, ``http(s)://``, ``postgresql://...``)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._client = None

    def __repr__(self) -> str:
        from losslab.secrets import mask_text

        return f"Store({mask_text(str(self.uri))!r})"

    def ready(self, wait: float = 60.0) -> None:
        """Create a sqlite store's schema once, whoever comes first: under a file lock beside the store
        (``<store>.lock``), so parallel jobs on a fresh store never migrate its schema at the same time. Other
        stores (a tracking server): nothing to do."""
        from losslab.paths import sqlite_path

        path = sqlite_path(self.uri)
        if path is None or self.uri in _ready:
            return
        from mlflow.tracking import MlflowClient

        from losslab import locks

        path.parent.mkdir(parents=True, exist_ok=True)
        with locks.waiting(path.with_name(path.name + ".lock"), wait, f"the MLflow store {path}"):
            MlflowClient(tracking_uri=self.uri).search_experiments(max_results=1)  # creates or migrates the schema
        _ready.add(self.uri)

    @property
    def client(self):
        """MLflow's ``MlflowClient`` on this store, the store made :meth:`ready` first."""
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self.ready()
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    # experiments

    def experiment(self, name: str):
        """The experiment named ``name`` (an ``mlflow.entities.Experiment``, maybe deleted), or None."""
        return self.client.get_experiment_by_name(name)

    def create_experiment(self, name: str, artifact_location: str | None = None) -> str:
        """Create the experiment ``name``; its id. One created meanwhile by a parallel job is that one's id."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name, artifact_location=artifact_location)
        except MlflowException:  # created meanwhile by a parallel job
            return self.client.get_experiment_by_name(name).experiment_id

    # runs

    def run(self, run_id: str):
        """The run ``run_id`` (an ``mlflow.entities.Run``: ``.info``, ``.data.tags``/``params``/``metrics``)."""
        return self.client.get_run(run_id)

    def search_runs(self, experiment_ids: list[str], filter_string: str = "", order_by: list[str] | None = None,
                    max_results: int | None = None) -> list:
        """The runs of these experiments that match ``filter_string`` (MLflow's search syntax), in ``order_by``
        order; at most ``max_results`` (MLflow's default when None)."""
        more = {} if max_results is None else {"max_results": max_results}
        return list(self.client.search_runs(experiment_ids, filter_string=filter_string, order_by=order_by, **more))

    def children(self, parent_id: str, experiment_id: str, max_results: int = 50000) -> list:
        """The runs whose parent is ``parent_id`` (in its experiment ``experiment_id``)."""
        return self.search_runs([experiment_id], f"tags.{PARENT_TAG} = '{parent_id}'", max_results=max_results)

    def tagged(self, experiment_id: str, key: str, value: str, order_by: list[str] | None = None,
               max_results: int | None = None, where: str = "") -> list:
        """The runs of experiment ``experiment_id`` whose tag ``key`` is ``value`` (``where``: more conditions
        in MLflow's search syntax, joined by ``and``)."""
        condition = f"tags.`{key}` = '{value}'" + (f" and {where}" if where else "")
        return self.search_runs([experiment_id], condition, order_by=order_by, max_results=max_results)

    def create_run(self, experiment_id: str, run_name: str | None = None, tags: dict[str, str] | None = None):
        """A new RUNNING run, not made active in this process (a sweep's parent run)."""
        return self.client.create_run(experiment_id, run_name=run_name, tags=tags)

    def set_status(self, run_id: str, status: str) -> None:
        """Set a run's status (``RUNNING``: a parent run reopened), its end time untouched."""
        self.client.update_run(run_id, status=status)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        """End a run that is not this process's active run: its status (FINISHED, FAILED, KILLED) and end time."""
        self.client.set_terminated(run_id, status)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.client.set_tag(run_id, key, value)

    def delete_tag(self, run_id: str, key: str) -> None:
        self.client.delete_tag(run_id, key)

    def metric_history(self, run_id: str, key: str) -> list:
        """Every logged point of metric ``key`` of a run (``mlflow.entities.Metric``: step, value, timestamp)."""
        return self.client.get_metric_history(run_id, key)

    # artifacts

    def log_artifact(self, run_id: str, path: str, artifact_dir: str | None = None) -> None:
        """Attach the local file ``path`` to a run, under ``artifact_dir``."""
        self.client.log_artifact(run_id, path, artifact_dir)

    def download_artifact(self, run_id: str, path: str, folder: str) -> str:
        """Download a run's artifact ``path`` into the local ``folder``; the local path. Raises if it is not there."""
        return self.client.download_artifacts(run_id, path, folder)

    @staticmethod
    def delete_artifact(run, path: str) -> None:
        """Delete the artifact ``path`` of ``run`` (an ``mlflow.entities.Run``) if it has one at its top level."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(run.info.artifact_uri)
        if any(f.path == path for f in repo.list_artifacts()):
            repo.delete_artifacts(path)

    # datasets

    def log_dataset_inputs(self, run_id: str, inputs: list) -> None:
        """Log dataset inputs of other runs (``run.inputs.dataset_inputs`` entries: a dataset and its tags) as
        inputs of run ``run_id``."""
        from mlflow.entities import DatasetInput, InputTag

        self.client.log_inputs(run_id, datasets=[DatasetInput(given.dataset,
                                                              [InputTag(t.key, t.value) for t in given.tags])
                                                 for given in inputs])

    # the active run

    def start_run(self, experiment_id: str, run_name: str, parent_run_id: str | None, tags: dict[str, str]):
        """Start a new run in experiment ``experiment_id`` (a child of ``parent_run_id`` when given) and make it
        this process's active run (:data:`active`); the run."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        return mlflow.start_run(experiment_id=experiment_id, run_name=run_name, parent_run_id=parent_run_id,
                                tags=tags)

    def resume_run(self, run_id: str):
        """Make the existing run ``run_id`` this process's active run again (RUNNING); the run."""
        import mlflow

        mlflow.set_tracking_uri(self.uri)
        return mlflow.start_run(run_id=run_id)


class ActiveRun:
    """This process's active run (MLflow's fluent API): started by :meth:`Store.start_run` or
    :meth:`Store.resume_run`, logged into by the Trainer's MLflow callback too. Every writer here needs one."""

    @staticmethod
    def run():
        """The active run (an ``mlflow.ActiveRun``), or None: no run in this process (another rank, no tracking)."""
        import mlflow

        return mlflow.active_run()

    @staticmethod
    def store() -> Store:
        """The store the active run is in (MLflow's current tracking URI)."""
        import mlflow

        return Store(mlflow.get_tracking_uri())

    @staticmethod
    def set_tag(key: str, value: str) -> None:
        import mlflow

        mlflow.set_tag(key, value)

    @staticmethod
    def set_tags(tags: dict[str, str]) -> None:
        import mlflow

        mlflow.set_tags(tags)

    @staticmethod
    def log_params(params: dict) -> None:
        """Log params, synchronously (a value already logged with another value raises)."""
        import mlflow

        mlflow.log_params(params)

    @staticmethod
    def log_metrics(metrics: dict[str, float], step: int) -> None:
        import mlflow

        mlflow.log_metrics(metrics, step=step)

    @staticmethod
    def log_text(text: str, path: str) -> None:
        """``text`` as the artifact ``path`` (e.g. ``config/config.yaml``)."""
        import mlflow

        mlflow.log_text(text, path)

    @staticmethod
    def log_artifact(path: str, artifact_dir: str | None = None) -> None:
        """Attach the local file ``path`` under ``artifact_dir``."""
        import mlflow

        mlflow.log_artifact(path, artifact_dir)

    @staticmethod
    def log_inputs(datasets: list, contexts: list[str], tags_list: list[dict[str, str]]) -> None:
        """Dataset inputs (:func:`split_dataset`), each with its context (training, ...) and tags."""
        import mlflow

        mlflow.log_inputs(datasets=datasets, contexts=contexts, tags_list=tags_list)

    @staticmethod
    def end(status: str = "FINISHED") -> None:
        """End the active run: FINISHED, FAILED or KILLED."""
        import mlflow

        mlflow.end_run(status)


active = ActiveRun()


# ---------------------------------------------------------------------------------------------------- datasets

def file_source(uri: str):
    """A dataset source for a file (a local path or a URL), resolved by MLflow's registry of sources."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    return resolve_dataset_source(uri)


def hub_source(path: str, config_name: str | None, split: str, data_files: str | None):
    """A dataset source for a Hugging Face hub data set (or a ``datasets`` builder with its files)."""
    from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

    return HuggingFaceDatasetSource(path=path, config_name=config_name, split=split, data_files=data_files)


def code_source(tags: dict[str, str]):
    """A dataset source for data built by code (a loader, a shipped corpus)."""
    from mlflow.data.code_dataset_source import CodeDatasetSource

    return CodeDatasetSource(tags)


@functools.cache
def _split_class():
    from mlflow.data.huggingface_dataset import HuggingFaceDataset

    class Split(HuggingFaceDataset):
        @property
        def profile(self):  # the split's rows (the base class adds the sizes of the whole file it came from)
            return {"num_rows": self.ds.num_rows}

    return Split


def split_dataset(ds, source, name: str, digest: str, targets: str | None):
    """A ``datasets.Dataset`` as an MLflow dataset (name, digest, source, its number of rows: never a copy of
    the data), to log with ``active.log_inputs``."""
    return _split_class()(ds=ds, source=source, name=name, digest=digest, targets=targets)
