"""LiteRT export figures for the 9-block 256 px generator: size, error against Keras, and latency of
every variant against the TensorFlow forward pass of the same generator, measured in one run.

Quantization quality needs trained weights, so by default the script first trains the 9-block
generator briefly on real horse and zebra photos (at 64 px crops: the network is fully
convolutional), or takes ``--model generator_ab.keras``.

    python bench/export_generator.py [--model FILE] [--threads 2] [--train-steps 150]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from cyclegan_keras.deploy.formats.tflite import export_tflite  # noqa: E402
from cyclegan_keras.deploy.verify import TABLE_HEADER, verification_photos, verify_export  # noqa: E402
from cyclegan_keras.training.loop import TrainConfig, build_cyclegan  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "horse2zebra")


def trained_generator(data: str, steps: int) -> keras.Model:
    from cyclegan_keras.data.tf_data import train_dataset

    config = TrainConfig(load_size=72, crop_size=64, lr=5e-4, pool_size=50)
    keras.utils.set_random_seed(0)
    model = build_cyclegan(config)
    pipeline = train_dataset(
        os.path.join(data, "trainA"), os.path.join(data, "trainB"), preprocessing=config.preprocessing()
    )
    model.fit(pipeline.dataset, epochs=1, steps_per_epoch=steps, verbose=2)
    return model.generator_ab


def conv_kernel_speedups(threads: int) -> dict[str, float]:
    """How much faster LiteRT runs one residual-block convolution (3x3, 256 -> 256 channels, 64x64,
    the generator's bulk) when quantized than in float32: the ceiling for the whole generator."""
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    inputs = keras.Input((64, 64, 256), batch_size=1)
    conv = keras.Model(inputs, keras.layers.Conv2D(256, 3, padding="same")(inputs))
    rng = np.random.default_rng(0)
    samples = [rng.normal(size=(1, 64, 64, 256)).astype("float32") for _ in range(4)]
    times = {}
    for quantize in ("float32", "dynamic", "int8"):
        with contextlib.redirect_stdout(io.StringIO()):  # the converter prints the traced endpoint
            converter = tf.lite.TFLiteConverter.from_keras_model(conv)
            if quantize != "float32":
                converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantize == "int8":
                converter.representative_dataset = lambda: ([x] for x in samples)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            flatbuffer = converter.convert()
        interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
        interpreter.allocate_tensors()
        index = interpreter.get_input_details()[0]["index"]
        interpreter.set_tensor(index, samples[0])
        runs = []
        for _ in range(11):
            start = time.perf_counter()
            interpreter.invoke()
            runs.append(time.perf_counter() - start)
        times[quantize] = min(runs[1:])
    return {quantize: times["float32"] / seconds for quantize, seconds in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="a trained .keras generator (default: train one briefly)")
    parser.add_argument("--data", default=DEFAULT_DATA)
    parser.add_argument("--train-steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    generator = (
        keras.models.load_model(args.model) if args.model else trained_generator(args.data, args.train_steps)
    )
    photos = verification_photos(os.path.join(args.data, "testA"), args.size, count=8)
    calibration = verification_photos(os.path.join(args.data, "trainA"), args.size, count=32)
    print(f"{generator.count_params():,} parameters, {args.size}x{args.size}, {args.threads} threads")
    print(TABLE_HEADER)
    with tempfile.TemporaryDirectory() as folder:
        for quantize in (None, "float16", "dynamic", "int8"):
            path = os.path.join(folder, f"{quantize or 'float32'}.tflite")
            export_tflite(generator, path, quantize=quantize, input_size=args.size, calibration=calibration)
            result = verify_export(generator, path, photos, kind=quantize or "float32", threads=args.threads)
            print(result.row(), f"{result.latency_ms / result.keras_latency_ms:.2f}x TF")
    speedups = conv_kernel_speedups(args.threads)
    print(
        "One 3x3 256-channel conv at 64x64, speed-up over LiteRT float32: "
        + ", ".join(f"{quantize} {ratio:.2f}x" for quantize, ratio in speedups.items())
    )


if __name__ == "__main__":
    main()
