"""The command line end to end on real photos: artefacts, crash safety, translate, bad options."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from PIL import Image

from cyclegan_keras import resnet_generator
from cyclegan_keras.cli import main
from tests.conftest import photo_subset

TINY = [
    "--generator",
    "resnet_6blocks",
    "--ngf",
    "4",
    "--ndf",
    "4",
    "--netd",
    "n_layers",
    "--n-layers-d",
    "2",
    "--load-size",
    "36",
    "--crop-size",
    "32",
    "--pool-size",
    "4",
    "--num-samples",
    "2",
]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, photos):
    return photo_subset(
        tmp_path_factory.mktemp("h2z"), photos, {"trainA": 4, "trainB": 6, "testA": 2, "testB": 2}
    )


def test_train_leaves_every_artefact(data_dir, tmp_path):
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--data-dir",
            str(data_dir),
            *TINY,
            "--epochs",
            "1",
            "--epochs-decay",
            "1",
            "--steps-per-epoch",
            "2",
            "--out",
            str(out),
            "--verbose",
            "0",
        ]
    )
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["crop_size"] == 32 and config["lambda_identity"] == 0.5 and config["gan_mode"] == "lsgan"
    assert {"keras", "tensorflow", "cyclegan_keras"} <= config["versions"].keys()
    with open(out / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["0", "1"]
    for name in (
        "adv_ab",
        "adv_ba",
        "cycle_aba",
        "cycle_bab",
        "identity_ab",
        "identity_ba",
        "disc_a",
        "disc_b",
    ):
        assert all(np.isfinite(float(row[name])) for row in rows)
    assert float(rows[1]["learning_rate"]) == pytest.approx(2e-4 / 2)
    grids = sorted(os.listdir(out / "samples"))
    assert grids == ["epoch_0001.png", "epoch_0002.png"]
    assert Image.open(out / "samples" / grids[0]).size == (3 * 32, 4 * 32)  # 2 A rows + 2 B rows
    events = [f for root, _, files in os.walk(out / "logs") for f in files if "tfevents" in f]
    assert any("samples" in root for root, _, files in os.walk(out / "logs") if files) and events
    assert json.loads((out / "checkpoints" / "latest").read_text())["epoch"] == 2
    for name in ("generator_ab", "generator_ba"):
        generator = keras.models.load_model(out / f"{name}.keras", safe_mode=True)
        assert generator.output_shape == (None, None, None, 3)

    # A second run into the same folder must not silently overwrite it.
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", str(data_dir), *TINY, "--out", str(out)])
    assert exit_info.value.code == 2


DETERMINISTIC = ("--deterministic", "--seed", "5")


def _cli(*args):
    return [sys.executable, "-m", "cyclegan_keras", *args]


def _train_args(data_dir, out, *extra, epochs=3, steps=12):
    """A tiny run on the real photos: `epochs` epochs at full rate of `steps` steps each."""
    return ["train", "--data-dir", str(data_dir), *TINY, "--epochs", str(epochs), "--epochs-decay", "0",
            "--steps-per-epoch", str(steps), "--out", str(out), "--verbose", "0", *extra]  # fmt: skip


def _weights(path):
    return keras.models.load_model(path, safe_mode=True).get_weights()


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_with_the_same_weights(data_dir, tmp_path):
    """`--resume` alone continues the killed run with its own saved settings."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    uninterrupted = subprocess.Popen(_cli(*_train_args(data_dir, reference, *DETERMINISTIC)), env=env)

    run = subprocess.Popen(_cli(*_train_args(data_dir, killed, *DETERMINISTIC)), env=env)
    latest = killed / "checkpoints" / "latest"
    deadline = time.time() + 300
    while not latest.exists() and time.time() < deadline and run.poll() is None:
        time.sleep(0.2)
    assert latest.exists(), "no checkpoint after the first epoch"
    time.sleep(0.5)  # into the second epoch
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    epoch_at_kill = json.loads(latest.read_text())["epoch"]
    assert epoch_at_kill < 3 and not (killed / "generator_ab.keras").exists()

    resumed = subprocess.run(
        _cli("train", "--out", str(killed), "--resume", "--verbose", "0"),
        env=env,
        capture_output=True,
        text=True,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert uninterrupted.wait() == 0
    with open(killed / "history.csv") as file:
        assert [row["epoch"] for row in csv.DictReader(file)] == ["0", "1", "2"]
    for name in ("generator_ab", "generator_ba"):
        for ours, theirs in zip(_weights(killed / f"{name}.keras"), _weights(reference / f"{name}.keras")):
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_interrupted_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch, tiny_cyclegan):
    from cyclegan_keras.run import checkpoint

    model = tiny_cyclegan(pool_size=0)
    model.compile()
    model.build((1, 16, 16, 3))
    model.build_optimizers()
    checkpoint.save_checkpoint(model, tmp_path, epoch=1)
    before = [v.numpy().copy() for v in model.generator_ab.weights]

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if interrupted in the middle of writing

    monkeypatch.setattr(checkpoint.np, "savez", crash)
    for variable in model.generator_ab.weights:
        variable.assign(variable.numpy() + 1.0)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_checkpoint(model, tmp_path, epoch=2)
    monkeypatch.undo()
    assert checkpoint.restore_checkpoint(model, tmp_path) == 1
    for value, variable in zip(before, model.generator_ab.weights):
        np.testing.assert_array_equal(variable.numpy(), value)


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(data_dir, tmp_path, capsys):
    out = tmp_path / "nan"
    code = main(_train_args(data_dir, out, "--lr", "1e30", steps=2))
    assert code == 1
    err = capsys.readouterr().err
    assert "non-finite loss" in err and "--resume" in err
    assert not (out / "generator_ab.keras").exists()
    latest = out / "checkpoints" / "latest"
    if latest.exists():  # the last good epoch, if any finished before the blow-up
        assert json.loads(latest.read_text())["epoch"] < 3


def test_translate_odd_sizes_folders_and_globs(tmp_path):
    generator = resnet_generator(1, ngf=4, name="generator_ab")
    generator.save(tmp_path / "g.keras")
    images = tmp_path / "in"
    (images / "sub").mkdir(parents=True)
    sizes = {"odd.jpg": (37, 23), "square.png": (50, 50), "tiny.png": (5, 9), "sub/deep.jpg": (41, 30)}
    rng = np.random.default_rng(0)
    for name, (w, h) in sizes.items():
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(images / name)
    out = tmp_path / "out"
    assert (
        main(
            [
                "translate",
                "--model",
                str(tmp_path / "g.keras"),
                str(images / "sub"),
                str(images / "*.png"),
                str(images / "odd.jpg"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    for name, size in sizes.items():
        stem = os.path.splitext(os.path.basename(name))[0]
        assert Image.open(out / f"{stem}.png").size == size
    # The odd-sized result is the generator applied to the reflection-padded photo, cropped back.
    photo = np.asarray(Image.open(images / "odd.jpg"))
    padded = np.pad(photo, ((0, 1), (0, 3), (0, 0)), mode="reflect").astype("float32") / 127.5 - 1
    expected = (keras.ops.convert_to_numpy(generator(padded[None]))[0, :23, :37] + 1) * 127.5
    assert np.abs(np.asarray(Image.open(out / "odd.png"), "float32") - expected).max() <= 1.0


BAD_OPTIONS = [
    (["train", "--crop-size", "30"], "crop_size"),
    (["train", "--data-dir", "/no/such/folder"], "/no/such/folder"),
    (["train", "--load-size", "128"], "load_size"),
    (["translate", "--model", "/no/model.keras", "x.jpg", "--out", "o"], "/no/model.keras"),
    (["train", "--gan-mode", "wgan"], "invalid choice"),
    (["train", "--batch-size", "0"], "positive integer"),
    (["convert", "--pth", "/no/h2z.pth", "--out", "g.keras"], "/no/h2z.pth"),
    (["export", "--model", "/no/g.keras", "--format", "tflite", "--out", "g.tflite"], "/no/g.keras"),
    (["export", "--model", "x.keras", "--format", "onnx", "--quantize", "int8", "--out", "g"], "web only"),
    (["export", "--model", "x.keras", "--format", "onnx", "--out", "g.tflite"], "pass --out NAME.onnx"),
    (["export", "--model", "x.keras", "--format", "saved_model", "--out", "g.tflite"], "names a model file"),
]


@pytest.mark.parametrize(("args", "message"), BAD_OPTIONS)
def test_bad_options_exit_2_with_a_message(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = ["--out", str(tmp_path / "r")] if args[0] == "train" else []
    with pytest.raises(SystemExit) as exit_info:
        main([*args, *out])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_bad_option_from_the_shell_prints_no_traceback(tmp_path):
    result = subprocess.run(
        _cli("train", "--data-dir", "/no/such/folder", "--out", str(tmp_path / "r")),
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 2
    assert "/no/such/folder" in result.stderr and "Traceback" not in result.stderr, result.stderr[-1500:]


@pytest.mark.parametrize("command", ["train", "translate", "demo", "export", "convert"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"usage: cyclegan-keras {command}" in capsys.readouterr().out
