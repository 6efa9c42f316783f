"""What the MLflow UI shows (issue 16), without a browser: the swept keys a multirun's jobs are named by, and a
job's run name, which follows the report's rule for its rows (``huber · delta=0.5 · seed=1``)."""

from __future__ import annotations

import pytest
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from conftest import compose
from losslab import ui


def _multirun(fixed: list[str], swept: list[str], job: list[str]):
    """The config a sweep's launching process sees (its overrides as typed) and one job's config."""
    launching = compose(fixed, hydra=True)
    with open_dict(launching):
        launching.hydra.overrides.task = fixed + swept
    return launching, compose(fixed + job, hydra=True)


@pytest.mark.parametrize("fixed, swept, job, keys, name", [
    ([], ["loss=mse,huber", "seed=1,2"], ["loss=huber", "seed=2"], ["loss", "seed"], "huber · seed=2"),
    (["loss=huber"], ["loss.delta=0.5,1.0", "seed=1,2", "hydra/launcher=joblib"], ["loss.delta=0.5", "seed=1"],
     ["loss.delta", "seed"], "huber · delta=0.5 · seed=1"),
    (["experiment=regression_losses"], [], ["loss=mae", "seed=3"], ["loss", "seed"], "mae · seed=3"),
    (["hparams_search=huber_delta"], [], ["loss.delta=1.4553179565665342"], ["loss.delta"], "huber · delta=1.455"),
    ([], ["loss=mse,huber", "model=tiny,minilm"], ["loss=mse", "model=tiny"], ["loss", "model"], "mse · model=tiny"),
])
def test_jobs_are_named_by_what_their_sweep_varies(fixed, swept, job, keys, name):
    launching, cfg = _multirun(fixed, swept, job)
    assert ui.swept_keys(launching) == keys
    HydraConfig.instance().set_config(cfg)
    try:
        assert ui.job_name(cfg, keys) == name
        assert ui.job_name(cfg, []) == name.split(" · ")[0]  # a single run: its loss
    finally:
        HydraConfig.instance().cfg = None
