"""What a tiled translation keeps between tiles: whole-photo arrays (in memory or on disk), progress,
and the thumbnail whose statistics the one-pass mode uses."""

from __future__ import annotations

import math
import os
import shutil
import tempfile

import numpy as np
from PIL import Image

from cyclegan_keras.deploy.tile_geometry import Region, TileError
from cyclegan_keras.run.outputs import write_failed
from cyclegan_keras.system.hardware import size_text


def to_pixels(value: np.ndarray) -> np.ndarray:
    return np.clip(np.rint((np.nan_to_num(value) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def thumbnail(image: np.ndarray, multiple: int, pixels: int) -> np.ndarray:
    """The image scaled down to about ``pixels`` (never up), sides multiples of ``multiple``."""
    height, width = image.shape[:2]
    scale = min(1.0, math.sqrt(pixels / (height * width)))
    size = tuple(max(multiple, round(s * scale / multiple) * multiple) for s in (width, height))
    if size == (width, height):
        return image
    if image.dtype == np.uint8:
        return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC, reducing_gap=3.0))
    planes = [
        Image.fromarray(np.ascontiguousarray(image[..., c], np.float32)) for c in range(image.shape[-1])
    ]
    return np.stack([np.asarray(p.resize(size, Image.BICUBIC)) for p in planes], axis=-1)


class Progress:
    def __init__(self, callback, total: int):
        self.callback, self.total, self.done = callback, total, 0

    def step(self) -> None:
        self.done += 1
        if self.callback:
            self.callback(self.done, self.total)


class TileArrays:
    """Whole-photo float32 arrays by name: in memory while they fit ``memory`` bytes, else files in a
    temporary folder (preallocated, so a full disk is an error at creation, not a crash on a later write),
    mapped only while a tile is read or written so that they do not count as the process's memory. The
    folder is removed on exit, whatever happened."""

    def __init__(self, memory: int | None, temp_dir: str | None, needed: int = 0):
        self.memory, self.temp_dir, self.needed = memory, temp_dir, needed
        self.folder: str | None = None
        self.arrays: dict[int, np.ndarray | tuple[str, tuple]] = {}

    def __enter__(self) -> TileArrays:
        if self.memory is not None and self.needed > self.memory:
            parent = self.temp_dir or tempfile.gettempdir()
            free = shutil.disk_usage(parent).free
            if self.needed > free:
                raise TileError(
                    f"This photo needs {size_text(self.needed)} of temporary arrays and {parent!r} has "
                    f"{size_text(free)} free: pass --tile-stats thumbnail (no temporary arrays), a larger "
                    "--max-memory, or set TMPDIR to a larger disk."
                )
            self.folder = tempfile.mkdtemp(prefix="cyclegan-keras-tiles-", dir=parent)
        return self

    def __exit__(self, *exc) -> None:
        self.arrays.clear()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def names(self) -> list[int]:
        return list(self.arrays)

    def create(self, name: int, shape: tuple) -> None:
        if not self.folder:
            self.arrays[name] = np.empty(shape, np.float32)
            return
        path = os.path.join(self.folder, f"{name}.f32")
        try:
            with open(path, "wb") as file:
                os.posix_fallocate(file.fileno(), 0, 4 * math.prod(shape))
        except OSError as error:
            raise write_failed(path, "a temporary array of the tiled translation", error) from error
        self.arrays[name] = (path, shape)

    def _map(self, name: int, mode: str) -> np.ndarray:
        entry = self.arrays[name]
        if isinstance(entry, np.ndarray):
            return entry
        return np.memmap(entry[0], np.float32, mode, shape=entry[1])

    def read(self, name: int, region: Region) -> np.ndarray:
        array = self._map(name, "r")
        return np.array(array[region[0] : region[1], region[2] : region[3]])

    def write(self, name: int, region: Region, value: np.ndarray) -> None:
        array = self._map(name, "r+")
        array[region[0] : region[1], region[2] : region[3]] = value

    def free(self, name: int) -> None:
        entry = self.arrays.pop(name)
        if not isinstance(entry, np.ndarray):
            os.remove(entry[0])
