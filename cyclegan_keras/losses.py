"""Adversarial losses of the official code (``lsgan``, ``vanilla``, ``wgangp``) and ``hinge``."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from cyclegan_keras.config import GAN_MODES, check_choice
from cyclegan_keras.errors import UsageError

GRADIENT_PENALTY_WEIGHT = 10.0


def check_gan_mode(gan_mode: str) -> str:
    """Returns ``gan_mode`` if it is one of ``GAN_MODES``, else raises a ``ValueError`` listing them."""
    return check_choice("gan_mode", gan_mode, GAN_MODES)


def generator_adversarial_loss(fake_scores: tf.Tensor, gan_mode: str = "lsgan") -> tf.Tensor:
    """The generator's adversarial term: how far the discriminator is from calling its fakes real.

    Args:
        fake_scores: the discriminator's raw scores of generated images.
        gan_mode: one of ``GAN_MODES``.
    """
    scores = tf.cast(fake_scores, tf.float32)
    if gan_mode == "lsgan":
        return tf.reduce_mean(tf.square(scores - 1.0))
    if gan_mode == "vanilla":
        return _cross_entropy(scores, 1.0)
    if gan_mode in ("wgangp", "hinge"):
        return -tf.reduce_mean(scores)
    raise UsageError(check_gan_mode(gan_mode))


def discriminator_adversarial_loss(
    real_scores: tf.Tensor, fake_scores: tf.Tensor, gan_mode: str = "lsgan"
) -> tf.Tensor:
    """The discriminator's loss, ``0.5 * (loss on real + loss on fake)`` as in the official code.

    Args:
        real_scores: raw scores of real images.
        fake_scores: raw scores of generated (pooled, detached) images.
        gan_mode: one of ``GAN_MODES``.
    """
    real = tf.cast(real_scores, tf.float32)
    fake = tf.cast(fake_scores, tf.float32)
    if gan_mode == "lsgan":
        terms = tf.reduce_mean(tf.square(real - 1.0)) + tf.reduce_mean(tf.square(fake))
    elif gan_mode == "vanilla":
        terms = _cross_entropy(real, 1.0) + _cross_entropy(fake, 0.0)
    elif gan_mode == "wgangp":
        terms = -tf.reduce_mean(real) + tf.reduce_mean(fake)
    elif gan_mode == "hinge":
        terms = tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    else:
        raise UsageError(check_gan_mode(gan_mode))
    return 0.5 * terms


def gradient_penalty(
    discriminator: Callable[[tf.Tensor], tf.Tensor],
    real: tf.Tensor,
    fake: tf.Tensor,
    weight: float = GRADIENT_PENALTY_WEIGHT,
) -> tf.Tensor:
    """WGAN-GP's penalty (Gulrajani et al., 2017): ``weight * mean((|grad D(x)|_2 - 1)^2)``.

    ``x`` mixes each real image with a fake one at a uniform random ratio, as the official
    ``cal_gradient_penalty(type="mixed")``; the norm is over each whole image.
    """
    real = tf.cast(real, tf.float32)
    alpha = tf.random.uniform([tf.shape(real)[0], 1, 1, 1])
    mixed = alpha * real + (1.0 - alpha) * tf.cast(fake, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = tf.cast(discriminator(mixed, training=True), tf.float32)
    grads = tape.gradient(scores, mixed)
    norms = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-16)
    return weight * tf.reduce_mean(tf.square(norms - 1.0))


def _cross_entropy(logits: tf.Tensor, target: float) -> tf.Tensor:
    labels = tf.fill(tf.shape(logits), target)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))
