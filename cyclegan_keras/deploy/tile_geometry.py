"""The geometry of running a functional generator region by region: what each layer needs of its
input for a region of its output, and the pieces (stages) the graph is cut into."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import InstanceNormalization, ReflectionPadding2D

POINTWISE = (
    keras.layers.BatchNormalization,  # at inference, a per-channel scale and shift
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.Activation,
    keras.layers.Dropout,
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Multiply,
    keras.layers.Average,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Concatenate,
)
# Pointwise layers of one input: a tensor they derive from a stored one costs nothing to recompute.
CHAINABLE = (
    keras.layers.BatchNormalization,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.Activation,
    keras.layers.Dropout,
)

Region = tuple[int, int, int, int]  # rows [y0, y1), columns [x0, x1)


class Axis:
    """How one layer maps an interval of its output to the interval of its input it needs, on one axis."""

    def __init__(self, kind: str, a: int = 0, b: int = 0, mode: str = "zero"):
        self.kind, self.a, self.b, self.mode = kind, a, b, mode  # pad (before, after), crop, conv (k, s)

    def size(self, n: int) -> int:
        if self.kind == "pad":
            return n + self.a + self.b
        if self.kind == "crop":
            return n - self.a - self.b
        if self.kind == "conv":
            return (n - self.a) // self.b + 1
        if self.kind == "convt":
            return (n - 1) * self.b + self.a
        return n

    def need(self, lo: int, hi: int, n: int) -> tuple[int, int]:
        if self.kind == "pad":
            index, valid = self.source_rows(lo, hi, n)
            return (int(index[valid].min()), int(index[valid].max()) + 1) if valid.any() else (0, 1)
        if self.kind == "crop":
            return lo + self.a, hi + self.a
        if self.kind == "conv":
            return lo * self.b, (hi - 1) * self.b + self.a
        if self.kind == "convt":
            k, s = self.a, self.b
            return max(0, -((k - 1 - lo) // s)), min(n - 1, (hi - 1) // s) + 1
        return lo, hi

    def source_rows(self, lo: int, hi: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """For a padding layer: the input row of each output row in [lo, hi), and which rows have one."""
        index = np.arange(lo, hi) - self.a
        if self.mode == "reflect":
            index = np.abs(index)
            index = np.where(index >= n, 2 * (n - 1) - index, index)
            return index, np.ones(index.shape, bool)
        return np.clip(index, 0, n - 1), (index >= 0) & (index < n)


@dataclass
class Op:
    layer: keras.layers.Layer
    inputs: list[int]
    output: int
    rows: Axis
    cols: Axis


@dataclass
class Stage:
    target: int
    ops: list[Op]
    sources: list[int]


class TileError(UsageError):
    """A generator, tile or photo that tiled translation cannot take; the message says what to pass."""


def axes(layer) -> tuple[Axis, Axis]:
    name = f"{layer.name!r} ({type(layer).__name__})"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise TileError(f"Tiled translation needs channels-last layers; {name} is not.")
    if isinstance(layer, ReflectionPadding2D):
        p = layer.padding
        return Axis("pad", p, p, "reflect"), Axis("pad", p, p, "reflect")
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        return Axis("pad", top, bottom), Axis("pad", left, right)
    if isinstance(layer, keras.layers.Cropping2D):
        (top, bottom), (left, right) = layer.cropping
        return Axis("crop", top, bottom), Axis("crop", left, right)
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        transposed = isinstance(layer, keras.layers.Conv2DTranspose)
        if (
            layer.padding != "valid"
            or tuple(layer.dilation_rate) != (1, 1)
            or (transposed and layer.output_padding is not None)
        ):
            raise TileError(f"Tiled translation needs 'valid' undilated convolutions; {name} is not.")
        kind = "convt" if transposed else "conv"
        (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
        return Axis(kind, kh, sh), Axis(kind, kw, sw)
    if isinstance(layer, (InstanceNormalization, *POINTWISE)):
        return Axis("same"), Axis("same")
    raise TileError(f"Tiled translation cannot run layer {name}; translate this generator whole (no --tile).")


def union(a: Region | None, b: Region) -> Region:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


def crop_region(value, have: Region, want: Region, rows: int = 1):
    """``want`` of a tensor that holds ``have``; its rows are dimension ``rows``, its columns the next."""
    if have == want:
        return value
    index = [slice(None)] * 4
    index[rows] = slice(want[0] - have[0], want[1] - have[0])
    index[rows + 1] = slice(want[2] - have[2], want[3] - have[2])
    return value[tuple(index)]


def end_pads(
    axis: Axis, rows: tuple[int, int], n: int, have: tuple[int, int]
) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """For a padding layer's rows ``rows`` (of its output) from a value that holds input rows ``have``: the
    value's rows to keep (relative to ``have``) and the rows to pad before and after them, when the padded
    rows are those rows padded at their ends as ``keras.ops.pad`` pads (with zeros, or reflected within
    them); else None."""
    lo, hi = rows
    before, after = max(0, axis.a - lo), max(0, hi - axis.a - n)
    start, stop = lo - axis.a + before, hi - axis.a - after
    if stop <= start or start < have[0] or stop > have[1]:
        return None
    if axis.mode == "reflect" and max(before, after) >= stop - start:
        return None  # the reflection reaches rows beyond those kept
    return (start - have[0], stop - have[0]), (before, after)


def pad_axis(value, axis: Axis, lo: int, hi: int, n: int, have: tuple[int, int], dim: int):
    """A padding layer's rows [lo, hi) along ``dim`` from ``value``, which holds input rows ``have``: the
    runs of consecutive input rows as slices and the zero rows as zeros, put together in one copy (a
    gather of every row took 11% of a megapixel's exact tiles)."""
    index, valid = axis.source_rows(lo, hi, n)
    if valid.all() and index[0] == have[0] and np.array_equal(index, np.arange(index[0], index[0] + hi - lo)):
        return value  # no padding on this side of this tile: its rows are already the input's
    pieces, start = [], 0
    while start < len(index):
        end = start + 1
        while (
            end < len(index)
            and valid[end] == valid[start]
            and (index[end] == index[end - 1] + 1 or not valid[start])
        ):
            end += 1
        if valid[start]:
            rows = [slice(None)] * len(value.shape)
            rows[dim] = slice(int(index[start]) - have[0], int(index[end - 1]) + 1 - have[0])
            pieces.append(value[tuple(rows)])
        else:
            shape = list(value.shape)
            shape[dim] = end - start
            pieces.append(ops.zeros(shape, value.dtype))
        start = end
    return pieces[0] if len(pieces) == 1 else ops.concatenate(pieces, axis=dim)


def use_counts(stage: Stage) -> dict[int, int]:
    uses = {stage.target: 1}
    for op in stage.ops:
        for i in op.inputs:
            uses[i] = uses.get(i, 0) + 1
    return uses


def last_reads(stages: list[Stage]) -> dict[int, int]:
    last = {}
    for index, stage in enumerate(stages):
        for source in stage.sources:
            last[source] = index
    return last
