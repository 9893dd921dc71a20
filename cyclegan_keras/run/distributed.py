"""tf.distribute for a training run: the strategy, which worker writes, and waits that end.

Every strategy trains with the same ``CycleGAN.train_step`` and the same input pipeline:

- ``default``: one device.
- ``mirrored``: every local GPU (every logical CPU device where there is no GPU), one process.
- ``multi_worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` over the processes that the
  ``TF_CONFIG`` environment variable names, one per machine, each with its local devices.

``batch_size`` is the global batch, split evenly over all replicas; each worker's pipeline reads only
its own replicas' share of every step (``data.train_dataset(input_context=...)``), so the images of a
step, over all workers, are those one process would read with the same global batch. Each replica keeps
its own image pool (a checkpoint holds the chief's; a resumed run gives every replica that one).

Only the chief writes into the run folder; the other workers' saves go to a temporary folder that is
removed (``worker_folder``), and they read the run folder only to resume from the chief's checkpoint,
so the run folder must be on storage every worker sees (NFS, a GCS FUSE mount, a Kubernetes volume).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import check_choice
from cyclegan_keras.training.config import STRATEGIES

_HOW = "see 'Several machines' in the README"


class WorkerError(RuntimeError):
    """Another worker did not start in time, or was lost during training; the message says what to do."""


class Interrupted(KeyboardInterrupt):
    """SIGTERM (or Ctrl-C) stopped a run between two steps; its last checkpoint is kept."""


@dataclass(frozen=True)
class Cluster:
    """The workers of a ``multi_worker`` run, as ``TF_CONFIG`` names them.

    Attributes:
        addresses: ``host:port`` of every task, the chief first (TensorFlow's order of workers).
        index: this process's place in ``addresses``.
    """

    addresses: tuple[str, ...]
    index: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def peers(self) -> list[str]:
        return [a for i, a in enumerate(self.addresses) if i != self.index]


def cluster_from_env() -> Cluster:
    """The cluster of ``TF_CONFIG``; raises ``UsageError`` saying what is wrong with it."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise UsageError(
            "--strategy multi_worker reads its workers from the TF_CONFIG environment variable, which is "
            f"not set; {_HOW}."
        )
    try:
        config = json.loads(text)
        jobs, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise UsageError(
            f"TF_CONFIG must be JSON with 'cluster' and 'task' ({{'type': ..., 'index': ...}}): {error}; "
            f"{_HOW}."
        ) from None
    other = sorted(set(jobs) - {"chief", "worker"})
    if other or kind not in ("chief", "worker"):
        raise UsageError(
            f"TF_CONFIG names {other or [kind]}: multi_worker training has 'chief' and 'worker' tasks only."
        )
    addresses = [*jobs.get("chief", []), *jobs.get("worker", [])]
    position = index + (len(jobs.get("chief", [])) if kind == "worker" else 0)
    if not 0 <= index < len(jobs.get(kind, [])):
        raise UsageError(f"TF_CONFIG's task {kind} {index} is not in its cluster {jobs}.")
    return Cluster(tuple(addresses), position)


def is_chief(strategy_name: str) -> bool:
    """Whether this process writes the run: always, except a ``multi_worker`` worker that is not the chief."""
    return strategy_name != "multi_worker" or cluster_from_env().is_chief


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"TF_CONFIG address {address!r} is not host:port.")
    return host, int(port)


def wait_for_workers(cluster: Cluster, timeout: float) -> None:
    """Waits until every other worker's port answers, holding this worker's port open meanwhile.

    TensorFlow's own wait for the cluster cannot be interrupted and never ends, so a worker started
    alone would hang; this wait is plain Python: it ends after ``timeout`` seconds with ``WorkerError``
    and stops at once on Ctrl-C or SIGTERM. A port answers while its worker waits here or once its
    TensorFlow server runs, so workers started in any order all get through.
    """
    _, port = _split(cluster.addresses[cluster.index])
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
    except OSError as error:
        listener.close()
        raise UsageError(
            f"This worker's port {port} (TF_CONFIG task {cluster.index}) cannot be opened: {error}."
        ) from None
    listener.listen(16)
    listener.setblocking(False)
    pending = list(cluster.peers)
    deadline = time.monotonic() + timeout
    print(
        f"Worker {cluster.index} of {len(cluster.addresses)}: waiting up to {timeout:g} s for "
        f"{', '.join(pending)} to start.",
        file=sys.stderr,
    )
    try:
        while pending:
            with contextlib.suppress(BlockingIOError):
                while True:  # answer the peers' checks so they do not queue up
                    listener.accept()[0].close()
            for address in list(pending):
                with contextlib.suppress(OSError):
                    socket.create_connection(_split(address), timeout=1).close()
                    pending.remove(address)
            if pending and time.monotonic() > deadline:
                raise WorkerError(
                    f"Waited {timeout:g} s for worker(s) {', '.join(pending)} (TF_CONFIG) to start; none "
                    "answered. Start every worker of TF_CONFIG's cluster (the same command, each with its "
                    "own task index), or raise --worker-timeout."
                )
            if pending:
                time.sleep(0.5)
    finally:
        listener.close()


def distribution_strategy(name: str, worker_timeout: float = 600.0):
    """The ``tf.distribute`` strategy called ``name`` (``default``, ``mirrored`` or ``multi_worker``).

    For ``multi_worker`` this must come before any other TensorFlow call of the process; it waits at
    most ``worker_timeout`` seconds for the other workers (``wait_for_workers``), then for
    TensorFlow's own connection, which it bounds by ending the process with a traceback.
    """
    check_choice("strategy", name, STRATEGIES)
    if name == "multi_worker":
        cluster = cluster_from_env()
        wait_for_workers(cluster, worker_timeout)
    import tensorflow as tf

    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name != "multi_worker":
        return tf.distribute.get_strategy()
    # All workers answered a moment ago; should one die before TensorFlow connects, its wait (which
    # holds the interpreter, so no Python timer could run) is ended from outside Python.
    faulthandler.dump_traceback_later(worker_timeout, exit=True)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    finally:
        faulthandler.cancel_dump_traceback_later()


def agree(strategy, value: int) -> tuple[int, int]:
    """The lowest and highest of every replica's ``value`` (a collective: every worker must call it)."""
    import tensorflow as tf

    def gather():
        return tf.distribute.get_replica_context().all_gather(tf.constant([value], tf.int64), axis=0)

    values = strategy.experimental_local_results(strategy.run(gather))[0].numpy()
    return int(values.min()), int(values.max())


class _Held:
    """SIGTERM held while training steps run (``signals_between_steps``): the signal that arrived."""

    active = False
    pending: str | None = None


@contextlib.contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM raises ``Interrupted``, as Ctrl-C does, rather than being ignored.

    TensorFlow's multi-worker runtime takes SIGTERM for itself (for preemption handling we do not use),
    which leaves ``kill`` without effect; this puts the signal back in Python's hands, and restores the
    previous handler afterwards. Within ``signals_between_steps`` the signal is held until the end of
    the step, or of the epoch's checkpoint, that runs when it arrives (a second one stops at once).
    Outside the main thread (where signals cannot be handled) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        message = f"stopped by {signal.Signals(signum).name}"
        if _Held.active and not _Held.pending:  # a second one does not wait
            _Held.pending = message
            return
        raise Interrupted(message)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def signals_between_steps() -> Iterator[None]:
    """Holds SIGTERM while ``model.fit`` runs, to be raised at a point between steps
    (``raise_held_signal``, called by a callback): raised anywhere, it could land inside a checkpoint
    being written, a TensorFlow writer or iterator being torn down, or a finalizer that swallows it
    (the run then went on, or the process crashed on its way out)."""
    _Held.active, _Held.pending = True, None
    try:
        yield
        raise_held_signal()  # one that arrived after the last callback
    finally:
        _Held.active = False


def raise_held_signal() -> None:
    """Raises ``Interrupted`` for a SIGTERM held by ``signals_between_steps``, if one arrived."""
    if _Held.pending:
        message, _Held.pending = _Held.pending, None
        raise Interrupted(message)


def take_back_sigterm() -> None:
    """Installs ``stop_on_sigterm``'s handler again after TensorFlow replaced it (it does so once it
    connects the workers)."""
    if threading.current_thread() is threading.main_thread():
        handler = signal.getsignal(signal.SIGTERM)
        if callable(handler):
            signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def worker_folder(out: str, chief: bool) -> Iterator[str]:
    """Where this worker saves: the run folder for the chief; for every other worker a temporary folder,
    removed afterwards (TensorFlow's pattern: every worker saves, since a save may need them all, but
    only the chief's saves are kept)."""
    if chief:
        yield out
        return
    folder = tempfile.mkdtemp(prefix="cyclegan-keras-worker-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def lost_worker(error: BaseException, checkpoints: str) -> WorkerError:
    """The error a worker raises when the step failed because another worker was lost."""
    from cyclegan_keras.run.checkpoint import latest_checkpoint

    found = latest_checkpoint(checkpoints)
    kept = f"the chief's checkpoint of epoch {found[1]} is kept" if found else "no epoch had finished yet"
    # TensorFlow's message leads with the op that failed ({{function_node ...}}), then says why.
    said = re.sub(r"\{\{.*?\}\}", "", (str(error).strip().splitlines() or [""])[0]).strip()[:300]
    return WorkerError(
        f"Lost contact with another worker during training ({type(error).__name__}: {said}); {kept}. "
        "Start every worker again with the same command and --resume."
    )
