"""Whole-photo translation as one compiled call that holds only the tensors it still needs (issue 36):
the eager call's numbers, the memory its estimate says, on every backend."""

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from cyclegan_keras import resnet_generator, unet_generator
from cyclegan_keras.deploy.forward import inference_call
from cyclegan_keras.deploy.runners import KerasRunner
from cyclegan_keras.deploy.tiling import TiledGenerator
from cyclegan_keras.system.hardware import resident_memory
from tests.conftest import REPO

# Linux' peak resident memory (VmHWM), reset before the call (clear_refs 5) so that what came before
# (imports, building the model) does not count.
_MEASURE = """
import json, sys
import numpy as np, keras
from cyclegan_keras import resnet_generator
from cyclegan_keras.deploy.runners import KerasRunner
from cyclegan_keras.deploy.tiling import TiledGenerator

def status(key):
    with open("/proc/self/status") as file:
        return next(int(line.split()[1]) * 1024 for line in file if line.startswith(key))

side = int(sys.argv[1])
generator = resnet_generator()
runner = KerasRunner(generator)
photo = np.random.default_rng(0).uniform(-1, 1, (1, side, side, 3)).astype("float32")
with open("/proc/self/clear_refs", "w") as file:
    file.write("5")
before = status("VmRSS:")
runner.run_float(photo)
measured = status("VmHWM:") - before
print(json.dumps({"measured": measured, "estimate": TiledGenerator(generator).whole_bytes(side, side)}))
"""


@pytest.mark.parametrize(
    ("generator", "shapes"),
    [
        (resnet_generator(2, ngf=4), [(2, 28, 36, 3), (1, 20, 24, 3), (1, 44, 16, 3)]),
        (unet_generator(5, ngf=4), [(1, 64, 96, 3), (1, 32, 64, 3), (2, 96, 32, 3)]),
    ],
    ids=["resnet", "unet"],
)
def test_the_compiled_call_computes_what_the_eager_call_does(generator, shapes):
    compiled = inference_call(generator, TiledGenerator(generator), compile_from=0)  # one for every size
    runner = KerasRunner(generator)  # photos this small: a plain call
    for shape in shapes:
        images = np.random.default_rng(3).uniform(-1, 1, shape).astype("float32")
        eager = keras.ops.convert_to_numpy(generator(images, training=False))
        assert np.max(np.abs(compiled(images) - eager)) <= 1e-5
        assert np.array_equal(runner.run_float(images), eager)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux' peak-memory reset")
def test_a_whole_photo_takes_the_memory_its_estimate_says():
    """Peak resident memory of the whole-photo call, measured by the OS in a process of its own, is the
    estimate that decides on tiles to within 1.5x, at two sizes; a plain eager call's estimate (every
    intermediate kept) is many times more."""
    cases = [("tensorflow", 512), ("tensorflow", 1024)]
    if importlib.util.find_spec("torch") is not None:  # translate's default backend where installed
        cases += [("torch", 512), ("torch", 768)]
    for backend, side in cases:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": backend}
        result = subprocess.run([sys.executable, "-c", _MEASURE, str(side)], capture_output=True, text=True,
                                cwd=REPO, env=env)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        found = json.loads(result.stdout.strip().splitlines()[-1])
        ratio = found["estimate"] / found["measured"]
        assert 1 / 1.5 <= ratio <= 1.5, (backend, side, found)
        graph = TiledGenerator(resnet_generator())
        every_tensor = sum(4 * h * w * graph.channels[t] for t, (h, w) in graph.sizes(side, side).items())
        assert every_tensor > 4 * found["measured"], (backend, side, found)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch", None])
def test_translate_runs_on_jax_and_pytorch_without_tensorflow(backend, tiny_generator_file, tmp_path):
    """``--backend jax``/``torch``, and the default where neither flag nor $KERAS_BACKEND names one: the
    first installed backend of ``INFERENCE_ORDER``, said in the first line."""
    from cyclegan_keras.deploy.backend import INFERENCE_ORDER

    expected = backend or next(b for b in INFERENCE_ORDER if importlib.util.find_spec(b) is not None)
    if importlib.util.find_spec(expected) is None:
        pytest.skip(f"{expected} is not installed")
    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(photo)
    reference = KerasRunner(keras.models.load_model(tiny_generator_file))(np.asarray(Image.open(photo)))
    chosen = f"'--backend', {backend!r}, " if backend else ""
    code = (
        "import sys\nfrom cyclegan_keras.cli import main\n"
        f"status = main(['translate', {chosen}'--model', {str(tiny_generator_file)!r}, "
        f"{str(photo)!r}, '--out', {str(tmp_path / 'out.png')!r}])\n"
        "assert 'tensorflow' not in sys.modules or sys.argv[1] == 'tensorflow', 'TensorFlow was imported'\n"
        "sys.exit(status)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code, expected], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"Backend: {expected} ("), result.stdout
    assert ("fastest installed" in first) == (backend is None), first
    # The backends' floats agree to 1e-6 (tests/test_backends.py); a value on a rounding boundary may
    # still land one level apart.
    assert np.abs(np.asarray(Image.open(tmp_path / "out.png")).astype(int) - reference).max() <= 1


def test_a_folder_in_batches_gives_the_files_one_by_one_gives(tiny_generator_file, tmp_path, capsys):
    """Photos of one size go through together (decoded ahead, written behind); mixed sizes and an
    unreadable file still work; the pixels are those of translating each alone."""
    from cyclegan_keras.cli import main
    from cyclegan_keras.deploy.runners import load_runner
    from cyclegan_keras.deploy.translate import translate_files

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for i, shape in enumerate([(40, 52), (40, 52), (40, 52), (36, 20), (40, 52), (40, 52)]):
        Image.fromarray(rng.integers(0, 256, (*shape, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    (photos / "9.png").write_text("not an image")
    # A budget of its own: the default, half the memory available now, depends on what the other test
    # worker holds at the moment, and below what this process holds every photo would go in tiles.
    budget = f"{(resident_memory() + 2**30) // 2**20}M"
    runner = load_runner(tiny_generator_file, max_memory=budget)
    calls = []
    run_uint8 = runner.run_uint8
    runner.run_uint8 = lambda batch: calls.append(len(batch)) or run_uint8(batch)
    with pytest.warns(UserWarning, match="9.png"):
        batched = translate_files(runner, [str(photos)], tmp_path / "batched", batch_size=2)
    assert calls == [2, 1, 1, 2] and len(batched) == 6 and len(batched.skipped) == 1
    # A batch's convolutions may sum in another order: the same floats to 1e-5, pixels to one level.
    for path in batched:
        alone = load_runner(tiny_generator_file)(np.asarray(Image.open(photos / os.path.basename(path))))
        assert np.abs(np.asarray(Image.open(path)).astype(int) - alone).max() <= 1
    same = [np.asarray(Image.open(photos / f"{i}.png")) for i in (0, 1)]
    floats = np.stack([p.astype("float32") / 127.5 - 1 for p in same])
    alone = np.concatenate([runner.run_float(x[None]) for x in floats])
    assert np.abs(runner.run_float(floats) - alone).max() <= 1e-5
    out = str(tmp_path / "cli")
    command = [
        "translate",
        "--model",
        str(tiny_generator_file),
        str(photos),
        "--out",
        out,
        "--batch-size",
        "4",
        "--max-memory",
        budget,
    ]
    assert main(command) == 1
    assert sorted(os.listdir(tmp_path / "cli")) == sorted(os.path.basename(p) for p in batched)
    assert "skipped 1 unreadable file(s)" in capsys.readouterr().out
