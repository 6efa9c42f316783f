"""losslab: which loss should I fine-tune with, and how much does it matter?

Importing this package is cheap (no torch, transformers, datasets or mlflow): it registers the OmegaConf
resolvers that the configs under ``conf/`` use, so composing and printing a config stays instant.
"""

from losslab import config

__version__ = "0.1.0"

config.register()
