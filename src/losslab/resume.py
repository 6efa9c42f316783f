"""Earlier attempts at a job: a finished run to reuse, or an interrupted one to resume from its checkpoint.

A job is found in the MLflow store by its identity (:mod:`losslab.identity`), never by its directory. A resumed
run already holds the metric points its interrupted attempt logged after its last checkpoint; the steps it
holds (:class:`LoggedSteps`) are handed to whatever logs into the run, so no point is logged twice.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from losslab.identity import CHECKPOINTS_TAG, CONFIG_HASH_TAG, JOB_KEY_TAG, VERSION_TAG, Identity



@dataclass
class LoggedSteps:
    """The last step at which each metric is already in a resumed run's history (empty: a new run)."""

    last: dict[str, int] = field(default_factory=dict)

    def is_new(self, key: str, step: int) -> bool:
        """False for a metric point the resumed run logged before it was interrupted."""
        return step > self.last.get(key, -1)

    def new(self, metrics: dict, step: int) -> dict:
        """The points of ``metrics`` at ``step`` that the run does not have yet."""
        return {k: v for k, v in metrics.items() if self.is_new(k, step)}


@dataclass
class Previous:
    """What an earlier attempt at the same job (same config hash) left: a finished run to reuse, or an
    unfinished run with a checkpoint to resume into."""

    finished: object | None = None       # mlflow Run
    unfinished: object | None = None     # mlflow Run whose checkpoint folder still has a checkpoint
    checkpoint: str | None = None
    logged: LoggedSteps = field(default_factory=LoggedSteps)
    other_versions: list[str] = field(default_factory=list)  # versions with a finished run of this config

    def version_note(self, version: str) -> str | None:
        """One line when this config finished only under other losslab versions: it is run again, and says so."""
        if self.finished is not None or not self.other_versions:
            return None
        return (f"finished runs of this config exist under losslab {', '.join(self.other_versions)}; "
                f"rerunning under {version}")


def previous_attempt(cfg: DictConfig, job: Identity) -> Previous:
    """Look the job up in the store by its config hash (not by directory name); when no run of it finished
    under this losslab version, the versions under which one did are noted (``other_versions``).

    A RUNNING attempt whose process is alive (it holds the lock in its checkpoint folder, see
    :mod:`losslab.locks`) is never taken over: :class:`losslab.faults.JobRunning` is raised. The attempt to
    resume is locked here, so two jobs restarted at once cannot both resume it."""
    from losslab import locks
    from losslab.faults import JobRunning
    from losslab.integrity import resumable
    from losslab.store import Store

    locks.release_all()  # an earlier job of this process (a sweep on the basic launcher) is over
    client = Store(cfg.tracking.uri)
    exp = client.experiment(cfg.tracking.experiment)
    if exp is None:
        return Previous()
    runs = client.tagged(exp.experiment_id, CONFIG_HASH_TAG, job.config_hash,
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
    if not done:  # the same config under another version: rerun (code changed), but say so
        others = client.tagged(exp.experiment_id, JOB_KEY_TAG, job.job_key, max_results=1000,
                               where="attributes.status = 'FINISHED'")
        previous.other_versions = sorted({r.data.tags.get(VERSION_TAG, "?") for r in others} - {job.version})
    for run in runs:  # newest first: an unfinished attempt after the last finished one, with a checkpoint
        if run.info.status == "FINISHED":
            break
        folder = run.data.tags.get(CHECKPOINTS_TAG)
        # this job's own newest complete checkpoint with finite weights (losslab.integrity): never another job's
        checkpoint = resumable(folder, job.config_hash) if folder and Path(folder).is_dir() else None
        if checkpoint:
            if locks.try_lock(locks.job_lock_path(folder)) is None:  # a twin got there first
                raise running(run, locks.holder(locks.job_lock_path(folder)) or "another process")
            previous.unfinished, previous.checkpoint = run, checkpoint
            previous.logged = LoggedSteps({key: max(m.step for m in client.metric_history(run.info.run_id, key))
                                           for key in run.data.metrics})
            break
    return previous


def last_complete_checkpoint(folder: str) -> str | None:
    """The newest ``checkpoint-N`` in ``folder`` that the Trainer finished writing (it writes
    ``trainer_state.json`` last); a partial one (a full disk, a kill mid-save) is never resumed from."""
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


def reuse_in_sweep(uri: str, run) -> None:
    """Count a finished run of another sweep as part of the current one (it is not run again)."""
    from losslab import store
    from losslab.cluster import parent_run_id  # the environment, or the sweep dir on another machine

    parent = parent_run_id(uri)
    if parent and run.data.tags.get(store.PARENT_TAG) != parent:
        store.Store(uri).set_tag(run.info.run_id, store.reused_by_tag(parent), "1")
