"""The networks by their official names: the generator registry, and the names of discriminators,
norms and initialisations. A generator name maps to its family's module (``resnet``, ``unet``: the
builder, the official checkpoint layout) and its rules; ``TrainConfig``, ``generator``, the official
loader and the command line's choices all read ``GENERATORS``. Adding an architecture is a family
module (or a new depth of one) and an entry here.

This module imports no Keras (the command line's help reads it); a family's module is imported when a
network is built.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import check_choice

if TYPE_CHECKING:
    import keras

    from cyclegan_keras.networks.style import Style

DISCRIMINATORS = ("basic", "n_layers", "pixel")
NORMS = ("instance", "batch", "none")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")


@dataclass(frozen=True)
class Architecture:
    """A generator architecture.

    Attributes:
        family: its module in ``cyclegan_keras.networks``, which gives ``build(depth, **settings)``,
            ``MARKER`` (its first layer's name), ``official_keys(model)`` and ``from_official(arrays,
            name)``.
        depth: the family's depth argument (ResNet: residual blocks; U-Net: downsamplings).
        parameters: its parameters with 64 filters in the first layer (the official count; they grow
            with the square of the filters), for memory estimates before anything is built.
        size_multiple: the sides of the images it trains on must be multiples of this (a U-Net's
            ``2 ** depth``, a ResNet's 4: its two halvings).
    """

    family: str
    depth: int
    parameters: int
    size_multiple: int

    def family_module(self) -> ModuleType:
        return importlib.import_module(f"cyclegan_keras.networks.{self.family}")

    def check_crop(self, name: str, crop_size: int) -> None:
        """Refuses a crop size the architecture cannot train on.

        Raises:
            UsageError: ``crop_size`` is not a multiple of ``size_multiple``.
        """
        if crop_size % self.size_multiple:
            raise UsageError(f"{name} needs crop_size a multiple of {self.size_multiple}, got {crop_size}")


# The official ``--netG`` names.
GENERATORS = {
    "resnet_9blocks": Architecture("resnet", 9, parameters=11_378_179, size_multiple=4),
    "resnet_6blocks": Architecture("resnet", 6, parameters=7_837_699, size_multiple=4),
    "unet_256": Architecture("unet", 8, parameters=54_409_603, size_multiple=2**8),
    "unet_128": Architecture("unet", 7, parameters=41_825_667, size_multiple=2**7),
}
# The families' modules, for reading any generator back (official checkpoints).
FAMILIES = tuple(dict.fromkeys(entry.family for entry in GENERATORS.values()))


def family_modules() -> list[ModuleType]:
    """Every generator family's module."""
    return [importlib.import_module(f"cyclegan_keras.networks.{family}") for family in FAMILIES]


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

    Returns:
        A functional ``keras.Model`` (``resnet_generator`` or ``unet_generator``).
    """
    entry = GENERATORS[check_choice("generator", architecture, tuple(GENERATORS))]
    return entry.family_module().build(
        entry.depth,
        ngf=ngf,
        input_channels=input_channels,
        output_channels=output_channels,
        use_dropout=use_dropout,
        style=style,
        name=name,
    )
