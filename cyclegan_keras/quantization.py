"""Generators prepared for integer LiteRT files: every instance norm's input channels brought to one range.

Integer LiteRT files quantize each activation tensor with one scale and zero point for all its
channels, set by the tensor's minimum and maximum on the calibration photos. Where one channel of an
instance norm's input spans 100 times the range of another, or sits far off zero, the small or
off-centre channels get a few levels of that shared grid, and the norm's squared deviations and
``rsqrt`` blow the error up (measured with LiteRT's quantization debugger, ``docs/benchmarks.md``). An
instance norm's output does not change when a channel of its input is scaled by a positive factor or
shifted, so the conv that feeds it can take a per-channel factor and offset that bring every channel's
calibration range to [-1, 1] (int8 files), or its typical standard deviation to 1 (int16x8 files), and
the norm a per-channel epsilon scaled alike: the float result is the same (to float32 round-off), and
the integer one loses far less.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from cyclegan_keras.errors import UsageError
from cyclegan_keras.images import to_float
from cyclegan_keras.layers import InstanceNormalization, SignSplitInstanceNormalization

# Channels whose range or spread is below this are left near their scale: nothing to resolve there.
_NARROWEST = 1e-3
TARGETS = ("range", "spread")
# A norm is split (``split_norms``) where, in the median photo and channel, values beyond TAIL standard
# deviations hold more than HEAVY of the variance: a normal distribution has ~1e-8 there, a trained
# generator's last up-sampling norm 54%, its other norms 0-5% (docs/benchmarks.md).
TAIL = 6.0
HEAVY = 0.01
# Photos run through the generator at once while measuring ranges: bounds memory at full size.
_BATCH = 4


def _feeding_conv(producers: dict, layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """The conv or transposed conv whose output reaches ``layer`` through crops only, if any;
    ``producers`` maps each layer output's ``id`` to its layer."""
    source = producers.get(id(layer.input))
    while isinstance(source, keras.layers.Cropping2D):
        source = producers.get(id(source.input))
    if isinstance(source, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)) and source.use_bias:
        return source
    return None


def _tail_share(y):
    squares = keras.ops.square(y - keras.ops.mean(y, axis=(1, 2), keepdims=True))
    beyond = squares > TAIL**2 * keras.ops.mean(squares, axis=(1, 2), keepdims=True)
    total = keras.ops.sum(squares, axis=(1, 2))
    return keras.ops.sum(keras.ops.where(beyond, squares, 0.0), axis=(1, 2)) / keras.ops.maximum(total, 1e-30)


def _channel_statistics(probe: keras.Model, photos: Sequence[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """Per output of ``probe`` on ``photos``: each channel's minimum and maximum over all pixels
    (``lo``, ``hi``), its standard deviation over each photo (``spread``, photos x channels) and the
    share of that photo's variance in values beyond ``TAIL`` deviations (``tail``, likewise)."""
    statistics = None
    for start in range(0, len(photos), _BATCH):
        outputs = probe(to_float(np.stack(photos[start : start + _BATCH])), training=False)
        batch = [
            {
                "lo": np.asarray(keras.ops.min(y, axis=(0, 1, 2)), np.float64),
                "hi": np.asarray(keras.ops.max(y, axis=(0, 1, 2)), np.float64),
                "spread": np.asarray(keras.ops.std(y, axis=(1, 2)), np.float64),
                "tail": np.asarray(_tail_share(y), np.float64),
            }
            for y in (outputs if isinstance(outputs, (list, tuple)) else [outputs])
        ]
        statistics = batch if statistics is None else [
            {"lo": np.minimum(old["lo"], new["lo"]), "hi": np.maximum(old["hi"], new["hi"]),
             **{key: np.concatenate([old[key], new[key]]) for key in ("spread", "tail")}}
            for old, new in zip(statistics, batch)
        ]  # fmt: skip
    return statistics


def equalize_channels(
    generator: keras.Model, photos: Sequence[np.ndarray], target: str = "range"
) -> keras.Model:
    """A copy of ``generator`` whose instance norms see every input channel on one scale.

    Each conv that feeds an instance norm (directly or through crops) has its output channels mapped
    to that scale, and the norm's epsilon multiplied by the square of the channel's factor: the outputs
    equal the original's to float32 round-off. Generators without instance norms come back as an
    unchanged copy.

    Args:
        generator: a functional generator of this package.
        photos: ``uint8`` calibration photos ``[H, W, 3]`` of one size.
        target: ``"range"``: every channel's minimum and maximum on ``photos`` (what LiteRT's
            calibration sees) become -1 and 1, for int8 files (8-bit grids with a zero point);
            ``"spread"``: every channel's standard deviation over a photo becomes 1 (median over
            ``photos``), for int16x8 files, whose symmetric 16-bit grids have levels to spare but
            must still resolve each channel's variance in the norm (measured in docs/benchmarks.md).
    """
    if target not in TARGETS:
        raise UsageError(f"target must be one of {', '.join(TARGETS)}; got {target!r}")
    copy = keras.models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    norms = [layer for layer in copy.layers if isinstance(layer, InstanceNormalization)]
    producers = {
        id(layer.output): layer for layer in copy.layers if not isinstance(layer, keras.layers.InputLayer)
    }
    fed = [(norm, conv) for norm in norms if (conv := _feeding_conv(producers, norm)) is not None]
    if not fed:
        return copy
    probe = keras.Model(copy.input, [norm.input for norm, _ in fed])
    for (norm, conv), stats in zip(fed, _channel_statistics(probe, photos)):
        if target == "range":
            factor = 2.0 / np.maximum(stats["hi"] - stats["lo"], _NARROWEST)
            centre = (stats["lo"] + stats["hi"]) / 2
        else:
            factor = 1.0 / np.maximum(np.median(stats["spread"], axis=0), _NARROWEST)
            centre = 0.0
        kernel, bias = conv.get_weights()
        # Output channels: the last kernel axis of a conv, the one before it of a transposed conv.
        shape = [1] * kernel.ndim
        shape[-2 if isinstance(conv, keras.layers.Conv2DTranspose) else -1] = -1
        conv.set_weights([
            kernel * factor.reshape(shape).astype("float32"),
            ((bias - centre) * factor).astype("float32"),
        ])  # fmt: skip
        # The variance grew by factor**2 per channel: so must the epsilon added to it.
        norm.epsilon = list(np.asarray(norm.epsilon, np.float64) * factor**2)
    return copy


def _feeds_relu_alone(consumers: dict, layer: keras.layers.Layer) -> bool:
    users = consumers.get(id(layer.output), [])
    return (
        len(users) == 1
        and isinstance(users[0], keras.layers.ReLU)
        and (users[0].max_value is None and not users[0].negative_slope and not users[0].threshold)
    )


def split_norms(generator: keras.Model, photos: Sequence[np.ndarray]) -> keras.Model:
    """A copy of ``generator`` whose heavy-tailed instance norms are ``SignSplitInstanceNormalization``s,
    rectified where a plain ReLU alone takes their output: the same function in float (to round-off),
    finer 8-bit grids in an int8 file; ``generator`` itself where no norm is heavy-tailed.

    A norm is heavy-tailed where, on ``photos`` (median over photos and channels), values beyond
    ``TAIL`` standard deviations hold more than ``HEAVY`` of its input's variance. Only those are split:
    the split adds ops (splitting every norm of a trained generator gave 0.7 dB more and 8% more
    latency, docs/benchmarks.md). Norms with a learned offset or gain stay as they are.

    Args:
        generator: a functional generator of this package (equalized or not).
        photos: ``uint8`` calibration photos ``[H, W, 3]`` of one size.
    """
    norms = [
        layer for layer in generator.layers
        if type(layer) is InstanceNormalization and not (layer.center or layer.scale)
    ]  # fmt: skip
    if not norms:
        return generator
    probe = keras.Model(generator.input, [norm.input for norm in norms])
    heavy = {
        norm.name for norm, stats in zip(norms, _channel_statistics(probe, photos))
        if np.median(stats["tail"]) > HEAVY
    }  # fmt: skip
    if not heavy:
        return generator
    consumers: dict[int, list] = {}
    for layer in generator.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            for tensor in layer.input if isinstance(layer.input, list) else [layer.input]:
                consumers.setdefault(id(tensor), []).append(layer)

    def clone(layer):
        if layer.name in heavy:
            return SignSplitInstanceNormalization(
                epsilon=layer.epsilon, rectified=_feeds_relu_alone(consumers, layer), name=layer.name
            )
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(generator, clone_function=clone)
    copy.set_weights(generator.get_weights())
    return copy
