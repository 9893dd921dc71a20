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
