"""Which Keras backend a run trains on, and what each backend can and cannot do for it.

Keras picks its backend once, when it is first imported (``KERAS_BACKEND``), so ``select_backend``
must run before anything imports Keras; the command line does that for ``--backend``. This module
imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import check_choice
from cyclegan_keras.training.config import BACKENDS, TrainConfig

_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}


def active_backend() -> str:
    """The backend Keras runs on in this process (or will, once imported)."""
    if "keras" in sys.modules:
        import keras

        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND") or _keras_config_backend() or "tensorflow"


def _keras_config_backend() -> str | None:
    import json

    path = os.path.join(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"), "keras.json")
    try:
        with open(path) as file:
            return json.load(file).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def select_backend(backend: str) -> None:
    """Makes Keras run on ``backend`` in this process: sets ``KERAS_BACKEND`` before Keras is imported.

    Raises:
        UsageError: ``backend`` is unknown or not installed (the message names the extra to install),
            or Keras already runs on another backend in this process.
    """
    check_choice("backend", backend, BACKENDS)
    if importlib.util.find_spec(_MODULES[backend]) is None:
        extra = (
            ""
            if backend == "tensorflow"
            else f": pip install '.[{backend}]' (from a clone of the repository)"
        )
        raise UsageError(f"--backend {backend} needs {_MODULES[backend]}, which is not installed{extra}.")
    if "keras" in sys.modules and active_backend() != backend:
        raise UsageError(
            f"--backend {backend}: Keras already runs on {active_backend()} in this process (it picks its "
            f"backend when first imported). Set KERAS_BACKEND={backend} before importing keras, or run "
            f"`cyclegan-keras train --backend {backend}` in a new process."
        )
    os.environ["KERAS_BACKEND"] = backend


def check_backend_options(config: TrainConfig, backend: str) -> None:
    """Refuses, in one line, an option that ``backend`` cannot honour."""
    if backend != "tensorflow" and config.strategy != "default":
        raise UsageError(
            f"--strategy {config.strategy} is tf.distribute, which needs --backend tensorflow; on {backend} "
            "train on one device (several devices: run on TensorFlow, or see the README's backend table)."
        )
    if backend == "jax" and config.jit_compile:
        raise UsageError("--jit-compile: JAX compiles every training step with XLA already; drop the flag.")
    if backend == "torch" and config.steps_per_execution > 1:
        raise UsageError(
            "--steps-per-execution above 1 is not available on PyTorch (Keras runs one step per call there): "
            "drop the flag, or use --backend jax or tensorflow."
        )
    if backend == "torch" and config.precision == "mixed_float16":
        import torch

        if not torch.cuda.is_available():
            raise UsageError(
                "--precision mixed_float16 on PyTorch needs a GPU: its CPU convolutions cannot train in "
                "float16. Use --precision mixed_bfloat16 (or float32) on a CPU."
            )
    if config.input_pipeline == "tf_data" and importlib.util.find_spec("tensorflow") is None:
        raise UsageError("--input-pipeline tf_data needs TensorFlow; use --input-pipeline python.")
    if input_pipeline(config, backend) == "python" and config.strategy != "default":
        raise UsageError(
            f"--strategy {config.strategy} reads its data with tf.data: use --input-pipeline tf_data."
        )


def input_pipeline(config: TrainConfig, backend: str) -> str:
    """``tf_data`` or ``python``: the configured pipeline, or for ``auto`` the backend's own."""
    if config.input_pipeline != "auto":
        return config.input_pipeline
    return "tf_data" if backend == "tensorflow" else "python"


def make_deterministic(backend: str) -> None:
    """The same seed gives the same weights: TensorFlow's op determinism, PyTorch's deterministic
    algorithms; JAX on a CPU is deterministic as it is."""
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)


def keep_compiled_steps(backend: str) -> str | None:
    """On JAX: XLA's compiled programs kept in ``$CYCLEGAN_KERAS_HOME/jax`` (JAX's persistent
    compilation cache), so that a resumed or repeated run of the same settings starts without compiling
    its step again (25-32 s on an H200, docs/benchmarks.md). A cache the user set already is kept.
    Returns the folder, or None where nothing was set."""
    if backend != "jax":
        return None
    import jax

    if jax.config.jax_compilation_cache_dir or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return None
    from cyclegan_keras.system.cache import cache_dir

    folder = cache_dir("jax")
    jax.config.update("jax_compilation_cache_dir", folder)
    return folder


def device_names(backend: str) -> list[str]:
    """The devices ``backend`` trains on, as ``cpu:0``, ``gpu:0``, ``tpu:0`` (``keras.distribution``
    lists them on JAX only)."""
    if backend == "jax":
        import jax

        return [f"{device.platform}:{device.id}" for device in jax.devices()]
    if backend == "torch":
        import torch

        return [f"gpu:{i}" for i in range(torch.cuda.device_count())] or ["cpu:0"]
    import tensorflow as tf

    found = tf.config.list_logical_devices()
    kinds = [device.device_type.lower() for device in found]
    return [f"{kind}:{kinds[: i + 1].count(kind) - 1}" for i, kind in enumerate(kinds)]


def backend_version(backend: str) -> str:
    """The installed version of ``backend``'s framework."""
    return importlib.import_module(_MODULES[backend]).__version__
