"""CycleGAN (Zhu et al., 2017) in Keras 3 on TensorFlow: the official recipe with ``model.fit``.

The public API:

- networks: ``resnet_generator``, ``unet_generator``, ``patchgan_discriminator`` and the layers
  ``ReflectionPadding2D`` and ``InstanceNormalization``;
- training: ``CycleGAN`` (a ``keras.Model``), ``ImagePool``, ``LinearDecay``, ``official_adam`` and the
  adversarial losses;
- official checkpoints: ``load_official_weights``, ``load_official_generator``.
"""

from cyclegan_keras.layers import InstanceNormalization, ReflectionPadding2D
from cyclegan_keras.losses import (
    GAN_MODES,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    gradient_penalty,
)
from cyclegan_keras.model import LOSS_NAMES, CycleGAN, official_adam
from cyclegan_keras.networks import patchgan_discriminator, resnet_generator, unet_generator
from cyclegan_keras.official import load_official_generator, load_official_weights, official_keys
from cyclegan_keras.pool import ImagePool
from cyclegan_keras.schedule import LinearDecay, linear_decay_factor

__version__ = "0.1.0"

__all__ = [
    "GAN_MODES",
    "LOSS_NAMES",
    "CycleGAN",
    "ImagePool",
    "InstanceNormalization",
    "LinearDecay",
    "ReflectionPadding2D",
    "discriminator_adversarial_loss",
    "generator_adversarial_loss",
    "gradient_penalty",
    "linear_decay_factor",
    "load_official_generator",
    "load_official_weights",
    "official_adam",
    "official_keys",
    "patchgan_discriminator",
    "resnet_generator",
    "unet_generator",
]
