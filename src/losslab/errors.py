"""Errors that are the user's to fix: shown as one message, without a traceback, in a single run."""


class UsageError(ValueError):
    """The command, the config or the data cannot run as given; the message says what to change."""


class ConfigError(UsageError):
    """The composed config cannot run; the message says what to change."""


class DataError(UsageError):
    """The task's data cannot be used as configured."""
