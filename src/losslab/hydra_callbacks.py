"""Hydra callbacks: a multirun (sweep) becomes one MLflow parent run with a child run per job.

``on_multirun_start``/``on_multirun_end`` run in the launching process for the basic, joblib and submitit
launchers. The store and experiment are created here, once, before any job starts (parallel jobs race on a
fresh sqlite store), and the parent run id reaches the jobs through the environment.
"""

from __future__ import annotations

import os
import sys

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class MLflowSweep(Callback):
    def __init__(self) -> None:
        self.run_id: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        from losslab import tracking

        tags = {
            "losslab.sweep": f"sweep {os.path.basename(config.hydra.sweep.dir)}",
            "losslab.command": " ".join(sys.argv)[:5000],
            "losslab.overrides": " ".join(config.hydra.overrides.task)[:5000],
            "losslab.sweep_dir": str(config.hydra.sweep.dir),
        }
        self.run_id = tracking.start_parent(config.tracking, tags)
        os.environ[tracking.PARENT_RUN_ENV] = self.run_id

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from losslab import tracking

        os.environ.pop(tracking.PARENT_RUN_ENV, None)
        if self.run_id:
            counts = tracking.finish_parent(config.tracking.uri, self.run_id)
            print(f"\nlosslab sweep: parent MLflow run {self.run_id}, children {counts}\n"
                  f"  {tracking.ui_command(config.tracking.uri)}", flush=True)
