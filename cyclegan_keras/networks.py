"""The official CycleGAN networks: ResNet and U-Net generators, PatchGAN discriminator.

Layer for layer the same as the official PyTorch code, channels-last. Where Keras' ``"same"``
padding would put the extra pixel on the other side, padding is explicit (``ZeroPadding2D`` or
``ReflectionPadding2D`` then a ``"valid"`` conv), and transposed convs are ``"valid"`` then cropped,
so that official weights give official outputs. Layer names are stable: the official-checkpoint
loader maps them to the PyTorch state-dict keys.
"""

from __future__ import annotations

import keras
from keras import layers

from cyclegan_keras.config import GENERATORS, check_choice
from cyclegan_keras.errors import UsageError
from cyclegan_keras.layers import InstanceNormalization, ReflectionPadding2D

INIT_STDDEV = 0.02


def _kernel_init() -> keras.initializers.Initializer:
    # A fresh instance per layer: one unseeded instance reused across layers gives every layer
    # the same values in Keras 3.
    return keras.initializers.RandomNormal(mean=0.0, stddev=INIT_STDDEV)


def _conv(filters: int, kernel: int, strides: int, name: str) -> layers.Conv2D:
    return layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding="valid",
        kernel_initializer=_kernel_init(),
        bias_initializer="zeros",
        name=name,
    )


def _conv_transpose(filters: int, kernel: int, name: str) -> layers.Conv2DTranspose:
    return layers.Conv2DTranspose(
        filters,
        kernel,
        strides=2,
        padding="valid",
        kernel_initializer=_kernel_init(),
        bias_initializer="zeros",
        name=name,
    )


def _norm(name: str) -> InstanceNormalization:
    return InstanceNormalization(name=name)


def _output(x, name: str = "tanh"):
    # The last activation runs in float32 under mixed precision so outputs keep their full range.
    return layers.Activation("tanh", dtype="float32", name=name)(x)


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{key} must be a positive integer, got {value!r}")


def generator(architecture: str, ngf: int = 64, name: str = "generator") -> keras.Model:
    """The generator an official architecture name gives (``GENERATORS``), as the official ``define_G``.

    Args:
        architecture: ``resnet_9blocks``, ``resnet_6blocks``, ``unet_256`` or ``unet_128``.
        ngf: filters of the first conv layer.
        name: the model's name.
    """
    kind, depth = GENERATORS[check_choice("generator", architecture, tuple(GENERATORS))]
    if kind == "resnet":
        return resnet_generator(n_blocks=depth, ngf=ngf, name=name)
    return unet_generator(num_downs=depth, ngf=ngf, name=name)


def resnet_generator(
    n_blocks: int = 9,
    ngf: int = 64,
    input_channels: int = 3,
    output_channels: int = 3,
    name: str = "resnet_generator",
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

    Returns:
        A functional ``keras.Model`` mapping ``[N, H, W, C]`` images in [-1, 1] to the same size.
        11,378,179 parameters with the defaults, 7,837,699 with ``n_blocks=6``.
    """
    _check_positive(ngf=ngf, input_channels=input_channels, output_channels=output_channels)
    if not isinstance(n_blocks, int) or n_blocks < 0:
        raise UsageError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
    inputs = keras.Input((None, None, input_channels), name="image")
    x = ReflectionPadding2D(3, name="pad_in")(inputs)
    x = _conv(ngf, 7, 1, "conv_in")(x)
    x = layers.ReLU(name="relu_in")(_norm("norm_in")(x))
    for i in (1, 2):
        x = layers.ZeroPadding2D(1, name=f"zero_pad_down_{i}")(x)
        x = _conv(ngf * 2**i, 3, 2, f"down_{i}")(x)
        x = layers.ReLU(name=f"relu_down_{i}")(_norm(f"norm_down_{i}")(x))
    channels = ngf * 4
    for b in range(n_blocks):
        y = ReflectionPadding2D(1, name=f"res_{b}_pad_1")(x)
        y = _conv(channels, 3, 1, f"res_{b}_conv_1")(y)
        y = layers.ReLU(name=f"res_{b}_relu")(_norm(f"res_{b}_norm_1")(y))
        y = ReflectionPadding2D(1, name=f"res_{b}_pad_2")(y)
        y = _conv(channels, 3, 1, f"res_{b}_conv_2")(y)
        y = _norm(f"res_{b}_norm_2")(y)
        x = layers.Add(name=f"res_{b}_add")([x, y])
    for i in (1, 2):
        x = _conv_transpose(ngf * 2 ** (2 - i), 3, f"up_{i}")(x)
        # PyTorch's ConvTranspose2d(padding=1, output_padding=1) keeps rows [1 : 1 + 2H] of the full
        # (2H + 1)-row transposed conv.
        x = layers.Cropping2D(((1, 0), (1, 0)), name=f"crop_up_{i}")(x)
        x = layers.ReLU(name=f"relu_up_{i}")(_norm(f"norm_up_{i}")(x))
    x = ReflectionPadding2D(3, name="pad_out")(x)
    x = _conv(output_channels, 7, 1, "conv_out")(x)
    return keras.Model(inputs, _output(x), name=name)


def unet_generator(
    num_downs: int = 8,
    ngf: int = 64,
    input_channels: int = 3,
    output_channels: int = 3,
    use_dropout: bool = False,
    name: str = "unet_generator",
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

    Returns:
        A functional ``keras.Model`` from ``[N, H, W, C]`` images in [-1, 1] to the same size.
    """
    _check_positive(ngf=ngf, input_channels=input_channels, output_channels=output_channels)
    if not isinstance(num_downs, int) or num_downs < 5:
        raise UsageError(f"num_downs must be an integer >= 5, got {num_downs!r}")
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
        x = _conv(inner, 4, 2, f"unet_down_{depth}")(x)
        if 0 < depth < innermost:
            x = _norm(f"unet_down_{depth}_norm")(x)
        if depth < innermost:
            x = block(x, depth + 1)
        x = layers.ReLU(name=f"unet_up_{depth}_relu")(x)
        x = _conv_transpose(outer, 4, f"unet_up_{depth}")(x)
        x = layers.Cropping2D(1, name=f"unet_up_{depth}_crop")(x)
        if depth == 0:
            return x
        x = _norm(f"unet_up_{depth}_norm")(x)
        if use_dropout and 4 <= depth < innermost:
            x = layers.Dropout(0.5, name=f"unet_up_{depth}_dropout")(x)
        return x

    inputs = keras.Input((None, None, input_channels), name="image")
    return keras.Model(inputs, _output(block(inputs, 0)), name=name)


def patchgan_discriminator(
    n_layers: int = 3,
    ndf: int = 64,
    input_channels: int = 3,
    name: str = "patchgan_discriminator",
) -> keras.Model:
    """Builds the official PatchGAN discriminator (``basic`` with ``n_layers=3``: 70x70 patches).

    4x4 convs with 1 pixel of zero padding; LeakyReLU(0.2); instance norm on all but the first and
    last layer; raw scores (no sigmoid). A 256x256 input gives a 30x30 map.

    Args:
        n_layers: stride-2 conv layers.
        ndf: filters of the first conv layer.
        input_channels: channels of the judged images.
        name: the model's name.

    Returns:
        A functional ``keras.Model`` from ``[N, H, W, C]`` images to ``[N, h, w, 1]`` patch scores.
        2,764,737 parameters with the defaults.
    """
    _check_positive(n_layers=n_layers, ndf=ndf, input_channels=input_channels)
    inputs = keras.Input((None, None, input_channels), name="image")
    x = inputs
    filters = ndf
    for i in range(n_layers + 1):
        strides = 2 if i < n_layers else 1
        filters = ndf * min(2**i, 8)
        x = layers.ZeroPadding2D(1, name=f"pad_{i}")(x)
        x = _conv(filters, 4, strides, f"conv_{i}")(x)
        if i > 0:
            x = _norm(f"norm_{i}")(x)
        x = layers.LeakyReLU(0.2, name=f"lrelu_{i}")(x)
    x = layers.ZeroPadding2D(1, name=f"pad_{n_layers + 1}")(x)
    x = _conv(1, 4, 1, f"conv_{n_layers + 1}")(x)
    x = layers.Activation("linear", dtype="float32", name="scores")(x)
    return keras.Model(inputs, x, name=name)
