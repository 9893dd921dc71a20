"""The official training options (--norm, --netD, --init_type, dropout, --lr_policy, --direction,
--serial_batches, --max_dataset_size, --input_nc/--output_nc) against the official code's behaviour."""

import dataclasses
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

import keras  # noqa: E402

from cyclegan_keras import (  # noqa: E402  # noqa: E402
    Style,
    discriminator,
    load_official_generator,
    load_official_weights,
    patchgan_discriminator,
    pixel_discriminator,
    resnet_generator,
    unet_generator,
)
from cyclegan_keras.cli import main  # noqa: E402
from cyclegan_keras.data.python import UnpairedImages  # noqa: E402
from cyclegan_keras.errors import UsageError  # noqa: E402
from cyclegan_keras.training.config import TrainConfig, config_from_json, official_options_table  # noqa: E402
from cyclegan_keras.training.schedule import LearningRatePolicy  # noqa: E402
from tests import torch_reference as ref  # noqa: E402
from tests.conftest import photo_subset  # noqa: E402

README = os.path.join(os.path.dirname(os.path.dirname(__file__)), "README.md")


def _images(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


NETWORKS = {
    "resnet_batch": (
        lambda: ref.ResnetGenerator(8, 2, norm="batch"),
        lambda: resnet_generator(2, ngf=8, style=Style("batch")),
        (2, 32, 28, 3),
    ),
    "resnet_none": (
        lambda: ref.ResnetGenerator(8, 2, norm="none"),
        lambda: resnet_generator(2, ngf=8, style=Style("none")),
        (2, 32, 28, 3),
    ),
    "resnet_dropout_1_to_3": (
        lambda: ref.ResnetGenerator(8, 2, dropout=True, input_nc=1),
        lambda: resnet_generator(2, ngf=8, input_channels=1, use_dropout=True),
        (2, 32, 28, 1),
    ),
    "resnet_3_to_1": (
        lambda: ref.ResnetGenerator(8, 1, output_nc=1),
        lambda: resnet_generator(1, ngf=8, output_channels=1),
        (1, 24, 24, 3),
    ),
    "unet_batch_dropout": (
        lambda: ref.UnetGenerator(6, 4, norm="batch", dropout=True),
        lambda: unet_generator(6, ngf=4, use_dropout=True, style=Style("batch")),
        (2, 64, 64, 3),
    ),
    "unet_none_1_to_1": (
        lambda: ref.UnetGenerator(5, 4, norm="none", input_nc=1, output_nc=1),
        lambda: unet_generator(5, ngf=4, input_channels=1, output_channels=1, style=Style("none")),
        (2, 32, 32, 1),
    ),
    "n_layers_2_batch": (
        lambda: ref.NLayerDiscriminator(8, n_layers=2, norm="batch"),
        lambda: discriminator("n_layers", 8, n_layers=2, style=Style("batch")),
        (2, 32, 32, 3),
    ),
    "n_layers_4_none_1ch": (
        lambda: ref.NLayerDiscriminator(4, n_layers=4, norm="none", input_nc=1),
        lambda: patchgan_discriminator(4, ndf=4, input_channels=1, style=Style("none")),
        (1, 64, 64, 1),
    ),
    "pixel_instance": (
        lambda: ref.PixelDiscriminator(8),
        lambda: discriminator("pixel", 8),
        (2, 16, 12, 3),
    ),
    "pixel_batch": (
        lambda: ref.PixelDiscriminator(8, norm="batch"),
        lambda: pixel_discriminator(8, style=Style("batch")),
        (2, 16, 12, 3),
    ),
}


@pytest.mark.parametrize("name", NETWORKS)
def test_forward_parity_of_the_variants(name):
    """Evaluation mode (batch norm's running statistics, dropout off) and, for batch norm, training mode
    (the batch's statistics) give the official outputs."""
    torch_net, keras_net, shape = NETWORKS[name]
    reference = ref.randomize(torch_net(), seed=7)
    model = load_official_weights(keras_net(), ref.numpy_state(reference))
    x = _images(shape)
    expected = ref.nhwc(reference.eval()(ref.nchw(x)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), expected, atol=1e-4)
    if "batch" in name and "dropout" not in name:
        trained = ref.nhwc(reference.train()(ref.nchw(x)))
        assert np.abs(trained - expected).max() > 1e-3  # the two modes differ, so both are checked
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=True)), trained, atol=1e-4)


def test_official_biases_follow_the_norm():
    """The official ``use_bias`` rule: convs before a norm keep a bias with instance norm only."""
    for norm in ("instance", "batch", "none"):
        reference = ref.ResnetGenerator(8, 1, norm=norm)
        model = resnet_generator(1, ngf=8, style=Style(norm))
        assert model.count_params() == sum(p.numel() for p in reference.parameters()) + sum(
            b.numel() for b in reference.buffers() if b.dtype.is_floating_point
        )


@pytest.mark.parametrize(
    ("torch_net", "norm", "dropout", "channels"),
    [
        (lambda: ref.ResnetGenerator(8, 3, norm="batch", dropout=True, input_nc=1), "batch", True, (1, 3)),
        (lambda: ref.ResnetGenerator(8, 2, norm="none", output_nc=1), "none", False, (3, 1)),
        (lambda: ref.UnetGenerator(5, 4, norm="batch", input_nc=1, output_nc=1), "batch", False, (1, 1)),
    ],
    ids=["resnet_batch_dropout_gray_in", "resnet_none_gray_out", "unet_batch_gray"],
)
def test_load_official_generator_reads_the_variant_from_the_checkpoint(
    tmp_path, torch_net, norm, dropout, channels
):
    reference = ref.randomize(torch_net(), seed=8).eval()
    torch.save(reference.state_dict(), tmp_path / "g.pth")
    model = load_official_generator(tmp_path / "g.pth")
    names = {layer.name for layer in model.layers}
    kinds = {type(layer).__name__ for layer in model.layers}
    assert ("BatchNormalization" in kinds) == (norm == "batch")
    assert ("InstanceNormalization" in kinds) is False
    assert any(n.endswith("_dropout") for n in names) == dropout
    assert (model.inputs[0].shape[-1], model.outputs[0].shape[-1]) == channels
    x = _images((1, 32, 32, channels[0]), seed=9)
    np.testing.assert_allclose(model(x), ref.nhwc(reference(ref.nchw(x))), atol=1e-4)


def _torch_init(weight, init_type, gain):
    init = torch.nn.init
    if init_type == "normal":
        init.normal_(weight, 0.0, gain)
    elif init_type == "xavier":
        init.xavier_normal_(weight, gain=gain)
    elif init_type == "kaiming":
        init.kaiming_normal_(weight, a=0, mode="fan_in")
    else:
        init.orthogonal_(weight, gain=gain)
    return weight.detach().numpy()


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "conv_transpose"])
def test_initialisations_match_pytorch(init_type, transposed):
    """Kernels start with the official distributions: mean, standard deviation (within 4%), and for
    ``orthogonal`` orthonormal rows of PyTorch's flattened kernel, for convs and transposed convs."""
    gain = 0.7
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    style = Style(init_type=init_type, init_gain=gain)
    layer = style.conv_transpose(48, 3, "t") if transposed else style.conv(48, 3, 1, "c")
    layer.build((None, 8, 8, 32))
    kernel = keras.ops.convert_to_numpy(layer.kernel)  # conv (kh, kw, in, out); transposed (kh, kw, out, in)
    shape = (32, 48, 3, 3) if transposed else (48, 32, 3, 3)  # PyTorch's (in, out, ...) and (out, in, ...)
    official = _torch_init(torch.empty(shape), init_type, gain)
    assert abs(kernel.mean()) < 0.05 * official.std()
    assert kernel.std() == pytest.approx(official.std(), rel=0.04)
    if init_type == "orthogonal":
        # PyTorch's rows: dim 0 of its layout, which is Keras' last axis for both kinds of conv.
        rows = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1)
        np.testing.assert_allclose(rows @ rows.T, gain**2 * np.eye(rows.shape[0]), atol=1e-5)
        flat = official.reshape(official.shape[0], -1)
        np.testing.assert_allclose(flat @ flat.T, gain**2 * np.eye(flat.shape[0]), atol=1e-5)
    assert not np.any(keras.ops.convert_to_numpy(layer.bias))


def test_batch_norm_scales_start_near_one():
    model = resnet_generator(1, ngf=64, style=Style("batch", init_gain=0.1))
    gammas = np.concatenate(
        [keras.ops.convert_to_numpy(layer.gamma) for layer in model.layers if hasattr(layer, "gamma")]
    )
    assert gammas.mean() == pytest.approx(1.0, abs=0.02)
    assert gammas.std() == pytest.approx(0.1, rel=0.1)


def _torch_rates(policy, epochs, n_epochs, n_epochs_decay, lr, lr_decay_iters):
    """The official scheduler's rate for each epoch, stepped at each epoch's end as ``train.py`` does."""
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    schedulers = torch.optim.lr_scheduler
    if policy == "linear":
        scheduler = schedulers.LambdaLR(
            optimizer, lambda e: 1.0 - max(0, e + 1 - n_epochs) / float(n_epochs_decay + 1)
        )
    elif policy == "step":
        scheduler = schedulers.StepLR(optimizer, step_size=lr_decay_iters, gamma=0.1)
    elif policy == "plateau":
        scheduler = schedulers.ReduceLROnPlateau(
            optimizer, mode="min", factor=0.2, threshold=0.01, patience=5
        )
    else:
        scheduler = schedulers.CosineAnnealingLR(optimizer, T_max=n_epochs, eta_min=0)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # the epoch's training (no gradients here), then the scheduler, in PyTorch's order
        scheduler.step(0) if policy == "plateau" else scheduler.step()
    return rates


@pytest.mark.parametrize("policy", ["linear", "step", "plateau", "cosine"])
def test_learning_rate_policies_match_pytorch_schedulers(policy):
    n_epochs, n_epochs_decay, lr = 30, 20, 2e-4
    iters = 7 if policy == "step" else None
    schedule = LearningRatePolicy(policy, n_epochs, n_epochs_decay, lr, iters)
    expected = _torch_rates(policy, n_epochs + n_epochs_decay, n_epochs, n_epochs_decay, lr, iters)
    mine = [schedule.learning_rate_at(epoch) for epoch in range(1, n_epochs + n_epochs_decay + 1)]
    np.testing.assert_allclose(mine, expected, rtol=1e-6, atol=1e-15)
    assert len(set(np.round(np.array(expected) / lr, 9))) > 2  # the policy changes the rate in this span


def test_the_step_policy_defaults_to_50_epochs():
    schedule = LearningRatePolicy("step", 100, 100, 1.0)
    assert [schedule.learning_rate_at(e) for e in (1, 50, 51, 101)] == pytest.approx([1, 1, 0.1, 0.01])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--netd", "n_layers"], "--netd n_layers needs its number of layers"),
        (["--netd", "pixel", "--n-layers-d", "2"], "--netd pixel has no stride-2 layers"),
        (["--lr-decay-iters", "10"], "applies to --lr-policy step only"),
        (["--input-nc", "1"], "identity loss needs as many channels"),
        (["--norm", "layer"], "invalid choice"),
        (["--input-nc", "2"], "invalid choice"),
    ],
)
def test_combinations_that_cannot_work_are_one_line_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", str(tmp_path), "--out", str(out), *argv])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert message in error
    assert "Traceback" not in error
    assert not out.exists()


def test_n_layers_d_alone_keeps_meaning_the_depth():
    with pytest.warns(UserWarning, match="training --netd n_layers"):
        config = TrainConfig(n_layers_d=4)
    assert (config.netd, config.discriminator_layers) == ("n_layers", 4)
    assert TrainConfig().discriminator_layers == 3
    # A config.json of a version before --netd, with another depth.
    saved = dataclasses.asdict(TrainConfig())
    del saved["netd"]
    saved["n_layers_d"] = 2
    assert config_from_json(saved).netd == "n_layers"


def _colour_images(folder, count, offset):
    folder.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (8, 8), (offset + 10 * i, 0, 0)).save(folder / f"{i:02d}.png")


def test_serial_batches_take_a_and_b_in_order(tmp_path):
    from cyclegan_keras.data.preprocessing import Preprocessing
    from cyclegan_keras.data.tf_data import train_dataset

    _colour_images(tmp_path / "a", 3, 0)
    _colour_images(tmp_path / "b", 5, 100)
    preprocessing = Preprocessing("none", flip=False)

    def reds(batches):
        return [[int(round((x[0, 0, 0, 0] + 1) * 127.5)) for x in pair] for pair in batches]

    expected = [[10 * (i % 3), 100 + 10 * i] for i in range(5)]  # an official epoch: max(3, 5)
    python = UnpairedImages(
        tmp_path / "a", tmp_path / "b", preprocessing=preprocessing, serial=True, steps_per_epoch=5
    )
    assert reds(python[i] for i in range(5)) == expected
    data = train_dataset(
        tmp_path / "a", tmp_path / "b", preprocessing=preprocessing, serial=True, steps_per_epoch=5
    )
    assert reds(data.dataset.take(5).as_numpy_iterator()) == expected
    shuffled = UnpairedImages(tmp_path / "a", tmp_path / "b", preprocessing=preprocessing, steps_per_epoch=5)
    assert reds(shuffled[i] for i in range(5)) != expected


def test_direction_and_max_dataset_size_choose_the_images(tmp_path):
    from cyclegan_keras.training.loop import _domains

    for split, count in (("trainA", 4), ("trainB", 6), ("testA", 2), ("testB", 3)):
        _colour_images(tmp_path / split, count, 0)
    config = TrainConfig(data_dir=str(tmp_path), direction="BtoA", max_dataset_size=5)
    splits = _domains(config)
    assert [os.path.basename(os.path.dirname(p)) for p in splits["trainA"]] == ["trainB"] * 5
    assert [os.path.basename(p) for p in splits["trainA"]] == [f"{i:02d}.png" for i in range(5)]
    assert len(splits["trainB"]) == 4 and "trainA" in splits["trainB"][0]
    assert len(splits["testA"]) == 3 and "testB" in splits["testA"][0]


def test_a_run_with_official_variants_trains_saves_and_resumes(tmp_path, capsys):
    for split in ("trainA", "trainB"):
        _colour_images(tmp_path / "data" / split, 2, 50)
    out = tmp_path / "run"
    argv = ["train", "--data-dir", str(tmp_path / "data"), "--out", str(out), "--generator", "resnet_6blocks",
            "--ngf", "4", "--ndf", "4", "--load-size", "16", "--crop-size", "16", "--epochs", "1",
            "--epochs-decay", "1", "--steps-per-epoch", "1", "--verbose", "0", "--norm", "batch", "--netd",
            "pixel", "--init-type", "orthogonal", "--dropout", "--lr-policy", "step", "--lr-decay-iters", "1",
            "--direction", "BtoA", "--serial-batches", "--max-dataset-size", "1", "--input-nc", "1",
            "--output-nc", "1", "--input-pipeline", "python"]  # fmt: skip
    assert main(argv) == 0
    saved = json.loads((out / "config.json").read_text())
    assert {k: saved[k] for k in ("norm", "netd", "init_type", "dropout", "lr_policy", "lr_decay_iters")} == {
        "norm": "batch", "netd": "pixel", "init_type": "orthogonal", "dropout": True, "lr_policy": "step",
        "lr_decay_iters": 1,
    }  # fmt: skip
    assert (saved["direction"], saved["serial_batches"], saved["max_dataset_size"]) == ("BtoA", True, 1)
    generator = keras.saving.load_model(out / "generator_ab.keras", safe_mode=True)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in generator.layers)
    assert any(isinstance(layer, keras.layers.Dropout) for layer in generator.layers)
    assert (generator.inputs[0].shape[-1], generator.outputs[0].shape[-1]) == (1, 1)
    grid = np.asarray(Image.open(next((out / "samples").glob("*.png"))))
    assert grid.shape[-1] == 3 and np.array_equal(grid[..., 0], grid[..., 2])  # gray shown as RGB
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 22, 3), dtype=np.uint8)).save(photo)
    assert main(["translate", "--model", str(out / "generator_ab.keras"), str(photo), "--out",
                 str(tmp_path / "t.png")]) == 0  # fmt: skip
    translated = Image.open(tmp_path / "t.png")
    assert (translated.mode, translated.size) == ("L", (22, 30))  # a grayscale photo of the same size
    history = (out / "history.csv").read_text().splitlines()
    rates = [float(row.split(",")[history[0].split(",").index("learning_rate")]) for row in history[1:]]
    assert rates == pytest.approx([2e-4, 2e-5])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--out", str(out), "--resume", "--norm", "instance", "--epochs", "2"])
    assert exit_info.value.code == 2
    assert re.search(r"its own --norm batch", capsys.readouterr().err)


def test_readme_table_of_official_options_is_generated_from_trainconfig():
    table = official_options_table()
    for official in ("--norm", "--netD", "--init_type", "--no_dropout", "--lr_policy", "--direction",
                     "--serial_batches", "--max_dataset_size", "--input_nc", "--output_nc"):  # fmt: skip
        assert f"`{official}" in table
    with open(README) as file:
        readme = file.read()
    assert table in readme, (
        "README's table of official options is out of date: replace it with "
        "cyclegan_keras.training.config.official_options_table()"
    )


def test_unknown_variant_names_are_usage_errors():
    with pytest.raises(UsageError, match="norm must be one of"):
        Style("layer")
    with pytest.raises(UsageError, match="init_type must be one of"):
        Style(init_type="uniform")


def test_grayscale_pipelines_convert_before_resizing(tmp_path):
    """--input-nc 1: both pipelines give the official grayscale, Pillow's luma taken before resizing."""
    from cyclegan_keras.data.preprocessing import Preprocessing
    from cyclegan_keras.data.tf_data import train_dataset

    a = tmp_path / "trainA"
    a.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8)).save(a / "0.png")
    preprocessing = Preprocessing("resize_and_crop", 16, 16, flip=False)
    expected = np.asarray(Image.open(a / "0.png").convert("L").resize((16, 16), Image.BICUBIC))
    python = UnpairedImages(a, a, preprocessing=preprocessing, serial=True, channels=(1, 3))[0]
    data = train_dataset(a, a, preprocessing=preprocessing, serial=True, channels=(1, 3))
    for batch in (python, next(data.dataset.as_numpy_iterator())):
        assert (batch[0].shape[-1], batch[1].shape[-1]) == (1, 3)
        np.testing.assert_allclose((batch[0][0, ..., 0] + 1) * 127.5, expected, atol=1e-3)


def test_a_batch_norm_generator_exports_to_litert_and_verifies(tmp_path, photos):
    """Batch norm folds into the convs: the LiteRT file computes what Keras computes, as the export's
    own check measures on real photos (it raises below its bound)."""
    from cyclegan_keras.deploy.export import export_generator
    from cyclegan_keras.deploy.formats.tflite import litert_ops

    keras.utils.set_random_seed(2)
    model = resnet_generator(1, ngf=8, style=Style("batch", init_gain=0.2), name="generator_ab")
    data = _images((4, 32, 32, 3), seed=3)
    path = tmp_path / "g.keras"
    model.save(path)
    folder = photo_subset(tmp_path, photos, {"testA": 2}) / "testA"
    result = export_generator(
        path, "tflite", tmp_path / "g.tflite", input_size=32, verify_dir=folder, verbose=False
    )
    assert result.max_abs_error <= 1e-4
    assert "CONV_2D" in litert_ops(tmp_path / "g.tflite")
    assert not np.allclose(
        model(data, training=False), model(data, training=True)
    )  # it has running statistics


def test_exporting_a_grayscale_generator_is_refused_in_one_line(tmp_path, capsys):
    path = tmp_path / "g.keras"
    resnet_generator(1, ngf=4, input_channels=1, output_channels=1, name="generator_ab").save(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(path), "--format", "tflite", "--out", str(tmp_path / "g.tflite")])
    assert exit_info.value.code == 2
    assert "maps 1 channel(s) to 1" in capsys.readouterr().err
    assert not (tmp_path / "g.tflite").exists()


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_batch_and_no_norm_generators_translate_in_tiles(norm):
    """Batch norm at inference is a per-channel scale and shift, so tiles equal the whole photo."""
    from cyclegan_keras.deploy.tiling import TiledGenerator

    keras.utils.set_random_seed(0)
    model = resnet_generator(2, ngf=8, use_dropout=norm == "batch", style=Style(norm, init_gain=0.3))
    x = _images((1, 72, 88, 3))
    totals = []
    out = TiledGenerator(model)(x[0], 32, "exact", progress=lambda done, total: totals.append(total))
    assert totals and totals[-1] > 1  # it did go tile by tile
    np.testing.assert_allclose(out, model(x, training=False)[0], atol=1e-5)
