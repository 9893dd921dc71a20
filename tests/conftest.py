import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib  # noqa: E402

import pytest  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "horse2zebra"
SAMPLES = REPO / "cyclegan_keras" / "assets" / "horse2zebra"


@pytest.fixture(scope="session")
def photos() -> pathlib.Path:
    """Real horse and zebra photos in trainA/trainB/testA/testB: the shared subset, else the bundled few."""
    return SHARED_DATA if SHARED_DATA.is_dir() else SAMPLES


@pytest.fixture
def tiny_cyclegan():
    """Makes small CycleGANs: 1-block generators and 2-layer discriminators with 8 filters."""
    from cyclegan_keras import CycleGAN, patchgan_discriminator, resnet_generator

    def make(**kwargs):
        return CycleGAN(
            resnet_generator(1, ngf=8, name="generator_ab"),
            resnet_generator(1, ngf=8, name="generator_ba"),
            patchgan_discriminator(n_layers=2, ndf=8, name="discriminator_a"),
            patchgan_discriminator(n_layers=2, ndf=8, name="discriminator_b"),
            **kwargs,
        )

    return make


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
