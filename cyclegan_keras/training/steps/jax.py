"""The training step on JAX: stateless, compiled by Keras' JAX trainer, which passes the variables'
values in and takes the new ones back; gradients by ``jax.value_and_grad``."""

from __future__ import annotations

import jax
import keras
from keras import ops


def train_step(model, state, data):
    """One official step of ``model`` (a ``CycleGAN``) on a batch ``(a, b)`` and the values of its
    variables; returns the logs and the new values."""
    trainable, non_trainable, optimizer_values, metric_values = state
    a, b = model.unpack(data)
    values = _StatelessValues(model, trainable, non_trainable, optimizer_values)

    def generators():
        losses, fake_a, fake_b = model.generator_losses(a, b, training=True)
        return losses, (fake_a, fake_b)

    losses, (fake_a, fake_b) = values.train(model.generator_optimizer, model.generator_variables, generators)
    with values.scope() as scope:
        pooled_a = model.pool_a(ops.stop_gradient(fake_a))
        pooled_b = model.pool_b(ops.stop_gradient(fake_b))
    values.non_trainable = values.non_trainable_in(scope)

    def discriminators():
        return model.discriminator_losses(a, b, pooled_a, pooled_b), None

    losses.update(
        values.train(model.discriminator_optimizer, model.discriminator_variables, discriminators)[0]
    )
    metrics = model.metrics_variables
    with keras.StatelessScope(state_mapping=list(zip(metrics, metric_values))) as scope:
        logs = model.track(losses)
    metric_values = [scope.get_current_value(v) for v in metrics]
    return logs, (values.trainable, values.non_trainable, values.optimizer, metric_values)


def test_step(model, state, data):
    """The losses of a batch ``(a, b)`` without updates, on the variables' values in ``state``."""
    trainable, non_trainable, metric_values = state
    values = _StatelessValues(model, trainable, non_trainable, [])
    metrics = model.metrics_variables
    mapping = list(zip(metrics, metric_values))
    with values.scope(), keras.StatelessScope(state_mapping=mapping) as scope:
        logs = model.track(model.evaluation_losses(*model.unpack(data)))
        metric_values = [scope.get_current_value(v) for v in metrics]
    return logs, (trainable, non_trainable, metric_values)


class OptimizerPair:
    """``CycleGAN.optimizer`` on JAX: the generators' optimizer, whose ``variables`` also hold the
    discriminators' one, so that Keras' JAX trainer carries both through its compiled step. Everything
    else (``iterations``, ``learning_rate``) is the generators' optimizer's; ``optimizers`` lists both,
    as Keras' callbacks expect of an optimizer that holds several."""

    def __init__(self, model):
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

    def __init__(self, model, trainable, non_trainable, optimizer_values):
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


def input_gradient(function, x):
    """The gradient of the scalar ``function(x)`` with respect to ``x``, kept differentiable (a
    gradient penalty is itself trained through)."""
    return jax.grad(function)(x)
