"""The official learning-rate policies (``--lr_policy``): linear (CycleGAN's), step, plateau, cosine.

Each gives the rate of an epoch, counted from 1, as the official scheduler gives it after the
``epoch - 1`` updates that the official ``train.py`` makes at the end of each epoch before it.
"""

from __future__ import annotations

import math

import keras

from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import check_choice
from cyclegan_keras.training.config import LR_POLICIES

# The official schedulers' fixed settings: StepLR's gamma; ReduceLROnPlateau's factor, patience,
# relative threshold and eps (it fed the metric 0 every epoch, so only patience matters).
STEP_GAMMA = 0.1
PLATEAU_FACTOR = 0.2
PLATEAU_PATIENCE = 5
PLATEAU_EPS = 1e-8
DEFAULT_LR_DECAY_ITERS = 50


def linear_decay_factor(epoch: int, n_epochs: int = 100, n_epochs_decay: int = 100) -> float:
    """The factor on the initial learning rate for ``epoch``, counted from 1 as in the paper.

    ``1 - max(0, epoch - n_epochs) / (n_epochs_decay + 1)``: 1 for the first ``n_epochs`` epochs, then
    falling linearly to ``1 / (n_epochs_decay + 1)`` at the last epoch, as the official ``linear`` policy.
    """
    if epoch < 1:
        raise UsageError(f"epochs count from 1, got {epoch}")
    return 1.0 - max(0, epoch - n_epochs) / float(n_epochs_decay + 1)


def policy_factor(
    policy: str,
    epoch: int,
    n_epochs: int = 100,
    n_epochs_decay: int = 100,
    lr_decay_iters: int | None = None,
    learning_rate: float = 2e-4,
) -> float:
    """The factor on the initial learning rate for ``epoch`` (from 1) under an official ``--lr_policy``.

    ``linear``: ``linear_decay_factor``. ``step``: times 0.1 every ``lr_decay_iters`` epochs (50).
    ``plateau``: times 0.2 whenever 6 epochs pass without the metric improving, which with the
    official metric (0 every epoch) is every 6 epochs after the first, until a cut would change the rate
    by less than 1e-8 (so it depends on ``learning_rate``). ``cosine``: ``(1 + cos(pi * (epoch - 1) /
    n_epochs)) / 2``, rising again after ``n_epochs`` as PyTorch's ``CosineAnnealingLR`` does.
    """
    check_choice("lr_policy", policy, LR_POLICIES)
    if epoch < 1:
        raise UsageError(f"epochs count from 1, got {epoch}")
    updates = epoch - 1
    if policy == "linear":
        return linear_decay_factor(epoch, n_epochs, n_epochs_decay)
    if policy == "step":
        return STEP_GAMMA ** (updates // (lr_decay_iters or DEFAULT_LR_DECAY_ITERS))
    if policy == "cosine":
        return (1 + math.cos(math.pi * updates / max(n_epochs, 1))) / 2
    rate, bad = learning_rate, 0
    for update in range(updates):
        if update == 0:  # the first metric is the best so far
            continue
        bad += 1
        if bad > PLATEAU_PATIENCE:
            bad = 0
            if rate - rate * PLATEAU_FACTOR > PLATEAU_EPS:
                rate *= PLATEAU_FACTOR
    return rate / learning_rate


def model_optimizers(model: keras.Model) -> dict[str, keras.optimizers.Optimizer]:
    """A model's optimizers by name: a ``CycleGAN``'s ``optimizers``, or any model's ``optimizer``."""
    if isinstance(getattr(type(model), "optimizers", None), property):
        return model.optimizers
    return {"optimizer": model.optimizer} if getattr(model, "optimizer", None) is not None else {}


class LearningRatePolicy(keras.callbacks.Callback):
    """Sets both optimizers' learning rate at the start of each epoch by an official ``--lr_policy``.

    Works with ``model.fit`` on a ``CycleGAN`` (both its optimizers) or any model (its ``optimizer``),
    and with ``initial_epoch`` when training resumes: each epoch's rate depends on its number only.

    Args:
        policy: ``linear``, ``step``, ``plateau`` or ``cosine`` (see ``policy_factor``).
        n_epochs: epochs at the initial learning rate (official ``n_epochs``, 100); the cosine's period.
        n_epochs_decay: epochs of linear decay after them (official ``n_epochs_decay``, 100).
        learning_rate: the initial learning rate (official ``lr``, 2e-4).
        lr_decay_iters: epochs between the step policy's decays (official ``lr_decay_iters``, 50).
    """

    def __init__(
        self,
        policy: str = "linear",
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        learning_rate: float = 2e-4,
        lr_decay_iters: int | None = None,
    ):
        super().__init__()
        check_choice("lr_policy", policy, LR_POLICIES)
        if n_epochs < 0 or n_epochs_decay < 0:
            raise UsageError("n_epochs and n_epochs_decay must be >= 0")
        self.policy = policy
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay
        self.learning_rate = learning_rate
        self.lr_decay_iters = lr_decay_iters

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of ``epoch``, counted from 1."""
        factor = policy_factor(
            self.policy, epoch, self.n_epochs, self.n_epochs_decay, self.lr_decay_iters, self.learning_rate
        )
        return self.learning_rate * factor

    def on_epoch_begin(self, epoch, logs=None):
        rate = self.learning_rate_at(epoch + 1)  # Keras counts epochs from 0.
        for optimizer in model_optimizers(self.model).values():
            optimizer.learning_rate = rate

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = self.learning_rate_at(epoch + 1)


class LinearDecay(LearningRatePolicy):
    """The official CycleGAN policy: ``LearningRatePolicy("linear", ...)``, the rate constant for
    ``n_epochs`` epochs, then falling linearly by ``linear_decay_factor``.

    Args:
        n_epochs: epochs at the initial learning rate (official ``n_epochs``, 100).
        n_epochs_decay: epochs of linear decay after them (official ``n_epochs_decay``, 100).
        learning_rate: the initial learning rate (official ``lr``, 2e-4).
    """

    def __init__(self, n_epochs: int = 100, n_epochs_decay: int = 100, learning_rate: float = 2e-4):
        super().__init__("linear", n_epochs, n_epochs_decay, learning_rate)
