"""--direction says the truth for files of one generator: it picks a generator of a whole CycleGAN, a
generator whose name says the other direction is refused, and exports record the generator's own."""

import json

import keras
import numpy as np
import pytest

from cyclegan_keras import resnet_generator
from cyclegan_keras.cli import main
from cyclegan_keras.deploy.generators import check_image_generator, load_generator
from cyclegan_keras.errors import UsageError


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    folder = tmp_path_factory.mktemp("generators")
    for name in ("generator_ab", "generator_ba", "mine"):
        resnet_generator(1, ngf=4, name=name).save(folder / f"{name}.keras")
    return folder


def test_a_single_generator_of_the_other_direction_is_refused(generators):
    assert load_generator(generators / "generator_ba.keras", "b_to_a").name == "generator_ba"
    assert load_generator(generators / "generator_ba.keras").name == "generator_ba"  # its own, by default
    with pytest.raises(UsageError, match="translates a_to_b: --direction b_to_a"):
        load_generator(generators / "generator_ab.keras", "b_to_a")


def test_a_generator_of_unknown_direction_runs_with_a_warning(generators):
    with pytest.warns(UserWarning, match="runs as it is"):
        assert load_generator(generators / "mine.keras", "b_to_a").name == "mine"


def test_translate_with_the_wrong_direction_is_one_line(generators, photos, tmp_path, capsys):
    photo = str(next((photos / "testB").iterdir()))
    out = tmp_path / "out.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model", str(generators / "generator_ab.keras"), photo, "--out", str(out),
              "--direction", "b_to_a"])  # fmt: skip
    assert exit_info.value.code == 2 and not out.exists()
    assert "--direction b_to_a needs the other generator's file" in capsys.readouterr().err


def test_an_export_records_the_generators_own_direction(generators, tmp_path):
    from cyclegan_keras.deploy.export import export_generator

    out = tmp_path / "g.tflite"
    export_generator(str(generators / "generator_ba.keras"), "tflite", out, input_size=32, verbose=False)
    assert json.loads((tmp_path / "g.tflite.json").read_text())["direction"] == "b_to_a"
    with pytest.raises(UsageError, match="translates b_to_a"):
        export_generator(str(generators / "generator_ba.keras"), "tflite", tmp_path / "h.tflite",
                         input_size=32, verbose=False, direction="a_to_b")  # fmt: skip
    assert not (tmp_path / "h.tflite").exists()


@pytest.mark.parametrize(
    "model",
    [
        lambda: keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)]),
        lambda: keras.Sequential([keras.Input((None, None, 1)), keras.layers.Conv2D(5, 1)]),
    ],
    ids=["dense", "1-to-5-channels"],
)
def test_a_keras_file_that_is_not_an_image_generator_is_one_line(model, tmp_path, capsys):
    path = tmp_path / "other.keras"
    model().save(path)
    with pytest.raises(UsageError, match="is not an image generator"):
        load_generator(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model", str(path), str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_info.value.code == 2 and len(err) == 1 and "not an image generator" in err[0]


def test_a_generator_passes_the_image_check():
    generator = resnet_generator(1, ngf=4)
    assert check_image_generator(generator, "g.keras") is generator
    assert np.asarray(generator(np.zeros((1, 16, 16, 3), "float32"))).shape == (1, 16, 16, 3)
