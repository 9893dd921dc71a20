"""``CycleGAN``: the four networks and the official training step as a subclassed ``keras.Model``."""

from __future__ import annotations

import contextlib
import inspect
import itertools
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import PACKAGE
from cyclegan_keras.training.losses import (
    check_gan_mode,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gradient_penalty,
)
from cyclegan_keras.training.optimizers import loss_scaled, official_adam
from cyclegan_keras.training.pool import ImagePool
from cyclegan_keras.training.steps import backend_steps

# Reported loss terms, in the order of the official log (see README for the official names).
LOSS_NAMES = (
    "disc_b",
    "adv_ab",
    "cycle_aba",
    "identity_ab",
    "disc_a",
    "adv_ba",
    "cycle_bab",
    "identity_ba",
)
DIRECTIONS = ("a_to_b", "b_to_a")


@keras.saving.register_keras_serializable(package=PACKAGE)
class CycleGAN(keras.Model):
    """CycleGAN (Zhu et al., 2017) trained with ``fit`` exactly as the official code trains it.

    Each ``train_step`` on a batch ``(a, b)`` runs all four networks, updates both generators on ONE
    joint loss (both adversarial terms, both cycle terms, both identity terms) with the discriminators
    untouched, then updates both discriminators on pooled, detached fakes with the 0.5 factor.

    Args:
        generator_ab: translates domain A to B (official ``netG_A``).
        generator_ba: translates domain B to A (official ``netG_B``).
        discriminator_a: judges domain-A images (official ``netD_B``).
        discriminator_b: judges domain-B images (official ``netD_A``).
        lambda_a: weight of the A -> B -> A cycle loss.
        lambda_b: weight of the B -> A -> B cycle loss.
        lambda_identity: weight of the identity losses, relative to the cycle weights; 0 turns them off.
        pool_size: images in each image pool; 0 turns the pools off.
        gan_mode: adversarial loss, one of ``lsgan`` (default), ``vanilla``, ``wgangp``, ``hinge``.
        seed: seed of the pools' random draws.

    ``model(a)`` and ``model.predict(a)`` translate A -> B; ``model.translate(b, "b_to_a")`` goes the
    other way.
    """

    def __init__(
        self,
        generator_ab: keras.Model,
        generator_ba: keras.Model,
        discriminator_a: keras.Model,
        discriminator_b: keras.Model,
        *,
        lambda_a: float = 10.0,
        lambda_b: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        gan_mode: str = "lsgan",
        seed: int | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for key, value in (
            ("lambda_a", lambda_a),
            ("lambda_b", lambda_b),
            ("lambda_identity", lambda_identity),
        ):
            if value < 0:
                raise UsageError(f"{key} must be >= 0, got {value}")
        self.generator_ab = generator_ab
        self.generator_ba = generator_ba
        self.discriminator_a = discriminator_a
        self.discriminator_b = discriminator_b
        self.lambda_a = float(lambda_a)
        self.lambda_b = float(lambda_b)
        self.lambda_identity = float(lambda_identity)
        self.pool_size = pool_size
        self.gan_mode = check_gan_mode(gan_mode)
        self.seed = seed
        # pool_a holds generated A images (from generator_ba), pool_b generated B images.
        self.pool_a = ImagePool(pool_size, seed=seed, name="pool_a")
        self.pool_b = ImagePool(pool_size, seed=None if seed is None else seed + 1, name="pool_b")
        if self.gan_mode == "wgangp":  # the penalty's random mixing ratios, seeded for compiled JAX steps
            self.penalty_seed = keras.random.SeedGenerator(None if seed is None else seed + 2, name="penalty")
        self.loss_trackers = {name: keras.metrics.Mean(name=name) for name in LOSS_NAMES}
        self.generator_optimizer = None
        self.discriminator_optimizer = None

    # -- Keras plumbing ---------------------------------------------------------------------------

    def build(self, input_shape):
        for network in (self.generator_ab, self.generator_ba, self.discriminator_a, self.discriminator_b):
            if not network.built:
                network.build(input_shape)
        if None not in tuple(input_shape)[1:]:
            # Each pool holds one generator's images, whose channels may differ from A's (--output-nc).
            for pool, source in ((self.pool_a, self.generator_ba), (self.pool_b, self.generator_ab)):
                if not pool.built:
                    channels = source.outputs[0].shape[-1] if hasattr(source, "outputs") else input_shape[-1]
                    pool.build((*tuple(input_shape)[:-1], channels))
        super().build(input_shape)

    def compile(
        self,
        generator_optimizer: keras.optimizers.Optimizer | None = None,
        discriminator_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs,
    ):
        """Sets the two optimizers; both default to the official Adam (``official_adam()``).

        One optimizer steps both generators, the other both discriminators. Under a
        ``mixed_float16`` policy each is wrapped in a ``LossScaleOptimizer``. Other keyword
        arguments (``steps_per_execution``, ``jit_compile``, ...) go to ``keras.Model.compile``.
        """
        generator_optimizer = generator_optimizer or official_adam()
        discriminator_optimizer = discriminator_optimizer or official_adam()
        if keras.config.dtype_policy().name == "mixed_float16":
            generator_optimizer = loss_scaled(generator_optimizer)
            discriminator_optimizer = loss_scaled(discriminator_optimizer)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        # Keras' own `optimizer` is the generators' one, so callbacks that read
        # `model.optimizer.iterations` count training steps.
        super().compile(optimizer=generator_optimizer, **kwargs)
        if keras.backend.backend() == "jax":
            # Keras' JAX trainer carries `model.optimizer.variables` through its compiled step as state:
            # they must be both optimizers' variables.
            from cyclegan_keras.training.steps.jax import OptimizerPair

            self.optimizer = OptimizerPair(self)

    def get_compile_config(self):
        return {
            "generator_optimizer": keras.saving.serialize_keras_object(self.generator_optimizer),
            "discriminator_optimizer": keras.saving.serialize_keras_object(self.discriminator_optimizer),
        }

    def compile_from_config(self, config):
        self.compile(
            generator_optimizer=keras.saving.deserialize_keras_object(config["generator_optimizer"]),
            discriminator_optimizer=keras.saving.deserialize_keras_object(config["discriminator_optimizer"]),
        )
        if self.built:
            self.build_optimizers()

    def fit(self, x=None, **kwargs):
        """``keras.Model.fit``, with every argument after ``x`` given by keyword.

        ``shuffle`` defaults to False for a ``tf.data.Dataset`` and a ``keras.utils.PyDataset``: this
        package's pipelines shuffle themselves (seeded, per epoch), reproducibly.
        """
        # Creating the pools' and optimizers' variables now, rather than inside the traced step, spares
        # TensorFlow a second trace of the whole training graph, whatever kind of input ``x`` is.
        x, shape = _image_batch_shape(x) if not self.built else (x, None)
        scope = getattr(self, "distribute_strategy", None)  # TensorFlow's trainer only
        with scope.scope() if scope is not None else contextlib.nullcontext():
            if shape is not None and not self.built:
                self.build(shape)
            if self.built and self.generator_optimizer is not None:
                self.build_optimizers()
        if _is_tf_dataset(x) or isinstance(x, keras.utils.PyDataset):
            kwargs.setdefault("shuffle", False)
        return super().fit(x, **kwargs)

    def predict(self, x, *args, **kwargs):
        """``keras.Model.predict``: A -> B translations, at the images' own size."""
        # The pools' variables cannot be made inside the stateless step JAX's predict runs in.
        shape = tuple(x.shape) if getattr(x, "ndim", None) == 4 else None
        if shape is None and _is_tf_dataset(x):
            shape = _image_batch_shape(x)[1]
        if shape is not None and not self.built:
            self.build(shape)
        return super().predict(x, *args, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' TensorFlow trainer takes a first batch and averages it over the replicas to build an
        # unbuilt model. Ours is built by then (fit, train), and under MultiWorkerMirroredStrategy that
        # average fails on an (a, b) pair of per-replica batches.
        if self.built and all(optimizer.built for optimizer in self.optimizers.values()):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def _symbolic_build(self, iterator=None, data_batch=None):
        # The JAX and PyTorch trainers build an unbuilt model by tracing its call in a stateless scope,
        # where the pools cannot create their variables: build from the first batch's shape instead.
        if not self.built:
            if data_batch is None:
                for _, _, data in iterator:
                    data_batch = data[0] if isinstance(data, (list, tuple)) else next(data)
                    break
            self.build(tuple(_unpack(data_batch)[0].shape))
        super()._symbolic_build(iterator=iterator, data_batch=data_batch)

    def build_optimizers(self) -> None:
        """Creates both optimizers' variables, so their state can be restored before training."""
        for optimizer, variables in (
            (self.generator_optimizer, self.generator_variables),
            (self.discriminator_optimizer, self.discriminator_variables),
        ):
            if not optimizer.built:
                optimizer.build(variables)

    @property
    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """Both optimizers by role: ``generator_optimizer`` (both generators) and
        ``discriminator_optimizer`` (both discriminators); empty before ``compile``."""
        found = {
            "generator_optimizer": self.generator_optimizer,
            "discriminator_optimizer": self.discriminator_optimizer,
        }
        return {name: optimizer for name, optimizer in found.items() if optimizer is not None}

    @property
    def generator_variables(self) -> list:
        return self.generator_ab.trainable_variables + self.generator_ba.trainable_variables

    @property
    def discriminator_variables(self) -> list:
        return self.discriminator_a.trainable_variables + self.discriminator_b.trainable_variables

    @property
    def metrics(self):
        return list(self.loss_trackers.values())

    def get_config(self):
        networks = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")
        return {
            "name": self.name,
            "trainable": self.trainable,
            **{key: keras.saving.serialize_keras_object(getattr(self, key)) for key in networks},
            "lambda_a": self.lambda_a,
            "lambda_b": self.lambda_b,
            "lambda_identity": self.lambda_identity,
            "pool_size": self.pool_size,
            "gan_mode": self.gan_mode,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    # -- Inference --------------------------------------------------------------------------------

    def call(self, inputs, training=False):
        return _same_size(self.generator_ab, inputs, training)

    def translate(
        self, images, direction: str = "a_to_b", tile: int | None = None, tile_stats: str = "exact"
    ):
        """Translates a batch of images in [-1, 1]: ``"a_to_b"`` (default) or ``"b_to_a"``.

        The result has the images' size: sides that the generators' two halvings do not divide are
        mirror-padded to a multiple of 4 and the result cropped back, as the command line does.

        With ``tile``, each image goes through in tiles of about that many pixels a side, normalised
        with its whole statistics (``tile_stats="exact"``) or a 1 MP copy's (``"thumbnail"``): see
        ``cyclegan_keras.deploy.tiling``. Then any size works and the result is a numpy array.
        """
        if direction not in DIRECTIONS:
            raise UsageError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        generator = self.generator_ab if direction == "a_to_b" else self.generator_ba
        if tile is None:
            return _same_size(generator, images, training=False)
        from cyclegan_keras.data.images import pad_to_multiple
        from cyclegan_keras.deploy.tiling import TiledGenerator

        tiled = TiledGenerator(generator)
        outputs = []
        for image in np.asarray(keras.ops.convert_to_numpy(images), np.float32):
            padded, (height, width) = pad_to_multiple(image, tiled.multiple)
            outputs.append(tiled(padded, tile, tile_stats)[:height, :width])
        return np.stack(outputs)

    # -- Training ---------------------------------------------------------------------------------

    def generator_losses(self, a, b, training: bool, call: NetworkCall | None = None):
        """The generators' loss terms, and the fakes. ``call(network, images, training)`` runs a network
        (default: ``network(images, training=training)``; the PyTorch step passes a leaner one)."""
        call = call or _keras_call
        fake_b = call(self.generator_ab, a, training)
        fake_a = call(self.generator_ba, b, training)
        cycled_a = call(self.generator_ba, fake_b, training)
        cycled_b = call(self.generator_ab, fake_a, training)
        losses = {
            "adv_ab": generator_adversarial_loss(call(self.discriminator_b, fake_b, training), self.gan_mode),
            "adv_ba": generator_adversarial_loss(call(self.discriminator_a, fake_a, training), self.gan_mode),
            "cycle_aba": self.lambda_a * _l1(cycled_a, a),
            "cycle_bab": self.lambda_b * _l1(cycled_b, b),
        }
        if self.lambda_identity > 0:
            identity = self.lambda_identity
            losses["identity_ab"] = self.lambda_b * identity * _l1(call(self.generator_ab, b, training), b)
            losses["identity_ba"] = self.lambda_a * identity * _l1(call(self.generator_ba, a, training), a)
        else:
            losses["identity_ab"] = losses["identity_ba"] = ops.zeros((), "float32")
        return losses, fake_a, fake_b

    def discriminator_loss(self, discriminator, real, fake, training: bool, call: NetworkCall | None = None):
        call = call or _keras_call
        loss = discriminator_adversarial_loss(
            call(discriminator, real, training), call(discriminator, fake, training), self.gan_mode
        )
        if self.gan_mode == "wgangp":
            loss += gradient_penalty(discriminator, real, fake, seed=self.penalty_seed)
        return loss

    def discriminator_losses(self, a, b, pooled_a, pooled_b, call: NetworkCall | None = None) -> dict:
        return {
            "disc_a": self.discriminator_loss(self.discriminator_a, a, pooled_a, True, call),
            "disc_b": self.discriminator_loss(self.discriminator_b, b, pooled_b, True, call),
        }

    def train_step(self, *args):
        """One official step: both generators on one joint loss, then both discriminators on pooled,
        detached fakes. The losses are written once (``keras.ops``); each backend takes the gradients
        its own way (``cyclegan_keras.training.steps``): ``tf.GradientTape``, ``jax.value_and_grad``
        over a stateless step (Keras' JAX trainer passes and takes back the state), or ``backward()``
        on PyTorch."""
        return backend_steps().train_step(self, *args)

    def test_step(self, *args):
        return backend_steps().test_step(self, *args)

    def unpack(self, data) -> tuple:
        """The ``(a, b)`` image batches of a batch of data (pairs, or dicts with keys ``a`` and ``b``)."""
        return _unpack(data)

    def unpack_and_build(self, data) -> tuple:
        """``unpack``, building the networks and pools from the first batch's shape."""
        a, b = _unpack(data)
        if not self.built:
            self.build(tuple(a.shape))
        return a, b

    def evaluation_losses(self, a, b) -> dict:
        """Every loss term of a batch, with the discriminators judging the unpooled fakes."""
        losses, fake_a, fake_b = self.generator_losses(a, b, training=False)
        losses["disc_a"] = self.discriminator_loss(self.discriminator_a, a, fake_a, training=False)
        losses["disc_b"] = self.discriminator_loss(self.discriminator_b, b, fake_b, training=False)
        return losses

    def track(self, losses: dict) -> dict:
        """Adds a step's losses to the running means; returns the means (the logs)."""
        for name, tracker in self.loss_trackers.items():
            tracker.update_state(losses[name])
        return {name: tracker.result() for name, tracker in self.loss_trackers.items()}


# How a loss runs a network: ``call(network, images, training)``.
NetworkCall = Callable[[keras.Model, Any, bool], Any]


def _keras_call(network: keras.Model, images, training: bool):
    return network(images, training=training)


def _same_size(generator: keras.Model, images, training: bool):
    """``generator(images)`` at the images' own size: sides mirror-padded to a multiple of 4 (its two
    stride-2 steps) and the result cropped back. Sides unknown while tracing go through as they are."""
    from cyclegan_keras.data.images import MULTIPLE

    height, width = images.shape[1], images.shape[2]
    if height is None or width is None or (height % MULTIPLE == 0 and width % MULTIPLE == 0):
        return generator(images, training=training)
    padding = [[0, 0], [0, -height % MULTIPLE], [0, -width % MULTIPLE], [0, 0]]
    outputs = generator(ops.pad(images, padding, mode="reflect"), training=training)
    return outputs[:, :height, :width, :]


def _is_tf_dataset(data) -> bool:
    return type(data).__module__.startswith("tensorflow") and hasattr(data, "element_spec")


def _l1(x, y):
    return ops.mean(ops.abs(ops.cast(x, "float32") - ops.cast(y, "float32")))


def _unpack(data):
    if isinstance(data, dict) and {"a", "b"} <= data.keys():
        return data["a"], data["b"]
    if isinstance(data, (tuple, list)):
        a, b, _ = keras.utils.unpack_x_y_sample_weight(tuple(data))
        if b is not None:
            return a, b
    raise UsageError(
        "CycleGAN trains on batches of (a, b): a dataset of pairs of image batches, one from each "
        "domain (or dicts with keys 'a' and 'b'), e.g. model.fit(dataset_of_pairs). "
        f"Got {type(data).__name__}."
    )


def _image_batch_shape(data) -> tuple:
    """``(data, shape)``: the shape of domain A's batches (batch size unknown) where the data says it or
    its first batch can be read ahead, and the data to train on (a generator read ahead is restored)."""
    first = None
    if _is_tf_dataset(data):
        import tensorflow as tf

        spec = data.element_spec
        spec = spec["a"] if isinstance(spec, dict) else spec[0] if isinstance(spec, tuple) else None
        shape = tuple(spec.shape) if isinstance(spec, tf.TensorSpec) and spec.shape.rank == 4 else None
        return data, shape
    if isinstance(data, keras.utils.PyDataset):
        first = data[0] if len(data) else None
    elif isinstance(data, dict) or (isinstance(data, (tuple, list)) and len(data) == 2):
        first = data
    elif inspect.isgenerator(data):
        try:
            first = next(data)
        except StopIteration:
            return iter(()), None
        data = itertools.chain([first], data)
        data = (item for item in data)  # a generator again, as Keras takes it
    try:
        images = _unpack(first)[0] if first is not None else None
    except (ValueError, TypeError):
        return data, None
    shape = getattr(images, "shape", None)
    return data, (None, *tuple(shape)[1:]) if shape is not None and len(shape) == 4 else None
