"""Errors that are the user's to fix: shown as one message, without a traceback, in a single run.

Their text is masked by :mod:`losslab.secrets` wherever it is shown (the console, the ``error`` tag,
``error.txt``): a message that quotes ``tracking.uri`` or a data path never shows its password."""


class UsageError(ValueError):
    """The command, the config or the data cannot run as given; the message says what to change."""

    def __str__(self) -> str:
        from losslab.secrets import mask_text

        return mask_text(super().__str__())


class ConfigError(UsageError):
    """The composed config cannot run; the message says what to change."""


class DataError(UsageError):
    """The task's data cannot be used as configured."""
