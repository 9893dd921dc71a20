"""Nothing a user owns is deleted or overwritten; checkpoints restore by name; resumes say what they do."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cyclegan_keras.cli import main
from cyclegan_keras.errors import OutputExistsError, UsageError
from cyclegan_keras.run import checkpoint
from cyclegan_keras.run.folder import find_run, resume_run


def _user_folder(path):
    """A folder of the user's own files, and a snapshot of them to compare with afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "holiday.jpg").write_bytes(b"my photo")
    (path / "notes.txt").write_text("mine")
    return {name: (path / name).read_bytes() for name in os.listdir(path)}


def _untouched(path, snapshot):
    return {name: (path / name).read_bytes() for name in os.listdir(path)} == snapshot


def _exit_code(args):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return exit_info.value.code


@pytest.mark.parametrize("fmt", ["saved_model", "tflite", "onnx"])
def test_export_refuses_a_folder_of_user_files(fmt, tiny_generator_file, tmp_path, capsys):
    photos = tmp_path / "photos"
    snapshot = _user_folder(photos)
    code = _exit_code(["export", "--model", str(tiny_generator_file), "--format", fmt, "--out", str(photos)])
    assert code == 2
    assert "left untouched" in capsys.readouterr().err or fmt != "saved_model"
    assert _untouched(photos, snapshot)


@pytest.mark.parametrize(("fmt", "name"), [("tflite", "g.tflite"), ("onnx", "g.onnx")])
def test_export_refuses_a_file_of_another_kind(fmt, name, tiny_generator_file, tmp_path, capsys):
    target = tmp_path / name
    target.write_text("a file of the user's")
    code = _exit_code(["export", "--model", str(tiny_generator_file), "--format", fmt, "--out", str(target)])
    assert code == 2
    assert "is not" in capsys.readouterr().err
    assert target.read_text() == "a file of the user's"


def test_export_replaces_its_own_saved_model_and_tflite_only_with_overwrite(
    tiny_generator_file, tmp_path, capsys
):
    for fmt, out in (("saved_model", tmp_path / "sm"), ("tflite", tmp_path / "g.tflite")):
        args = ["export", "--model", str(tiny_generator_file), "--format", fmt, "--input-size", "32"]
        assert main([*args, "--out", str(out)]) == 0
        before = {p: p.stat().st_mtime_ns for p in [out, *out.rglob("*")]}
        assert _exit_code([*args, "--out", str(out)]) == 2
        assert "pass --overwrite" in capsys.readouterr().err
        assert {p: p.stat().st_mtime_ns for p in [out, *out.rglob("*")]} == before
        assert main([*args, "--out", str(out), "--overwrite"]) == 0  # a previous export is replaced
        assert {p: p.stat().st_mtime_ns for p in [out, *out.rglob("*")]} != before
    assert (tmp_path / "sm" / "saved_model.pb").is_file()
    assert sorted(os.listdir(tmp_path)) == ["g.keras", "g.tflite", "g.tflite.json", "sm"]  # no staging left


def test_convert_refuses_to_overwrite_a_file_that_is_not_a_keras_model(tmp_path, capsys):
    from tests import torch_reference as ref

    torch = pytest.importorskip("torch")
    pth = tmp_path / "g.pth"
    torch.save(ref.ResnetGenerator(ngf=4, n_blocks=1).state_dict(), pth)
    target = tmp_path / "essay.keras"
    target.write_text("not a model")
    assert _exit_code(["convert", "--pth", str(pth), "--out", str(target)]) == 2
    assert target.read_text() == "not a model"


def test_translate_never_overwrites_without_overwrite_and_never_an_input(tiny_generator_file, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(photos / "horse.png")
    original = (photos / "horse.png").read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    (out / "horse.png").write_bytes(b"someone's picture")
    model = ["--model", str(tiny_generator_file)]
    assert _exit_code(["translate", *model, str(photos), "--out", str(out)]) == 2
    assert (out / "horse.png").read_bytes() == b"someone's picture"
    # Into the input folder: refused even with --overwrite.
    assert _exit_code(["translate", *model, str(photos), "--out", str(photos), "--overwrite"]) == 2
    assert (photos / "horse.png").read_bytes() == original
    assert main(["translate", *model, str(photos), "--out", str(out), "--overwrite"]) == 0
    assert Image.open(out / "horse.png").size == (24, 20)
    # One input and an image path as --out: that file is written.
    assert main(["translate", *model, str(photos / "horse.png"), "--out", str(tmp_path / "zebra.jpg")]) == 0
    assert Image.open(tmp_path / "zebra.jpg").format == "JPEG"


def test_translate_of_a_file_that_is_not_an_image_is_one_line(tiny_generator_file, tmp_path, capsys):
    bad = tmp_path / "bad.jpg"
    bad.write_text("<html>not an image</html>")
    code = _exit_code(
        ["translate", "--model", str(tiny_generator_file), str(bad), "--out", str(tmp_path / "o")]
    )
    assert code == 2 and "Cannot read" in capsys.readouterr().err


def test_train_and_demo_refuse_a_folder_of_user_files(tmp_path):
    photos = tmp_path / "photos"
    snapshot = _user_folder(photos)
    assert _exit_code(["train", "--data-dir", str(tmp_path), "--out", str(photos)]) == 2
    assert _exit_code(["demo", "--out", str(photos)]) == 2
    assert _untouched(photos, snapshot)


def _built(tiny_cyclegan, **kwargs):
    model = tiny_cyclegan(pool_size=2, seed=1, **kwargs)
    model.compile()
    model.build((1, 16, 16, 3))
    model.build_optimizers()
    return model


def _randomise(model, seed):
    rng = np.random.default_rng(seed)
    for variable in checkpoint.state_variables(model).values():
        if "float" in str(variable.dtype):
            variable.assign(rng.normal(size=variable.shape).astype(variable.dtype))


def test_checkpoint_restores_by_name_whatever_the_variable_order(tiny_cyclegan, tmp_path, monkeypatch):
    saved = _built(tiny_cyclegan)
    _randomise(saved, 0)
    checkpoint.save_checkpoint(saved, tmp_path, epoch=3)
    expected = {k: np.array(v.numpy()) for k, v in checkpoint.state_variables(saved).items()}

    restored = _built(tiny_cyclegan)
    # Residual blocks have equal shapes: a positional restore in another order would mix them up.
    real = checkpoint.state_variables
    monkeypatch.setattr(checkpoint, "state_variables", lambda m: dict(reversed(list(real(m).items()))))
    assert checkpoint.restore_checkpoint(restored, tmp_path) == 3
    monkeypatch.undo()
    got = {k: v.numpy() for k, v in checkpoint.state_variables(restored).items()}
    assert got.keys() == expected.keys()
    assert any(":momentums" in k for k in got) and any(k.startswith("pool_b/") for k in got)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


def test_checkpoint_of_another_layer_name_names_the_first_mismatch(tiny_cyclegan, tmp_path):
    from cyclegan_keras import CycleGAN, patchgan_discriminator, resnet_generator

    saved = _built(tiny_cyclegan)
    checkpoint.save_checkpoint(saved, tmp_path, epoch=1)
    other = CycleGAN(
        resnet_generator(2, ngf=8, name="generator_ab"),  # one more residual block
        resnet_generator(1, ngf=8, name="generator_ba"),
        patchgan_discriminator(n_layers=2, ndf=8, name="discriminator_a"),
        patchgan_discriminator(n_layers=2, ndf=8, name="discriminator_b"),
        pool_size=2,
    )
    other.compile()
    other.build((1, 16, 16, 3))
    before = [w.copy() for w in other.generator_ab.get_weights()]
    with pytest.raises(UsageError, match=r"generator_ab/res_1_conv_1/kernel"):
        checkpoint.restore_checkpoint(other, tmp_path)
    for value, now in zip(before, other.generator_ab.get_weights()):
        np.testing.assert_array_equal(value, now)  # nothing assigned


def test_positional_checkpoints_of_version_0_1_still_restore(tiny_cyclegan, tmp_path):
    saved = _built(tiny_cyclegan)
    _randomise(saved, 1)
    # The 0.1 layout: each group's variables by position, no "layout" in meta.json.
    groups = {"model": saved.variables, "generator_optimizer": saved.generator_optimizer.variables,
              "discriminator_optimizer": saved.discriminator_optimizer.variables}  # fmt: skip
    folder = tmp_path / "ckpt-00004"
    folder.mkdir()
    np.savez(
        folder / "state.npz",
        **{f"{g}/{i:05d}": v.numpy() for g, vs in groups.items() for i, v in enumerate(vs)},
    )
    (folder / "meta.json").write_text(json.dumps({"epoch": 4, "variables": 0}))
    (tmp_path / "latest").write_text(json.dumps({"checkpoint": "ckpt-00004", "epoch": 4}))
    restored = _built(tiny_cyclegan)
    assert checkpoint.restore_checkpoint(restored, tmp_path) == 4
    for ours, theirs in zip(restored.variables, saved.variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_resume_run_says_what_it_resumed_or_that_there_is_nothing(tiny_cyclegan, tmp_path, capsys):
    model = _built(tiny_cyclegan)
    assert resume_run(model, tmp_path) == 0
    assert "Nothing to resume" in capsys.readouterr().out
    (tmp_path / "config.json").write_text(json.dumps({"crop_size": 16, "epochs": 5, "epochs_decay": 5}))
    checkpoint.save_checkpoint(model, tmp_path / "checkpoints", epoch=2)
    assert find_run(tmp_path).epoch == 2
    assert resume_run(_built(tiny_cyclegan), tmp_path) == 2
    assert f"Resuming {tmp_path} at epoch 2 of 10 from checkpoints/ckpt-00002" in capsys.readouterr().out


def test_a_bug_keeps_its_traceback_and_debug_shows_usage_errors_too(monkeypatch):
    from cyclegan_keras.cli import app

    def bug(args):
        raise ValueError("an internal bug")

    def usage(args):
        raise OutputExistsError("user error")

    parser = app.build_parser()
    monkeypatch.setattr(app, "build_parser", lambda: parser)
    parser._subparsers._group_actions[0].choices["demo"].set_defaults(run=bug)
    with pytest.raises(ValueError, match="internal bug"):
        main(["demo"])
    parser._subparsers._group_actions[0].choices["demo"].set_defaults(run=usage)
    assert _exit_code(["demo"]) == 2
    with pytest.raises(OutputExistsError):
        main(["--debug", "demo"])


def test_help_does_not_import_tensorflow():
    code = (
        "import sys\nfrom cyclegan_keras.cli import main\n"
        "for argv in (['--help'], ['translate', '--help'], ['train', '--help']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TensorFlow was imported'\n"
    )
    _runs_cleanly(code)


def test_deploy_and_evaluation_import_nothing_of_training_runs_or_the_cli():
    code = (
        "import sys\nimport cyclegan_keras.deploy.export, cyclegan_keras.deploy.runners\n"
        "import cyclegan_keras.evaluation.evaluate\n"
        "higher = ('cyclegan_keras.training.loop', 'cyclegan_keras.cli')\n"
        "bad = [m for m in higher if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    _runs_cleanly(code)


def _runs_cleanly(code: str) -> None:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_keras_files_load_in_fresh_processes(tiny_generator_file, tmp_path):
    """The layers register themselves wherever a .keras file is read: the CLI, and Python after
    `import keras, cyclegan_keras` (the README's order)."""
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((12, 16, 3), 60, np.uint8)).save(photo)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for args in (
        ["-m", "cyclegan_keras", "translate", "--model", str(tiny_generator_file), str(photo), "--out",
         str(tmp_path / "o.png")],
        ["-c", f"import keras, cyclegan_keras; keras.models.load_model({str(tiny_generator_file)!r})"],
    ):  # fmt: skip
        result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "o.png").is_file()


def test_epoch_names_cannot_be_confused_and_old_ones_still_work(tmp_path):
    from cyclegan_keras.training.config import TrainConfig
    from cyclegan_keras.training.loop import load_config

    config = TrainConfig(n_epochs=3, n_epochs_decay=2)
    assert config.total_epochs == 5  # what fit(epochs=) takes
    with pytest.warns(DeprecationWarning, match="n_epochs"):
        old = TrainConfig(epochs=4, epochs_decay=1)
    assert (old.n_epochs, old.n_epochs_decay) == (4, 1)
    (tmp_path / "config.json").write_text(json.dumps({"epochs": 7, "epochs_decay": 1, "crop_size": 64,
                                                      "load_size": 72}))  # fmt: skip
    assert load_config(str(tmp_path)).total_epochs == 8  # a run of version 0.1 resumes with its length


def test_resume_with_epochs_trains_to_the_new_length(tmp_path):
    """`train --resume --epochs N` (dataclasses.replace of the saved config) used to keep the old N."""
    import dataclasses
    import warnings

    from cyclegan_keras.cli import build_parser
    from cyclegan_keras.cli.commands import _config_from
    from cyclegan_keras.training.config import TrainConfig

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor a warning about the old names, which replace() reads
        assert dataclasses.replace(TrainConfig(n_epochs=30), n_epochs=4).n_epochs == 4
    run = tmp_path / "run"
    (run / "checkpoints" / "ckpt-00002").mkdir(parents=True)
    (run / "checkpoints" / "latest").write_text(json.dumps({"checkpoint": "ckpt-00002", "epoch": 2}))
    (run / "config.json").write_text(json.dumps(dataclasses.asdict(TrainConfig(n_epochs=30, out=str(run)))))
    args = build_parser().parse_args(["train", "--resume", "--out", str(run), "--epochs", "4"])
    config, notes = _config_from(args)
    assert (config.n_epochs, config.n_epochs_decay) == (4, 100)
    assert notes == ["Resuming with --epochs 4 (the run had 30)."]
