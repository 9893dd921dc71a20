"""Checking an exported file against the Keras generator on real photos: the bounds each kind of file
must meet, and the table ``export`` prints."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np

from cyclegan_keras.data.images import image_files, resized_images, sample_data_dir, to_float
from cyclegan_keras.deploy.runners import KerasRunner, load_runner
from cyclegan_keras.errors import UsageError

FP32_MAX_ABS = 1e-4  # [-1, 1] scale
UINT8_WITHIN_ONE = 0.999
FLOAT16_MIN_PSNR = 45.0
# PSNR floors (dB against the Keras model on real photos) of the integer files: under them a file is
# broken, not merely coarse (what trained generators reach: docs/benchmarks.md).
INTEGER_MIN_PSNR = {"int8": 22.0, "int16x8": 40.0}


class ExportVerificationError(RuntimeError):
    """An exported file does not compute what the Keras model computes, within the promised bounds."""


@dataclass
class Verification:
    """How an exported file compares with the Keras generator on real photos."""

    path: str
    kind: str
    size_mb: float
    max_abs_error: float
    psnr_db: float
    within_one_level: float | None
    latency_ms: float
    keras_latency_ms: float

    def row(self) -> str:
        within = "" if self.within_one_level is None else f"{100 * self.within_one_level:.3f}%"
        return (
            f"| {self.kind} | {self.size_mb:.1f} MB | {self.max_abs_error:.2e} | {self.psnr_db:.1f} dB | "
            f"{within} | {self.latency_ms:.0f} ms | {self.keras_latency_ms:.0f} ms |"
        )


TABLE_HEADER = (
    "| file | size | max abs error | PSNR | within 1 level | latency | Keras latency |\n"
    "|---|---|---|---|---|---|---|"
)


def _psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """PSNR in dB of two float image sets in [-1, 1] (peak-to-peak 2)."""
    mse = float(np.mean((reference.astype(np.float64) - test.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(4.0 / mse)


def _timed(run: Callable[[], object], repeats: int = 3) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def verify_export(
    generator: keras.Model,
    path: str | os.PathLike,
    photos: Sequence[np.ndarray],
    kind: str,
    threads: int | None = None,
) -> Verification:
    """Compares an exported file's runner with the Keras generator's on ``photos`` (uint8, one size).

    Float outputs are compared on the [-1, 1] scale; a file's own ``uint8`` endpoint (SavedModel
    ``serving_default``, LiteRT ``--uint8-io``) on pixel levels.
    """
    import tensorflow as tf

    path = os.fspath(path)
    batch = np.stack(photos)
    floats = to_float(batch)
    keras_runner = KerasRunner(generator)
    reference = np.concatenate([keras_runner.run_float(x[None]) for x in floats])
    forward = tf.function(lambda x: generator(x, training=False))  # the compiled TF forward pass
    keras_ms = _timed(lambda: forward(floats[:1]))
    runner = load_runner(path, threads=threads)
    within = None
    if runner.native_uint8:
        pixels = np.concatenate([runner.run_uint8(p[None]) for p in batch])
        within = _within_one_level(reference, pixels)
    if runner.float_io:
        outputs = np.concatenate([runner.run_float(x[None]) for x in floats]).astype(np.float32)
        ms = _timed(lambda: runner.run_float(floats[:1]))
    else:
        outputs = to_float(pixels)
        ms = _timed(lambda: runner.run_uint8(batch[:1]))
    size = (
        sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
        if os.path.isdir(path)
        else os.path.getsize(path)
    )
    return Verification(
        path=path,
        kind=kind,
        size_mb=size / 1e6,
        max_abs_error=float(np.max(np.abs(outputs - reference))),
        psnr_db=_psnr(reference, outputs),
        within_one_level=within,
        latency_ms=ms,
        keras_latency_ms=keras_ms,
    )


def _within_one_level(reference: np.ndarray, pixels: np.ndarray) -> float:
    expected = (reference.astype(np.float64) + 1.0) * 127.5
    return float(np.mean(np.abs(pixels.astype(np.float64) - expected) <= 1.0))


def check_verification(result: Verification, quantize: str | None, uint8_io: bool = False) -> None:
    """Raises ``ExportVerificationError`` when a file misses its bound: float32 to 1e-4 (max abs), a
    float file's ``uint8`` endpoint to 1 level on 99.9% of pixels, float16 to a PSNR of 45 dB, int8 and
    int16x8 (with or without ``uint8`` ends) to their floors in ``INTEGER_MIN_PSNR``."""
    problems = []
    within_promised = quantize not in INTEGER_MIN_PSNR  # an integer file's pixels are its quantized output's
    if within_promised and result.within_one_level is not None and result.within_one_level < UINT8_WITHIN_ONE:
        problems.append(f"only {100 * result.within_one_level:.3f}% of pixels within 1 level (need 99.9%)")
    if quantize is None and not uint8_io and result.max_abs_error > FP32_MAX_ABS:
        problems.append(f"max abs error {result.max_abs_error:.2e} > {FP32_MAX_ABS:.0e}")
    if quantize == "float16" and result.psnr_db < FLOAT16_MIN_PSNR:
        problems.append(f"PSNR {result.psnr_db:.1f} dB < {FLOAT16_MIN_PSNR} dB")
    if quantize in INTEGER_MIN_PSNR and result.psnr_db < INTEGER_MIN_PSNR[quantize]:
        problems.append(f"PSNR {result.psnr_db:.1f} dB < {INTEGER_MIN_PSNR[quantize]} dB")
    if problems:
        raise ExportVerificationError(f"{result.path} failed verification: {'; '.join(problems)}")


def verification_photos(folder: str | os.PathLike | None, size: int, count: int = 4) -> list[np.ndarray]:
    """Up to ``count`` real photos from ``folder`` (default: the bundled test photos), resized to ``size``."""
    if folder is None:
        folder = os.path.join(sample_data_dir(), "testA")
    photos = resized_images(image_files(folder), size, count)
    if not photos:
        raise UsageError(f"No readable photo in {os.fspath(folder)!r} to verify or calibrate with.")
    return photos
