"""ONNX: a file for ONNX Runtime and the tools that read ONNX (the ``onnx`` extra)."""

from __future__ import annotations

import os

import keras
import numpy as np

from cyclegan_keras.deploy.formats.shared import padded_call, staged_export
from cyclegan_keras.deploy.runners import Runner
from cyclegan_keras.errors import MissingExtraError, UsageError
from cyclegan_keras.run.outputs import check_output_file


def export_onnx(generator: keras.Model, path: str | os.PathLike, opset: int = 17) -> str:
    """Writes an ONNX generator (float32 [-1, 1], dynamic height and width). Needs the ``onnx`` extra.

    Raises:
        OutputExistsError: ``path`` holds something other than an ONNX model.
    """
    import tensorflow as tf

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
        return tf.identity(padded_call(generator, images), name="translated")

    tf2onnx.convert.from_function(translate, input_signature=spec, opset=opset, output_path=os.fspath(path))
    return os.fspath(path)


def export(generator: keras.Model, out: str, *, settings, calibration, verify) -> None:
    """The registry's writer: ``export_onnx`` into ``out``, verified before it gets there."""
    staged_export(out, "the onnx export", lambda path: export_onnx(generator, path), verify)


def check_out(out: str, overwrite: bool) -> None:
    """Refuses an ``out`` that holds another kind of file, or (without ``overwrite``) an ONNX file."""
    check_output_file(out, "onnx", overwrite=overwrite)


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


def load_runner(path: str, threads: int | None = None) -> OnnxRunner:
    """The registry's runner of an ``.onnx`` file."""
    return OnnxRunner(path, threads)
