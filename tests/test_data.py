"""Input pipelines on real photos and on the messy files real folders hold."""

import io
import os
import shutil
import warnings

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from cyclegan_keras.data.folders import domain_folders
from cyclegan_keras.data.images import image_files, open_image, scan_images
from cyclegan_keras.data.preprocessing import Preprocessing
from cyclegan_keras.data.tf_data import train_dataset
from cyclegan_keras.data.tfds import tfds_images
from cyclegan_keras.errors import DatasetUnavailableError

SMALL = Preprocessing(load_size=36, crop_size=32)


def _solid(path, value, size=(40, 40), mode="RGB", **save):
    colour = value if mode != "L" else value[0]
    Image.new(mode, size, colour).save(path, **save)


@pytest.fixture()
def messy(tmp_path):
    """A folder of good, odd and broken image files, each named for what it is."""
    folder = tmp_path / "messy"
    (folder / "nested").mkdir(parents=True)
    _solid(folder / "good.jpg", (200, 30, 30))
    _solid(folder / "nested" / "good.png", (30, 200, 30))
    _solid(folder / "gray.jpg", (90, 90, 90), mode="L")
    Image.new("CMYK", (40, 40), (0, 255, 255, 0)).save(folder / "cmyk.jpg")
    Image.new("RGBA", (40, 40), (255, 0, 0, 0)).save(folder / "rgba.png")
    Image.new("RGB", (40, 40), (0, 0, 255)).convert("P").save(folder / "palette.png")
    Image.fromarray(np.full((40, 40), 65535, np.uint16)).save(folder / "wide16.png")
    _solid(folder / "tiny.bmp", (10, 10, 10), size=(20, 20))
    _solid(folder / "anim.gif", (5, 5, 5))
    _solid(folder / "pic.webp", (6, 6, 6))
    data = io.BytesIO()
    _solid(data, (1, 2, 3), size=(200, 200), format="JPEG")
    (folder / "truncated.jpg").write_bytes(data.getvalue()[: len(data.getvalue()) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    (folder / "readme.txt").write_text("ignored: not an image extension")
    return folder


def _pixels(path):
    return np.asarray(open_image(path))


def test_image_files_are_found_recursively_by_extension(messy):
    names = {p.split("/")[-1] for p in image_files(messy)}
    assert "good.png" in names and "readme.txt" not in names and len(names) == 13


def test_unreadable_files_are_skipped_with_one_warning(messy):
    with pytest.warns(UserWarning) as caught:
        sources, _ = scan_images(image_files(messy))
    skipped = [w for w in caught if w.category is UserWarning]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert "Skipped 3 unreadable" in message
    assert all(name in message for name in ("truncated.jpg", "empty.jpg", "notes.jpg"))
    assert len(sources) == 10


def test_every_mode_becomes_rgb(messy):
    for name in ("gray.jpg", "cmyk.jpg", "palette.png", "wide16.png", "tiny.bmp", "pic.webp", "anim.gif"):
        pixels = _pixels(str(messy / name))
        assert pixels.ndim == 3 and pixels.shape[2] == 3 and pixels.dtype == np.uint8, name
    assert np.all(_pixels(str(messy / "wide16.png")) == 255)  # 16-bit white stays white
    assert np.all(_pixels(str(messy / "rgba.png")) == 255)  # transparent becomes white
    np.testing.assert_allclose(_pixels(str(messy / "gray.jpg")), 90, atol=2)
    cmyk = _pixels(str(messy / "cmyk.jpg")).mean(axis=(0, 1))
    assert cmyk[0] > 200 and cmyk[1] < 60  # CMYK (0, 255, 255, 0) is red


def test_exif_orientation_is_honoured(tmp_path):
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (20, 0, 40, 20))  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    pixels = _pixels(str(tmp_path / "rotated.jpg"))
    assert pixels.shape == (40, 20, 3)
    assert pixels[5, 10, 0] > 200 and pixels[35, 10, 2] > 200  # red on top, blue below
    assert scan_images([str(tmp_path / "rotated.jpg")])[1] == [0]  # not plain: Pillow decodes it


def test_messy_folder_trains_without_crashing_and_huge_images_shrink(messy, tmp_path):
    Image.new("RGB", (6000, 4000), (100, 150, 200)).save(messy / "huge.jpg", quality=50)
    with pytest.warns(UserWarning, match="Skipped 3"):
        data = train_dataset(messy, messy, batch_size=2, preprocessing=SMALL, seed=0)
    assert data.steps_per_epoch == 11 // 2
    for a, b in data.dataset.take(2 * data.steps_per_epoch):
        assert a.shape == b.shape == (2, 32, 32, 3)
        assert -1.0 <= float(np.min(a)) and float(np.max(a)) <= 1.0


def test_missing_empty_and_unreadable_folders_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train_dataset(tmp_path / "nowhere", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        train_dataset(tmp_path / "empty", tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "x.jpg").write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="No readable image.*broken"):
            train_dataset(tmp_path / "broken", tmp_path / "broken")
    with pytest.raises(FileNotFoundError, match="trainB"):
        (tmp_path / "d" / "trainA").mkdir(parents=True)
        domain_folders(tmp_path / "d")


@pytest.fixture(scope="module")
def few_photos(tmp_path_factory, photos):
    """3 horses and 5 zebras: real photos, so unequal domains."""
    root = tmp_path_factory.mktemp("photos")
    for split, n in (("trainA", 3), ("trainB", 5)):
        (root / split).mkdir()
        for path in image_files(photos / split)[:n]:
            shutil.copy(path, root / split)
    return root


def _epoch(data, epoch):
    batches = list(data.dataset.skip(epoch * data.steps_per_epoch).take(data.steps_per_epoch))
    return np.concatenate([a for a, _ in batches]), np.concatenate([b for _, b in batches])


def _identify(batch, references):
    # Which source image each (cropped, maybe flipped) image came from: nearest mean colour.
    means = batch.mean(axis=(1, 2))
    return [int(np.argmin(np.abs(references - m).sum(axis=1))) for m in means]


def test_epochs_are_the_longer_domain_with_random_b_and_reshuffled(few_photos):
    plain = Preprocessing(load_size=32, crop_size=32, flip=False)  # no crop, no flip: identifiable
    data = train_dataset(few_photos / "trainA", few_photos / "trainB", preprocessing=plain, seed=3)
    assert data.steps_per_epoch == 5
    refs_a = np.stack([_epoch_means(p, 32) for p in data.sources_a])
    refs_b = np.stack([_epoch_means(p, 32) for p in data.sources_b])
    orders_a, orders_b = [], []
    for epoch in range(6):
        a, b = _epoch(data, epoch)
        orders_a.append(_identify(a, refs_a))
        orders_b.append(_identify(b, refs_b))
    for order in orders_a:  # every A image in each epoch (5 steps over 3 images)
        assert set(order) == {0, 1, 2}
    assert len({tuple(o) for o in orders_a}) > 1  # reshuffled between epochs
    draws = [i for order in orders_b for i in order]
    assert len({tuple(o) for o in orders_b}) > 1
    assert any(len(set(order)) < 5 for order in orders_b)  # drawn with replacement, not a permutation
    assert set(draws) == {0, 1, 2, 3, 4}


def _epoch_means(path, size):
    return (
        np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BICUBIC), "f").mean(axis=(0, 1))
        / 127.5
        - 1
    )


def test_seeded_runs_repeat_and_resume_exactly(few_photos):
    def make(seed, start_epoch=0):
        return train_dataset(
            few_photos / "trainA",
            few_photos / "trainB",
            preprocessing=SMALL,
            seed=seed,
            start_epoch=start_epoch,
        )

    first, again, other = make(1), make(1), make(2)
    np.testing.assert_array_equal(_epoch(first, 2)[0], _epoch(again, 2)[0])
    assert not np.array_equal(_epoch(first, 0)[0], _epoch(other, 0)[0])
    resumed = make(1, start_epoch=2)
    np.testing.assert_array_equal(_epoch(resumed, 0)[1], _epoch(first, 2)[1])


def test_both_pipelines_take_the_same_images_in_the_same_order(few_photos):
    """tf_data and python share one sampling plan: with nothing random left (no crop, no flip), their
    epochs are the same batches (Pillow decoding in both)."""
    from cyclegan_keras.data.python import UnpairedImages

    kwargs = dict(preprocessing=Preprocessing(load_size=32, crop_size=32, flip=False), seed=3, cache=True)
    for serial in (False, True):
        tf_pipeline = train_dataset(few_photos / "trainA", few_photos / "trainB", serial=serial, **kwargs)
        python = UnpairedImages(few_photos / "trainA", few_photos / "trainB", serial=serial, **kwargs)
        batches = zip(range(2 * tf_pipeline.steps_per_epoch), tf_pipeline.dataset)
        for step, (a, b) in batches:
            python.epoch = step // python.steps_per_epoch
            same_a, same_b = python[step % python.steps_per_epoch]
            np.testing.assert_array_equal(a.numpy(), same_a)
            np.testing.assert_array_equal(b.numpy(), same_b)


def test_tensorflow_and_pillow_decoding_agree(few_photos):
    kwargs = dict(preprocessing=Preprocessing(load_size=286, crop_size=256), seed=5)
    fast = train_dataset(few_photos / "trainA", few_photos / "trainB", **kwargs)
    exact = train_dataset(few_photos / "trainA", few_photos / "trainB", cache=True, **kwargs)
    a_fast, _ = _epoch(fast, 0)
    a_exact, _ = _epoch(exact, 0)
    levels = np.abs(a_fast - a_exact) * 127.5
    # Bicubic kernels of two libraries: a fraction of a level on average, a few at sharp edges.
    assert levels.mean() < 0.5 and levels.max() <= 5


@pytest.mark.parametrize(
    ("mode", "shape"),
    [
        ("crop", (1, 32, 32, 3)),
        ("scale_width_and_crop", (1, 32, 32, 3)),
        ("scale_width", (1, None, 36, 3)),
        ("none", (1, 256, 256, 3)),
    ],
)
def test_official_preprocess_modes(few_photos, mode, shape):
    prep = Preprocessing(mode=mode, load_size=36, crop_size=32, flip=False)
    data = train_dataset(few_photos / "trainA", few_photos / "trainB", preprocessing=prep)
    a, _ = next(iter(data.dataset))
    assert all(want is None or want == got for want, got in zip(shape, a.shape)), a.shape
    if mode in ("none", "scale_width"):
        with pytest.raises(ValueError, match="batch"):
            train_dataset(few_photos / "trainA", few_photos / "trainB", preprocessing=prep, batch_size=2)


def test_bad_preprocessing_options():
    with pytest.raises(ValueError, match="preprocess"):
        Preprocessing(mode="resize")
    with pytest.raises(ValueError, match="load_size"):
        Preprocessing(load_size=200, crop_size=256)


def test_tfds_cycle_gan_with_mock_data():
    with tfds.testing.mock_data(num_examples=4):
        a = tfds_images("horse2zebra", "trainA")
        b = tfds_images("cycle_gan/monet2photo", "trainB")
    assert len(a) == len(b) == 4 and all(isinstance(x, bytes) for x in a)
    data = train_dataset(a, b, preprocessing=SMALL, batch_size=2)
    a_batch, b_batch = next(iter(data.dataset))
    assert a_batch.shape == b_batch.shape == (2, 32, 32, 3)
    with pytest.raises(ValueError, match="Unknown cycle_gan"):
        tfds_images("horse2donkey", "trainA")


def test_tfds_download_failure_says_how_to_use_folders(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds, "load", offline)
    with pytest.raises(DatasetUnavailableError, match="--data-dir"):
        tfds_images("horse2zebra", "trainA")

    def missing_module(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'importlib_resources'", name="importlib_resources")

    monkeypatch.setattr(tfds, "load", missing_module)
    with pytest.raises(DatasetUnavailableError, match="pip install importlib_resources") as error:
        tfds_images("horse2zebra", "trainA")
    assert "network" not in str(error.value)


def test_tfds_downloads_and_prepares_horse2zebra_from_a_server(http_server, photos, tmp_path, monkeypatch):
    """tfds' own download-and-prepare path of cycle_gan/horse2zebra (no mock): a small zip in the
    official layout, served on 127.0.0.1 in place of the official server."""
    import zipfile

    from tensorflow_datasets.image_classification import cycle_gan

    served, url, _ = http_server
    counts = {"trainA": 3, "trainB": 2, "testA": 2, "testB": 1}
    with zipfile.ZipFile(served / "horse2zebra.zip", "w") as archive:
        for split, n in counts.items():
            for path in image_files(photos / split)[:n]:
                archive.write(path, f"horse2zebra/{split}/{os.path.basename(path)}")
    monkeypatch.setitem(cycle_gan._DL_URLS, "horse2zebra", f"{url}horse2zebra.zip")
    data_dir = tmp_path / "tfds"
    found = {split: tfds_images("horse2zebra", split, data_dir=str(data_dir)) for split in counts}
    assert {split: len(images) for split, images in found.items()} == counts
    first = image_files(photos / "trainB")[0]
    with open(first, "rb") as file:
        assert file.read() in found["trainB"]  # the served bytes, not re-encoded
    served.joinpath("horse2zebra.zip").unlink()  # prepared once: later loads read tfds' own files
    assert len(tfds_images("horse2zebra", "testA", data_dir=str(data_dir))) == 2
