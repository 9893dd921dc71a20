"""The official training pipeline without TensorFlow: a ``keras.utils.PyDataset`` over Pillow.

For JAX and PyTorch machines that have no TensorFlow (``train_dataset`` is the ``tf.data`` one). The
same sampling as the official code and as ``train_dataset``: each epoch walks domain A in a shuffled
order, draws an unpaired B image at random for each A image, and augments each with the official
preprocessing (Pillow's bicubic resize, a random crop, a random horizontal flip). Every random choice
derives from the seed and the epoch, so a resumed run reads what an uninterrupted one would. Both
pipelines take the same images in the same order (``cyclegan_keras.data.plan``); the crops and flips
are numpy's here and TensorFlow's there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import keras
import numpy as np

from cyclegan_keras.data.folders import image_sources
from cyclegan_keras.data.images import ImageSource, to_float
from cyclegan_keras.data.plan import PixelLoader, SamplingPlan
from cyclegan_keras.data.preprocessing import Preprocessing
from cyclegan_keras.data.preprocessing import steps_per_epoch as epoch_steps


class UnpairedImages(keras.utils.PyDataset):
    """Batches ``(a, b)`` of float32 images in [-1, 1] from two domains, epoch after epoch.

    Args:
        a: domain A: a folder (searched recursively) or a list of image paths or encoded images.
        b: domain B, likewise.
        batch_size: images per batch from each domain (1 in the paper).
        preprocessing: the official options; ``Preprocessing()`` (286 -> 256 crops, flips) by default.
        seed: every random choice derives from it and the epoch.
        steps_per_epoch: batches per epoch; ``max(|A|, |B|) // batch_size`` by default.
        start_epoch: the epoch (from 0) to start at, to resume a run where it stopped.
        cache: keep decoded, resized images in memory after their first use.
        check_files: decode every file once up front and skip unreadable ones with one warning.
        workers: threads that load batches ahead (``keras.utils.PyDataset``); the batches do not
            depend on it.
        serial: the official ``--serial_batches``: A and B in order, both by the step's index (modulo
            each domain's size), no shuffle and no random B.
        channels: A's and B's channels: 3 (RGB) or 1 (grayscale, converted before resizing).
    """

    def __init__(
        self,
        a: str | os.PathLike | Sequence[ImageSource],
        b: str | os.PathLike | Sequence[ImageSource],
        *,
        batch_size: int = 1,
        preprocessing: Preprocessing | None = None,
        seed: int = 0,
        steps_per_epoch: int | None = None,
        start_epoch: int = 0,
        cache: bool = False,
        check_files: bool = True,
        workers: int = 4,
        serial: bool = False,
        channels: tuple[int, int] = (3, 3),
    ):
        super().__init__(workers=workers, use_multiprocessing=False)
        self.preprocessing = preprocessing or Preprocessing()
        self.sources_a = image_sources(a, check_files)[0]
        self.sources_b = image_sources(b, check_files)[0]
        self.batch_size = batch_size
        self.seed = seed
        self.channels = channels
        counts = (len(self.sources_a), len(self.sources_b))
        self.steps_per_epoch = epoch_steps(self.preprocessing, batch_size, counts, steps_per_epoch)
        self.plan = SamplingPlan(counts, self.steps_per_epoch * batch_size, seed, serial)
        self.epoch = start_epoch
        self._loaders = [
            PixelLoader(sources, self.preprocessing, count, cache)
            for sources, count in zip((self.sources_a, self.sources_b), channels)
        ]
        self._lock = threading.Lock()
        self._plans: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return self.steps_per_epoch

    def on_epoch_end(self):
        self.epoch += 1

    def _plan(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The A and B indices of every image of ``epoch`` (only the current epoch's are kept)."""
        with self._lock:
            if epoch not in self._plans:
                self._plans = {epoch: self.plan.epoch(epoch)}
            return self._plans[epoch]

    def _augment(self, pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.preprocessing.crops:
            size = self.preprocessing.crop_size
            top = rng.integers(0, pixels.shape[0] - size + 1)
            left = rng.integers(0, pixels.shape[1] - size + 1)
            pixels = pixels[top : top + size, left : left + size]
        if self.preprocessing.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        return to_float(pixels)

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        epoch = self.epoch
        a_index, b_index = self._plan(epoch)
        batch = []
        for domain, indices in enumerate((a_index, b_index)):
            images = []
            for i in range(step * self.batch_size, (step + 1) * self.batch_size):
                rng = np.random.default_rng([self.seed + 2 + domain, epoch, i])
                images.append(self._augment(self._loaders[domain](indices[i]), rng))
            batch.append(np.stack(images))
        return batch[0], batch[1]
