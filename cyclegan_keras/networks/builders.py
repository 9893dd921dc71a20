"""The official CycleGAN networks: ResNet and U-Net generators, PatchGAN discriminator.

Layer for layer the same as the official PyTorch code, channels-last. Where Keras' ``"same"``
padding would put the extra pixel on the other side, padding is explicit (``ZeroPadding2D`` or
``ReflectionPadding2D`` then a ``"valid"`` conv), and transposed convs are ``"valid"`` then cropped,
so that official weights give official outputs. Layer names are stable: the official-checkpoint
loader maps them to the PyTorch state-dict keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import InstanceNormalization, ReflectionPadding2D
from cyclegan_keras.options import check_choice
from cyclegan_keras.training.config import DISCRIMINATORS, GENERATORS, INIT_TYPES, NORMS

INIT_STDDEV = 0.02


@dataclass(frozen=True)
class Style:
    """The official options every network of a run shares: ``--norm``, ``--init_type``, ``--init_gain``.

    Args:
        norm: ``instance`` (CycleGAN's), ``batch`` or ``none``.
        init_type: how conv kernels start: ``normal`` (N(0, gain), CycleGAN's), ``xavier`` (normal,
            gain-scaled), ``kaiming`` (normal, fan-in; the gain is not used, as officially) or
            ``orthogonal`` (gain-scaled). Biases start at 0; batch-norm scales at N(1, gain).
        init_gain: the gain (0.02).
    """

    norm: str = "instance"
    init_type: str = "normal"
    init_gain: float = INIT_STDDEV

    def __post_init__(self):
        check_choice("norm", self.norm, NORMS)
        check_choice("init_type", self.init_type, INIT_TYPES)

    @property
    def use_bias(self) -> bool:
        # The official rule: convs followed by a norm have a bias only when that norm is instance norm
        # (batch norm's shift replaces it; with no norm at all the official code drops it too).
        return self.norm == "instance"

    def initializer(self) -> keras.initializers.Initializer:
        """A fresh kernel initializer: one unseeded instance reused across layers would give every layer
        the same values in Keras 3. Keras' kernel layouts give PyTorch's fans for convs and transposed
        convs alike, so ``xavier`` and ``kaiming`` match ``torch.nn.init``'s scales."""
        gain = self.init_gain
        if self.init_type == "xavier":
            return keras.initializers.VarianceScaling(gain**2, "fan_avg", "untruncated_normal")
        if self.init_type == "kaiming":
            return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
        if self.init_type == "orthogonal":
            return keras.initializers.Orthogonal(gain)
        return keras.initializers.RandomNormal(mean=0.0, stddev=gain)

    def conv(self, filters: int, kernel: int, strides: int, name: str, bias: bool | None = None):
        return layers.Conv2D(
            filters,
            kernel,
            strides=strides,
            padding="valid",
            use_bias=self.use_bias if bias is None else bias,
            kernel_initializer=self.initializer(),
            bias_initializer="zeros",
            name=name,
        )

    def conv_transpose(self, filters: int, kernel: int, name: str, bias: bool | None = None):
        return layers.Conv2DTranspose(
            filters,
            kernel,
            strides=2,
            padding="valid",
            use_bias=self.use_bias if bias is None else bias,
            kernel_initializer=self.initializer(),
            bias_initializer="zeros",
            name=name,
        )

    def normalize(self, x, name: str):
        """``x`` through the norm layer (none for ``norm="none"``)."""
        if self.norm == "instance":
            return InstanceNormalization(name=name)(x)
        if self.norm == "batch":
            # PyTorch's BatchNorm2d: momentum 0.1 of the new statistics is Keras' 0.9 of the old.
            layer = layers.BatchNormalization(
                momentum=0.9,
                epsilon=1e-5,
                gamma_initializer=keras.initializers.RandomNormal(1.0, self.init_gain),
                name=name,
            )
            return layer(x)
        return x


def _style(style: Style | None) -> Style:
    return Style() if style is None else style


def _output(x, name: str = "tanh"):
    # The last activation runs in float32 under mixed precision so outputs keep their full range.
    return layers.Activation("tanh", dtype="float32", name=name)(x)


def _check_positive(**values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{key} must be a positive integer, got {value!r}")


def generator(
    architecture: str,
    ngf: int = 64,
    name: str = "generator",
    *,
    input_channels: int = 3,
    output_channels: int = 3,
    use_dropout: bool = False,
    style: Style | None = None,
) -> keras.Model:
    """The generator an official architecture name gives (``GENERATORS``), as the official ``define_G``.

    Args:
        architecture: ``resnet_9blocks``, ``resnet_6blocks``, ``unet_256`` or ``unet_128``.
        ngf: filters of the first conv layer.
        name: the model's name.
        input_channels: channels of the input images (official ``input_nc``).
        output_channels: channels of the output images (official ``output_nc``).
        use_dropout: dropout 0.5 in the residual blocks or the inner U-Net levels (off for CycleGAN).
        style: the norm and initialisation (``Style()``: instance norm, N(0, 0.02)).
    """
    kind, depth = GENERATORS[check_choice("generator", architecture, tuple(GENERATORS))]
    build = resnet_generator if kind == "resnet" else unet_generator
    return build(
        depth,
        ngf=ngf,
        input_channels=input_channels,
        output_channels=output_channels,
        use_dropout=use_dropout,
        style=style,
        name=name,
    )


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
    _check_positive(ngf=ngf, input_channels=input_channels, output_channels=output_channels)
    if not isinstance(n_blocks, int) or n_blocks < 0:
        raise UsageError(f"n_blocks must be a non-negative integer, got {n_blocks!r}")
    style = _style(style)
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
    return keras.Model(inputs, _output(x), name=name)


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
    _check_positive(ngf=ngf, input_channels=input_channels, output_channels=output_channels)
    if not isinstance(num_downs, int) or num_downs < 5:
        raise UsageError(f"num_downs must be an integer >= 5, got {num_downs!r}")
    style = _style(style)
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
    return keras.Model(inputs, _output(block(inputs, 0)), name=name)


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
    _check_positive(n_layers=n_layers, ndf=ndf, input_channels=input_channels)
    style = _style(style)
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
    _check_positive(ndf=ndf, input_channels=input_channels)
    style = _style(style)
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
