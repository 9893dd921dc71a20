#!/usr/bin/env python3
"""Translate photos with a CycleGAN generator exported to LiteRT (TFLite). Standalone.

Needs only ``ai-edge-litert``, ``numpy`` and ``pillow`` (no TensorFlow, no cyclegan_keras), and
``photos.py`` beside it (photos are read as the package reads them), so it runs on edge boxes and in
small containers:

    pip install ai-edge-litert numpy pillow
    python translate_litert.py generator.tflite horse.jpg --out zebra.png --threads 2

It never writes over a photo it reads, nor over an existing file without ``--overwrite``; a photo it
cannot read is skipped with one line (exit status 1 at the end), and the others are translated.

A dynamic-size model (exported with ``--dynamic-size``) runs at the photo's own size. A fixed-size model
works at its own resolution: each photo is mirror-padded to the model's aspect ratio (never squashed),
resized to the input size, and the result resized back and cropped to the photo. Float models take
and return [-1, 1]; models exported with ``--uint8-io`` take and return pixels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from PIL import Image

try:
    from .photos import UNREADABLE, open_image, png_names
except ImportError:  # run as a script beside photos.py: python translate_litert.py ...
    from photos import UNREADABLE, open_image, png_names


class LiteRTTranslator:
    """Runs a ``.tflite`` generator on ``uint8`` RGB photos ``[H, W, 3]`` of any size."""

    def __init__(self, path: str, threads: int | None = None):
        self.interpreter = Interpreter(model_path=path, num_threads=threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.dynamic = bool(np.any(self.input["shape_signature"][1:3] < 0))
        self.size = tuple(int(s) for s in self.input["shape"][1:3])
        self.interpreter.allocate_tensors()

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Runs the model once on an input batch of its own dtype and value range."""
        if self.dynamic and tuple(batch.shape) != tuple(self.input["shape"]):
            self.interpreter.resize_tensor_input(self.input["index"], batch.shape, strict=False)
            self.interpreter.allocate_tensors()
            self.input = self.interpreter.get_input_details()[0]
        self.interpreter.set_tensor(self.input["index"], batch.astype(self.input["dtype"]))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        height, width = pixels.shape[:2]
        if not self.dynamic and (height, width) != self.size:
            padded = _pad_to_aspect(pixels, self.size)
            small = np.asarray(Image.fromarray(padded).resize(self.size[::-1], Image.BICUBIC))
            out = Image.fromarray(self._translate(small)).resize(padded.shape[1::-1], Image.BICUBIC)
            return np.asarray(out)[:height, :width]
        return self._translate(pixels)

    def to_input(self, pixels: np.ndarray) -> np.ndarray:
        """``uint8`` pixels ``[N, H, W, 3]`` as the model's input: raw pixels for a file that takes them,
        levels of its input quantization for an integer file (``--quantize int8 --uint8-io``), else
        float32 in [-1, 1]."""
        values = pixels.astype(np.float32) / 127.5 - 1.0
        scale, zero_point = self.input["quantization"]
        if self.input["dtype"] != np.uint8:
            return values
        if not scale:
            return pixels
        return np.clip(np.rint(values / scale + zero_point), 0, 255).astype(np.uint8)

    def to_pixels(self, out: np.ndarray) -> np.ndarray:
        """The model's output as ``uint8`` pixels (the inverse of ``to_input``'s mapping)."""
        scale, zero_point = self.output["quantization"]
        if out.dtype == np.uint8 and not scale:
            return out
        values = (out.astype(np.float32) - zero_point) * scale if out.dtype == np.uint8 else out
        return np.clip(np.rint((values.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)

    def _translate(self, pixels: np.ndarray) -> np.ndarray:
        return self.to_pixels(self.run(self.to_input(pixels[None]))[0])


def _pad_to_aspect(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Mirror-pads a photo at the bottom or right to the aspect ratio of ``size`` (height, width)."""
    height, width = pixels.shape[:2]
    target_h = max(height, round(width * size[0] / size[1]))
    target_w = max(width, round(height * size[1] / size[0]))
    pad_h, pad_w = target_h - height, target_w - width
    mode = "reflect" if pad_h < height and pad_w < width else "symmetric"
    return np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode=mode)


def _targets(inputs: list[str], out: str) -> list[str]:
    """Where each input goes: ``out`` itself for one input when it is not a folder, else
    ``out/<input name>.png``, numbered where names repeat."""
    if len(inputs) == 1 and not os.path.isdir(out):
        return [out]
    return [os.path.join(out, name) for name in png_names(inputs)]


def _refusal(inputs: list[str], targets: list[str], overwrite: bool) -> str | None:
    """Why writing ``targets`` would lose a file, or None: an input is never written over, an existing
    file only with ``--overwrite``."""
    sources = {os.path.realpath(path) for path in inputs}
    for target in targets:
        if os.path.realpath(target) in sources:
            return f"--out {target!r} is one of the inputs: it is never written over; pass another --out"
        if os.path.exists(target) and not overwrite:
            return f"{target!r} exists: pass --overwrite to replace it, or another --out"
    return None


def _save(pixels: np.ndarray, target: str) -> None:
    """Writes beside ``target`` and renames, so that no half-written file takes its name."""
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    extension = os.path.splitext(target)[1].lower()
    image_format = Image.registered_extensions().get(extension, "PNG")
    staging = f"{target}.partial"
    try:
        Image.fromarray(pixels).save(staging, format=image_format)
        os.replace(staging, target)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


def main(argv: list[str] | None = None) -> int:
    """Translates each photo; a photo that cannot be read or written is said in one line and skipped.

    Returns:
        0, or 1 when any photo was skipped (the others are still translated).
    """
    parser = argparse.ArgumentParser(description="Translate photos with a LiteRT CycleGAN generator.")
    parser.add_argument("model", help="the .tflite file")
    parser.add_argument("inputs", nargs="+", help="photos to translate")
    parser.add_argument("--out", required=True, help="output file (one input) or folder")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for LiteRT (at least 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace output files that exist already")
    args = parser.parse_args(argv)
    if not os.path.isfile(args.model):
        parser.error(f"no model file {args.model!r}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    missing = [path for path in args.inputs if not os.path.isfile(path)]
    if missing:
        parser.error(f"no photo at {', '.join(map(repr, missing))}")
    targets = _targets(args.inputs, args.out)
    refusal = _refusal(args.inputs, targets, args.overwrite)
    if refusal:
        parser.error(refusal)
    try:
        translator = LiteRTTranslator(args.model, threads=args.threads)
    except (ValueError, RuntimeError) as error:
        parser.error(f"{args.model!r} is not a LiteRT model this runtime can run ({error})")
    skipped = 0
    for path, target in zip(args.inputs, targets):
        try:
            pixels = np.asarray(open_image(path))
        except UNREADABLE as error:
            print(f"skipped {path!r}: cannot read it as an image ({error})", file=sys.stderr)
            skipped += 1
            continue
        start = time.perf_counter()
        result = translator(pixels)
        elapsed = time.perf_counter() - start
        try:
            _save(result, target)
        except (OSError, ValueError) as error:
            print(f"skipped {path!r}: cannot write {target!r} ({error})", file=sys.stderr)
            skipped += 1
            continue
        print(f"{path} -> {target} ({elapsed * 1000:.0f} ms)")
    if skipped:
        print(f"{skipped} of {len(args.inputs)} photos skipped", file=sys.stderr)
    return 1 if skipped else 0


if __name__ == "__main__":
    sys.exit(main())
