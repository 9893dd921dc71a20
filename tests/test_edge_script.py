"""The standalone LiteRT script keeps the command line's rules: it never writes over a photo it reads or
an existing file without --overwrite, skips what it cannot read with one line, and reads odd photos
(16-bit, transparent) as the package does."""

import os

import numpy as np
import pytest
import tensorflow as tf
from cyclegan_keras_edge import translate_litert
from PIL import Image

from cyclegan_keras.data.images import image_files, open_image


@pytest.fixture(scope="module")
def identity_model(tmp_path_factory):
    """A dynamic-size float LiteRT file that returns its [-1, 1] input: the script's reading and writing
    show in its outputs unchanged."""

    @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32, name="images")])
    def identity(images):
        return tf.clip_by_value(images, -1.0, 1.0)

    converter = tf.lite.TFLiteConverter.from_concrete_functions([identity.get_concrete_function()], identity)
    path = tmp_path_factory.mktemp("edge") / "identity.tflite"
    path.write_bytes(converter.convert())
    return str(path)


def _run(model, *args):
    try:
        return translate_litert.main([model, *map(str, args)])
    except SystemExit as exit_info:  # argparse's errors
        return exit_info.code


def _photo(photos, tmp_path, name="horse.jpg"):
    path = tmp_path / name
    path.write_bytes(open(image_files(photos / "testA")[0], "rb").read())
    return path


def test_never_writes_over_its_input_or_an_existing_file(identity_model, photos, tmp_path, capsys):
    photo = _photo(photos, tmp_path)
    before = photo.read_bytes()
    assert _run(identity_model, photo, "--out", photo) == 2
    assert "never written over" in capsys.readouterr().err and photo.read_bytes() == before
    assert _run(identity_model, photo, "--out", photo, "--overwrite") == 2  # not even with --overwrite
    assert photo.read_bytes() == before

    out = tmp_path / "zebra.png"
    out.write_bytes(b"mine")
    assert _run(identity_model, photo, "--out", out) == 2
    assert "--overwrite" in capsys.readouterr().err.strip().splitlines()[-1] and out.read_bytes() == b"mine"
    assert _run(identity_model, photo, "--out", out, "--overwrite") == 0
    assert Image.open(out).size == Image.open(photo).size
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]


def test_inputs_with_one_name_from_two_folders_get_two_outputs(identity_model, photos, tmp_path):
    first, second = (tmp_path / "dup1", tmp_path / "dup2")
    first.mkdir(), second.mkdir()
    a = _photo(photos, first, "a.jpg")
    b = second / "a.png"
    Image.open(image_files(photos / "testB")[0]).save(b)
    out = tmp_path / "out"
    assert _run(identity_model, a, b, "--out", out) == 0
    assert sorted(os.listdir(out)) == ["a.png", "a_2.png"]
    zebra = np.asarray(Image.open(out / "a_2.png"), np.int16)
    assert np.abs(zebra - np.asarray(open_image(str(b)), np.int16)).max() <= 1  # not the horse


def test_a_bad_photo_is_skipped_in_one_line_and_the_rest_translated(
    identity_model, photos, tmp_path, capsys, monkeypatch
):
    good = _photo(photos, tmp_path)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    bomb = tmp_path / "bomb.png"
    Image.new("L", (1000, 1000)).save(bomb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 200_000)  # over twice this: Pillow's bomb error
    out = tmp_path / "out"
    assert _run(identity_model, bad, bomb, good, "--out", out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("skipped '") and "broken.jpg" in err[0]
    assert "bomb.png" in err[1] and err[2] == "2 of 3 photos skipped" and len(err) == 3
    assert os.listdir(out) == ["horse.png"]


@pytest.mark.parametrize("mode", ["I;16", "RGBA"])
def test_odd_photo_modes_read_as_the_package_reads_them(identity_model, photos, tmp_path, mode):
    rgb = np.asarray(open_image(image_files(photos / "testA")[0]))[:40, :48]
    if mode == "I;16":
        gray = np.asarray(Image.fromarray(rgb).convert("L"), np.uint16) * 257
        image = Image.fromarray(gray)  # a uint16 array: Pillow's 16-bit grayscale
        assert image.mode.startswith("I;16")
    else:
        alpha = np.zeros(rgb.shape[:2], np.uint8)
        alpha[:, :24] = 255  # the right half transparent
        image = Image.fromarray(np.dstack([rgb, alpha]), "RGBA")
    path = tmp_path / "odd.png"
    image.save(path)
    assert _run(identity_model, path, "--out", tmp_path / "out.png") == 0
    produced = np.asarray(Image.open(tmp_path / "out.png"), np.int16)
    expected = np.asarray(open_image(str(path)), np.int16)
    assert np.abs(produced - expected).max() <= 1
    if mode == "I;16":
        assert abs(produced.mean() - np.asarray(Image.fromarray(rgb).convert("L")).mean()) < 1  # not white
    else:
        assert (produced[:, 24:] >= 254).all()  # transparent pixels on white, as the command line does
