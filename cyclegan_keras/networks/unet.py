"""The official U-Net generator (``unet_256``, ``unet_128``).

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
from cyclegan_keras.networks.style import Style, check_positive, norm_of, resolve_style, tanh_output

# The first layer's name: it tells a model of this family (``cyclegan_keras.networks.official``).
MARKER = "unet_down_0"


def build(depth: int, **settings) -> keras.Model:
    """The registry's builder (``networks.architectures``): ``unet_generator`` of this depth."""
    return unet_generator(num_downs=depth, **settings)


def unet_generator(
    num_downs: int = 8,
    ngf: int = 64,
    input_channels: int = 3,
    output_channels: int = 3,
    use_dropout: bool = False,
    name: str = "unet_generator",
    style: Style | None = None,
) -> keras.Model:
    """Builds the official U-Net generator (``unet_256`` with 8 downsamplings, ``unet_128`` with 7).

    Every level halves the size with a 4x4 stride-2 conv and the skip connections concatenate, so the
    height and width must be multiples of ``2 ** num_downs``.

    Args:
        num_downs: downsamplings; at least 5.
        ngf: filters of the outermost conv layer.
        input_channels: channels of the input images.
        output_channels: channels of the output images.
        use_dropout: dropout 0.5 in the innermost ``ngf * 8`` levels (off for CycleGAN).
        name: the model's name.
        style: the norm and initialisation (``Style()``: instance norm, N(0, 0.02)).

    Returns:
        A functional ``keras.Model`` from ``[N, H, W, C]`` images in [-1, 1] to the same size.
    """
    check_positive(ngf=ngf, input_channels=input_channels, output_channels=output_channels)
    if not isinstance(num_downs, int) or num_downs < 5:
        raise UsageError(f"num_downs must be an integer >= 5, got {num_downs!r}")
    style = resolve_style(style)
    # Filters (outer, inner) of each level, outermost first, as the official block stack.
    levels = [(output_channels, ngf), (ngf, ngf * 2), (ngf * 2, ngf * 4), (ngf * 4, ngf * 8)]
    levels += [(ngf * 8, ngf * 8)] * (num_downs - 4)
    innermost = len(levels) - 1

    def block(x, depth: int):
        # Every level but the outermost concatenates its input with its output (the skip).
        if depth == 0:
            return level(x, depth)
        return layers.Concatenate(name=f"unet_skip_{depth}")([x, level(x, depth)])

    def level(x, depth: int):
        outer, inner = levels[depth]
        if depth > 0:
            x = layers.LeakyReLU(0.2, name=f"unet_down_{depth}_lrelu")(x)
        x = layers.ZeroPadding2D(1, name=f"unet_down_{depth}_pad")(x)
        x = style.conv(inner, 4, 2, f"unet_down_{depth}")(x)
        if 0 < depth < innermost:
            x = style.normalize(x, f"unet_down_{depth}_norm")
        if depth < innermost:
            x = block(x, depth + 1)
        x = layers.ReLU(name=f"unet_up_{depth}_relu")(x)
        # The outermost transposed conv keeps its bias whatever the norm, as officially.
        x = style.conv_transpose(outer, 4, f"unet_up_{depth}", bias=True if depth == 0 else None)(x)
        x = layers.Cropping2D(1, name=f"unet_up_{depth}_crop")(x)
        if depth == 0:
            return x
        x = style.normalize(x, f"unet_up_{depth}_norm")
        if use_dropout and 4 <= depth < innermost:
            x = layers.Dropout(0.5, name=f"unet_up_{depth}_dropout")(x)
        return x

    inputs = keras.Input((None, None, input_channels), name="image")
    return keras.Model(inputs, tanh_output(block(inputs, 0)), name=name)


def official_keys(model: keras.Model) -> dict[str, str]:
    """Each layer of a U-Net generator to its official state-dict prefix."""
    depths = sorted(
        int(m.group(1)) for layer in model.layers if (m := re.fullmatch(r"unet_down_(\d+)", layer.name))
    )
    innermost = depths[-1]
    keys = {}
    prefix = "model.model."
    for depth in depths:
        # Official block layouts: outermost [down, sub, relu, up, tanh]; innermost [lrelu, down,
        # relu, up, norm]; others [lrelu, down, norm, sub, relu, up, norm(, dropout)].
        keys[f"unet_down_{depth}"] = prefix + ("0" if depth == 0 else "1")
        keys[f"unet_up_{depth}"] = prefix + ("3" if depth in (0, innermost) else "5")
        if 0 < depth < innermost:
            keys[f"unet_down_{depth}_norm"] = prefix + "2"
            keys[f"unet_up_{depth}_norm"] = prefix + "6"
        elif depth == innermost:
            keys[f"unet_up_{depth}_norm"] = prefix + "4"
        prefix += ("1" if depth == 0 else "3") + ".model."
    return keys


def from_official(arrays: Mapping[str, np.ndarray], name: str) -> keras.Model | None:
    """The generator of an official checkpoint's keys and shapes, unfilled; None where the checkpoint
    is of another family."""
    if "model.model.0.weight" not in arrays:
        return None
    down_key = re.compile(r"model\.(model\.[13]\.)*model\.[01]\.weight")
    downs = sum(1 for key in arrays if down_key.fullmatch(key))
    first, last = arrays["model.model.0.weight"], arrays["model.model.3.weight"]
    # Dropout leaves no keys, and evaluation does not use it: a U-Net is built without.
    return unet_generator(
        num_downs=downs,
        ngf=int(first.shape[0]),
        input_channels=int(first.shape[1]),
        output_channels=int(last.shape[1]),
        style=Style(norm_of(arrays, "model.model.1.model.1", "model.model.1.model.2")),
        name=name,
    )
