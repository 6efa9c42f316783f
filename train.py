"""losslab's entry point: ``python train.py loss=huber task=regression`` (see ``python train.py --help``)."""

import sys

import hydra
from omegaconf import DictConfig

import losslab  # noqa: F401  (registers the config resolvers; imports no torch)


@hydra.main(config_path="conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float:
    from losslab.run import main as run

    return run(cfg)


if __name__ == "__main__":
    from losslab.secrets import mask_console

    mask_console()  # a password in a URL (tracking.uri, a data path) is printed and logged as ***, Hydra's lines too
    from losslab.overrides import refuse_unknown_options

    refuse_unknown_options(sys.argv[1:], __file__)  # loss=hubber: "did you mean huber", before Hydra composes
    from losslab import distributed  # under torchrun: no sweep; ranks > 0 write into rank 0's run dir

    if {"-m", "--multirun"} & set(sys.argv[1:]):
        distributed.refuse_sweep()
    sys.argv += distributed.hydra_overrides(sys.argv[1:])
    main()
