"""Crash-safe training checkpoints: every variable of a run, written atomically each epoch."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import warnings
import zipfile

import keras
import numpy as np

from cyclegan_keras.errors import UsageError
from cyclegan_keras.run.outputs import staging_folder, write_errors, write_json
from cyclegan_keras.training.schedule import model_optimizers

LATEST = "latest"
STATE = "state.npz"
DAMAGED_PREFIX = "damaged-"  # checkpoints set aside by a resume; pruning never touches them
_NAME = re.compile(r"ckpt-(\d+)$")


class DamagedCheckpointError(UsageError):
    """No intact checkpoint is left to resume from; the message names the damaged ones."""


class TrainingStopped(RuntimeError):
    """Training stopped on a NaN or Inf loss; the last good checkpoint is kept."""


# The attributes of a CycleGAN that own variables; their names make the checkpoint keys.
_OWNERS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b", "pool_a", "pool_b")
KEYED = "keyed"  # meta.json "layout" of checkpoints whose arrays are keyed by variable names


def _unique(keyed: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, variable in keyed:
        if key in out:  # only where the structure itself repeats a name; the order then decides
            n = 2
            while f"{key}#{n}" in out:
                n += 1
            key = f"{key}#{n}"
        out[key] = variable
    return out


def state_variables(model: keras.Model) -> dict[str, keras.Variable]:
    """Every variable of ``model``'s training state, keyed by a name that says whose it is.

    Network variables are keyed by the model attribute and the layer (``generator_ab/res_3_conv_1/
    kernel``), pool variables by the pool; an optimizer's slots by the variable they belong to
    (``generator_optimizer/generator_ab/res_3_conv_1/kernel:momentums``), its counters by name
    (``generator_optimizer/iteration``). So a checkpoint restores by name: a change in variable order
    cannot put weights in the wrong block, and a renamed layer is a missing key, not a silent mix-up.
    """
    owner_of: dict[int, str] = {}
    keyed = []
    for owner in _OWNERS:
        layer = getattr(model, owner, None)
        for variable in getattr(layer, "variables", []):
            # Paths may start with the names of enclosing objects, which Keras numbers by creation
            # order (cycle_gan_1/pool_a/...): keep only what lies below the owner.
            key = f"{owner}/{variable.path.split(layer.name + '/', 1)[-1]}"
            keyed.append((key, variable))
            owner_of[id(variable)] = key
    keyed += [(f"model/{v.name}", v) for v in model.variables if id(v) not in owner_of]
    state = _unique(keyed)
    for key, variable in state.items():
        owner_of[id(variable)] = key
    for group, optimizer in model_optimizers(model).items():
        references = list(getattr(optimizer, "_trainable_variables", []))
        slots: dict[int, str] = {}
        # Keras optimizers keep one list per kind of slot, aligned with the variables they train. The
        # counters' paths start with a scope Keras numbers by creation order (adam_3/iteration):
        # their last part is the name.
        for attribute, value in vars(optimizer).items():
            if (
                isinstance(value, list)
                and value is not references
                and len(value) == len(references) > 0
                and all(isinstance(v, keras.Variable) for v in value)
            ):
                for reference, slot in zip(references, value):
                    slots[id(slot)] = f"{owner_of.get(id(reference), reference.path)}:{attribute.lstrip('_')}"
        state.update(
            _unique(
                [(f"{group}/{slots.get(id(v), v.path.rsplit('/', 1)[-1])}", v) for v in optimizer.variables]
            )
        )
    return state


def save_checkpoint(model: keras.Model, directory: str | os.PathLike, epoch: int, keep: int = 2) -> str:
    """Writes all of ``model``'s state after ``epoch`` (counted from 1) under ``directory``.

    The state is every model variable (the four networks, both image pools and their random
    state) and every optimizer variable (moments, step counts, learning rates), each stored under
    its ``state_variables`` key. It is written to a temporary folder, flushed, and renamed into
    place; then ``directory/latest`` is replaced atomically. An interruption at any moment leaves the
    previous checkpoint whole and current.

    Returns:
        The path of the new checkpoint folder.
    """
    directory = os.fspath(directory)
    name = f"ckpt-{epoch:05d}"
    final = os.path.join(directory, name)
    state = state_variables(model)
    # npz member names are file names inside a zip: keep the keys in a list beside them.
    arrays = {f"v{i:05d}": np.asarray(keras.ops.convert_to_numpy(v)) for i, v in enumerate(state.values())}
    staging = None
    try:
        with write_errors(final, "the checkpoint", lambda: last_good_checkpoint(directory)):
            os.makedirs(directory, exist_ok=True)
            staging = staging_folder(directory, f".{name}-")
            with open(os.path.join(staging, STATE), "wb") as file:
                np.savez(file, **arrays)
                file.flush()
                os.fsync(file.fileno())
            meta = {"epoch": epoch, "variables": len(arrays), "layout": KEYED, "keys": list(state)}
            meta["files"] = {STATE: _fingerprint(os.path.join(staging, STATE))}
            write_json(os.path.join(staging, "meta.json"), meta)
            if os.path.exists(final):
                shutil.rmtree(final)
            os.replace(staging, final)
            staging = None
            write_json(os.path.join(directory, LATEST), {"checkpoint": name, "epoch": epoch})
    finally:
        if staging is not None:  # the write failed or was interrupted: only ours to remove
            shutil.rmtree(staging, ignore_errors=True)
    _prune(directory, keep)
    return final


def last_good_checkpoint(directory: str | os.PathLike) -> str:
    """A sentence naming the newest checkpoint in ``directory``, for a message about a failed write."""
    found = latest_checkpoint(directory)
    if found is None:
        return "No epoch had finished yet."
    return (
        f"The last good checkpoint is kept: {found[0]!r} (epoch {found[1]}); free some space, then resume "
        "with --resume."
    )


def _fingerprint(path: str) -> dict:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return {"size": os.path.getsize(path), "sha256": digest.hexdigest()}


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """What is wrong with the checkpoint folder ``path`` (a missing, truncated or altered file), or None.

    Checkpoints record each file's size and SHA-256 in ``meta.json``; those of earlier versions, which
    do not, are checked by reading every array (the zip's own CRCs).
    """
    path = os.fspath(path)
    try:
        with open(os.path.join(path, "meta.json")) as file:
            meta = json.load(file)
        files = meta.get("files")
        if files is None:
            with np.load(os.path.join(path, STATE)) as stored:
                for key in stored.files:
                    stored[key]
            return None
        for name, expected in files.items():
            found = _fingerprint(os.path.join(path, name))
            if found["size"] != expected["size"]:
                return f"{name} has {found['size']} bytes, {expected['size']} were written"
            if found["sha256"] != expected["sha256"]:
                return f"{name} does not match the checksum written with it"
    except (OSError, ValueError, KeyError, TypeError, AttributeError, zipfile.BadZipFile) as error:
        return f"{type(error).__name__}: {error}"
    return None


def _checkpoints(directory: str) -> list[tuple[str, int]]:
    """The checkpoint folders in ``directory`` as ``(path, epoch)``, newest first."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = [(os.path.join(directory, n), int(m.group(1))) for n in names if (m := _NAME.match(n))]
    return sorted(found, key=lambda item: -item[1])


def intact_checkpoint(directory: str | os.PathLike, set_aside: bool = True) -> tuple[str, int] | None:
    """The newest checkpoint in ``directory`` that verifies (``checkpoint_problem``), as ``(path, epoch)``.

    Damaged ones newer than it are named in one warning each and, with ``set_aside``, renamed to
    ``damaged-ckpt-NNNNN`` (kept, never deleted). Returns None when there is no checkpoint at all.

    Raises:
        DamagedCheckpointError: there are checkpoints but none is intact; the message names them.
    """
    directory = os.fspath(directory)
    newest = latest_checkpoint(directory)
    # A folder newer than the "latest" pointer was renamed into place just before a crash: complete, but
    # its epoch's history row may be missing, so the pointer's epoch is the newest one resumed from.
    candidates = [c for c in _checkpoints(directory) if newest is None or c[1] <= newest[1]]
    damaged = []
    for path, epoch in candidates:
        problem = checkpoint_problem(path)
        if problem is None:
            for bad, why in damaged:
                _set_aside(bad, why, f"resuming from {os.path.basename(path)} (epoch {epoch})", set_aside)
            return path, epoch
        damaged.append((path, problem))
    if damaged:
        listed = "; ".join(f"{os.path.basename(p)}: {why}" for p, why in damaged)
        raise DamagedCheckpointError(
            f"No intact checkpoint in {directory!r} to resume from ({listed}). Nothing was changed; "
            "restore the folder from a backup, or start a new run with another --out."
        )
    return None


def _set_aside(path: str, problem: str, then: str, rename: bool) -> None:
    where = ""
    if rename:
        parent, name = os.path.split(path)
        target, n = os.path.join(parent, DAMAGED_PREFIX + name), 1
        while os.path.lexists(target):
            n += 1
            target = os.path.join(parent, f"{DAMAGED_PREFIX}{name}-{n}")
        os.replace(path, target)
        where = f", kept as {os.path.basename(target)}"
    warnings.warn(f"Checkpoint {path!r} is damaged ({problem}){where}; {then}.", UserWarning, stacklevel=3)


def latest_checkpoint(directory: str | os.PathLike) -> tuple[str, int] | None:
    """The newest complete checkpoint in ``directory`` as ``(path, epoch)``, or None.

    Complete means written to the end and renamed into place; ``intact_checkpoint`` also verifies it.
    """
    pointer = os.path.join(os.fspath(directory), LATEST)
    try:
        with open(pointer) as file:
            latest = json.load(file)
        return os.path.join(os.fspath(directory), latest["checkpoint"]), int(latest["epoch"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # a damaged pointer: the newest folder instead
        found = _checkpoints(os.fspath(directory))
        return found[0] if found else None


def restore_checkpoint(model: keras.Model, directory: str | os.PathLike, set_aside: bool = True) -> int:
    """Restores the newest intact checkpoint in ``directory`` into ``model``; returns its epoch (0 if none).

    ``model`` must be built with the same architecture and compiled; its optimizers are built here.
    Every variable is looked up by its ``state_variables`` key; checkpoints written by earlier
    versions of this package (variables stored by position) still restore. A damaged newer checkpoint
    is skipped with a warning (``intact_checkpoint``; ``set_aside`` renames it aside).

    Raises:
        UsageError: the checkpoint was written for another architecture or other layer names; the
            message names the first mismatch. Nothing is assigned then.
        DamagedCheckpointError: every checkpoint in ``directory`` is damaged.
    """
    found = intact_checkpoint(directory, set_aside=set_aside)
    if found is None:
        return 0
    path, epoch = found
    if hasattr(model, "build_optimizers"):
        model.build_optimizers()
    with open(os.path.join(path, "meta.json")) as file:
        meta = json.load(file)
    with np.load(os.path.join(path, STATE)) as stored:
        if meta.get("layout") == KEYED:
            values = {key: stored[f"v{i:05d}"] for i, key in enumerate(meta["keys"])}
            assignments = _match_keyed(path, state_variables(model), values)
        else:
            assignments = _match_positional(path, model, stored)
    for variable, value in assignments:
        variable.assign(value)
    return epoch


def _match_keyed(path: str, state: dict, values: dict) -> list:
    missing = [key for key in state if key not in values]
    unexpected = [key for key in values if key not in state]
    if missing or unexpected:
        first = (
            f"the model's {missing[0]!r} is not in it"
            if missing
            else f"its {unexpected[0]!r} is not in the model"
        )
        raise UsageError(
            f"Checkpoint {path!r} does not fit this model: {first} ({len(missing)} missing, "
            f"{len(unexpected)} unexpected). It was written by a run with other settings or layer names."
        )
    for key, variable in state.items():
        if tuple(values[key].shape) != tuple(variable.shape):
            raise UsageError(
                f"Checkpoint {path!r}: {key} has shape {values[key].shape} there but {tuple(variable.shape)} "
                "in the model: it was written by a run with other settings."
            )
    return [(variable, values[key]) for key, variable in state.items()]


def _match_positional(path: str, model: keras.Model, stored) -> list:
    """Checkpoints of version 0.1 stored each group's variables by position."""
    groups = {"model": list(model.variables)}
    groups.update({name: list(optimizer.variables) for name, optimizer in model_optimizers(model).items()})
    assignments = []
    for group, variables in groups.items():
        keys = sorted(key for key in stored.files if key.startswith(group + "/"))
        if len(keys) != len(variables):
            raise UsageError(
                f"Checkpoint {path!r} holds {len(keys)} {group} variables but the model has "
                f"{len(variables)}: it was written by a run with other settings."
            )
        for key, variable in zip(keys, variables):
            if tuple(stored[key].shape) != tuple(variable.shape):
                raise UsageError(
                    f"Checkpoint {path!r}: {variable.path} has shape {stored[key].shape} there but "
                    f"{tuple(variable.shape)} in the model: it was written by a run with other settings."
                )
            assignments.append((variable, stored[key]))
    return assignments


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


def _prune(directory: str, keep: int) -> None:
    names = sorted(n for n in os.listdir(directory) if n.startswith("ckpt-"))
    for name in names[:-keep] if keep > 0 else []:
        shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
    for name in os.listdir(directory):
        if name.startswith(".ckpt-"):  # staging folders of interrupted writes
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)
