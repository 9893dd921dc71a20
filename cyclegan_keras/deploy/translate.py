"""Translating image files with a generator: inputs from files, folders and globs; outputs that never
replace an input or (without ``overwrite``) an existing file."""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Callable, Iterable

import numpy as np
from cyclegan_keras_edge.photos import UNREADABLE, png_names
from PIL import Image

from cyclegan_keras.data.images import IMAGE_EXTENSIONS, image_files, open_image, save_image
from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.run.outputs import check_new_files


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
    return [os.path.join(out, name) for name in png_names(inputs)]


class Translated(list):
    """The files ``translate_files`` wrote (a list), and in ``skipped`` the ``(input, reason)`` of every
    input it could not read."""

    def __init__(self):
        super().__init__()
        self.skipped: list[tuple[str, str]] = []


def translate_files(
    translator: Callable[[np.ndarray], np.ndarray],
    inputs: Iterable[str],
    out: str | os.PathLike,
    max_size: int | None = None,
    overwrite: bool = False,
) -> Translated:
    """Translates image files into ``out``; returns the files written.

    Over many inputs (several, or a folder or glob), an unreadable file is skipped with one warning
    naming it and the reason, and listed in the result's ``skipped``; every readable photo is still
    translated. A single named file that cannot be read raises instead, with nothing written.

    Args:
        translator: ``uint8 [H, W, 3]`` -> ``uint8 [H, W, 3]``, e.g. a
            ``cyclegan_keras.deploy.runners.Runner``.
        inputs: files, folders or globs (``expand_inputs``).
        out: a folder (created if needed) that gets ``<input name>.png`` for each input, or, for one
            input, the image file to write (its extension picks the format).
        max_size: if given, photos whose longer side is larger are scaled down to it first.
        overwrite: replace output files that exist already. An input is never replaced.

    Raises:
        OutputExistsError: an output exists (and ``overwrite`` is False), or is one of the inputs;
            checked before anything is written.
        UsageError: the one input named cannot be read as an image.
        WriteError: an output could not be written (a full disk); the files written before it are
            whole, and no half-written file is left.
    """
    inputs = list(inputs)
    paths = expand_inputs(inputs)
    targets = output_paths(paths, out)
    check_new_files(targets, protected=paths, overwrite=overwrite)
    single = len(inputs) == 1 and os.path.isfile(inputs[0])
    written = Translated()
    for path, target in zip(paths, targets):
        try:
            image = open_image(path)
            if max_size and max(image.size) > max_size:
                image.thumbnail((max_size, max_size), Image.BICUBIC)
            pixels = np.asarray(image)
        except UNREADABLE as error:
            reason = str(error) or type(error).__name__
            if single:
                message = f"Cannot read {path!r} as an image ({reason}); nothing was written."
                raise UsageError(message) from error
            warnings.warn(f"Skipped {path!r}: cannot read it as an image ({reason}).", UserWarning, 2)
            written.skipped.append((path, reason))
            continue
        save_image(translator(pixels), target)
        written.append(target)
    return written
