"""Hydra callbacks: a multirun (sweep) becomes one MLflow parent run with a child run per job, and ends
with its report (``losslab.report``).

``on_multirun_start``/``on_multirun_end`` run in the launching process for the basic, joblib and submitit
launchers. The store and experiment are created here, once, before any job starts (parallel jobs race on a
fresh sqlite store), and the parent run id reaches the jobs through the environment. Running the same sweep
command again reopens the same parent run (matched on the sweep's overrides), so a resumed sweep is one
parent with the children of every attempt.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from losslab import cluster, distributed, faults, identity, integrity, race_sweeper, secrets, store, tracking, ui
from losslab.cluster import check_server
from losslab.errors import UsageError
from losslab.faults import exit_code
from losslab.losses.targets import check_targets
from losslab.paths import PARENT_FILE
from losslab.store import ERROR_TAG, Store

# The report (numpy, SciPy, matplotlib) is imported where a sweep's report is written, inside the functions:
# every job imports this module (Hydra instantiates its callbacks), and a job never needs the report.

log = logging.getLogger("losslab")


def write_report(uri: str, parent_id: str, out: Path):
    """The sweep's report (:func:`losslab.report.sweep.write`), written into a temporary folder beside ``out``
    and moved into place whole: a kill while it is written never leaves part of a report (an earlier attempt's
    stays until the new one is complete)."""

    from losslab.report import sweep

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        built = sweep.write(uri, parent_id, tmp)
        if out.exists():
            old = out.with_name(f".{out.name}-old-{os.getpid()}")
            out.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    built.files = [out / Path(f).name for f in built.files]
    return built


def check_sweep_dir(config: DictConfig) -> None:
    """Refuse a sweep dir that holds another sweep's files (its ``mlflow_parent.txt`` names a parent run of
    other overrides, or of another store), before Hydra writes its jobs' folders there. The same sweep again
    (a resumed one) is welcome."""

    sweep_dir = Path(config.hydra.sweep.dir)
    marker = sweep_dir / PARENT_FILE
    if not marker.is_file():
        return
    uri, parent = ([*marker.read_text().split(), "", ""])[:2]
    theirs = None
    strip = getattr(secrets, "without_credentials", str)  # the file holds the URI less any password
    if uri == strip(str(config.tracking.uri)):
        with contextlib.suppress(Exception):
            theirs = Store(config.tracking.uri).run(parent).data.tags.get(identity.SWEEP_HASH_TAG)
    if theirs != identity.sweep_hash(config):
        raise integrity.OtherJob(f"{sweep_dir} holds the files of another sweep (parent MLflow run {parent or '?'} "
                                 f"in {uri or '?'}): this sweep would overwrite its jobs' folders; choose another "
                                 "hydra.sweep.dir or remove it")


def composed_key(config: DictConfig) -> str | None:
    """:func:`losslab.integrity.composed_key` of the job ``config`` (with its ``hydra`` node) describes, before
    Hydra runs it; None when it does not resolve (the job itself then says why)."""

    job = copy.deepcopy(config)
    with read_write(job), open_dict(job):
        del job["hydra"]
    hc = HydraConfig.instance()
    before = hc.cfg
    try:
        hc.set_config(config)  # what ${hydra:...} reads (run_job sets it again)
        return integrity.composed_key(job)
    except Exception:
        return None
    finally:
        hc.cfg = before


class MLflowSweep(Callback):
    def __init__(self, report: bool = True) -> None:
        self.run_id: str | None = None
        self.report = report

    ended = False

    def _end_if_abandoned(self, uri: str, run_id: str) -> None:
        """At exit: a sweep whose launcher raised (e.g. sbatch refused the jobs) never reaches
        ``on_multirun_end``; its parent run is ended FAILED instead of staying RUNNING (KILLED, when a signal
        stopped a job: SIGTERM from a scheduler, Ctrl-C). A rerun of the sweep drops this ``error`` tag."""
        if self.ended:
            return

        signal = faults.stopped_by()  # a job stopped by SIGTERM / Ctrl-C ended the sweep: not the launcher
        if signal:
            error = (f"the sweep was stopped by {signal} before its jobs ended; run the same command again to "
                     "resume it (finished jobs are not rerun)")
        else:
            error = ("the sweep stopped before its jobs ended (the launcher failed, e.g. the scheduler refused the "
                     "jobs); see the command's output")
        try:
            client = Store(uri)
            client.set_tag(run_id, ERROR_TAG, error)
            client.end_run(run_id, "KILLED" if signal else "FAILED")
        except Exception:  # the store itself is gone: nothing more to do at exit
            log.warning("could not end the sweep's parent run %s", run_id)

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        """A single run: a run dir that holds another job's files (its ``losslab_job.json``) is refused in one
        line, before Hydra writes its own files there."""

        run_dir = Path(str(config.hydra.run.dir))
        if integrity.read(run_dir) is None:
            return
        composed = composed_key(config)
        if composed is None:
            return
        try:
            integrity.check_run_dir(run_dir, composed=composed)
        except integrity.OtherJob as err:
            print(f"losslab: error: {err}", file=sys.stderr, flush=True)
            sys.exit(2)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        distributed.refuse_sweep()  # under torchrun (also a preset that sweeps): every rank would run it all

        try:
            check_server(config.tracking.uri)  # before the parent run: a dead server is one line, in seconds
            if config.get("loss") is not None:  # loss._target_=builtins.open: refused before anything is called
                check_targets(config.loss)
            check_sweep_dir(config)  # another sweep's folder: refused before Hydra writes into it

            if race_sweeper.is_race(config):  # race=losses: its knobs, before the parent run
                race_sweeper.check(config)
            # a deleted experiment: refused here, not by every job after the sweep has started
            tracking.ensure_experiment(config.tracking.uri, config.tracking.experiment,
                                       config.tracking.get("artifact_location"))
        except UsageError as err:
            print(f"losslab: error: {err}", file=sys.stderr, flush=True)
            sys.exit(exit_code(err))
        sweep_dir = Path(config.hydra.sweep.dir)
        tags = {
            store.SWEEP_TAG: f"sweep {sweep_dir.name}",
            store.COMMAND_TAG: " ".join(secrets.mask_overrides(sys.argv))[:5000],
            store.OVERRIDES_TAG: " ".join(secrets.mask_overrides(config.hydra.overrides.task))[:5000],
            store.SWEEP_DIR_TAG: str(sweep_dir),
            store.SWEEP_HASH_TAG: identity.sweep_hash(config),
        }
        self.run_id = tracking.start_parent(config.tracking, tags)
        os.environ[cluster.PARENT_RUN_ENV] = self.run_id

        ui.start_sweep(config, self.run_id)  # the swept keys: each job names its run by them
        atexit.register(self._end_if_abandoned, str(config.tracking.uri), self.run_id)  # submission failed
        sweep_dir.mkdir(parents=True, exist_ok=True)
        uri = secrets.without_credentials(config.tracking.uri)  # never a password on disk (MLflow's env has it)
        (sweep_dir / PARENT_FILE).write_text(f"{uri}\n{self.run_id}\n")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from losslab.report import note, sweep

        os.environ.pop(cluster.PARENT_RUN_ENV, None)
        if not self.run_id:
            return
        self.ended = True
        uri = config.tracking.uri
        # the parent ends (FINISHED / FAILED) only once its report is written whole
        finished, failed = tracking.latest_per_job(tracking.children(uri, self.run_id))

        try:  # the children named by the report's rule: `huber · delta=0.5 · seed=1`
            ui.name_children(uri, self.run_id, finished)
        except Exception:
            log.warning("the sweep's runs could not be renamed", exc_info=True)
        out = Path(config.hydra.sweep.dir) / "report"
        print(f"\nlosslab sweep: {len(finished)} job(s) finished, {len(failed)} failed · "
              f"parent MLflow run {self.run_id}", flush=True)
        try:
            with faults.stopping_on_sigterm():
                if self.report and finished:
                    try:
                        built = write_report(uri, self.run_id, out)
                        ui.describe_sweep(uri, self.run_id, note.sweep_note(built, len(failed)))  # the answer on the parent's page
                        print(sweep.table(built, markdown=False),
                              f"\n\n{sweep.answer(built)}\n  report: {out / 'report.md'}", flush=True)
                    except Exception:  # the runs are safe in the store: `python -m losslab.report` rebuilds it
                        log.exception("the sweep's report could not be built; rebuild it with "
                                      "python -m losslab.report %s", config.hydra.sweep.dir)
        except BaseException as exc:  # a signal while the report was written: KILLED, never FINISHED half-reported
            what = exc.args[0] if isinstance(exc, faults.Terminated) else (
                "SIGINT (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(Exception):
                client = store.Store(uri)
                client.set_tag(self.run_id, store.ERROR_TAG, f"the sweep was stopped by {what} while its report "
                                                             "was written; run the same command again to write it")
                client.end_run(self.run_id, "KILLED")
            if isinstance(exc, KeyboardInterrupt):
                print(f"losslab: stopped by {what} while the sweep's report was written: its parent MLflow run "
                      f"{self.run_id} is KILLED; run the same command again to write it", file=sys.stderr,
                      flush=True)
                sys.exit(faults.exit_code(exc) if isinstance(exc, faults.Terminated) else 130)
            raise
        finished, failed = tracking.finish_parent(uri, self.run_id)
        for run in failed:
            print(f"  FAILED: {run.info.run_name} ({run.data.tags.get(store.OVERRIDES_TAG, '')}): "
                  f"{run.data.tags.get(store.ERROR_TAG, run.info.status)}", flush=True)
        print(f"  {tracking.ui_command(uri)}", flush=True)
        if failed:
            print("  run the same command again to retry the failed jobs (finished ones are not rerun)",
                  file=sys.stderr, flush=True)
            sys.exit(1)


class MaskCredentials(Callback):
    """Hydra's own files carry no credentials: each job's ``.hydra/{config,hydra,overrides}.yaml`` (written by
    Hydra just before this callback runs) and the sweep's ``multirun.yaml`` are rewritten with secret keys and
    the passwords of URLs masked (:mod:`losslab.secrets`), and the job's process prints and logs masked (a
    launcher's worker did not start through ``train.py``)."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        secrets.mask_console()
        hc = config.hydra
        if hc.get("output_subdir") is not None:
            folder = Path(hc.runtime.output_dir) / str(hc.output_subdir)
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                mask_yaml_file(folder / name)
        if hc.mode == RunMode.MULTIRUN:
            mask_yaml_file(Path(hc.sweep.dir) / "multirun.yaml")


def mask_yaml_file(path: Path) -> bool:
    """Rewrite a YAML file Hydra wrote with its secrets masked (atomically: parallel jobs may rewrite the sweep's
    ``multirun.yaml`` at once). Returns whether anything was masked."""

    if not path.is_file():
        return False
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    masked = secrets.mask_tree(data)
    if masked == data:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(OmegaConf.to_yaml(OmegaConf.create(masked)), encoding="utf-8")
    os.replace(tmp, path)
    return True
