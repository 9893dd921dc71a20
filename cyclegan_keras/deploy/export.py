"""Exporting generators for deployment (SavedModel, LiteRT, ONNX), each export verified against Keras."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from cyclegan_keras.data.images import (
    MULTIPLE,
    image_files,
    resized_images,
    sample_data_dir,
    tf_pad_to_multiple,
    tf_to_float,
    tf_to_uint8,
    to_float,
)
from cyclegan_keras.deploy.calibration import least_error_ranges
from cyclegan_keras.deploy.quantization import equalize_channels, split_norms, two_grid_convs
from cyclegan_keras.deploy.runners import KerasRunner, generator_direction, load_generator, load_runner
from cyclegan_keras.deploy.subpixel import subpixel_convs
from cyclegan_keras.errors import MissingExtraError, OutputExistsError, UsageError
from cyclegan_keras.run.outputs import (
    check_output_file,
    check_output_folder,
    is_saved_model,
    staged_file,
    staging_folder,
    write_errors,
    write_json,
)
from cyclegan_keras.system.budget import check_export_memory
from cyclegan_keras.system.native_logs import quiet_native_logs
from cyclegan_keras.training.config import QUANTIZATIONS

FORMATS = ("saved_model", "tflite", "onnx", "web")
FP32_MAX_ABS = 1e-4  # [-1, 1] scale
UINT8_WITHIN_ONE = 0.999
FLOAT16_MIN_PSNR = 45.0
# PSNR floors (dB against the Keras model on real photos) of the integer files: under them a file is
# broken, not merely coarse (a trained ResNet-6 gives 27 dB in int8 and 54 dB in int16x8 here).
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


def _padded_call(generator: keras.Model, images):
    """The generator on images of any size: reflection padding to a multiple of 4, then crop back."""
    padded, (height, width) = tf_pad_to_multiple(images)
    return tf.cast(generator(padded, training=False), tf.float32)[:, :height, :width, :]


def export_saved_model(generator: keras.Model, path: str | os.PathLike) -> str:
    """Writes a SavedModel with two signatures, loadable by ``tf.saved_model.load`` without this package:

    - ``serving_default``: ``images`` uint8 ``[N, H, W, 3]`` of any size -> ``images`` uint8, same size;
    - ``translate_float``: ``images`` float32 in [-1, 1] -> ``images`` float32 in [-1, 1].

    For TensorFlow Serving, put the folder in a numbered version folder (``models/zebra/1``).

    Raises:
        OutputExistsError: ``path`` is a file, or a folder that holds anything but a SavedModel.
    """
    path = os.fspath(path)
    check_output_folder(path, is_saved_model, "SavedModel")
    archive = keras.export.ExportArchive()
    archive.track(generator)

    def serve(images):
        return {"images": tf_to_uint8(_padded_call(generator, tf_to_float(images)))}

    def translate_float(images):
        return {"images": _padded_call(generator, images)}

    archive.add_endpoint(
        "serving_default",
        serve,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")],
    )
    archive.add_endpoint(
        "translate_float",
        translate_float,
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="images")],
    )
    # Written beside the target and moved into place, so a failed export leaves the old one whole.
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".saved_model-", dir=parent)
    try:
        archive.write_out(staging, verbose=False)
        if os.path.isdir(path):
            shutil.rmtree(path)  # checked above: empty, or a SavedModel
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def _representative(calibration: Sequence[np.ndarray], uint8_io: bool):
    def generate():
        for pixels in calibration:
            yield [pixels[None] if uint8_io else to_float(pixels)[None]]

    return generate


@quiet_native_logs()  # the converter's and LiteRT's progress lines; errors still print
def export_tflite(
    generator: keras.Model,
    path: str | os.PathLike,
    *,
    quantize: str | None = None,
    input_size: int = 256,
    dynamic_size: bool = False,
    uint8_io: bool = False,
    calibration: Sequence[np.ndarray] = (),
    direction: str = "a_to_b",
) -> str:
    """Writes a LiteRT (TFLite) generator that uses builtin ops only, plus ``<path>.json`` metadata.

    The generator's stride-2 transposed convs and its RGB-end convs go into the file in sub-pixel form
    (``cyclegan_keras.deploy.subpixel``: the same function, run faster by LiteRT's kernels), except in
    int16x8 files (LiteRT's 16x8 mode has no ``SPACE_TO_DEPTH`` or ``DEPTH_TO_SPACE``).

    Args:
        generator: the Keras generator.
        path: the ``.tflite`` file.
        quantize: None (float32), ``float16`` (half-size weights), ``dynamic`` (int8 weights,
            float activations), ``int8`` (full integer, calibrated on ``calibration``; with ``uint8_io``
            integer-only, for NPUs) or ``int16x8`` (int16 activations, int8 weights; float32 ends).
            Both first bring each instance norm's input channels to one scale
            (``cyclegan_keras.deploy.quantization``).
        input_size: the fixed square input size, a multiple of 4.
        dynamic_size: take any height and width instead (padding inside the model).
        uint8_io: take and return ``uint8`` pixels instead of float32 in [-1, 1].
        calibration: ``uint8`` photos ``[H, W, 3]`` at ``input_size``, for ``int8``.
        direction: what the generator translates (``a_to_b`` or ``b_to_a``), for the metadata.

    Raises:
        UsageError: bad options; OutputExistsError: ``path`` (or ``<path>.json``) holds something
            else; RuntimeError: the model would need Flex or custom ops.
    """
    path = os.fspath(path)
    check_output_file(path, "tflite")
    check_output_file(path + ".json", "tflite_metadata")
    if quantize not in (None, *QUANTIZATIONS):
        raise UsageError(f"quantize must be one of {', '.join(QUANTIZATIONS)} or None; got {quantize!r}")
    if input_size % MULTIPLE or input_size < 8:
        raise UsageError(f"input_size must be a multiple of {MULTIPLE} and at least 8, got {input_size}")
    integer = quantize in INTEGER_MIN_PSNR
    if integer and not calibration:
        raise UsageError(f"{quantize} quantization needs calibration images (--calibration-dir)")
    if quantize == "int16x8" and uint8_io:
        raise UsageError(
            "int16x8 files take and give float32 (LiteRT's 16x8 mode has no 8-bit input or output): drop "
            "--uint8-io, or use --quantize int8 --uint8-io for an 8-bit integer-only file"
        )
    # Sub-pixel convs: the same function, 8-14% faster files (float and int8, docs/benchmarks.md).
    # LiteRT's 16x8 mode has no SPACE_TO_DEPTH or DEPTH_TO_SPACE.
    if quantize != "int16x8":
        generator = subpixel_convs(generator)
    if integer:  # channels 100x apart break 16-bit norms too (19 dB; 40+ equalized, tested)
        generator = equalize_channels(generator, calibration, "range" if quantize == "int8" else "spread")
    if quantize == "int8":
        generator = split_norms(generator, calibration, two_grids=not dynamic_size)
    # An integer file's uint8 ends are the converter's own (quantized input and output tensors); a
    # float file's are a cast inside the graph.
    graph_uint8 = uint8_io and not integer
    side = None if dynamic_size else input_size
    dtype = tf.uint8 if graph_uint8 else tf.float32

    def serve(images):
        x = tf_to_float(images) if graph_uint8 else images
        y = _padded_call(generator, x) if dynamic_size else tf.cast(generator(x, training=False), tf.float32)
        return {"images": tf_to_uint8(y) if graph_uint8 else y}

    staging = tempfile.mkdtemp(prefix="cyclegan-tflite-")
    try:
        archive = keras.export.ExportArchive()
        archive.track(generator)
        archive.add_endpoint(
            "serving_default",
            serve,
            input_signature=[tf.TensorSpec([1, side, side, 3], dtype, name="images")],
        )
        archive.write_out(staging, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(staging)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "float16":
            converter.target_spec.supported_types = [tf.float16]
        elif quantize == "int8":
            converter.representative_dataset = _representative(calibration, graph_uint8)
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            # The converter stops at its calibrated float model; its ranges are then replaced before
            # quantizing (cyclegan_keras.deploy.calibration: +0.7 to +1.6 dB). Not public API: tested.
            converter._experimental_calibrate_only = True
        elif quantize == "int16x8":
            converter.representative_dataset = _representative(calibration, graph_uint8)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
        flatbuffer = converter.convert()
        if quantize == "int8":
            from tensorflow.lite.python.convert import mlir_quantize

            ends = tf.uint8 if uint8_io else tf.float32
            ranged = least_error_ranges(
                flatbuffer,
                (to_float(pixels)[None] for pixels in calibration),
                saturated=two_grid_convs(generator),
            )
            flatbuffer = mlir_quantize(ranged, input_data_type=ends, output_data_type=ends)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    with staged_file(path, "the LiteRT model") as staged:
        with open(staged, "wb") as file:
            file.write(flatbuffer)
        check_builtin_ops(staged)
    metadata = {
        "direction": direction,
        "input": {
            "name": "images",
            "shape": [1, side or -1, side or -1, 3],
            "dtype": "uint8" if uint8_io else "float32",
            "range": [0, 255] if uint8_io else [-1.0, 1.0],
            "layout": "NHWC, RGB",
        },
        "output": {
            "name": "images",
            "shape": [1, side or -1, side or -1, 3],
            "dtype": "uint8" if uint8_io else "float32",
            "range": [0, 255] if uint8_io else [-1.0, 1.0],
        },
        "quantization": quantize or "float32",
        "dynamic_size": dynamic_size,
    }
    if integer and uint8_io:
        metadata["input"]["quantization"], metadata["output"]["quantization"] = _uint8_ends(path)
    write_json(path + ".json", metadata, "the LiteRT metadata")
    return path


def _uint8_ends(path: str) -> tuple[dict, dict]:
    """An integer file's input and output quantization: pixels map to levels through [-1, 1]."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    ends = []
    for detail in (interpreter.get_input_details()[0], interpreter.get_output_details()[0]):
        scale, zero_point = detail["quantization"]
        ends.append(
            {"scale": float(scale), "zero_point": int(zero_point), "value": "(level - zero_point) * scale"}
        )
    return ends[0], ends[1]


def litert_ops(path: str | os.PathLike) -> set[str]:
    """The names of the operators in a ``.tflite`` file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=os.fspath(path))
    return {op["op_name"] for op in interpreter._get_ops_details()}


def check_builtin_ops(path: str | os.PathLike) -> None:
    """Raises ``RuntimeError`` if a ``.tflite`` file uses Flex (SELECT_TF_OPS) or custom ops."""
    bad = sorted(op for op in litert_ops(path) if op.startswith("Flex") or op == "CUSTOM")
    if bad:
        raise RuntimeError(f"{os.fspath(path)} uses ops the plain LiteRT runtime lacks: {', '.join(bad)}")


def export_onnx(generator: keras.Model, path: str | os.PathLike, opset: int = 17) -> str:
    """Writes an ONNX generator (float32 [-1, 1], dynamic height and width). Needs the ``onnx`` extra.

    Raises:
        OutputExistsError: ``path`` holds something other than an ONNX model.
    """
    check_output_file(path, "onnx")
    try:
        import tf2onnx
    except ImportError as error:
        raise MissingExtraError(
            "ONNX export needs the onnx extra: pip install '.[onnx]' in a clone of the repository"
        ) from error
    spec = [tf.TensorSpec([None, None, None, 3], tf.float32, name="images")]

    @tf.function(input_signature=spec)
    def translate(images):
        return tf.identity(_padded_call(generator, images), name="translated")

    tf2onnx.convert.from_function(translate, input_signature=spec, opset=opset, output_path=os.fspath(path))
    return os.fspath(path)


# A translator (``uint8`` photo in, same-size ``uint8`` photo out) for any generator file or name, large
# photos in tiles with ``tile=``: the runner every command uses, under the name the export API gave it.
load_translator = load_runner


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


def export_generator(
    model: str | os.PathLike | keras.Model,
    format: str,
    out: str | os.PathLike,
    *,
    quantize: str | None = None,
    calibration_dir: str | os.PathLike | None = None,
    input_size: int = 256,
    dynamic_size: bool = False,
    uint8_io: bool = False,
    verify_dir: str | os.PathLike | None = None,
    threads: int | None = 2,
    verbose: bool = True,
    direction: str | None = None,
    overwrite: bool = False,
) -> Verification:
    """Exports a generator, verifies it on real photos against Keras, and prints the table.

    The export is written and verified in a staging folder beside ``out`` and moved to ``out`` only
    when it passes, so ``out`` never holds a file that failed, or half a file.

    Args:
        model: a generator, or a path or pretrained name for ``load_generator``.
        format: ``saved_model``, ``tflite``, ``onnx`` or ``web`` (a static web app, ``export_web``).
        out: the file (or SavedModel or web app folder) to write.
        quantize, input_size, dynamic_size, uint8_io: LiteRT options (``export_tflite``).
        calibration_dir: photos for ``int8`` calibration (default: the bundled photos).
        verify_dir: photos to verify on (default: the bundled test photos).
        threads: CPU threads when timing LiteRT and ONNX Runtime.
        verbose: print the verification table.
        direction: which generator of a whole CycleGAN ``.keras`` file (default ``a_to_b``), and what
            the exported one translates (LiteRT metadata); a single generator's own, where its name
            says it, is the default, and the other direction is refused (``load_generator``).
        overwrite: replace an existing ``.tflite``, ``.onnx`` or SavedModel at ``out``. A web app
            folder needs none: a re-export replaces only the files its previous export wrote.

    Raises:
        ExportVerificationError: the file misses its accuracy bound (see ``check_verification``);
            nothing is written to ``out``.
        OutputExistsError: ``out`` holds something else, or an export and ``overwrite`` is False.
        WriteError: ``out`` could not be written (a full disk); nothing half-written is left there.
    """
    if format not in FORMATS:
        raise UsageError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    if format not in ("tflite", "web") and quantize:
        raise UsageError("--quantize applies to --format tflite and web only")
    if format == "web" and quantize == "int16x8":
        raise UsageError("--quantize int16x8 is for LiteRT files (--format tflite); the web app takes int8")
    if format != "tflite" and (dynamic_size or uint8_io):
        raise UsageError("--dynamic-size and --uint8-io apply to --format tflite only")
    out = os.fspath(out)
    _check_out(format, out, overwrite)
    generator = model if isinstance(model, keras.Model) else load_generator(model, direction)
    # What the file says it translates: the one asked for, else the generator's own, else A -> B.
    direction = direction or generator_direction(generator, None if generator is model else model) or "a_to_b"
    check_export_memory(generator, input_size)
    channels = (generator.inputs[0].shape[-1], generator.outputs[0].shape[-1])
    if channels != (3, 3):
        raise UsageError(
            f"Exported files take and give RGB photos, and this generator maps {channels[0]} channel(s) to "
            f"{channels[1]} (--input-nc/--output-nc): translate with the .keras file instead "
            "(`cyclegan-keras translate --model FILE.keras`, which converts photos to grayscale for it)."
        )
    calibration = (
        verification_photos(calibration_dir, input_size, count=16) if quantize in INTEGER_MIN_PSNR else ()
    )
    photos = verification_photos(verify_dir, input_size)
    kind = f"{format}" + (f" {quantize}" if quantize else "") + (" uint8 io" if uint8_io else "")
    results = []

    def verify(path: str) -> None:
        result = verify_export(generator, path, photos, kind=kind, threads=threads)
        result.path = out if format != "web" else os.path.join(out, os.path.basename(path))
        if verbose:
            print(TABLE_HEADER)
            print(result.row())
        check_verification(result, quantize, uint8_io)
        results.append(result)

    if format == "web":
        from cyclegan_keras.deploy.web import export_web

        export_web(generator, out, quantize=quantize, input_size=input_size, direction=direction,
                   calibration=calibration, verify=verify)  # fmt: skip
        return results[0]
    staging = None
    try:
        with write_errors(out, f"the {format} export"):
            parent = os.path.dirname(os.path.abspath(out))
            os.makedirs(parent, exist_ok=True)
            staging = staging_folder(parent, f".{os.path.basename(out)}.partial-")
            staged = os.path.join(staging, os.path.basename(out))
            if format == "saved_model":
                export_saved_model(generator, staged)
            elif format == "tflite":
                export_tflite(generator, staged, quantize=quantize, input_size=input_size,
                              dynamic_size=dynamic_size, uint8_io=uint8_io, calibration=calibration,
                              direction=direction)  # fmt: skip
            else:
                export_onnx(generator, staged)
            verify(staged)
            if os.path.isdir(out):
                shutil.rmtree(out)  # checked above: empty, or a SavedModel the user asked to replace
            os.replace(staged, out)
            if format == "tflite":
                os.replace(staged + ".json", out + ".json")
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return results[0]


def _check_out(format: str, out: str, overwrite: bool) -> None:
    """Refuses ``out`` before any work: a name of another format, another kind of file, or (without
    ``overwrite``) an export."""
    suffix = {"tflite": ".tflite", "onnx": ".onnx"}.get(format)
    if suffix and not out.lower().endswith(suffix):
        raise UsageError(
            f"--format {format} writes a {suffix} file, and its runtimes know it by that ending: pass "
            f"--out NAME{suffix} (got {out!r})."
        )
    if not suffix and out.lower().rstrip("/").endswith((".tflite", ".onnx", ".keras")):
        raise UsageError(
            f"--format {format} writes a folder, and {out!r} names a model file: pass a folder name "
            "(without .tflite, .onnx or .keras), or the --format of that file."
        )
    if format == "saved_model":
        check_output_folder(out, is_saved_model, "SavedModel")
        if is_saved_model(out) and not overwrite:
            raise OutputExistsError(
                f"--out {out!r} already holds a SavedModel, so it was left untouched: pass --overwrite to "
                "replace it, or a new path."
            )
    elif format in ("tflite", "onnx"):
        check_output_file(out, format, overwrite=overwrite)
        if format == "tflite":
            check_output_file(out + ".json", "tflite_metadata", flag="the metadata file", overwrite=overwrite)
    else:
        from cyclegan_keras.deploy.web import is_web_export

        check_output_folder(out, is_web_export, "web app")
