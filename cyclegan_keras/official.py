"""Loading the official PyTorch CycleGAN checkpoints (``horse2zebra.pth`` and the like)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import keras
import numpy as np

from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.networks import resnet_generator, unet_generator
from cyclegan_keras.pth import read_pth

# Instance-norm buffers that old official checkpoints carry; the official loader drops them too.
_NORM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _resnet_keys(model: keras.Model) -> dict[str, str]:
    n_blocks = sum(1 for layer in model.layers if re.fullmatch(r"res_\d+_conv_1", layer.name))
    keys = {"conv_in": "model.1", "down_1": "model.4", "down_2": "model.7"}
    for b in range(n_blocks):
        keys[f"res_{b}_conv_1"] = f"model.{10 + b}.conv_block.1"
        keys[f"res_{b}_conv_2"] = f"model.{10 + b}.conv_block.5"
    keys["up_1"] = f"model.{10 + n_blocks}"
    keys["up_2"] = f"model.{13 + n_blocks}"
    keys["conv_out"] = f"model.{17 + n_blocks}"
    return keys


def _unet_keys(model: keras.Model) -> dict[str, str]:
    depths = sorted(
        int(m.group(1)) for layer in model.layers if (m := re.fullmatch(r"unet_down_(\d+)", layer.name))
    )
    innermost = depths[-1]
    keys = {}
    prefix = "model.model."
    for depth in depths:
        # Official block layouts: outermost [down, sub, relu, up, tanh]; innermost [lrelu, down,
        # relu, up, norm]; others [lrelu, down, norm, sub, relu, up, norm].
        keys[f"unet_down_{depth}"] = prefix + ("0" if depth == 0 else "1")
        keys[f"unet_up_{depth}"] = prefix + ("3" if depth in (0, innermost) else "5")
        prefix += ("1" if depth == 0 else "3") + ".model."
    return keys


def _patchgan_keys(model: keras.Model) -> dict[str, str]:
    n_convs = sum(1 for layer in model.layers if re.fullmatch(r"conv_\d+", layer.name))
    return {f"conv_{i}": f"model.{0 if i == 0 else 3 * i - 1}" for i in range(n_convs)}


def official_keys(model: keras.Model) -> dict[str, str]:
    """Maps each weighted layer of a model built by this package to its official state-dict prefix.

    Args:
        model: a model from ``resnet_generator``, ``unet_generator`` or ``patchgan_discriminator``.

    Returns:
        ``{keras_layer_name: "model.K"}``; the official keys are that prefix plus ``.weight``/``.bias``.
    """
    names = {layer.name for layer in model.layers}
    if "conv_in" in names:
        return _resnet_keys(model)
    if "unet_down_0" in names:
        return _unet_keys(model)
    if "conv_0" in names:
        return _patchgan_keys(model)
    raise UsageError(
        f"Model {model.name!r} was not built by resnet_generator, unet_generator or "
        "patchgan_discriminator, so its layers have no official counterparts."
    )


def _clean(state_dict: Mapping[str, object]) -> dict[str, np.ndarray]:
    arrays = {}
    for key, value in state_dict.items():
        if key.rsplit(".", 1)[-1] in _NORM_BUFFERS:
            continue
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        arrays[key.removeprefix("module.")] = np.asarray(value)
    return arrays


def load_official_weights(model: keras.Model, state_dict: Mapping[str, object]) -> keras.Model:
    """Fills a model built by this package with the weights of an official PyTorch checkpoint.

    Kernels are transposed from PyTorch's layouts (conv ``(out, in, kh, kw)``, transposed conv
    ``(in, out, kh, kw)``) to Keras' ``(kh, kw, in, out)`` and ``(kh, kw, out, in)``. Instance-norm
    running statistics, which old checkpoints carry and the official code ignores, are dropped.

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
    expected = {f"{prefix}.{part}" for prefix in mapping.values() for part in ("weight", "bias")}
    missing = sorted(expected - arrays.keys())
    unexpected = sorted(arrays.keys() - expected)
    if missing or unexpected:
        raise UsageError(
            f"The checkpoint does not fit model {model.name!r}. "
            f"Missing keys: {missing or 'none'}. Unexpected keys: {unexpected or 'none'}."
        )
    for layer_name, prefix in mapping.items():
        layer = model.get_layer(layer_name)
        kernel = arrays[f"{prefix}.weight"].transpose(2, 3, 1, 0)
        bias = arrays[f"{prefix}.bias"]
        shapes = [tuple(w.shape) for w in layer.weights]
        if [kernel.shape, bias.shape] != shapes:
            raise UsageError(
                f"{prefix} has kernel {kernel.shape} and bias {bias.shape} after transposing, but "
                f"layer {layer_name!r} of {model.name!r} needs {shapes}: the architecture differs."
            )
        layer.set_weights([kernel, bias])
    return model


def read_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads an official checkpoint, a PyTorch ``.pth`` (no PyTorch needed) or an ``.npz`` of the same keys.

    ``.pth`` files of both of PyTorch's formats are read by ``cyclegan_keras.pth.read_pth``, which is
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

    The architecture (ResNet with its number of blocks, or U-Net with its depth) and ``ngf`` are
    read from the keys and shapes, so ``horse2zebra.pth`` gives a 9-block ResNet generator.

    Args:
        path: a ``.pth`` file or an ``.npz`` of the same keys.
        name: the Keras model's name.

    Returns:
        The generator as a functional ``keras.Model``.
    """
    arrays = read_state_dict(path)
    if "model.1.weight" in arrays:
        block_key = re.compile(r"model\.(\d+)\.conv_block\.1\.weight")
        blocks = {m.group(1) for key in arrays if (m := block_key.fullmatch(key))}
        ngf = arrays["model.1.weight"].shape[0]
        model = resnet_generator(n_blocks=len(blocks), ngf=int(ngf), name=name)
    elif "model.model.0.weight" in arrays:
        down_key = re.compile(r"model\.(model\.[13]\.)*model\.[01]\.weight")
        downs = sum(1 for key in arrays if down_key.fullmatch(key))
        ngf = arrays["model.model.0.weight"].shape[0]
        model = unet_generator(num_downs=downs, ngf=int(ngf), name=name)
    else:
        raise UsageError(
            f"{os.fspath(path)!r} is not an official ResNet or U-Net generator checkpoint "
            f"(first keys: {sorted(arrays)[:5]})."
        )
    return load_official_weights(model, arrays)
