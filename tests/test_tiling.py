"""Large photos in tiles: exact mode equals the whole photo, thumbnail mode is close and seamless,
temporary arrays never outlive the call, and bad input ends in one line."""

import errno
import os
import signal
import subprocess
import sys
import time
from types import SimpleNamespace

import keras
import numpy as np
import pytest
from PIL import Image

from cyclegan_keras import resnet_generator, unet_generator
from cyclegan_keras.cli import main
from cyclegan_keras.data.images import image_files
from cyclegan_keras.deploy import runners
from cyclegan_keras.deploy.runners import KerasRunner
from cyclegan_keras.deploy.tile_arrays import TileArrays, channel_sums
from cyclegan_keras.deploy.tile_geometry import Axis, end_pads
from cyclegan_keras.deploy.tiling import TiledGenerator, TileError
from cyclegan_keras.errors import WriteError
from tests.conftest import REPO


@pytest.fixture(scope="module")
def resnet():
    keras.utils.set_random_seed(1)
    return resnet_generator(n_blocks=2, ngf=8)


@pytest.fixture(scope="module")
def unet():
    keras.utils.set_random_seed(2)
    return unet_generator(num_downs=5, ngf=8)


def _whole(generator, image):
    return keras.ops.convert_to_numpy(generator(image[None], training=False))[0]


def _photo(photos, height, width):
    """A real photo enlarged to cover ``height`` x ``width``, cropped to it, in [-1, 1]."""
    image = Image.open(image_files(photos / "testA")[0]).convert("RGB")
    image = image.resize((max(width, height), max(width, height)), Image.BICUBIC)
    return np.asarray(image, np.float32)[:height, :width] / 127.5 - 1.0


@pytest.mark.parametrize(
    "which, shape, tiles", [("resnet", (100, 148), (16, 36, 64)), ("unet", (96, 160), (32, 48))]
)
def test_exact_mode_equals_the_whole_photo(which, shape, tiles, request):
    generator = request.getfixturevalue(which)
    tiled = TiledGenerator(generator)
    image = np.random.default_rng(0).uniform(-1, 1, (*shape, 3)).astype(np.float32)
    reference = _whole(generator, image)
    for tile in tiles:
        np.testing.assert_allclose(tiled(image, tile, "exact"), reference, atol=1e-4, err_msg=f"tile {tile}")
    # The same with every whole-photo array on disk, and with some on disk and some in memory.
    np.testing.assert_allclose(tiled(image, tiles[-1], "exact", memory=0), reference, atol=1e-4)
    some = tiled.plan(*shape, tiles[-1], True)["store_bytes"] // 3
    np.testing.assert_allclose(tiled(image, tiles[-1], "exact", memory=some), reference, atol=1e-4)


def test_runner_tiles_odd_sized_photos_like_the_whole_photo(resnet):
    pixels = np.random.default_rng(3).integers(0, 256, (101, 157, 3), dtype=np.uint8)
    whole = KerasRunner(resnet)(pixels)
    tiled = KerasRunner(resnet, tile=40)(pixels)
    assert tiled.shape == pixels.shape
    # Equal up to float round-off, which can move a value across a rounding boundary.
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1
    assert np.mean(tiled != whole) < 0.001


def test_thumbnail_mode_is_seamless_and_close_to_the_whole_photo(resnet, photos):
    tiled = TiledGenerator(resnet)
    image = _photo(photos, 192, 256)
    reference = _whole(resnet, image)
    outputs = [tiled(image, tile, "thumbnail", thumbnail_pixels=96 * 128) for tile in (tiled.halo, 64, 128)]
    # Fixed statistics everywhere: tiles of any size give the same photo, so no tile border shows.
    for out in outputs[1:]:
        np.testing.assert_allclose(out, outputs[0], atol=1e-4)
    mse = np.mean((outputs[0] - reference) ** 2)
    psnr = 10 * np.log10(4.0 / mse)
    assert psnr > 30, psnr  # a quarter-size thumbnail; the bench measures 1 MP thumbnails of large photos
    # The statistics do come from the thumbnail: a whole-size "thumbnail" gives the exact result.
    np.testing.assert_allclose(
        tiled(image, 64, "thumbnail", thumbnail_pixels=192 * 256), reference, atol=1e-4
    )


def test_auto_mode_tiles_only_what_does_not_fit(resnet, capsys):
    pixels = np.random.default_rng(4).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    whole = KerasRunner(resnet, verbose=True)(pixels)
    assert "tiles" not in capsys.readouterr().out
    budget = TiledGenerator(resnet).whole_bytes(96, 128) // 2
    tiled = KerasRunner(resnet, max_memory=budget, verbose=True)(pixels)
    printed = capsys.readouterr().out
    assert "over the" in printed and "budget (--max-memory)" in printed
    assert "tiles with whole-photo instance-norm statistics" in printed
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


def test_default_budget_counts_what_the_process_holds_already(resnet, monkeypatch, capsys):
    # A process holding more than the memory still free (a notebook with a dataset loaded, a second
    # test worker) must not send small photos into tiles by default.
    gib = 2**30
    monkeypatch.setattr(runners, "resident_memory", lambda: 6 * gib)
    monkeypatch.setattr(runners, "available_memory", lambda: 4 * gib)
    runner = KerasRunner(resnet, verbose=True)
    assert runner.max_memory == 8 * gib
    assert runner.tiling(96, 128) is None
    runner(np.zeros((96, 128, 3), np.uint8))
    assert "tiles" not in capsys.readouterr().out


class _Stop(Exception):
    pass


@pytest.mark.parametrize("interruption", [_Stop, KeyboardInterrupt])
def test_temporary_arrays_are_removed_whatever_happens(resnet, tmp_path, monkeypatch, interruption):
    tiled = TiledGenerator(resnet)
    image = np.random.default_rng(5).uniform(-1, 1, (64, 96, 3)).astype(np.float32)
    tiled(image, 32, "exact", memory=0, temp_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []  # after success
    run_tile, seen = tiled._run_tile, []

    def failing(*args):
        seen.append([len(os.listdir(tmp_path / d)) for d in os.listdir(tmp_path)])
        if len(seen) == 20:
            raise interruption()
        return run_tile(*args)

    monkeypatch.setattr(tiled, "_run_tile", failing)
    with pytest.raises(interruption):
        tiled(image, 32, "exact", memory=0, temp_dir=str(tmp_path))
    assert seen[-1] and seen[-1][0] > 0  # the arrays were on disk when it stopped
    assert os.listdir(tmp_path) == []


def test_full_disk_is_a_write_error_and_leaves_nothing(resnet, tmp_path, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    image = np.zeros((64, 64, 3), np.float32)
    with pytest.raises(WriteError, match="No space left"):
        TiledGenerator(resnet)(image, 32, "exact", memory=0, temp_dir=str(tmp_path))
    assert os.listdir(tmp_path) == []


@pytest.fixture
def model_and_photo(resnet, tmp_path):
    resnet.save(tmp_path / "g.keras")
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (70, 90, 3), dtype=np.uint8)).save(
        tmp_path / "p.png"
    )
    return str(tmp_path / "g.keras"), str(tmp_path / "p.png")


def _translate(tmp_path, model, photo, *flags):
    """The exit status of ``cyclegan-keras translate``."""
    try:
        return main(["translate", "--model", model, photo, "--out", str(tmp_path / "out.png"), *flags])
    except SystemExit as error:
        return error.code


def test_cli_translates_in_tiles(tmp_path, model_and_photo, capsys):
    assert _translate(tmp_path, *model_and_photo, "--tile", "32", "--tile-stats", "exact") == 0
    tiled = np.asarray(Image.open(tmp_path / "out.png"))
    assert "in 32 px tiles" in capsys.readouterr().out
    assert _translate(tmp_path, *model_and_photo, "--overwrite") == 0
    assert np.abs(np.asarray(Image.open(tmp_path / "out.png")).astype(int) - tiled).max() <= 1


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tile", "2"], "smaller than the 4 px"),
        (["--tile", "16", "--tile-stats", "thumbnail"], "context of"),
        (["--max-memory", "lots"], "memory size"),
    ],
)
def test_cli_refuses_bad_tiling_in_one_line(tmp_path, model_and_photo, capsys, flags, message):
    assert _translate(tmp_path, *model_and_photo, *flags) == 2
    error = capsys.readouterr().err.strip()
    assert message in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_cli_photo_too_large_for_the_disk(tmp_path, model_and_photo, capsys, monkeypatch):
    import shutil

    monkeypatch.setattr(
        shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000)
    )
    assert _translate(tmp_path, *model_and_photo, "--tile", "32", "--max-memory", "1K") == 2
    error = capsys.readouterr().err.strip()
    assert "--tile-stats thumbnail" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out.png").exists()


def test_cli_full_disk_exits_1_with_nothing_written(tmp_path, model_and_photo, capsys, monkeypatch):
    def no_space(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    import tempfile

    monkeypatch.setattr(os, "posix_fallocate", no_space)
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    assert _translate(tmp_path, *model_and_photo, "--tile", "32", "--max-memory", "1K") == 1
    assert "No space left" in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists() and list(temp.iterdir()) == []


def test_tiling_refuses_what_it_cannot_run():
    inputs = keras.Input((None, None, 3))
    same = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    with pytest.raises(TileError, match="'valid'"):
        TiledGenerator(same)
    # Without tiling asked for, such a generator still translates whole photos.
    assert KerasRunner(same)(np.zeros((20, 24, 3), np.uint8)).shape == (20, 24, 3)
    with pytest.raises(TileError):
        KerasRunner(same, tile=64)


def test_tiling_is_refused_for_files_that_run_whole(tmp_path):
    from cyclegan_keras.deploy.runners import load_runner
    from cyclegan_keras.errors import UsageError

    (tmp_path / "g.onnx").write_bytes(b"")
    with pytest.raises(UsageError, match="--tile need a generator the Keras runner loads"):
        load_runner(tmp_path / "g.onnx", tile=64)


def test_fixed_size_litert_keeps_the_aspect_ratio():
    from cyclegan_keras_edge.translate_litert import LiteRTTranslator

    class Recording(LiteRTTranslator):
        """The edge script's translator around a model that returns its input (no .tflite needed)."""

        def __init__(self):
            self.dynamic, self.size = False, (32, 32)
            self.input = {"dtype": np.uint8, "quantization": (0.0, 0)}  # raw pixels, as LiteRT reports them
            self.output = {"quantization": (0.0, 0)}
            self.seen = []

        def run(self, batch):
            self.seen.append(batch[0].copy())
            return batch

    translator = Recording()
    photo = np.zeros((64, 128, 3), np.uint8)
    photo[:32, :32] = 255  # a white square in the top-left corner
    out = translator(photo)
    assert out.shape == photo.shape
    seen = translator.seen[0].astype(int)
    # The model saw the photo at one scale (128 -> 32 across and 64 -> 16 down), mirrored below: the
    # square is 8 x 8 at the top, black under it; squashed, it would be 16 tall.
    assert (seen[:7, :7] > 200).all() and (seen[:7, 9:] < 50).all()
    assert (seen[9:23, :] < 50).all()
    assert np.abs(out.astype(int) - photo).mean() < 10  # and back at the photo's size and place


def test_cyclegan_translate_takes_tiles():
    from tests.conftest import make_tiny_cyclegan

    model = make_tiny_cyclegan()
    images = np.random.default_rng(7).uniform(-1, 1, (2, 50, 66, 3)).astype(np.float32)
    padded = np.pad(images, ((0, 0), (0, 2), (0, 2), (0, 0)), mode="reflect")  # to multiples of 4
    whole = keras.ops.convert_to_numpy(model.translate(padded, "b_to_a"))[:, :50, :66]
    tiled = model.translate(images, "b_to_a", tile=24)
    assert tiled.shape == images.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-4)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_translation_leaves_no_temporary_arrays(resnet, tmp_path, how):
    resnet.save(tmp_path / "g.keras")
    Image.fromarray(np.random.default_rng(8).integers(0, 256, (400, 400, 3), dtype=np.uint8)).save(
        tmp_path / "p.png"
    )
    temp = tmp_path / "temp"
    temp.mkdir()
    command = [sys.executable, "-m", "cyclegan_keras", "translate", "--model", str(tmp_path / "g.keras")]
    command += [
        str(tmp_path / "p.png"),
        "--out",
        str(tmp_path / "out.png"),
        "--tile",
        "16",
        "--max-memory",
        "1K",
    ]
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # Ours only: PyTorch keeps a cache folder of its own in TMPDIR (torchinductor_<user>), made as
    # Keras imports it, before the translation starts.
    while not list(temp.glob("cyclegan-keras-*")):  # until its arrays are on disk
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.1)
    time.sleep(1)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == (130 if how == signal.SIGINT else 143), stderr[-2000:]
    assert "Traceback" not in stderr
    assert list(temp.glob("cyclegan-keras-*")) == [] and not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("mode, a, b", [("reflect", 3, 3), ("reflect", 1, 2), ("zero", 1, 1), ("zero", 0, 2)])
def test_end_pads_gives_the_rows_the_whole_photo_padding_gives(mode, a, b):
    axis, n = Axis("pad", a, b, mode), 9
    x = np.arange(1.0, n + 1)
    padded = np.pad(x, (a, b), mode="reflect" if mode == "reflect" else "constant")
    used = 0
    for lo in range(n + a + b):
        for hi in range(lo + 1, n + a + b + 1):
            have = axis.need(lo, hi, n)
            ends = end_pads(axis, (lo, hi), n, have)
            if ends is None:
                continue
            used += 1
            (start, stop), pads = ends
            kept = x[have[0] : have[1]][start:stop]
            again = np.pad(kept, pads, mode="reflect" if mode == "reflect" else "constant")
            np.testing.assert_array_equal(again, padded[lo:hi], err_msg=f"rows {lo}-{hi}")
    # The whole axis, and a tile inside it, take this path: one pad (or none) of the rows held.
    assert end_pads(axis, (0, n + a + b), n, (0, n)) == ((0, n), (a, b))
    assert end_pads(axis, (a + 2, a + 6), n, (1, 7)) == ((1, 5), (0, 0))
    assert used > n


def test_channel_sums_are_float64_sums_of_any_view():
    value = np.random.default_rng(4).normal(3.0, 2.0, (160, 200, 40)).astype(np.float32)
    view = value[7:150, 3:190, 1:33]  # not contiguous, large enough to be shared by two threads
    sums = channel_sums(view)
    flat = view.reshape(-1, view.shape[-1]).astype(np.float64)
    np.testing.assert_allclose(sums, [flat.sum(0), (flat * flat).sum(0)], rtol=1e-12)
    np.testing.assert_allclose(channel_sums(view[:2]), channel_sums(np.array(view[:2])), rtol=1e-12)


# A tile layout for arrays that are tiles already.
_NUMPY = SimpleNamespace(copy=np.copyto, array=lambda value: value)


def test_arrays_on_disk_hold_what_arrays_in_memory_hold(tmp_path):
    rng = np.random.default_rng(5)
    regions = [(0, 3, 0, 7), (3, 9, 0, 4), (3, 9, 4, 7), (1, 8, 2, 6)]  # the last overlaps the others
    tiles = [rng.normal(size=(r[1] - r[0], r[3] - r[2], 3)).astype(np.float32) for r in regions]
    with TileArrays(None, None) as memory, TileArrays(0, str(tmp_path), needed=1) as disk:
        for arrays in (memory, disk):
            arrays.create(1, (9, 7, 3))
            for region, tile in zip(regions, tiles):
                arrays.write(1, region, tile, _NUMPY)
        assert isinstance(memory.arrays[1], np.ndarray) and os.listdir(disk.folder) == ["1.f32"]
        for region in [(0, 9, 0, 7), (2, 5, 1, 6), (8, 9, 6, 7)]:
            np.testing.assert_array_equal(disk.read(1, region), memory.read(1, region))
        # A value whose rows are not contiguous (a transposed tile) is written row by row all the same.
        disk.write(1, (0, 3, 0, 4), tiles[0][:, :4].transpose(1, 0, 2).copy().transpose(1, 0, 2), _NUMPY)
        np.testing.assert_array_equal(disk.read(1, (0, 3, 0, 4)), tiles[0][:, :4])


def test_arrays_on_disk_where_blocks_cannot_be_reserved(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "posix_fallocate", raising=False)  # as on macOS and Windows
    with TileArrays(0, str(tmp_path), needed=1) as arrays:
        arrays.create(1, (3, 4, 2))
        assert os.path.getsize(os.path.join(arrays.folder, "1.f32")) == 4 * 24
        arrays.write(1, (1, 3, 1, 4), np.full((2, 3, 2), 5.0, np.float32), _NUMPY)
        np.testing.assert_array_equal(arrays.read(1, (1, 3, 1, 4)), 5.0)


def test_freed_arrays_serve_the_next_of_their_shape(tmp_path):
    with TileArrays(None, None) as arrays:
        arrays.create(1, (4, 5, 2))
        arrays.write(1, (0, 4, 0, 5), np.ones((4, 5, 2), np.float32), _NUMPY)
        first = arrays.arrays[1]
        view = arrays.read(1, (1, 3, 0, 5))
        assert np.shares_memory(view, first) and view.shape == (2, 5, 2)
        arrays.free(1)
        arrays.create(2, (4, 5, 2))
        assert arrays.arrays[2] is first
        arrays.free(2)
        arrays.create(3, (4, 6, 2))  # another shape: a new array, and no spare kept
        assert arrays.arrays[3] is not first and not arrays.spare
    with TileArrays(100, str(tmp_path), needed=260) as arrays:  # on disk: reads are copies, files reused
        arrays.create(1, (4, 5, 2))
        arrays.write(1, (0, 4, 0, 5), np.full((4, 5, 2), 2.0, np.float32), _NUMPY)
        part = arrays.read(1, (0, 2, 0, 5))
        part += 1.0
        np.testing.assert_array_equal(arrays.read(1, (0, 2, 0, 5)), 2.0)
        arrays.free(1)
        arrays.create(2, (4, 5, 2))
        assert os.listdir(arrays.folder) == ["2.f32"]
        np.testing.assert_array_equal(arrays.read(2, (0, 4, 0, 5)), 2.0)  # the same file, not a new one
        inode = os.stat(os.path.join(arrays.folder, "2.f32")).st_ino
        arrays.free(2)
        arrays.create(3, (3, 5, 2))  # another shape on disk: the same file, cut to its size
        assert os.listdir(arrays.folder) == ["3.f32"]
        path = os.path.join(arrays.folder, "3.f32")
        assert os.stat(path).st_ino == inode and os.path.getsize(path) == 4 * 30
        arrays.free(3)
        arrays.create(7, (5, 5, 2))  # and extended to a larger one
        path = os.path.join(arrays.folder, "7.f32")
        assert os.stat(path).st_ino == inode and os.path.getsize(path) == 4 * 50
        arrays.write(7, (0, 5, 0, 5), np.full((5, 5, 2), 3.0, np.float32), _NUMPY)
        np.testing.assert_array_equal(arrays.read(7, (4, 5, 0, 5)), 3.0)
        arrays.free(7)
        arrays.trim()
        assert os.listdir(arrays.folder) == []
        # What fits beside the arrays in memory goes there, the rest on disk.
        arrays.create(4, (2, 2, 2))  # 32 bytes
        arrays.create(5, (4, 2, 2))  # 64 bytes: 96 of the 100
        arrays.create(6, (1, 2, 2))  # 16 more do not fit
        assert [isinstance(arrays.arrays[n], np.ndarray) for n in (4, 5, 6)] == [True, True, False]
        assert os.listdir(arrays.folder) == ["6.f32"]
