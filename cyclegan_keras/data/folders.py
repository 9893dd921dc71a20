"""The folders of a dataset laid out as the official one, and the images in them; no TensorFlow."""

from __future__ import annotations

import os
from collections.abc import Sequence

from cyclegan_keras.data.images import ImageSource, image_files, scan_images
from cyclegan_keras.errors import MissingInputError, UsageError

SPLITS = ("trainA", "trainB", "testA", "testB")


def domain_folders(
    data_dir: str | os.PathLike, required: Sequence[str] = ("trainA", "trainB")
) -> dict[str, str]:
    """The split folders of a dataset laid out as the official one: ``trainA``, ``trainB``, ``testA``,
    ``testB``. Returns ``{split: path}`` for the splits that exist.

    Raises:
        MissingInputError: a ``required`` split is missing (training needs the train splits,
            evaluation the test splits).
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise MissingInputError(f"Data folder {data_dir!r} does not exist.")
    found = {split: os.path.join(data_dir, split) for split in SPLITS}
    found = {split: path for split, path in found.items() if os.path.isdir(path)}
    missing = [split for split in required if split not in found]
    if missing:
        raise MissingInputError(
            f"Data folder {data_dir!r} has no {' or '.join(missing)} folder: lay it out as "
            "trainA/ (domain A), trainB/ (domain B), testA/, testB/ (their test images)."
        )
    return found


def image_sources(domain, check_files: bool = True) -> tuple[list[ImageSource], list[int]]:
    """A domain's readable images (a folder, searched recursively, or a list of paths or encoded images)
    and each one's ``scan_images`` format code; unreadable ones are skipped with one warning.

    Raises:
        UsageError: the domain holds no (readable) image.
    """
    if isinstance(domain, (str, os.PathLike)):
        sources: list[ImageSource] = image_files(domain)
        where = f"folder {os.fspath(domain)!r}"
    else:
        sources = list(domain)
        where = "the given list"
    if not sources:
        raise UsageError(f"No images in {where}.")
    if not check_files:
        return sources, [0] * len(sources)
    sources, plain = scan_images(sources)
    if not sources:
        raise UsageError(f"No readable image in {where}.")
    return sources, plain
