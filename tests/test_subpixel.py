"""Sub-pixel convs: the same function as the Keras layers they replace, and no TRANSPOSE_CONV in int8
files."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_keras import resnet_generator
from cyclegan_keras.deploy.subpixel import SpaceToDepthConv2D, SubPixelConv2DTranspose, subpixel_convs


def _same_weights(replacement, original, shape):
    """Builds both layers on ``shape`` with the same non-trivial weights."""
    original.build(shape)
    replacement.build(shape)
    weights = [w + np.random.default_rng(1).normal(0, 0.1, w.shape) for w in original.get_weights()]
    original.set_weights(weights)
    replacement.set_weights(weights)


@pytest.mark.parametrize(
    ("kernel", "cropping"),
    [
        (3, ((1, 0), (1, 0))),  # the ResNet generator's up-sampling: 2n out
        (4, ((1, 1), (1, 1))),  # the U-Net's
        (5, ((2, 1), (0, 1))),  # uneven crops, another kernel
        (3, ((0, 0), (0, 0))),  # odd output (2n + 1): the transposed conv itself
    ],
)
def test_subpixel_transposed_conv_equals_keras_conv_transpose_and_crop(kernel, cropping):
    x = np.random.default_rng(0).normal(size=(2, 5, 6, 3)).astype("float32")
    original = keras.layers.Conv2DTranspose(4, kernel, strides=2)
    layer = SubPixelConv2DTranspose(4, kernel, cropping=cropping)
    _same_weights(layer, original, x.shape)
    (top, bottom), (left, right) = cropping
    expected = np.asarray(original(x))[:, top : -bottom or None, left : -right or None]
    got = np.asarray(layer(x))
    assert got.shape == expected.shape == layer.compute_output_shape(x.shape)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(("kernel", "height"), [(7, 10), (3, 8), (5, 12), (7, 9)])  # 9: odd, plain conv
def test_space_to_depth_conv_equals_keras_conv(kernel, height):
    x = np.random.default_rng(0).normal(size=(2, height, 12, 3)).astype("float32")
    original = keras.layers.Conv2D(5, kernel, activation="tanh")
    layer = SpaceToDepthConv2D(5, kernel, activation="tanh")
    _same_weights(layer, original, x.shape)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(original(x)), atol=1e-5)


def test_layers_refuse_what_they_cannot_compute():
    with pytest.raises(ValueError, match="odd kernel"):
        SpaceToDepthConv2D(4, 4)
    with pytest.raises(ValueError, match="strides 2"):
        SubPixelConv2DTranspose(4, 3, padding="same")
    with pytest.raises(ValueError, match="kernels of 2 or more"):
        SubPixelConv2DTranspose(4, 1)  # one of the two phases would have no taps


def test_subpixel_convs_keep_the_generator_and_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = resnet_generator(n_blocks=1, ngf=4)
    rewritten = subpixel_convs(model)
    kinds = {layer.name: type(layer) for layer in rewritten.layers}
    assert kinds["up_1"] is kinds["up_2"] is SubPixelConv2DTranspose
    assert kinds["crop_up_1"] is keras.layers.Identity  # taken in by the conv before it
    assert rewritten.get_layer("up_2").cropping == ((1, 0), (1, 0))
    # The RGB ends are thin; the 4-16 channel convs between them are not rewritten.
    assert kinds["conv_in"] is kinds["conv_out"] is SpaceToDepthConv2D
    assert kinds["res_0_conv_1"] is keras.layers.Conv2D and kinds["down_1"] is keras.layers.Conv2D
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 36, 3)).astype("float32")
    np.testing.assert_allclose(rewritten(x), model(x), atol=1e-5)
    rewritten.save(tmp_path / "subpixel.keras")
    loaded = keras.saving.load_model(tmp_path / "subpixel.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-5)
    assert subpixel_convs(keras.Sequential([keras.Input((8, 8, 3)), keras.layers.ReLU()])).layers


def test_int8_litert_file_has_no_transposed_convs_and_keeps_the_output(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    keras.utils.set_random_seed(0)
    model = resnet_generator(n_blocks=1, ngf=8)
    rewritten = subpixel_convs(model)
    rewritten.name = "phased"
    rng = np.random.default_rng(0)
    photos = [rng.uniform(-1, 1, (1, 32, 32, 3)).astype("float32") for _ in range(4)]

    def int8_file(generator) -> Interpreter:
        archive = keras.export.ExportArchive()
        archive.track(generator)
        spec = [tf.TensorSpec([1, 32, 32, 3], tf.float32)]
        archive.add_endpoint("serve", lambda images: generator(images), input_signature=spec)
        archive.write_out(str(tmp_path / generator.name), verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / generator.name))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([x] for x in photos)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        interpreter = Interpreter(model_content=converter.convert())
        interpreter.allocate_tensors()
        return interpreter

    def run(interpreter, x):
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    plain, phased = int8_file(model), int8_file(rewritten)
    ops = {op["op_name"] for op in phased._get_ops_details()}
    assert "TRANSPOSE_CONV" not in ops and {"DEPTH_TO_SPACE", "SPACE_TO_DEPTH"} <= ops
    assert "TRANSPOSE_CONV" in {op["op_name"] for op in plain._get_ops_details()}
    # The same arithmetic on the same 8-bit grids: the two files' errors against Keras match.
    for x in photos[:2]:
        expected = np.asarray(model(x))
        plain_error = np.sqrt(np.mean((run(plain, x) - expected) ** 2))
        phased_error = np.sqrt(np.mean((run(phased, x) - expected) ** 2))
        assert phased_error < 1.2 * plain_error + 1e-3, (phased_error, plain_error)
