"""The training step, one module per Keras backend (as Keras keeps one trainer per backend).

Each module gives ``train_step(model, ...)`` and ``test_step(model, ...)`` with the arguments Keras'
trainer of that backend passes; the losses themselves are ``CycleGAN``'s, written once in
``keras.ops``. A backend's own code (gradient tapes, stateless values, foreach updates) lives here only.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import keras


def backend_steps(backend: str | None = None) -> ModuleType:
    """The step module of ``backend`` (default: Keras' backend)."""
    return importlib.import_module(f"{__name__}.{backend or keras.backend.backend()}")
