"""Seconds per training step: this package on a Keras backend, and the official recipe in PyTorch.

Keras picks one backend per process, so ``compare`` runs each measurement in a process of its own and
prints them side by side with ratios against the official recipe measured in the same run:

    python bench/step_timing.py keras --backend jax --generator resnet_9blocks --size 256 --batch 1
    python bench/step_timing.py official --n-blocks 9 --size 256 --batch 1 [--mixed]
    python bench/step_timing.py interleaved --generator resnet_9blocks --size 32 --steps 4 --repeats 8

``interleaved`` takes PyTorch's step and the official one in turns in one process, for a machine whose
speed drifts between processes.

Each prints one JSON line. Neither imports TensorFlow (the Keras runs train on the Python input
pipeline's kind of data: numpy batches), so both run on a machine that has only PyTorch and JAX.
A step is the whole official update: both generators, the pools, both discriminators.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATOR_BLOCKS = {"resnet_9blocks": 9, "resnet_6blocks": 6}


def _median_step(run_steps, steps: int, repeats: int) -> tuple[float, float]:
    """Median and fastest seconds per step over ``repeats`` timed runs of ``steps`` steps each."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_steps(steps)
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times)), float(min(times))


def keras_step(backend: str, generator: str, size: int, batch: int, precision: str, steps: int, repeats: int):
    """This package's ``CycleGAN.fit`` step on ``backend`` (set before Keras is imported)."""
    run_steps, first = keras_runner(backend, generator, size, batch, precision, steps)
    median, fastest = _median_step(run_steps, steps, repeats)
    return {"what": f"keras {backend}", "first_s": first, "step_s": median, "fastest_s": fastest}


def keras_runner(backend: str, generator: str, size: int, batch: int, precision: str, steps: int):
    """``run_steps(n)``, which runs ``n <= steps`` steps of this package's ``CycleGAN.fit`` on
    ``backend``, after a first call of 2 steps; and that first call's seconds."""
    os.environ["KERAS_BACKEND"] = backend
    sys.path.insert(0, REPO)
    import keras

    from cyclegan_keras.training.config import TrainConfig
    from cyclegan_keras.training.loop import build_cyclegan

    keras.config.set_dtype_policy(precision)
    model = build_cyclegan(TrainConfig(generator=generator, crop_size=size, load_size=size, backend=backend))
    rng = np.random.default_rng(0)
    a = rng.uniform(-1, 1, (batch * steps, size, size, 3)).astype("float32")
    b = rng.uniform(-1, 1, (batch * steps, size, size, 3)).astype("float32")

    def run_steps(n):
        model.fit(a[: n * batch], y=b[: n * batch], batch_size=batch, epochs=1, verbose=0, shuffle=False)

    start = time.perf_counter()
    run_steps(2)  # compile (XLA on JAX and TensorFlow) and the first steps
    return run_steps, time.perf_counter() - start


def official_step(n_blocks: int, size: int, batch: int, mixed: bool, steps: int, repeats: int):
    """The official ``optimize_parameters`` step (networks of ``tests/torch_reference.py``, Adam, LSGAN,
    the 50-image pools), on the GPU when there is one; ``mixed``: ``torch.autocast`` in bfloat16."""
    run_steps, first, device = official_runner(n_blocks, size, batch, mixed)
    median, fastest = _median_step(run_steps, steps, repeats)
    name = "official PyTorch" + (" autocast bf16" if mixed else "")
    return {"what": name, "first_s": first, "step_s": median, "fastest_s": fastest, "device": device}


def official_runner(n_blocks: int, size: int, batch: int, mixed: bool):
    """``run_steps(n)`` of the official step (``official_step``), after a first call of 2 steps; that
    call's seconds; the device."""
    import torch
    from torch import nn

    sys.path.insert(0, REPO)
    from tests import torch_reference as ref

    device = "cuda" if torch.cuda.is_available() else "cpu"
    g_a, g_b = (ref.ResnetGenerator(64, n_blocks).to(device) for _ in range(2))
    d_a, d_b = (ref.NLayerDiscriminator(64).to(device) for _ in range(2))
    opt_g = torch.optim.Adam([*g_a.parameters(), *g_b.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], lr=2e-4, betas=(0.5, 0.999))
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    pools: dict[str, list] = {"a": [], "b": []}

    def gan(scores, real):
        return mse(scores, torch.full_like(scores, 1.0 if real else 0.0))

    def query(pool, images):  # the official ImagePool, image by image on the host's random numbers
        out = []
        for image in images.detach():
            image = image[None]
            if len(pool) < 50:
                pool.append(image)
                out.append(image)
            elif random.random() > 0.5:
                i = random.randint(0, 49)
                out.append(pool[i].clone())
                pool[i] = image
            else:
                out.append(image)
        return torch.cat(out)

    def step(real_a, real_b):
        with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
            fake_b, fake_a = g_a(real_a), g_b(real_b)
            rec_a, rec_b = g_b(fake_b), g_a(fake_a)
            for net in (d_a, d_b):
                net.requires_grad_(False)
            opt_g.zero_grad()
            loss_g = (
                l1(g_a(real_b), real_b) * 5.0 + l1(g_b(real_a), real_a) * 5.0 + gan(d_a(fake_b), True)
                + gan(d_b(fake_a), True) + l1(rec_a, real_a) * 10.0 + l1(rec_b, real_b) * 10.0
            )  # fmt: skip
        loss_g.backward()
        opt_g.step()
        for net in (d_a, d_b):
            net.requires_grad_(True)
        opt_d.zero_grad()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=mixed):
            pooled_b, pooled_a = query(pools["b"], fake_b), query(pools["a"], fake_a)
            loss_d_a = 0.5 * (gan(d_a(real_b), True) + gan(d_a(pooled_b), False))
            loss_d_b = 0.5 * (gan(d_b(real_a), True) + gan(d_b(pooled_a), False))
        loss_d_a.backward()
        loss_d_b.backward()
        opt_d.step()
        return loss_g.detach()

    rng = np.random.default_rng(0)
    images = [
        torch.from_numpy(rng.uniform(-1, 1, (batch, 3, size, size)).astype("float32")).to(device)
        for _ in range(2)
    ]

    def run_steps(n):
        for _ in range(n):
            loss = step(*images)
        float(loss)  # waits for the device

    start = time.perf_counter()
    run_steps(2)
    return run_steps, time.perf_counter() - start, device


def interleaved(generator: str, size: int, batch: int, steps: int, repeats: int) -> dict:
    """The official step and this package's on PyTorch in one process, ``steps`` steps of each in turn,
    ``repeats`` times: on a machine whose speed drifts (a shared VM) each round's ratio compares steps
    taken seconds apart. The medians of the steps and of the rounds' ratios (above 1: faster)."""
    keras_run, _ = keras_runner("torch", generator, size, batch, "float32", steps)
    official_run, _, device = official_runner(GENERATOR_BLOCKS[generator], size, batch, False)
    ours, official = [], []
    for _ in range(repeats):
        for run, times in ((official_run, official), (keras_run, ours)):
            start = time.perf_counter()
            run(steps)
            times.append((time.perf_counter() - start) / steps)
    ratios = [theirs / mine for theirs, mine in zip(official, ours)]
    return {
        "what": "keras torch, interleaved with the official", "official_step_s": float(np.median(official)),
        "step_s": float(np.median(ours)), "vs_official": float(np.median(ratios)),
        "round_ratios": [round(ratio, 3) for ratio in ratios], "device": device,
    }  # fmt: skip


def _run(args: list[str], env: dict) -> dict:
    result = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        return {"what": " ".join(args[:3]), "error": (result.stderr.strip().splitlines() or ["?"])[-1][:300]}
    return json.loads(lines[-1])


def compare(
    backends: list[str], generator: str, size: int, batch: int, precision: str, steps: int, repeats: int
) -> list[dict]:
    """The official recipe and this package on each backend, one process each, in one run; each row
    gets ``vs_official``: the official step's seconds over its own (above 1: faster)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    common = ["--size", str(size), "--batch", str(batch), "--steps", str(steps), "--repeats", str(repeats)]
    mixed = precision != "float32"
    official = _run(["official", "--n-blocks", str(GENERATOR_BLOCKS[generator]), *common,
                     *(["--mixed"] if mixed else [])], env)  # fmt: skip
    rows = [official]
    for backend in backends:
        rows.append(_run(["keras", "--backend", backend, "--generator", generator, "--precision", precision,
                          *common], env))  # fmt: skip
    for row in rows:
        if "step_s" in row and "step_s" in official:
            row["vs_official"] = official["step_s"] / row["step_s"]
        row.update(generator=generator, size=size, batch=batch, precision=precision)
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| what | setting | step (median) | fastest | first call | vs official |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        setting = f"{row['generator']} {row['size']} px, batch {row['batch']}, {row['precision']}"
        if "error" in row:
            lines.append(f"| {row['what']} | {setting} | failed: {row['error']} | | | |")
            continue
        median, fastest = 1000 * row["step_s"], 1000 * row["fastest_s"]
        lines.append(
            f"| {row['what']} | {setting} | {median:.1f} ms | {fastest:.1f} ms | {row['first_s']:.1f} s | "
            f"{row.get('vs_official', float('nan')):.2f}x |"
        )
    return "\n".join(lines)


def machine() -> str:
    """The CPU and its vector flags (and the GPU, if PyTorch sees one)."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as file:
            found = next(line for line in file if line.startswith("flags")).split()
        wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16")
        flags = " ".join(flag for flag in wanted if flag in found)
    except (OSError, StopIteration):
        pass
    text = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, flags: {flags or 'n/a'}"
    try:
        import torch

        if torch.cuda.is_available():
            text += f"; GPU: {torch.cuda.get_device_name()}"
    except ImportError:
        pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=("keras", "official", "interleaved"))
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--generator", choices=GENERATOR_BLOCKS, default="resnet_9blocks")
    parser.add_argument("--n-blocks", type=int, default=9)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--mixed", action="store_true")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.what == "interleaved":
        row = interleaved(args.generator, args.size, args.batch, args.steps, args.repeats)
    elif args.what == "keras":
        row = keras_step(args.backend, args.generator, args.size, args.batch, args.precision, args.steps,
                         args.repeats)  # fmt: skip
    else:
        row = official_step(args.n_blocks, args.size, args.batch, args.mixed, args.steps, args.repeats)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
