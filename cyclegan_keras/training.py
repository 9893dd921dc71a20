"""A whole training run, as ``cyclegan-keras train`` does it: data, model, callbacks, artefacts."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from cyclegan_keras.checkpoint import Checkpointer, TrainingStopped, latest_checkpoint
from cyclegan_keras.config import STRATEGIES, TrainConfig, check_choice, config_from_json
from cyclegan_keras.data import domain_folders, tfds_images, train_dataset
from cyclegan_keras.errors import UsageError
from cyclegan_keras.images import image_files, resized_images, to_float
from cyclegan_keras.model import CycleGAN, official_adam
from cyclegan_keras.networks import generator, patchgan_discriminator
from cyclegan_keras.runs import CHECKPOINTS, check_new_run, find_run, resume_run
from cyclegan_keras.samples import SampleImages
from cyclegan_keras.schedule import LinearDecay
from cyclegan_keras.version import __version__


@dataclass
class RunResult:
    """What a finished run left: its folder, the epoch it reached, and the saved generators."""

    out: str
    epoch: int
    generator_ab: str
    generator_ba: str
    history: dict


def build_generator(config: TrainConfig, name: str) -> keras.Model:
    """The generator that ``config.generator`` names."""
    return generator(config.generator, ngf=config.ngf, name=name)


def build_cyclegan(config: TrainConfig) -> CycleGAN:
    """The CycleGAN of ``config``, compiled with the official Adam at ``config.lr`` and ``config.beta1``."""
    model = CycleGAN(
        build_generator(config, "generator_ab"),
        build_generator(config, "generator_ba"),
        patchgan_discriminator(config.n_layers_d, config.ndf, name="discriminator_a"),
        patchgan_discriminator(config.n_layers_d, config.ndf, name="discriminator_b"),
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
        jit_compile=config.jit_compile,
        steps_per_execution=config.steps_per_execution,
    )
    return model


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local GPUs) or ``multi_worker`` (machines named by
    the ``TF_CONFIG`` environment variable), as ``tf.distribute`` strategies."""
    check_choice("strategy", name, STRATEGIES)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def _domains(config: TrainConfig) -> dict[str, list]:
    if config.data_dir:
        return {split: image_files(path) for split, path in domain_folders(config.data_dir).items()}
    splits = {split: tfds_images(config.dataset, split) for split in ("trainA", "trainB")}
    for split in ("testA", "testB"):
        try:
            splits[split] = tfds_images(config.dataset, split, download=False)
        except Exception:  # test splits only feed the sample grids
            continue
    return splits


def _evaluator(config: TrainConfig, splits: dict) -> list:
    if not config.eval_every:
        return []
    from cyclegan_keras.evaluation import EvaluateEvery

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


def _sample_images(sources: list, config: TrainConfig) -> np.ndarray:
    return to_float(np.stack(resized_images(sources, config.crop_size, config.num_samples)))


def _versions() -> dict:
    import PIL

    return {
        "cyclegan_keras": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def load_config(out: str) -> TrainConfig:
    """The ``TrainConfig`` a run saved in ``out/config.json`` (also one that an earlier version wrote)."""
    with open(os.path.join(out, "config.json")) as file:
        return config_from_json(json.load(file))


def _trim_history(path: str, epochs_done: int) -> None:
    # Rows of epochs after the checkpoint would be repeated by the resumed run.
    if not os.path.isfile(path):
        return
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    kept = rows[:1] + [row for row in rows[1:] if row and int(row[0]) < epochs_done]
    with open(path, "w", newline="") as file:
        csv.writer(file).writerows(kept)


def train(
    config: TrainConfig,
    resume: bool = False,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
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

    Raises:
        OutputExistsError: ``resume`` is False and ``config.out`` holds a run with checkpoints, or
            files of something else; nothing there is touched.
        TrainingStopped: a loss became NaN or Inf; the last good checkpoint is kept.
    """
    out = config.out
    checkpoints = os.path.join(out, CHECKPOINTS)
    if not resume or find_run(out) is None:
        check_new_run(out)
    os.makedirs(out, exist_ok=True)
    config.versions = _versions()
    with open(os.path.join(out, "config.json"), "w") as file:
        json.dump(dataclasses.asdict(config), file, indent=2)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        return _run(config, checkpoints, resume, verbose, list(callbacks))
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _run(config: TrainConfig, checkpoints: str, resume: bool, verbose, extra_callbacks: list) -> RunResult:
    out = config.out
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    splits = _domains(config)
    strategy = distribution_strategy(config.strategy)
    with strategy.scope():
        model = build_cyclegan(config)
        start = 0
        if resume:
            shape = (config.batch_size, config.crop_size, config.crop_size, 3)
            model.build(shape if config.preprocessing().crops else (config.batch_size, None, None, 3))
            start = resume_run(model, out, verbose=verbose != 0)
    data = train_dataset(
        splits["trainA"],
        splits["trainB"],
        batch_size=config.batch_size,
        preprocessing=config.preprocessing(),
        seed=config.seed,
        steps_per_epoch=config.steps_per_epoch,
        start_epoch=start,
        cache=config.cache,
    )
    history_path = os.path.join(out, "history.csv")
    _trim_history(history_path, start)
    checkpointer = Checkpointer(checkpoints)
    samples = SampleImages(
        _sample_images(splits.get("testA", splits["trainA"]), config),
        _sample_images(splits.get("testB", splits["trainB"]), config),
        os.path.join(out, "samples"),
        every=config.sample_every,
        log_dir=os.path.join(out, "logs"),
    )
    callbacks = [
        LinearDecay(config.n_epochs, config.n_epochs_decay, config.lr),
        checkpointer,  # before the CSV row, so a row never claims an epoch that has no checkpoint
        *_evaluator(config, splits),  # after the checkpointer, whose NaN check its NaN gaps would trip
        keras.callbacks.CSVLogger(history_path, append=start > 0),
        samples,
        keras.callbacks.TensorBoard(os.path.join(out, "logs")),
        *extra_callbacks,
    ]
    history = {}
    if start < config.total_epochs:
        fit = model.fit(
            data.dataset,
            epochs=config.total_epochs,
            steps_per_epoch=data.steps_per_epoch,
            initial_epoch=start,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, reproducibly
        )
        history = fit.history
    if checkpointer.stopped_on:
        raise TrainingStopped(
            f"Training stopped: {checkpointer.stopped_on}. The last good checkpoint is kept in "
            f"{checkpoints!r}; lower --lr or check the data, then resume with --resume."
        )
    paths = {}
    for name in ("generator_ab", "generator_ba"):
        paths[name] = os.path.join(out, f"{name}.keras")
        getattr(model, name).save(paths[name])
    found = latest_checkpoint(checkpoints)
    return RunResult(out, found[1] if found else start, paths["generator_ab"], paths["generator_ba"], history)
