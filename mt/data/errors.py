"""Errors raised while reading or preparing data; messages name the file, the line and the fix."""

from __future__ import annotations


class DataError(ValueError):
    """Data cannot be read or is malformed; the message names the file (and line) and the fix."""


class DataFileNotFoundError(DataError, FileNotFoundError):
    """A data file does not exist; the message names the path(s) looked at and how to provide it."""
