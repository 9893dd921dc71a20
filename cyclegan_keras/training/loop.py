"""A whole training run, as ``cyclegan-keras train`` does it: data, model, callbacks, artefacts."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np

from cyclegan_keras.data.folders import domain_folders
from cyclegan_keras.data.images import image_files, resized_images, to_channels, to_float
from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.architectures import generator
from cyclegan_keras.networks.discriminators import discriminator
from cyclegan_keras.networks.style import Style
from cyclegan_keras.run.checkpoint import (
    Checkpointer,
    TrainingStopped,
    last_good_checkpoint,
    latest_checkpoint,
)
from cyclegan_keras.run.distributed import (
    agree,
    distribution_strategy,
    is_chief,
    lost_worker,
    raise_held_signal,
    signals_between_steps,
    stop_on_sigterm,
    take_back_sigterm,
    worker_folder,
)
from cyclegan_keras.run.folder import CHECKPOINTS, check_new_run, find_run, resume_run
from cyclegan_keras.run.lock import run_lock
from cyclegan_keras.run.outputs import WRITE_ERRNOS, staged_file, write_errors, write_json
from cyclegan_keras.system.budget import check_training_memory
from cyclegan_keras.system.hardware import check_precision
from cyclegan_keras.training.backends import (
    backend_version,
    check_backend_options,
    device_names,
    input_pipeline,
    keep_compiled_steps,
    make_deterministic,
)
from cyclegan_keras.training.backends import select_backend as _select_backend
from cyclegan_keras.training.config import TrainConfig, config_from_json
from cyclegan_keras.training.model import CycleGAN
from cyclegan_keras.training.optimizers import official_adam
from cyclegan_keras.training.samples import SampleImages
from cyclegan_keras.training.schedule import LearningRatePolicy
from cyclegan_keras.version import __version__


@dataclass
class RunResult:
    """What a finished run left: its folder, the epoch it reached, and the saved generators."""

    out: str
    epoch: int
    generator_ab: str
    generator_ba: str
    history: dict


def network_style(config: TrainConfig) -> Style:
    """The norm and initialisation that ``config`` gives all four networks."""
    return Style(config.norm, config.init_type, config.init_gain)


def build_generator(config: TrainConfig, name: str) -> keras.Model:
    """The generator that ``config.generator`` names: ``generator_ab`` maps ``input_nc`` channels to
    ``output_nc``, ``generator_ba`` back."""
    channels = (config.input_nc, config.output_nc)
    source, target = channels if name != "generator_ba" else channels[::-1]
    return generator(
        config.generator,
        ngf=config.ngf,
        name=name,
        input_channels=source,
        output_channels=target,
        use_dropout=config.dropout,
        style=network_style(config),
    )


def build_discriminator(config: TrainConfig, name: str) -> keras.Model:
    """The discriminator that ``config.netd`` names: ``discriminator_a`` judges domain A's images,
    ``discriminator_b`` domain B's."""
    return discriminator(
        config.netd,
        config.ndf,
        config.discriminator_layers,
        input_channels=config.input_nc if name == "discriminator_a" else config.output_nc,
        name=name,
        style=network_style(config),
    )


def build_cyclegan(config: TrainConfig) -> CycleGAN:
    """The CycleGAN of ``config``, compiled with the official Adam at ``config.lr`` and ``config.beta1``."""
    model = CycleGAN(
        build_generator(config, "generator_ab"),
        build_generator(config, "generator_ba"),
        build_discriminator(config, "discriminator_a"),
        build_discriminator(config, "discriminator_b"),
        lambda_a=config.lambda_a,
        lambda_b=config.lambda_b,
        lambda_identity=config.lambda_identity,
        pool_size=config.pool_size,
        gan_mode=config.gan_mode,
        seed=config.seed,
    )
    model.compile(
        generator_optimizer=official_adam(config.lr, config.beta1),
        discriminator_optimizer=official_adam(config.lr, config.beta1),
        jit_compile=_jit_compile(config),
        steps_per_execution=config.steps_per_execution,
    )
    return model


# Why --jit-compile is not used on PyTorch (said when the run starts).
TORCH_JIT_NOTE = (
    "--jit-compile on PyTorch: torch.compile recompiles the CycleGAN step over and over (158 s for the "
    "first 4 steps of a 32 px run here, docs/benchmarks.md): the step runs in PyTorch's own functions "
    "instead, uncompiled."
)


def _jit_compile(config: TrainConfig) -> bool:
    """Whether Keras compiles the step: always on JAX (uncompiled it runs op by op, docs/benchmarks.md),
    never on PyTorch (``TORCH_JIT_NOTE``), else as ``--jit-compile`` says."""
    backend = keras.backend.backend()
    return backend == "jax" or (config.jit_compile and backend != "torch")


def _domains(config: TrainConfig) -> dict[str, list]:
    """The images of each split as the run sees them: ``--direction BtoA`` swaps A and B, and
    ``--max-dataset-size`` keeps the first images of each (in sorted order, as the official code)."""
    if config.data_dir:
        splits = {split: image_files(path) for split, path in domain_folders(config.data_dir).items()}
    else:
        from cyclegan_keras.data.tfds import tfds_images

        splits = {split: tfds_images(config.dataset, split) for split in ("trainA", "trainB")}
        for split in ("testA", "testB"):
            try:
                splits[split] = tfds_images(config.dataset, split, download=False)
            except Exception:  # test splits only feed the sample grids
                continue
    if config.direction == "BtoA":
        splits = {split[:-1] + {"A": "B", "B": "A"}[split[-1]]: images for split, images in splits.items()}
    return {split: images[: config.max_dataset_size] for split, images in splits.items()}


def _evaluator(config: TrainConfig, splits: dict) -> list:
    if not config.eval_every:
        return []
    try:
        from cyclegan_keras.evaluation.evaluate import EvaluateEvery
    except ImportError as error:
        raise UsageError(
            f"--eval-every scores with the Inception graph, which runs on TensorFlow ({error}): install "
            "tensorflow, or train without --eval-every and run `cyclegan-keras evaluate` afterwards."
        ) from None

    missing = [split for split in ("testA", "testB") if split not in splits]
    if missing:
        raise UsageError(f"--eval-every scores the test splits, but the data has no {' or '.join(missing)}.")
    return [
        EvaluateEvery(
            config.eval_every,
            splits["testA"],
            splits["testB"],
            config.out,
            size=config.crop_size,
            inception=config.inception,
        )
    ]


def _sample_images(sources: list, config: TrainConfig, channels: int) -> np.ndarray:
    images = resized_images(sources, config.crop_size, config.num_samples)
    return to_float(np.stack([to_channels(image, channels) for image in images]))


def _versions() -> dict:
    import PIL

    backend = keras.backend.backend()
    return {
        "cyclegan_keras": __version__,
        "keras": keras.__version__,
        backend: backend_version(backend),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def load_config(out: str) -> TrainConfig:
    """The ``TrainConfig`` a run saved in ``out/config.json`` (also one that an earlier version wrote).

    Raises:
        UsageError: the file cannot be read, is not JSON, or holds a setting that a flag would refuse;
            the message names the file and what to do.
    """
    path = os.path.join(out, "config.json")
    try:
        with open(path) as file:
            saved = json.load(file)
        return config_from_json(saved)
    except (OSError, ValueError, UsageError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise UsageError(
            f"--resume cannot read the run's settings in {path!r} ({reason}): mend the file (the README "
            "lists the settings), or start a new run with another --out."
        ) from error


def _trim_history(path: str, epochs_done: int) -> None:
    # Rows of epochs after the checkpoint would be repeated by the resumed run.
    if not os.path.isfile(path):
        return
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    if not rows:
        return

    def done(row: list) -> bool:  # a row cut short by a full disk is not a finished epoch
        return bool(row) and row[0].isdigit() and int(row[0]) < epochs_done and len(row) == len(rows[0])

    kept = rows[:1] + [row for row in rows[1:] if done(row)]
    with staged_file(path, "the history") as staging, open(staging, "w", newline="") as file:
        csv.writer(file).writerows(kept)


class _StopOnSignal(keras.callbacks.Callback):
    """Raises a SIGTERM that arrived during ``fit`` at the next point between steps."""

    def on_train_batch_end(self, batch, logs=None):
        raise_held_signal()

    def on_epoch_end(self, epoch, logs=None):
        raise_held_signal()


def train(
    config: TrainConfig,
    resume: bool = False,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
    notes: Sequence[str] = (),
) -> RunResult:
    """Runs (or resumes) a whole training run into ``config.out``.

    The run folder gets ``config.json``, ``history.csv``, TensorBoard logs in ``logs/``, a sample grid
    per epoch in ``samples/``, crash-safe checkpoints in ``checkpoints/``, and at the end
    ``generator_ab.keras`` and ``generator_ba.keras``. With ``eval_every``, FID/KID columns in the
    history and ``best_generator_ab.keras`` with ``best.json`` (``EvaluateEvery``).

    Args:
        config: the settings. To resume, pass the run's own (``load_config(out)``), with ``epochs``
            and ``n_epochs_decay`` raised to train longer if wanted.
        resume: continue from the newest checkpoint in ``config.out`` (``resume_run``: it says what it
            resumed, or that there is nothing to resume and the run starts at epoch 1).
        verbose: ``model.fit``'s verbosity.
        callbacks: more ``model.fit`` callbacks, run after the run's own (checkpoints, history,
            samples, TensorBoard).
        notes: lines printed after the first line of output (``setup_line``), e.g. what a resume
            changes.

    Raises:
        OutputExistsError: ``resume`` is False and ``config.out`` holds a run with checkpoints, or
            files of something else; nothing there is touched.
        TrainingStopped: a loss became NaN or Inf; the last good checkpoint is kept.
        WorkerError: ``multi_worker`` only: the other workers did not start within
            ``config.worker_timeout`` seconds, or one was lost during training.
        Interrupted: SIGTERM stopped training (a ``KeyboardInterrupt``, as Ctrl-C is); the last
            checkpoint is kept.
    """
    backend = keras.backend.backend()
    if config.backend:
        _select_backend(config.backend)  # refuses another backend than the one Keras runs on
    config.backend = backend
    check_backend_options(config, backend)
    keep_compiled_steps(backend)
    check_training_memory(config)
    with stop_on_sigterm():
        chief = is_chief(config.strategy)
        if chief:
            _check_folder(config.out, resume)  # before the waits and the lock, which would make the folder
        # Before anything else touches TensorFlow: the multi-worker runtime must start first.
        tensorflow = config.backend == "tensorflow"
        strategy = distribution_strategy(config.strategy, config.worker_timeout) if tensorflow else None
        take_back_sigterm()
        if backend == "torch" and config.jit_compile:
            notes = [*notes, TORCH_JIT_NOTE]
        if chief and verbose != 0:
            print(setup_line(config), *notes, sep="\n", flush=True)
        if not chief:
            return _start(config, strategy, resume, verbose, list(callbacks), chief)
        with run_lock(config.out):
            _check_folder(config.out, resume)  # a run that started and ended meanwhile
            # The checkpoints, samples and generators name what failed themselves; this catches the rest
            # (the history, the TensorBoard logs).
            kept = functools.partial(last_good_checkpoint, os.path.join(config.out, CHECKPOINTS))
            with write_errors(config.out, "into the run folder", kept, only=WRITE_ERRNOS):
                return _start(config, strategy, resume, verbose, list(callbacks), chief)


def setup_line(config: TrainConfig) -> str:
    """What a run trains with, in one line: the versions, the backend, the devices, the precision."""
    backend = keras.backend.backend()
    devices = ", ".join(device_names(backend))
    return (
        f"cyclegan-keras {__version__}: Keras {keras.__version__} on {backend} {backend_version(backend)}, "
        f"devices {devices}, precision {config.precision}"
    )


def _check_folder(out: str, resume: bool) -> None:
    if not resume or find_run(out) is None:
        check_new_run(out)


def _start(config: TrainConfig, strategy, resume: bool, verbose, callbacks: list, chief: bool) -> RunResult:
    out = config.out
    devices = device_names(config.backend)
    check_precision(config.precision, [d for d in devices if not d.lower().startswith("cpu")])
    if chief:
        config.versions = _versions()
        write_json(os.path.join(out, "config.json"), dataclasses.asdict(config), "the run's settings")
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        with worker_folder(out, chief) as saves:
            # From the first collective on (building the model broadcasts its weights), a worker that
            # died or was stopped fails the others' ops: one line for that, whichever phase it was in.
            try:
                return _run(config, strategy, saves, resume, verbose, callbacks)
            except Exception as error:
                if config.strategy != "multi_worker" or not _lost_contact(error):
                    raise
                raise lost_worker(error, os.path.join(out, CHECKPOINTS)) from error
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _lost_contact(error: Exception) -> bool:
    import tensorflow as tf

    return isinstance(
        error, (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.DeadlineExceededError)
    )


def _batch_shape(config: TrainConfig, replicas: int) -> tuple:
    size = config.crop_size if config.preprocessing().crops else None
    return (config.batch_size // replicas, size, size, config.input_nc)


def _training_data(strategy, splits: dict, config: TrainConfig, start: int):
    """The training batches and the steps of an epoch: ``tf.data`` (distributed by ``strategy``), or
    the Python pipeline (``UnpairedImages``)."""
    options = {
        "batch_size": config.batch_size,
        "preprocessing": config.preprocessing(),
        "seed": config.seed,
        "steps_per_epoch": config.steps_per_epoch,
        "start_epoch": start,
        "cache": config.cache,
        "serial": config.serial_batches,
        "channels": (config.input_nc, config.output_nc),
    }
    if input_pipeline(config, config.backend) == "python":
        from cyclegan_keras.data.python import UnpairedImages

        data = UnpairedImages(splits["trainA"], splits["trainB"], **options)
        return data, data.steps_per_epoch
    from cyclegan_keras.data.tf_data import train_dataset

    if strategy is None:  # tf.data on another backend
        data = train_dataset(splits["trainA"], splits["trainB"], **options)
        return data.dataset, data.steps_per_epoch
    made = []

    def dataset_fn(context):
        made.append(train_dataset(splits["trainA"], splits["trainB"], **options, input_context=context))
        return made[-1].dataset

    dataset = strategy.distribute_datasets_from_function(dataset_fn)
    return dataset, made[0].steps_per_epoch


def _chief_callbacks(config: TrainConfig, splits: dict, start: int) -> list:
    """The callbacks that write the run's shared files (history, samples, scores, logs): one worker's."""
    out = config.out
    history_path = os.path.join(out, "history.csv")
    _trim_history(history_path, start)
    # TensorBoard's writers are TensorFlow's: logs/ comes with the TensorFlow backend only.
    logs = os.path.join(out, "logs") if config.backend == "tensorflow" else None
    samples = SampleImages(
        _sample_images(splits.get("testA", splits["trainA"]), config, config.input_nc),
        _sample_images(splits.get("testB", splits["trainB"]), config, config.output_nc),
        os.path.join(out, "samples"),
        every=config.sample_every,
        log_dir=logs,
    )
    return [
        *_evaluator(config, splits),  # after the checkpointer, whose NaN check its NaN gaps would trip
        keras.callbacks.CSVLogger(history_path, append=start > 0),
        samples,
        *([keras.callbacks.TensorBoard(logs)] if logs else []),
    ]


def _run(
    config: TrainConfig, strategy, saves: str, resume: bool, verbose, extra_callbacks: list
) -> RunResult:
    """Trains; reads the run folder ``config.out`` to resume and writes into ``saves`` (``worker_folder``)."""
    out = config.out
    chief = saves == out
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        make_deterministic(config.backend)
    replicas = strategy.num_replicas_in_sync if strategy else 1  # train_dataset checks the batch splits
    splits = _domains(config)
    with strategy.scope() if strategy else contextlib.nullcontext():
        model = build_cyclegan(config)
        # Built here rather than by fit: a distributed dataset does not tell fit its shape up front.
        model.build(_batch_shape(config, replicas))
        model.build_optimizers()
        start = resume_run(model, out, verbose=verbose != 0 and chief, set_aside=chief) if resume else 0
    if config.strategy == "multi_worker":
        low, high = agree(strategy, start)
        if low != high:
            raise UsageError(
                f"The workers found different checkpoints to resume from (epochs {low} to {high}): every "
                f"worker must read the chief's run folder {out!r} (shared storage), and none its own copy."
            )
    dataset, steps_per_epoch = _training_data(strategy, splits, config, start)
    checkpointer = Checkpointer(os.path.join(saves, CHECKPOINTS))
    callbacks = [
        LearningRatePolicy(
            config.lr_policy, config.n_epochs, config.n_epochs_decay, config.lr, config.lr_decay_iters
        ),
        checkpointer,  # before the CSV row, so a row never claims an epoch that has no checkpoint
    ]
    if chief:  # the run's other files come from one worker
        callbacks += _chief_callbacks(config, splits, start)
    history = {}
    if start < config.total_epochs:
        with signals_between_steps():
            fit = model.fit(
                dataset,
                epochs=config.total_epochs,
                steps_per_epoch=steps_per_epoch,
                initial_epoch=start,
                # Last: a SIGTERM stops the run after the epoch's checkpoint and files are written.
                callbacks=[*callbacks, *extra_callbacks, _StopOnSignal()],
                verbose=verbose if chief else 0,
                shuffle=False,  # the pipeline shuffles, reproducibly
            )
        history = fit.history
    if checkpointer.stopped_on:
        raise TrainingStopped(
            f"Training stopped: {checkpointer.stopped_on}. The last good checkpoint is kept in "
            f"{os.path.join(out, CHECKPOINTS)!r}; lower --lr or check the data, then resume with --resume."
        )
    for name in ("generator_ab", "generator_ba"):
        with staged_file(os.path.join(saves, f"{name}.keras"), f"the trained {name}") as staging:
            getattr(model, name).save(staging)
    found = latest_checkpoint(os.path.join(saves, CHECKPOINTS))
    return RunResult(
        out,
        found[1] if found else start,
        os.path.join(out, "generator_ab.keras"),
        os.path.join(out, "generator_ba.keras"),
        history,
    )
