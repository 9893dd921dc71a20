"""Images per second of the training input pipeline on real JPEGs, 286 -> 256, against a bare
decode-resize-crop tf.data pipeline measured in the same run.

    python bench/data_pipeline.py [--data ../shared/data/horse2zebra] [--images 2000]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from cyclegan_keras.data.images import image_files  # noqa: E402
from cyclegan_keras.data.tf_data import Preprocessing, train_dataset  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = os.path.join(HERE, "..", "..", "shared", "data", "horse2zebra")


def rate(dataset: tf.data.Dataset, images: int, per_element: int) -> float:
    iterator = iter(dataset)
    for _ in range(50):  # warm-up: thread pools, autotuning
        next(iterator)
    start = time.perf_counter()
    for _ in range(images // per_element):
        next(iterator)
    return images / (time.perf_counter() - start)


def bare(files_a: list[str], files_b: list[str]) -> tf.data.Dataset:
    def load(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        image = tf.image.resize(image, [286, 286], method="bicubic")
        return tf.image.random_crop(image, [256, 256, 3]) / 127.5 - 1.0

    def domain(files):
        return (
            tf.data.Dataset.from_tensor_slices(files).repeat().map(load, num_parallel_calls=tf.data.AUTOTUNE)
        )

    return tf.data.Dataset.zip((domain(files_a), domain(files_b))).prefetch(tf.data.AUTOTUNE)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder with trainA/ and trainB/")
    parser.add_argument("--images", type=int, default=2000, help="images to time, both domains counted")
    args = parser.parse_args()
    a, b = os.path.join(args.data, "trainA"), os.path.join(args.data, "trainB")
    prep = Preprocessing(load_size=286, crop_size=256)
    results = {
        "bare tf.data decode-resize-crop (baseline)": rate(
            bare(image_files(a), image_files(b)), args.images, 2
        ),
        "train_dataset (checks, exact decode, seeds)": rate(
            train_dataset(a, b, preprocessing=prep, seed=0).dataset, args.images, 2
        ),
        "train_dataset cache=True (Pillow, cached)": rate(
            train_dataset(a, b, preprocessing=prep, seed=0, cache=True).dataset, args.images, 2
        ),
    }
    baseline = next(iter(results.values()))
    print(f"cores: {os.cpu_count()}, images: {args.images}, 286 -> 256, batch 1")
    for name, value in results.items():
        print(f"{name:45s} {value:7.0f} images/s  ({value / baseline:.2f}x baseline)")


if __name__ == "__main__":
    main()
