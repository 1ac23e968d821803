"""The errors a user can cause: each message names the key, file or line and the fix.

Commands turn these (and only these) into one `error: ...` line and exit status 2
(`mt.cli.common.friendly_errors`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the key and the fix."""


class DataError(ValueError):
    """Data cannot be read or is malformed; the message names the file (and line) and the fix."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file does not exist; the message names the path(s) looked at and how to provide it."""


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the current configuration."""


class OutputError(OSError):
    """An output file cannot be written; the previous file, if any, is intact."""


class TrainingStopped(RuntimeError):
    """Training stopped on purpose (signal or numerical fault); a checkpoint was written."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError,
    DataError,
    CheckpointError,
    OutputError,
    TrainingStopped,
)
