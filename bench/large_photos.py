"""Large photos: peak memory, time and accuracy of whole-photo and tiled translation.

For each size (megapixels) and mode, a process of its own translates one photo and reports its time;
its peak resident memory comes from the operating system (``getrusage`` in that process). Modes:

- ``whole``: the whole photo in one call, as ``translate`` runs a photo that fits its budget
  (``KerasRunner.run_float``: compiled, or PyTorch's own functions; each tensor freed after its last
  reader), only where its estimate fits the machine's memory;
- ``exact`` and ``thumbnail``: ``cyclegan_keras.deploy.tiling`` with ``--tile`` and ``--max-memory``;
- ``naive``: the usual workaround, each tile translated on its own (its own statistics), for contrast.

Printed per mode: seconds, seconds per megapixel against whole-photo translation's (the largest size
where that ran), peak memory, the difference from the whole-photo result where there is one (max abs
on [-1, 1], PSNR), and a seam measure: the mean absolute difference between neighbouring pixels across
tile borders divided by the same away from them (1.0: borders look like anywhere else).

The photo is a mosaic of the horse2zebra test photos (enlarged to 391 px pieces, whose edges tile borders
rarely meet), so it has a real photo's statistics at every size:

    python bench/large_photos.py --sizes 1,6,12,24 --tile 512 --max-memory 3G
    python bench/large_photos.py --model run/generator_ab.keras --sizes 1,2
    python bench/large_photos.py --sizes 1,24 --modes whole,exact --whole-up-to 1 --repeat 3

``--repeat N`` runs every row N times and shows the fastest (a shared machine's slow spells otherwise
move a ratio by a third) with the highest peak.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared horse2zebra subset next to the repository, else the few photos bundled with the package.
DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "horse2zebra")
if not os.path.isdir(DATA):
    DATA = os.path.join(REPO, "cyclegan_keras", "assets", "horse2zebra")
MODES = ("whole", "exact", "thumbnail", "naive")
PIECE = 391  # prime: the mosaic's own edges rarely meet tile borders


def mosaic(megapixels: float, multiple: int) -> np.ndarray:
    """A 3:2 photo of about this many megapixels, sides multiples of ``multiple``, from the test photos."""
    from PIL import Image

    width = int(round((megapixels * 1e6 * 1.5) ** 0.5 / multiple)) * multiple
    height = int(round(width / 1.5 / multiple)) * multiple
    names = sorted(
        os.path.join(DATA, split, name)
        for split in ("testA", "testB")
        for name in os.listdir(os.path.join(DATA, split))
    )
    pieces = [np.asarray(Image.open(n).convert("RGB").resize((PIECE, PIECE), Image.BICUBIC)) for n in names]
    photo = np.empty((height, width, 3), np.uint8)
    k = 0
    for y in range(0, height, PIECE):
        for x in range(0, width, PIECE):
            piece = pieces[k % len(pieces)]
            k += 7  # a stride prime to the count: neighbours differ
            photo[y : y + PIECE, x : x + PIECE] = piece[: height - y, : width - x]
    return photo


def seam_ratio(out: np.ndarray, tile: int) -> float:
    """Neighbour differences across tile borders over those elsewhere (rows and columns together)."""
    out = out.astype(np.float32)
    rows = np.abs(np.diff(out, axis=0)).mean(axis=(1, 2))  # rows[i]: between row i and i + 1
    cols = np.abs(np.diff(out, axis=1)).mean(axis=(0, 2))
    ratios = []
    for diffs in (rows, cols):
        border = np.zeros(len(diffs), bool)
        border[tile - 1 :: tile] = True
        if border.any():
            ratios.append((diffs[border].mean(), diffs[~border].mean()))
    return float(sum(b for b, _ in ratios) / sum(i for _, i in ratios))


def child(args) -> None:
    """One translation; prints a JSON line, saves the float output where a comparison needs it."""
    import keras

    from cyclegan_keras import resnet_generator
    from cyclegan_keras.deploy.generators import load_generator
    from cyclegan_keras.deploy.runners import KerasRunner
    from cyclegan_keras.deploy.tiling import TiledGenerator

    if args.model:
        generator = load_generator(args.model)
    else:
        keras.utils.set_random_seed(0)
        generator = resnet_generator(n_blocks=9, ngf=64)
    tiled = TiledGenerator(generator)
    photo = mosaic(args.mp, tiled.multiple)
    image = photo.astype(np.float32) / 127.5 - 1.0
    del photo
    # ``default``: what ``translate`` takes when no --max-memory is given.
    budget = KerasRunner(generator).max_memory if args.max_memory == "default" else args.max_memory
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    if args.mode == "whole":  # as ``translate`` runs a photo that fits: one call holding only live tensors
        out = KerasRunner(generator, max_memory="1T").run_float(image[None])[0]
    elif args.mode == "naive":
        out = np.empty(image.shape[:2] + (generator.outputs[0].shape[-1],), np.float32)
        height, width = image.shape[:2]
        for y in range(0, height, args.tile):
            for x in range(0, width, args.tile):
                y, x = min(y, height - args.tile), min(x, width - args.tile)  # whole tiles at the edges
                part = image[y : y + args.tile, x : x + args.tile][None]
                out[y : y + args.tile, x : x + args.tile] = keras.ops.convert_to_numpy(generator(part))[0]
    else:
        from cyclegan_keras.system.hardware import memory_size

        plan = tiled.plan(*image.shape[:2], args.tile, args.mode == "exact")
        memory = tiled.array_memory(memory_size(budget), *image.shape[:2], plan["tile_bytes"])
        out = tiled(image, args.tile, args.mode, memory=memory)
    seconds = time.perf_counter() - start
    if args.save:
        np.save(args.save, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    result = {"seconds": seconds, "pixels": out.shape[0] * out.shape[1], "seams": seam_ratio(out, args.tile)}
    print(json.dumps({**result, "peak_gb": peak / 2**20, "base_gb": base / 2**20}))


def measure(args, mp: float, mode: str, save: str | None) -> dict:
    tile = args.thumbnail_tile if mode == "thumbnail" and args.thumbnail_tile else args.tile
    command = [sys.executable, __file__, "--child", "--mp", str(mp), "--mode", mode, "--tile", str(tile)]
    command += ["--max-memory", args.max_memory] + (["--model", args.model] if args.model else [])
    command += ["--save", save] if save else []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    out, err = process.communicate()
    if process.returncode:
        return {"error": (err.strip().splitlines() or ["?"])[-1]}
    return json.loads(out.strip().splitlines()[-1])


def _positive(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of runs, 1 or more, got {text!r}")
    return value


def best_of(args, mp: float, mode: str, save: str | None) -> dict:
    """The fastest of ``--repeat`` runs (this machine has slow spells), with the highest peak of them."""
    results = [measure(args, mp, mode, save) for _ in range(args.repeat)]
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    return {**min(results, key=lambda r: r["seconds"]), "peak_gb": max(r["peak_gb"] for r in results)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,6,12,24", help="megapixels, comma-separated")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--thumbnail-tile", type=int, help="the tile of thumbnail mode (default: --tile)")
    parser.add_argument("--max-memory", default="3G", help="a size, or default: translate's own default")
    parser.add_argument("--model", help="a generator file (default: official-size ResNet-9, seeded weights)")
    parser.add_argument(
        "--whole-up-to", type=float, default=2.0, help="largest megapixels to translate whole"
    )
    parser.add_argument("--repeat", type=_positive, default=1, help="runs of each row; the fastest is shown")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mp", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.max_memory != "default":
        from cyclegan_keras.errors import UsageError
        from cyclegan_keras.system.hardware import memory_size

        try:
            memory_size(args.max_memory)
        except UsageError as error:
            parser.error(str(error))
    from cyclegan_keras.system.hardware import cpu_flags

    flags = sorted(
        f for f in cpu_flags() or () if f.startswith(("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx"))
    )
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, flags: {' '.join(flags)}")
    print(
        f"# model: {args.model or 'resnet_9blocks ngf 64 (seeded)'}, tile {args.tile} "
        f"(thumbnail: {args.thumbnail_tile or args.tile}), "
        f"--max-memory {args.max_memory}, best of {args.repeat}"
    )
    print("| MP | mode | s | s/MP vs whole | peak GB (before) | max abs vs whole | PSNR dB | seam ratio |")
    print("|---|---|---|---|---|---|---|---|")
    whole_rate = None
    with tempfile.TemporaryDirectory() as folder:
        for mp in [float(s) for s in args.sizes.split(",")]:
            fits = mp <= args.whole_up_to
            reference = None
            for mode in args.modes.split(","):
                if mode == "whole" and not fits:
                    print(f"| {mp:g} | whole | - | - | - | - | - | not run: over --whole-up-to |")
                    continue
                save = os.path.join(folder, f"{mp}-{mode}.npy") if fits else None
                result = best_of(args, mp, mode, save)
                if "error" in result:
                    print(f"| {mp:g} | {mode} | failed: {result['error']} |")
                    continue
                rate = result["seconds"] / (result["pixels"] / 1e6)
                if mode == "whole":
                    whole_rate, reference = rate, np.load(save)
                ratio = f"{rate / whole_rate:.2f}x" if whole_rate else "-"
                diff = psnr = "-"
                if reference is not None and mode != "whole":
                    out = np.load(save)
                    error = np.abs(out - reference)
                    mse = float(np.mean(error**2))
                    diff = f"{error.max():.2e}"
                    psnr = f"{10 * np.log10(4.0 / mse):.1f}" if mse else "inf"
                peak = f"{result['peak_gb']:.2f} ({result['base_gb']:.2f})"
                row = [
                    f"{mp:g}",
                    mode,
                    f"{result['seconds']:.1f}",
                    ratio,
                    peak,
                    diff,
                    psnr,
                    f"{result['seams']:.3f}",
                ]
                print(f"| {' | '.join(row)} |", flush=True)


if __name__ == "__main__":
    main()
