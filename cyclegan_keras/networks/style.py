"""What every network of a run shares: the official ``--norm``, ``--init_type`` and ``--init_gain``
(``Style``), and the small rules all builders follow."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.architectures import INIT_TYPES, NORMS
from cyclegan_keras.networks.layers import InstanceNormalization
from cyclegan_keras.options import check_choice

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


def resolve_style(style: Style | None) -> Style:
    return Style() if style is None else style


def tanh_output(x, name: str = "tanh"):
    # The last activation runs in float32 under mixed precision so outputs keep their full range.
    return layers.Activation("tanh", dtype="float32", name=name)(x)


def check_positive(**values: int) -> None:
    for key, value in values.items():
        if not isinstance(value, int) or value < 1:
            raise UsageError(f"{key} must be a positive integer, got {value!r}")


def norm_of(arrays: Mapping[str, np.ndarray], conv: str, norm: str) -> str:
    """The ``--norm`` a checkpoint was trained with, from a conv followed by a norm: batch norm has a
    scale; instance norm has none but its conv keeps a bias; no norm has neither."""
    if f"{norm}.weight" in arrays:
        return "batch"
    return "instance" if f"{conv}.bias" in arrays else "none"
