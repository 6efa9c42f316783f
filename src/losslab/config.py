"""Hooks the configs under ``conf/`` rely on; registered when ``losslab`` is imported (cheap: omegaconf/hydra only).

- ``${losslab.root:}``: the checkout (folder of ``train.py``), so the MLflow store and run dirs are absolute.
- ``${losslab.resource:vader/train.jsonl.gz}``: a file shipped inside the package.
- ``${losslab.greater_is_better:${task.objective}}``: whether a larger value of a metric is better, from the metric
  suites' one declaration (:data:`losslab.metrics.LOWER_IS_BETTER`); the task's and the Trainer's
  ``greater_is_better`` are this, never typed by hand.
- ``${losslab.direction:${task.greater_is_better}}``: ``maximize`` / ``minimize``, for a sweeper's direction (a
  metric name works too: ``${losslab.direction:mae}`` is ``minimize``).
- ``/hydra/losslab/open_node``: an empty node whose struct flag is off. ``conf/trainer/default.yaml`` builds on it,
  so ``trainer.<any TrainingArguments field>=...`` works without Hydra's ``+`` prefix; misspelt fields are
  caught by :mod:`losslab.preflight` before anything loads.
"""

from __future__ import annotations

from losslab.launchers import slurm_gpus
from losslab.paths import project_root, resource


def greater_is_better(metric) -> bool:
    from losslab.metrics import greater_is_better as from_suite  # light: no evaluate, no torch

    name = str(metric).removeprefix("eval_")
    return False if name == "loss" else from_suite(name)  # the Trainer's own default: eval_loss, lower


def direction(up) -> str:
    """``maximize`` / ``minimize`` from a bool (``task.greater_is_better``) or a metric name."""
    if isinstance(up, str) and up.lower() not in ("true", "false"):
        up = greater_is_better(up)
    elif isinstance(up, str):
        up = up.lower() == "true"
    return "maximize" if up else "minimize"


def register() -> None:
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("losslab.root", lambda: str(project_root()), replace=True)
    OmegaConf.register_new_resolver("losslab.resource", resource, replace=True)
    OmegaConf.register_new_resolver("losslab.greater_is_better", greater_is_better, replace=True)
    OmegaConf.register_new_resolver("losslab.direction", direction, replace=True)
    OmegaConf.register_new_resolver("losslab.slurm_gpus", slurm_gpus, replace=True)
    open_node = OmegaConf.create({})
    OmegaConf.set_struct(open_node, False)
    ConfigStore.instance().store(group="hydra/losslab", name="open_node", node=open_node)
