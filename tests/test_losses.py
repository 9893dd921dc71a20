"""The adversarial losses and the gradient penalty against closed forms."""

import numpy as np
import pytest
import tensorflow as tf

from cyclegan_keras.training.losses import (
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gradient_penalty,
)

REAL = np.array([[0.5, 1.5], [-1.0, 2.0]], np.float32)
FAKE = np.array([[0.0, -0.5], [1.0, 3.0]], np.float32)


def _softplus(x):
    return np.log1p(np.exp(x))


GENERATOR = {
    "lsgan": np.mean((FAKE - 1.0) ** 2),
    "vanilla": np.mean(_softplus(-FAKE)),  # -log(sigmoid(x))
    "wgangp": -np.mean(FAKE),
    "hinge": -np.mean(FAKE),
}
DISCRIMINATOR = {
    "lsgan": 0.5 * (np.mean((REAL - 1.0) ** 2) + np.mean(FAKE**2)),
    "vanilla": 0.5 * (np.mean(_softplus(-REAL)) + np.mean(_softplus(FAKE))),
    "wgangp": 0.5 * (-np.mean(REAL) + np.mean(FAKE)),
    "hinge": 0.5 * (np.mean(np.maximum(0.0, 1.0 - REAL)) + np.mean(np.maximum(0.0, 1.0 + FAKE))),
}


@pytest.mark.parametrize("gan_mode", sorted(GENERATOR))
def test_adversarial_losses_on_known_scores(gan_mode):
    assert float(generator_adversarial_loss(FAKE, gan_mode)) == pytest.approx(GENERATOR[gan_mode], rel=1e-6)
    loss = discriminator_adversarial_loss(REAL, FAKE, gan_mode)
    assert float(loss) == pytest.approx(DISCRIMINATOR[gan_mode], rel=1e-6)


def test_gradient_penalty_of_a_linear_discriminator_is_the_weight_norm():
    # D(x) = <w, x>: its gradient is w wherever the real/fake mix lands.
    w = tf.constant(np.random.default_rng(0).normal(size=(1, 4, 4, 3)).astype(np.float32))
    real = tf.random.normal([3, 4, 4, 3])
    fake = tf.random.normal([3, 4, 4, 3])
    penalty = gradient_penalty(lambda x, training=True: tf.reduce_sum(x * w, axis=[1, 2, 3]), real, fake)
    expected = 10.0 * (np.linalg.norm(w.numpy()) - 1.0) ** 2
    assert float(penalty) == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_takes_the_norm_per_image_and_averages():
    # D(x) = |x|^2 / 2 has gradient x; with real == fake the mix is the image itself.
    images = tf.constant(np.stack([np.full((2, 2, 1), v, np.float32) for v in (0.1, 0.5, 2.0)]))
    penalty = gradient_penalty(
        lambda x, training=True: 0.5 * tf.reduce_sum(x * x, axis=[1, 2, 3]), images, images, weight=3.0
    )
    norms = np.array([0.1, 0.5, 2.0]) * 2.0  # sqrt(4 pixels) * value
    assert float(penalty) == pytest.approx(3.0 * np.mean((norms - 1.0) ** 2), rel=1e-5)
