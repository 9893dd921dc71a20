"""The official preprocessing (``--preprocess``, ``--load_size``, ``--crop_size``, ``--no_flip``) and the
epoch it makes; no TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from cyclegan_keras.errors import UsageError

PREPROCESS_MODES = ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none")


@dataclass(frozen=True)
class Preprocessing:
    """The official preprocessing options (``--preprocess``, ``--load_size``, ``--crop_size``, ``--no_flip``).

    Args:
        mode: ``resize_and_crop`` (default): resize to ``load_size`` square, random crop ``crop_size``;
            ``crop``: random crop only; ``scale_width``: width to ``load_size`` keeping the aspect (height
            at least ``crop_size``); ``scale_width_and_crop``: that, then a random crop; ``none``: only
            round the sides to multiples of 4. The last two without crop give varying sizes, so they
            need a batch size of 1.
        load_size: the size images are scaled to before cropping (286).
        crop_size: the size of the crops the networks train on (256).
        flip: random horizontal flips (the official default; ``--no_flip`` turns them off).
    """

    mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True

    def __post_init__(self):
        if self.mode not in PREPROCESS_MODES:
            raise UsageError(f"preprocess must be one of {', '.join(PREPROCESS_MODES)}; got {self.mode!r}")
        if self.crop_size < 8 or self.crop_size % 4:
            raise UsageError(f"crop_size must be a multiple of 4 and at least 8, got {self.crop_size}")
        if self.load_size < self.crop_size and self.mode in ("resize_and_crop", "scale_width_and_crop"):
            raise UsageError(f"load_size ({self.load_size}) must be >= crop_size ({self.crop_size})")

    @property
    def crops(self) -> bool:
        """Whether training images are cropped to ``crop_size``: then they all have one size, as batches
        above 1 and the image pools need."""
        return self.mode in ("resize_and_crop", "crop", "scale_width_and_crop")

    @property
    def draft_size(self) -> int | None:
        """The size a JPEG may be decoded down to when it is over 4 times larger: the modes that
        resize anyway allow it; ``crop`` and ``none`` keep native pixels."""
        return None if self.mode in ("crop", "none") else self.load_size

    def resize(self, image: Image.Image) -> Image.Image:
        """The deterministic part: the official resize with Pillow's bicubic filter."""
        size = self.target_size(*image.size)
        if size == image.size:
            return image
        return image.resize(size, Image.BICUBIC)

    def target_size(self, width: int, height: int) -> tuple[int, int]:
        """The ``(width, height)`` that ``resize`` gives an image of ``width`` x ``height``."""
        if self.mode == "resize_and_crop":
            size = (self.load_size, self.load_size)
        elif self.mode in ("scale_width", "scale_width_and_crop"):
            size = (self.load_size, int(max(self.load_size * height / width, self.crop_size)))
        elif self.mode == "none":
            size = (max(4, round(width / 4) * 4), max(4, round(height / 4) * 4))
        else:  # crop: leave the size, but a crop needs at least crop_size on each side
            scale = max(1.0, self.crop_size / min(width, height))
            size = (max(self.crop_size, round(width * scale)), max(self.crop_size, round(height * scale)))
        return size


def steps_per_epoch(
    preprocessing: Preprocessing, batch_size: int, images: tuple[int, int], steps: int | None = None
) -> int:
    """The batches of an epoch of two domains of ``images`` images: ``steps``, or as the official epoch
    ``max(|A|, |B|) // batch_size``. Refuses a batch size that cannot be batched or fills no step."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    if batch_size > 1 and not preprocessing.crops:
        raise UsageError(
            f"preprocess={preprocessing.mode!r} gives images of varying sizes, which cannot be batched: "
            "use batch_size=1 or a mode that crops."
        )
    steps = steps or max(images) // batch_size
    if steps < 1:
        raise UsageError(
            f"An epoch of {max(images)} image(s) makes no batch of {batch_size}: lower the batch size."
        )
    return steps
