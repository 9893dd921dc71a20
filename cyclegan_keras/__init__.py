"""CycleGAN (Zhu et al., 2017) in Keras 3 on TensorFlow, JAX or PyTorch: the official recipe with
``model.fit``, and generators deployed to SavedModel, LiteRT, ONNX and the web.

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
- deployment: ``export_generator``, ``load_translator`` (more in ``cyclegan_keras.deploy``);
- video: ``translate_video`` (clips through any translator, with statistics along time).

Names are imported on first use (PEP 562), so ``import cyclegan_keras`` and the command line's help
do not load TensorFlow. The subpackages are the rooms of the code (``docs/ARCHITECTURE.md``):
``networks``, ``training``, ``data``, ``run``, ``deploy``, ``video``, ``evaluation``, ``system`` and
``cli``.
"""

from __future__ import annotations

import importlib
import sys

from cyclegan_keras.version import __version__ as __version__

# public name -> the module that defines it
_EXPORTS = {
    "Checkpointer": "run.checkpoint",
    "intact_checkpoint": "run.checkpoint",
    "restore_checkpoint": "run.checkpoint",
    "save_checkpoint": "run.checkpoint",
    "Preprocessing": "data.preprocessing",
    "tfds_images": "data.tfds",
    "train_dataset": "data.tf_data",
    "EvaluateEvery": "evaluation.evaluate",
    "InceptionFeatures": "evaluation.evaluate",
    "evaluate": "evaluation.evaluate",
    "export_generator": "deploy.export",
    "load_translator": "deploy.export",
    "InstanceNormalization": "networks.layers",
    "ReflectionPadding2D": "networks.layers",
    "GAN_MODES": "training.losses",
    "discriminator_adversarial_loss": "training.losses",
    "generator_adversarial_loss": "training.losses",
    "gradient_penalty": "training.losses",
    "frechet_distance": "evaluation.metrics",
    "kernel_inception_distance": "evaluation.metrics",
    "run_lock": "run.lock",
    "LOSS_NAMES": "training.model",
    "CycleGAN": "training.model",
    "OfficialAdam": "training.optimizers",
    "official_adam": "training.optimizers",
    "Style": "networks.style",
    "discriminator": "networks.discriminators",
    "generator": "networks.architectures",
    "patchgan_discriminator": "networks.discriminators",
    "pixel_discriminator": "networks.discriminators",
    "resnet_generator": "networks.resnet",
    "unet_generator": "networks.unet",
    "load_official_generator": "networks.official",
    "load_official_weights": "networks.official",
    "official_keys": "networks.official",
    "read_state_dict": "networks.official",
    "ImagePool": "training.pool",
    "PRETRAINED": "networks.pretrained",
    "pretrained": "networks.pretrained",
    "find_run": "run.folder",
    "SampleImages": "training.samples",
    "sample_grid": "training.samples",
    "LearningRatePolicy": "training.schedule",
    "LinearDecay": "training.schedule",
    "policy_factor": "training.schedule",
    "linear_decay_factor": "training.schedule",
    "TiledGenerator": "deploy.tiling",
    "official_options_table": "training.config",
    "TrainConfig": "training.loop",
    "build_cyclegan": "training.loop",
    "train": "training.loop",
    "translate_video": "video.translate",
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
    for module in (
        "networks.layers",
        "deploy.subpixel",
        "training.pool",
        "training.optimizers",
        "training.model",
    ):
        importlib.import_module(f"cyclegan_keras.{module}")


if "keras" in sys.modules:
    # Keras is loaded already, so registering costs nothing; without Keras, the first name used from
    # the package registers them (every module that defines one imports the layers).
    _register_serializables()
