"""Every setting of a training run, declared once: ``TrainConfig``, the names it accepts, ``Preprocessing``.

Each ``TrainConfig`` field carries its command-line flag, help text, choices and bounds as metadata;
``cyclegan-keras train``'s options are generated from them and ``TrainConfig`` validates with them,
so an option cannot get two defaults or two rules. This module imports no TensorFlow (the command
line's help reads it).
"""

from __future__ import annotations

import dataclasses
import sys
import typing
import warnings
from dataclasses import InitVar, dataclass, field

from cyclegan_keras.data.preprocessing import PREPROCESS_MODES, Preprocessing
from cyclegan_keras.data.tfds import CYCLE_GAN_CONFIGS
from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.architectures import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORMS
from cyclegan_keras.options import check_setting, option

# The official --lr_policy, --direction and --gan_mode choices, and this package's own.
LR_POLICIES = ("linear", "step", "plateau", "cosine")
TRAIN_DIRECTIONS = ("AtoB", "BtoA")
GAN_MODES = ("lsgan", "vanilla", "wgangp", "hinge")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
BACKENDS = ("tensorflow", "jax", "torch")
INPUT_PIPELINES = ("auto", "tf_data", "python")
STRATEGIES = ("default", "mirrored", "multi_worker")


@dataclass
class TrainConfig:
    """Every setting of a run; the defaults are the official CycleGAN recipe.

    Data comes from ``data_dir`` (trainA/trainB folders) when given, else from the ``tfds`` dataset
    ``cycle_gan/<dataset>``. ``n_epochs`` run at the full learning rate, then ``n_epochs_decay`` decay
    it linearly to zero (the official names; ``total_epochs`` is their sum, what ``fit(epochs=)``
    takes). ``steps_per_epoch`` shortens epochs for quick runs. ``deterministic`` turns on
    TensorFlow's op determinism so that the same seed gives the same weights. Each field's metadata
    holds its help text and rules (see ``option``).
    """

    dataset: str = option("horse2zebra", "tfds cycle_gan config to download", "data",
                          choices=CYCLE_GAN_CONFIGS, exclusive="source")  # fmt: skip
    data_dir: str | None = option(None, "a folder with trainA/ and trainB/ (testA/, testB/ optional)", "data",
                                  exclusive="source", resume_applies=True, official="--dataroot")  # fmt: skip
    load_size: int = option(286, "scale images to this size", "data", minimum=1, official="--load_size")
    crop_size: int = option(256, "then crop to this size", "data", minimum=1, official="--crop_size")
    preprocess: str = option("resize_and_crop", "official preprocessing mode", "data",
                             choices=PREPROCESS_MODES, official="--preprocess")  # fmt: skip
    no_flip: bool = option(False, "no random horizontal flips", "data", official="--no_flip")
    direction: str = option("AtoB", "BtoA swaps the domains: trainB/testB become A, trainA/testA B", "data",
                            choices=TRAIN_DIRECTIONS, official="--direction")  # fmt: skip
    serial_batches: bool = option(False, "take images in order (A and B by the same index) instead of a "
                                  "shuffled A and a random B", "data",
                                  official="--serial_batches")  # fmt: skip
    max_dataset_size: int | None = option(None, "use at most this many images of each domain, the first in "
                                          "sorted order (default: all)", "data", minimum=1,
                                          official="--max_dataset_size")  # fmt: skip
    input_pipeline: str = option("auto", "tf_data (tf.data), python (keras.utils.PyDataset over Pillow, no "
                                 "TensorFlow), or auto: tf_data on the TensorFlow backend, python on JAX and "
                                 "PyTorch", "data", choices=INPUT_PIPELINES, resume_applies=True)  # fmt: skip
    cache: bool = option(False, "keep decoded, resized images in memory", "data", resume_applies=True)
    generator: str = option("resnet_9blocks", "generator architecture", "model", choices=tuple(GENERATORS),
                            official="--netG")  # fmt: skip
    ngf: int = option(64, "generator filters in the first layer", "model", minimum=1, official="--ngf")
    ndf: int = option(64, "discriminator filters in the first layer", "model", minimum=1, official="--ndf")
    netd: str = option("basic", "discriminator: basic (70x70 PatchGAN), n_layers (a PatchGAN of "
                       "--n-layers-d layers) or pixel (1x1 PixelGAN)", "model", choices=DISCRIMINATORS,
                       official="--netD")  # fmt: skip
    n_layers_d: int | None = option(None, "with --netd n_layers: its stride-2 layers (basic has 3: 70x70 "
                                    "patches)", "model", minimum=1, official="--n_layers_D")  # fmt: skip
    norm: str = option("instance", "normalisation layers of all four networks", "model", choices=NORMS,
                       official="--norm")  # fmt: skip
    init_type: str = option("normal", "initial conv kernels: normal, xavier, kaiming or orthogonal", "model",
                            choices=INIT_TYPES, official="--init_type")  # fmt: skip
    init_gain: float = option(0.02, "scale of normal, xavier and orthogonal initialisation", "model",
                              minimum=0, official="--init_gain")  # fmt: skip
    dropout: bool = option(False, "dropout 0.5 in the generators (CycleGAN's default is the official "
                           "--no_dropout)", "model", official="--no_dropout (reversed)",
                           off_flag="--no-dropout")  # fmt: skip
    input_nc: int = option(3, "channels of domain A's images: 3 (RGB) or 1 (grayscale)", "model",
                           choices=(1, 3), official="--input_nc")  # fmt: skip
    output_nc: int = option(3, "channels of domain B's images: 3 (RGB) or 1 (grayscale)", "model",
                            choices=(1, 3), official="--output_nc")  # fmt: skip
    gan_mode: str = option("lsgan", "adversarial loss", "model", choices=GAN_MODES, official="--gan_mode")
    pool_size: int = option(50, "image pool size, 0 for none", "model", minimum=0, official="--pool_size")
    lambda_a: float = option(
        10.0, "weight of the A->B->A cycle loss", "model", minimum=0, official="--lambda_A"
    )
    lambda_b: float = option(
        10.0, "weight of the B->A->B cycle loss", "model", minimum=0, official="--lambda_B"
    )
    lambda_identity: float = option(0.5, "identity loss weight, relative to the cycle weights", "model",
                                    minimum=0, official="--lambda_identity")  # fmt: skip
    n_epochs: int = option(100, "epochs at the initial learning rate", "optimisation", minimum=0,
                           resume_applies=True, flag="--epochs", official="--n_epochs")  # fmt: skip
    n_epochs_decay: int = option(100, "epochs of linear decay to zero after them", "optimisation", minimum=0,
                                 resume_applies=True, flag="--epochs-decay",
                                 official="--n_epochs_decay")  # fmt: skip
    lr_policy: str = option("linear", "learning-rate policy: linear (constant, then linear decay), step "
                            "(x0.1 every --lr-decay-iters epochs), plateau (x0.2 after 6 epochs without a "
                            "better metric; CycleGAN's metric is 0), cosine (over --epochs)", "optimisation",
                            choices=LR_POLICIES, resume_applies=True, official="--lr_policy")  # fmt: skip
    lr_decay_iters: int | None = option(None, "with --lr-policy step: epochs between decays (default: 50)",
                                        "optimisation", minimum=1, resume_applies=True,
                                        official="--lr_decay_iters")  # fmt: skip
    batch_size: int = option(
        1, "images per domain per step", "optimisation", minimum=1, official="--batch_size"
    )
    steps_per_epoch: int | None = option(None, "batches per epoch (default: max(|A|, |B|) / batch size); "
                                         "fewer for quick runs", "optimisation", minimum=1,
                                         resume_applies=True)  # fmt: skip
    lr: float = option(2e-4, "Adam learning rate", "optimisation", above=0, official="--lr")
    beta1: float = option(0.5, "Adam beta_1", "optimisation", minimum=0, below=1, official="--beta1")
    precision: str = option("float32", "float32, or mixed precision", "optimisation", choices=PRECISIONS)
    strategy: str = option("default", "tf.distribute: one device, all local GPUs (mirrored), or the "
                           "TF_CONFIG workers (multi_worker); --batch-size is the global batch",
                           "optimisation", choices=STRATEGIES, resume_applies=True)  # fmt: skip
    worker_timeout: float = option(600.0, "multi_worker: seconds to wait for every worker to start",
                                   "optimisation", minimum=1, resume_applies=True)  # fmt: skip
    backend: str | None = option(None, "the Keras backend to train on (default: $KERAS_BACKEND, else the "
                                 "run's own with --resume, else tensorflow)", "optimisation",
                                 choices=BACKENDS, resume_applies=True)  # fmt: skip
    jit_compile: bool = option(False, "XLA-compile the training step", "optimisation", resume_applies=True)
    steps_per_execution: int = option(1, "training steps per tf.function call", "optimisation", minimum=1,
                                      resume_applies=True)  # fmt: skip
    seed: int = option(0, "random seed", "optimisation")
    deterministic: bool = option(False, "TensorFlow op determinism: the same seed gives the same weights",
                                 "optimisation", resume_applies=True)  # fmt: skip
    out: str = option("runs/cyclegan", "run folder for checkpoints, samples, logs and generators", "run",
                      metavar="RUN_DIR", official="--checkpoints_dir/--name")  # fmt: skip
    sample_every: int = option(1, "epochs between sample grids", "run", minimum=1, resume_applies=True)
    num_samples: int = option(3, "test images per domain in the sample grids", "run", minimum=1,
                              resume_applies=True)  # fmt: skip
    eval_every: int | None = option(None, "score the generators with FID/KID on the test split every N "
                                    "epochs and keep the best (needs the Inception graph; see `evaluate`)",
                                    "run", minimum=1, resume_applies=True)  # fmt: skip
    inception: str | None = option(None, "the Inception graph file for --eval-every (default: download "
                                   "once into the cache)", "run", resume_applies=True)  # fmt: skip
    versions: dict = field(default_factory=dict)
    # The names before 0.2, which read like fit(epochs=) (all epochs); still accepted, with a warning.
    epochs: InitVar[int | None] = None
    epochs_decay: InitVar[int | None] = None

    def __post_init__(self, epochs: int | None = None, epochs_decay: int | None = None):
        for old, new, value in (
            ("epochs", "n_epochs", epochs),
            ("epochs_decay", "n_epochs_decay", epochs_decay),
        ):
            if value is not None and not isinstance(value, _ReadBack):
                warnings.warn(
                    f"TrainConfig({old}=) is now TrainConfig({new}=), the official name: fit's "
                    "epochs= counts all epochs, this one only those at the full learning rate.",
                    DeprecationWarning,
                    stacklevel=3,
                )
                setattr(self, new, value)
        hints = typing.get_type_hints(TrainConfig)
        for spec in dataclasses.fields(self):
            if "help" in spec.metadata:
                check_setting(spec, getattr(self, spec.name), hints[spec.name])
        if not isinstance(self.versions, dict):
            raise UsageError(f"versions must be a mapping of names to versions, got {self.versions!r}")
        if self.n_epochs + self.n_epochs_decay < 1:
            raise UsageError(
                "n_epochs and n_epochs_decay (--epochs, --epochs-decay) must add up to at least 1"
            )
        self._check_official_combinations()
        GENERATORS[self.generator].check_crop(self.generator, self.crop_size)
        self.preprocessing()  # validates the preprocessing options

    def _check_official_combinations(self) -> None:
        if self.netd == "basic" and self.n_layers_d not in (None, 3):
            # Before --netd, --n-layers-d alone chose the depth: keep such commands meaning what they did.
            warnings.warn(
                f"--n-layers-d {self.n_layers_d} with --netd basic (3 layers): training --netd n_layers.",
                stacklevel=3,
            )
            self.netd = "n_layers"
        if self.netd == "n_layers" and self.n_layers_d is None:
            raise UsageError("--netd n_layers needs its number of layers: add --n-layers-d N (3 is basic)")
        if self.netd == "pixel" and self.n_layers_d is not None:
            raise UsageError("--netd pixel has no stride-2 layers: drop --n-layers-d")
        if self.lr_decay_iters is not None and self.lr_policy != "step":
            raise UsageError(
                f"--lr-decay-iters applies to --lr-policy step only, not {self.lr_policy}: drop it, or use "
                "--lr-policy step"
            )
        if self.lambda_identity > 0 and self.input_nc != self.output_nc:
            # The official code asserts the same: an identity loss compares A images with B images.
            raise UsageError(
                f"The identity loss needs as many channels in A as in B (--input-nc {self.input_nc}, "
                f"--output-nc {self.output_nc}): add --lambda-identity 0."
            )

    @property
    def discriminator_layers(self) -> int | None:
        """The PatchGAN's stride-2 layers (3 for ``basic``; None for ``pixel``)."""
        return {"basic": 3, "pixel": None}.get(self.netd, self.n_layers_d)

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.preprocess, self.load_size, self.crop_size, not self.no_flip)

    @property
    def total_epochs(self) -> int:
        """All epochs of the run: ``n_epochs + n_epochs_decay`` (what ``fit(epochs=)`` takes)."""
        return self.n_epochs + self.n_epochs_decay


class _ReadBack(int):
    """An old name's value as read from a config. ``dataclasses.replace`` passes every init keyword
    read from the config, the old names too; this type lets ``__post_init__`` ignore those, so that
    ``replace(config, n_epochs=4)`` keeps its 4."""


def _renamed(old: str, new: str) -> property:
    def read(self):
        if sys._getframe(1).f_globals.get("__name__") != "dataclasses":  # a user's read, not replace()'s
            warnings.warn(f"TrainConfig.{old} is now TrainConfig.{new}.", DeprecationWarning, stacklevel=2)
        return _ReadBack(getattr(self, new))

    return property(read)


# Set after the dataclass is made, whose __init__ keeps None as the old keywords' default.
TrainConfig.epochs = _renamed("epochs", "n_epochs")
TrainConfig.epochs_decay = _renamed("epochs_decay", "n_epochs_decay")


def config_from_json(saved: dict) -> TrainConfig:
    """A ``TrainConfig`` from a run's ``config.json``, whichever version of the package wrote it.

    Raises:
        UsageError: ``saved`` is not a mapping, or holds a setting that its flag would refuse.
    """
    if not isinstance(saved, dict):
        kind = type(saved).__name__
        raise UsageError(f"the settings must be a JSON object of names and values, got {kind}")
    saved = dict(saved)
    for old, new in (("epochs", "n_epochs"), ("epochs_decay", "n_epochs_decay")):
        if old in saved:
            saved.setdefault(new, saved.pop(old))
    if "netd" not in saved and saved.get("n_layers_d", 3) != 3:  # before --netd
        saved["netd"] = "n_layers"
    if saved.get("backend") is None:  # versions before 0.2 trained on TensorFlow only
        saved["backend"] = "tensorflow"
    known = {spec.name for spec in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{key: value for key, value in saved.items() if key in known})


def official_options_table() -> str:
    """The README's table of the official code's options and the flags that set them, as Markdown,
    made from ``TrainConfig``'s fields so that it cannot drift from them."""
    defaults = TrainConfig()
    rows = ["| official option | `cyclegan-keras train` | default | what it sets |", "|---|---|---|---|"]
    for spec in dataclasses.fields(TrainConfig):
        rules = spec.metadata
        if "official" not in rules:
            continue
        flags = [rules.get("flag", "--" + spec.name.replace("_", "-"))]
        flags += [rules["off_flag"]] if "off_flag" in rules else []
        default = getattr(defaults, spec.name)
        listed = "choices" not in rules or all(str(choice) in rules["help"] for choice in rules["choices"])
        choices = "" if listed else f" ({', '.join(map(str, rules['choices']))})"
        official = " ".join(
            f"`{part}`" if part.startswith("--") else part for part in rules["official"].split()
        )
        row = [official, ", ".join(f"`{flag}`" for flag in flags), f"`{default}`", rules["help"] + choices]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    return "\n".join(rows)
