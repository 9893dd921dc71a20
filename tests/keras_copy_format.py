"""An export format outside the package, for the test that a format is one module and one registry
entry: the generator saved again as a ``.keras`` file under its own ending, run by Keras."""

import os
import shutil
import tempfile

from cyclegan_keras.deploy.formats.shared import staged_export
from cyclegan_keras.deploy.runners import KerasRunner
from cyclegan_keras.run.outputs import check_output_file


def export(generator, out, *, settings, calibration, verify):
    def write(path):
        generator.save(path + ".keras")
        shutil.move(path + ".keras", path)

    staged_export(out, "the keras_copy export", write, verify)


def check_out(out, overwrite):
    check_output_file(out, "keras", overwrite=overwrite)


def load_runner(path, threads=None):
    import keras

    with tempfile.TemporaryDirectory() as folder:
        copy = shutil.copy(path, os.path.join(folder, "generator.keras"))  # Keras knows it by its ending
        return KerasRunner(keras.models.load_model(copy, safe_mode=True))
