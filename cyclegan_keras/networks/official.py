"""Loading the official PyTorch CycleGAN checkpoints (``horse2zebra.pth`` and the like)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import keras
import numpy as np

from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.networks.architectures import family_modules
from cyclegan_keras.networks.discriminators import OFFICIAL_KEYS
from cyclegan_keras.networks.pth import read_pth

# Norm buffers: batch norm's running statistics are weights here; instance-norm ones, which old official
# checkpoints carry, are dropped (the official loader drops them too), as is every batch counter.
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def official_keys(model: keras.Model) -> dict[str, str]:
    """Maps each weighted layer of a model built by this package to its official state-dict prefix.

    Args:
        model: a model from ``resnet_generator``, ``unet_generator``, ``patchgan_discriminator`` or
            ``pixel_discriminator``.

    Returns:
        ``{keras_layer_name: "model.K"}`` for the layers that hold weights (convs; batch norms); the
        official keys are that prefix plus ``.weight``/``.bias`` (and batch norm's running statistics).
    """
    names = {layer.name for layer in model.layers}
    keys_of = {module.MARKER: module.official_keys for module in family_modules()} | OFFICIAL_KEYS
    for marker, keys in keys_of.items():
        if marker in names:
            return {
                name: key
                for name, key in keys(model).items()
                if name in names and model.get_layer(name).weights
            }
    raise UsageError(
        f"Model {model.name!r} was not built by resnet_generator, unet_generator, patchgan_discriminator "
        "or pixel_discriminator, so its layers have no official counterparts."
    )


def _clean(state_dict: Mapping[str, object]) -> dict[str, np.ndarray]:
    arrays = {}
    for key, value in state_dict.items():
        if key.endswith(".num_batches_tracked"):
            continue
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        arrays[key.removeprefix("module.")] = np.asarray(value)
    return arrays


def _official_parts(layer: keras.layers.Layer) -> list[str]:
    """The official keys' suffixes for ``layer``'s weights, in the order of ``layer.weights``."""
    if isinstance(layer, keras.layers.BatchNormalization):
        return ["weight", "bias", "running_mean", "running_var"]
    return ["weight", "bias"] if layer.use_bias else ["weight"]


def load_official_weights(model: keras.Model, state_dict: Mapping[str, object]) -> keras.Model:
    """Fills a model built by this package with the weights of an official PyTorch checkpoint.

    Kernels are transposed from PyTorch's layouts (conv ``(out, in, kh, kw)``, transposed conv
    ``(in, out, kh, kw)``) to Keras' ``(kh, kw, in, out)`` and ``(kh, kw, out, in)``; batch norms take
    their scale, shift and running statistics. Instance-norm running statistics, which old checkpoints
    carry and the official code ignores, are dropped.

    Args:
        model: the Keras model, of the same architecture as the checkpoint.
        state_dict: official key -> array (numpy arrays or torch tensors).

    Returns:
        The same model, for chaining.

    Raises:
        ValueError: naming the missing or unexpected keys, or the first shape that does not fit.
    """
    arrays = _clean(state_dict)
    mapping = official_keys(model)
    parts = {name: _official_parts(model.get_layer(name)) for name in mapping}
    expected = {f"{mapping[name]}.{part}" for name in mapping for part in parts[name]}
    arrays = {k: v for k, v in arrays.items() if k in expected or k.rsplit(".", 1)[-1] not in _NORM_BUFFERS}
    missing = sorted(expected - arrays.keys())
    unexpected = sorted(arrays.keys() - expected)
    if missing or unexpected:
        raise UsageError(
            f"The checkpoint does not fit model {model.name!r}. "
            f"Missing keys: {missing or 'none'}. Unexpected keys: {unexpected or 'none'}."
        )
    for layer_name, prefix in mapping.items():
        layer = model.get_layer(layer_name)
        values = [arrays[f"{prefix}.{part}"] for part in parts[layer_name]]
        if values[0].ndim == 4:
            values[0] = values[0].transpose(2, 3, 1, 0)
        shapes = [tuple(w.shape) for w in layer.weights]
        if [value.shape for value in values] != shapes:
            raise UsageError(
                f"{prefix} has weights of shapes {[value.shape for value in values]} after transposing, but "
                f"layer {layer_name!r} of {model.name!r} needs {shapes}: the architecture differs."
            )
        layer.set_weights(values)
    return model


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads an official checkpoint, a PyTorch ``.pth`` (no PyTorch needed) or an ``.npz`` of the same keys.

    ``.pth`` files of both of PyTorch's formats are read by ``cyclegan_keras.networks.pth.read_pth``, which is
    as safe as ``torch.load(weights_only=True)``: a file whose pickle would run code is refused.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MissingInputError(f"No checkpoint file at {path!r}.")
    if path.endswith(".npz"):
        try:
            with np.load(path) as data:
                return _clean(dict(data))
        except (OSError, ValueError) as error:
            raise UsageError(f"{path!r} is not a readable .npz file: {error}") from error
    return _clean(read_pth(path))


def load_official_generator(path: str | os.PathLike, name: str = "generator") -> keras.Model:
    """Builds the generator stored in an official checkpoint and loads its weights.

    The architecture (ResNet with its number of blocks, or U-Net with its depth), ``ngf``, the input
    and output channels, the norm (instance, batch or none) and a ResNet's dropout are read from the
    keys and shapes, so ``horse2zebra.pth`` gives a 9-block ResNet generator.

    Args:
        path: a ``.pth`` file or an ``.npz`` of the same keys.
        name: the Keras model's name.

    Returns:
        The generator as a functional ``keras.Model``.
    """
    arrays = read_state_dict(path)
    try:
        model = next(filter(None, (module.from_official(arrays, name) for module in family_modules())), None)
    except (KeyError, IndexError) as error:  # a key the layout guess expected is not there
        raise UsageError(
            f"{os.fspath(path)!r} is not laid out as an official ResNet or U-Net generator checkpoint: it "
            f"has no {error.args[0] if error.args else 'expected'!r} (first keys: {sorted(arrays)[:5]}). "
            "Convert a checkpoint of the official code (models/networks.py), or rename its keys to them."
        ) from None
    if model is None:
        raise UsageError(
            f"{os.fspath(path)!r} is not an official ResNet or U-Net generator checkpoint "
            f"(first keys: {sorted(arrays)[:5]})."
        )
    return load_official_weights(model, arrays)
