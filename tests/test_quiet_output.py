"""Commands print their own lines: no native runtime notices, and in a log file a progress line every
few percent instead of a redrawn bar per tile."""

import os
import subprocess
import sys

import pytest

from cyclegan_keras.cli import main
from tests.conftest import REPO


def test_an_int8_export_and_translation_print_no_runtime_notices(
    tiny_generator_file, photos, tmp_path, capfd
):
    photo = str(sorted((photos / "testA").iterdir())[0])
    model = tmp_path / "g.tflite"
    assert main(["export", "--model", str(tiny_generator_file), "--format", "tflite", "--quantize", "int8",
                 "--input-size", "32", "--out", str(model)]) == 0  # fmt: skip
    assert main(["translate", "--model", str(model), photo, "--out", str(tmp_path / "out.png")]) == 0
    out, err = capfd.readouterr()
    assert "| tflite int8 |" in out and "Translated 1 image(s)" in out
    for notice in ("INFO: Created TensorFlow Lite", "fully_quantize"):
        assert notice not in out + err


def test_verbose_shows_the_runtime_notices(tiny_generator_file, tmp_path):
    # A process of its own: LiteRT prints its notice once per process.
    command = ["--verbose", "export", "--model", str(tiny_generator_file), "--format", "tflite",
               "--input-size", "32", "--out", str(tmp_path / "g.tflite")]  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "cyclegan_keras", *command], capture_output=True,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "INFO: Created TensorFlow Lite XNNPACK delegate" in result.stderr


@pytest.mark.parametrize("total", [7, 400, 8800])
def test_tile_progress_off_a_terminal_is_a_line_every_ten_percent(total, capsys):
    from cyclegan_keras.deploy.runners import _progress_bar

    update = _progress_bar()
    for done in range(1, total + 1):
        update(done, total)
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"tiles: {total}/{total} (100%)" and "\x1b" not in "".join(lines)
    assert len(lines) <= 11
