"""The same CycleGAN on JAX and PyTorch: the official step, the pool, checkpoints that move between
backends, and a run through the command line, each in a process where importing TensorFlow fails
(``tests/backend_checks.py`` runs there); what they leave is then read back on TensorFlow here."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests import backend_checks as checks
from tests.conftest import REPO, photo_subset
from tests.video_checks import assert_statistics

OTHER_BACKENDS = ["jax", "torch"]
# The checks in processes of their own, run side by side: JAX's checks mostly compile, on one core each,
# so its checks go in two halves of about equal time (results.json records each check's seconds).
PARTS = {
    "jax": [
        "parity,pool,checkpoint,run",
        "mixed,variants,keras_file,tiled,translation_size,compiled_inference,video_statistics",
    ],
    "torch": [None],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, photos):
    return photo_subset(
        tmp_path_factory.mktemp("h2z"), photos, {"trainA": 3, "trainB": 3, "testA": 1, "testB": 1}
    )


@pytest.fixture(scope="module")
def started(tmp_path_factory, data_dir):
    """Both backends' check processes, each handed a TensorFlow-written checkpoint, started together:
    JAX compiles on one core while PyTorch runs on the other."""
    from cyclegan_keras.run.checkpoint import save_checkpoint

    processes = {}
    for backend in OTHER_BACKENDS:
        if importlib.util.find_spec(backend) is None:
            continue
        work = tmp_path_factory.mktemp(backend)
        model = checks.tiny_cyclegan()
        model.train_on_batch(checks._images(1, (1, 16, 16, 3)), checks._images(2, (1, 16, 16, 3)))
        save_checkpoint(model, work / "written", 1)
        np.savez(work / "expected.npz", **checks.state_arrays(model))
        model.generator_ab.save(work / "generator.keras")
        inputs = checks._images(7, (2, 20, 24, 3))
        outputs = keras.ops.convert_to_numpy(model.generator_ab(inputs, training=False))
        np.savez(work / "generator.npz", inputs=inputs, outputs=outputs)
        blocker = work / "no-tensorflow" / "tensorflow"
        blocker.mkdir(parents=True)
        (blocker / "__init__.py").write_text("raise ImportError('TensorFlow is blocked in this test')\n")
        env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": f"{blocker.parent}{os.pathsep}{REPO}"}
        processes[backend] = (work, [])
        for index, names in enumerate(PARTS[backend]):
            command = [sys.executable, "-m", "tests.backend_checks", str(work / f"results_{index}.json"),
                       str(work), str(data_dir), *([names] if names else [])]  # fmt: skip
            # A file, not a pipe that nobody reads while waiting.
            with open(work / f"log_{index}.txt", "w") as log:
                process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=log)
            processes[backend][1].append(process)
    yield processes
    for _, started_processes in processes.values():
        for process in started_processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture(scope="module", params=OTHER_BACKENDS)
def other(request, started):
    """The checks' results on one backend."""
    backend = request.param
    if backend not in started:
        pytest.skip(f"{backend} is not installed (pip install '.[{backend}]')")
    work, processes = started[backend]
    results, imported = {}, False
    for index, process in enumerate(processes):
        process.wait(timeout=900)
        assert process.returncode == 0, (work / f"log_{index}.txt").read_text()[-4000:]
        part = json.loads((work / f"results_{index}.json").read_text())
        imported |= part["tensorflow_imported"]
        results.update(part)
    return backend, work, {**results, "tensorflow_imported": imported}


def found(other, name):
    """What check ``name`` returned on the other backend; fails with that check's own traceback if it
    raised, so that one broken check names itself and leaves the others' tests alone."""
    backend, _, results = other
    if "error" in results[name]:
        pytest.fail(f"the {name!r} check failed on {backend}:\n{results[name]['error']}", pytrace=False)
    return results[name]["value"]


def test_runs_without_importing_tensorflow(other):
    backend, _, results = other
    assert results["backend"] == backend and not results["tensorflow_imported"]


def test_one_step_matches_the_official_step(other):
    parity = found(other, "parity")
    for name, (ours, official) in parity["losses"].items():
        assert ours == pytest.approx(official, rel=1e-4), name
    for key, gap in parity["gaps"].items():
        assert gap < 0.1, key  # the bound of the TensorFlow parity test


def test_the_pool_has_the_official_semantics(other):
    pool = found(other, "pool")
    assert pool["filling"] == [0, 1, 2, 3] and pool["stored"] == [0, 1, 2, 3]
    assert 30 <= pool["swaps"] <= 70  # about half of 100 steps swap (4 standard deviations either way)
    assert pool["returned_stored"] == pool["swaps"]  # a swap returns a stored image and keeps the new one


def test_checkpoints_move_between_tensorflow_and_the_other_backend(other):
    from cyclegan_keras.run.checkpoint import restore_checkpoint

    work = other[1]
    checkpoint = found(other, "checkpoint")
    assert checkpoint["epoch"] == 1 and checkpoint["keys_missing"] == []
    assert max(checkpoint["max_difference"].values()) == 0.0  # TensorFlow -> the other: exact
    model = checks.tiny_cyclegan()
    assert restore_checkpoint(model, work / "back") == 2
    theirs, ours = dict(np.load(work / "back.npz")), checks.state_arrays(model)
    assert set(theirs) == set(ours)
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value, err_msg=key)  # and back: exact


def test_a_keras_file_saved_on_tensorflow_computes_the_same_on_the_other_backend(other):
    assert found(other, "keras_file") < 1e-5


def test_compiled_inference_computes_what_an_eager_call_does_on_the_other_backend(other):
    # jax.jit of the stateless call on JAX; on PyTorch its own channels-first functions, layer by layer
    # (a layer with none runs as itself).
    gaps = dict(found(other, "compiled_inference"))
    expected = {"resnet", "unet", "batch_norm", "other_layers", "from_tensorflow"}
    if other[0] == "torch":
        assert gaps.pop("winograd_layers", None) == 2, gaps  # the residual block's two convolutions
        expected |= {"squares_in_parts", "winograd"}
    assert set(gaps) == expected, gaps
    assert max(gaps.values()) < 1e-5, gaps


def test_video_statistics_along_time_on_the_other_backend(other):
    # PyTorch's channels-first functions take the statistics through their own norm; JAX the layers.
    assert_statistics(found(other, "video_statistics"))


def test_predict_and_translate_keep_the_images_size_on_the_other_backend(other):
    # predict of a model not built yet too: JAX's predict runs statelessly, where no pool can be made.
    # With PyTorch on a CPU, as many photos as it has threads, side by side (a batch tensor is slower per
    # photo there); up to 8 in one batch elsewhere. Together or alone: the same pixels, to one level.
    sizes = found(other, "translation_size")
    batch = sizes["streams"] if other[0] == "torch" else 8
    assert sizes["streams"] >= 1 if other[0] == "torch" else sizes["streams"] == 0
    assert {k: sizes[k] for k in ("predict", "translate", "batch")} == {
        "predict": [2, 30, 34, 3], "translate": [2, 30, 34, 3], "batch": batch}  # fmt: skip
    assert sizes["together_vs_alone"] <= 1


def test_large_photos_translate_in_tiles_on_the_other_backend(other):
    # The tiles' layer-by-layer run of a TensorFlow-saved generator equals TensorFlow's whole image.
    assert found(other, "tiled") < 1e-4


def test_a_run_on_the_other_backend_exports_like_one_trained_on_tensorflow(other, tmp_path):
    from cyclegan_keras.deploy.export import export_generator

    work = other[1]
    run = found(other, "run")
    assert run["exit"] == 0 and run["samples"] == ["epoch_0001.png", "epoch_0002.png"]
    if other[0] == "torch":  # --jit-compile: one line why not, and the run trains uncompiled
        assert len(run["jit_note"]) == 1 and "torch.compile" in run["jit_note"][0], run["jit_note"]
    # JAX keeps its compiled programs in the package's cache, for the next run of the same settings.
    assert (run["compiled_steps"] > 0) == (other[0] == "jax"), run["compiled_steps"]
    assert {"checkpoints", "config.json", "generator_ab.keras", "history.csv"} <= set(run["files"])
    assert "logs" not in run["files"]  # TensorBoard's writers are TensorFlow's
    result = export_generator(
        str(work / "run" / "generator_ab.keras"),
        "tflite",
        tmp_path / "g.tflite",
        input_size=32,
        verbose=False,
    )
    assert result.max_abs_error < 1e-4


def test_mixed_precision_trains_on_the_other_backend(other):
    backend = other[0]
    mixed = found(other, "mixed")
    assert set(mixed) == ({"mixed_bfloat16"} if backend == "torch" else {"mixed_bfloat16", "mixed_float16"})
    for policy, values in mixed.items():
        assert np.isfinite(values["cycle_aba"]) and values["compute_dtype"] == policy.removeprefix("mixed_")
        assert values["optimizer"] == ("LossScaleOptimizer" if policy == "mixed_float16" else "OfficialAdam")


@pytest.mark.parametrize(
    ("backend", "flags", "message"),
    [
        (
            "jax",
            ["--strategy", "mirrored"],
            "--strategy mirrored is tf.distribute, which needs --backend tensorflow",
        ),
        ("jax", ["--jit-compile"], "JAX compiles every training step with XLA already"),
        ("torch", ["--precision", "mixed_float16"], "mixed_float16 on PyTorch needs a GPU"),
        ("torch", ["--steps-per-execution", "2"], "above 1 is not available on PyTorch"),
    ],
)
def test_an_option_a_backend_cannot_honour_is_one_line_and_writes_nothing(
    data_dir, tmp_path, backend, flags, message
):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    out = tmp_path / "run"
    command = ["train", "--backend", backend, "--data-dir", str(data_dir), *flags, "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "cyclegan_keras", *command],
        env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()


def test_a_backend_that_is_not_installed_or_not_the_running_one_is_refused(tmp_path, monkeypatch, capsys):
    from cyclegan_keras.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "jax" else real(name, *a)
    )
    args = ["train", "--data-dir", str(tmp_path), "--out", str(tmp_path / "run")]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--backend", "jax"])
    assert exit_info.value.code == 2 and "pip install '.[jax]'" in capsys.readouterr().err
    monkeypatch.undo()
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--backend", "torch"])  # this process's Keras runs on TensorFlow
    assert exit_info.value.code == 2 and "Keras already runs on tensorflow" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_official_variants_train_on_the_other_backend(other):
    """Batch norm's moving statistics update inside the backend's step; each pool holds its domain's
    channels (grayscale A, RGB B)."""
    variants = found(other, "variants")
    assert variants["moving_mean_change"] > 0 and variants["losses_finite"]
    assert variants["pool_channels"] == [1, 3]


def test_pytorch_trains_through_its_own_functions_with_kerass_numbers(other):
    # The step's networks run as PyTorch functions (no Keras layer calls): same outputs and gradients.
    if other[0] != "torch":
        pytest.skip("PyTorch's lean training call only")
    gaps = found(other, "lean_training")
    names = ("generator", "discriminator", "learned_norm")
    assert all(gaps[name] < 1e-5 and gaps[name + "_grads"] < 1e-5 for name in names), gaps
    # A norm over a 1 x 1 image gives its offset. PyTorch's norm folds the mean into an offset, whose
    # round-off at zero variance (|x| times 2^-24) is scaled by 1 / sqrt(epsilon) = 316.
    assert gaps["one_pixel_norm"] < 1e-4 and gaps["one_pixel_norm_grads"] < 1e-5, gaps


def test_pytorchs_adam_in_cache_sized_groups_updates_as_torch_adam(other):
    """The step's Adam runs over groups of variables on a CPU (each group while it is in cache): every
    variable once, in order, and the updates of ``torch.optim.Adam``."""
    if other[0] != "torch":
        pytest.skip("PyTorch's optimizer update only")
    adam = found(other, "grouped_adam")
    assert adam["groups"] > 2 and adam["order"] == list(range(7)), adam
    assert adam["gap"] < 1e-5, adam


def test_pytorch_keeps_kernels_and_their_moments_in_its_own_order(other):
    """The lean call convolves with the kernels' own values: stored in PyTorch's order (a permuted view
    with Keras' shape), their Adam moments too; the same weights as with Keras' layout after three
    steps, and a ``.keras`` file and ``assign`` see Keras' values."""
    if other[0] != "torch":
        pytest.skip("PyTorch's kernel storage only")
    order = found(other, "torch_order")
    assert order["slots"] >= 3 * 8 and order["stored"] == order["slots"], order
    assert order["against_keras_layout"] < 1e-6, order
    assert order["keras_file"] == 0.0 and order["assign"] == 0.0 and order["assign_keeps_order"], order


def test_bfloat16_trains_on_pytorchs_reference_convolutions(other):
    """CPUs without bfloat16 instructions run PyTorch's reference convolutions, whose weight gradient
    needs contiguous weights; oneDNN switched off takes that path on any CPU."""
    if other[0] != "torch":
        pytest.skip("PyTorch's convolution paths only")
    reference = found(other, "bfloat16_reference_path")
    assert reference["fallback_path"] and reference["compute_dtype"] == "bfloat16"
    assert np.isfinite(reference["cycle_aba"])
    # The same two steps as on oneDNN's path, up to bfloat16 round-off.
    on_onednn = found(other, "mixed")["mixed_bfloat16"]["cycle_aba"]
    assert reference["cycle_aba"] == pytest.approx(on_onednn, rel=1e-2)
