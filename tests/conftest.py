import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib  # noqa: E402
import shutil  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

# TensorFlow's graph optimiser (grappler) off in the test processes: it spends seconds on each traced
# training step rewriting graphs that then run two steps on 32 px images. What users run keeps it: the
# commands, notebooks and backend checks that the tests start in processes of their own.
tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

REPO = pathlib.Path(__file__).resolve().parents[1]


def _shared_data() -> pathlib.Path | None:
    """The shared subset of horse2zebra: $CYCLEGAN_KERAS_TEST_PHOTOS, else shared/data/horse2zebra beside
    the clone or beside any folder above it (CI lays shared/ beside the clone)."""
    named = os.environ.get("CYCLEGAN_KERAS_TEST_PHOTOS")
    candidates = [pathlib.Path(named)] if named else []
    candidates += [parent / "shared" / "data" / "horse2zebra" for parent in REPO.parents]
    return next((path for path in candidates if (path / "testA").is_dir()), None)


SHARED_DATA = _shared_data()
SAMPLES = REPO / "cyclegan_keras" / "assets" / "horse2zebra"


@pytest.fixture(scope="session")
def photos() -> pathlib.Path:
    """Real horse and zebra photos in trainA/trainB/testA/testB: the shared subset, else the bundled few.

    Tests that need a number of photos take them through ``photo_subset``, which gives that number from
    either source, so that no test depends on where the clone lies."""
    return SHARED_DATA or SAMPLES


@pytest.fixture(scope="session")
def many_photos() -> pathlib.Path:
    """The shared subset (120+ real photos a domain) for statistics that a few photos cannot give."""
    if SHARED_DATA is None:
        pytest.skip(
            "needs the shared horse2zebra subset (shared/data/horse2zebra beside the clone, or "
            "$CYCLEGAN_KERAS_TEST_PHOTOS): KID over the 3 bundled photos a domain is noise"
        )
    return SHARED_DATA


def photo_subset(root: pathlib.Path, photos: pathlib.Path, counts: dict) -> pathlib.Path:
    """A dataset folder in ``root`` with ``counts[split]`` photos of each split: the first ones, and where
    the source has fewer (the bundled few), mirrored crops of them, each a photo of its own."""
    from PIL import Image, ImageOps

    from cyclegan_keras.data.images import image_files

    for split, n in counts.items():
        (root / split).mkdir(parents=True)
        sources = image_files(photos / split)
        for path in sources[:n]:
            shutil.copy(path, root / split)
        for i in range(len(sources), n):
            image = Image.open(sources[i % len(sources)]).convert("RGB")
            width, height = image.size
            shift = (i // len(sources)) % 8  # eight crops a photo, then mirrored ones
            box = (shift * width // 40, shift * height // 40, width - (7 - shift) * width // 40, height)
            variant = image.crop(box).resize((width, height), Image.BICUBIC)
            if (i // len(sources)) % 16 >= 8:
                variant = ImageOps.mirror(variant)
            variant.save(root / split / f"variant_{i:04d}.png")
    return root


def make_tiny_cyclegan(**kwargs):
    """A small CycleGAN: 1-block generators and 2-layer discriminators with 8 filters."""
    from cyclegan_keras import CycleGAN, patchgan_discriminator, resnet_generator

    return CycleGAN(
        resnet_generator(1, ngf=8, name="generator_ab"),
        resnet_generator(1, ngf=8, name="generator_ba"),
        patchgan_discriminator(n_layers=2, ndf=8, name="discriminator_a"),
        patchgan_discriminator(n_layers=2, ndf=8, name="discriminator_b"),
        **kwargs,
    )


def image_pairs(n=4, size=16, seed=0):
    """A dataset of n (a, b) pairs of random 16x16 images."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")
    b = rng.uniform(-1, 1, (n, size, size, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((a, b))


def colour_domains(n, size, seed):
    """Domain A: reddish textured images; domain B: the same kind of textures but bluish."""
    rng = np.random.default_rng(seed)
    texture = rng.uniform(-0.3, 0.3, (n, size, size, 1)).astype("float32")
    red = np.array([0.6, -0.6, -0.6], "float32")
    a = np.clip(texture + red, -1, 1)
    texture = rng.uniform(-0.3, 0.3, (n, size, size, 1)).astype("float32")
    b = np.clip(texture + red[::-1], -1, 1)
    return a, b


def assert_learns_colour_mapping():
    """Trains a tiny CycleGAN on red vs blue textures and checks that it learned; returns it."""
    keras.utils.set_random_seed(7)
    a, b = colour_domains(32, 16, seed=0)
    model = make_tiny_cyclegan(pool_size=8, seed=0)
    model.compile(
        generator_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
        discriminator_optimizer=keras.optimizers.Adam(2e-3, beta_1=0.5),
    )
    data = tf.data.Dataset.from_tensor_slices((a, b)).shuffle(32, seed=0).batch(4, drop_remainder=True)
    before = model.evaluate(data, verbose=0, return_dict=True)
    history = model.fit(data, epochs=8, verbose=0).history
    after = model.evaluate(data, verbose=0, return_dict=True)
    # The cycles close (a detached cycle term would not) ...
    assert after["cycle_aba"] < 0.5 * before["cycle_aba"]
    assert after["cycle_bab"] < 0.5 * before["cycle_bab"]
    # ... the discriminators learn to tell real from fake (frozen ones climb to 0.77-0.85) and the
    # generators still fool them (a wrong-signed adversarial term would lose badly), over the last four
    # epochs: one evaluation after the last step catches the game mid-swing (on a Sapphire Rapids Xeon, one
    # discriminator at 0.79 there while it trained at 0.19-0.25).
    late = {name: float(np.mean(history[name][-4:])) for name in ("disc_a", "disc_b", "adv_ab", "adv_ba")}
    assert late["disc_a"] < 0.35 and late["disc_b"] < 0.35, late
    assert late["adv_ab"] < 0.7 and late["adv_ba"] < 0.7, late
    # Translated images take the other domain's colour: blue channel above red for A -> B, and back.
    fake_b = (
        keras.ops.convert_to_numpy(model.translate(a[:8], "a_to_b")).astype("float32").mean(axis=(0, 1, 2))
    )
    fake_a = (
        keras.ops.convert_to_numpy(model.translate(b[:8], "b_to_a")).astype("float32").mean(axis=(0, 1, 2))
    )
    assert fake_b[2] - fake_b[0] > 0.5, fake_b
    assert fake_a[0] - fake_a[2] > 0.5, fake_a
    return model


@pytest.fixture
def tiny_cyclegan():
    """``make_tiny_cyclegan``."""
    return make_tiny_cyclegan


@pytest.fixture
def pairs():
    """``image_pairs``."""
    return image_pairs


@pytest.fixture
def learns_colour_mapping():
    """``assert_learns_colour_mapping``."""
    return assert_learns_colour_mapping


@pytest.fixture
def tiny_generator_file(tmp_path):
    """A small generator saved as ``.keras``."""
    from cyclegan_keras import resnet_generator

    path = tmp_path / "g.keras"
    resnet_generator(1, ngf=4, name="generator_ab").save(path)
    return path


@pytest.fixture
def http_server(tmp_path):
    """Serves a fresh folder over HTTP on 127.0.0.1 (a free port) while the test runs.

    Yields ``(folder, base_url, stop)``; ``stop()`` shuts the server down early (to test offline).
    """
    import functools
    import http.server
    import threading

    folder = tmp_path / "served"
    folder.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keeps stderr for what the tests read
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)
            stopped.append(True)

    yield folder, f"http://127.0.0.1:{server.server_address[1]}/", stop
    stop()
