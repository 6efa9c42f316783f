"""Hooks the configs under ``conf/`` rely on; registered when ``losslab`` is imported (cheap: omegaconf/hydra only).

- ``${losslab.root:}``: the checkout (folder of ``train.py``), so the MLflow store and run dirs are absolute.
- ``${losslab.resource:vader/train.jsonl.gz}``: a file shipped inside the package.
- ``${losslab.direction:${task.greater_is_better}}``: ``maximize`` / ``minimize``, for a sweeper's direction.
- ``/hydra/losslab/open_node``: an empty node whose struct flag is off. ``conf/trainer/default.yaml`` builds on it,
  so ``trainer.<any TrainingArguments field>=...`` works without Hydra's ``+`` prefix; misspelt fields are
  caught by :mod:`losslab.preflight` before anything loads.
"""

from __future__ import annotations

from losslab.paths import project_root, resource


def register() -> None:
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("losslab.root", lambda: str(project_root()), replace=True)
    OmegaConf.register_new_resolver("losslab.resource", resource, replace=True)
    OmegaConf.register_new_resolver("losslab.direction", lambda up: "maximize" if up else "minimize", replace=True)
    open_node = OmegaConf.create({})
    OmegaConf.set_struct(open_node, False)
    ConfigStore.instance().store(group="hydra/losslab", name="open_node", node=open_node)
