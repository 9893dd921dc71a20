"""int8 activation ranges chosen for the least error on the calibration photos, not their extremes.

LiteRT's converter gives each int8 activation tensor the range from its minimum to its maximum on
the calibration photos. A generator's activations are heavy-tailed (the last up-sampling norm's input
reaches 16 standard deviations, and values beyond 6 hold half its variance: ``bench/
quantization.py``), so that range spends the 256 levels on a few pixels and leaves the bulk a
handful. Here the converter's calibrated float model runs on the calibration photos with every
tensor kept, and each image-shaped tensor gets the fraction of its full range (1 down to 0.15) whose
rounding and clipping error over sampled values is least (what quantization toolkits call MSE
calibration); per-channel statistics (means, variances) keep their full range. Measured on a
trained generator: +0.7 to +1.0 dB at 64 px, +1.6 dB at 256 px (``docs/benchmarks.md``). The pass
also gives every tensor its own range: the converter's calibration recorded the residual blocks'
norm outputs with the range of the sum they feed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np

# The fractions of a tensor's full calibration range tried, widest first.
FRACTIONS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15)
# Values sampled per tensor and photo: enough for the error of each fraction, bounded memory.
SAMPLES = 8192
# Above this many bytes of activations kept at once the pass is skipped (LiteRT's own ranges stay).
MAX_KEPT_BYTES = 4 << 30


def _least_error_range(values: np.ndarray, lo: float, hi: float, levels: int) -> tuple[float, float]:
    """The ``[lo, hi] * fraction`` (for ``fraction`` in ``FRACTIONS``) whose quantization of ``values``
    to ``levels`` steps has the least squared error."""
    best = None
    for fraction in FRACTIONS:
        low, high = lo * fraction, hi * fraction
        step = (high - low) / (levels - 1)
        if step <= 0:
            continue
        rounded = np.round((np.clip(values, low, high) - low) / step) * step + low
        error = float(np.mean((rounded - values) ** 2))
        if best is None or error < best[0]:
            best = (error, low, high)
    return (lo, hi) if best is None else best[1:]


def _kept_bytes(interpreter) -> int:
    return sum(
        int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize for t in interpreter.get_tensor_details()
    )


def least_error_ranges(calibrated: bytes, inputs: Iterable[np.ndarray], levels: int = 256) -> bytes:
    """``calibrated`` (the converter's float model with calibration ranges) with each image-shaped
    activation's range replaced by the one of least quantization error on ``inputs``.

    Args:
        calibrated: a LiteRT flatbuffer from ``TFLiteConverter`` with ``_experimental_calibrate_only``.
        inputs: the model's float inputs ``[1, H, W, C]`` (the calibration photos).
        levels: the quantization levels (256 for int8).

    Returns:
        The flatbuffer with new ranges, or ``calibrated`` unchanged (with a warning) where keeping
        every activation of one photo would take more than ``MAX_KEPT_BYTES``.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    tensors = model.subgraphs[0].tensors
    ranged = [
        i for i, t in enumerate(tensors) if t.quantization is not None and t.quantization.min is not None
        and len(t.quantization.min) == 1
    ]  # fmt: skip
    with warnings.catch_warnings():  # keeping every tensor is what this pass is for
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        interpreter = Interpreter(
            model_content=bytes(calibrated),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True,
        )
    source = interpreter.get_input_details()[0]["index"]
    generator = np.random.default_rng(0)
    samples: dict[int, list[np.ndarray]] = {i: [] for i in ranged}
    extremes: dict[int, tuple[float, float]] = {}
    image_shaped: set[int] = set()
    for x in inputs:
        interpreter.resize_tensor_input(source, x.shape)
        interpreter.allocate_tensors()
        if _kept_bytes(interpreter) > MAX_KEPT_BYTES:
            warnings.warn(
                f"int8 ranges: keeping LiteRT's min/max calibration (holding every activation of a "
                f"{x.shape[1]}x{x.shape[2]} input would take {_kept_bytes(interpreter) / 2**30:.1f} GiB)",
                stacklevel=2,
            )
            return calibrated
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        for i in ranged:
            values = interpreter.get_tensor(i)
            lo, hi = extremes.get(i, (0.0, 0.0))  # int8 ranges always hold zero
            extremes[i] = (min(lo, float(values.min())), max(hi, float(values.max())))
            if values.ndim == 4 and values.shape[1] * values.shape[2] > 1:
                image_shaped.add(i)
                flat = values.ravel()
                samples[i].append(
                    generator.choice(flat, SAMPLES, replace=False) if flat.size > SAMPLES else flat
                )
    for i in ranged:
        lo, hi = extremes[i]
        if i in image_shaped:
            lo, hi = _least_error_range(np.concatenate(samples[i]).astype(np.float64), lo, hi, levels)
        tensors[i].quantization.min = [np.float32(lo)]
        tensors[i].quantization.max = [np.float32(hi)]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
