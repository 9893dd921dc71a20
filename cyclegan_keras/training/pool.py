"""The history of generated images that the discriminators train on (Shrivastava et al., 2017)."""

from __future__ import annotations

import keras
from keras import ops

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImagePool(keras.layers.Layer):
    """A buffer of past generated images, with the official CycleGAN semantics.

    For each image of a batch: while the pool holds fewer than ``size`` images, the image is stored
    and returned. Once it is full, with probability 0.5 a random stored image is returned and the new
    one takes its place; otherwise the new image is returned and the pool is unchanged.

    The pool and its random state are layer variables, written in ``keras.ops``: the step stays
    compiled on every backend (``tf.function``, ``jax.jit``), with no round trip to the host, and the
    pool's contents are saved and restored with the model's weights. The images' height, width and
    channels are fixed at the first call.

    Args:
        size: how many images the pool holds; 0 turns it off (every image is returned unchanged).
        seed: seed of the pool's random draws.
    """

    def __init__(self, size: int = 50, seed: int | None = None, **kwargs):
        kwargs.setdefault("trainable", False)
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not isinstance(size, int) or size < 0:
            raise UsageError(f"size must be a non-negative integer, got {size!r}")
        self.size = size
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="pool_seed")

    def build(self, input_shape):
        _, height, width, channels = input_shape
        if self.size and None in (height, width, channels):
            raise UsageError(
                f"ImagePool(size={self.size}) needs images of a fixed size, got shape {input_shape}. "
                "Crop training images to a fixed size, or set pool_size=0."
            )
        shape = (self.size, height, width, channels) if self.size else (0,)
        # Read-synchronised: under a tf.distribute strategy each replica keeps its own pool (saved: the
        # first replica's).
        self.images = keras.Variable(
            "zeros",
            shape=shape,
            dtype=self.dtype,
            trainable=False,
            name="images",
            synchronization="on_read",
            aggregation="only_first_replica",
        )
        self.count = keras.Variable(
            0,
            dtype="int32",
            trainable=False,
            name="count",
            synchronization="on_read",
            aggregation="only_first_replica",
        )

    def call(self, images):
        if self.size == 0:
            return images
        images = ops.cast(images, self.images.dtype)
        n = ops.shape(images)[0]
        coins = keras.random.uniform((n,), seed=self.seed_generator)
        slots = keras.random.randint((n,), 0, self.size, seed=self.seed_generator)
        returned = ops.zeros_like(images)
        zeros = [0] * (len(images.shape) - 1)

        def body(i, state):
            pool, count, returned = state
            image = ops.take(images, i, axis=0)
            full = count >= self.size
            swap = ops.logical_and(full, ops.take(coins, i) > 0.5)
            # Not full: store at the next free slot and return the new image. Full: with probability
            # 0.5 return a stored image and store the new one in its place, else return the new one.
            slot = ops.where(full, ops.take(slots, i), count)
            stored = ops.take(pool, slot, axis=0)
            result = ops.where(swap, stored, image)
            kept = ops.where(ops.logical_or(swap, ops.logical_not(full)), image, stored)
            pool = ops.slice_update(pool, [slot, *zeros], kept[None])
            returned = ops.slice_update(returned, [i, *zeros], result[None])
            return pool, ops.minimum(count + 1, self.size), returned

        pool, count, returned = ops.fori_loop(
            0, n, body, (ops.convert_to_tensor(self.images), ops.convert_to_tensor(self.count), returned)
        )
        self.images.assign(pool)
        self.count.assign(count)
        return returned

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}
