"""Hydra finds sweepers only inside the ``hydra_plugins`` namespace package: this is losslab's race sweeper's
entry there (the code is :mod:`losslab.race_sweeper`)."""
