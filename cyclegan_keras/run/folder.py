"""Run folders: is there a training run here, where does it stop, and may a new one start here.

One home for these questions, used by ``train``, ``cyclegan-keras train --resume``, the demo and
the training notebook (after a lost Colab session, ``resume_run`` is the one call to make).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from cyclegan_keras.errors import OutputExistsError, UsageError
from cyclegan_keras.run.checkpoint import latest_checkpoint
from cyclegan_keras.run.lock import LOCK_FILE
from cyclegan_keras.run.outputs import check_output_folder

CONFIG_FILE = "config.json"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class RunState:
    """A run folder's newest checkpoint.

    Attributes:
        out: the run folder.
        epoch: epochs done (the checkpoint was written after this one, counted from 1).
        total_epochs: the run's planned length from its ``config.json`` (None if it has none).
        checkpoint: the checkpoint folder.
    """

    out: str
    epoch: int
    total_epochs: int | None
    checkpoint: str

    def describe(self) -> str:
        of = f" of {self.total_epochs}" if self.total_epochs else ""
        where = os.path.relpath(self.checkpoint, self.out)
        return f"Resuming {self.out} at epoch {self.epoch}{of} from {where}"


def _saved_config(out: str) -> dict | None:
    try:
        with open(os.path.join(out, CONFIG_FILE)) as file:
            config = json.load(file)
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) and "crop_size" in config else None


def is_run_folder(out: str | os.PathLike) -> bool:
    """Whether ``out`` was made by a training run of this package (its ``config.json``, checkpoints, or
    the lock a trainer took before writing anything else)."""
    out = os.fspath(out)
    return (
        _saved_config(out) is not None
        or latest_checkpoint(os.path.join(out, CHECKPOINTS)) is not None
        or os.path.isfile(os.path.join(out, LOCK_FILE))
    )


def find_run(out: str | os.PathLike) -> RunState | None:
    """The run in ``out`` and where it stops, or None when it holds no checkpoint to resume from."""
    out = os.fspath(out)
    found = latest_checkpoint(os.path.join(out, CHECKPOINTS))
    if found is None:
        return None
    path, epoch = found
    config = _saved_config(out)
    return RunState(out, epoch, _total_epochs(config) if config else None, path)


def _total_epochs(config: dict) -> int | None:
    from cyclegan_keras.training.config import config_from_json

    try:
        return config_from_json(config).total_epochs
    except UsageError:  # a damaged setting: reading the run's settings says which (load_config)
        return None


def check_new_run(out: str | os.PathLike) -> None:
    """Refuses to start a new run in ``out`` when it holds a run with checkpoints, or other files.

    Raises:
        OutputExistsError: saying to pass ``--resume`` or another ``--out``.
    """
    out = os.fspath(out)
    if find_run(out) is not None:
        raise OutputExistsError(
            f"{out!r} already holds a training run. Pass --resume to continue it, or choose another --out."
        )
    # A run folder without a checkpoint stopped before its first epoch ended: starting again is safe.
    check_output_folder(out, is_run_folder, "training run")


def resume_run(
    model,
    out: str | os.PathLike,
    input_shape: tuple | None = None,
    verbose: bool = True,
    set_aside: bool = True,
) -> int:
    """Restores the newest intact checkpoint of the run in ``out`` into ``model``; returns the epochs done.

    Says what it resumed (``Resuming RUN_DIR at epoch N of M from checkpoints/ckpt-0000N``), or that
    there was nothing to resume (then ``model`` is untouched and 0 is returned), so that one call
    serves both the first session and every one after it. Pass the result as ``model.fit``'s
    ``initial_epoch``. A damaged newest checkpoint (a copy cut short, a host that died mid-sync) is
    named in a warning, renamed aside (``set_aside``), and the previous intact one is used.

    Args:
        model: a compiled ``CycleGAN`` of the run's architecture.
        out: the run folder (its ``checkpoints/`` are read).
        input_shape: the training batches' shape, e.g. ``(1, 256, 256, 3)``, to build ``model`` with
            when it is not built yet.
        verbose: print what happened.
        set_aside: rename damaged checkpoints to ``damaged-ckpt-NNNNN`` (only the process that
            writes the run should).

    Raises:
        DamagedCheckpointError: the run has checkpoints but none is intact; nothing is changed.
    """
    from cyclegan_keras.run.checkpoint import intact_checkpoint, restore_checkpoint

    checkpoints = os.path.join(os.fspath(out), CHECKPOINTS)
    found = intact_checkpoint(checkpoints, set_aside=set_aside)
    if found is None:
        if verbose:
            print(f"Nothing to resume in {os.fspath(out)} (no checkpoint yet): starting at epoch 1.")
        return 0
    if not model.built:
        if input_shape is None:
            raise UsageError(
                "resume_run needs input_shape=(batch, height, width, 3) to build the model first."
            )
        model.build(tuple(input_shape))
    epoch = restore_checkpoint(model, checkpoints, set_aside=set_aside)
    if verbose:
        config = _saved_config(os.fspath(out))
        total = _total_epochs(config) if config else None
        print(RunState(os.fspath(out), epoch, total, found[0]).describe())
    return epoch
