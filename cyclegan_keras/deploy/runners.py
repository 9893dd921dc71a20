"""Running a generator in each of its formats behind one interface: Keras, SavedModel, LiteRT, ONNX.

A ``Runner`` translates ``uint8`` photos of any size (``runner(pixels)``), and exposes the model's
own endpoints (``run_float``, ``run_uint8``) so that export verification only compares runners.
``translate``, ``evaluate`` and export verification all go through ``load_runner``; the LiteRT
runner is the standalone edge script's own class, so phones and this package run the same code.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ThreadPoolExecutor

import keras
import numpy as np
from PIL import Image

from cyclegan_keras.data.images import MULTIPLE, pad_to_multiple, to_channels, to_float, to_uint8
from cyclegan_keras.deploy.backend import KERAS_FILES
from cyclegan_keras.deploy.formats import FILE_SUFFIXES, format_of
from cyclegan_keras.deploy.forward import inference_call
from cyclegan_keras.deploy.generators import load_generator, model_path
from cyclegan_keras.deploy.options import TILE_STATS
from cyclegan_keras.deploy.tiling import TILE_SIDES, TiledGenerator, TileError
from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.system.hardware import available_memory, memory_size, resident_memory, size_text

# The generators' own reflection padding (3 pixels after two halvings) needs sides of at least 8.
MIN_SIDE = 8
# Photos translated together at the most: beyond a few, a batch adds memory and little speed on a CPU.
MAX_BATCH = 8


class Runner:
    """A generator in some format: ``uint8 [H, W, 3]`` photos of any size in, the same size out.

    Subclasses give ``run_float`` (a float32 batch in [-1, 1] at a size the model takes -> its output)
    and may give ``run_uint8`` natively (``native_uint8``); photos smaller than ``MIN_SIDE`` are
    enlarged for the model and the result scaled back, in every format.
    """

    native_uint8 = False  # the file has a uint8 endpoint of its own (SavedModel, LiteRT --uint8-io)
    input_channels = 3  # 1 for a generator of grayscale photos
    float_io = True  # it has a float32 endpoint
    multiple = MULTIPLE  # the sides the model takes

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_uint8(self, batch: np.ndarray) -> np.ndarray:
        """A ``uint8`` batch through the model, ``uint8`` out."""
        return to_uint8(self.run_float(to_float(batch)))

    def translate(self, pixels: np.ndarray) -> np.ndarray:
        """One photo whose sides are at least ``MIN_SIDE``: padded to multiples of 4, cropped back."""
        padded, (height, width) = pad_to_multiple(pixels)
        return self.run_uint8(padded[None])[0, :height, :width]

    def batch_size_for(self, height: int, width: int) -> int:
        """How many photos of this size fit through the model at once (1: one by one)."""
        return 1

    def translate_many(self, photos: list[np.ndarray]) -> list[np.ndarray]:
        """Photos of one size through the model together, as one batch; each result is ``self(photo)``'s.
        Photos the model cannot take as they are (smaller than ``MIN_SIDE``) go one by one."""
        height, width = photos[0].shape[:2]
        if len(photos) == 1 or min(height, width) < MIN_SIDE:
            return [self(photo) for photo in photos]
        padded = [pad_to_multiple(to_channels(p, self.input_channels), self.multiple)[0] for p in photos]
        outputs = self.run_uint8(np.stack(padded))[:, :height, :width]
        return [out[..., 0] if out.shape[-1] == 1 else out for out in outputs]

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """An RGB ``uint8`` photo translated: ``[H, W, 3]``, or ``[H, W]`` from a grayscale generator
        (``--output-nc 1``); a grayscale generator's input is the photo's luma (``--input-nc 1``)."""
        height, width = pixels.shape[:2]
        if min(height, width) < MIN_SIDE:
            scale = MIN_SIDE / min(height, width)
            size = (max(MIN_SIDE, round(width * scale)), max(MIN_SIDE, round(height * scale)))
            pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.BICUBIC))
        out = self.translate(to_channels(pixels, self.input_channels))
        out = out[..., 0] if out.shape[-1] == 1 else out
        if out.shape[:2] != (height, width):
            out = np.asarray(Image.fromarray(out).resize((width, height), Image.BICUBIC))
        return out


class KerasRunner(Runner):
    """A Keras generator (the reference the exported files are checked against).

    Photos go through whole, in one compiled call that holds only the tensors it still needs
    (``cyclegan_keras.deploy.forward``), while that fits the memory budget, and in tiles with
    whole-photo instance-norm statistics beyond it (``cyclegan_keras.deploy.tiling``).

    Args:
        generator: a Keras generator.
        tile: translate in tiles of about this many pixels a side (default: only when the photo does
            not fit ``max_memory`` whole, in tiles chosen for it).
        tile_stats: ``"exact"`` (default; equal to the whole-photo result) or ``"thumbnail"``
            (statistics of a one-megapixel copy: one pass, no temporary arrays).
        max_memory: the budget in bytes or as ``"3G"``, for the whole process (default: what this
            process holds now plus half the memory available now).
        verbose: print how each tiled photo is translated, and a progress bar over its tiles.
    """

    def __init__(
        self,
        generator,
        tile: int | None = None,
        tile_stats: str | None = None,
        max_memory: int | str | None = None,
        verbose: bool = False,
    ):
        self.generator = generator
        self.input_channels = generator.inputs[0].shape[-1] if getattr(generator, "inputs", None) else 3
        self.tile, self.tile_stats, self.verbose = tile, tile_stats, verbose
        # The budget counts the whole process; MemAvailable leaves out what this process holds already, so
        # the default adds it back (else a process holding half of what is free would tile every photo).
        self.max_memory = (
            memory_size(max_memory) if max_memory is not None else resident_memory() + available_memory() // 2
        )
        if tile_stats is not None and tile_stats not in TILE_STATS:
            raise UsageError(f"tile_stats must be one of {', '.join(TILE_STATS)}, got {tile_stats!r}")
        try:
            self.tiled = TiledGenerator(generator)
        except TileError:
            if tile is not None or tile_stats is not None:
                raise
            self.tiled = None  # a generator of other layers: whole photos only, as before
        self.multiple = self.tiled.multiple if self.tiled else MULTIPLE
        self._forward = None
        if tile is not None:
            self.tiled.check_tile(tile, exact=tile_stats != "thumbnail")

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        if self._forward is None:  # compiled on first use, once per runner
            self._forward = inference_call(self.generator, self.tiled)
        return self._forward(batch)

    def translate_many(self, photos: list[np.ndarray]) -> list[np.ndarray]:
        """``Runner.translate_many``; on PyTorch on a CPU, the photos side by side in threads of one core
        each instead of one batch tensor (``streams``)."""
        count = streams()
        if count < 2 or len(photos) < 2:
            return super().translate_many(photos)
        if self._forward is None:  # made once, before the threads
            self._forward = inference_call(self.generator, self.tiled)
        return _side_by_side(self, photos, min(count, len(photos)))

    def translate(self, pixels: np.ndarray) -> np.ndarray:
        padded, (height, width) = pad_to_multiple(pixels, self.multiple)
        tiling = self.tiling(*padded.shape[:2])
        if tiling is None:
            return self.run_uint8(padded[None])[0, :height, :width]
        tile, stats, memory, whole = tiling
        if self.verbose:
            if whole:
                print(
                    f"A {width}x{height} photo would take about {size_text(whole)} whole, over the "
                    f"{size_text(self.max_memory)} budget (--max-memory): translating it in tiles."
                )
            kind = "whole-photo" if stats == "exact" else "a 1 MP copy's"
            print(f"Translating {width}x{height} in {tile} px tiles with {kind} instance-norm statistics")
        progress = _progress_bar() if self.verbose else None
        return self.tiled(padded, tile, stats, memory=memory, progress=progress)[:height, :width]

    def batch_size_for(self, height: int, width: int) -> int:
        """Photos of this size that fit the memory budget at once, whole (at most ``_max_batch()``); 1 where
        one of them goes in tiles."""
        height, width = (-(-side // self.multiple) * self.multiple for side in (height, width))
        if self.tiled is None or self.tiling(height, width) is not None:
            return 1
        free = self.max_memory - resident_memory()
        return int(max(1, min(_max_batch(), free // max(1, self.tiled.whole_bytes(height, width)))))

    def tiling(self, height: int, width: int) -> tuple[int, str, int, int] | None:
        """For a photo of this (padded) size: None to translate it whole, else the tile, the statistics,
        the memory left for whole-photo arrays, and the whole-photo estimate that chose tiles (0 when
        tiles were asked for)."""
        if self.tiled is None:
            return None
        budget, whole = self.max_memory, 0
        if self.tile is None and self.tile_stats is None:
            whole = self.tiled.whole_bytes(height, width)
            if whole <= budget - resident_memory():
                return None
        stats = self.tile_stats or "exact"
        exact = stats == "exact"
        if self.tile is not None:
            tile = self.tile
            plan = self.tiled.plan(height, width, tile, exact)
        else:
            sides = [s for s in TILE_SIDES if s >= self.tiled.multiple and (exact or s >= self.tiled.halo)]
            for tile in sides:
                plan = self.tiled.plan(height, width, tile, exact)
                if plan["tile_bytes"] <= budget // 4:
                    break
        return tile, stats, self.tiled.array_memory(budget, height, width, plan["tile_bytes"]), whole


def _max_batch() -> int:
    """``MAX_BATCH``, or for PyTorch on a CPU its thread count (``streams``): there a batch tensor is
    slower per photo than photos one at a time (its norms and paddings no longer fit the cache: 0.42 s
    a photo alone, 0.54 s in eights at 256 px), where TensorFlow gains (0.48 s, 0.39 s;
    docs/benchmarks.md); photos side by side, one core each, gain instead."""
    return streams() or MAX_BATCH


def streams() -> int:
    """On PyTorch on a CPU, the photos that ``KerasRunner.translate_many`` runs side by side, one thread
    each (PyTorch's thread count); 0 elsewhere. At 256 px, two photos on one thread each took 0.49 s a
    photo against 0.60 s one after the other on two threads (2-core Zen 4)."""
    if keras.backend.backend() != "torch" or keras.ops.convert_to_tensor(0.0).device.type != "cpu":
        return 0
    import torch

    return torch.get_num_threads()


def _side_by_side(translate, photos: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``[translate(photo) for photo in photos]`` in ``count`` threads with one PyTorch thread each:
    a small photo's convolutions and norms use one core better than two (no splitting and joining)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(translate, photos))
    finally:
        torch.set_num_threads(threads)


def _progress_bar(step: int = 10):
    """Progress over tiles: Keras' bar on a terminal; elsewhere (a log file, a pipe) one plain line
    every ``step`` percent, not a redrawn bar of escape codes per tile."""
    bar = None
    shown = -1

    def update(done: int, total: int) -> None:
        nonlocal bar, shown
        if sys.stdout.isatty():
            bar = bar or keras.utils.Progbar(total, unit_name="tile")
            bar.update(done)
            return
        percent = 100 * done // total
        if percent // step > shown or done == total:
            shown = percent // step
            print(f"tiles: {done}/{total} ({percent}%)", flush=True)

    return update


def load_runner(
    path: str | os.PathLike,
    direction: str | None = None,
    threads: int | None = None,
    tile: int | None = None,
    tile_stats: str | None = None,
    max_memory: int | str | None = None,
    verbose: bool = False,
) -> Runner:
    """The ``Runner`` for a generator file, folder or pretrained name.

    Args:
        path: a ``.keras`` generator or whole CycleGAN, an official ``.pth``/``.npz``, a SavedModel
            folder, a ``.tflite``, an ``.onnx``, or the name of a pretrained generator
            (``cyclegan_keras.networks.pretrained.PRETRAINED``).
        direction: which generator of a whole CycleGAN file (``load_generator``).
        threads: CPU threads for LiteRT and ONNX Runtime.
        tile, tile_stats, max_memory, verbose: tiled translation of large photos (``KerasRunner``);
            for the generators the Keras runner loads (``.keras``, ``.pth``, ``.npz``, pretrained names).

    Raises:
        UsageError: tiling asked of a SavedModel, LiteRT or ONNX file (they run whole photos).
    """
    path = model_path(path)
    tiling = {"tile": tile, "tile_stats": tile_stats, "max_memory": max_memory}
    if not path.endswith(KERAS_FILES):
        asked = [f"--{k.replace('_', '-')}" for k, v in tiling.items() if v is not None]
        if asked:
            raise UsageError(
                f"{' and '.join(asked)} need a generator the Keras runner loads (.keras, .pth, .npz or a "
                f"pretrained name); {os.path.basename(path)!r} runs whole photos."
            )
    if not os.path.exists(path):
        raise MissingInputError(f"No model at {path!r}.")
    if path.endswith(KERAS_FILES):
        return KerasRunner(load_generator(path, direction), **tiling, verbose=verbose)
    entry = format_of(path)
    if entry is not None:
        return entry.module().load_runner(path, threads)
    if os.path.isdir(path):
        raise UsageError(f"{path!r} is a folder but not a SavedModel (no saved_model.pb).")
    raise UsageError(
        f"Unknown model file {path!r}: expected {', '.join(KERAS_FILES + FILE_SUFFIXES)} or a SavedModel "
        "folder."
    )
