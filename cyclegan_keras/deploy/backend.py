"""Which Keras backend translates with a Keras generator when the user names none.

Keras picks its backend when first imported, so this runs before anything imports Keras and imports
neither Keras nor a framework (only looks them up).
"""

from __future__ import annotations

import importlib.util
import os
import sys

# Generator files that the Keras runner loads (the exported formats have runners of their own).
KERAS_FILES = (".keras", ".pth", ".npz")
# Fastest first for translating whole photos on a CPU (bench/translate.py; docs/benchmarks.md, "Whole
# photos in one compiled call"): the network's time and the process' peak memory at 256 px and 1 MP.
INFERENCE_ORDER = ("torch", "tensorflow", "jax")


def is_pretrained_name(model: str | os.PathLike) -> bool:
    """Whether ``--model`` names a pretrained generator rather than a file or folder: it exists as
    neither, and has no folder and no suffix."""
    model = os.fspath(model)
    return not (os.path.exists(model) or os.sep in model or os.path.splitext(model)[1])


def runs_on_keras(model: str | os.PathLike) -> bool:
    """Whether ``load_runner`` runs this model with Keras: a ``.keras``/``.pth``/``.npz`` file or a
    pretrained name (exported files run on their own runtimes)."""
    return is_pretrained_name(model) or os.fspath(model).endswith(KERAS_FILES)


def inference_backend(chosen: str | None) -> tuple[str, str]:
    """The backend to translate on and why: ``chosen`` (``--backend`` or ``$KERAS_BACKEND``), else the one
    Keras already runs on in this process, else the first installed of ``INFERENCE_ORDER``."""
    if chosen:
        return chosen, "as asked"
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend(), "Keras' backend in this process"
    installed = [name for name in INFERENCE_ORDER if importlib.util.find_spec(name) is not None]
    if not installed:
        return "tensorflow", "Keras' default"
    return installed[0], "the fastest installed for inference on a CPU; --backend to choose"
