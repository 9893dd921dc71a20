"""Reading image files robustly, and converting between pixels and the networks' [-1, 1] range."""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import numpy as np
from cyclegan_keras_edge.photos import open_image
from PIL import Image

from cyclegan_keras.errors import MissingInputError, UsageError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")

_EXIF_ORIENTATION = 0x0112
# Formats that TensorFlow decodes as Pillow does, when the image is upright 8-bit RGB or grayscale.
PLAIN_FORMATS = {"JPEG": 1, "PNG": 2}
# Larger photos go through Pillow, whose JPEG draft mode decodes them at a reduced scale.
_PLAIN_MAX_SIDE = 2048

# A path or the encoded bytes of an image file.
ImageSource = str | bytes


def sample_data_dir() -> str:
    """The folder of photos bundled with the package (trainA, trainB, testA, testB of horse2zebra)."""
    return str(resources.files("cyclegan_keras") / "assets" / "horse2zebra")


def image_files(folder: str | os.PathLike) -> list[str]:
    """Every image file under ``folder``, searched recursively, sorted.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it holds no file with an image extension (``IMAGE_EXTENSIONS``).
    """
    folder = os.fspath(folder)
    if os.path.isfile(folder):
        raise UsageError(f"{folder!r} is a file, and a folder of images is needed here: pass its folder.")
    if not os.path.isdir(folder):
        raise MissingInputError(f"Image folder {folder!r} does not exist.")
    found = [
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
    ]
    if not found:
        raise UsageError(
            f"Image folder {folder!r} holds no images (looked recursively for {', '.join(IMAGE_EXTENSIONS)})."
        )
    return sorted(found)


def resized_images(sources: Sequence[ImageSource], size: int, count: int) -> list[np.ndarray]:
    """Up to ``count`` of ``sources``, in order, as ``uint8`` RGB resized to ``size`` square (bicubic);
    unreadable ones are passed over (these feed sample grids and export checks, not training)."""
    images = []
    for source in sources:
        if len(images) == count:
            break
        try:
            images.append(np.asarray(open_image(source).resize((size, size), Image.BICUBIC)))
        except Exception:  # Pillow raises many kinds for broken files; any of them means unreadable.
            continue
    return images


def scan_images(
    sources: Sequence[ImageSource], workers: int | None = None
) -> tuple[list[ImageSource], list[int]]:
    """Decodes every source once; ONE warning names the unreadable ones and counts them.

    Files are decoded in full (a truncated JPEG only fails at its end), in parallel threads.

    Returns:
        The readable sources in order, and for each its ``PLAIN_FORMATS`` code: 1 for an upright
        8-bit RGB or grayscale JPEG, 2 for such a PNG (TensorFlow's decoders read those exactly as
        ``open_image`` does), 0 for anything else.
    """

    def probe(source: ImageSource) -> int | None:
        try:
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                return _plain_format(image)
        except Exception:  # Pillow raises many kinds for broken files; any of them means unreadable.
            return None

    with ThreadPoolExecutor(max_workers=workers or min(8, (os.cpu_count() or 1) * 2)) as pool:
        probed = list(pool.map(probe, sources))
    bad = [_describe(s) for s, result in zip(sources, probed) if result is None]
    if bad:
        shown = ", ".join(bad[:10]) + (f", ... ({len(bad) - 10} more)" if len(bad) > 10 else "")
        warnings.warn(f"Skipped {len(bad)} unreadable image file(s): {shown}", UserWarning, stacklevel=2)
    kept = [(s, result) for s, result in zip(sources, probed) if result is not None]
    return [s for s, _ in kept], [result for _, result in kept]


def _plain_format(image: Image.Image) -> int:
    plain = (
        image.mode in ("RGB", "L")
        and max(image.size) <= _PLAIN_MAX_SIDE
        and image.getexif().get(_EXIF_ORIENTATION, 1) == 1
        and "transparency" not in image.info
    )
    if image.format == "JPEG" and min(image.size) > 4 * 256:
        image.draft("RGB", (256, 256))  # a full decode at reduced scale still finds truncation
    image.load()
    return PLAIN_FORMATS.get(image.format, 0) if plain else 0


def _describe(source: ImageSource) -> str:
    return source if isinstance(source, str) else f"<{len(source)} bytes>"


# The networks see pixels in [-1, 1] and work on sides that are multiples of 4 (two stride-2 steps).
MULTIPLE = 4


def to_float(images: np.ndarray) -> np.ndarray:
    """``uint8`` pixels to float32 in [-1, 1], the networks' range."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def to_uint8(images) -> np.ndarray:
    """Float images in [-1, 1] back to ``uint8`` pixels (rounded, clipped)."""
    values = (np.nan_to_num(np.asarray(images, np.float32)) + 1.0) * 127.5
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def pad_to_multiple(pixels: np.ndarray, multiple: int = MULTIPLE) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflection-pads an ``[H, W, C]`` image at the bottom and right to multiples of ``multiple``.

    Returns the padded image and the original ``(H, W)`` to crop back to.
    """
    height, width = pixels.shape[:2]
    pad_h, pad_w = -height % multiple, -width % multiple
    mode = "reflect" if pad_h < height and pad_w < width else "symmetric"
    return np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode), (height, width)


def tf_to_float(images):
    """``to_float`` in TensorFlow: ``uint8`` (or any number) tensors to float32 in [-1, 1]."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def tf_to_uint8(images):
    """``to_uint8`` in TensorFlow: float tensors in [-1, 1] to ``uint8`` pixels (rounded, clipped)."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def tf_pad_to_multiple(images, multiple: int = MULTIPLE):
    """``pad_to_multiple`` in TensorFlow for a batch ``[N, H, W, C]`` of any (dynamic) size.

    Returns the padded batch and the original ``(H, W)`` tensors to crop back to.
    """
    import tensorflow as tf

    height, width = tf.shape(images)[1], tf.shape(images)[2]
    pad_h, pad_w = -height % multiple, -width % multiple
    padded = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
    # Dynamic paddings hide the channel count from the LiteRT converter, whose builtin conv needs it;
    # a reshape whose shape ends in a constant restores it.
    shape = tf.stack([tf.shape(images)[0], height + pad_h, width + pad_w, images.shape[-1]])
    return tf.reshape(padded, shape), (height, width)


def open_channels(source: ImageSource, channels: int = 3, draft_size: int | None = None) -> Image.Image:
    """``open_image``, then grayscale (Pillow's ``L``) for ``channels=1``: the official ``--input_nc 1``
    converts before it resizes."""
    image = open_image(source, draft_size=draft_size)
    return image.convert("L") if channels == 1 else image


def to_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """``uint8`` RGB ``[H, W, 3]`` pixels with ``channels`` channels: 1 is Pillow's grayscale (ITU-R 601-2
    luma, the official ``transforms.Grayscale``), ``[H, W, 1]``; 3 leaves them as they are."""
    if channels == 3 or pixels.shape[-1] == channels:
        return pixels
    return np.asarray(Image.fromarray(pixels).convert("L"))[..., None]


def save_image(pixels: np.ndarray, path: str | os.PathLike) -> None:
    """Writes a ``uint8`` ``[H, W, 3]`` array (or ``[H, W, 1]``, ``[H, W]``: grayscale); the format follows
    the file extension.

    The file appears whole or not at all (``staged_file``); a failed write raises ``WriteError``.
    """
    from cyclegan_keras.run.outputs import staged_file

    with staged_file(path, "the image") as staging:
        pixels = np.asarray(pixels, np.uint8)
        Image.fromarray(pixels[..., 0] if pixels.ndim == 3 and pixels.shape[-1] == 1 else pixels).save(
            staging
        )


def grid(rows: Iterable[Sequence[np.ndarray]]) -> np.ndarray:
    """Tiles ``uint8`` images of one size into a grid, a row per sequence; grayscale ones shown as RGB."""
    rows = [[np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x for x in row] for row in rows]
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)
