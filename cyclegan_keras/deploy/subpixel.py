"""A generator's image-resolution convolutions in sub-pixel form: the same function, faster int8 files.

LiteRT's int8 kernels (XNNPACK) run a generator's 3x3 convs at 128-256 channels near the CPU's peak,
but three kinds of conv far below it: the stride-2 transposed convs (``TRANSPOSE_CONV``), and the 7x7
convs at the image ends, whose 3 input or output channels leave the kernels' channel tiles mostly
empty (at 256 px a trained generator's ``conv_out`` took 9 ms, 34 multiply-adds per ns, its 3x3 convs
200). Written per output phase, the same arithmetic runs as ordinary convs on wider channels:

- ``SubPixelConv2DTranspose``: each of the four output phases of a stride-2 transposed conv is a
  stride-1 conv of its own taps over the input, the four interleaved by ``depth_to_space``;
- ``SpaceToDepthConv2D``: a conv over ``space_to_depth(x, 2)`` gives four output pixels per position
  (a 4x4 kernel on 12 channels in place of a 7x7 on 3), ``depth_to_space`` puts them in place.

Both keep the weights of the Keras layer they replace (``keras.layers.Conv2DTranspose`` and
``keras.layers.Conv2D``, their subclasses) and compute its exact output: the kernels are gathered
from those weights inside the graph, which LiteRT's converter folds to constants. Measured in
docs/benchmarks.md ("Integer LiteRT files").
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from cyclegan_keras.deploy import graph
from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import PACKAGE

# Convs with fewer input or output channels than this are the image ends that space-to-depth speeds up;
# wider ones already fill the kernels' tiles and would only do the 16/9 extra multiply-adds.
THIN = 8


def _phase(kernel: int, crop: int, phase: int, growth: int) -> tuple[list[int], tuple, tuple]:
    """Along one axis of a stride-2 transposed conv, the output rows ``2 m + phase`` (after ``crop``
    rows) as a stride-1 valid conv: its taps (kernel indices, by increasing input offset), the zero
    rows to add before and after the input, and the rows to drop before and after it. ``growth`` is
    the output length per phase less the input length."""
    # Output row o = 2 i + t of the full transposed conv; row 2 m + phase after the crop reads input
    # rows m + (phase + crop - t) / 2 for the taps t of that parity.
    taps = [t for t in range(kernel - 1, -1, -1) if (phase + crop - t) % 2 == 0]
    first, last = (phase + crop - taps[0]) // 2, (phase + crop - taps[-1]) // 2
    beyond = growth + last  # rows needed past the input's last one
    return taps, (max(0, -first), max(0, beyond)), (max(0, first), max(0, -beyond))


@keras.saving.register_keras_serializable(package=PACKAGE)
class SubPixelConv2DTranspose(keras.layers.Conv2DTranspose):
    """``keras.layers.Conv2DTranspose`` with strides 2 and ``"valid"`` padding, then a crop, computed
    as four stride-1 convs (one per output phase) interleaved by ``depth_to_space``.

    The weights are those of the ``Conv2DTranspose`` it replaces; the output is the same (to float
    round-off). LiteRT's int8 ``TRANSPOSE_CONV`` runs 1.4-1.6x slower than these convs
    (docs/benchmarks.md). Where the cropped output's height or width is odd the phases would differ
    in length, and the layer computes the transposed conv itself.

    Args:
        filters, kernel_size, **kwargs: as for ``keras.layers.Conv2DTranspose`` (strides 2, padding
            ``"valid"``, channels last, no dilation or output padding).
        cropping: rows and columns dropped from the output, ``((top, bottom), (left, right))`` as
            for ``keras.layers.Cropping2D``.
    """

    def __init__(self, filters: int, kernel_size, cropping=((0, 0), (0, 0)), **kwargs):
        kwargs.setdefault("strides", 2)
        super().__init__(filters, kernel_size, **kwargs)
        if (
            self.strides != (2, 2) or self.padding != "valid" or self.dilation_rate != (1, 1)
            or self.output_padding is not None or self.data_format != "channels_last"
            or min(self.kernel_size) < 2
        ):  # fmt: skip
            raise UsageError(
                "SubPixelConv2DTranspose takes kernels of 2 or more, strides 2, padding 'valid', "
                "channels_last, no dilation or output padding"
            )
        self.cropping = tuple(tuple(int(c) for c in side) for side in cropping)

    def _growth(self, axis: int) -> int | None:
        """The output length per phase less the input length along ``axis`` (0: rows, 1: columns),
        or None where the cropped output's length is odd."""
        extra = self.kernel_size[axis] - 2 - sum(self.cropping[axis])  # output 2 n + extra
        return None if extra % 2 else extra // 2

    def call(self, inputs):
        growth = [self._growth(axis) for axis in (0, 1)]
        if None in growth:
            (top, bottom), (left, right) = self.cropping
            return super().call(inputs)[:, top : -bottom or None, left : -right or None]
        phases = []
        for row in (0, 1):
            for column in (0, 1):
                rows = _phase(self.kernel_size[0], self.cropping[0][0], row, growth[0])
                columns = _phase(self.kernel_size[1], self.cropping[1][0], column, growth[1])
                phases.append(self._phase_conv(inputs, rows, columns))
        outputs = ops.depth_to_space(ops.concatenate(phases, axis=-1), 2)
        return self.activation(outputs)

    def _phase_conv(self, x, rows, columns):
        (row_taps, row_pad, row_cut), (column_taps, column_pad, column_cut) = rows, columns
        if row_pad != (0, 0) or column_pad != (0, 0):
            x = ops.pad(x, ((0, 0), row_pad, column_pad, (0, 0)))
        if row_cut != (0, 0) or column_cut != (0, 0):
            x = x[:, row_cut[0] : -row_cut[1] or None, column_cut[0] : -column_cut[1] or None]
        # Conv2DTranspose kernels are [rows, columns, out, in]; a conv's are [rows, columns, in, out].
        kernel = ops.take(self.kernel, np.asarray(row_taps), axis=0)
        kernel = ops.take(kernel, np.asarray(column_taps), axis=1)
        y = ops.conv(x, ops.transpose(kernel, (0, 1, 3, 2)), strides=1, padding="valid")
        return y + self.bias if self.use_bias else y

    def compute_output_shape(self, input_shape):
        n, h, w, c = super().compute_output_shape(input_shape)
        (top, bottom), (left, right) = self.cropping
        return (n, None if h is None else h - top - bottom, None if w is None else w - left - right, c)

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SpaceToDepthConv2D(keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, ``"valid"``, odd kernel) computed on ``space_to_depth(x, 2)``:
    a kernel of ``kernel_size // 2 + 1`` on four times the channels gives the four output pixels of
    each 2x2 block as channels, which ``depth_to_space`` puts in place.

    The weights are those of the ``Conv2D`` it replaces; the output is the same (to float round-off).
    For convs with few channels (an RGB input or output): LiteRT's int8 convs fill their channel tiles
    then (2-3x faster at 256 px, docs/benchmarks.md). Inputs whose height or width is odd or unknown
    when the graph is built (files of any size) take the plain conv.

    Args:
        filters, kernel_size, **kwargs: as for ``keras.layers.Conv2D`` (strides 1, padding ``"valid"``,
            channels last, no dilation or groups, odd kernel sizes).
    """

    def __init__(self, filters: int, kernel_size, **kwargs):
        super().__init__(filters, kernel_size, **kwargs)
        if (
            self.strides != (1, 1) or self.padding != "valid" or self.dilation_rate != (1, 1)
            or self.groups != 1 or self.data_format != "channels_last"
            or not all(k % 2 for k in self.kernel_size)
        ):  # fmt: skip
            raise UsageError(
                "SpaceToDepthConv2D takes odd kernel sizes, strides 1, padding 'valid', channels_last, no "
                "dilation or groups"
            )

    def call(self, inputs):
        height, width = inputs.shape[1], inputs.shape[2]
        if height is None or width is None or height % 2 or width % 2:
            return super().call(inputs)
        y = ops.conv(ops.space_to_depth(inputs, 2), self._blocked_kernel(), strides=1, padding="valid")
        if self.use_bias:
            y = y + ops.tile(self.bias, 4)
        outputs = ops.depth_to_space(y, 2)
        return self.activation(outputs)

    def _blocked_kernel(self):
        """The kernel on 2x2 blocks: ``[block rows, block columns, (row, column, in), (phase row,
        phase column, out)]``, zero where a block's pixel is outside the original kernel."""
        rows, columns = self.kernel_size
        # Index k (one past the kernel) is a zero tap.
        kernel = ops.pad(self.kernel, ((0, 1), (0, 1), (0, 0), (0, 0)))
        for axis, size in ((0, rows), (3, columns)):
            # Output pixel 2 b' + phase reads block b' + b, pixel d of it: kernel tap 2 b + d - phase.
            blocks = size // 2 + 1
            taps = np.arange(blocks)[:, None, None] * 2 + np.arange(2)[None, :, None] - np.arange(2)
            taps = np.where((taps >= 0) & (taps < size), taps, size)
            kernel = ops.take(kernel, taps.reshape(-1), axis=axis)
            kernel = ops.reshape(kernel, (*kernel.shape[:axis], blocks, 2, 2, *kernel.shape[axis + 1 :]))
        # [b_row, d_row, p_row, b_col, d_col, p_col, in, out] -> [b_row, b_col, (d_row, d_col, in),
        # (p_row, p_col, out)]: space_to_depth and depth_to_space order channels as (row, column, c).
        kernel = ops.transpose(kernel, (0, 3, 1, 4, 6, 2, 5, 7))
        shape = kernel.shape
        return ops.reshape(kernel, (shape[0], shape[1], 4 * shape[4], 4 * shape[7]))


def _transposed_ok(layer) -> bool:
    return (
        type(layer) is keras.layers.Conv2DTranspose and layer.strides == (2, 2) and layer.padding == "valid"
        and layer.dilation_rate == (1, 1) and layer.output_padding is None
        and layer.data_format == "channels_last" and min(layer.kernel_size) >= 2
    )  # fmt: skip


def _thin_ok(layer) -> bool:
    return (
        type(layer) is keras.layers.Conv2D and layer.strides == (1, 1) and layer.padding == "valid"
        and layer.dilation_rate == (1, 1) and layer.groups == 1 and layer.data_format == "channels_last"
        and all(k % 2 for k in layer.kernel_size) and min(layer.kernel.shape[-2:]) < THIN
    )  # fmt: skip


def subpixel_convs(generator: keras.Model) -> keras.Model:
    """A copy of ``generator`` with its stride-2 transposed convs as ``SubPixelConv2DTranspose``s (each
    taking in a crop that alone reads it) and its convs with fewer than ``THIN`` input or output
    channels as ``SpaceToDepthConv2D``s: the same function (to float round-off), in ops that
    LiteRT's int8 kernels run faster. ``generator`` itself where it has neither.

    Args:
        generator: a functional model (a generator of this package).
    """
    if not any(_transposed_ok(layer) or _thin_ok(layer) for layer in generator.layers):
        return generator
    producers, consumers = graph.producers(generator), graph.consumers(generator)
    croppings = {}  # transposed conv's name -> the crop it takes in
    for layer in generator.layers:
        source = producers.get(id(layer.input)) if isinstance(layer, keras.layers.Cropping2D) else None
        if source is not None and _transposed_ok(source) and len(consumers[id(source.output)]) == 1:
            croppings[source.name] = layer
    folded = {crop.name for crop in croppings.values()}

    def clone(layer):
        if _transposed_ok(layer):
            crop = croppings.get(layer.name)
            cropping = crop.cropping if crop is not None else ((0, 0), (0, 0))
            return SubPixelConv2DTranspose.from_config({**layer.get_config(), "cropping": cropping})
        if layer.name in folded:
            return keras.layers.Identity(name=layer.name)
        if _thin_ok(layer):
            return SpaceToDepthConv2D.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(generator, clone_function=clone)
    copy.set_weights(generator.get_weights())
    return copy
