"""CycleGAN (Zhu et al., 2017) in Keras 3 on TensorFlow: the official recipe with ``model.fit``.

The public API:

- networks: ``resnet_generator``, ``unet_generator``, ``patchgan_discriminator`` and the layers
  ``ReflectionPadding2D`` and ``InstanceNormalization``;
- training: ``CycleGAN`` (a ``keras.Model``), ``ImagePool``, ``LinearDecay``, ``official_adam`` and the
  adversarial losses;
- callbacks for ``model.fit``: ``LinearDecay``, ``SampleImages``, ``Checkpointer``;
- data: ``train_dataset``, ``Preprocessing``, ``tfds_images`` (more in ``cyclegan_keras.data``);
- whole runs: ``TrainConfig`` and ``train`` (what ``cyclegan-keras train`` does);
- official checkpoints: ``load_official_weights``, ``load_official_generator``;
- deployment: ``export_generator``, ``load_translator`` (more in ``cyclegan_keras.export``).
"""

from cyclegan_keras.checkpoint import Checkpointer, restore_checkpoint, save_checkpoint
from cyclegan_keras.data import Preprocessing, tfds_images, train_dataset
from cyclegan_keras.export import export_generator, load_translator
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
from cyclegan_keras.samples import SampleImages, sample_grid
from cyclegan_keras.schedule import LinearDecay, linear_decay_factor
from cyclegan_keras.training import TrainConfig, build_cyclegan, train

__version__ = "0.1.0"

__all__ = [
    "GAN_MODES",
    "LOSS_NAMES",
    "Checkpointer",
    "CycleGAN",
    "ImagePool",
    "InstanceNormalization",
    "LinearDecay",
    "Preprocessing",
    "ReflectionPadding2D",
    "SampleImages",
    "TrainConfig",
    "build_cyclegan",
    "export_generator",
    "load_translator",
    "restore_checkpoint",
    "sample_grid",
    "save_checkpoint",
    "tfds_images",
    "train",
    "train_dataset",
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
