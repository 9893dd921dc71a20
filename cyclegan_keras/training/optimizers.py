"""The official optimizer: Adam with PyTorch's epsilon placement, and its settings."""

from __future__ import annotations

import keras

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import PACKAGE


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
        if keras.backend.backend() != "torch" or self.amsgrad:
            return super()._backend_update_step(grads, trainable_variables, learning_rate)
        from cyclegan_keras.training.steps.torch import foreach_adam_update

        foreach_adam_update(self, grads, trainable_variables, learning_rate)


def official_adam(learning_rate: float = 2e-4, beta_1: float = 0.5) -> keras.optimizers.Adam:
    """Adam as the official code sets it: lr 2e-4, betas (0.5, 0.999), epsilon 1e-8 where PyTorch adds it
    (``OfficialAdam``)."""
    return OfficialAdam(learning_rate=learning_rate, beta_1=beta_1, beta_2=0.999, epsilon=1e-8)


def loss_scaled(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.LossScaleOptimizer:
    """``optimizer`` wrapped for ``mixed_float16`` training (once)."""
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return optimizer
    return keras.optimizers.LossScaleOptimizer(optimizer)
