"""Exported generators compute what Keras computes; LiteRT files are builtins-only; the edge script
needs no TensorFlow."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from cyclegan_keras import resnet_generator
from cyclegan_keras.cli import main
from cyclegan_keras.data.images import image_files
from cyclegan_keras.deploy.export import export_generator, load_translator
from cyclegan_keras.deploy.formats.tflite import litert_ops
from cyclegan_keras.deploy.verify import ExportVerificationError, Verification, check_verification

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 64


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    keras.utils.set_random_seed(1)
    model = resnet_generator(2, ngf=8, name="generator_ab")
    path = tmp_path_factory.mktemp("gen") / "generator_ab.keras"
    model.save(path)
    return model, str(path)


@pytest.fixture(scope="module")
def photo_dir(photos):
    return str(photos / "testA")


def test_saved_model_loads_without_project_code_and_matches(generator, photo_dir, tmp_path):
    model, path = generator
    out = tmp_path / "sm"
    result = export_generator(path, "saved_model", out, input_size=SIZE, verify_dir=photo_dir, verbose=False)
    assert result.max_abs_error <= 1e-4 and result.within_one_level >= 0.999
    photo = np.asarray(Image.open(image_files(photo_dir)[0]).convert("RGB"))[:45, :61]
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({str(out)!r})\n"
        "x = np.load(sys.argv[1])\n"
        "y = m.signatures['serving_default'](images=tf.constant(x[None]))['images'].numpy()\n"
        "np.save(sys.argv[1], y)\n"
        "assert not any(name.startswith('cyclegan_keras') for name in sys.modules)\n"
    )
    np.save(tmp_path / "x.npy", photo)
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.npy")], check=True, cwd=tmp_path)
    served = np.load(tmp_path / "x.npy")[0]
    assert served.shape == photo.shape and served.dtype == np.uint8  # any size, cropped back
    padded = np.pad(photo, ((0, 3), (0, 3), (0, 0)), mode="reflect").astype("float32") / 127.5 - 1
    expected = (keras.ops.convert_to_numpy(model(padded[None]))[0, :45, :61] + 1) * 127.5
    assert np.mean(np.abs(served - expected) <= 1.0) >= 0.999


@pytest.mark.parametrize(
    ("quantize", "options"),
    [
        (None, {}),
        (None, {"uint8_io": True}),
        ("float16", {}),
        ("dynamic", {}),
        ("int8", {}),
        (None, {"dynamic_size": True}),
    ],
    ids=["float32", "uint8_io", "float16", "dynamic", "int8", "dynamic_size"],
)
def test_litert_variants_are_builtin_only_and_verified(generator, photo_dir, tmp_path, quantize, options):
    _, path = generator
    out = tmp_path / "g.tflite"
    result = export_generator(
        path,
        "tflite",
        out,
        quantize=quantize,
        input_size=SIZE,
        verify_dir=photo_dir,
        calibration_dir=photo_dir,
        verbose=False,
        **options,
    )
    ops = litert_ops(out)
    assert "CONV_2D" in ops and not any(op.startswith("Flex") or op == "CUSTOM" for op in ops)
    # Ops that XNNPACK does not run (in float or int8) would cut the graph and slow it down; a
    # dynamic-size file mirrors its input to a multiple of 4 once, before the network.
    assert "SQUARED_DIFFERENCE" not in ops
    assert ("MIRROR_PAD" in ops) == bool(options.get("dynamic_size"))
    # Sub-pixel convs (cyclegan_keras.deploy.subpixel) in place of TRANSPOSE_CONV; a file of any size keeps
    # its RGB-end convs whole (no known size to take 2x2 blocks of).
    assert "TRANSPOSE_CONV" not in ops and "DEPTH_TO_SPACE" in ops
    assert ("SPACE_TO_DEPTH" in ops) != bool(options.get("dynamic_size"))
    if quantize is None and not options:
        assert xnnpack_partitions(out) == 1
    if quantize is None and not options.get("uint8_io"):
        assert result.max_abs_error <= 1e-4
    if options.get("uint8_io"):
        assert result.within_one_level >= 0.999
    if quantize == "float16":
        assert result.psnr_db >= 45
    if quantize in ("dynamic", "int8"):
        assert 10 < result.psnr_db < 200  # reported; a random-weight net is no quality test
    meta = json.loads((tmp_path / "g.tflite.json").read_text())
    assert meta["direction"] == "a_to_b" and meta["quantization"] == (quantize or "float32")
    assert meta["input"]["shape"] == ([1, -1, -1, 3] if options.get("dynamic_size") else [1, SIZE, SIZE, 3])


def xnnpack_partitions(path) -> int:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=2)
    interpreter.allocate_tensors()
    return sum(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())


def test_verification_bounds_are_enforced():
    ok = Verification("f", "tflite", 1.0, 5e-5, 90.0, None, 1.0, 1.0)
    check_verification(ok, None)
    with pytest.raises(ExportVerificationError, match="max abs error"):
        check_verification(Verification("f", "tflite", 1.0, 2e-4, 90.0, None, 1.0, 1.0), None)
    with pytest.raises(ExportVerificationError, match="within 1 level"):
        check_verification(Verification("f", "tflite", 1.0, 0.1, 40.0, 0.99, 1.0, 1.0), None, uint8_io=True)
    with pytest.raises(ExportVerificationError, match="PSNR"):
        check_verification(Verification("f", "tflite", 1.0, 0.1, 40.0, None, 1.0, 1.0), "float16")


def test_onnx_export_with_dynamic_size(generator, photo_dir, tmp_path):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    model, path = generator
    result = export_generator(
        path, "onnx", tmp_path / "g.onnx", input_size=SIZE, verify_dir=photo_dir, verbose=False
    )
    assert result.max_abs_error <= 1e-4
    translate = load_translator(tmp_path / "g.onnx")
    photo = np.random.default_rng(0).integers(0, 255, (30, 42, 3), dtype=np.uint8)
    assert translate(photo).shape == (30, 42, 3)


def test_standalone_litert_script_imports_no_tensorflow(generator, photo_dir, tmp_path):
    _, path = generator
    model = tmp_path / "g.tflite"
    export_generator(
        path, "tflite", model, input_size=SIZE, verify_dir=photo_dir, dynamic_size=True, verbose=False
    )
    photo = image_files(photo_dir)[0]
    script = (
        "import sys\n"
        f"sys.path.insert(0, {os.path.join(REPO, 'export')!r})\n"
        "import translate_litert\n"
        f"translate_litert.main([{str(model)!r}, {photo!r}, '--out', {str(tmp_path / 'out.png')!r}, "
        "'--threads', '2'])\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported TensorFlow'\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    expected = load_translator(path)(np.asarray(Image.open(photo).convert("RGB")))
    produced = np.asarray(Image.open(tmp_path / "out.png"))
    assert produced.shape == expected.shape
    assert np.mean(np.abs(produced.astype(int) - expected.astype(int)) <= 1) >= 0.999


def test_cli_export_and_translate_with_every_format(generator, photo_dir, tmp_path, capsys):
    _, path = generator
    targets = {"saved_model": tmp_path / "sm", "tflite": tmp_path / "g.tflite"}
    for fmt, out in targets.items():
        assert (
            main(
                [
                    "export",
                    "--model",
                    path,
                    "--format",
                    fmt,
                    "--input-size",
                    str(SIZE),
                    "--verify-dir",
                    photo_dir,
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
    assert "max abs error" in capsys.readouterr().out
    photo = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (50, 38, 3), dtype=np.uint8)).save(photo)
    for fmt, model in targets.items():
        out = tmp_path / f"out_{fmt}"
        assert main(["translate", "--model", str(model), str(photo), "--out", str(out)]) == 0
        assert Image.open(out / "in.png").size == (38, 50)


def test_convert_official_checkpoint(tmp_path):
    pytest.importorskip("torch")
    from tests import torch_reference as ref

    official = ref.randomize(ref.ResnetGenerator(ngf=8, n_blocks=6), seed=0)
    import torch

    torch.save(official.state_dict(), tmp_path / "horse2zebra.pth")
    assert (
        main(["convert", "--pth", str(tmp_path / "horse2zebra.pth"), "--out", str(tmp_path / "g.keras")]) == 0
    )
    converted = keras.models.load_model(tmp_path / "g.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 32, 3)).astype("float32")
    expected = official(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(converted(x), expected, atol=1e-4)


def _unequal_generator(seed: int) -> keras.Model:
    """A random generator whose instance norms see channels 100x apart and off centre (what trained
    ones do): each conv's odd output channels scaled up, every third shifted. The norms undo both, so
    its float outputs are unchanged."""
    keras.utils.set_random_seed(seed)
    model = resnet_generator(1, ngf=8, name="generator_ab")
    for layer in model.layers:
        if (
            isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))
            and layer.name != "conv_out"
        ):
            kernel, bias = layer.get_weights()
            channel = np.arange(bias.shape[0])
            factor = np.where(channel % 2, 100.0, 1.0).astype("float32")
            offset = np.where(channel % 3, 0.0, 20.0).astype("float32")
            shape = [1, 1, -1, 1] if isinstance(layer, keras.layers.Conv2DTranspose) else [1, 1, 1, -1]
            layer.set_weights([kernel * factor.reshape(shape), (bias + offset) * factor])
    return model


@pytest.mark.parametrize("target", ["range", "spread"])
def test_equalize_channels_keeps_the_outputs_and_brings_norm_inputs_to_one_scale(photo_dir, target):
    from cyclegan_keras.deploy.quantization import equalize_channels
    from cyclegan_keras.deploy.verify import verification_photos
    from cyclegan_keras.networks.layers import InstanceNormalization

    model = _unequal_generator(3)
    photos = verification_photos(photo_dir, SIZE)
    even = equalize_channels(model, photos, target)
    x = np.stack(photos).astype("float32") / 127.5 - 1
    np.testing.assert_allclose(even(x), model(x), atol=1e-4)
    norms = [layer for layer in even.layers if isinstance(layer, InstanceNormalization)]
    for inputs in keras.Model(even.input, [n.input for n in norms]).predict(x, verbose=0):
        inputs = np.asarray(inputs)
        if target == "range":  # every channel spans the calibration photos' [-1, 1]: one int8 grid
            np.testing.assert_allclose(inputs.min(axis=(0, 1, 2)), -1.0, atol=1e-3)
            np.testing.assert_allclose(inputs.max(axis=(0, 1, 2)), 1.0, atol=1e-3)
        else:
            np.testing.assert_allclose(np.median(inputs.std(axis=(1, 2)), axis=0), 1.0, rtol=0.05)
    with pytest.raises(ValueError, match="target must be one of range, spread"):
        equalize_channels(model, photos, "max")


def test_split_norms_keep_the_outputs_rectify_only_before_a_relu_and_save(photo_dir, tmp_path, monkeypatch):
    import cyclegan_keras.deploy.quantization as quantization
    from cyclegan_keras.deploy.verify import verification_photos
    from cyclegan_keras.networks.layers import SignSplitInstanceNormalization

    monkeypatch.setattr(quantization, "HEAVY", -1.0)  # every norm counts as heavy-tailed
    monkeypatch.setattr(quantization, "TWO_GRID", 1.0)  # and none as heavy enough for two grids
    model = _unequal_generator(5)
    photos = verification_photos(photo_dir, SIZE)
    split = quantization.split_norms(model, photos)
    x = np.stack(photos).astype("float32") / 127.5 - 1
    np.testing.assert_allclose(split(x), model(x), atol=1e-4)
    norms = {layer.name: layer for layer in split.layers if isinstance(layer, SignSplitInstanceNormalization)}
    # ResNet blocks' second norms go to the residual sum (signed); every other norm goes to a ReLU.
    assert len(norms) == 7 and {name for name, norm in norms.items() if not norm.rectified} == {
        "res_0_norm_2"
    }
    for name in ("res_0_norm_1", "res_0_norm_2"):  # the layer itself, rectified or not, in float
        inputs = keras.Model(split.input, split.get_layer(name).input)(x)
        reference = model.get_layer(name)(inputs)
        np.testing.assert_allclose(
            norms[name](inputs), keras.ops.relu(reference) if norms[name].rectified else reference, atol=1e-4
        )
    split.save(tmp_path / "split.keras")
    loaded = keras.saving.load_model(tmp_path / "split.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), split(x), atol=1e-6)


def test_two_grid_norms_keep_the_outputs_take_a_doubled_conv_and_save(photo_dir, tmp_path, monkeypatch):
    import cyclegan_keras.deploy.quantization as quantization
    from cyclegan_keras.deploy.verify import verification_photos
    from cyclegan_keras.networks.layers import InstanceNormalization, TwoGridInstanceNormalization

    monkeypatch.setattr(quantization, "HEAVY", -1.0)  # every norm counts as heavy-tailed,
    monkeypatch.setattr(quantization, "TWO_GRID", -1.0)  # enough for two grids where the form allows
    model = _unequal_generator(6)
    photos = verification_photos(photo_dir, SIZE)
    split = quantization.split_norms(quantization.equalize_channels(model, photos), photos)
    x = np.stack(photos).astype("float32") / 127.5 - 1
    held_out = np.random.default_rng(0).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(split(x), model(x), atol=1e-4)
    np.testing.assert_allclose(split(held_out), model(held_out), atol=1e-4)  # no clip in float
    two_grid = [layer.name for layer in split.layers if isinstance(layer, TwoGridInstanceNormalization)]
    # Every norm a conv feeds and a ReLU alone takes; the residual sum's norm keeps the sign split.
    assert two_grid == ["norm_in", "norm_down_1", "norm_down_2", "res_0_norm_1", "norm_up_1", "norm_up_2"]
    assert not split.get_layer("res_0_norm_2").rectified
    convs = quantization.two_grid_convs(split)
    assert convs == ["conv_in", "down_1", "down_2", "res_0_conv_1", "up_1", "up_2"]
    for conv in convs:  # each channel twice: the coarse half within the calibration's [-1, 1]
        assert split.get_layer(conv).filters == 2 * model.get_layer(conv).filters
    halves = np.asarray(keras.Model(split.input, split.get_layer("norm_up_2").input)(x))
    coarse = halves[..., : halves.shape[-1] // 2]
    assert coarse.min() >= -1 - 1e-4 and coarse.max() <= 1 + 1e-4 and max(-coarse.min(), coarse.max()) > 0.99
    assert all(layer.single_mean for layer in split.layers if isinstance(layer, InstanceNormalization))
    unsized = quantization.split_norms(model, photos, two_grids=False)  # for files of any size
    assert not any(isinstance(layer, TwoGridInstanceNormalization) for layer in unsized.layers)
    split.save(tmp_path / "two_grid.keras")
    loaded = keras.saving.load_model(tmp_path / "two_grid.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(x), split(x), atol=1e-6)


def _dotted_photos(folder, seed: int, count: int = 4) -> str:
    """Flat grey photos with a few white dots: the first norm's input is then heavy-tailed (flat
    everywhere but around the dots), as a trained generator's last norm is on real photos."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder)
    for i in range(count):
        pixels = (120 + rng.integers(0, 3, (SIZE, SIZE, 3))).astype(np.uint8)
        for y, x in rng.integers(4, SIZE - 4, (6, 2)):
            pixels[y, x] = 255
        Image.fromarray(pixels).save(os.path.join(folder, f"{i}.png"))
    return str(folder)


def test_int8_gives_heavy_tailed_norms_two_grids_and_gains(tmp_path, monkeypatch):
    import cyclegan_keras.deploy.formats.tflite as tflite
    import cyclegan_keras.deploy.quantization as quantization
    from cyclegan_keras.deploy.verify import verification_photos

    path = tmp_path / "g.keras"
    model = _unequal_generator(4)
    # The dots then drive every first-conv channel down: a long tail below the mean, the bulk just
    # above it, as in a trained generator's last up-sampling norm (which the ReLU after it keeps).
    kernel, bias = model.get_layer("conv_in").get_weights()
    model.get_layer("conv_in").set_weights([-np.abs(kernel), bias])
    model.save(path)
    dots = _dotted_photos(tmp_path / "dots", 0)
    photos = verification_photos(dots, SIZE)
    split = quantization.split_norms(quantization.equalize_channels(model, photos), photos)
    assert isinstance(split.get_layer("norm_in"), quantization.TwoGridInstanceNormalization)
    assert type(split.get_layer("res_0_norm_1")) is quantization.InstanceNormalization
    # the dots' tails reach the first norm, not the residual blocks
    options = {"input_size": SIZE, "calibration_dir": dots, "verbose": False}
    options["verify_dir"] = _dotted_photos(tmp_path / "held_out", 1)
    two_grids = export_generator(path, "tflite", tmp_path / "two.tflite", quantize="int8", **options)
    monkeypatch.setattr(quantization, "TWO_GRID", 1.0)
    sign_split = export_generator(path, "tflite", tmp_path / "split.tflite", quantize="int8", **options)
    monkeypatch.setattr(tflite, "split_norms", lambda generator, photos, **_: generator)
    without = export_generator(path, "tflite", tmp_path / "plain.tflite", quantize="int8", **options)
    assert sign_split.psnr_db > without.psnr_db + 0.5, (sign_split.psnr_db, without.psnr_db)
    assert two_grids.psnr_db > sign_split.psnr_db + 0.5, (two_grids.psnr_db, sign_split.psnr_db)


def test_int8_two_grid_file_is_integer_and_runs_in_the_edge_script(tmp_path):
    """The NPU file with a two-grid norm: integer from end to end (its sums of squares are int8 batched
    matmuls) and translated by the standalone LiteRT script."""
    from ai_edge_litert.interpreter import Interpreter

    path = tmp_path / "g.keras"
    model = _unequal_generator(4)
    kernel, bias = model.get_layer("conv_in").get_weights()
    model.get_layer("conv_in").set_weights([-np.abs(kernel), bias])  # tails below the mean, as above
    model.save(path)
    dots = _dotted_photos(tmp_path / "dots", 0)
    out = tmp_path / "npu.tflite"
    result = export_generator(path, "tflite", out, quantize="int8", uint8_io=True, input_size=SIZE,
                              calibration_dir=dots, verify_dir=dots, verbose=False)  # fmt: skip
    assert result.psnr_db >= 30, result.psnr_db
    kinds = {np.dtype(t["dtype"]).name for t in Interpreter(model_path=str(out)).get_tensor_details()}
    assert "float32" not in kinds and "BATCH_MATMUL" in litert_ops(out)
    photo = image_files(dots)[0]
    script = (
        "import sys\n"
        f"sys.path.insert(0, {os.path.join(REPO, 'export')!r})\n"
        "import translate_litert\n"
        f"translate_litert.main([{str(out)!r}, {photo!r}, '--out', {str(tmp_path / 'out.png')!r}])\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    produced = np.asarray(Image.open(tmp_path / "out.png")).astype(int)
    expected = load_translator(path)(np.asarray(Image.open(photo).convert("RGB"))).astype(int)
    assert produced.shape == expected.shape and np.mean(np.abs(produced - expected)) < 4


def test_int8_files_gain_from_even_channels_and_int16x8_keeps_the_look(photo_dir, tmp_path, monkeypatch):
    """On norm inputs whose channels are 100x apart, equal channel scales are what make int8 usable (and
    int16x8: 19 dB without them); int16x8 then meets its 40 dB floor."""
    import cyclegan_keras.deploy.formats.tflite as tflite
    import cyclegan_keras.deploy.verify as verify

    path = tmp_path / "g.keras"
    _unequal_generator(4).save(path)
    options = {"input_size": SIZE, "verify_dir": photo_dir, "calibration_dir": photo_dir, "verbose": False}
    even = export_generator(path, "tflite", tmp_path / "even.tflite", quantize="int8", **options)
    deep = export_generator(path, "tflite", tmp_path / "deep.tflite", quantize="int16x8", **options)
    monkeypatch.setattr(tflite, "equalize_channels", lambda generator, photos, target: generator)
    monkeypatch.setattr(verify, "INTEGER_MIN_PSNR", {"int8": 0.0, "int16x8": 0.0})
    uneven = export_generator(path, "tflite", tmp_path / "uneven.tflite", quantize="int8", **options)
    assert even.psnr_db > uneven.psnr_db + 6, (even.psnr_db, uneven.psnr_db)
    assert deep.psnr_db >= 40
    ops = litert_ops(tmp_path / "deep.tflite")
    assert "CONV_2D" in ops and not any(op.startswith("Flex") or op == "CUSTOM" for op in ops)


def test_int8_with_uint8_io_is_integer_from_end_to_end(generator, photo_dir, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    _, path = generator
    out = tmp_path / "npu.tflite"
    result = export_generator(path, "tflite", out, quantize="int8", uint8_io=True, input_size=SIZE,
                              verify_dir=photo_dir, calibration_dir=photo_dir, verbose=False)  # fmt: skip
    interpreter = Interpreter(model_path=str(out))
    kinds = {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
    assert "float32" not in kinds and "uint8" in kinds
    ops = litert_ops(out)
    assert "QUANTIZE" not in ops or all(k in ("int8", "uint8", "int32") for k in kinds)
    meta = json.loads((tmp_path / "npu.tflite.json").read_text())
    scale, zero = meta["input"]["quantization"]["scale"], meta["input"]["quantization"]["zero_point"]
    assert scale == pytest.approx(2 / 255, rel=0.01) and abs(zero - 127.5) <= 1
    assert (
        result.within_one_level is not None and result.psnr_db >= 22
    )  # its floor; levels map back to pixels
    translated = load_translator(str(out))(np.asarray(Image.open(image_files(photo_dir)[0]).convert("RGB")))
    assert translated.dtype == np.uint8 and translated.ndim == 3


def test_int8_with_uint8_io_and_dynamic_size_translates_other_sizes(generator, photo_dir, tmp_path):
    """The least-error pass resizes the calibrated model's dynamic input: the file still calibrates,
    verifies above its floor and translates a photo of another, non-square size."""
    _, path = generator
    out = tmp_path / "any.tflite"
    result = export_generator(path, "tflite", out, quantize="int8", uint8_io=True, dynamic_size=True,
                              input_size=SIZE, verify_dir=photo_dir, calibration_dir=photo_dir,
                              verbose=False)  # fmt: skip
    assert result.psnr_db >= 22
    photo = np.asarray(Image.open(image_files(photo_dir)[0]).convert("RGB"))[:52, :76]
    translated = load_translator(str(out))(photo)
    assert translated.shape == photo.shape and translated.dtype == np.uint8


def test_int16x8_refuses_uint8_ends_and_the_web(generator, tmp_path):
    _, path = generator
    with pytest.raises(ValueError, match="no 8-bit input or output"):
        export_generator(
            path, "tflite", tmp_path / "x.tflite", quantize="int16x8", uint8_io=True, verbose=False
        )
    with pytest.raises(ValueError, match="int16x8 is not for --format web: it takes float16, dynamic, int8"):
        export_generator(path, "web", tmp_path / "site", quantize="int16x8", verbose=False)
    assert not os.listdir(tmp_path)


def test_integer_files_are_held_to_psnr_floors():
    low = Verification("f", "tflite int8", 1.0, 0.5, 21.0, 0.2, 1.0, 1.0)
    with pytest.raises(ExportVerificationError, match="PSNR 21.0 dB < 22.0 dB"):
        check_verification(low, "int8", uint8_io=True)
    check_verification(Verification("f", "tflite int8", 1.0, 0.5, 27.0, 0.2, 1.0, 1.0), "int8", uint8_io=True)
    with pytest.raises(ExportVerificationError, match="< 40.0 dB"):
        check_verification(Verification("f", "tflite int16x8", 1.0, 0.1, 39.0, None, 1.0, 1.0), "int16x8")
