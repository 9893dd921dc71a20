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

from cyclegan_keras.data.images import to_float
from cyclegan_keras.deploy import graph
from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import (
    InstanceNormalization,
    SignSplitInstanceNormalization,
    TwoGridInstanceNormalization,
)

# Channels whose range or spread is below this are left near their scale: nothing to resolve there.
_NARROWEST = 1e-3
TARGETS = ("range", "spread")
# A norm is split (``split_norms``) where, in the median photo and channel, values beyond TAIL standard
# deviations hold more than HEAVY of the variance: a normal distribution has ~1e-8 there, a trained
# generator's last up-sampling norm far more (measured in docs/benchmarks.md).
TAIL = 6.0
HEAVY = 0.01
# Heavy-tailed norms whose tails hold more than this share get two grids (``split_norms``): a gain in
# PSNR for a doubled conv's time (docs/benchmarks.md).
TWO_GRID = 0.2
# Photos run through the generator at once while measuring ranges: bounds memory at full size.
_BATCH = 4


def _crops(producers: dict, layer: keras.layers.Layer) -> list[keras.layers.Layer]:
    """The crops right before ``layer`` (or the identities ``subpixel_convs`` left of them), nearest
    first; ``producers`` maps each layer output's ``id`` to its layer."""
    crops = []
    source = producers.get(id(layer.input))
    while isinstance(source, (keras.layers.Cropping2D, keras.layers.Identity)):
        crops.append(source)
        source = producers.get(id(source.input))
    return crops


def _feeding_conv(producers: dict, layer: keras.layers.Layer) -> keras.layers.Layer | None:
    """The conv or transposed conv whose output reaches ``layer`` through crops only, if any."""
    crops = _crops(producers, layer)
    source = producers.get(id((crops[-1] if crops else layer).input))
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
    (``lo``, ``hi``), its standard deviation and mean over each photo (``spread``, ``mean``: photos x
    channels) and the share of that photo's variance in values beyond ``TAIL`` deviations (``tail``,
    likewise)."""
    statistics = None
    for start in range(0, len(photos), _BATCH):
        outputs = probe(to_float(np.stack(photos[start : start + _BATCH])), training=False)
        batch = [
            {
                "lo": np.asarray(keras.ops.min(y, axis=(0, 1, 2)), np.float64),
                "hi": np.asarray(keras.ops.max(y, axis=(0, 1, 2)), np.float64),
                "spread": np.asarray(keras.ops.std(y, axis=(1, 2)), np.float64),
                "mean": np.asarray(keras.ops.mean(y, axis=(1, 2)), np.float64),
                "tail": np.asarray(_tail_share(y), np.float64),
            }
            for y in (outputs if isinstance(outputs, (list, tuple)) else [outputs])
        ]
        statistics = batch if statistics is None else [
            {"lo": np.minimum(old["lo"], new["lo"]), "hi": np.maximum(old["hi"], new["hi"]),
             **{key: np.concatenate([old[key], new[key]]) for key in ("spread", "mean", "tail")}}
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
    producers = graph.producers(copy)
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


def split_norms(generator: keras.Model, photos: Sequence[np.ndarray], two_grids: bool = True) -> keras.Model:
    """A copy of ``generator`` with its instance norms written for int8 files: the same function in
    float (to round-off), finer 8-bit grids in an int8 file; ``generator`` itself where it has none.

    Every norm takes its spatial means in one reduction (``single_mean``). A norm is heavy-tailed
    where, on ``photos`` (median over photos and channels), values beyond ``TAIL`` standard deviations
    hold more than ``HEAVY`` of its input's variance. Where they hold more than ``TWO_GRID``, a plain
    ReLU alone takes the norm's output and a conv (through crops) its input, the norm becomes a
    ``TwoGridInstanceNormalization`` and the conv gives each channel twice: centred on its typical
    mean and brought to [-1, 1], and that times a factor that spreads the values near and above the
    mean over [-1, 1] (the int8 file's range for that conv is [-1, 1]: ``two_grid_convs``, and the
    values it clips are those the ReLU drops). Other heavy-tailed norms without a learned offset or
    gain become ``SignSplitInstanceNormalization``s. Only heavy-tailed norms change form: each change
    adds ops (docs/benchmarks.md).

    Args:
        generator: a functional generator of this package (equalized or not).
        photos: ``uint8`` calibration photos ``[H, W, 3]`` of one size.
        two_grids: allow ``TwoGridInstanceNormalization``s. Files of any size have none: their sums of
            squares cannot be a batched matmul of a known length (8-bit squares gave two grids 33.2 dB
            against 33.7 with sign-split norms alone on a trained generator, docs/benchmarks.md).
    """
    if not any(isinstance(layer, InstanceNormalization) for layer in generator.layers):
        return generator
    norms = [
        layer for layer in generator.layers
        if type(layer) is InstanceNormalization and not (layer.center or layer.scale)
    ]  # fmt: skip
    probe = keras.Model(generator.input, [norm.input for norm in norms]) if norms else None
    heavy = {
        norm.name: stats for norm, stats in zip(norms, _channel_statistics(probe, photos) if probe else [])
        if np.median(stats["tail"]) > HEAVY
    }  # fmt: skip
    consumers = graph.consumers(generator)
    producers = graph.producers(generator)
    two_grid = {}  # norm name -> (its conv's name, centre, factor, fine factor)
    for name, stats in heavy.items():
        if not two_grids or np.median(stats["tail"]) <= TWO_GRID:
            continue
        norm = generator.get_layer(name)
        conv = _feeding_conv(producers, norm)
        # The conv's channels are doubled: nothing but the norm may read them (crops between take both
        # halves alike).
        chain = [conv, *_crops(producers, norm)] if conv is not None else []
        alone = all(len(consumers.get(id(layer.output), [])) == 1 for layer in chain)
        linear = conv is not None and conv.activation is keras.activations.linear
        if linear and alone and _feeds_relu_alone(consumers, norm):
            two_grid[name] = (conv.name, *_two_grid_factors(stats))
    convs = {conv: name for name, (conv, *_) in two_grid.items()}

    def clone(layer):
        if layer.name in two_grid:
            _, _, factor, fine = two_grid[layer.name]
            epsilon = np.asarray(layer.epsilon, np.float64) * factor**2
            return TwoGridInstanceNormalization(fine_scale=list(fine), epsilon=list(epsilon), name=layer.name)
        if layer.name in heavy:
            return SignSplitInstanceNormalization(
                epsilon=layer.epsilon, rectified=_feeds_relu_alone(consumers, layer), name=layer.name
            )
        config = layer.get_config()
        if layer.name in convs:
            config = {**config, "filters": 2 * layer.filters}
        if isinstance(layer, InstanceNormalization):
            config = {**config, "single_mean": True}
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(generator, clone_function=clone)
    for layer in generator.layers:
        weights = layer.get_weights()
        if layer.name in convs:
            weights = _two_grid_weights(layer, *two_grid[convs[layer.name]][1:])
        copy.get_layer(layer.name).set_weights(weights)
    return copy


def two_grid_convs(generator: keras.Model) -> list[str]:
    """The names of the convs that feed a ``TwoGridInstanceNormalization`` of ``generator`` (their int8
    range must be [-1, 1]: ``cyclegan_keras.deploy.calibration.least_error_ranges``)."""
    producers = graph.producers(generator)
    return [
        _feeding_conv(producers, layer).name for layer in generator.layers
        if isinstance(layer, TwoGridInstanceNormalization)
    ]  # fmt: skip


def _two_grid_factors(stats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per channel: the centre (typical mean) and factor that bring a norm input to [-1, 1], and the
    fine factor that brings its lowest mean and its maximum (after those) within [-1, 1]."""
    centre = np.median(stats["mean"], axis=0)
    factor = 1.0 / np.maximum(np.maximum(stats["hi"] - centre, centre - stats["lo"]), _NARROWEST)
    lowest_mean = ((stats["mean"] - centre) * factor).min(axis=0)
    top = (stats["hi"] - centre) * factor
    return centre, factor, 1.0 / np.maximum(np.maximum(-lowest_mean, top), _NARROWEST)


def _two_grid_weights(conv, centre: np.ndarray, factor: np.ndarray, fine: np.ndarray) -> list[np.ndarray]:
    """``conv``'s kernel and bias for its channels twice: ``(y - centre) * factor``, then times ``fine``."""
    kernel, bias = conv.get_weights()
    axis = kernel.ndim - (2 if isinstance(conv, keras.layers.Conv2DTranspose) else 1)
    shape = [1] * kernel.ndim
    shape[axis] = -1
    coarse_kernel, coarse_bias = kernel * factor.reshape(shape), (bias - centre) * factor
    return [
        np.concatenate([coarse_kernel, coarse_kernel * fine.reshape(shape)], axis=axis).astype("float32"),
        np.concatenate([coarse_bias, coarse_bias * fine]).astype("float32"),
    ]
