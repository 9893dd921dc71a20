"""Running a generator in each of its formats behind one interface: Keras, SavedModel, LiteRT, ONNX.

A ``Runner`` translates ``uint8`` photos of any size (``runner(pixels)``), and exposes the model's
own endpoints (``run_float``, ``run_uint8``) so that export verification only compares runners.
``translate``, ``evaluate`` and export verification all go through ``load_runner``; the LiteRT
runner is the standalone edge script's own class, so phones and this package run the same code.
"""

from __future__ import annotations

import os
import sys
import warnings
import zipfile

import keras
import numpy as np
from PIL import Image

from cyclegan_keras.data.images import MULTIPLE, pad_to_multiple, to_channels, to_float, to_uint8
from cyclegan_keras.deploy.tiling import TILE_SIDES, TILE_STATS, TiledGenerator, TileError
from cyclegan_keras.errors import MissingExtraError, MissingInputError, UsageError
from cyclegan_keras.system.hardware import available_memory, memory_size, resident_memory, size_text
from cyclegan_keras.system.native_logs import quiet_native_logs
from cyclegan_keras.training.config import check_choice
from cyclegan_keras.training.model import DIRECTIONS  # importing it registers what .keras files name

# The generators' own reflection padding (3 pixels after two halvings) needs sides of at least 8.
MIN_SIDE = 8


class Runner:
    """A generator in some format: ``uint8 [H, W, 3]`` photos of any size in, the same size out.

    Subclasses give ``run_float`` (a float32 batch in [-1, 1] at a size the model takes -> its output)
    and may give ``run_uint8`` natively (``native_uint8``); photos smaller than ``MIN_SIDE`` are
    enlarged for the model and the result scaled back, in every format.
    """

    native_uint8 = False  # the file has a uint8 endpoint of its own (SavedModel, LiteRT --uint8-io)
    input_channels = 3  # 1 for a generator of grayscale photos
    float_io = True  # it has a float32 endpoint

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def run_uint8(self, batch: np.ndarray) -> np.ndarray:
        """A ``uint8`` batch through the model, ``uint8`` out."""
        return to_uint8(self.run_float(to_float(batch)))

    def translate(self, pixels: np.ndarray) -> np.ndarray:
        """One photo whose sides are at least ``MIN_SIDE``: padded to multiples of 4, cropped back."""
        padded, (height, width) = pad_to_multiple(pixels)
        return self.run_uint8(padded[None])[0, :height, :width]

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

    Photos go through whole while that fits the memory budget, and in tiles with whole-photo
    instance-norm statistics beyond it (``cyclegan_keras.deploy.tiling``).

    Args:
        generator: a Keras generator.
        tile: translate in tiles of about this many pixels a side (default: only when the photo does
            not fit ``max_memory`` whole, in tiles chosen for it).
        tile_stats: ``"exact"`` (default; equal to the whole-photo result) or ``"thumbnail"``
            (statistics of a one-megapixel copy: one pass, no temporary arrays).
        max_memory: the budget in bytes or as ``"3G"`` (default: half the memory available now).
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
        self.max_memory = memory_size(max_memory) if max_memory is not None else available_memory() // 2
        if tile_stats is not None and tile_stats not in TILE_STATS:
            raise UsageError(f"tile_stats must be one of {', '.join(TILE_STATS)}, got {tile_stats!r}")
        try:
            self.tiled = TiledGenerator(generator)
        except TileError:
            if tile is not None or tile_stats is not None:
                raise
            self.tiled = None  # a generator of other layers: whole photos only, as before
        self.multiple = self.tiled.multiple if self.tiled else MULTIPLE
        if tile is not None:
            self.tiled.check_tile(tile, exact=tile_stats != "thumbnail")

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(self.generator(batch, training=False)).astype(np.float32)

    def translate(self, pixels: np.ndarray) -> np.ndarray:
        padded, (height, width) = pad_to_multiple(pixels, self.multiple)
        tiling = self._tiling(*padded.shape[:2])
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

    def _tiling(self, height: int, width: int) -> tuple[int, str, int, int] | None:
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


class SavedModelRunner(Runner):
    """A SavedModel of ``export_saved_model``: ``translate_float`` and the ``uint8`` ``serving_default``."""

    native_uint8 = True

    def __init__(self, path: str):
        import tensorflow as tf

        self._tf = tf
        self.model = tf.saved_model.load(path)  # kept: it owns the variables the signatures read

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        return self.model.signatures["translate_float"](images=self._tf.constant(batch))["images"].numpy()

    def run_uint8(self, batch: np.ndarray) -> np.ndarray:
        return self.model.signatures["serving_default"](images=self._tf.constant(batch))["images"].numpy()


class LiteRTRunner(Runner):
    """A ``.tflite`` generator, run by the edge script's ``LiteRTTranslator`` (no TensorFlow)."""

    def __init__(self, path: str, threads: int | None = None):
        from cyclegan_keras_edge.translate_litert import LiteRTTranslator

        try:
            with quiet_native_logs():  # LiteRT's notice of its CPU delegate
                self.translator = LiteRTTranslator(path, threads=threads)
        except (ValueError, RuntimeError) as error:  # not a flatbuffer, or ops this runtime lacks
            raise UsageError(f"{path!r} is not a LiteRT model this runtime can run ({error}).") from error
        self.native_uint8 = self.translator.input["dtype"] == np.uint8
        self.float_io = not self.native_uint8

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        if not self.float_io:
            raise UsageError("This LiteRT file takes uint8 pixels (exported with --uint8-io): use run_uint8.")
        return self.translator.run(batch).astype(np.float32)

    def run_uint8(self, batch: np.ndarray) -> np.ndarray:
        if not self.native_uint8:
            return super().run_uint8(batch)
        return self.translator.to_pixels(self.translator.run(self.translator.to_input(batch)))

    def translate(self, pixels: np.ndarray) -> np.ndarray:
        # Fixed-size files resize to their input and back; dynamic ones pad inside.
        return self.translator(pixels)


class OnnxRunner(Runner):
    """An ``.onnx`` generator of ``export_onnx`` (float32, dynamic height and width), on ONNX Runtime."""

    def __init__(self, path: str, threads: int | None = None):
        try:
            import onnxruntime
        except ImportError as error:
            raise MissingExtraError(
                "Running .onnx files needs onnxruntime: pip install '.[onnx]' in a clone of the repository"
            ) from error
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime's own classes for a file it cannot parse or run
            raise UsageError(f"{path!r} is not an ONNX model ONNX Runtime can run ({error}).") from error
        self.input_name = self.session.get_inputs()[0].name

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch.astype(np.float32)})[0]


def model_path(model: str | os.PathLike) -> str:
    """``model`` itself when it names a file or folder, else the cached file of the pretrained generator
    of that name (downloaded and converted once: ``cyclegan_keras.networks.pretrained``).

    Raises:
        MissingInputError: no such file, and no pretrained generator of that name.
    """
    model = os.fspath(model)
    if os.path.exists(model) or os.sep in model or os.path.splitext(model)[1]:
        return model
    from cyclegan_keras.networks.pretrained import PRETRAINED, check_name, pretrained_path

    if model not in PRETRAINED:
        try:
            check_name(model)
        except UsageError as error:
            raise MissingInputError(f"No model file {model!r}. {error}") from None
    return pretrained_path(model)


# What a single generator translates, where its name says it: the files a training run writes
# (generator_ab.keras, generator_ba.keras) and the official checkpoints (latest_net_G_A.pth is A -> B).
_OWN_DIRECTIONS = {"generator_ab": "a_to_b", "generator_ba": "b_to_a", "G_A": "a_to_b", "G_B": "b_to_a"}


def generator_direction(generator: keras.Model, path: str | os.PathLike | None = None) -> str | None:
    """What a single generator translates (``a_to_b`` or ``b_to_a``) as its name, or its official
    checkpoint's file name (``..._net_G_A.pth``), says; None where neither says."""
    return _OWN_DIRECTIONS.get(generator.name) or _file_direction(path)


def _file_direction(path: str | os.PathLike | None) -> str | None:
    stem = os.path.splitext(os.path.basename(os.fspath(path or "")))[0]
    return next((own for key, own in _OWN_DIRECTIONS.items() if stem.endswith(f"_{key}")), None)


def check_image_generator(model: keras.Model, path: str) -> keras.Model:
    """``model`` if it maps images to images (one 4-D input and output, of 1 or 3 channels each).

    Raises:
        UsageError: it does not (a classifier, a model of other channels), naming what it takes.
    """
    inputs, outputs = getattr(model, "inputs", None) or [], getattr(model, "outputs", None) or []
    shapes = [tuple(t.shape) for t in (*inputs, *outputs)]
    if len(inputs) != 1 or len(outputs) != 1 or any(len(s) != 4 or s[-1] not in (1, 3) for s in shapes):
        found = " -> ".join(str(s) for s in shapes) or "no fixed inputs and outputs"
        raise UsageError(
            f"{path!r} is not an image generator: it maps {found}, and a generator maps [batch, height, "
            "width, 1 or 3] images to images. Pass a generator or a whole CycleGAN .keras file."
        )
    return model


def _one_way(generator: keras.Model, path: str, direction: str | None) -> keras.Model:
    """A single generator, checked against the ``direction`` asked of it: a generator whose name says
    the other direction is refused; one whose direction is unknown runs as it is, with a warning."""
    own = generator_direction(generator, path)
    if direction is None or direction == own:
        return generator
    if own is not None:
        raise UsageError(
            f"{path!r} holds one generator, which translates {own}: --direction {direction} needs the other "
            "generator's file or a whole CycleGAN .keras file (drop --direction to run this one)."
        )
    warnings.warn(
        f"{path!r} holds one generator, whose direction its file does not say: --direction {direction} "
        "picks a generator of a whole CycleGAN file only, so this one runs as it is.",
        UserWarning,
        stacklevel=3,
    )
    return generator


def load_generator(path: str | os.PathLike, direction: str | None = None) -> keras.Model:
    """A generator from a ``.keras`` file (a generator or a whole CycleGAN), an official ``.pth``/``.npz``
    checkpoint, or the name of a pretrained generator (``cyclegan_keras.networks.pretrained.PRETRAINED``).

    Args:
        path: the file or pretrained name.
        direction: ``a_to_b`` (the default for a whole CycleGAN) or ``b_to_a``: which generator of a
            whole CycleGAN file. A file of one generator has one direction: one whose name says the
            other is refused.

    Raises:
        UsageError: the file is not a generator this package loads, or holds the other direction.
    """
    if direction is not None:
        check_choice("direction", direction, DIRECTIONS)
    path = model_path(path)
    if path.endswith((".pth", ".npz")):
        from cyclegan_keras.networks.official import load_official_generator

        own = _file_direction(path) or direction or "a_to_b"
        generator = load_official_generator(path, name="generator_ab" if own == "a_to_b" else "generator_ba")
        return _one_way(generator, path, direction)
    if not os.path.isfile(path):
        raise MissingInputError(f"No model file {path!r}.")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise UsageError(
            f"{path!r} is not a .keras file: a .keras file is a zip archive, and this one is damaged, cut "
            "short or another kind of file. Save the model again (model.save('generator.keras'))."
        )
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except (OSError, ValueError, TypeError) as error:  # not a zip, not a Keras archive, unknown classes
        raise UsageError(f"{path!r} is not a .keras model this package can load: {error}") from error
    if hasattr(model, "translate"):
        return model.generator_ba if direction == "b_to_a" else model.generator_ab
    return _one_way(check_image_generator(model, path), path, direction)


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
    if not path.endswith((".keras", ".pth", ".npz")):
        asked = [f"--{k.replace('_', '-')}" for k, v in tiling.items() if v is not None]
        if asked:
            raise UsageError(
                f"{' and '.join(asked)} need a generator the Keras runner loads (.keras, .pth, .npz or a "
                f"pretrained name); {os.path.basename(path)!r} runs whole photos."
            )
    if not os.path.exists(path):
        raise MissingInputError(f"No model at {path!r}.")
    if os.path.isdir(path):
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise UsageError(f"{path!r} is a folder but not a SavedModel (no saved_model.pb).")
        return SavedModelRunner(path)
    if path.endswith(".tflite"):
        return LiteRTRunner(path, threads)
    if path.endswith(".onnx"):
        return OnnxRunner(path, threads)
    if path.endswith((".keras", ".pth", ".npz")):
        return KerasRunner(load_generator(path, direction), **tiling, verbose=verbose)
    raise UsageError(
        f"Unknown model file {path!r}: expected .keras, .pth, .npz, .tflite, .onnx or a SavedModel folder."
    )
