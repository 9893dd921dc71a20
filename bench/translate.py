"""Translating photos: this package on each backend against the official network in PyTorch (issue 36).

The official ResNet-9 generator with random weights, the same for both: the PyTorch network of
``tests/torch_reference.py`` saved as an official checkpoint and converted (``cyclegan-keras convert``).
Each case runs in a process of its own; its peak resident memory comes from ``getrusage``. Cases:

- ``network``: one photo through the network alone (the official network under ``torch.no_grad()``;
  this package's ``KerasRunner.run_float`` on each backend), first call (with compilation) and second;
- ``command``: the whole ``cyclegan-keras translate`` command on one photo, start-up included;
- ``folder``: a folder of photos at 256 px, photos per second (the official network: decode, translate
  and save each in a loop, as its test script does).

    python bench/translate.py                               # 256 px, 1 MP and 6 MP; 120 photos
    python bench/translate.py --sizes 256,1024 --folder 30 --backends tensorflow
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CHILD = r"""
import json, os, resource, sys, time
import numpy as np
case, backend, model, photo = sys.argv[1:5]
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if backend == "official":
    import torch
    from PIL import Image
    from tests.torch_reference import ResnetGenerator
    network = ResnetGenerator(64, n_blocks=9).eval()
    network.load_state_dict({k: torch.from_numpy(v) for k, v in np.load(model).items()})
    def run(pixels):
        with torch.no_grad():
            x = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
            y = network(x)[0].permute(1, 2, 0).numpy()
        return np.clip(np.rint((y + 1) * 127.5), 0, 255).astype(np.uint8)
else:
    os.environ["KERAS_BACKEND"] = backend
    import keras
    from cyclegan_keras.deploy.runners import KerasRunner
    runner = KerasRunner(keras.models.load_model(model))
    run = runner
from PIL import Image
before = rss()
if case == "network":
    pixels = np.asarray(Image.open(photo))
    times = []
    for _ in range(2):
        start = time.perf_counter(); run(pixels); times.append(time.perf_counter() - start)
    print(json.dumps({"first_s": times[0], "second_s": times[1], "peak_gb": rss() / 1e9,
                      "rise_gb": (rss() - before) / 1e9}))
else:  # the official loop over a folder
    names, out = sorted(os.listdir(photo)), sys.argv[5]
    start = time.perf_counter()
    for name in names:
        Image.fromarray(run(np.asarray(Image.open(os.path.join(photo, name)).convert("RGB")))).save(
            os.path.join(out, name))
    print(json.dumps({"photos_per_s": len(names) / (time.perf_counter() - start), "peak_gb": rss() / 1e9}))
"""


def _child(*args: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    result = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, env=env)
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _command(backend: str, model: str, inputs: str, out: str) -> dict:
    """The whole ``translate`` command, wall time and the peak of its process."""
    code = (
        "import resource, sys\nfrom cyclegan_keras.cli import main\n"
        f"status = main(['translate', '--backend', {backend!r}, '--model', {model!r}, {inputs!r}, "
        f"'--out', {out!r}, '--overwrite'])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9)\nsys.exit(status)\n"
    )
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return {"seconds": time.perf_counter() - start, "peak_gb": float(result.stdout.strip().splitlines()[-1])}


def _weights(work: str) -> tuple[str, str]:
    """The official network's random weights as an official checkpoint (``.npz``) and as ``.keras``."""
    import torch

    sys.path.insert(0, REPO)
    from tests.torch_reference import ResnetGenerator

    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in ResnetGenerator(64, n_blocks=9).state_dict().items()}
    npz = os.path.join(work, "official.npz")
    np.savez(npz, **state)
    keras_file = os.path.join(work, "generator_ab.keras")
    convert = [sys.executable, "-m", "cyclegan_keras", "convert", "--pth", npz, "--out", keras_file]
    subprocess.run(convert, check=True, capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return npz, keras_file


def _photo(folder: str, side: int, seed: int = 0) -> str:
    """A photo of the shared horse2zebra subset (or the bundled ones), resized to ``side`` x ``side``."""
    data = os.path.join(os.path.dirname(REPO), "shared", "data", "horse2zebra", "testA")
    if not os.path.isdir(data):
        data = os.path.join(REPO, "cyclegan_keras", "assets", "horse2zebra", "testA")
    names = sorted(os.listdir(data))
    path = os.path.join(folder, f"photo_{side}_{seed}.png")
    Image.open(os.path.join(data, names[seed % len(names)])).convert("RGB").resize((side, side)).save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="256,1024,2448", help="photo sides (1024: 1 MP, 2448: 6 MP; empty: none)"
    )
    parser.add_argument(
        "--folder", type=int, default=120, help="photos at 256 px in the folder case (0: none)"
    )
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    args = parser.parse_args()
    backends = args.backends.split(",")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as work:
        npz, keras_file = _weights(work)
        print("| photo | case | official (PyTorch) | " + " | ".join(backends) + " |")
        print("|---|---|---|" + "---|" * len(backends))
        for side in [int(side) for side in args.sizes.split(",") if side]:
            photo = _photo(work, side)
            results = [_child("network", "official", npz, photo)]
            results += [_child("network", backend, keras_file, photo) for backend in backends]
            cells = [
                f"{r['second_s']:.2f} s (first {r['first_s']:.1f} s), {r['peak_gb']:.2f} GB" for r in results
            ]
            print(f"| {side} px | network | " + " | ".join(cells) + " |")
            runs = [
                _command(backend, keras_file, photo, os.path.join(work, "out.png")) for backend in backends
            ]
            cells = [f"{r['seconds']:.1f} s, {r['peak_gb']:.2f} GB" for r in runs]
            print(f"| {side} px | command | | " + " | ".join(cells) + " |")
        if args.folder:
            folder = os.path.join(work, "folder")
            os.makedirs(folder)
            for i in range(args.folder):
                os.replace(_photo(work, 256, i), os.path.join(folder, f"{i:04d}.png"))
            out = os.path.join(work, "folder_out")
            os.makedirs(out)
            official = _child("folder", "official", npz, folder, out)
            runs = [_command(backend, keras_file, folder, out) for backend in backends]
            cells = [f"{args.folder / r['seconds']:.1f} photos/s, {r['peak_gb']:.2f} GB" for r in runs]
            print(f"| {args.folder} x 256 px | folder | {official['photos_per_s']:.1f} photos/s, "
                  f"{official['peak_gb']:.2f} GB | " + " | ".join(cells) + " |")  # fmt: skip


if __name__ == "__main__":
    main()
