"""Generators prepared for integer LiteRT files: every instance norm's input channels brought to one scale.

Integer LiteRT files quantize each activation tensor with one scale for all its channels. An instance
norm squares its centred input and averages it per channel: where one channel's spread is 100 times
another's, the small channel's variance is a level or two of that shared scale, and its ``rsqrt``
blows up the error (measured with LiteRT's quantization debugger: 9.6 levels of error at one norm's
``RSQRT`` against 0.3 everywhere else, ``docs/benchmarks.md``). An instance norm's output does not
change when a channel of its input is scaled, so the conv that feeds it can take a per-channel factor
that brings every channel's typical spread to 1, and the norm a per-channel epsilon scaled alike: the
float result is the same (to float32 round-off), and the 8-bit one loses far less.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from cyclegan_keras.images import to_float
from cyclegan_keras.layers import InstanceNormalization

# Channels whose typical spread is below this are left near their scale: nothing to resolve there.
_SMALLEST_SPREAD = 1e-3


def _feeding_conv(producers: dict, layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """The conv or transposed conv whose output reaches ``layer`` through crops only, if any;
    ``producers`` maps each layer output's ``id`` to its layer."""
    source = producers.get(id(layer.input))
    while isinstance(source, keras.layers.Cropping2D):
        source = producers.get(id(source.input))
    if isinstance(source, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) and source.use_bias:
        return source
    return None


def equalize_channels(generator: keras.Model, photos: Sequence[np.ndarray]) -> keras.Model:
    """A copy of ``generator`` whose instance norms see every input channel at a typical spread of 1.

    Each conv that feeds an instance norm (directly or through crops) has its output channels scaled by
    ``1 / s``, where ``s`` is the channel's spread (standard deviation over the image) on ``photos``,
    median over the photos, and the norm's epsilon by ``1 / s**2``: the outputs equal the original's to
    float32 round-off. Generators without instance norms come back as an unchanged copy.

    Args:
        generator: a functional generator of this package.
        photos: ``uint8`` calibration photos ``[H, W, 3]`` of one size.
    """
    copy = keras.models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    norms = [layer for layer in copy.layers if isinstance(layer, InstanceNormalization)]
    producers = {
        id(layer.output): layer for layer in copy.layers if not isinstance(layer, keras.layers.InputLayer)
    }
    fed = [(norm, conv) for norm in norms if (conv := _feeding_conv(producers, norm)) is not None]
    if not fed:
        return copy
    probe = keras.Model(copy.inputs, [norm.input for norm, _ in fed])
    inputs = probe.predict(to_float(np.stack(photos)), verbose=0, batch_size=4)
    for (norm, conv), values in zip(fed, inputs if isinstance(inputs, list) else [inputs]):
        spread = np.median(np.asarray(values, np.float64).std(axis=(1, 2)), axis=0)
        factor = 1.0 / np.maximum(spread, _SMALLEST_SPREAD)
        kernel, bias = conv.get_weights()
        # Output channels: the last kernel axis of a conv, the one before it of a transposed conv.
        shape = [1] * kernel.ndim
        shape[-2 if isinstance(conv, keras.layers.Conv2DTranspose) else -1] = -1
        conv.set_weights([kernel * factor.reshape(shape).astype("float32"), bias * factor.astype("float32")])
        # The variance grew by factor**2 per channel: so must the epsilon added to it.
        norm.epsilon = list(np.asarray(norm.epsilon, np.float64) * factor**2)
    return copy
