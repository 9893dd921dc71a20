"""A whole training run, as ``cyclegan-keras train`` does it: data, model, callbacks, artefacts."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from cyclegan_keras.checkpoint import Checkpointer, TrainingStopped, latest_checkpoint, restore_checkpoint
from cyclegan_keras.data import Preprocessing, domain_folders, tfds_images, train_dataset
from cyclegan_keras.images import image_files, resized_images, to_float
from cyclegan_keras.model import CycleGAN, official_adam
from cyclegan_keras.networks import patchgan_discriminator, resnet_generator, unet_generator
from cyclegan_keras.samples import SampleImages
from cyclegan_keras.schedule import LinearDecay
from cyclegan_keras.version import __version__

GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("default", "mirrored", "multi_worker")


@dataclass
class TrainConfig:
    """Every setting of a run; the defaults are the official CycleGAN recipe.

    Data comes from ``data_dir`` (trainA/trainB folders) when given, else from the ``tfds`` dataset
    ``cycle_gan/<dataset>``. ``epochs`` run at the full learning rate, then ``epochs_decay`` decay it
    linearly to zero. ``steps_per_epoch`` shortens epochs for quick runs. ``deterministic`` turns on
    TensorFlow's op determinism so that the same seed gives the same weights.
    """

    dataset: str = "horse2zebra"
    data_dir: str | None = None
    generator: str = "resnet_9blocks"
    ngf: int = 64
    ndf: int = 64
    n_layers_d: int = 3
    load_size: int = 286
    crop_size: int = 256
    preprocess: str = "resize_and_crop"
    no_flip: bool = False
    epochs: int = 100
    epochs_decay: int = 100
    batch_size: int = 1
    lr: float = 2e-4
    beta1: float = 0.5
    lambda_a: float = 10.0
    lambda_b: float = 10.0
    lambda_identity: float = 0.5
    pool_size: int = 50
    gan_mode: str = "lsgan"
    seed: int = 0
    out: str = "runs/cyclegan"
    steps_per_epoch: int | None = None
    sample_every: int = 1
    num_samples: int = 3
    cache: bool = False
    deterministic: bool = False
    precision: str = "float32"
    strategy: str = "default"
    jit_compile: bool = False
    steps_per_execution: int = 1
    versions: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.generator not in GENERATORS:
            raise ValueError(f"generator must be one of {', '.join(GENERATORS)}; got {self.generator!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {self.precision!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {self.strategy!r}")
        for key in (
            "ngf",
            "ndf",
            "n_layers_d",
            "batch_size",
            "sample_every",
            "num_samples",
            "steps_per_execution",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.epochs < 0 or self.epochs_decay < 0 or self.epochs + self.epochs_decay < 1:
            raise ValueError("epochs and epochs_decay must be >= 0 and add up to at least 1")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"steps_per_epoch must be >= 1, got {self.steps_per_epoch}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.generator.startswith("unet"):
            multiple = 2 ** (8 if self.generator == "unet_256" else 7)
            if self.crop_size % multiple:
                raise ValueError(
                    f"{self.generator} needs crop_size a multiple of {multiple}, got {self.crop_size}"
                )
        self.preprocessing()  # validates the preprocessing options

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.preprocess, self.load_size, self.crop_size, not self.no_flip)

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.epochs_decay


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
    kind, size = config.generator.split("_")
    if kind == "resnet":
        return resnet_generator(n_blocks=int(size.removesuffix("blocks")), ngf=config.ngf, name=name)
    return unet_generator(num_downs=8 if size == "256" else 7, ngf=config.ngf, name=name)


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
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}; got {name!r}")


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
    """The ``TrainConfig`` a run saved in ``out/config.json``."""
    with open(os.path.join(out, "config.json")) as file:
        saved = json.load(file)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in saved.items() if k in known})


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
    ``generator_ab.keras`` and ``generator_ba.keras``.

    Args:
        config: the settings. To resume, pass the run's own (``load_config(out)``), with ``epochs``
            and ``epochs_decay`` raised to train longer if wanted.
        resume: continue from the newest checkpoint in ``config.out``.
        verbose: ``model.fit``'s verbosity.
        callbacks: more ``model.fit`` callbacks, run after the run's own (checkpoints, history,
            samples, TensorBoard).

    Raises:
        FileExistsError: ``config.out`` holds a checkpoint and ``resume`` is False.
        TrainingStopped: a loss became NaN or Inf; the last good checkpoint is kept.
    """
    out = config.out
    checkpoints = os.path.join(out, "checkpoints")
    if not resume and latest_checkpoint(checkpoints) is not None:
        raise FileExistsError(
            f"{out!r} already holds a training run. Pass --resume to continue it, or choose another --out."
        )
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
            start = restore_checkpoint(model, checkpoints)
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
        LinearDecay(config.epochs, config.epochs_decay, config.lr),
        checkpointer,  # before the CSV row, so a row never claims an epoch that has no checkpoint
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
