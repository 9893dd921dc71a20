"""int8 ranges of least error: heavy-tailed activations lose less than with the converter's min/max."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import cyclegan_keras.deploy.calibration as calibration


def _heavy_tailed(seed: int, count: int) -> list[np.ndarray]:
    """Images of Laplace values: the largest of a few thousand lie about 10 scales out."""
    rng = np.random.default_rng(seed)
    return [rng.laplace(0, 1, (1, 32, 32, 4)).astype("float32") for _ in range(count)]


def _calibrated(tmp_path, inputs) -> bytes:
    """A tiny conv model's calibrated float LiteRT model, as the export makes it."""
    keras.utils.set_random_seed(0)
    x = keras.Input((None, None, 4))
    y = keras.layers.Conv2D(4, 1, name="first")(x)
    model = keras.Model(x, keras.layers.Conv2D(4, 1, name="second")(keras.layers.ReLU()(y)))
    return _converted(tmp_path, model, inputs), model


def _converted(tmp_path, model, inputs) -> bytes:
    """``model``'s calibrated float LiteRT model for ``inputs``."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = [tf.TensorSpec([1, 32, 32, 4], tf.float32)]
    archive.add_endpoint("serve", lambda images: model(images), input_signature=spec)
    archive.write_out(str(tmp_path / "sm"), verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x] for x in inputs)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter._experimental_calibrate_only = True
    return converter.convert()


def _error(flatbuffer: bytes, model, inputs) -> float:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    errors = []
    for x in inputs:
        interpreter.set_tensor(source["index"], x)
        interpreter.invoke()
        errors.append(np.mean((interpreter.get_tensor(target["index"]) - np.asarray(model(x))) ** 2))
    return float(np.mean(errors))


def test_least_error_ranges_trim_heavy_tails_and_lose_less_on_the_calibration_inputs(tmp_path):
    """What the pass promises: less error on the inputs it saw. On held-out photos it depends on the
    activations (a trained generator gains 1-2 dB, docs/benchmarks.md; Laplace noise does not)."""
    from tensorflow.lite.python.convert import mlir_quantize
    from tensorflow.lite.tools import flatbuffer_utils

    inputs = _heavy_tailed(0, 8)
    calibrated, model = _calibrated(tmp_path, inputs)
    ranged = calibration.least_error_ranges(calibrated, inputs)
    widths = [
        [float(t.quantization.max[0] - t.quantization.min[0]) for t in model_.subgraphs[0].tensors
         if t.quantization is not None and t.quantization.min is not None]
        for model_ in map(flatbuffer_utils.convert_bytearray_to_object, (calibrated, ranged))
    ]  # fmt: skip
    assert all(new <= old + 1e-6 for old, new in zip(*widths)) and widths[1] != widths[0]
    own = _error(mlir_quantize(calibrated), model, inputs)
    least = _error(mlir_quantize(ranged), model, inputs)
    assert least < own, (least, own)


def _rounding_error(values, lo, hi, levels=256):
    step = (hi - lo) / (levels - 1)
    return np.mean((np.round((np.clip(values, lo, hi) - lo) / step) * step + lo - values) ** 2)


def test_least_error_range_keeps_a_uniform_tensor_whole_and_trims_a_heavy_tailed_one():
    rng = np.random.default_rng(0)
    uniform = rng.uniform(-1, 1, 100_000)
    assert calibration._least_error_range(uniform, -1.0, 1.0, 256) == (-1.0, 1.0)
    tailed = rng.standard_t(2, 100_000)
    full = (tailed.min(), tailed.max())
    lo, hi = calibration._least_error_range(tailed, *full, 256)
    assert full[0] < lo < 0 < hi < full[1]
    assert _rounding_error(tailed, lo, hi) < _rounding_error(tailed, *full)


def test_least_error_ranges_leave_the_ranges_when_the_activations_would_not_fit(tmp_path, monkeypatch):
    inputs = _heavy_tailed(0, 2)
    calibrated, _ = _calibrated(tmp_path, inputs)
    monkeypatch.setattr(calibration, "MAX_KEPT_BYTES", 1)
    with pytest.warns(UserWarning, match="keeping LiteRT's min/max calibration"):
        assert calibration.least_error_ranges(calibrated, inputs) == calibrated


def _ranges(flatbuffer: bytes) -> dict[str, tuple[float, float]]:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(flatbuffer)
    return {
        t.name.decode(): (float(t.quantization.min[0]), float(t.quantization.max[0]))
        for t in model.subgraphs[0].tensors
        if t.quantization is not None and t.quantization.min is not None and len(t.quantization.min) == 1
    }


def test_saturated_convs_get_minus_one_to_one_and_summed_operands_keep_their_tails(tmp_path):
    """A two-grid norm's conv saturates at [-1, 1] (its fine half's tails are the ReLU's to drop); the
    operands of a batched matmul (exact int32 sums of squares) keep their whole range."""
    from tensorflow.lite.tools import flatbuffer_utils

    from cyclegan_keras.networks.layers import _mean_square

    inputs = _heavy_tailed(1, 4)
    calibrated, _ = _calibrated(tmp_path, inputs)
    before = _ranges(calibrated)
    after = _ranges(calibration.least_error_ranges(calibrated, inputs, saturated=["first"]))
    first = [name for name in after if "/first" in name]
    assert first and all(after[name] == (-1.0, 1.0) for name in first), first
    assert any(before[name] != (-1.0, 1.0) for name in first)
    assert all(after[name] != (-1.0, 1.0) for name in after if "/second" in name)

    keras.utils.set_random_seed(0)
    x = keras.Input((32, 32, 4))  # a known size: the sum of squares is a batched matmul
    y = keras.layers.Conv2D(4, 1, name="summed")(x)
    model = keras.Model(x, y * _mean_square(y) + keras.layers.Conv2D(4, 1, name="other")(x))
    graph = flatbuffer_utils.convert_bytearray_to_object(_converted(tmp_path / "summed", model, inputs))
    names = [t.name.decode() for t in graph.subgraphs[0].tensors]
    full, fixed = calibration._graph_rules(graph, ())
    kept = {names[i] for i in full}
    # the matmul's operands, back through its reshapes and transpose to the conv that makes them
    assert any("/summed" in name for name in kept) and any(name.endswith("transpose") for name in kept)
    assert not any("/other" in name for name in kept) and not fixed


def test_a_saturated_sub_pixel_conv_keeps_its_input_range(tmp_path):
    """Saturation is for a conv's output: a sub-pixel conv pads and slices its input in its own scope,
    and that input (a ReLU's output, up to several units here) keeps its range."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    from cyclegan_keras.deploy.subpixel import SubPixelConv2DTranspose

    keras.utils.set_random_seed(0)
    x = keras.Input((32, 32, 4))
    y = keras.layers.ReLU()(keras.layers.Conv2D(4, 1, name="first")(x))
    # Cropped at the end only: the even phases read the row before, a PAD inside the layer's scope.
    up = SubPixelConv2DTranspose(4, 3, cropping=((0, 1), (0, 1)), name="up")(y)
    inputs = _heavy_tailed(2, 4)
    calibrated = _converted(tmp_path, keras.Model(x, up), inputs)
    model = flatbuffer_utils.convert_bytearray_to_object(calibrated)
    _, fixed = calibration._graph_rules(model, ["up"])
    graph = model.subgraphs[0]
    kinds = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    outputs: dict[str, list[bool]] = {}
    for op in graph.operators:
        kind = kinds[model.operatorCodes[op.opcodeIndex].builtinCode]
        if "/up_" in graph.tensors[op.outputs[0]].name.decode() or kind == "DEPTH_TO_SPACE":
            outputs.setdefault(kind, []).append(int(op.outputs[0]) in fixed)
    # The phase convs, their concatenation and its interleaving (the output); not the pads.
    assert outputs["CONCATENATION"] == outputs["DEPTH_TO_SPACE"] == [True] and all(outputs["CONV_2D"])
    assert outputs["PAD"] and not any(outputs["PAD"])
    after = _ranges(calibration.least_error_ranges(calibrated, inputs, saturated=["up"]))
    padded = [name for name in after if "up" in name and "Pad" in name]
    assert padded and all(after[name][1] > 1.5 for name in padded), {name: after[name] for name in padded}
