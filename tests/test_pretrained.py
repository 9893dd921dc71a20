"""Pretrained generators by name: download from a local server, cache, errors; the PyTorch-free reader."""

import os
import pickle
import zipfile

import numpy as np
import pytest
import torch

from cyclegan_keras import PRETRAINED, pretrained
from cyclegan_keras.cli import main
from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.pth import UnsafePickleError, read_pth
from tests import torch_reference as ref


@pytest.fixture
def official_server(http_server, tmp_path, monkeypatch):
    """A local stand-in for the official server holding a small official-layout horse2zebra.pth."""
    folder, url, stop = http_server
    network = ref.randomize(ref.ResnetGenerator(ngf=8, n_blocks=2), seed=3).eval()
    # Published checkpoints predate PyTorch 1.6: the legacy format, with instance-norm buffers.
    state = network.state_dict()
    state["model.2.running_mean"] = torch.zeros(8)
    torch.save(state, folder / "horse2zebra.pth", _use_new_zipfile_serialization=False)
    monkeypatch.setenv("CYCLEGAN_KERAS_PRETRAINED_URL", url)
    monkeypatch.setenv("CYCLEGAN_KERAS_HOME", str(tmp_path / "cache"))
    return folder, stop, network


def _cache(tmp_path):
    folder = tmp_path / "cache" / "pretrained"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


def test_download_convert_then_cache_hit_offline(official_server, tmp_path, monkeypatch):
    _, stop, network = official_server
    generator = pretrained("horse2zebra")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 32, 40, 3)).astype("float32")
    with torch.no_grad():
        expected = network(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(np.asarray(generator(x)), expected, atol=1e-4)
    assert _cache(tmp_path) == ["horse2zebra.keras", "horse2zebra.pth"]

    stop()  # offline from now on; the second call neither downloads nor converts
    from cyclegan_keras.networks import official

    monkeypatch.setattr(official, "read_pth", lambda path: pytest.fail("converted twice"))
    again = pretrained("horse2zebra")
    np.testing.assert_allclose(np.asarray(again(x)), expected, atol=1e-4)


def test_unknown_name_lists_the_names_and_suggests_the_closest(official_server):
    with pytest.raises(UsageError, match=r"Did you mean horse2zebra\?.*style_monet"):
        pretrained("hors2zebra")


def test_offline_with_nothing_cached_names_the_url_and_the_cache_path(official_server, tmp_path):
    _, stop, _ = official_server
    stop()
    with pytest.raises(UsageError) as error:
        pretrained("horse2zebra")
    message = str(error.value)
    assert "horse2zebra.pth" in message and "127.0.0.1" in message
    assert str(tmp_path / "cache" / "pretrained" / "horse2zebra.pth") in message
    assert _cache(tmp_path) == []  # nothing half-written


@pytest.mark.parametrize("bad", ["html", "truncated", "other_architecture"])
def test_bad_downloads_are_refused_and_leave_nothing_in_the_cache(bad, official_server, tmp_path, capsys):
    folder, _, _ = official_server
    path = folder / "horse2zebra.pth"
    if bad == "html":
        path.write_text("<html><body>502 Bad Gateway</body></html>")
    elif bad == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    else:
        torch.save(ref.NLayerDiscriminator(ndf=4, n_layers=2).state_dict(), path)
    with pytest.raises(SystemExit) as exit_info:
        main(["translate", "--model", "horse2zebra", "x.jpg", "--out", str(tmp_path / "z.png")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "horse2zebra" in err and len(err.strip().splitlines()) == 1
    assert _cache(tmp_path) == []


def test_cli_translates_and_exports_by_name_and_lists_names(official_server, tmp_path, photos, capsys):
    horse = sorted((photos / "testA").iterdir())[0]
    assert (
        main(["translate", "--model", "horse2zebra", str(horse), "--out", str(tmp_path / "zebra.png")]) == 0
    )
    assert (tmp_path / "zebra.png").is_file()
    out = tmp_path / "h2z.tflite"
    assert main(["export", "--model", "horse2zebra", "--format", "tflite", "--input-size", "32",
                 "--out", str(out)]) == 0  # fmt: skip
    assert out.is_file()
    assert main(["pretrained"]) == 0
    listing = capsys.readouterr().out
    assert len(PRETRAINED) == 18
    line = next(row for row in listing.splitlines() if row.startswith("horse2zebra "))
    assert line.endswith("yes") and "zebra" in line
    assert next(row for row in listing.splitlines() if row.startswith("style_monet")).endswith("no")


def test_a_pretrained_generator_translates_in_tiles_like_the_official_network(official_server):
    from cyclegan_keras.deploy.generators import load_generator
    from cyclegan_keras.deploy.tiling import TiledGenerator

    _, _, network = official_server
    image = np.random.default_rng(9).uniform(-1, 1, (72, 96, 3)).astype(np.float32)
    with torch.no_grad():
        official = (
            network(torch.from_numpy(image.transpose(2, 0, 1)[None].copy()))[0].numpy().transpose(1, 2, 0)
        )
    tiled = TiledGenerator(load_generator("horse2zebra"))(image, 24, "exact")
    np.testing.assert_allclose(tiled, official, atol=1e-4)


# -- the reader --------------------------------------------------------------------------------------


@pytest.mark.parametrize("zip_format", [True, False])
def test_reader_matches_torch_load_in_both_formats(zip_format, tmp_path):
    state = ref.randomize(ref.ResnetGenerator(ngf=4, n_blocks=1), seed=0).state_dict()
    state["transposed"] = torch.arange(12.0).reshape(3, 4).t()  # a non-contiguous view
    state["half"] = torch.randn(5).half()
    state["count"] = torch.tensor(7)
    path = tmp_path / "g.pth"
    torch.save(state, path, _use_new_zipfile_serialization=zip_format)
    assert zipfile.is_zipfile(path) == zip_format
    got = read_pth(path)
    assert list(got) == list(state)
    for key, tensor in state.items():
        assert got[key].dtype == tensor.numpy().dtype, key
        np.testing.assert_array_equal(got[key], tensor.numpy(), err_msg=key)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("zip_format", [True, False])
def test_a_pth_whose_pickle_would_run_code_is_refused_and_nothing_runs(zip_format, tmp_path):
    marker = str(tmp_path / "pwned")
    path = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(1), "payload": _Exploit(marker)}, path,
               _use_new_zipfile_serialization=zip_format)  # fmt: skip
    with pytest.raises(UnsafePickleError, match=r"posix\.mkdir|os\.mkdir"):
        read_pth(path)
    assert not os.path.exists(marker)
    # The same through the command line: one line, exit 2.
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "--pth", str(path), "--out", str(tmp_path / "g.keras")])
    assert exit_info.value.code == 2 and not os.path.exists(marker)


def test_reader_refuses_a_plain_pickle_of_something_else(tmp_path):
    path = tmp_path / "list.pth"
    with open(path, "wb") as file:
        pickle.dump([1, 2, 3], file)
    with pytest.raises(UsageError):
        read_pth(path)
