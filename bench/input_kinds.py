"""Seconds per training step by the kind of input ``fit`` gets (issue 39): a ``tf.data`` pipeline (the
baseline, where TensorFlow is installed), numpy arrays, a Python generator of numpy pairs, and a
``keras.utils.PyDataset``, the same batches each, in one process on one backend.

    KERAS_BACKEND=tensorflow python bench/input_kinds.py --generator resnet_6blocks --size 128
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from cyclegan_keras.training.config import GENERATORS, TrainConfig  # noqa: E402
from cyclegan_keras.training.loop import build_cyclegan  # noqa: E402


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


class Pairs(keras.utils.PyDataset):
    def __init__(self, a, b, steps):
        super().__init__()
        self.a, self.b, self.steps = a, b, steps

    def __len__(self):
        return self.steps

    def __getitem__(self, index):
        i = index % len(self.a)
        return self.a[i : i + 1], self.b[i : i + 1]


def inputs(a: np.ndarray, b: np.ndarray, steps: int) -> dict:
    """Each kind of input, giving the same ``steps`` batches of one pair."""

    def pairs():
        while True:
            for i in range(len(a)):
                yield a[i : i + 1], b[i : i + 1]

    kinds = {
        "numpy arrays": lambda: {"x": {"a": a[:steps], "b": b[:steps]}, "batch_size": 1},
        "Python generator": lambda: {"x": pairs(), "steps_per_epoch": steps},
        "PyDataset": lambda: {"x": Pairs(a, b, steps)},
    }
    if keras.backend.backend() == "tensorflow" or _has_tensorflow():
        import tensorflow as tf

        kinds = {
            "tf.data": lambda: {
                "x": tf.data.Dataset.from_tensor_slices((a, b)).batch(1).repeat(),
                "steps_per_epoch": steps,
            },
            **kinds,
        }
    return kinds


def _has_tensorflow() -> bool:
    import importlib.util

    return importlib.util.find_spec("tensorflow") is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", choices=GENERATORS, default="resnet_6blocks")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2, help="each kind timed this many times, in turn")
    args = parser.parse_args()
    config = TrainConfig(generator=args.generator, crop_size=args.size, load_size=args.size)
    model = build_cyclegan(config)
    rng = np.random.default_rng(0)
    shape = (args.steps, args.size, args.size, 3)
    a, b = (rng.uniform(-1, 1, shape).astype("float32") for _ in range(2))
    kinds = inputs(a, b, args.steps)
    found: dict[str, list[float]] = {name: [] for name in kinds}
    for _ in range(args.rounds):
        for name, make in kinds.items():
            timer = StepTimer()
            model.fit(**make(), epochs=1, verbose=0, shuffle=False, callbacks=[timer])
            found[name].append(float(np.median(timer.seconds[1:])))  # the first may trace
    flags = [f for f in open("/proc/cpuinfo").read().split() if f in {"avx2", "avx512f", "avx512_bf16"}]
    print(f"{keras.backend.backend()}, {args.generator} {args.size} px, batch 1, float32; "
          f"{os.cpu_count()} cores, {sorted(set(flags))}")  # fmt: skip
    base_name = next(iter(found))
    base = min(found[base_name])
    print(f"| input | step (best of {args.rounds} medians) | vs {base_name} |\n|---|---|---|")
    for name, seconds in found.items():
        print(f"| {name} | {min(seconds) * 1000:.0f} ms | {min(seconds) / base:.2f}x |")


if __name__ == "__main__":
    main()
