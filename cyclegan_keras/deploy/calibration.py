"""int8 activation ranges chosen for the least error on the calibration photos, not their extremes.

LiteRT's converter gives each int8 activation tensor the range from its minimum to its maximum on
the calibration photos. A generator's activations are heavy-tailed (the last up-sampling norm's input
reaches 16 standard deviations, and values beyond 6 hold half its variance: ``bench/
quantization.py``), so that range spends the 256 levels on a few pixels and leaves the bulk a
handful. Here the converter's calibrated float model runs on the calibration photos with every
tensor kept, and each image-shaped tensor gets the fraction of its full range (1 down to 0.15) whose
rounding and clipping error over sampled values is least (what quantization toolkits call MSE
calibration); per-channel statistics (means, variances) and the operands of sums of products
(``BATCH_MATMUL``, whose tails those sums need) keep their full range, and the convs that feed a
``TwoGridInstanceNormalization`` get [-1, 1], where their fine half saturates. The statistics' ranges
then take in the values the int8 file itself computes (its 8-bit activations shift a mean by more
than the float means vary). Least-error ranges measured on a trained generator: +0.7 to +1.0 dB at
64 px, +1.6 dB at 256 px (``docs/benchmarks.md``). The pass also gives every tensor its own range:
the converter's calibration recorded the residual blocks' norm outputs with the range of the sum
they feed.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable

import numpy as np

# The fractions of a tensor's full calibration range tried, widest first.
FRACTIONS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.25, 0.2, 0.15)
# Values sampled per tensor and photo: enough for the error of each fraction, bounded memory.
SAMPLES = 8192
# Above this many bytes of activations kept at once the pass is skipped (LiteRT's own ranges stay).
MAX_KEPT_BYTES = 4 << 30
# Ops whose output holds their input's values rearranged (int8 keeps one grid through them).
_VIEWS = ("RESHAPE", "TRANSPOSE", "STRIDED_SLICE", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE")
_CONVS = ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV")
# The range of a saturated conv's output (``saturated`` in ``least_error_ranges``).
SATURATED_RANGE = (-1.0, 1.0)


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


def _keeping_interpreter(flatbuffer: bytes):
    """A LiteRT interpreter that keeps every tensor (builtin kernels: the delegate would fuse them)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with warnings.catch_warnings():  # keeping every tensor is what this pass is for
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors.*")
        return Interpreter(
            model_content=bytes(flatbuffer),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=True,
        )


def _widen(extremes: dict[int, tuple[float, float]], i: int, values: np.ndarray) -> None:
    lo, hi = extremes.get(i, (0.0, 0.0))  # int8 ranges always hold zero
    extremes[i] = (min(lo, float(values.min())), max(hi, float(values.max())))


def _kept_bytes(interpreter) -> int:
    return sum(
        int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize for t in interpreter.get_tensor_details()
    )


def least_error_ranges(
    calibrated: bytes, inputs: Iterable[np.ndarray], levels: int = 256, saturated: Iterable[str] = ()
) -> bytes:
    """``calibrated`` (the converter's float model with calibration ranges) with each image-shaped
    activation's range replaced by the one of least quantization error on ``inputs``.

    Args:
        calibrated: a LiteRT flatbuffer from ``TFLiteConverter`` with ``_experimental_calibrate_only``.
        inputs: the model's float inputs ``[1, H, W, C]`` (the calibration photos).
        levels: the quantization levels (256 for int8).
        saturated: names of layers (convs) whose conv outputs, and what only rearranges them (crops,
            slices, a sub-pixel conv's concatenation and ``DEPTH_TO_SPACE``), get ``SATURATED_RANGE``
            whatever their calibration range.

    Returns:
        The flatbuffer with new ranges. Where keeping every activation of one photo would take more
        than ``MAX_KEPT_BYTES``, LiteRT's own ranges stay (with a warning), ``saturated`` aside.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    inputs = list(inputs)
    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    tensors = model.subgraphs[0].tensors
    ranged = [
        i for i, t in enumerate(tensors) if t.quantization is not None and t.quantization.min is not None
        and len(t.quantization.min) == 1
    ]  # fmt: skip
    full, fixed = _graph_rules(model, saturated)
    ranges, image_shaped = _measured_ranges(
        calibrated, inputs, levels, [i for i in ranged if i not in fixed], full
    )
    if not ranges and not fixed:
        return calibrated

    def with_ranges() -> bytes:
        for i in ranged:
            lo, hi = SATURATED_RANGE if i in fixed else ranges.get(i, (None, None))
            if lo is not None:
                tensors[i].quantization.min = [np.float32(lo)]
                tensors[i].quantization.max = [np.float32(hi)]
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))

    statistics = {i: tensors[i].name.decode() for i in ranges if i not in image_shaped}
    for i, (lo, hi) in _int8_statistics(with_ranges(), inputs, statistics).items():
        ranges[i] = (min(ranges[i][0], lo), max(ranges[i][1], hi))
    return with_ranges()


def _measured_ranges(
    calibrated: bytes, inputs: list[np.ndarray], levels: int, ranged: list[int], full: set[int]
) -> tuple[dict[int, tuple[float, float]], set[int]]:
    """Each of ``ranged``'s range on ``inputs``: the least-error one for image-shaped tensors not in
    ``full``, the extremes for the rest (nothing where the activations would not fit in memory); and
    which are image-shaped."""
    interpreter = _keeping_interpreter(calibrated)
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
                stacklevel=3,
            )
            return {}, set()
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        for i in ranged:
            values = interpreter.get_tensor(i)
            _widen(extremes, i, values)
            # Image-shaped: not per-channel statistics ([1, 1, 1, C], or [1, C, 1, 1] from a matmul).
            if values.ndim == 4 and values.shape[1] * values.shape[2] > 1 and values.shape[3] > 1:
                image_shaped.add(i)
                flat = values.ravel()
                samples[i].append(
                    generator.choice(flat, SAMPLES, replace=False) if flat.size > SAMPLES else flat
                )
    ranges = {
        i: _least_error_range(np.concatenate(samples[i]).astype(np.float64), *extremes[i], levels)
        if i in image_shaped and i not in full else extremes[i]
        for i in ranged
    }  # fmt: skip
    return ranges, image_shaped


def _int8_statistics(
    ranged: bytes, inputs: list[np.ndarray], statistics: dict[int, str]
) -> dict[int, tuple[float, float]]:
    """The extremes of the per-channel statistics (means, variances and what follows from them) as the
    int8 file computes them from its own 8-bit activations: the file with those ops kept in float,
    run on ``inputs``. Their float model's ranges can be too tight for that: the rounding of a conv's
    weights shifts a channel's 8-bit mean by more than the float means vary between photos (a
    two-grid norm's centred means; tested), and a mean held to the float range then clips."""
    from tensorflow.lite.python.convert import mlir_quantize

    if not statistics:
        return {}
    probe = mlir_quantize(ranged, denylisted_nodes=list(statistics.values()))
    interpreter = _keeping_interpreter(probe)
    source = interpreter.get_input_details()[0]["index"]
    found = {t["name"]: t["index"] for t in interpreter.get_tensor_details() if t["dtype"] == np.float32}
    extremes: dict[int, tuple[float, float]] = {}
    for x in inputs:
        interpreter.resize_tensor_input(source, x.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(source, x)
        interpreter.invoke()
        for i, name in statistics.items():
            if name in found:
                _widen(extremes, i, interpreter.get_tensor(found[name]))
    return extremes


def _graph_rules(model, saturated: Iterable[str]) -> tuple[set[int], set[int]]:
    """The tensors that keep their full calibration range: the operands of each ``BATCH_MATMUL``
    (back through views), whose int32 sums of products are exact and need the tails; and those held
    to ``SATURATED_RANGE``: the conv outputs in the scope of a ``saturated`` layer, their views and
    their concatenations."""
    from tensorflow.lite.python import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    graph = model.subgraphs[0]
    ops = [(op, names[model.operatorCodes[op.opcodeIndex].builtinCode]) for op in graph.operators]
    producer = {int(t): (op, kind) for op, kind in ops for t in op.outputs}
    scopes = [re.compile(rf"(^|/){re.escape(layer)}(_\d+)?/") for layer in saturated]
    fixed: set[int] = set()
    # The saturated layers' conv outputs and what only rearranges them (the ops run in this order);
    # not their inputs, which a sub-pixel conv pads and slices within its own scope.
    for op, kind in ops:
        outputs = [int(t) for t in op.outputs]
        produced = kind in _CONVS and any(
            scope.search(graph.tensors[outputs[0]].name.decode()) for scope in scopes
        )
        viewed = kind in _VIEWS and int(op.inputs[0]) in fixed
        joined = kind == "CONCATENATION" and all(int(t) in fixed for t in op.inputs)
        if produced or viewed or joined:
            fixed.update(outputs)
    full: set[int] = set()
    backward = [int(t) for op, kind in ops if kind == "BATCH_MATMUL" for t in op.inputs]
    while backward:
        tensor = backward.pop()
        full.add(tensor)
        op, kind = producer.get(tensor, (None, None))
        if kind in _VIEWS:
            backward.append(int(op.inputs[0]))
    return full, fixed
