"""Hostile and odd inputs end in one line with exit status 2, nothing written: a read-only --out, a
damaged .keras file, a checkpoint of another layout."""

import subprocess

import numpy as np
import pytest

from cyclegan_keras.cli import main
from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.official import load_official_generator


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_train_into_a_read_only_file_system_is_one_line(tmp_path, capsys):
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--data-dir", str(tmp_path), "--out", str(folder / "run")])
        line = _one_line(capsys)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
    assert exit_info.value.code == 2 and "Read-only file system" in line and "--out" in line


@pytest.mark.parametrize("damage", ["text", "cut short"])
def test_a_damaged_keras_file_says_what_it_is(damage, tiny_generator_file, tmp_path, capsys):
    path = tmp_path / "g.keras"
    data = tiny_generator_file.read_bytes()
    path.write_bytes(b"not a model\n" if damage == "text" else data[: len(data) // 3])
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model", str(path), str(path), "--out", str(tmp_path / "out")])
    line = _one_line(capsys)
    assert exit_info.value.code == 2 and "is not a .keras file" in line and "not found" not in line.lower()


def _official_keys(rename):
    """The keys and shapes of an official 2-block ResNet generator (ngf 8), renamed by ``rename``."""
    rng = np.random.default_rng(0)
    shapes = {"model.1.weight": (8, 3, 7, 7), "model.1.bias": (8,), "model.4.weight": (16, 8, 3, 3),
              "model.4.bias": (16,), "model.7.weight": (32, 16, 3, 3), "model.7.bias": (32,)}  # fmt: skip
    for block in (10, 11):
        for conv in (1, 5):
            shapes[f"model.{block}.conv_block.{conv}.weight"] = (32, 32, 3, 3)
            shapes[f"model.{block}.conv_block.{conv}.bias"] = (32,)
    shapes.update({"model.12.weight": (32, 16, 3, 3), "model.12.bias": (16,),
                   "model.15.weight": (16, 8, 3, 3), "model.15.bias": (8,),
                   "model.19.weight": (3, 8, 7, 7), "model.19.bias": (3,)})  # fmt: skip
    return {rename(key): rng.normal(size=shape).astype("float32") for key, shape in shapes.items()}


def test_official_keys_load(tmp_path):
    np.savez(tmp_path / "g.npz", **_official_keys(lambda key: key))
    assert load_official_generator(tmp_path / "g.npz").count_params() > 0


@pytest.mark.parametrize(
    "rename",
    [lambda key: key.replace("conv_block", "block"), lambda key: key.replace("model.", "net.", 1)],
    ids=["renamed blocks", "renamed model"],
)
def test_a_checkpoint_of_another_layout_is_one_line(rename, tmp_path, capsys):
    path = tmp_path / "other.npz"
    np.savez(path, **_official_keys(rename))
    with pytest.raises(UsageError, match="official ResNet or U-Net generator checkpoint"):
        load_official_generator(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "--pth", str(path), "--out", str(tmp_path / "g.keras")])
    assert exit_info.value.code == 2 and "official" in _one_line(capsys)
    assert not (tmp_path / "g.keras").exists()


@pytest.mark.parametrize(
    "flags", [["--ngf", "100000"], ["--load-size", "100000", "--crop-size", "256"]], ids=["ngf", "load-size"]
)
def test_sizes_past_the_memory_are_refused_before_anything_starts(flags, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", str(tmp_path), *flags, "--out", str(tmp_path / "run")])
    line = _one_line(capsys)
    assert exit_info.value.code == 2 and "of memory" in line and flags[0] in line
    assert not (tmp_path / "run").exists()


def test_the_training_memory_bound_holds_for_the_official_setting():
    from cyclegan_keras.system.budget import training_memory
    from cyclegan_keras.training.config import TrainConfig

    # Parameters, gradients and Adam's moments of the official networks alone: 2 x (11.4 M + 2.8 M) x 16 B.
    assert 450e6 < training_memory(TrainConfig()) < 1e9
    assert training_memory(TrainConfig(ngf=128)) > 3 * training_memory(TrainConfig())


def test_evaluate_at_a_size_past_the_memory_is_one_line(tiny_generator_file, photos, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(tiny_generator_file), "--data-dir", str(photos), "--size", "100000"])
    assert exit_info.value.code == 2 and "--size 100000: at least" in _one_line(capsys)


def test_running_out_of_memory_anyway_is_one_line(monkeypatch, capsys):
    import cyclegan_keras.cli.commands as cli

    def exhausted(args):
        import tensorflow as tf

        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(cli, "cmd_demo", exhausted)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo"])
    assert exit_info.value.code == 2 and "out of memory (ResourceExhaustedError)" in _one_line(capsys)


def test_a_decompression_bomb_in_a_folder_is_skipped_and_the_rest_translated(
    tiny_generator_file, photos, tmp_path, monkeypatch, capsys
):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    Image.open(sorted((photos / "testA").iterdir())[0]).save(folder / "horse.png")
    Image.new("RGB", (1000, 1000)).save(folder / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)  # over twice this: Pillow's bomb error
    out = tmp_path / "out"
    assert main(["translate", "--model", str(tiny_generator_file), str(folder), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "bomb.png" in captured.err and "Traceback" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["horse.png"]


def test_a_file_where_a_folder_of_images_belongs_is_said_so(tiny_generator_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(tiny_generator_file), "--format", "tflite", "--input-size", "32",
              "--verify-dir", str(tiny_generator_file), "--out", str(tmp_path / "g.tflite")])  # fmt: skip
    assert exit_info.value.code == 2 and "is a file, and a folder of images is needed" in _one_line(capsys)
    assert not (tmp_path / "g.tflite").exists()


def test_an_export_size_past_the_memory_is_one_line(tiny_generator_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "--model", str(tiny_generator_file), "--format", "tflite", "--input-size", "100000",
              "--out", str(tmp_path / "g.tflite")])  # fmt: skip
    assert exit_info.value.code == 2 and "--input-size 100000: at least" in _one_line(capsys)
    assert not (tmp_path / "g.tflite").exists() and not (tmp_path / "g.tflite.json").exists()


@pytest.mark.parametrize("suffix", [".tflite", ".onnx"])
def test_a_text_file_with_a_model_suffix_is_one_line(suffix, photos, tmp_path, capsys):
    model = tmp_path / f"g{suffix}"
    model.write_text("not a model\n")
    photo = str(sorted((photos / "testA").iterdir())[0])
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model", str(model), photo, "--out", str(tmp_path / "out.png")])
    assert exit_info.value.code == 2 and "is not" in _one_line(capsys)
    assert not (tmp_path / "out.png").exists()
