"""The layers CycleGAN needs that Keras 3 does not ship: reflection padding and instance norm (and the
instance norms written for integer LiteRT files)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from cyclegan_keras.errors import UsageError

PACKAGE = "cyclegan_keras"


@keras.saving.register_keras_serializable(package=PACKAGE)
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by mirroring the image, without repeating the edge pixel.

    Equivalent to PyTorch's ``nn.ReflectionPad2d``. Built from slices and concatenations rather than
    ``ops.pad(mode="reflect")``: LiteRT's XNNPACK delegate runs those, whereas ``MIRROR_PAD`` would run
    outside it and split the exported graph (measured in docs/benchmarks.md).

    Args:
        padding: pixels added on each side of both spatial axes (channels-last input).
    """

    def __init__(self, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        if padding < 0:
            raise UsageError(f"padding must be >= 0, got {padding}")
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        for axis in (1, 2):
            size = inputs.shape[axis]
            if size is not None and size <= p:
                raise UsageError(
                    f"ReflectionPadding2D({p}) needs more than {p} pixels on each side; got a "
                    f"{'height' if axis == 1 else 'width'} of {size}. Use larger images."
                )
        return _mirror(_mirror(inputs, p, axis=1), p, axis=2)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        grow = 2 * self.padding
        return (n, None if h is None else h + grow, None if w is None else w + grow, c)

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package=PACKAGE)
class InstanceNormalization(keras.layers.Layer):
    """Normalises each image's channels over height and width (Ulyanov et al., 2016).

    Statistics come from the image itself at training and inference alike, so there are no running
    averages. They are computed in float32 under mixed precision, from ops that LiteRT's XNNPACK
    delegate runs in float and int8 alike.

    Args:
        epsilon: added to the variance, 1e-5 as in PyTorch's ``nn.InstanceNorm2d``; or one value per
            channel (a list), which keeps a norm exact when its input channels are rescaled
            (``cyclegan_keras.deploy.quantization``).
        center: learn a per-channel offset (off in CycleGAN).
        scale: learn a per-channel gain (off in CycleGAN).
        single_mean: take each spatial mean in one reduction, for int8 files (exact int32 sums, one op
            instead of two: faster and one rounding less); by default row means and then their mean,
            which keeps float32 round-off at TensorFlow's level.
    """

    def __init__(
        self,
        epsilon: float | list[float] = 1e-5,
        center: bool = False,
        scale: bool = False,
        single_mean: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.epsilon = [float(e) for e in epsilon] if isinstance(epsilon, (list, tuple)) else float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.single_mean = bool(single_mean)

    def build(self, input_shape):
        channels = input_shape[-1]
        if (self.center or self.scale) and channels is None:
            raise UsageError("InstanceNormalization with center/scale needs a known channel count.")
        self.gamma = (
            self.add_weight(shape=(channels,), initializer="ones", name="gamma") if self.scale else None
        )
        self.beta = (
            self.add_weight(shape=(channels,), initializer="zeros", name="beta") if self.center else None
        )

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        # The centred values times themselves, not ops.square(x - mean): that converts to LiteRT's
        # SQUARED_DIFFERENCE, which XNNPACK does not run in int8 (far slower quantized norms).
        centred = x - self._mean(x)
        epsilon = self._epsilon()
        x = centred * ops.rsqrt(self._mean(centred * centred) + epsilon)
        if self.gamma is not None:
            x = x * ops.cast(self.gamma, "float32")
        if self.beta is not None:
            x = x + ops.cast(self.beta, "float32")
        return ops.cast(x, self.compute_dtype)

    def normalise_with(self, inputs, mean: np.ndarray, variance: np.ndarray):
        """``inputs`` normalised with statistics given in float64 (arrays that broadcast against
        ``inputs``' channels-last shape), not the inputs' own: tiles of a photo with the whole photo's
        (``deploy.tiling``), frames of a video with the clip's (``video.statistics``)."""
        x = ops.cast(inputs, "float32")
        scale = 1.0 / np.sqrt(variance + np.asarray(self.epsilon, np.float64))
        mean, scale = (ops.convert_to_tensor(v.astype(np.float32)) for v in (mean, scale))
        x = (x - mean) * scale
        if self.gamma is not None:
            x = x * ops.cast(self.gamma, "float32")
        if self.beta is not None:
            x = x + ops.cast(self.beta, "float32")
        return ops.cast(x, self.compute_dtype)

    def _epsilon(self):
        if isinstance(self.epsilon, float):
            return self.epsilon
        # A tensor: on PyTorch a numpy array beside a tensor that needs gradients fails.
        return ops.convert_to_tensor(np.asarray(self.epsilon, np.float32))

    def _mean(self, x):
        return _single_mean(x) if self.single_mean else _spatial_mean(x)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "single_mean": self.single_mean,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class SignSplitInstanceNormalization(InstanceNormalization):
    """``InstanceNormalization`` written for 8-bit integer files: the centred input's positive and
    negative parts are separate tensors.

    ``relu(x - mean)`` and ``relu(mean - x)`` each get their own 8-bit grid in an int8 LiteRT file,
    finer than one grid for both signs where one side has the long tail; the variance is the sum of
    their squares' means, and the output ``(positive - negative) * rsqrt(variance + epsilon)``, the
    same as ``InstanceNormalization`` in float. With ``rectified`` the output is ``positive * rsqrt(...)``,
    which equals a following ReLU's output: only for norms whose output goes to a ReLU alone
    (``cyclegan_keras.deploy.quantization.split_norms`` checks that). The export uses it for int8 files where
    a norm's input is heavy-tailed (+3.8 dB on a trained generator, docs/benchmarks.md); training
    keeps ``InstanceNormalization``.

    Args:
        epsilon: as for ``InstanceNormalization``.
        rectified: return the ReLU of the normalised values.
    """

    def __init__(self, epsilon: float | list[float] = 1e-5, rectified: bool = False, **kwargs):
        kwargs.setdefault("single_mean", True)
        super().__init__(epsilon=epsilon, **kwargs)
        if self.center or self.scale:
            raise UsageError("SignSplitInstanceNormalization has no learned offset or gain.")
        self.rectified = bool(rectified)

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        mean = self._mean(x)
        positive = ops.relu(x - mean)
        negative = ops.relu(mean - x)
        epsilon = self._epsilon()
        variance = self._mean(positive * positive) + self._mean(negative * negative)
        x = (positive if self.rectified else positive - negative) * ops.rsqrt(variance + epsilon)
        return ops.cast(x, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "rectified": self.rectified}


@keras.saving.register_keras_serializable(package=PACKAGE)
class TwoGridInstanceNormalization(InstanceNormalization):
    """``ReLU(InstanceNormalization(x))`` written for 8-bit integer files, from ``x`` on two grids.

    The input holds each channel twice: ``x`` (coarse: its calibration range) and ``fine_scale * x``
    (fine: in an int8 file the feeding conv saturates beyond [-1, 1], which keeps 8-bit levels for
    the values near and above the mean that the ReLU passes). The mean and variance come from the
    coarse half, the variance as one sum of products per channel (``_mean_square``: int32 sums in an
    int8 file instead of squares rounded to 8 bits); the output is ``relu(fine - mean * fine_scale) *
    rsqrt(variance + epsilon) / fine_scale``, the ReLU of the normalised coarse half (in an int8 file
    too, wherever ``mean * fine_scale`` is above -1, the fine half's lower clip). Only for norms whose
    output goes to a ReLU alone; ``cyclegan_keras.deploy.quantization.split_norms`` builds the feeding conv
    (docs/benchmarks.md).

    Args:
        fine_scale: the fine half's factor per channel (positive).
        epsilon: as for ``InstanceNormalization``, for the coarse half.
    """

    def __init__(
        self,
        fine_scale: list[float],
        epsilon: float | list[float] = 1e-5,
        **kwargs,
    ):
        kwargs.setdefault("single_mean", True)
        super().__init__(epsilon=epsilon, **kwargs)
        if self.center or self.scale:
            raise UsageError("TwoGridInstanceNormalization has no learned offset or gain.")
        self.fine_scale = [float(f) for f in fine_scale]
        if min(self.fine_scale, default=0.0) <= 0:
            raise UsageError("TwoGridInstanceNormalization needs a positive fine_scale per channel.")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")
        channels = len(self.fine_scale)
        coarse, fine = x[..., :channels], x[..., channels:]
        factor = np.asarray(self.fine_scale, np.float32)
        epsilon = self._epsilon()
        mean = self._mean(coarse)
        # The mean square less the squared mean: the coarse half is centred on its typical mean, so
        # the two terms do not cancel, and no centred copy of the activations is needed.
        variance = ops.relu(_mean_square(coarse) - mean * mean)
        gain = ops.rsqrt(variance + epsilon) * (1.0 / factor)
        return ops.cast(ops.relu(fine - mean * factor) * gain, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], len(self.fine_scale))

    def get_config(self):
        return {**super().get_config(), "fine_scale": self.fine_scale}


def _mirror(x, padding: int, axis: int):
    # Row i before the edge is row i after it (counting from 0 at the edge), and likewise at the end.
    if not padding:
        return x

    def rows(start: int, stop: int | None):
        index = [slice(None)] * 4
        index[axis] = slice(start, stop)
        return x[tuple(index)]

    def joined(parts: list):
        # The networks pad by 1 or 3, so no concatenation here joins more than three tensors:
        # XNNPACK leaves wider ones to LiteRT's slow builtin op.
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=axis)

    before = joined([rows(i, i + 1) for i in range(padding, 0, -1)])
    after = joined([rows(-1 - i, -i) for i in range(1, padding + 1)])
    return ops.concatenate([before, x, after], axis=axis)


def _spatial_mean(x):
    # Row means, then their mean: the same value, but LiteRT's MEAN then adds up at most one side's
    # worth of values at a time instead of H * W in a row, which keeps float32 round-off to the level
    # of TensorFlow's own (tree) reduction.
    return ops.mean(ops.mean(x, axis=2, keepdims=True), axis=1, keepdims=True)


def _single_mean(x):
    return ops.mean(x, axis=(1, 2), keepdims=True)


def _mean_square(x):
    # Per channel, the spatial mean of x * x as one batched matrix product where the size is known:
    # an int8 LiteRT file then adds the products up in int32, where x * x first would round every
    # square to 8 bits (a heavy-tailed tensor's squares mostly to 0). Unknown sizes take the mean.
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    if height is None or width is None or channels is None:
        return _single_mean(x * x)
    rows = ops.transpose(x, (0, 3, 1, 2))
    total = ops.matmul(
        ops.reshape(rows, (-1, channels, 1, height * width)),
        ops.reshape(rows, (-1, channels, height * width, 1)),
    )
    return ops.reshape(total, (-1, 1, 1, channels)) * (1.0 / (height * width))
