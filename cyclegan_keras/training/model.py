"""``CycleGAN``: the four networks and the official training step as a subclassed ``keras.Model``."""

from __future__ import annotations

import contextlib

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
from cyclegan_keras.training.pool import ImagePool

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
class OfficialAdam(keras.optimizers.Adam):
    """Adam with PyTorch's epsilon placement, as the official code trains with ``torch.optim.Adam``.

    Keras adds ``epsilon`` to the square root of the *uncorrected* second moment; PyTorch adds it after
    the bias correction: ``step = lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)``. With the same
    ``epsilon`` Keras' is ``1 / sqrt(1 - b2^t)`` times larger, 32x at the first step, which damps the
    updates of weights whose gradients are small. ``amsgrad`` is not supported (the recipe does not use it).
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            raise UsageError("OfficialAdam has no amsgrad; use keras.optimizers.Adam for it.")
        ops = keras.ops
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        step = ops.cast(self.iterations + 1, variable.dtype)
        correction_1 = 1 - ops.power(ops.cast(self.beta_1, variable.dtype), step)
        correction_2 = 1 - ops.power(ops.cast(self.beta_2, variable.dtype), step)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        denominator = ops.add(ops.divide(ops.sqrt(v), ops.sqrt(correction_2)), self.epsilon)
        self.assign_sub(variable, ops.divide(ops.multiply(m, lr / correction_1), denominator))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # On PyTorch, Keras runs update_step's ~10 ops per variable eagerly, each through its op
        # dispatch: over a CycleGAN's ~120 variables that is host time a GPU step cannot hide. One
        # foreach update of all of them computes the same (``torch.optim.Adam(foreach=True)``'s way).
        if keras.backend.backend() != "torch" or self.amsgrad:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        import torch

        with torch.no_grad():
            variables = [variable.value for variable in trainable_variables]
            dtype = variables[0].dtype
            grads = [gradient.to(dtype) for gradient in grads]
            lr = keras.ops.convert_to_tensor(learning_rate).to(dtype)
            step = (self.iterations.value + 1).to(dtype)
            correction_1 = 1 - torch.pow(self.beta_1, step)
            correction_2 = 1 - torch.pow(self.beta_2, step)
            indices = [self._get_variable_index(variable) for variable in trainable_variables]
            m = [self._momentums[i].value for i in indices]
            v = [self._velocities[i].value for i in indices]
            torch._foreach_lerp_(m, grads, 1 - self.beta_1)
            torch._foreach_mul_(v, self.beta_2)
            torch._foreach_addcmul_(v, grads, grads, value=1 - self.beta_2)
            denominators = torch._foreach_sqrt(v)
            torch._foreach_div_(denominators, torch.sqrt(correction_2))
            torch._foreach_add_(denominators, self.epsilon)
            updates = torch._foreach_div(m, denominators)
            torch._foreach_mul_(updates, lr / correction_1)
            torch._foreach_sub_(variables, updates)


def official_adam(learning_rate: float = 2e-4, beta_1: float = 0.5) -> keras.optimizers.Adam:
    """Adam as the official code sets it: lr 2e-4, betas (0.5, 0.999), epsilon 1e-8 where PyTorch adds it
    (``OfficialAdam``)."""
    return OfficialAdam(learning_rate=learning_rate, beta_1=beta_1, beta_2=0.999, epsilon=1e-8)


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
            generator_optimizer = _loss_scaled(generator_optimizer)
            discriminator_optimizer = _loss_scaled(discriminator_optimizer)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        # Keras' own `optimizer` is the generators' one, so callbacks that read
        # `model.optimizer.iterations` count training steps.
        super().compile(optimizer=generator_optimizer, **kwargs)
        if keras.backend.backend() == "jax":
            # Keras' JAX trainer carries `model.optimizer.variables` through its compiled step as state:
            # they must be both optimizers' variables.
            self.optimizer = _OptimizerPair(self)

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
        # TensorFlow a second trace of the whole training graph.
        shape = _image_batch_shape(x)
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
        shape = tuple(x.shape) if getattr(x, "ndim", None) == 4 else _image_batch_shape(x)
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

    def _generator_losses(self, a, b, training: bool):
        fake_b = self.generator_ab(a, training=training)
        fake_a = self.generator_ba(b, training=training)
        cycled_a = self.generator_ba(fake_b, training=training)
        cycled_b = self.generator_ab(fake_a, training=training)
        losses = {
            "adv_ab": generator_adversarial_loss(
                self.discriminator_b(fake_b, training=training), self.gan_mode
            ),
            "adv_ba": generator_adversarial_loss(
                self.discriminator_a(fake_a, training=training), self.gan_mode
            ),
            "cycle_aba": self.lambda_a * _l1(cycled_a, a),
            "cycle_bab": self.lambda_b * _l1(cycled_b, b),
        }
        if self.lambda_identity > 0:
            losses["identity_ab"] = (
                self.lambda_b * self.lambda_identity * _l1(self.generator_ab(b, training=training), b)
            )
            losses["identity_ba"] = (
                self.lambda_a * self.lambda_identity * _l1(self.generator_ba(a, training=training), a)
            )
        else:
            losses["identity_ab"] = losses["identity_ba"] = ops.zeros((), "float32")
        return losses, fake_a, fake_b

    def _discriminator_loss(self, discriminator, real, fake, training: bool):
        loss = discriminator_adversarial_loss(
            discriminator(real, training=training), discriminator(fake, training=training), self.gan_mode
        )
        if self.gan_mode == "wgangp":
            loss += gradient_penalty(discriminator, real, fake, seed=self.penalty_seed)
        return loss

    def _discriminator_losses(self, a, b, pooled_a, pooled_b) -> dict:
        return {
            "disc_a": self._discriminator_loss(self.discriminator_a, a, pooled_a, training=True),
            "disc_b": self._discriminator_loss(self.discriminator_b, b, pooled_b, training=True),
        }

    def train_step(self, *args):
        """One official step: both generators on one joint loss, then both discriminators on pooled,
        detached fakes. The losses are written once (``keras.ops``); each backend takes the gradients
        its own way: ``tf.GradientTape``, ``jax.value_and_grad`` over a stateless step (Keras' JAX
        trainer passes and takes back the state), or ``backward()`` on PyTorch."""
        backend = keras.backend.backend()
        if backend == "jax":
            return self._jax_train_step(*args)
        (data,) = args
        a, b = _unpack(data)
        if not self.built:
            self.build(tuple(a.shape))
        if backend == "torch":
            return self._torch_train_step(a, b)
        return self._tensorflow_train_step(a, b)

    def _tensorflow_train_step(self, a, b):
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            losses, fake_a, fake_b = self._generator_losses(a, b, training=True)
            # Each replica's mean over its share of the batch; the optimizer sums over replicas.
            generator_loss = tf.add_n(list(losses.values())) / replicas
            scaled = self.generator_optimizer.scale_loss(generator_loss)
        generator_variables = self.generator_variables
        grads = tape.gradient(scaled, generator_variables)
        self.generator_optimizer.apply_gradients(zip(grads, generator_variables))

        pooled_a = self.pool_a(tf.stop_gradient(fake_a))
        pooled_b = self.pool_b(tf.stop_gradient(fake_b))
        with tf.GradientTape() as tape:
            losses.update(self._discriminator_losses(a, b, pooled_a, pooled_b))
            scaled = self.discriminator_optimizer.scale_loss((losses["disc_a"] + losses["disc_b"]) / replicas)
        discriminator_variables = self.discriminator_variables
        grads = tape.gradient(scaled, discriminator_variables)
        self.discriminator_optimizer.apply_gradients(zip(grads, discriminator_variables))
        return self._track(_global_mean(losses))

    def _torch_train_step(self, a, b):
        import torch

        from cyclegan_keras.training.steps.torch_bfloat16 import contiguous_conv_weights

        networks = (self.generator_ab, self.generator_ba, self.discriminator_a, self.discriminator_b)
        convolutions = contiguous_conv_weights({network.compute_dtype for network in networks}, a.device)
        self.zero_grad()
        with convolutions:
            losses, fake_a, fake_b = self._generator_losses(a, b, training=True)
        self.generator_optimizer.scale_loss(sum(losses.values())).backward()
        generator_variables = self.generator_variables
        self.generator_optimizer.apply([v.value.grad for v in generator_variables], generator_variables)

        with torch.no_grad():
            pooled_a = self.pool_a(fake_a.detach())
            pooled_b = self.pool_b(fake_b.detach())
        # The generators' loss also left gradients on the discriminators: they must not count.
        self.zero_grad()
        with convolutions:
            losses.update(self._discriminator_losses(a, b, pooled_a, pooled_b))
        self.discriminator_optimizer.scale_loss(losses["disc_a"] + losses["disc_b"]).backward()
        discriminator_variables = self.discriminator_variables
        self.discriminator_optimizer.apply(
            [v.value.grad for v in discriminator_variables], discriminator_variables
        )
        return self._track({name: value.detach() for name, value in losses.items()})

    def _jax_train_step(self, state, data):
        trainable, non_trainable, optimizer_values, metric_values = state
        a, b = _unpack(data)
        values = _StatelessValues(self, trainable, non_trainable, optimizer_values)

        def generators():
            losses, fake_a, fake_b = self._generator_losses(a, b, training=True)
            return losses, (fake_a, fake_b)

        losses, (fake_a, fake_b) = values.train(
            self.generator_optimizer, self.generator_variables, generators
        )
        with values.scope() as scope:
            pooled_a = self.pool_a(ops.stop_gradient(fake_a))
            pooled_b = self.pool_b(ops.stop_gradient(fake_b))
        values.non_trainable = values.non_trainable_in(scope)

        def discriminators():
            return self._discriminator_losses(a, b, pooled_a, pooled_b), None

        losses.update(
            values.train(self.discriminator_optimizer, self.discriminator_variables, discriminators)[0]
        )
        metrics = self.metrics_variables
        with keras.StatelessScope(state_mapping=list(zip(metrics, metric_values))) as scope:
            logs = self._track(losses)
        metric_values = [scope.get_current_value(v) for v in metrics]
        return logs, (values.trainable, values.non_trainable, values.optimizer, metric_values)

    def test_step(self, *args):
        if keras.backend.backend() == "jax":
            state, data = args
            trainable, non_trainable, metric_values = state
            values = _StatelessValues(self, trainable, non_trainable, [])
            metrics = self.metrics_variables
            mapping = list(zip(metrics, metric_values))
            with values.scope(), keras.StatelessScope(state_mapping=mapping) as scope:
                logs = self._evaluate(*_unpack(data))
                metric_values = [scope.get_current_value(v) for v in metrics]
            return logs, (trainable, non_trainable, metric_values)
        return self._evaluate(*_unpack(args[0]))

    def _evaluate(self, a, b):
        losses, fake_a, fake_b = self._generator_losses(a, b, training=False)
        losses["disc_a"] = self._discriminator_loss(self.discriminator_a, a, fake_a, training=False)
        losses["disc_b"] = self._discriminator_loss(self.discriminator_b, b, fake_b, training=False)
        return self._track(_global_mean(losses))

    def _track(self, losses):
        for name, tracker in self.loss_trackers.items():
            tracker.update_state(losses[name])
        results = {name: tracker.result() for name, tracker in self.loss_trackers.items()}
        if _multi_worker():
            import tensorflow as tf

            # Keras 3 averages the workers' logs along axis 0, which a scalar lacks (keras-team/keras
            # via tensorflow/tensorflow#72388); every replica logs the same global mean anyway.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results


class _OptimizerPair:
    """``CycleGAN.optimizer`` on JAX: the generators' optimizer, whose ``variables`` also hold the
    discriminators' one, so that Keras' JAX trainer carries both through its compiled step. Everything
    else (``iterations``, ``learning_rate``) is the generators' optimizer's; ``optimizers`` lists both,
    as Keras' callbacks expect of an optimizer that holds several."""

    def __init__(self, model: CycleGAN):
        self._model = model

    @property
    def optimizers(self) -> list:
        return list(self._model.optimizers.values())

    @property
    def variables(self) -> list:
        return [v for optimizer in self.optimizers for v in optimizer.variables]

    @property
    def built(self) -> bool:
        return all(optimizer.built for optimizer in self.optimizers)

    def build(self, variables=None) -> None:
        self._model.build_optimizers()

    def __getattr__(self, name):
        return getattr(self._model.generator_optimizer, name)


class _StatelessValues:
    """The values of a model's variables while a JAX step runs statelessly: read, replaced, and put
    in a ``keras.StatelessScope`` so that the networks, written once, run on them."""

    def __init__(self, model: CycleGAN, trainable, non_trainable, optimizer_values):
        self._trainable_refs = list(model.trainable_variables)
        self._non_trainable_refs = list(model.non_trainable_variables)
        self._index = {id(v): i for i, v in enumerate(self._trainable_refs)}
        self.trainable = list(trainable)
        self.non_trainable = list(non_trainable)
        self.optimizer = list(optimizer_values)
        self._optimizer_slices = {}
        # The loss scale of a LossScaleOptimizer is one of its variables, read when the loss is scaled.
        self._optimizer_refs = [v for optimizer in model.optimizers.values() for v in optimizer.variables]
        start = 0
        for optimizer in model.optimizers.values():
            self._optimizer_slices[id(optimizer)] = slice(start, start + len(optimizer.variables))
            start += len(optimizer.variables)

    def train(self, optimizer, variables, losses_of):
        """One update of ``variables`` by ``optimizer`` on the sum of the losses that ``losses_of()``
        returns (with something else to pass on); returns both."""
        import jax

        index = [self._index[id(v)] for v in variables]

        def loss(own):
            with self.scope(replace=dict(zip(index, own))) as scope:
                losses, extra = losses_of()
                total = optimizer.scale_loss(sum(losses.values()))
            return total, (losses, extra, self.non_trainable_in(scope))

        own = [self.trainable[i] for i in index]
        (_, (losses, extra, self.non_trainable)), grads = jax.value_and_grad(loss, has_aux=True)(own)
        where = self._optimizer_slices[id(optimizer)]
        new_own, self.optimizer[where] = optimizer.stateless_apply(self.optimizer[where], grads, own)
        for i, value in zip(index, new_own):
            self.trainable[i] = value
        return losses, extra

    def non_trainable_in(self, scope) -> list:
        found = (scope.get_current_value(v) for v in self._non_trainable_refs)
        return [old if value is None else value for value, old in zip(found, self.non_trainable)]

    def scope(self, replace: dict | None = None) -> keras.StatelessScope:
        """A scope in which the model's variables read these values (``replace``: index -> value)."""
        trainable = [(replace or {}).get(i, value) for i, value in enumerate(self.trainable)]
        mapping = [
            *zip(self._trainable_refs, trainable),
            *zip(self._non_trainable_refs, self.non_trainable),
            *zip(self._optimizer_refs, self.optimizer),
        ]
        return keras.StatelessScope(state_mapping=mapping)


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


def _multi_worker() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    extended = tf.distribute.get_strategy().extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def _global_mean(losses: dict) -> dict:
    """Each loss averaged over all replicas (of every worker), so that every replica logs the same."""
    if keras.backend.backend() != "tensorflow":
        return losses
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return losses
    names = list(losses)
    stacked = tf.stack([tf.cast(losses[name], tf.float32) for name in names])
    return dict(zip(names, tf.unstack(context.all_reduce("mean", stacked))))


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


def _image_batch_shape(data) -> tuple | None:
    """The shape of domain A's batches, when the data says it up front."""
    if _is_tf_dataset(data):
        import tensorflow as tf

        spec = data.element_spec
        spec = spec["a"] if isinstance(spec, dict) else spec[0] if isinstance(spec, tuple) else None
        return tuple(spec.shape) if isinstance(spec, tf.TensorSpec) and spec.shape.rank == 4 else None
    return None


def _loss_scaled(optimizer):
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)
