"""CycleGAN (Zhu et al., 2017) in Keras 3 on TensorFlow: the official recipe with ``model.fit``.

The public API:

- networks: ``generator``, ``resnet_generator``, ``unet_generator``, ``discriminator``,
  ``patchgan_discriminator``, ``pixel_discriminator``, ``Style`` (the official ``--norm`` and
  ``--init_type``) and the layers ``ReflectionPadding2D`` and ``InstanceNormalization``;
- training: ``CycleGAN`` (a ``keras.Model``), ``ImagePool``, ``LinearDecay``, ``official_adam`` and the
  adversarial losses;
- callbacks for ``model.fit``: ``LinearDecay``, ``LearningRatePolicy`` (every official ``--lr_policy``;
  ``policy_factor``), ``SampleImages``, ``Checkpointer``, ``EvaluateEvery``;
- data: ``train_dataset``, ``Preprocessing``, ``tfds_images`` (more in ``cyclegan_keras.data``);
- whole runs: ``TrainConfig`` (``official_options_table``: its official options), ``train`` (what
  ``cyclegan-keras train`` does), ``find_run``, and
  ``run_lock`` and ``intact_checkpoint`` (one trainer per run folder; checkpoints that verify);
- pretrained and official checkpoints: ``pretrained``, ``PRETRAINED``, ``load_official_weights``,
  ``load_official_generator``, ``read_state_dict``;
- evaluation: ``frechet_distance``, ``kernel_inception_distance``, ``InceptionFeatures``, ``evaluate``;
- deployment: ``export_generator``, ``load_translator`` (more in ``cyclegan_keras.export``).

Names are imported on first use (PEP 562), so ``import cyclegan_keras`` and the command line's help
do not load TensorFlow.
"""

from __future__ import annotations

import importlib
import sys

from cyclegan_keras.version import __version__ as __version__

# public name -> the module that defines it
_EXPORTS = {
    "Checkpointer": "checkpoint",
    "intact_checkpoint": "checkpoint",
    "restore_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "Preprocessing": "data",
    "tfds_images": "data",
    "train_dataset": "data",
    "EvaluateEvery": "evaluation",
    "InceptionFeatures": "evaluation",
    "evaluate": "evaluation",
    "export_generator": "export",
    "load_translator": "export",
    "InstanceNormalization": "layers",
    "ReflectionPadding2D": "layers",
    "GAN_MODES": "losses",
    "discriminator_adversarial_loss": "losses",
    "generator_adversarial_loss": "losses",
    "gradient_penalty": "losses",
    "frechet_distance": "metrics",
    "kernel_inception_distance": "metrics",
    "run_lock": "lock",
    "LOSS_NAMES": "model",
    "CycleGAN": "model",
    "OfficialAdam": "model",
    "official_adam": "model",
    "Style": "networks",
    "discriminator": "networks",
    "generator": "networks",
    "patchgan_discriminator": "networks",
    "pixel_discriminator": "networks",
    "resnet_generator": "networks",
    "unet_generator": "networks",
    "load_official_generator": "official",
    "load_official_weights": "official",
    "official_keys": "official",
    "read_state_dict": "official",
    "ImagePool": "pool",
    "PRETRAINED": "presets",
    "pretrained": "presets",
    "find_run": "runs",
    "SampleImages": "samples",
    "sample_grid": "samples",
    "LearningRatePolicy": "schedule",
    "LinearDecay": "schedule",
    "policy_factor": "schedule",
    "linear_decay_factor": "schedule",
    "TiledGenerator": "tiling",
    "official_options_table": "config",
    "TrainConfig": "training",
    "build_cyclegan": "training",
    "train": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cyclegan_keras' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"cyclegan_keras.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _register_serializables() -> None:
    """Registers the classes that ``.keras`` files of this package name, for ``keras.models.load_model``."""
    for module in ("layers", "subpixel", "pool", "model"):
        importlib.import_module(f"cyclegan_keras.{module}")


if "keras" in sys.modules:
    # Keras is loaded already, so registering costs nothing; without Keras, the first name used from
    # the package registers them (every module that defines one imports the layers).
    _register_serializables()
