"""The official learning-rate policy: constant, then linear decay to zero."""

from __future__ import annotations

import keras

from cyclegan_keras.errors import UsageError


def linear_decay_factor(epoch: int, n_epochs: int = 100, n_epochs_decay: int = 100) -> float:
    """The factor on the initial learning rate for ``epoch``, counted from 1 as in the paper.

    ``1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1)``: 1 for the first ``n_epochs`` epochs, then
    falling linearly to ``1 / (n_epochs_decay + 1)`` at the last epoch, as the official ``linear`` policy.
    """
    if epoch < 1:
        raise UsageError(f"epochs count from 1, got {epoch}")
    return 1.0 - max(0, epoch - n_epochs) / float(n_epochs_decay + 1)


def model_optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """A model's optimizers by name: a ``CycleGAN``'s ``optimizers``, or any model's ``optimizer``."""
    if isinstance(getattr(type(model), "optimizers", None), property):
        return model.optimizers
    return {"optimizer": model.optimizer} if getattr(model, "optimizer", None) is not None else {}


class LinearDecay(keras.callbacks.Callback):
    """Sets both optimizers' learning rate at the start of each epoch by ``linear_decay_factor``.

    Works with ``model.fit`` on a ``CycleGAN`` (both its optimizers) or any model (its ``optimizer``),
    and with ``initial_epoch`` when training resumes.

    Args:
        n_epochs: epochs at the initial learning rate (official ``n_epochs``, 100).
        n_epochs_decay: epochs of linear decay after them (official ``n_epochs_decay``, 100).
        learning_rate: the initial learning rate (official ``lr``, 2e-4).
    """

    def __init__(self, n_epochs: int = 100, n_epochs_decay: int = 100, learning_rate: float = 2e-4):
        super().__init__()
        if n_epochs < 0 or n_epochs_decay < 0:
            raise UsageError("n_epochs and n_epochs_decay must be >= 0")
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay
        self.learning_rate = learning_rate

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of ``epoch``, counted from 1."""
        return self.learning_rate * linear_decay_factor(epoch, self.n_epochs, self.n_epochs_decay)

    def on_epoch_begin(self, epoch, logs=None):
        rate = self.learning_rate_at(epoch + 1)  # Keras counts epochs from 0.
        for optimizer in model_optimizers(self.model).values():
            optimizer.learning_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.learning_rate_at(epoch + 1)
