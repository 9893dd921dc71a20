"""Crash-safe training checkpoints: every variable of a run, written atomically each epoch."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile

import keras
import numpy as np

LATEST = "latest"


class TrainingStopped(RuntimeError):
    """Training stopped on a NaN or Inf loss; the last good checkpoint is kept."""


def _state_variables(model: keras.Model) -> dict[str, list]:
    groups = {"model": list(model.variables)}
    for name in ("generator_optimizer", "discriminator_optimizer"):
        optimizer = getattr(model, name, None)
        if optimizer is not None:
            groups[name] = list(optimizer.variables)
    if "generator_optimizer" not in groups and getattr(model, "optimizer", None) is not None:
        groups["optimizer"] = list(model.optimizer.variables)
    return groups


def save_checkpoint(model: keras.Model, directory: str | os.PathLike, epoch: int, keep: int = 2) -> str:
    """Writes all of ``model``'s state after ``epoch`` (counted from 1) under ``directory``.

    The state is every model variable (the four networks, both image pools and their random
    state) and every optimizer variable (moments, step counts, learning rates). It is written to a
    temporary folder, flushed, and renamed into place; then ``directory/latest`` is replaced
    atomically. An interruption at any moment leaves the previous checkpoint whole and current.

    Returns:
        The path of the new checkpoint folder.
    """
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    name = f"ckpt-{epoch:05d}"
    staging = tempfile.mkdtemp(prefix=f".{name}-", dir=directory)
    arrays = {
        f"{group}/{i:05d}": np.asarray(keras.ops.convert_to_numpy(variable))
        for group, variables in _state_variables(model).items()
        for i, variable in enumerate(variables)
    }
    with open(os.path.join(staging, "state.npz"), "wb") as file:
        np.savez(file, **arrays)
        file.flush()
        os.fsync(file.fileno())
    _write_json(os.path.join(staging, "meta.json"), {"epoch": epoch, "variables": len(arrays)})
    final = os.path.join(directory, name)
    if os.path.exists(final):
        shutil.rmtree(final)
    os.replace(staging, final)
    _write_json(os.path.join(directory, LATEST), {"checkpoint": name, "epoch": epoch})
    _prune(directory, keep)
    return final


def latest_checkpoint(directory: str | os.PathLike) -> tuple[str, int] | None:
    """The newest complete checkpoint in ``directory`` as ``(path, epoch)``, or None."""
    pointer = os.path.join(os.fspath(directory), LATEST)
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as file:
        latest = json.load(file)
    return os.path.join(os.fspath(directory), latest["checkpoint"]), int(latest["epoch"])


def restore_checkpoint(model: keras.Model, directory: str | os.PathLike) -> int:
    """Restores the newest checkpoint in ``directory`` into ``model``; returns its epoch (0 if none).

    ``model`` must be built with the same architecture and compiled; its optimizers are built here.
    """
    found = latest_checkpoint(directory)
    if found is None:
        return 0
    path, epoch = found
    if hasattr(model, "build_optimizers"):
        model.build_optimizers()
    with np.load(os.path.join(path, "state.npz")) as state:
        for group, variables in _state_variables(model).items():
            stored = sorted(key for key in state.files if key.startswith(group + "/"))
            if len(stored) != len(variables):
                raise ValueError(
                    f"Checkpoint {path!r} holds {len(stored)} {group} variables but the model has "
                    f"{len(variables)}: it was written by a run with other settings."
                )
            for key, variable in zip(stored, variables):
                value = state[key]
                if tuple(value.shape) != tuple(variable.shape):
                    raise ValueError(
                        f"Checkpoint {path!r}: {variable.path} has shape {value.shape} there but "
                        f"{tuple(variable.shape)} in the model: it was written by a run with other settings."
                    )
                variable.assign(value)
    return epoch


class Checkpointer(keras.callbacks.Callback):
    """Saves a crash-safe checkpoint after every ``every`` epochs; stops on a NaN or Inf loss.

    A non-finite loss stops training at once and no checkpoint is written from then on, so the
    newest checkpoint is the last good one; ``stopped_on`` says what happened.

    Args:
        directory: where the checkpoints go (``save_checkpoint``).
        every: epochs between checkpoints.
        keep: how many checkpoints to keep.
    """

    def __init__(self, directory: str | os.PathLike, every: int = 1, keep: int = 2):
        super().__init__()
        self.directory = os.fspath(directory)
        self.every = every
        self.keep = keep
        self.stopped_on: str | None = None

    def _check(self, logs, where: str) -> bool:
        bad = {k: v for k, v in (logs or {}).items() if isinstance(v, float) and not math.isfinite(v)}
        if bad and self.stopped_on is None:
            self.stopped_on = f"non-finite loss at {where}: " + ", ".join(f"{k}={v}" for k, v in bad.items())
            self.model.stop_training = True
        return not bad

    def on_train_batch_end(self, batch, logs=None):
        self._check(_floats(logs), f"step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        if self._check(_floats(logs), f"epoch {epoch + 1}") and self.stopped_on is None:
            if (epoch + 1) % self.every == 0:
                save_checkpoint(self.model, self.directory, epoch + 1, keep=self.keep)


def _floats(logs) -> dict[str, float]:
    return {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}


def _write_json(path: str, data: dict) -> None:
    staging = f"{path}.tmp"
    with open(staging, "w") as file:
        json.dump(data, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(staging, path)


def _prune(directory: str, keep: int) -> None:
    names = sorted(n for n in os.listdir(directory) if n.startswith("ckpt-"))
    for name in names[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    for name in os.listdir(directory):
        if name.startswith(".ckpt-"):  # staging folders of interrupted writes
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
