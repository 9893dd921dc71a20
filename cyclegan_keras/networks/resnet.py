"""The official ResNet generator (``resnet_9blocks``, ``resnet_6blocks``).

Layer for layer the official PyTorch code (see ``cyclegan_keras.networks``); ``official_keys`` maps
its layers to the official state-dict keys, ``from_official`` reads the architecture from them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import keras
import numpy as np
from keras import layers

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import ReflectionPadding2D
from cyclegan_keras.networks.style import Style, check_positive, norm_of, resolve_style, tanh_output

# The first layer's name: it tells a model of this family (``cyclegan_keras.networks.official``).
MARKER = "conv_in"


def build(depth: int, **settings) -> keras.Model:
    """The registry's builder (``networks.architectures``): ``resnet_generator`` of this depth."""
    return resnet_generator(n_blocks=depth, **settings)


def resnet_generator(
    n_blocks: int = 9,
    ngf: int = 64,
    input_channels: int = 3,
    output_channels: int = 3,
    name: str = "resnet_generator",
    use_dropout: bool = False,
    style: Style | None = None,
) -> keras.Model:
    """Builds the official ResNet generator (``resnet_9blocks`` / ``resnet_6blocks``).

    c7s1-64, d128, d256, ``n_blocks`` residual blocks at 256 channels, u128, u64, c7s1-3 with tanh.
    Fully convolutional: any height and width that are multiples of 4 keep their size.

    Args:
        n_blocks: residual blocks; 9 for 256 px images, 6 for 128 px.
        ngf: filters of the first conv layer.
        input_channels: channels of the input images.
        output_channels: channels of the output images.
        name: the model's name.
        use_dropout: dropout 0.5 after each block's first ReLU (official ``--no_dropout`` off).
        style: the norm and initialisation (``Style()``: instance norm, N(0, 0.02)).

    Returns:
        A functional ``keras.Model`` mapping ``[N, H, W, C]`` images in [-1, 1] to the same size.
        11,378,179 parameters with the defaults, 7,837,699 with ``n_blocks=6``.
    """
    check_positive(ngf=ngf, input_channels=input_channels, output_channels=output_channels)
    if not isinstance(n_blocks, int) or n_blocks < 0:
        raise UsageError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
    style = resolve_style(style)
    inputs = keras.Input((None, None, input_channels), name="image")
    x = ReflectionPadding2D(3, name="pad_in")(inputs)
    x = style.conv(ngf, 7, 1, "conv_in")(x)
    x = layers.ReLU(name="relu_in")(style.normalize(x, "norm_in"))
    for i in (1, 2):
        x = layers.ZeroPadding2D(1, name=f"zero_pad_down_{i}")(x)
        x = style.conv(ngf * 2**i, 3, 2, f"down_{i}")(x)
        x = layers.ReLU(name=f"relu_down_{i}")(style.normalize(x, f"norm_down_{i}"))
    channels = ngf * 4
    for b in range(n_blocks):
        y = ReflectionPadding2D(1, name=f"res_{b}_pad_1")(x)
        y = style.conv(channels, 3, 1, f"res_{b}_conv_1")(y)
        y = layers.ReLU(name=f"res_{b}_relu")(style.normalize(y, f"res_{b}_norm_1"))
        if use_dropout:
            y = layers.Dropout(0.5, name=f"res_{b}_dropout")(y)
        y = ReflectionPadding2D(1, name=f"res_{b}_pad_2")(y)
        y = style.conv(channels, 3, 1, f"res_{b}_conv_2")(y)
        y = style.normalize(y, f"res_{b}_norm_2")
        x = layers.Add(name=f"res_{b}_add")([x, y])
    for i in (1, 2):
        x = style.conv_transpose(ngf * 2 ** (2 - i), 3, f"up_{i}")(x)
        # PyTorch's ConvTranspose2d(padding=1, output_padding=1) keeps rows [1 : 1 + 2H] of the full
        # (2H + 1)-row transposed conv.
        x = layers.Cropping2D(((1, 0), (1, 0)), name=f"crop_up_{i}")(x)
        x = layers.ReLU(name=f"relu_up_{i}")(style.normalize(x, f"norm_up_{i}"))
    x = ReflectionPadding2D(3, name="pad_out")(x)
    x = style.conv(output_channels, 7, 1, "conv_out", bias=True)(x)
    return keras.Model(inputs, tanh_output(x), name=name)


def official_keys(model: keras.Model) -> dict[str, str]:
    """Each layer of a ResNet generator to its official state-dict prefix."""
    names = {layer.name for layer in model.layers}
    n_blocks = sum(1 for name in names if re.fullmatch(r"res_\d+_conv_1", name))
    keys = {"conv_in": "model.1", "norm_in": "model.2", "down_1": "model.4", "norm_down_1": "model.5"}
    keys.update({"down_2": "model.7", "norm_down_2": "model.8"})
    # A dropout after the first ReLU shifts the rest of an official block by one module.
    shift = 1 if "res_0_dropout" in names else 0
    for b in range(n_blocks):
        keys[f"res_{b}_conv_1"] = f"model.{10 + b}.conv_block.1"
        keys[f"res_{b}_norm_1"] = f"model.{10 + b}.conv_block.2"
        keys[f"res_{b}_conv_2"] = f"model.{10 + b}.conv_block.{5 + shift}"
        keys[f"res_{b}_norm_2"] = f"model.{10 + b}.conv_block.{6 + shift}"
    keys.update({"up_1": f"model.{10 + n_blocks}", "norm_up_1": f"model.{11 + n_blocks}"})
    keys.update({"up_2": f"model.{13 + n_blocks}", "norm_up_2": f"model.{14 + n_blocks}"})
    keys["conv_out"] = f"model.{17 + n_blocks}"
    return keys


def from_official(arrays: Mapping[str, np.ndarray], name: str) -> keras.Model | None:
    """The generator of an official checkpoint's keys and shapes, unfilled; None where the checkpoint
    is of another family."""
    if "model.1.weight" not in arrays:
        return None
    block_key = re.compile(r"model\.(\d+)\.conv_block\.1\.weight")
    blocks = {m.group(1) for key in arrays if (m := block_key.fullmatch(key))}
    first, last = arrays["model.1.weight"], arrays[f"model.{17 + len(blocks)}.weight"]
    return resnet_generator(
        n_blocks=len(blocks),
        ngf=int(first.shape[0]),
        input_channels=int(first.shape[1]),
        output_channels=int(last.shape[0]),
        use_dropout=any(re.fullmatch(r"model\.\d+\.conv_block\.6\.weight", key) for key in arrays),
        style=Style(norm_of(arrays, "model.1", "model.2")),
        name=name,
    )
