"""The history of generated images that the discriminators train on (Shrivastava et al., 2017)."""

from __future__ import annotations

import keras
import tensorflow as tf

from cyclegan_keras.layers import PACKAGE


@keras.saving.register_keras_serializable(package=PACKAGE)
class ImagePool(keras.layers.Layer):
    """A buffer of past generated images, with the official CycleGAN semantics.

    For each image of a batch: while the pool holds fewer than ``size`` images, the image is stored
    and returned. Once it is full, with probability 0.5 a random stored image is returned and the new
    one takes its place; otherwise the new image is returned and the pool is unchanged.

    The pool and its random state are layer variables, so the step runs inside ``tf.function`` and the
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
            raise ValueError(f"size must be a non-negative integer, got {size!r}")
        self.size = size
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="pool_seed")

    def build(self, input_shape):
        _, height, width, channels = input_shape
        if self.size and None in (height, width, channels):
            raise ValueError(
                f"ImagePool(size={self.size}) needs images of a fixed size, got shape {input_shape}. "
                "Crop training images to a fixed size, or set pool_size=0."
            )
        shape = (self.size, height, width, channels) if self.size else (0,)
        self.images = self.add_weight(
            shape=shape, initializer="zeros", trainable=False, name="images", dtype=self.dtype
        )
        self.count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="count", dtype="int32"
        )

    def call(self, images):
        if self.size == 0:
            return images
        images = tf.cast(images, self.images.dtype)
        n = tf.shape(images)[0]
        coins = keras.random.uniform((n,), seed=self.seed_generator)
        slots = keras.random.randint((n,), 0, self.size, seed=self.seed_generator)
        pool, count = self.images.value, self.count.value

        def body(i, returned):
            image = images[i]

            def fill():
                stored = pool.scatter_nd_update([[count.read_value()]], image[None])
                with tf.control_dependencies([stored]):
                    with tf.control_dependencies([count.assign_add(1)]):
                        return tf.identity(image)

            def swap():
                old = pool.sparse_read(slots[i])
                with tf.control_dependencies([old]):
                    stored = pool.scatter_nd_update([[slots[i]]], image[None])
                with tf.control_dependencies([stored]):
                    return tf.identity(old)

            def keep_or_swap():
                return tf.cond(coins[i] > 0.5, swap, lambda: image)

            result = tf.cond(count.read_value() < self.size, fill, keep_or_swap)
            return i + 1, returned.write(i, result)

        _, returned = tf.while_loop(
            lambda i, _: i < n, body, (tf.constant(0), tf.TensorArray(images.dtype, size=n))
        )
        return tf.reshape(returned.stack(), tf.shape(images))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "seed": self.seed}
