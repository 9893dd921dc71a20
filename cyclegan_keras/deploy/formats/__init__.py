"""The export formats: one module each, and the registry that the command line, ``export_generator`` and
``load_runner`` read.

A format module (``saved_model``, ``tflite``, ``onnx``, ``web``) gives:

- ``export(generator, out, *, settings, calibration, verify)``: writes the generator to ``out`` with
  the export's ``settings`` (``cyclegan_keras.deploy.options.ExportOptions``) and ``calibration``
  photos, calling ``verify(path)`` on what it wrote before anything reaches ``out``;
- ``check_out(out, overwrite)``: refuses an ``out`` it must not write, before any work;
- ``load_runner(path, threads)`` and, for a folder format, ``is_export(path)``: where the format's
  files can be run (``cyclegan_keras.deploy.runners.Runner``).

Adding a format is one module here and one ``Format`` entry in ``FORMATS``. This module imports no
TensorFlow (the command line's help reads it); a format's module is imported when it is used.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType

from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import check_choice

# LiteRT quantizations (``export --quantize``).
QUANTIZATIONS = ("float16", "dynamic", "int8", "int16x8")
# The full-integer ones, calibrated on real photos.
INTEGER_QUANTIZATIONS = ("int8", "int16x8")


@dataclass(frozen=True)
class Format:
    """An export format.

    Attributes:
        name: its ``--format`` name, and its module's name in this package.
        suffix: the ending of its file (``.tflite``), or ``""`` for a folder.
        help: what it is, for ``--help``.
        quantizations: the ``--quantize`` values it takes.
        options: the ``ExportOptions`` that apply to it only (``dynamic_size``, ...): they are refused
            with other formats.
        runs: whether ``load_runner`` runs its files (a web app's generator runs as its ``.tflite``).
        module_name: its module, if it is not this package's module of its name (a format of a plugin
            or a test).
    """

    name: str
    suffix: str
    help: str
    quantizations: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    runs: bool = True
    module_name: str = ""

    def module(self) -> ModuleType:
        """The format's module (imported now: it may load TensorFlow or a runtime)."""
        return importlib.import_module(self.module_name or f"{__name__}.{self.name}")


FORMATS = {
    entry.name: entry
    for entry in (
        Format("saved_model", "", "a TensorFlow SavedModel folder (TensorFlow Serving)"),
        Format("tflite", ".tflite", "a LiteRT file", QUANTIZATIONS, ("dynamic_size", "uint8_io")),
        Format("onnx", ".onnx", "an ONNX file (ONNX Runtime)"),
        Format(
            "web",
            "",
            "a static folder (index.html, the .tflite, the LiteRT.js runtime) that runs in a browser",
            tuple(q for q in QUANTIZATIONS if q != "int16x8"),  # LiteRT.js runs no 16x8 kernels
            runs=False,
        ),
    )
}
FILE_SUFFIXES = tuple(entry.suffix for entry in FORMATS.values() if entry.suffix)


def format_named(name: str) -> Format:
    """The ``Format`` of a ``--format`` name.

    Raises:
        UsageError: no format of that name.
    """
    return FORMATS[check_choice("format", name, tuple(FORMATS))]


def format_of(path: str | os.PathLike) -> Format | None:
    """The runnable format of an exported file or folder, by its ending or its folder's contents; None
    where no format's."""
    path = os.fspath(path)
    for entry in FORMATS.values():
        if not entry.runs:
            continue
        if entry.suffix and path.lower().endswith(entry.suffix):
            return entry
        if not entry.suffix and os.path.isdir(path) and entry.module().is_export(path):
            return entry
    return None


def check_out_name(entry: Format, out: str) -> None:
    """Refuses an ``out`` whose name is another format's: the runtimes know a file by its ending.

    Raises:
        UsageError: a file format's ``out`` without its ending, or a folder format's with a model file's.
    """
    model_files = (*FILE_SUFFIXES, ".keras")
    if entry.suffix and not out.lower().endswith(entry.suffix):
        raise UsageError(
            f"--format {entry.name} writes a {entry.suffix} file, and its runtimes know it by that ending: "
            f"pass --out NAME{entry.suffix} (got {out!r})."
        )
    if not entry.suffix and out.lower().rstrip("/").endswith(model_files):
        raise UsageError(
            f"--format {entry.name} writes a folder, and {out!r} names a model file: pass a folder name "
            f"(without {', '.join(model_files[:-1])} or .keras), or the --format of that file."
        )
