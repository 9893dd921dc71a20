"""SavedModel: a folder that TensorFlow (and TensorFlow Serving) loads without this package."""

from __future__ import annotations

import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from cyclegan_keras.data.images import tf_to_float, tf_to_uint8
from cyclegan_keras.deploy.formats.shared import padded_call, staged_export
from cyclegan_keras.deploy.runners import Runner
from cyclegan_keras.errors import OutputExistsError
from cyclegan_keras.run.outputs import check_output_folder, is_saved_model


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
        return {"images": tf_to_uint8(padded_call(generator, tf_to_float(images)))}

    def translate_float(images):
        return {"images": padded_call(generator, images)}

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


def export(generator: keras.Model, out: str, *, settings, calibration, verify) -> None:
    """The registry's writer: ``export_saved_model`` into ``out``, verified before it gets there."""
    staged_export(out, "the saved_model export", lambda path: export_saved_model(generator, path), verify)


def check_out(out: str, overwrite: bool) -> None:
    """Refuses a file, a folder of other things, or (without ``overwrite``) a SavedModel at ``out``."""
    check_output_folder(out, is_saved_model, "SavedModel")
    if is_saved_model(out) and not overwrite:
        raise OutputExistsError(
            f"--out {out!r} already holds a SavedModel, so it was left untouched: pass --overwrite to "
            "replace it, or a new path."
        )


def is_export(path: str) -> bool:
    """Whether the folder ``path`` holds a SavedModel."""
    return os.path.isfile(os.path.join(path, "saved_model.pb"))


class SavedModelRunner(Runner):
    """A SavedModel of ``export_saved_model``: ``translate_float`` and the ``uint8`` ``serving_default``."""

    native_uint8 = True

    def __init__(self, path: str):
        self.model = tf.saved_model.load(path)  # kept: it owns the variables the signatures read

    def run_float(self, batch: np.ndarray) -> np.ndarray:
        return self.model.signatures["translate_float"](images=tf.constant(batch))["images"].numpy()

    def run_uint8(self, batch: np.ndarray) -> np.ndarray:
        return self.model.signatures["serving_default"](images=tf.constant(batch))["images"].numpy()


def load_runner(path: str, threads: int | None = None) -> SavedModelRunner:
    """The registry's runner of a SavedModel folder (``threads``: TensorFlow chooses its own)."""
    return SavedModelRunner(path)
