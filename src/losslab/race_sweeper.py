"""``python train.py -m task=<task> race=losses``: the race (:mod:`losslab.race`) as a Hydra sweeper.

Hydra calls :meth:`RaceSweeper.sweep` between the sweep callbacks' ``on_multirun_start`` (the parent MLflow run)
and ``on_multirun_end`` (the report), so every job is an ordinary child run of one parent, launched by the
configured launcher (basic, joblib, submitit) in rounds. After each round the sweep's report is built from the
store (:func:`losslab.report.sweep.build`) and the race decides who goes on; its state is the parent's
``losslab.race`` tag (JSON), which the report's answer line reads. A killed race resumes like any sweep: the
same command finds the finished jobs by their identity, replays the same decisions from the same store, and
goes on where it stopped.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from losslab.store import RACE_TAG

log = logging.getLogger("losslab")

NOT_RACED = {"model_loss", "composite"}  # the head's own loss (a duplicate of mse / cross_entropy); needs terms


def race_losses(config: DictConfig) -> list[str]:
    """``race.losses``, or every loss option that serves the task's kind (aliases, ``model_loss`` and
    ``composite`` left out), in name order."""
    from losslab import preflight

    chosen = list(config.get("race", {}).get("losses") or [])
    if chosen:
        return chosen
    kinds = {config.task.kind, *(config.task.get("also_kinds") or ())}
    options = preflight.loss_options(distributions=config.task.get("targets") == "distribution")
    return sorted(name for name, served in options.items()
                  if served is not None and kinds & set(served) and name not in NOT_RACED)


def check(config: DictConfig) -> None:
    """Before the sweep's parent run is made (``on_multirun_start``): a race's command line and knobs, refused
    with :class:`losslab.errors.ConfigError` (one line, no run left behind)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from losslab.errors import ConfigError

    for override in OverridesParser.create().parse_overrides(list(config.hydra.overrides.task)):
        key = override.get_key_element().lstrip("+~")
        if key in ("loss", "seed"):
            raise ConfigError(f"{key}=… is chosen by the race: name the losses with race.losses=[a,b,c] and the "
                              "seeds with race.seeds_first / race.max_seeds")
        if override.is_sweep_override():
            raise ConfigError(f"{override.input_line}: a race sweeps the losses and seeds only; run one race per "
                              "setting")
    plan_of(config)


def plan_of(config: DictConfig):
    """(:class:`losslab.race.Plan`, budget in seconds or None) from the ``race`` node; a bad knob is a
    :class:`losslab.errors.ConfigError`."""
    from losslab import race as races
    from losslab.errors import ConfigError

    cfg = config.get("race") or {}
    try:
        plan = races.Plan(race_losses(config), seeds_first=int(cfg.get("seeds_first", 3)),
                          seeds_step=int(cfg.get("seeds_step", 2)), max_seeds=int(cfg.get("max_seeds", 9)),
                          alpha=float(cfg.get("alpha", 0.05)))
        return plan, races.parse_budget(cfg.get("budget"))
    except (ValueError, TypeError) as err:
        raise ConfigError(str(err)) from None


def is_race(config: DictConfig) -> bool:
    return str(config.hydra.sweeper.get("_target_", "")).endswith("RaceSweeper")


def _refuse(message: str) -> None:
    print(f"losslab: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


class RaceSweeper(Sweeper):
    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.launcher = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from losslab import cluster, race as races, store, ui
        from losslab.report import sweep
        from losslab.metrics import greater_is_better

        assert self.config is not None and self.launcher is not None
        from losslab.errors import ConfigError

        common = list(arguments)  # each job's common part; the race chooses the losses and seeds itself
        try:  # checked in on_multirun_start already; again for a sweep without losslab's callbacks
            check(self.config)
            plan, budget = plan_of(self.config)
        except ConfigError as err:
            _refuse(str(err))
        race = races.Race(plan)
        uri = str(self.config.tracking.uri)
        parent = os.environ.get(cluster.PARENT_RUN_ENV)
        objective = str(self.config.task.objective)
        up = greater_is_better(objective)
        os.environ[ui.SWEPT_ENV] = "loss,seed"  # each job names its run `huber · seed=3`
        if parent:
            store.Store(uri).set_tag(parent, store.SWEPT_TAG, "loss,seed")
        log.info("race: %s on %s, seeds %s, each round at level %.3g", ", ".join(plan.losses), objective,
                 "/".join(map(str, plan.targets())), plan.level())
        print(f"race: {', '.join(plan.losses)} on {objective}; rounds of {'/'.join(map(str, plan.targets()))} seeds",
              flush=True)
        returns, job_idx, started, per_job = [], 0, time.monotonic(), None
        while not race.done():
            jobs = race.next_jobs()
            if budget is not None and per_job is not None:
                spent = time.monotonic() - started
                if spent + per_job * len(jobs) > budget:
                    race.stopped = (f"budget: {spent / 60:.0f} of {budget / 60:.0f} min spent, the next round "
                                    f"needs about {per_job * len(jobs) / 60:.0f}")
                    break
            batch = [[*common, f"loss={loss}", f"seed={seed}"] for loss, seed in jobs]
            self.validate_batch_is_legal(batch)
            tic = time.monotonic()
            results = self.launcher.launch(batch, initial_job_idx=job_idx)
            job_idx += len(batch)
            returns.append(results)
            ran = time.monotonic() - tic
            per_job = ran / len(batch)
            if not parent:
                break
            built = sweep.build(uri, parent)
            samples = {row.label: built.samples[(row.label, objective)] for row in built.rows
                       if (row.label, objective) in built.samples}
            flagged = {label: "; ".join(why) for label, why in built.flags.items()}
            race.decide({k: v for k, v in samples.items() if k in plan.losses}, up,
                        {k: v for k, v in flagged.items() if k in plan.losses})
            print(f"race round {race.round}: {len(batch)} job(s) in {ran / 60:.1f} min; still in: "
                  f"{', '.join(race.alive) or '–'}"
                  + "".join(f"; {loss} dropped ({why})" for loss, (n, why) in race.dropped.items()
                            if n == plan.targets()[race.round - 1]), flush=True)
            self._save(uri, parent, race)
        if parent:
            self._save(uri, parent, race)
        print(race.answer(), flush=True)
        return returns

    @staticmethod
    def _save(uri: str, parent: str, race) -> None:
        from losslab.store import Store

        Store(uri).set_tag(parent, RACE_TAG, json.dumps(race.to_dict())[:8000])
