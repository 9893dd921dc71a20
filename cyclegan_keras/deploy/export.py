"""Exporting a generator in any registered format (``cyclegan_keras.deploy.formats``), verified against
Keras on real photos before the file reaches its place."""

from __future__ import annotations

import dataclasses
import os

import keras

from cyclegan_keras.deploy.formats import INTEGER_QUANTIZATIONS, check_out_name, format_named
from cyclegan_keras.deploy.generators import generator_direction, load_generator
from cyclegan_keras.deploy.options import ExportOptions
from cyclegan_keras.deploy.runners import load_runner
from cyclegan_keras.deploy.verify import (
    TABLE_HEADER,
    Verification,
    check_verification,
    verification_photos,
    verify_export,
)
from cyclegan_keras.errors import UsageError
from cyclegan_keras.system.budget import check_export_memory

# A translator (``uint8`` photo in, same-size ``uint8`` photo out) for any generator file or name, large
# photos in tiles with ``tile=``: the runner every command uses, under the name the export API gave it.
load_translator = load_runner


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
        format: ``saved_model``, ``tflite``, ``onnx`` or ``web`` (a static web app, ``export_web``):
            the names of ``cyclegan_keras.deploy.formats.FORMATS``.
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
    out = os.fspath(out)
    settings = ExportOptions(
        model=model, direction=direction, format=format, quantize=quantize, calibration_dir=calibration_dir,
        input_size=input_size, dynamic_size=dynamic_size, uint8_io=uint8_io, verify_dir=verify_dir,
        threads=threads, out=out, overwrite=overwrite,
    )  # fmt: skip
    settings.check()
    entry = format_named(format)
    writer = entry.module()
    check_out_name(entry, out)
    writer.check_out(out, overwrite)
    generator = model if isinstance(model, keras.Model) else load_generator(model, direction)
    # What the file says it translates: the one asked for, else the generator's own, else A -> B.
    direction = direction or generator_direction(generator, None if generator is model else model) or "a_to_b"
    check_export_memory(generator, input_size)
    _check_rgb(generator)
    integer = quantize in INTEGER_QUANTIZATIONS
    calibration = verification_photos(calibration_dir, input_size, count=16) if integer else ()
    photos = verification_photos(verify_dir, input_size)
    kind = f"{format}" + (f" {quantize}" if quantize else "") + (" uint8 io" if uint8_io else "")
    results = []

    def verify(path: str) -> None:
        result = verify_export(generator, path, photos, kind=kind, threads=threads)
        # A web app's file is the model inside its folder.
        result.path = out if entry.runs else os.path.join(out, os.path.basename(path))
        if verbose:
            print(TABLE_HEADER)
            print(result.row())
        check_verification(result, quantize, uint8_io)
        results.append(result)

    settings = dataclasses.replace(settings, direction=direction)
    writer.export(generator, out, settings=settings, calibration=calibration, verify=verify)
    return results[0]


def _check_rgb(generator: keras.Model) -> None:
    """Refuses a generator of other channels than RGB: exported files take and give RGB photos."""
    channels = (generator.inputs[0].shape[-1], generator.outputs[0].shape[-1])
    if channels != (3, 3):
        raise UsageError(
            f"Exported files take and give RGB photos, and this generator maps {channels[0]} channel(s) to "
            f"{channels[1]} (--input-nc/--output-nc): translate with the .keras file instead "
            "(`cyclegan-keras translate --model FILE.keras`, which converts photos to grayscale for it)."
        )
