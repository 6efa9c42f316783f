"""Hydra callbacks: a multirun (sweep) becomes one MLflow parent run with a child run per job, and ends
with its report (``losslab.report``).

``on_multirun_start``/``on_multirun_end`` run in the launching process for the basic, joblib and submitit
launchers. The store and experiment are created here, once, before any job starts (parallel jobs race on a
fresh sqlite store), and the parent run id reaches the jobs through the environment. Running the same sweep
command again reopens the same parent run (matched on the sweep's overrides), so a resumed sweep is one
parent with the children of every attempt.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger("losslab")


class MLflowSweep(Callback):
    def __init__(self, report: bool = True) -> None:
        self.run_id: str | None = None
        self.report = report

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from losslab import report, tracking

        sweep_dir = Path(config.hydra.sweep.dir)
        tags = {
            "losslab.sweep": f"sweep {sweep_dir.name}",
            "losslab.command": " ".join(sys.argv)[:5000],
            "losslab.overrides": " ".join(config.hydra.overrides.task)[:5000],
            "losslab.sweep_dir": str(sweep_dir),
            tracking.SWEEP_HASH_TAG: tracking.sweep_hash(config),
        }
        self.run_id = tracking.start_parent(config.tracking, tags)
        os.environ[tracking.PARENT_RUN_ENV] = self.run_id
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / report.PARENT_FILE).write_text(f"{config.tracking.uri}\n{self.run_id}\n")

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from losslab import report, tracking

        os.environ.pop(tracking.PARENT_RUN_ENV, None)
        if not self.run_id:
            return
        uri = config.tracking.uri
        finished, failed = tracking.finish_parent(uri, self.run_id)
        out = Path(config.hydra.sweep.dir) / "report"
        print(f"\nlosslab sweep: {len(finished)} job(s) finished, {len(failed)} failed · "
              f"parent MLflow run {self.run_id}", flush=True)
        if self.report and finished:
            try:
                built = report.write(uri, self.run_id, out)
                print(report.table(built, markdown=False), f"\n  report: {out / 'report.md'}", flush=True)
            except Exception:  # the runs are safe in the store: `python -m losslab.report` can rebuild it
                log.exception("the sweep's report could not be built; rebuild it with "
                              "python -m losslab.report %s", config.hydra.sweep.dir)
        for run in failed:
            print(f"  FAILED: {run.info.run_name} ({run.data.tags.get('losslab.overrides', '')}): "
                  f"{run.data.tags.get('error', run.info.status)}", flush=True)
        print(f"  {tracking.ui_command(uri)}", flush=True)
        if failed:
            print("  run the same command again to retry the failed jobs (finished ones are not rerun)",
                  file=sys.stderr, flush=True)
            sys.exit(1)
