"""losslab's entry point: ``python train.py loss=huber task=regression`` (see ``python train.py --help``)."""

import hydra
from omegaconf import DictConfig

import losslab  # noqa: F401  (registers the config resolvers; imports no torch)


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from losslab.run import main as run

    return run(cfg)


if __name__ == "__main__":
    main()
