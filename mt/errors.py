"""The errors a user can cause: each message names the key, file or line and the fix.

Commands turn these (and only these) into one `error: ...` line and exit status 2
(`mt.cli.common.friendly_errors`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno


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


# What to do about an operating-system failure on a named file, by errno.
_OS_FIXES = {
    errno.ENOSPC: "the disk is full: free space (files already written are intact)",
    errno.EDQUOT: "the disk quota is used up: free space (files already written are intact)",
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.EISDIR: "a directory is where a file should be: choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.ELOOP: "the path is a symlink loop: fix or remove the link",
    errno.ENAMETOOLONG: "the name is too long: choose a shorter path",
    errno.ENOENT: "check the path",
}


def os_error_message(error: OSError) -> str | None:
    """One line for an operating-system failure on a named file (full disk, permissions, a
    directory where a file should be, ...), or None for one without a file name (a bug)."""
    if error.filename is None:
        return None
    fix = _OS_FIXES.get(error.errno or -1, "check the path and the disk")
    where = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 else "")
    return f"{where}: {error.strerror or error}; {fix}"
