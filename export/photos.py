"""Reading photos as the networks expect them, and naming what is written from them.

Needs only Pillow and numpy, so that the standalone LiteRT script and the package read photos with
the same code (the package imports it as ``cyclegan_keras_edge.photos``).
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image, ImageOps

# What Pillow raises for a file it cannot read as an image: OSError for most broken files, ValueError
# and SyntaxError from some decoders, DecompressionBombError for a photo past its pixel limit.
UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def open_image(source: str | bytes, draft_size: int | None = None) -> Image.Image:
    """Opens an image as 8-bit RGB, upright as its EXIF orientation says.

    Grayscale, palette, CMYK, 16-bit and alpha images all become RGB (transparent pixels on white).

    Args:
        source: a file path or the file's bytes.
        draft_size: if given, JPEGs much larger than this are decoded at a reduced scale (still at
            least this size), which keeps huge photos fast and small in memory.

    Raises:
        One of ``UNREADABLE``: the file is not an image Pillow can read.
    """
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
        if draft_size and image.format == "JPEG" and min(image.size) > 4 * draft_size:
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))


def to_rgb(image: Image.Image) -> Image.Image:
    """``image`` as 8-bit RGB: 16-bit and 32-bit grayscale scaled onto 8 bits (not clipped to white),
    transparency composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16") or (image.mode == "I" and values.max() > 255):
            values = values / 257.0
        image = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        image = image.convert("RGBA")
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image)
    return image.convert("RGB")


def png_names(paths: list[str]) -> list[str]:
    """``<input name>.png`` for each input, numbered (``a_2.png``) where inputs from different folders
    share a name, so that no output replaces another."""
    names, used = [], set()
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        name, n = f"{stem}.png", 1
        while name in used:
            n += 1
            name = f"{stem}_{n}.png"
        used.add(name)
        names.append(name)
    return names
