"""Runs that survive what really happens: a second trainer, a damaged checkpoint, a full disk, a bad photo
among many, an export that fails its check, a changed flag on --resume."""

import contextlib
import csv
import errno
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from cyclegan_keras.cli import main
from cyclegan_keras.run import checkpoint
from cyclegan_keras.run.lock import LOCK_FILE
from tests.conftest import REPO, photo_subset

TINY = ["--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--netd", "n_layers",
        "--n-layers-d", "2", "--load-size", "36",
        "--crop-size", "32", "--pool-size", "2", "--num-samples", "1", "--verbose", "0"]  # fmt: skip
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(REPO)}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, photos):
    return photo_subset(
        tmp_path_factory.mktemp("h2z"), photos, {"trainA": 3, "trainB": 3, "testA": 1, "testB": 1}
    )


def _train(data_dir, out, *extra, epochs=2, steps=2):
    return ["train", "--data-dir", str(data_dir), *TINY, "--epochs", str(epochs), "--epochs-decay", "0",
            "--steps-per-epoch", str(steps), "--out", str(out), *extra]  # fmt: skip


def _exit_code(args):
    try:
        return main(args)
    except SystemExit as exit_info:
        return exit_info.code


def _epochs(out):
    with open(out / "history.csv") as file:
        return [row["epoch"] for row in csv.DictReader(file)]


def _one_line(err):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- one trainer per run folder ---------------------------------------------------------------------

HOLD = "import sys, time; from cyclegan_keras.run.lock import run_lock\nwith run_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)"  # noqa: E501


@contextlib.contextmanager
def _holder(out):
    """Another process that holds the run folder's lock, as a trainer does."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait()


def test_a_second_trainer_exits_2_naming_the_holder_and_a_killed_holder_blocks_nothing(
    data_dir, tmp_path, capsys
):
    out = tmp_path / "run"
    assert _exit_code(_train(data_dir, out, epochs=1)) == 0
    with _holder(out) as holder:
        snapshot = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
        capsys.readouterr()
        assert _exit_code(_train(data_dir, out, "--resume", epochs=2)) == 2
        line = _one_line(capsys.readouterr().err)
        assert f"process {holder.pid} on " in line and repr(str(out)) in line
        assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == snapshot  # nothing written
        os.kill(holder.pid, signal.SIGKILL)  # a crash: the kernel releases the lock with the process
        holder.wait()
        assert _exit_code(_train(data_dir, out, "--resume", epochs=2)) == 0
    assert _epochs(out) == ["0", "1"]


def test_a_new_run_into_a_folder_in_use_is_refused_before_anything_is_written(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    with _holder(out):
        assert _exit_code(_train(data_dir, out)) == 2
        assert "is in use by process" in _one_line(capsys.readouterr().err)
    assert sorted(os.listdir(out)) == [LOCK_FILE]


def test_a_filesystem_that_cannot_lock_trains_with_a_warning(data_dir, tmp_path, monkeypatch, capsys):
    import fcntl

    def refuse(handle, how):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", refuse)
    assert _exit_code(_train(data_dir, tmp_path / "run", epochs=1)) == 0
    assert "cannot lock files (No locks available)" in capsys.readouterr().err


@pytest.mark.slow
def test_two_real_trainers_on_one_folder_then_kill_9_and_resume(data_dir, tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "cyclegan_keras", *_train(data_dir, out, epochs=6, steps=3)]
    first = subprocess.Popen(args, env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / LOCK_FILE).is_file():
            time.sleep(0.1)
        time.sleep(1)  # the second one a second later, as in two notebook cells
        second = subprocess.run(args, env=ENV, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"process {first.pid} on " in second.stderr and "Traceback" not in second.stderr
        latest = out / "checkpoints" / "latest"
        while time.monotonic() < deadline + 120 and not latest.exists():
            time.sleep(0.1)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    resumed = subprocess.run([*args, "--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _epochs(out) == [str(e) for e in range(6)]


# --- checkpoints that prove themselves ----------------------------------------------------------------


@pytest.fixture
def saved(tiny_cyclegan, tmp_path):
    """A tiny model with checkpoints of epochs 1, 2 and 3 (keep=3); epoch 1's weights."""
    model = tiny_cyclegan(pool_size=0)
    model.compile()
    model.build((1, 16, 16, 3))
    model.build_optimizers()
    weights = {}
    for epoch in (1, 2, 3):
        for variable in model.generator_ab.weights:
            variable.assign(variable.numpy() + 1.0)
        weights[epoch] = [v.numpy().copy() for v in model.generator_ab.weights]
        checkpoint.save_checkpoint(model, tmp_path / "ckpt", epoch, keep=3)
    return model, tmp_path / "ckpt", weights


def _damage(folder, how):
    state = folder / "state.npz"
    data = bytearray(state.read_bytes())
    if how == "truncated":
        data = data[: len(data) // 2]
    else:  # one flipped bit in the middle of the arrays: same size, same zip layout
        data[len(data) // 2] ^= 0x10
    state.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_restored(saved, how):
    model, directory, weights = saved
    _damage(directory / "ckpt-00003", how)
    with pytest.warns(
        UserWarning, match=r"ckpt-00003' is damaged .*kept as damaged-ckpt-00003; resuming from ckpt-00002"
    ):
        assert checkpoint.restore_checkpoint(model, directory) == 2
    for value, variable in zip(weights[2], model.generator_ab.weights):
        np.testing.assert_array_equal(variable.numpy(), value)
    assert sorted(os.listdir(directory)) == ["ckpt-00001", "ckpt-00002", "damaged-ckpt-00003", "latest"]
    # Pruning after the next save keeps the damaged one: it is the user's to look at.
    checkpoint.save_checkpoint(model, directory, 3, keep=1)
    assert sorted(os.listdir(directory)) == ["ckpt-00003", "damaged-ckpt-00003", "latest"]


def test_when_no_checkpoint_is_intact_the_error_names_them_and_nothing_moves(saved):
    model, directory, _ = saved
    for name in ("ckpt-00001", "ckpt-00002", "ckpt-00003"):
        _damage(directory / name, "truncated")
    before = sorted(os.listdir(directory))
    with pytest.raises(checkpoint.DamagedCheckpointError, match="ckpt-00003: state.npz has .*ckpt-00001"):
        checkpoint.restore_checkpoint(model, directory)
    assert sorted(os.listdir(directory)) == before


def test_checkpoints_without_checksums_are_checked_by_reading_them(saved):
    _, directory, _ = saved
    for name in ("ckpt-00002", "ckpt-00003"):  # as version 0.2 wrote them: no "files" in meta.json
        meta = json.loads((directory / name / "meta.json").read_text())
        del meta["files"]
        (directory / name / "meta.json").write_text(json.dumps(meta))
    _damage(directory / "ckpt-00003", "truncated")
    assert checkpoint.checkpoint_problem(directory / "ckpt-00002") is None
    assert "BadZipFile" in checkpoint.checkpoint_problem(directory / "ckpt-00003")


def test_resume_from_a_truncated_newest_checkpoint_end_to_end(data_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert _exit_code(_train(data_dir, out, epochs=2)) == 0
    _damage(out / "checkpoints" / "ckpt-00002", "truncated")
    capsys.readouterr()
    assert _exit_code(_train(data_dir, out, "--resume", epochs=3)) == 0
    err = capsys.readouterr().err
    assert "train: warning: Checkpoint" in err and "resuming from ckpt-00001 (epoch 1)" in err
    assert len(err.strip().splitlines()) == 1, err
    assert _epochs(out) == ["0", "1", "2"]
    assert (out / "checkpoints" / "damaged-ckpt-00002").is_dir()

    for name in os.listdir(out / "checkpoints"):
        if name.startswith("ckpt-"):
            _damage(out / "checkpoints" / name, "truncated")
    assert _exit_code(_train(data_dir, out, "--resume", epochs=4)) == 2
    assert "No intact checkpoint" in _one_line(capsys.readouterr().err)


# --- a full disk -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _small_disk(path, size):
    """A tmpfs of ``size`` at ``path`` where this machine lets us mount one (root on Linux)."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield lambda new_size: subprocess.run(
            ["mount", "-o", f"remount,size={new_size}", str(path)], check=True
        )
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _partials(folder):
    return [p for p in folder.rglob("*") if ".partial-" in p.name or p.name.startswith(".ckpt-")]


def test_a_full_disk_mid_run_keeps_the_last_checkpoint_and_resume_continues(data_dir, tmp_path, capsys):
    disk = tmp_path / "disk"
    with _small_disk(disk, "1600k") as resize:  # one checkpoint of this model (0.97 MB) fits, two do not
        out = disk / "run"
        assert _exit_code(_train(data_dir, out, epochs=3)) == 1
        line = _one_line(capsys.readouterr().err)
        assert "No space left on device" in line and "ckpt-00001' (epoch 1)" in line, line
        assert json.loads((out / "checkpoints" / "latest").read_text())["epoch"] == 1
        assert not _partials(out) and not (out / "generator_ab.keras").exists()
        resize("40m")  # the user frees space
        assert _exit_code(_train(data_dir, out, "--resume", epochs=2)) == 0
        assert _epochs(out) == ["0", "1"]
        assert (out / "generator_ab.keras").is_file()


def test_a_write_error_in_a_checkpoint_is_one_line_and_leaves_no_staging(
    data_dir, tmp_path, monkeypatch, capsys
):
    """Where no tmpfs can be mounted: the same failure, injected where numpy writes the state."""
    out = tmp_path / "run"
    savez, calls = np.savez, []

    def full_on_second(file, **arrays):
        calls.append(1)
        if len(calls) == 2:
            file.write(b"x" * 100)  # part of the file reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return savez(file, **arrays)

    monkeypatch.setattr(checkpoint.np, "savez", full_on_second)
    assert _exit_code(_train(data_dir, out, epochs=3)) == 1
    line = _one_line(capsys.readouterr().err)
    assert "Could not write the checkpoint" in line and "ckpt-00002" in line and "epoch 1" in line
    assert not _partials(out) and sorted(os.listdir(out / "checkpoints")) == ["ckpt-00001", "latest"]


def test_export_and_translate_onto_a_full_disk_leave_nothing_under_the_final_name(
    tiny_generator_file, tmp_path, capsys
):
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(photo)
    disk = tmp_path / "disk"
    with _small_disk(disk, "64k"):
        (disk / "filler").write_bytes(b"\0" * (60 * 1024))  # a few KB are left
        export = ["export", "--model", str(tiny_generator_file), "--format", "tflite", "--input-size", "32"]
        assert _exit_code([*export, "--out", str(disk / "g.tflite")]) == 1
        assert "No space left on device" in _one_line(capsys.readouterr().err)
        translate = ["translate", "--model", str(tiny_generator_file), str(photo)]
        assert _exit_code([*translate, "--out", str(disk / "t.png")]) == 1
        assert "Could not write the image" in _one_line(capsys.readouterr().err)
        assert sorted(os.listdir(disk)) == ["filler"]


# --- exports: staged, verified, never replacing what is not theirs ----------------------------------


def test_an_export_that_fails_verification_is_not_left_at_out(
    tiny_generator_file, tmp_path, monkeypatch, capsys
):
    from cyclegan_keras.deploy import verify

    monkeypatch.setattr(verify, "FP32_MAX_ABS", -1.0)  # a bound no file can meet
    out = tmp_path / "exports" / "g.tflite"
    args = ["export", "--model", str(tiny_generator_file), "--format", "tflite", "--input-size", "32"]
    assert _exit_code([*args, "--out", str(out)]) == 1
    assert "failed verification" in capsys.readouterr().err
    assert os.listdir(out.parent) == []


def test_convert_replaces_a_keras_file_only_with_overwrite(tmp_path, capsys):
    from tests import torch_reference as ref

    torch = pytest.importorskip("torch")
    pth = tmp_path / "g.pth"
    torch.save(ref.ResnetGenerator(ngf=4, n_blocks=1).state_dict(), pth)
    target = tmp_path / "generator_ab.keras"
    assert _exit_code(["convert", "--pth", str(pth), "--out", str(target)]) == 0
    trained = target.read_bytes()
    assert _exit_code(["convert", "--pth", str(pth), "--out", str(target)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and target.read_bytes() == trained
    assert _exit_code(["convert", "--pth", str(pth), "--out", str(target), "--overwrite"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["g.pth", "generator_ab.keras"]


# --- --resume and the flags it is given ---------------------------------------------------------------


@pytest.fixture
def finished_run(tmp_path):
    """A run folder as a run leaves it (its settings and a checkpoint pointer), without training."""
    from dataclasses import asdict

    from cyclegan_keras.training.config import TrainConfig

    out = tmp_path / "run"
    (out / "checkpoints" / "ckpt-00002").mkdir(parents=True)
    (out / "checkpoints" / "latest").write_text(json.dumps({"checkpoint": "ckpt-00002", "epoch": 2}))
    config = TrainConfig(data_dir="/old/photos", ngf=4, n_epochs=2, n_epochs_decay=0, out=str(out))
    (out / "config.json").write_text(json.dumps(asdict(config)))
    return out


def _resumed_config(argv):
    from cyclegan_keras.cli import build_parser
    from cyclegan_keras.cli.commands import _config_from

    config, notes = _config_from(build_parser().parse_args(argv))
    print(*notes, sep="\n")
    return config


def test_resume_applies_a_safe_flag_and_says_so(finished_run, capsys):
    config = _resumed_config(["train", "--resume", "--out", str(finished_run), "--data-dir", "/new/photos",
                              "--eval-every", "2", "--epochs", "4", "--ngf", "4"])  # fmt: skip
    assert (config.data_dir, config.eval_every, config.n_epochs, config.ngf) == ("/new/photos", 2, 4, 4)
    out = capsys.readouterr().out
    assert "Resuming with --data-dir /new/photos (the run had /old/photos)." in out
    assert "--eval-every 2" in out and "--ngf" not in out  # the same value is no change


def test_a_new_run_keeps_its_data_folder_as_an_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _resumed_config(["train", "--data-dir", "photos", "--out", str(tmp_path / "new")])
    assert config.data_dir == str(tmp_path / "photos")


def test_resume_of_a_run_whose_relative_data_folder_is_not_here_says_to_pass_data_dir(
    finished_run, tmp_path, monkeypatch, capsys
):
    settings = json.loads((finished_run / "config.json").read_text())
    (finished_run / "config.json").write_text(json.dumps({**settings, "data_dir": "photos"}))
    monkeypatch.chdir(tmp_path)
    assert _exit_code(["train", "--resume", "--out", str(finished_run)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "'photos', a path relative to where the run started" in line and "pass --data-dir DIR" in line


@pytest.mark.parametrize(("flag", "value"), [("--ngf", "8"), ("--lr", "0.001"), ("--crop-size", "128")])
def test_resume_refuses_a_flag_that_would_change_what_the_run_trains(finished_run, flag, value, capsys):
    assert _exit_code(["train", "--resume", "--out", str(finished_run), flag, value]) == 2
    line = _one_line(capsys.readouterr().err)
    assert f"{flag} {value} would change what it trains" in line


# --- translate over many inputs -------------------------------------------------------------------------


def test_translate_skips_unreadable_files_among_many_and_exits_1(tiny_generator_file, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(folder / "horse.png")
    assert (
        _exit_code(
            ["translate", "--model", str(tiny_generator_file), str(folder), "--out", str(tmp_path / "o")]
        )
        == 1
    )
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "warning: Skipped" in line]
    assert (
        len(warnings) == 2
        and any("empty.jpg" in w for w in warnings)
        and any("cut.jpg" in w for w in warnings)
    )
    assert "Translated 1 image(s)" in captured.out and "skipped 2 unreadable" in captured.out
    assert os.listdir(tmp_path / "o") == ["horse.png"]

    # One named file that cannot be read: exit 2, nothing written.
    assert _exit_code(["translate", "--model", str(tiny_generator_file), str(folder / "empty.jpg"), "--out",
                       str(tmp_path / "o2")]) == 2  # fmt: skip
    assert "empty.jpg" in _one_line(capsys.readouterr().err) and not (tmp_path / "o2").exists()


def test_staged_files_get_the_permissions_a_plain_open_gives(tmp_path):
    from cyclegan_keras.run.outputs import staged_file

    with staged_file(tmp_path / "staged.txt") as staging, open(staging, "w") as file:
        file.write("x")
    (tmp_path / "plain.txt").write_text("x")
    assert (tmp_path / "staged.txt").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


# --- SIGTERM at an epoch boundary ---------------------------------------------------------------------


def _signal_during(monkeypatch, owner, method):
    """``owner.method`` sends this process SIGTERM as it starts, once: a signal arriving at that point."""
    original = getattr(owner, method)
    sent = []

    def send_then_run(self, *args, **kwargs):
        if not sent:
            sent.append(True)
            signal.raise_signal(signal.SIGTERM)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, method, send_then_run)
    return sent


@pytest.mark.parametrize(
    "point",
    # The next epoch's start also shows a signal held through a step: it stops at that step's end.
    ["checkpoint being written", "sample grid", "next epoch's start"],
)
def test_sigterm_at_any_point_of_an_epoch_boundary_stops_after_that_epochs_checkpoint(
    point, data_dir, tmp_path, capsys, monkeypatch
):
    """The signal is held until the epoch's files are written (raised anywhere, it landed inside them,
    in a writer being torn down, or in a finalizer that swallowed it while the run went on)."""
    from cyclegan_keras.run.checkpoint import Checkpointer, checkpoint_problem
    from cyclegan_keras.training.samples import SampleImages
    from cyclegan_keras.training.schedule import LearningRatePolicy

    owner, method = {
        "checkpoint being written": (Checkpointer, "on_epoch_end"),
        "sample grid": (SampleImages, "on_epoch_end"),
        "next epoch's start": (LearningRatePolicy, "on_epoch_begin"),
    }[point]
    if point == "next epoch's start":  # the second epoch's: the first one's checkpoint is written
        calls = []
        original = owner.on_epoch_begin

        def second(self, epoch, logs=None):
            calls.append(epoch)
            if len(calls) == 2:
                signal.raise_signal(signal.SIGTERM)
            return original(self, epoch, logs)

        monkeypatch.setattr(owner, method, second)
    else:
        _signal_during(monkeypatch, owner, method)
    out = tmp_path / "run"
    assert _exit_code(_train(data_dir, out, epochs=2)) == 143
    assert "stopped by SIGTERM" in _one_line(capsys.readouterr().err)
    assert json.loads((out / "checkpoints" / "latest").read_text())["epoch"] == 1
    assert checkpoint_problem(out / "checkpoints" / "ckpt-00001") is None
    assert _epochs(out) == ["0"]  # the epoch's row is there, and no later one
    monkeypatch.undo()
    if point == "checkpoint being written":
        assert _exit_code(_train(data_dir, out, "--resume", epochs=2)) == 0
        assert _epochs(out) == ["0", "1"]
