"""Video without flicker (issue 37): flicker, frames per second and memory of ``translate_video``.

The clip is a real photo of the shared horse2zebra subset panned by a known number of pixels per frame,
with mild sensor noise, encoded as H.264: the motion is known exactly. Flicker is the mean absolute
difference between output frame t+1 and output frame t shifted by that motion, divided by the same for
the input frames (1.0: the output changes no more than the input does). Measured for each
``--video-stats`` mode, with the official-size ResNet-9 (random weights) and with a trained generator
(the demo's: ``cyclegan-keras demo``, trained here unless ``--trained`` names one). Frames per second:
the whole ``translate_video`` (decode, translate, encode) against the same frames translated as photos
in a loop (network only), each mode right after such a loop (this VM's speed drifts), median of
``--rounds``. Memory: the peak of a process translating a 10-second and a 2-minute clip.

    python bench/video.py                        # trains the demo generator first (a few minutes)
    python bench/video.py --trained run/generator_ab.keras --frames 60 --memory-seconds 10,120
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
sys.path.insert(0, REPO)
RATE = 30
# Pixels left out at each border when comparing frames.
MARGIN = 16


def panned_clip(path: str, frames: int, side: int, shift: int, noise: float = 2.0, seed: int = 0) -> None:
    """A ``side`` x ``side`` H.264 clip of a shared horse photo panned ``shift`` px a frame, with Gaussian
    noise of ``noise`` levels on every frame."""
    import av

    data = os.path.join(os.path.dirname(REPO), "shared", "data", "horse2zebra", "testA")
    if not os.path.isdir(data):
        data = os.path.join(REPO, "cyclegan_keras", "assets", "horse2zebra", "testA")
    photo = Image.open(os.path.join(data, sorted(os.listdir(data))[seed])).convert("RGB")
    scene = np.asarray(photo.resize((side + shift * frames, side), Image.BICUBIC), np.float32)
    rng = np.random.default_rng(seed)
    with av.open(path, "w") as container:
        stream = container.add_stream("libx264", rate=RATE)
        stream.width = stream.height = side
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "12"}
        for t in range(frames):
            window = scene[:, t * shift : t * shift + side] + rng.normal(0, noise, (side, side, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(np.rint(window), 0, 255).astype(np.uint8), "rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def decoded(path: str) -> np.ndarray:
    import av

    with av.open(path) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.float32)


def motion_difference(frames: np.ndarray, shift: int, margin: int = MARGIN) -> float:
    """Mean |frame t+1 - frame t moved by the pan| away from the borders (where the reflection padding
    sees other pixels as the scene moves): what changes beyond the known motion."""
    later = frames[1:, margin:-margin, margin : frames.shape[2] - shift - margin]
    earlier = frames[:-1, margin:-margin, shift + margin : frames.shape[2] - margin]
    return float(np.mean(np.abs(later - earlier)))


def flicker(source: str, out: str, shift: int) -> float:
    return motion_difference(decoded(out), shift) / motion_difference(decoded(source), shift)


def _official_generator(work: str) -> str:
    import keras

    from cyclegan_keras import resnet_generator

    path = os.path.join(work, "official_random.keras")
    keras.utils.set_random_seed(0)
    resnet_generator(9, ngf=64).save(path)
    return path


def _trained_generator(work: str, epochs: int) -> str:
    from cyclegan_keras.cli.demo import run_demo

    start = time.perf_counter()
    run_demo(os.path.join(work, "demo"), epochs=epochs)
    print(f"(demo generator trained for {epochs} epochs in {time.perf_counter() - start:.0f} s)")
    return os.path.join(work, "demo", "run", "generator_ab.keras")


def modes_table(
    name: str, model: str, clip: str, work: str, shift: int, momenta: list[float], strides: list[int],
    rounds: int,
) -> None:  # fmt: skip
    """Flicker and frames per second of each mode. This VM's speed drifts between minutes, so each mode's
    run comes right after the photos loop it is compared with, ``rounds`` times; the median ratio."""
    from cyclegan_keras.deploy.runners import load_runner
    from cyclegan_keras.video.translate import translate_video

    runner = load_runner(model)
    frames = decoded(clip).astype(np.uint8)
    runner(frames[0])  # first call's set-up out of the timings

    def photos_fps() -> float:
        start = time.perf_counter()
        for frame in frames:
            runner(frame)
        return len(frames) / (time.perf_counter() - start)

    cases = [("frame", {}, "frame")]
    cases += [("clip", {"stats_stride": k}, f"clip, --stats-stride {k}") for k in strides]
    cases += [("running", {"stats_momentum": m}, f"running {m}") for m in momenta]
    results = {}
    for number, (mode, options, label) in enumerate(cases):
        out = os.path.join(work, f"{name}_{number}.mp4")
        pairs = []
        for _ in range(rounds):
            loop = photos_fps()
            result = translate_video(runner, clip, out, video_stats=mode, overwrite=True, **options)
            pairs.append((result.fps, loop))
        ratio = float(np.median([fps / loop for fps, loop in pairs]))
        results[label] = (flicker(clip, out, shift), np.median([p[0] for p in pairs]), ratio)
    base = results["frame"][0]
    print(f"\n{name}: {len(frames)} frames, each mode {rounds} times after a photos loop")
    print("| --video-stats | flicker | vs frame | frames/s | vs photos |\n|---|---|---|---|---|")
    for label, (ratio, fps, speed) in results.items():
        print(f"| {label} | {ratio:.3f} | {ratio / base - 1:+.0%} | {fps:.2f} | {speed:.2f}x |")


_MEMORY_CHILD = r"""
import json, resource, sys, time
from cyclegan_keras.deploy.runners import load_runner
from cyclegan_keras.video.translate import translate_video
model, clip, out = sys.argv[1:4]
result = translate_video(load_runner(model), clip, out)
print(json.dumps({"frames": result.frames, "fps": result.fps,
                  "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}))
"""


def memory_table(model: str, work: str, side: int, seconds: list[int], shift: int) -> None:
    print("\n| clip | frames | frames/s | peak memory |\n|---|---|---|---|")
    peaks = []
    for length in seconds:
        clip = os.path.join(work, f"memory_{length}s.mp4")
        frames = length * RATE
        panned_clip(clip, frames, side, shift=0 if frames * shift > 4000 else shift)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO}
        out = os.path.join(work, f"memory_{length}s_out.mp4")
        done = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, model, clip, out], capture_output=True,
                              text=True, env=env)  # fmt: skip
        if done.returncode:
            raise RuntimeError(done.stderr[-3000:])
        found = json.loads(done.stdout.strip().splitlines()[-1])
        peaks.append(found["peak_gb"])
        print(
            f"| {length} s at {side} px | {found['frames']} | {found['fps']:.1f} | "
            f"{found['peak_gb']:.3f} GB |"
        )
    print(f"longest / shortest peak: {peaks[-1] / peaks[0]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", help="a trained .keras generator (default: train the demo's)")
    parser.add_argument("--demo-epochs", type=int, default=30)
    parser.add_argument("--frames", type=int, default=60, help="frames of the panned clip")
    parser.add_argument("--side", type=int, default=128, help="the clip's side in pixels")
    parser.add_argument("--shift", type=int, default=4, help="pan in pixels per frame (a multiple of the "
                        "generators' stride of 4 keeps a convolution's output a shifted copy)")  # fmt: skip
    parser.add_argument("--work", help="keep the clips and the trained generator in this folder")
    parser.add_argument("--momenta", default="0.8,0.9,0.95", help="running modes' momenta")
    parser.add_argument("--strides", default="1,4,16", help="clip modes' --stats-stride values")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each mode, each after a photos loop")
    parser.add_argument("--memory-seconds", default="10,120", help="clip lengths of the memory case")
    parser.add_argument("--memory-side", type=int, default=128)
    parser.add_argument("--skip-official", action="store_true")
    args = parser.parse_args()
    import keras

    flags = [
        f for f in open("/proc/cpuinfo").read().split() if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}
    ]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {sorted(set(flags))}, "
          f"Keras backend {keras.backend.backend()}")  # fmt: skip
    momenta = [float(m) for m in args.momenta.split(",") if m]
    strides = [int(k) for k in args.strides.split(",") if k]
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or temporary
        os.makedirs(work, exist_ok=True)
        clip = os.path.join(work, "panned.mp4")
        panned_clip(clip, args.frames, args.side, args.shift)
        print(f"clip: {args.frames} frames at {args.side} px, {args.shift} px a frame, {RATE} fps")
        kept = os.path.join(work, "demo", "run", "generator_ab.keras")
        trained = args.trained or (
            kept if os.path.exists(kept) else _trained_generator(work, args.demo_epochs)
        )
        settings = (clip, work, args.shift, momenta, strides, args.rounds)
        modes_table("trained (demo generator)", trained, *settings)
        if not args.skip_official:
            modes_table("official size (ResNet-9, random)", _official_generator(work), *settings)
        seconds = [int(s) for s in args.memory_seconds.split(",") if s]
        if seconds:
            memory_table(trained, work, args.memory_side, seconds, args.shift)


if __name__ == "__main__":
    main()
