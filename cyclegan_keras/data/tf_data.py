"""Input pipelines: tfds ``cycle_gan/*`` datasets and image folders, preprocessed as the official code.

Training pairs come from ``train_dataset``: every step takes the next A image of a per-epoch shuffle
and a B image drawn at random (not paired by index); an epoch is ``max(|A|, |B|)`` images
(``cyclegan_keras.data.plan``, shared with the Python pipeline). Decoding and resizing use Pillow's
bicubic filter, the one the official code uses, in parallel threads; random crops and flips are
TensorFlow's stateless ops. Everything random derives from ``(seed, epoch, step)``, so a seeded run
repeats exactly and a resumed run sees the same data as an uninterrupted one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import tensorflow as tf

from cyclegan_keras.data.folders import image_sources
from cyclegan_keras.data.images import ImageSource, tf_to_float
from cyclegan_keras.data.plan import PixelLoader, SamplingPlan
from cyclegan_keras.data.preprocessing import Preprocessing
from cyclegan_keras.data.preprocessing import steps_per_epoch as epoch_steps
from cyclegan_keras.errors import UsageError

_SEED_STRIDE = 1 << 24  # keeps every epoch's stateless seeds apart from every other epoch's


class _Loader:
    """Decodes and resizes images by index inside a ``tf.data`` map.

    With the default ``resize_and_crop``, plain JPEGs and PNGs (see ``scan_images``) go through
    TensorFlow's decoders (bit-exact with Pillow's) and bicubic resize (within a few levels of
    Pillow's, 0.15 on average), which run without the GIL. Every other file, every other mode, and
    everything when caching, goes through Pillow in ``tf.numpy_function``.
    """

    def __init__(
        self,
        sources: Sequence[ImageSource],
        plain: Sequence[int],
        preprocessing: Preprocessing,
        cache: bool,
        channels: int = 3,
    ):
        self.channels = channels
        self.preprocessing = preprocessing
        self._pillow = PixelLoader(sources, preprocessing, channels, cache)
        self._table = tf.constant(list(sources))
        self._is_path = isinstance(sources[0], str)
        use_tf = preprocessing.mode == "resize_and_crop" and not cache and channels == 3
        self._plain = tf.constant([code if use_tf else 0 for code in plain], tf.int32)

    def _tensorflow(self, index: tf.Tensor, code: tf.Tensor) -> tf.Tensor:
        encoded = tf.gather(self._table, index)
        if self._is_path:
            encoded = tf.io.read_file(encoded)
        pixels = tf.cond(
            code == 1,
            lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
            lambda: tf.io.decode_png(encoded, channels=3),
        )
        size = self.preprocessing.load_size
        shrinks = tf.reduce_any(tf.shape(pixels)[:2] > size)
        resized = tf.cond(
            shrinks,  # Pillow's bicubic widens its kernel when it shrinks; TF's does with antialias.
            lambda: tf.image.resize(pixels, [size, size], method="bicubic", antialias=True),
            lambda: tf.image.resize(pixels, [size, size], method="bicubic"),
        )
        return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)

    def __call__(self, index: tf.Tensor) -> tf.Tensor:
        code = tf.gather(self._plain, index)
        pixels = tf.cond(
            code > 0,
            lambda: self._tensorflow(index, code),
            lambda: tf.numpy_function(self._pillow, [index], tf.uint8, stateful=False),
        )
        pixels.set_shape([None, None, self.channels])
        return pixels


@dataclass
class TrainData:
    """A training pipeline and what it was made from.

    Attributes:
        dataset: infinite ``tf.data.Dataset`` of ``(a, b)`` float32 batches in [-1, 1], epoch after epoch
            from ``start_epoch``; give ``model.fit`` ``steps_per_epoch=steps_per_epoch``.
        steps_per_epoch: batches in one epoch.
        sources_a: the readable domain-A images (paths or encoded bytes).
        sources_b: the readable domain-B images.
    """

    dataset: tf.data.Dataset
    steps_per_epoch: int
    sources_a: list
    sources_b: list


def train_dataset(
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
    input_context: tf.distribute.InputContext | None = None,
    serial: bool = False,
    channels: tuple[int, int] = (3, 3),
) -> TrainData:
    """The official training pipeline over two domains.

    Args:
        a: domain A: a folder (searched recursively) or a list of image paths or encoded images.
        b: domain B, likewise.
        batch_size: images per batch from each domain (1 in the paper).
        preprocessing: the official options; ``Preprocessing()`` (286 -> 256 crops, flips) by default.
        seed: every random choice (order, B draws, crops, flips) derives from it and the epoch.
        steps_per_epoch: batches per epoch; ``max(|A|, |B|) // batch_size`` by default, as the official
            epoch. Fewer make quick runs.
        start_epoch: the epoch (from 0) the dataset starts at, to resume a run where it stopped.
        cache: keep decoded, resized images in memory after their first use (about
            ``3 * load_size**2`` bytes an image).
        check_files: decode every file once up front and skip unreadable ones with one warning, so
            that nothing fails mid-epoch.
        input_context: under a ``tf.distribute`` strategy (``strategy.distribute_datasets_from_function``):
            ``batch_size`` is then the global batch, and this worker's dataset holds only its replicas'
            batches of ``batch_size / num_replicas_in_sync`` images, the ones it would get of a single
            process's batches; the other images are never read here.
        serial: the official ``--serial_batches``: A and B in order, both by the step's index (modulo
            each domain's size), no shuffle and no random B.
        channels: A's and B's channels: 3 (RGB) or 1 (grayscale, converted before resizing as the
            official ``--input_nc 1`` / ``--output_nc 1``).
    """
    preprocessing = preprocessing or Preprocessing()
    (sources_a, plain_a), (sources_b, plain_b) = (image_sources(domain, check_files) for domain in (a, b))
    steps = epoch_steps(preprocessing, batch_size, (len(sources_a), len(sources_b)), steps_per_epoch)
    per_epoch = steps * batch_size
    replicas = input_context.num_replicas_in_sync if input_context else 1
    if batch_size % replicas:
        raise UsageError(
            f"The batch size {batch_size} is the global batch: it must split evenly over the "
            f"{replicas} replicas (devices of all workers); use a multiple of {replicas}."
        )
    per_replica = batch_size // replicas
    load_a = _Loader(sources_a, plain_a, preprocessing, cache, channels[0])
    load_b = _Loader(sources_b, plain_b, preprocessing, cache, channels[1])

    plan = SamplingPlan((len(sources_a), len(sources_b)), per_epoch, seed, serial)

    def epoch_indices(epoch):
        a_index, b_index = tf.numpy_function(plan.epoch, [epoch], (tf.int64, tf.int64), stateful=False)
        steps_ = tf.range(per_epoch, dtype=tf.int64) + epoch * _SEED_STRIDE
        return tf.data.Dataset.from_tensor_slices(
            (tf.ensure_shape(a_index, [per_epoch]), tf.ensure_shape(b_index, [per_epoch]), steps_)
        )

    def load(a_index, b_index, step):
        images = []
        for k, (loader, index) in enumerate(((load_a, a_index), (load_b, b_index))):
            pixels = loader(index)
            images.append(
                _augment(
                    pixels, preprocessing, tf.stack([tf.constant(seed + 2 + k, tf.int64), step]), channels[k]
                )
            )
        return tuple(images)

    dataset = tf.data.Dataset.range(start_epoch, 1 << 31).flat_map(epoch_indices)
    if input_context and input_context.num_input_pipelines > 1:
        dataset = dataset.filter(_this_worker(input_context, per_replica))
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = _batched(dataset, per_replica, preprocessing, channels)
    return TrainData(dataset, steps, sources_a, sources_b)


def _batched(dataset, per_replica: int, preprocessing: Preprocessing, channels: tuple[int, int]):
    """Batches of ``(a, b)``, prefetched; cropped ones with their static shape, which XLA needs."""
    dataset = dataset.batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if not preprocessing.crops:
        return dataset
    shape = (per_replica, preprocessing.crop_size, preprocessing.crop_size)
    return dataset.map(
        lambda x, y: (tf.ensure_shape(x, (*shape, channels[0])), tf.ensure_shape(y, (*shape, channels[1])))
    )


def _this_worker(input_context: tf.distribute.InputContext, per_replica: int):
    """A filter of the ``(a_index, b_index, step)`` elements that this worker's replicas take: image i
    of an epoch belongs to replica ``(i // per_replica) % replicas``; replicas are numbered worker after
    worker, each worker's local ones in a row."""
    replicas = input_context.num_replicas_in_sync
    local = replicas // input_context.num_input_pipelines
    worker = input_context.input_pipeline_id

    def mine(a_index, b_index, step):
        replica = (step % _SEED_STRIDE) // per_replica % replicas
        return replica // local == worker

    return mine


def _augment(pixels: tf.Tensor, preprocessing: Preprocessing, seed: tf.Tensor, channels: int) -> tf.Tensor:
    if preprocessing.crops:
        size = preprocessing.crop_size
        pixels = tf.image.stateless_random_crop(pixels, [size, size, channels], seed=seed)
    if preprocessing.flip:
        pixels = tf.image.stateless_random_flip_left_right(pixels, seed=seed[::-1])
    return tf_to_float(pixels)
