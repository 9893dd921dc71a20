"""Seconds per training step, images per second, achieved GFLOP/s against this machine's float32
matrix-multiply rate measured in the same run, and peak memory.

    python bench/train_step.py --generator resnet_6blocks --size 128 --precision float32
    python bench/train_step.py --generator resnet_6blocks --size 128 --precision mixed_bfloat16
    python bench/train_step.py --kernels   # also: what TensorFlow's conv kernels alone cost
    python bench/train_step.py --backend tensorflow jax torch   # each backend against the official
                                                                # recipe in PyTorch, in one run
"""

from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cyclegan_keras.training.config import GENERATORS, PRECISIONS, TrainConfig  # noqa: E402
from cyclegan_keras.training.loop import build_cyclegan  # noqa: E402


def conv_layers(model: keras.Model, size: int) -> list[tuple[keras.layers.Layer, tuple, int]]:
    """Every conv layer of a network run at ``size`` x ``size``, its input shape and multiply-adds."""
    spec = keras.KerasTensor((1, size, size, 3))
    layers = model.layers[1:]
    outputs = keras.Model(model.inputs, [layer.output for layer in layers]).compute_output_spec(spec)
    found = []
    for layer, out in zip(layers, outputs):
        if isinstance(layer, keras.layers.Conv2DTranspose):
            kh, kw, cout, cin = layer.kernel.shape
            # A "valid" stride-2 transposed conv maps H inputs to 2 (H - 1) + k outputs.
            rows, cols = (out.shape[1] - kh) // 2 + 1, (out.shape[2] - kw) // 2 + 1
            found.append((layer, (1, rows, cols, cin), rows * cols * kh * kw * cin * cout))
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            stride = layer.strides[0]
            rows, cols = ((out.shape[i] - 1) * stride + k for i, k in ((1, kh), (2, kw)))
            macs = out.shape[1] * out.shape[2] * kh * kw * cin * cout
            found.append((layer, (1, rows, cols, cin), macs))
    return found


def conv_macs(model: keras.Model, size: int) -> int:
    """Multiply-adds of one forward pass at ``size`` x ``size``, counted from the conv layers."""
    return sum(macs for _, _, macs in conv_layers(model, size))


def conv_seconds(model: keras.Model, size: int) -> float:
    """Seconds TensorFlow's own kernels take for one forward + backward (input and kernel gradients)
    pass of every conv layer of ``model``, each timed alone: what the step costs if nothing else did."""
    total = 0.0
    for layer, shape, _ in conv_layers(model, size):
        x = tf.random.normal(shape)

        @tf.function
        def forward_backward(x, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x)
            return tape.gradient(y, [x, layer.kernel], output_gradients=tf.ones_like(y))

        forward_backward(x)
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            [g.numpy() for g in forward_backward(x)]
            runs.append(time.perf_counter() - start)
        total += float(np.median(runs))
    return total


GENERATOR_PASSES = 6  # 4 translations + 2 identity passes
DISCRIMINATOR_PASSES = 2 + 4  # D on both fakes in the generator update; D_a and D_b on real and fake


def step_flops(model, size: int, batch: int) -> float:
    """FLOPs of one train_step: forward and backward (2x forward) of every network pass."""
    g = conv_macs(model.generator_ab, size)
    d = conv_macs(model.discriminator_a, size)
    return 2.0 * 3.0 * (GENERATOR_PASSES * g + DISCRIMINATOR_PASSES * d) * batch


def matmul_rate(n: int = 2048, repeats: int = 20) -> float:
    x = tf.random.normal((n, n))
    y = tf.random.normal((n, n))
    mm = tf.function(lambda a, b: tf.matmul(a, b))
    mm(x, y).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        out = mm(x, y)
    out.numpy()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


class StepTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every executed batch (a group of steps_per_execution steps)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--generator", choices=GENERATORS, default="resnet_6blocks")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--jit-compile", action="store_true", help="XLA-compile the step")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument(
        "--kernels",
        action="store_true",
        help="also time every conv layer alone with TensorFlow's kernels (batch 1)",
    )
    parser.add_argument(
        "--inter-op-threads", type=int, default=0, help="ops TensorFlow runs at once (0: its default)"
    )
    parser.add_argument(
        "--backend",
        nargs="+",
        choices=("tensorflow", "jax", "torch"),
        help="time this package's step on these Keras backends (a process each) against the official "
        "recipe in PyTorch, side by side (bench/step_timing.py)",
    )
    args = parser.parse_args()
    if args.backend:
        import step_timing

        print(step_timing.machine())
        rows = step_timing.compare(
            args.backend, args.generator, args.size, args.batch, args.precision, args.steps, repeats=3
        )
        print(step_timing.table(rows))
        return
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)

    rate = matmul_rate()
    keras.config.set_dtype_policy(args.precision)
    config = TrainConfig(generator=args.generator, crop_size=args.size, load_size=args.size)
    model = build_cyclegan(config)
    model.compile(
        generator_optimizer=model.generator_optimizer,
        discriminator_optimizer=model.discriminator_optimizer,
        jit_compile=args.jit_compile,
        steps_per_execution=args.steps_per_execution,
    )
    rng = np.random.default_rng(0)
    shape = (args.batch, args.size, args.size, 3)
    a = rng.uniform(-1, 1, shape).astype("float32")
    b = rng.uniform(-1, 1, shape).astype("float32")
    data = tf.data.Dataset.from_tensors((a, b)).repeat()
    spe = args.steps_per_execution
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=spe, verbose=0)  # trace and first step
    first = time.perf_counter() - start
    timer = StepTimer()
    model.fit(data, epochs=1, steps_per_epoch=args.steps * spe, verbose=0, callbacks=[timer])
    per_step = float(np.median(timer.seconds)) / spe
    fastest = min(timer.seconds) / spe
    rate = max(rate, matmul_rate())  # the machine's speed drifts: set the floor by its better moment
    flops = step_flops(model, args.size, args.batch)
    achieved = flops / per_step / 1e9
    floor = flops / (rate * 1e9)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.generator} {args.size}px batch {args.batch} {args.precision}"
        f"{' xla' if args.jit_compile else ''} steps_per_execution {spe}"
        f" inter-op threads {args.inter_op_threads or 'default'}"
    )
    print(f"  first call (trace + step): {first:.1f} s")
    print(
        f"  {per_step:.3f} s/step (median; fastest {fastest:.3f}),"
        f" {2 * args.batch / per_step:.2f} images/s (both domains)"
    )
    print(f"  {flops / 1e9:.0f} GFLOP/step, {achieved:.0f} GFLOP/s achieved")
    print(f"  float32 matmul rate (better of before, after): {rate:.0f} GFLOP/s -> floor {floor:.2f} s/step")
    print(
        f"  step / floor: {per_step / floor:.2f}x (fastest step {fastest / floor:.2f}x);"
        f" peak memory {peak_mb:.0f} MB"
    )
    if args.kernels:
        convs = GENERATOR_PASSES * conv_seconds(model.generator_ab, args.size)
        convs += DISCRIMINATOR_PASSES * conv_seconds(model.discriminator_a, args.size)
        print(
            f"  the step's convolutions alone, each timed by itself: {convs:.3f} s"
            f" = {convs / floor:.2f}x the floor; the whole step takes {per_step / convs:.2f}x that"
        )


if __name__ == "__main__":
    main()
