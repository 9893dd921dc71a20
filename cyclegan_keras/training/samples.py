"""Sample-image grids of a training run: real | translated | translated back, every few epochs."""

from __future__ import annotations

import os
from collections.abc import Sequence

import keras
import numpy as np

from cyclegan_keras.data.images import grid, save_image, to_uint8


def sample_grid(model: keras.Model, images_a: np.ndarray, images_b: np.ndarray) -> np.ndarray:
    """A ``uint8`` grid: a row per A image (real A | A->B | back to A), then per B image
    (real B | B->A | back to B). Images are float batches in [-1, 1] of one size."""
    rows = []
    for images, there, back in (
        (images_a, model.generator_ab, model.generator_ba),
        (images_b, model.generator_ba, model.generator_ab),
    ):
        translated = there(images, training=False)
        returned = back(translated, training=False)
        for triple in zip(
            images, keras.ops.convert_to_numpy(translated), keras.ops.convert_to_numpy(returned)
        ):
            rows.append([to_uint8(x) for x in triple])
    return grid(rows)


class SampleImages(keras.callbacks.Callback):
    """Saves ``directory/epoch_NNNN.png`` with ``sample_grid`` of fixed images every ``every`` epochs.

    Args:
        images_a: float images ``[N, H, W, 3]`` in [-1, 1] from domain A (e.g. test images).
        images_b: likewise from domain B.
        directory: where the PNG grids go.
        every: epochs between grids.
        log_dir: if given, the grids also go to TensorBoard (``log_dir/samples``; needs TensorFlow).
    """

    def __init__(
        self,
        images_a: Sequence | np.ndarray,
        images_b: Sequence | np.ndarray,
        directory: str | os.PathLike,
        every: int = 1,
        log_dir: str | os.PathLike | None = None,
    ):
        super().__init__()
        self.images_a = np.asarray(images_a, np.float32)
        self.images_b = np.asarray(images_b, np.float32)
        self.directory = os.fspath(directory)
        self.every = every
        self.log_dir = None if log_dir is None else os.fspath(log_dir)
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        pixels = sample_grid(self.model, self.images_a, self.images_b)
        save_image(pixels, os.path.join(self.directory, f"epoch_{epoch + 1:04d}.png"))
        if self.log_dir is not None:
            import tensorflow as tf

            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "samples"))
            with self._writer.as_default():
                tf.summary.image("samples", pixels[None], step=epoch + 1)
            self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
