"""Errors a user can fix: the command line shows them in one line (exit status 2), without a traceback.

Every other exception is a bug or an environment failure, and keeps its traceback.
"""

from __future__ import annotations


class UsageError(ValueError):
    """Bad input or options: the message says what to pass instead."""


class MissingInputError(UsageError, FileNotFoundError):
    """A file or folder the user named does not exist (or holds nothing usable)."""


class OutputExistsError(UsageError, FileExistsError):
    """An output path holds something this package did not write; nothing was touched."""


class MissingExtraError(UsageError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class WriteError(OSError):
    """A file could not be written (a full disk, a read-only folder); the message names the path and the
    cause. Nothing half-written is left under the final name. The command line exits 1 on it."""


class DatasetUnavailableError(RuntimeError):
    """A ``tfds`` dataset could not be downloaded or prepared; the message says how to train from folders."""
