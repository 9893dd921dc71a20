"""LiteRT (TFLite): a file for phones and browsers, float or quantized, with builtin ops only.

The generator goes into the file rewritten for LiteRT's kernels (``cyclegan_keras.deploy.subpixel``,
``quantization``, ``calibration``); the runner is the standalone edge script's own class, so that phones
and this package run the same code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence

import keras
import numpy as np
from cyclegan_keras_edge.translate_litert import LiteRTTranslator

from cyclegan_keras.data.images import MULTIPLE, tf_to_float, tf_to_uint8, to_float
from cyclegan_keras.deploy.calibration import least_error_ranges
from cyclegan_keras.deploy.formats import INTEGER_QUANTIZATIONS, QUANTIZATIONS
from cyclegan_keras.deploy.formats.shared import padded_call, staged_export
from cyclegan_keras.deploy.quantization import equalize_channels, split_norms, two_grid_convs
from cyclegan_keras.deploy.runners import Runner
from cyclegan_keras.deploy.subpixel import subpixel_convs
from cyclegan_keras.errors import UsageError
from cyclegan_keras.run.outputs import check_output_file, staged_file, write_json
from cyclegan_keras.system.native_logs import quiet_native_logs


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
    integer = quantize in INTEGER_QUANTIZATIONS
    if integer and not calibration:
        raise UsageError(f"{quantize} quantization needs calibration images (--calibration-dir)")
    if quantize == "int16x8" and uint8_io:
        raise UsageError(
            "int16x8 files take and give float32 (LiteRT's 16x8 mode has no 8-bit input or output): drop "
            "--uint8-io, or use --quantize int8 --uint8-io for an 8-bit integer-only file"
        )
    generator = _for_litert(generator, quantize, calibration, dynamic_size)
    # An integer file's uint8 ends are the converter's own (quantized input and output tensors); a
    # float file's are a cast inside the graph.
    graph_uint8 = uint8_io and not integer
    side = None if dynamic_size else input_size
    flatbuffer = _convert(generator, quantize, calibration, side, graph_uint8, uint8_io)
    with staged_file(path, "the LiteRT model") as staged:
        with open(staged, "wb") as file:
            file.write(flatbuffer)
        check_builtin_ops(staged)
    metadata = _metadata(direction, side, quantize, uint8_io)
    if integer and uint8_io:
        metadata["input"]["quantization"], metadata["output"]["quantization"] = _uint8_ends(path)
    write_json(path + ".json", metadata, "the LiteRT metadata")
    return path


def _for_litert(generator: keras.Model, quantize: str | None, calibration, dynamic_size: bool) -> keras.Model:
    """The generator rewritten for LiteRT's kernels: the same function in float, and the ranges that
    quantize well."""
    # Sub-pixel convs: the same function, faster files (docs/benchmarks.md). LiteRT's 16x8 mode has no
    # SPACE_TO_DEPTH or DEPTH_TO_SPACE.
    if quantize != "int16x8":
        generator = subpixel_convs(generator)
    if quantize in INTEGER_QUANTIZATIONS:  # channels 100x apart break 16-bit norms too (tested)
        generator = equalize_channels(generator, calibration, "range" if quantize == "int8" else "spread")
    if quantize == "int8":
        generator = split_norms(generator, calibration, two_grids=not dynamic_size)
    return generator


def _convert(generator: keras.Model, quantize, calibration, side, graph_uint8: bool, uint8_io: bool) -> bytes:
    """The LiteRT flatbuffer of the generator's serving function (input ``[1, side, side, 3]``)."""
    import tensorflow as tf

    dtype = tf.uint8 if graph_uint8 else tf.float32

    def serve(images):
        x = tf_to_float(images) if graph_uint8 else images
        y = padded_call(generator, x) if side is None else tf.cast(generator(x, training=False), tf.float32)
        return {"images": tf_to_uint8(y) if graph_uint8 else y}

    staging = tempfile.mkdtemp(prefix="cyclegan-tflite-")
    try:
        archive = keras.export.ExportArchive()
        archive.track(generator)
        spec = tf.TensorSpec([1, side, side, 3], dtype, name="images")
        archive.add_endpoint("serving_default", serve, input_signature=[spec])
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
            # quantizing (cyclegan_keras.deploy.calibration). Not public API: tested.
            converter._experimental_calibrate_only = True
        elif quantize == "int16x8":
            converter.representative_dataset = _representative(calibration, graph_uint8)
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
            ]
        flatbuffer = converter.convert()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if quantize != "int8":
        return flatbuffer
    from tensorflow.lite.python.convert import mlir_quantize

    ends = tf.uint8 if uint8_io else tf.float32
    inputs = (to_float(pixels)[None] for pixels in calibration)
    ranged = least_error_ranges(flatbuffer, inputs, saturated=two_grid_convs(generator))
    return mlir_quantize(ranged, input_data_type=ends, output_data_type=ends)


def _metadata(direction: str, side: int | None, quantize: str | None, uint8_io: bool) -> dict:
    """What a mobile developer reads beside the file: tensor names, shapes, dtypes and ranges."""
    ends = {
        "name": "images",
        "shape": [1, side or -1, side or -1, 3],
        "dtype": "uint8" if uint8_io else "float32",
        "range": [0, 255] if uint8_io else [-1.0, 1.0],
    }
    return {
        "direction": direction,
        "input": {**ends, "layout": "NHWC, RGB"},
        "output": dict(ends),
        "quantization": quantize or "float32",
        "dynamic_size": side is None,
    }


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


def export(generator: keras.Model, out: str, *, settings, calibration, verify) -> None:
    """The registry's writer: ``export_tflite`` (and its ``.json`` metadata) into ``out``, verified
    before it gets there."""

    def write(path: str) -> None:
        export_tflite(generator, path, quantize=settings.quantize, input_size=settings.input_size,
                      dynamic_size=settings.dynamic_size, uint8_io=settings.uint8_io,
                      calibration=calibration, direction=settings.direction)  # fmt: skip

    staged_export(out, "the tflite export", write, verify, companions=(".json",))


def check_out(out: str, overwrite: bool) -> None:
    """Refuses an ``out`` (or its ``.json``) that holds another kind of file, or (without ``overwrite``)
    a LiteRT file."""
    check_output_file(out, "tflite", overwrite=overwrite)
    check_output_file(out + ".json", "tflite_metadata", flag="the metadata file", overwrite=overwrite)


class LiteRTRunner(Runner):
    """A ``.tflite`` generator, run by the edge script's ``LiteRTTranslator`` (no TensorFlow)."""

    def __init__(self, path: str, threads: int | None = None):
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


def load_runner(path: str, threads: int | None = None) -> LiteRTRunner:
    """The registry's runner of a ``.tflite`` file."""
    return LiteRTRunner(path, threads)
