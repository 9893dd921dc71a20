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
from cyclegan_keras.deploy.runners import KerasRunner
from cyclegan_keras.deploy.tiling import TiledGenerator
from tests.conftest import REPO

_MEASURE = """
import json, resource, sys
import numpy as np, keras
from cyclegan_keras import resnet_generator
from cyclegan_keras.deploy.runners import KerasRunner
from cyclegan_keras.deploy.tiling import TiledGenerator

side = int(sys.argv[1])
generator = resnet_generator()
runner = KerasRunner(generator)
photo = np.random.default_rng(0).uniform(-1, 1, (1, side, side, 3)).astype("float32")
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
runner.run_float(photo)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"measured": peak - before, "estimate": TiledGenerator(generator).whole_bytes(side, side)}))
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
    runner = KerasRunner(generator)  # one compiled call for every size
    for shape in shapes:
        images = np.random.default_rng(3).uniform(-1, 1, shape).astype("float32")
        eager = keras.ops.convert_to_numpy(generator(images, training=False))
        assert np.max(np.abs(runner.run_float(images) - eager)) <= 1e-5


@pytest.mark.slow
def test_a_whole_photo_takes_the_memory_its_estimate_says():
    """Peak resident memory of the whole-photo call, measured by the OS in a process of its own, is the
    estimate that decides on tiles to within 1.5x, at two sizes; a plain eager call's estimate (every
    intermediate kept) is many times more."""
    for side in (512, 1024):
        result = subprocess.run([sys.executable, "-c", _MEASURE, str(side)], capture_output=True, text=True,
                                cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        found = json.loads(result.stdout.strip().splitlines()[-1])
        ratio = found["estimate"] / found["measured"]
        assert 1 / 1.5 <= ratio <= 1.5, (side, found)
        graph = TiledGenerator(resnet_generator())
        every_tensor = sum(4 * h * w * graph.channels[t] for t, (h, w) in graph.sizes(side, side).items())
        assert every_tensor > 5 * found["measured"], (side, found)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_translate_runs_on_jax_and_pytorch_without_tensorflow(backend, tiny_generator_file, tmp_path):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    photo = tmp_path / "p.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(photo)
    reference = KerasRunner(keras.models.load_model(tiny_generator_file))(np.asarray(Image.open(photo)))
    code = (
        "import sys\nfrom cyclegan_keras.cli import main\n"
        f"status = main(['translate', '--backend', {backend!r}, '--model', {str(tiny_generator_file)!r}, "
        f"{str(photo)!r}, '--out', {str(tmp_path / 'out.png')!r}])\n"
        "assert 'tensorflow' not in sys.modules, 'TensorFlow was imported'\nsys.exit(status)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out.png")), reference)
