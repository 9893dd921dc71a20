"""Translating photos of any size with a generator: reflection-pad to a multiple of 4, crop back."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterable

import keras
import numpy as np
from PIL import Image

from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.images import IMAGE_EXTENSIONS, image_files, open_image, save_image, to_float, to_uint8
from cyclegan_keras.outputs import check_new_files

MULTIPLE = 4
MIN_SIDE = 8  # the generators' own reflection padding needs at least this much

# uint8 [H, W, 3] -> uint8 [H, W, 3]
Translator = Callable[[np.ndarray], np.ndarray]


def pad_to_multiple(pixels: np.ndarray, multiple: int = MULTIPLE) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflection-pads an ``[H, W, C]`` image at the bottom and right to multiples of ``multiple``.

    Returns the padded image and the original ``(H, W)`` to crop back to.
    """
    height, width = pixels.shape[:2]
    pad_h, pad_w = -height % multiple, -width % multiple
    mode = "reflect" if pad_h < height and pad_w < width else "symmetric"
    return np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode), (height, width)


def keras_translator(generator: keras.Model) -> Translator:
    """A ``Translator`` around a Keras generator: any size in, the same size out."""

    def translate(pixels: np.ndarray) -> np.ndarray:
        return _with_min_side(pixels, lambda x: _padded(generator, x))

    return translate


def _padded(generator: keras.Model, pixels: np.ndarray) -> np.ndarray:
    padded, (height, width) = pad_to_multiple(pixels)
    out = generator(to_float(padded)[None], training=False)
    return to_uint8(keras.ops.convert_to_numpy(out)[0, :height, :width])


def _with_min_side(pixels: np.ndarray, run: Translator) -> np.ndarray:
    height, width = pixels.shape[:2]
    if min(height, width) >= MIN_SIDE:
        return run(pixels)
    scale = MIN_SIDE / min(height, width)
    size = (max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale)))
    out = run(np.asarray(Image.fromarray(pixels).resize(size, Image.BICUBIC)))
    return np.asarray(Image.fromarray(out).resize((width, height), Image.BICUBIC))


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Image paths from files, folders (searched recursively) and glob patterns, in order, once each.

    Raises:
        FileNotFoundError: naming every input that matches no image.
    """
    found, missing = [], []
    for item in inputs:
        if os.path.isdir(item):
            paths = image_files(item)
        elif os.path.isfile(item):
            paths = [item]
        else:
            paths = sorted(p for p in glob.glob(item, recursive=True) if p.lower().endswith(IMAGE_EXTENSIONS))
        if not paths:
            missing.append(item)
        found.extend(paths)
    if missing:
        raise MissingInputError(f"No image found for: {', '.join(missing)}")
    return list(dict.fromkeys(found))


def output_paths(inputs: list[str], out: str | os.PathLike) -> list[str]:
    """Where ``translate_files`` writes each input: ``out/<input name>.png``, or ``out`` itself when it
    names an image file (then there must be exactly one input).

    Raises:
        UsageError: ``out`` names a file but there are several inputs.
    """
    out = os.fspath(out)
    if out.lower().endswith(IMAGE_EXTENSIONS) and not os.path.isdir(out):
        if len(inputs) != 1:
            raise UsageError(
                f"--out {out!r} names one image file but there are {len(inputs)} inputs: pass a folder."
            )
        return [out]
    targets, used = [], set()
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0]
        name, n = f"{stem}.png", 1
        while name in used:  # same names from different folders
            n += 1
            name = f"{stem}_{n}.png"
        used.add(name)
        targets.append(os.path.join(out, name))
    return targets


def translate_files(
    translator: Translator,
    inputs: Iterable[str],
    out: str | os.PathLike,
    max_size: int | None = None,
    overwrite: bool = False,
) -> list[str]:
    """Translates image files into ``out``; returns the files written.

    Args:
        translator: see ``keras_translator`` (and ``cyclegan_keras.export.load_translator``).
        inputs: files, folders or globs (``expand_inputs``).
        out: a folder (created if needed) that gets ``<input name>.png`` for each input, or, for one
            input, the image file to write (its extension picks the format).
        max_size: if given, photos whose longer side is larger are scaled down to it first.
        overwrite: replace output files that exist already. An input is never replaced.

    Raises:
        OutputExistsError: an output exists (and ``overwrite`` is False), or is one of the inputs;
            checked before anything is written.
    """
    paths = expand_inputs(inputs)
    targets = output_paths(paths, out)
    check_new_files(targets, protected=paths, overwrite=overwrite)
    for path, target in zip(paths, targets):
        try:
            image = open_image(path)
        except (OSError, ValueError) as error:  # Pillow's ways of saying "not an image I can read"
            raise UsageError(
                f"Cannot read {path!r} as an image ({error}); nothing more was written."
            ) from error
        if max_size and max(image.size) > max_size:
            image.thumbnail((max_size, max_size), Image.BICUBIC)
        save_image(translator(np.asarray(image)), target)
    return targets
