"""The GPU figure: this package on JAX and on PyTorch against the official recipe in PyTorch, one run.

The official setting (256 px, ResNet 9 blocks) at batch 1 and 4, in float32 and mixed precision, each
backend with its own defaults; the median step after warm-up (``bench/step_timing.py``). Made for a
GPU machine that has PyTorch and JAX but no TensorFlow and no package registry: it imports no
TensorFlow, and Keras travels as wheels (``bench/gpu_wheels.sh`` fetches them here, 2 MB):

    bash bench/gpu_wheels.sh                       # here, once: Keras and its two missing needs in .whl/
    # there, in the repository's root:
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site:. python3 bench/gpu_train_step.py --out $OUT/gpu.md

Try it on a CPU with small settings first: ``--size 32 --generator resnet_6blocks --batches 1
--precisions float32 --steps 2 --repeats 1``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import step_timing  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", nargs="+", default=["jax", "torch"])
    parser.add_argument("--generator", choices=step_timing.GENERATOR_BLOCKS, default="resnet_9blocks")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--precisions", nargs="+", default=["float32", "mixed_bfloat16"])
    parser.add_argument("--steps", type=int, default=10, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (the median is reported)")
    parser.add_argument("--out", help="also write the table (and a .json beside it) here")
    args = parser.parse_args()

    started = time.strftime("%Y-%m-%d %H:%M")
    header = f"{step_timing.machine()}; {started}"
    print(header, flush=True)
    rows = []
    for precision in args.precisions:
        for batch in args.batches:
            found = step_timing.compare(
                args.backends, args.generator, args.size, batch, precision, args.steps, args.repeats
            )
            print(step_timing.table(found), flush=True)
            rows += found
            if args.out:  # after every setting: a run cut short still leaves what it measured
                with open(args.out, "w") as file:
                    file.write(f"{header}\n\n{step_timing.table(rows)}\n")
                with open(os.path.splitext(args.out)[0] + ".json", "w") as file:
                    json.dump({"machine": header, "rows": rows}, file, indent=2)
    print(step_timing.table(rows))


if __name__ == "__main__":
    main()
