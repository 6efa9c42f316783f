"""The identity of a job and of a sweep: what makes two jobs "the same job".

A job's identity is its composed, resolved config less where it writes (output dirs, the store). Nothing here
touches MLflow: :mod:`losslab.resume` looks jobs up by these hashes, :mod:`losslab.tracking` writes them as tags.
"""

from __future__ import annotations

import hashlib
import json

from omegaconf import DictConfig, OmegaConf

CONFIG_HASH_TAG = "losslab.config_hash"
SWEEP_HASH_TAG = "losslab.sweep_hash"
# where a job writes, not what it computes: left out of the identity of a job
PLACE_KEYS = {"paths": None, "tracking": None, "trainer": ("output_dir", "logging_dir", "disable_tqdm")}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def computed(cfg: DictConfig) -> dict:
    """What the job computes: its resolved config less where it writes."""
    conf = OmegaConf.to_container(cfg, resolve=True)
    for key, fields in PLACE_KEYS.items():
        if fields is None:
            conf.pop(key, None)
        else:
            for f in fields:
                conf.get(key, {}).pop(f, None)
    if not conf.get("task", {}).get("label_noise", 1):  # no noise (the default): a job keeps its pre-knob hash
        conf["task"].pop("label_noise")
    return conf


def config_hash(cfg: DictConfig) -> str:
    """The identity of a job. Two jobs with the same hash compute the same thing, whatever their directories
    or sweep."""
    return digest(computed(cfg))


def sweep_hash(config: DictConfig) -> str:
    """The identity of a sweep: its command-line overrides and sweeper parameters, less hydra/ overrides
    (the same sweep on another launcher is the same sweep)."""
    params = config.hydra.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    return digest({"overrides": sorted(config.hydra.overrides.task), "params": params,
                   "experiment": config.tracking.experiment})
