"""The web app's translation time in headless Chromium against LiteRT in Python, same file and photo.

    python bench/web.py [--size 256] [--repeat 10] [--model generator_ab.keras --screenshot page.png]

Exports a float32 ResNet 9-block generator (ngf 64, random weights: the time does not depend on them)
with ``--format web``, serves it from 127.0.0.1 with the cross-origin isolation headers that allow
WebAssembly threads, opens ``index.html?src=photo&repeat=N`` in Debian's headless Chromium (through
chromedriver) and reads the page's median time; then times the same ``.tflite`` on the same photo
with the LiteRT interpreter in Python (2 threads). Needs the LiteRT.js runtime in the cache or from
the npm registry, and ``selenium``.

Both are also given as GFLOP/s of the convolutions (about 99 GFLOP per 256 px image, nine tenths of
it in the residual blocks), to compare with what the CPU's SIMD width allows. ``--variant no-norm``
(instance norms left out) and ``--variant zero-pad`` (zero instead of reflection padding) show how
much of the gap the non-convolution ops make; ``--variant plain-convs`` exports the transposed and
RGB-end convs as they are instead of in sub-pixel form (``cyclegan_keras.deploy.subpixel``).
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tests.test_web import _open, _Server  # noqa: E402  (the test's server and page driver)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--screenshot", help="save a screenshot of the page here")
    parser.add_argument("--variant", choices=("full", "no-norm", "zero-pad", "plain-convs"), default="full")
    parser.add_argument(
        "--model", help="a trained generator (.keras) instead of the random 9-block one (for a screenshot)"
    )
    args = parser.parse_args()
    if args.screenshot and os.path.exists(args.screenshot):
        parser.error(f"--screenshot {args.screenshot} exists; name a new file (nothing is overwritten)")
    import keras
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from cyclegan_keras import resnet_generator
    from cyclegan_keras.deploy.formats.tflite import LiteRTRunner
    from cyclegan_keras.deploy.formats.web import export_web

    flags = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    isa = sorted({f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16") if f" {f} " in flags})
    print(f"CPU flags: {', '.join(isa)}; {os.cpu_count()} cores; {platform.python_version()}")
    keras.utils.set_random_seed(0)
    if args.model:
        generator = keras.models.load_model(args.model, safe_mode=True)
    else:
        generator = resnet_generator(9, 64, name="horse2zebra")
    generator = _variant(generator, args.variant)
    if args.variant == "plain-convs":
        import cyclegan_keras.deploy.export

        cyclegan_keras.deploy.export.subpixel_convs = lambda model: model
    work = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, work, ignore_errors=True)  # at exit, an error or Ctrl-C included
    site = os.path.join(work, "site")
    model = export_web(generator, site, input_size=args.size)
    photos = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "cyclegan_keras",
                          "assets", "horse2zebra", "testA")  # fmt: skip
    photo = Image.open(os.path.join(photos, sorted(os.listdir(photos))[0])).convert("RGB")
    photo.resize((args.size, args.size), Image.BICUBIC).save(os.path.join(site, "photo.png"))

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=420,1400"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    server = _Server(site)
    try:
        state = _open(browser, f"{server.url}index.html?src=photo.png&repeat={args.repeat}", timeout=600)
        if args.screenshot:
            browser.save_screenshot(args.screenshot)
        threads = browser.execute_script("return navigator.hardwareConcurrency")
    finally:
        server.stop()
        browser.quit()
    if state["status"] != "done":
        raise SystemExit(f"the page failed: {state['status']}")
    page_ms = float(state["latencyMs"])

    runner = LiteRTRunner(model, threads=2)
    batch = np.asarray(Image.open(os.path.join(site, "photo.png")), np.float32)[None] / 127.5 - 1
    runner.run_float(batch)
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        runner.run_float(batch)
        times.append(1000 * (time.perf_counter() - start))
    python_ms = float(np.median(times))
    gflop = _conv_flops(generator, args.size) / 1e9
    rates = f"page {gflop / page_ms * 1000:.0f} GFLOP/s, Python {gflop / python_ms * 1000:.0f} GFLOP/s"
    print(f"{gflop:.1f} GFLOP of convolutions: {rates}")
    print(f"| {args.size} px float32 {args.variant} | page ({state['backend']}, threads {state['threads']}, "
          f"{threads} hardware threads) {page_ms:.0f} ms | Python LiteRT (2 threads) {python_ms:.0f} ms | "
          f"{page_ms / python_ms:.2f}x |")  # fmt: skip


def _variant(generator, variant: str):
    import keras

    from cyclegan_keras.networks.layers import InstanceNormalization, ReflectionPadding2D

    def swap(layer):
        if variant == "no-norm" and isinstance(layer, InstanceNormalization):
            return keras.layers.Identity(name=layer.name)
        if variant == "zero-pad" and isinstance(layer, ReflectionPadding2D):
            return keras.layers.ZeroPadding2D(layer.padding, name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    swapped = variant in ("no-norm", "zero-pad")
    return keras.models.clone_model(generator, clone_function=swap) if swapped else generator


def _conv_flops(generator, size: int) -> float:
    """Multiply-adds x 2 of every convolution for one ``size`` x ``size`` image."""
    import keras

    convs = [layer for layer in generator.layers if hasattr(layer, "kernel") and len(layer.kernel.shape) == 4]
    # A transposed conv's input pixels each meet the whole kernel; a conv's output pixels do.
    transposed = [isinstance(layer, keras.layers.Conv2DTranspose) for layer in convs]
    probe = keras.Model(generator.input, [c.input if t else c.output for c, t in zip(convs, transposed)])
    shapes = probe.compute_output_shape((1, size, size, generator.input.shape[-1]))
    return sum(2.0 * np.prod(shape[1:3]) * np.prod(c.kernel.shape) for c, shape in zip(convs, shapes))


if __name__ == "__main__":
    main()
