"""``hydra/sweeper=race`` (set by ``race=losses``): :class:`losslab.race_sweeper.RaceSweeper` under the name
Hydra's plugin registry accepts."""

from losslab.race_sweeper import RaceSweeper as _RaceSweeper


class RaceSweeper(_RaceSweeper):
    pass
