"""What a tiled translation keeps between tiles: whole-photo arrays (in memory or on disk), progress,
and the thumbnail whose statistics the one-pass mode uses."""

from __future__ import annotations

import functools
import math
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor

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


# Rows of a tile summed by each of the threads that share ``channel_sums`` (numpy's einsum frees the GIL):
# below 1 MB of floats a thread costs more than it saves.
_SUM_PART = 1 << 18


@functools.cache
def _summers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(os.cpu_count(), thread_name_prefix="cyclegan-keras-sums")


def _sums(part: np.ndarray) -> np.ndarray:
    # Summed in float64 without a float64 copy of the part (8x faster than one).
    return np.stack([np.einsum("ijk->k", part, dtype=np.float64),
                     np.einsum("ijk,ijk->k", part, part, dtype=np.float64)])  # fmt: skip


def channel_sums(value: np.ndarray) -> np.ndarray:
    """Every channel's sum and sum of squares (``[2, C]``, float64) of a ``[H, W, C]`` array, contiguous
    or not: shared by the CPUs, 1.9x as fast on two."""
    workers = min(os.cpu_count() or 1, value.size // _SUM_PART, len(value))
    if workers < 2:
        return _sums(value)
    return sum(_summers().map(_sums, np.array_split(value, workers)))


class Progress:
    def __init__(self, callback, total: int):
        self.callback, self.total, self.done = callback, total, 0

    def step(self) -> None:
        self.done += 1
        if self.callback:
            self.callback(self.done, self.total)


def _size(entry: np.ndarray | tuple[str, tuple]) -> int:
    return entry.nbytes if isinstance(entry, np.ndarray) else 4 * math.prod(entry[1])


class TileArrays:
    """Whole-photo float32 arrays by name: each in memory while it fits ``memory`` bytes beside those
    there already, else a file in a temporary folder (preallocated, so a full disk is an error at
    creation, not a crash on a later write), read and written a tile's row at a time: not mapped, so it
    does not count as the process's memory, and 3x as fast to write as a mapping, which faults on every
    page. The folder is removed on exit, whatever happened. A freed array in memory serves the next one
    of its shape, a freed file the next array on disk of any shape, cut or extended to its size: a new
    array in memory would cost a page fault every 4 kB on its first writes (the writes took 4x as long),
    a new file the old one's removal (6 s of 234 for 24 MP)."""

    def __init__(self, memory: int | None, temp_dir: str | None, needed: int = 0):
        self.memory, self.temp_dir, self.needed = memory, temp_dir, needed
        self.folder: str | None = None
        self.arrays: dict[int, np.ndarray | tuple[str, tuple]] = {}
        self.spare: list[np.ndarray | tuple[str, tuple]] = []

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
        self.spare.clear()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def names(self) -> list[int]:
        return list(self.arrays)

    def create(self, name: int, shape: tuple) -> None:
        held = sum(a.nbytes for a in self.arrays.values() if isinstance(a, np.ndarray))
        size = 4 * math.prod(shape)
        in_memory = not self.folder or held + size <= self.memory
        if in_memory:
            reused = next((e for e in self.spare if isinstance(e, np.ndarray) and e.shape == shape), None)
        else:
            files = [e for e in self.spare if not isinstance(e, np.ndarray)]
            reused = min(files, key=lambda e: abs(_size(e) - size), default=None)
        # The others go: the memory plan and the disk check count only live arrays.
        self._let_go(keep=reused)
        if in_memory:
            self.arrays[name] = np.empty(shape, np.float32) if reused is None else reused
            return
        path = os.path.join(self.folder, f"{name}.f32")
        try:
            if reused is not None:
                os.replace(reused[0], path)
            if reused is not None and _size(reused) > size:
                os.truncate(path, size)
            elif reused is None or _size(reused) < size:
                with open(path, "ab") as file:
                    _reserve(file, size)
        except OSError as error:
            raise write_failed(path, "a temporary array of the tiled translation", error) from error
        self.arrays[name] = (path, shape)

    def read(self, name: int, region: Region) -> np.ndarray:
        """The region: a view of an array in memory (not to be written into), a copy of one on disk."""
        entry = self.arrays[name]
        if isinstance(entry, np.ndarray):
            return entry[region[0] : region[1], region[2] : region[3]]
        part = np.empty((region[1] - region[0], region[3] - region[2], entry[1][2]), np.float32)
        _rows(entry, region, part, write=False)
        return part

    def write(self, name: int, region: Region, value, layout, array: np.ndarray | None = None) -> None:
        """Writes a tile's ``value`` into the region: into an array in memory with the tile layout's
        ``copy``, into one on disk from ``array`` (``layout.array(value)``, passed where the caller has
        it already)."""
        entry = self.arrays[name]
        if isinstance(entry, np.ndarray):
            layout.copy(entry[region[0] : region[1], region[2] : region[3]], value)
            return
        try:
            _rows(entry, region, layout.array(value) if array is None else array, write=True)
        except OSError as error:
            raise write_failed(entry[0], "a temporary array of the tiled translation", error) from error

    def trim(self) -> None:
        """Lets the freed arrays go when no new array will reuse them."""
        self._let_go()

    def free(self, name: int) -> None:
        self.spare.append(self.arrays.pop(name))

    def _let_go(self, keep: np.ndarray | tuple[str, tuple] | None = None) -> None:
        for entry in self.spare:
            if entry is not keep and not isinstance(entry, np.ndarray):
                os.remove(entry[0])
        self.spare = []


def _reserve(file, size: int) -> None:
    """Makes the file ``size`` bytes long with its blocks reserved, so that a full disk fails here and not
    on a later write; where the system cannot reserve them (macOS, Windows), a later write reports it."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(file.fileno(), 0, size)
    else:
        file.truncate(size)


def _rows(entry: tuple[str, tuple], region: Region, part: np.ndarray, write: bool) -> None:
    """Reads or writes ``part``, the region of the file's ``[H, W, C]`` array, one row of the region at a
    time (a row is contiguous in the file), with no buffer between the file and ``part`` (a row of
    ``part`` that is not contiguous is copied before it is written)."""
    path, (_, width, channels) = entry
    row_bytes = 4 * (region[3] - region[2]) * channels
    with open(path, "r+b" if write else "rb", buffering=0) as file:
        for i, y in enumerate(range(region[0], region[1])):
            file.seek(4 * (y * width + region[2]) * channels)
            row = np.ascontiguousarray(part[i])
            done = file.write(row) if write else file.readinto(row)
            if done != row_bytes:
                raise OSError(f"{done} of {row_bytes} bytes at row {y}")
