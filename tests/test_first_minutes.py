"""A newcomer's first commands: quiet, quick where nothing needs TensorFlow, honest about precision."""

import json
import os
import subprocess
import sys
import time
import urllib.request
import warnings

import numpy as np
import pytest
from PIL import Image

from cyclegan_keras.cli import main
from cyclegan_keras.system import hardware
from cyclegan_keras.version import __version__
from tests.conftest import REPO, photo_subset

CHECK_IMPORTS = (
    "import sys, contextlib, io\n"
    "from cyclegan_keras.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
    "    main(sys.argv[1:])\n"
    "print(out.getvalue().splitlines()[0] if out.getvalue() else '')\n"
    "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch') if m in sys.modules))\n"
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return {**env, "PYTHONPATH": str(REPO), **extra}


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["pretrained"], ["serve", "--help"]])
def test_commands_that_need_no_model_load_no_framework_and_answer_at_once(args):
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", CHECK_IMPORTS, *args], env=_env(), capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    elapsed = time.monotonic() - start
    first, imported = result.stdout.strip().splitlines()
    assert imported == "[]", result.stdout
    assert elapsed < 3, elapsed  # TensorFlow alone takes longer than that to import
    if args == ["--version"]:
        assert first == f"cyclegan-keras {__version__}"
    if args == ["pretrained"]:
        assert first.split()[:3] == ["name", "translates", "cached"]


def test_start_up_is_quiet_unless_verbose(tiny_generator_file, tmp_path):
    photo = tmp_path / "horse.png"
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(photo)
    base = [sys.executable, "-m", "cyclegan_keras"]
    # TensorFlow's start-up notices are the ones to hide (the PyTorch backend prints none).
    translate = ["translate", "--backend", "tensorflow", "--model", str(tiny_generator_file), str(photo)]
    quiet = subprocess.run([*base, *translate, "--out", str(tmp_path / "a.png")], env=_env(),
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = subprocess.run([*base, "--verbose", *translate, "--out", str(tmp_path / "b.png")], env=_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert loud.returncode == 0
    assert "absl::InitializeLog" in loud.stderr or "I0000" in loud.stderr, loud.stderr  # what was hidden


@pytest.mark.parametrize(
    ("precision", "flags", "accelerators", "warned"),
    [
        ("mixed_bfloat16", {"avx2", "fma"}, [], "10.5x slower"),
        ("mixed_bfloat16", {"avx2", "avx512f", "avx512_bf16"}, [], None),
        ("mixed_bfloat16", {"avx2"}, ["gpu:0"], None),
        ("mixed_float16", {"avx2", "avx512_bf16"}, [], "4.7x slower"),
        ("mixed_float16", {"avx2"}, ["gpu:0"], None),
        ("float32", {"avx2"}, [], None),
    ],
)
def test_precision_warns_where_it_would_be_emulated(precision, flags, accelerators, warned, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset(flags))
    if warned:
        with pytest.warns(UserWarning, match=warned):
            hardware.check_precision(precision, accelerators)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            hardware.check_precision(precision, accelerators)


def test_train_says_what_it_runs_on_first_and_then_what_a_resume_changes(tmp_path, photos, capsys):
    (tmp_path / "data").mkdir()
    data = photo_subset(tmp_path / "data", photos, {"trainA": 2, "trainB": 2})
    out = ["--out", str(tmp_path / "run")]
    args = ["train", "--data-dir", str(data), "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
            "--netd", "n_layers", "--n-layers-d", "2",
            "--load-size", "32", "--crop-size", "32", "--num-samples", "1",
            "--epochs-decay", "0", "--steps-per-epoch", "1"]  # fmt: skip
    assert main([*args, *out, "--epochs", "1", "--verbose", "0"]) == 0
    capsys.readouterr()
    assert main(["train", *out, "--epochs", "2", "--resume", "--verbose", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"cyclegan-keras {__version__}: Keras ") and "on tensorflow" in lines[0]
    assert "devices cpu:0" in lines[0] and lines[0].endswith("precision float32")
    assert lines[1] == "Resuming with --epochs 2 (the run had 1)."


def test_serve_sends_the_headers_that_enable_threads(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "model.json").write_text(json.dumps({"litertjs": "2.5.3"}))
    (site / "index.html").write_text("<p>zebra</p>")
    server = subprocess.Popen([sys.executable, "-m", "cyclegan_keras", "serve", str(site), "--port", "0"],
                              env=_env(), stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = server.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "index.html", timeout=10) as response:
            assert response.read() == b"<p>zebra</p>"
            assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
            assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_a_folder_that_is_not_a_web_export(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", str(tmp_path)])
    assert exit_info.value.code == 2 and "is not a web export" in capsys.readouterr().err
