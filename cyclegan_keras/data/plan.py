"""What both training pipelines read: which A and B image each step of an epoch takes, and each image's
decoded, resized pixels. ``tf_data`` and ``python`` (``--input-pipeline``) share these, so that they
train on the same images in the same order; only the crops and flips are each framework's own."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cyclegan_keras.data.images import ImageSource, open_channels
from cyclegan_keras.data.preprocessing import Preprocessing


@dataclass(frozen=True)
class SamplingPlan:
    """The official sampling over two domains of ``sizes`` images: each epoch walks domain A in a
    shuffled order (of the longer domain's length, modulo A's) and draws an unpaired B image at random
    for each; ``serial`` (the official ``--serial_batches``) takes both in order by the step's index.
    Every draw derives from ``(seed, epoch)``, so a resumed run reads what an uninterrupted one would.

    Attributes:
        sizes: the images of A and of B.
        per_epoch: the images an epoch takes from each domain (steps times the batch size).
        seed: the run's seed.
        serial: in order, A and B by the same index.
    """

    sizes: tuple[int, int]
    per_epoch: int
    seed: int = 0
    serial: bool = False

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The A and B indices (int64) of every image of ``epoch``, in order."""
        count_a, count_b = self.sizes
        epoch_images = max(self.sizes)
        if self.serial:
            order = np.arange(self.per_epoch, dtype=np.int64) % epoch_images
            return order % count_a, order % count_b
        rng = np.random.default_rng([self.seed, epoch])
        passes = -(-self.per_epoch // epoch_images)  # enough shuffled passes to fill the epoch
        order = np.concatenate([rng.permutation(epoch_images) for _ in range(passes)])[: self.per_epoch]
        return (order % count_a).astype(np.int64), rng.integers(0, count_b, self.per_epoch, dtype=np.int64)


class PixelLoader:
    """A domain's images decoded and resized as the official preprocessing does (Pillow's bicubic
    filter), by index; with ``cache``, kept after their first use (thread-safe)."""

    def __init__(
        self, sources: Sequence[ImageSource], preprocessing: Preprocessing, channels: int, cache: bool
    ):
        self.sources = list(sources)
        self.preprocessing = preprocessing
        self.channels = channels
        self.cache: dict[int, np.ndarray] | None = {} if cache else None
        self._lock = threading.Lock()

    def __call__(self, index: int) -> np.ndarray:
        """The ``uint8 [H, W, channels]`` pixels of image ``index``."""
        index = int(index)
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        image = open_channels(self.sources[index], self.channels, self.preprocessing.draft_size)
        pixels = np.asarray(self.preprocessing.resize(image), dtype=np.uint8)
        pixels = pixels.reshape(*pixels.shape[:2], self.channels)
        if self.cache is not None:
            with self._lock:
                self.cache[index] = pixels
        return pixels
