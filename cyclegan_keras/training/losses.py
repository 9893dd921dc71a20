"""Adversarial losses of the official code (``lsgan``, ``vanilla``, ``wgangp``) and ``hinge``.

Written once in ``keras.ops``, so they run on every Keras backend; only the gradient penalty's input
gradient is taken with each backend's own machinery.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import check_choice
from cyclegan_keras.training.config import GAN_MODES
from cyclegan_keras.training.steps import backend_steps

GRADIENT_PENALTY_WEIGHT = 10.0


def check_gan_mode(gan_mode: str) -> str:
    """Returns ``gan_mode`` if it is one of ``GAN_MODES``, else raises a ``ValueError`` listing them."""
    return check_choice("gan_mode", gan_mode, GAN_MODES)


def generator_adversarial_loss(fake_scores, gan_mode: str = "lsgan"):
    """The generator's adversarial term: how far the discriminator is from calling its fakes real.

    Args:
        fake_scores: the discriminator's raw scores of generated images.
        gan_mode: one of ``GAN_MODES``.
    """
    scores = ops.cast(fake_scores, "float32")
    if gan_mode == "lsgan":
        return ops.mean(ops.square(scores - 1.0))
    if gan_mode == "vanilla":
        return _cross_entropy(scores, 1.0)
    if gan_mode in ("wgangp", "hinge"):
        return -ops.mean(scores)
    raise UsageError(check_gan_mode(gan_mode))


def discriminator_adversarial_loss(real_scores, fake_scores, gan_mode: str = "lsgan"):
    """The discriminator's loss, ``0.5 * (loss on real + loss on fake)`` as in the official code.

    Args:
        real_scores: raw scores of real images.
        fake_scores: raw scores of generated (pooled, detached) images.
        gan_mode: one of ``GAN_MODES``.
    """
    real = ops.cast(real_scores, "float32")
    fake = ops.cast(fake_scores, "float32")
    if gan_mode == "lsgan":
        terms = ops.mean(ops.square(real - 1.0)) + ops.mean(ops.square(fake))
    elif gan_mode == "vanilla":
        terms = _cross_entropy(real, 1.0) + _cross_entropy(fake, 0.0)
    elif gan_mode == "wgangp":
        terms = -ops.mean(real) + ops.mean(fake)
    elif gan_mode == "hinge":
        terms = ops.mean(ops.relu(1.0 - real)) + ops.mean(ops.relu(1.0 + fake))
    else:
        raise UsageError(check_gan_mode(gan_mode))
    return 0.5 * terms


def gradient_penalty(
    discriminator: Callable,
    real,
    fake,
    weight: float = GRADIENT_PENALTY_WEIGHT,
    seed: keras.random.SeedGenerator | int | None = None,
):
    """WGAN-GP's penalty (Gulrajani et al., 2017): ``weight * mean((|grad D(x)|_2 - 1)^2)``.

    ``x`` mixes each real image with a fake one at a uniform random ratio, as the official
    ``cal_gradient_penalty(type="mixed")``; the norm is over each whole image. ``seed`` draws the
    ratios (a ``SeedGenerator`` inside a compiled JAX step).
    """
    real = ops.cast(real, "float32")
    alpha = keras.random.uniform((ops.shape(real)[0], 1, 1, 1), seed=seed)
    mixed = alpha * real + (1.0 - alpha) * ops.cast(fake, "float32")

    def scores(x):
        return ops.sum(ops.cast(discriminator(x, training=True), "float32"))

    grads = backend_steps().input_gradient(scores, mixed)
    norms = ops.sqrt(ops.sum(ops.square(grads), axis=(1, 2, 3)) + 1e-16)
    return weight * ops.mean(ops.square(norms - 1.0))


def _cross_entropy(logits, target: float):
    labels = ops.full(ops.shape(logits), target, dtype="float32")
    return ops.mean(ops.binary_crossentropy(labels, logits, from_logits=True))
