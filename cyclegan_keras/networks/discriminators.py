"""The official discriminators: PatchGAN (``basic``, ``n_layers``) and PixelGAN (``pixel``).

Layer for layer the official PyTorch code (see ``cyclegan_keras.networks``); ``OFFICIAL_KEYS`` maps
their layers to the official state-dict keys.
"""

from __future__ import annotations

import re

import keras
from keras import layers

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.architectures import DISCRIMINATORS
from cyclegan_keras.networks.style import Style, check_positive, resolve_style
from cyclegan_keras.options import check_choice


def discriminator(
    architecture: str = "basic",
    ndf: int = 64,
    n_layers: int | None = None,
    input_channels: int = 3,
    name: str = "discriminator",
    style: Style | None = None,
) -> keras.Model:
    """The discriminator an official ``--netD`` name gives, as the official ``define_D``.

    Args:
        architecture: ``basic`` (the 70x70 PatchGAN: ``n_layers`` 3), ``n_layers`` (a PatchGAN of
            ``n_layers`` stride-2 layers, which must then be given) or ``pixel`` (1x1 PixelGAN).
        ndf: filters of the first conv layer.
        n_layers: stride-2 layers, for ``n_layers`` only.
        input_channels: channels of the judged images.
        name: the model's name.
        style: the norm and initialisation (``Style()``: instance norm, N(0, 0.02)).
    """
    check_choice("netd", architecture, DISCRIMINATORS)
    if architecture == "n_layers":
        if n_layers is None:
            raise UsageError("netd 'n_layers' needs its number of layers: pass n_layers (--n-layers-d N)")
        return patchgan_discriminator(n_layers, ndf, input_channels, name, style=style)
    if n_layers not in (None, 3 if architecture == "basic" else None):
        raise UsageError(
            f"netd {architecture!r} has a fixed depth, so n_layers={n_layers} would be ignored: "
            "use netd 'n_layers' for another depth"
        )
    if architecture == "pixel":
        return pixel_discriminator(ndf, input_channels, name, style=style)
    return patchgan_discriminator(3, ndf, input_channels, name, style=style)


def patchgan_discriminator(
    n_layers: int = 3,
    ndf: int = 64,
    input_channels: int = 3,
    name: str = "patchgan_discriminator",
    style: Style | None = None,
) -> keras.Model:
    """Builds the official PatchGAN discriminator (``basic`` with ``n_layers=3``: 70x70 patches).

    4x4 convs with 1 pixel of zero padding; LeakyReLU(0.2); a norm on all but the first and last
    layer; raw scores (no sigmoid). A 256x256 input gives a 30x30 map.

    Args:
        n_layers: stride-2 conv layers.
        ndf: filters of the first conv layer.
        input_channels: channels of the judged images.
        name: the model's name.
        style: the norm and initialisation (``Style()``: instance norm, N(0, 0.02)).

    Returns:
        A functional ``keras.Model`` from ``[N, H, W, C]`` images to ``[N, h, w, 1]`` patch scores.
        2,764,737 parameters with the defaults.
    """
    check_positive(n_layers=n_layers, ndf=ndf, input_channels=input_channels)
    style = resolve_style(style)
    inputs = keras.Input((None, None, input_channels), name="image")
    x = inputs
    for i in range(n_layers + 1):
        strides = 2 if i < n_layers else 1
        filters = ndf * min(2**i, 8)
        x = layers.ZeroPadding2D(1, name=f"pad_{i}")(x)
        x = style.conv(filters, 4, strides, f"conv_{i}", bias=True if i == 0 else None)(x)
        if i > 0:
            x = style.normalize(x, f"norm_{i}")
        x = layers.LeakyReLU(0.2, name=f"lrelu_{i}")(x)
    x = layers.ZeroPadding2D(1, name=f"pad_{n_layers + 1}")(x)
    x = style.conv(1, 4, 1, f"conv_{n_layers + 1}", bias=True)(x)
    return keras.Model(inputs, _scores(x), name=name)


def pixel_discriminator(
    ndf: int = 64, input_channels: int = 3, name: str = "pixel_discriminator", style: Style | None = None
) -> keras.Model:
    """Builds the official PixelGAN discriminator (``--netD pixel``): a score per pixel from 1x1 convs.

    Args:
        ndf: filters of the first conv layer.
        input_channels: channels of the judged images.
        name: the model's name.
        style: the norm and initialisation (``Style()``: instance norm, N(0, 0.02)).
    """
    check_positive(ndf=ndf, input_channels=input_channels)
    style = resolve_style(style)
    inputs = keras.Input((None, None, input_channels), name="image")
    x = style.conv(ndf, 1, 1, "pixel_conv_0", bias=True)(inputs)
    x = layers.LeakyReLU(0.2, name="pixel_lrelu_0")(x)
    x = style.conv(ndf * 2, 1, 1, "pixel_conv_1")(x)
    x = layers.LeakyReLU(0.2, name="pixel_lrelu_1")(style.normalize(x, "pixel_norm_1"))
    # Officially the last conv's bias follows the norm rule too.
    x = style.conv(1, 1, 1, "pixel_conv_2")(x)
    return keras.Model(inputs, _scores(x), name=name)


def _scores(x):
    return layers.Activation("linear", dtype="float32", name="scores")(x)


def patchgan_keys(model: keras.Model) -> dict[str, str]:
    n_convs = sum(1 for layer in model.layers if re.fullmatch(r"conv_\d+", layer.name))
    keys = {f"conv_{i}": f"model.{0 if i == 0 else 3 * i - 1}" for i in range(n_convs)}
    keys.update({f"norm_{i}": f"model.{3 * i}" for i in range(1, n_convs - 1)})
    return keys


def pixel_keys(model: keras.Model) -> dict[str, str]:
    return {
        "pixel_conv_0": "net.0",
        "pixel_conv_1": "net.2",
        "pixel_norm_1": "net.3",
        "pixel_conv_2": "net.5",
    }


# Each discriminator's first layer, and the official keys of its layers.
OFFICIAL_KEYS = {"conv_0": patchgan_keys, "pixel_conv_0": pixel_keys}
