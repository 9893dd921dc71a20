"""One trainer per run folder: a lock that the operating system releases when its process ends.

The lock is ``flock`` on ``RUN_DIR/.cyclegan-keras.lock``, held for the life of the training process.
The kernel drops it when the process exits or is killed (``kill -9``, an out-of-memory kill, a lost
Colab runtime), so a crash never leaves a stale lock that blocks ``--resume``. On Linux, NFS (v4, and
v3 with its lock daemon), CIFS and most FUSE mounts honour ``flock``; where the call is missing (no
``fcntl``) or the filesystem refuses it, training goes on with a warning that says so.

The file is never removed: removing it would let a trainer that opened the old file and one that
made a new file both believe they hold the lock.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
import warnings
from collections.abc import Iterator

from cyclegan_keras.errors import UsageError

LOCK_FILE = ".cyclegan-keras.lock"
# flock errors that mean "this filesystem cannot lock", not "someone else holds it"
_CANNOT_LOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


class RunInUseError(UsageError):
    """Another process trains in the same run folder; the message names it (host and pid)."""


def _holder(path: str) -> str:
    # The holder writes its name just after it locks; give a fresh holder a moment to do so.
    for _ in range(5):
        with contextlib.suppress(OSError, ValueError):
            with open(path) as file:
                who = json.load(file)
            return f"process {who['pid']} on {who['host']} (since {who['since']})"
        time.sleep(0.1)
    return "another process"


@contextlib.contextmanager
def run_lock(out: str | os.PathLike) -> Iterator[None]:
    """Holds the run folder ``out``'s lock (creating ``out`` if needed) while the block runs.

    Raises:
        RunInUseError: another live process holds it; nothing in ``out`` is changed.
    """
    out = os.fspath(out)
    path = os.path.join(out, LOCK_FILE)
    try:
        import fcntl
    except ImportError:
        warnings.warn(
            f"This system has no flock, so nothing stops a second trainer in {out!r}: start one at a time.",
            UserWarning,
            stacklevel=3,
        )
        yield
        return
    os.makedirs(out, exist_ok=True)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            raise RunInUseError(
                f"{out!r} is in use by {_holder(path)}, which is training there: wait for it to end or "
                "stop it (a killed trainer releases the folder at once), or pass another --out."
            ) from None
        except OSError as error:
            if error.errno not in _CANNOT_LOCK:
                raise
            locked = False
            warnings.warn(
                f"The filesystem of {out!r} cannot lock files ({error.strerror}), so nothing stops a "
                "second trainer there: start one at a time.",
                UserWarning,
                stacklevel=3,
            )
        if locked:
            since = time.strftime("%Y-%m-%d %H:%M:%S")
            who = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": since})
            os.ftruncate(handle, 0)
            os.pwrite(handle, who.encode() + b"\n", 0)
        yield
    finally:
        os.close(handle)  # releases the lock
