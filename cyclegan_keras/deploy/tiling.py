"""Translating photos of any size in tiles, with the instance-norm statistics of the whole photo.

Cropping a photo into tiles and translating each is the usual answer to photos too large for memory,
and it is wrong for these generators: instance normalisation then uses each tile's own statistics, so
tiles differ in colour and meet at seams. Here the generator's functional graph is run piece by piece
instead, layer by layer on regions of each tensor, with exactly the context (halo) every convolution
needs and the photo's own border handling (reflection or zeros) only at the photo's borders:

- ``exact``: the graph is cut before every normalisation. Each cut tensor is computed over the whole
  photo, tile by tile, into a full-size array (in memory, or on disk when memory is short) while every
  channel's sum and sum of squares accumulate in float64; the next piece normalises with those
  whole-photo statistics. The result equals the whole-photo translation up to float round-off.
- ``thumbnail``: the statistics come from a downscaled copy of the photo (about a megapixel), then the
  whole network runs once per tile. No temporary arrays; the tiles agree exactly where they meet (the
  same fixed statistics everywhere), and the result differs from the whole-photo one only as far as the
  small copy's statistics differ from the photo's.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from cyclegan_keras.deploy.options import TILE_STATS
from cyclegan_keras.deploy.tile_arrays import Progress, TileArrays, channel_sums, thumbnail, to_pixels
from cyclegan_keras.deploy.tile_geometry import (
    CHAINABLE,
    Op,
    Region,
    Stage,
    TileError,
    axes,
    crop_region,
    end_pads,
    last_reads,
    pad_axis,
    union,
    use_counts,
)
from cyclegan_keras.networks.layers import InstanceNormalization
from cyclegan_keras.system.hardware import resident_memory

# Statistics a normalisation uses in place of its input's own: called with the norm's input (a key),
# and that input's per-image means and variances ``[N, C]`` (float64); returns those to use. One that
# also has ``fixed(key)`` (means and variances ``[C]`` whatever the input, or None) spares the whole-frame
# calls of video (``video.statistics``) reading their inputs' own.
Statistics = Callable[[int, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
# The thumbnail's size in thumbnail mode: statistics of about a megapixel (as URST, AAAI 2022).
THUMBNAIL_PIXELS = 1024 * 1024
# Candidate tile sides when the tile is chosen for a memory budget, largest first.
TILE_SIDES = (4096, 2048, 1024, 512, 256, 128)
# Peak memory over the bytes of the tensors alive at once (measured: bench/large_photos.py,
# docs/benchmarks.md): the convolutions' working memory and the temporaries of padding and
# normalisation come on top, more so in a tile's many small calls than in one whole-photo call.
TILE_OVERHEAD = 5.0
# A whole photo's peak over its live tensors, per backend (tests/test_inference.py measures it at two
# sizes): PyTorch's channels-first functions hold the least (norms in place, no padded copies before
# strided convolutions); JAX's compiled call the most (XLA's buffers, and compilation on a new size).
WHOLE_OVERHEAD = {"tensorflow": 2.5, "torch": 1.4, "jax": 6.0}
# Copies of the weights a backend's whole-photo call makes on its first use: PyTorch's functions keep the
# kernels in their own layout (``deploy.torch_native``), the 3x3 ones of many channels as Winograd's
# 4x4 (16/9 the size): 79 MB for an official ResNet-9.
WEIGHT_COPIES = {"tensorflow": 0, "torch": 2, "jax": 0}


class KerasLayers:
    """How tiles run through the layers' own Keras calls, as channels-last tensors: on TensorFlow and
    JAX (PyTorch's own functions serve on PyTorch: ``deploy.torch_native.TileFunctions``)."""

    rows = 1  # the rows' dimension of a tile's tensors; the columns' is the next

    def tensor(self, part: np.ndarray):
        return ops.convert_to_tensor(np.ascontiguousarray(part)[None])

    def array(self, value) -> np.ndarray:
        return np.asarray(ops.convert_to_numpy(value), np.float32)[0]

    def copy(self, destination: np.ndarray, value) -> None:
        destination[...] = self.array(value)

    def pad(self, value, rows: tuple[int, int], cols: tuple[int, int], mode: str):
        return ops.pad(value, [(0, 0), rows, cols, (0, 0)], mode=mode)

    def call(self, op: Op, args: list):
        return op.layer(args if len(args) > 1 else args[0])

    def normalise(self, op: Op, x, mean: np.ndarray, variance: np.ndarray):
        return op.layer.normalise_with(x, mean, variance)

    def running(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


def _layout(ops_: list[Op]):
    if keras.backend.backend() == "torch":
        from cyclegan_keras.deploy.torch_native import TileFunctions

        return TileFunctions(ops_)
    return KerasLayers()


class TiledGenerator:
    """A functional Keras generator run in tiles over photos of any size (see the module's docstring).

    Args:
        generator: a functional ``keras.Model`` of the layers this package's generators use (ResNet and
            U-Net: convolutions with ``"valid"`` padding, reflection and zero padding, cropping, instance
            norm, pointwise activations, ``Add`` and ``Concatenate``).

    Raises:
        TileError: the model has a layer that cannot be run in tiles.
    """

    def __init__(self, generator: keras.Model):
        self.generator = generator
        if len(generator.inputs) != 1 or len(generator.outputs) != 1:
            raise TileError("Tiled translation needs a generator with one input and one output.")
        self.input = id(generator.inputs[0])
        self.output = id(generator.outputs[0])
        self.channels = {self.input: generator.inputs[0].shape[-1]}
        self.ops: list[Op] = []
        for layer in generator.layers:
            if isinstance(layer, keras.layers.InputLayer):
                continue
            try:
                inputs, output = layer.input, layer.output
            except (AttributeError, ValueError) as error:  # a layer called more than once, a nested model
                raise TileError(f"Tiled translation cannot run layer {layer.name!r}: {error}") from None
            inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            rows, cols = axes(layer)
            self.ops.append(Op(layer, [id(t) for t in inputs], id(output), rows, cols))
            self.channels[id(output)] = output.shape[-1]
        self.producer = {op.output: op for op in self.ops}
        self.norm_inputs = {
            op.inputs[0]: op for op in self.ops if isinstance(op.layer, InstanceNormalization)
        }
        self.multiple = self._multiple()
        self.halo = self._halo()

    # ----- geometry -----------------------------------------------------------------------------------

    def sizes(self, height: int, width: int) -> dict[int, tuple[int, int]]:
        """Every tensor's height and width for an input of this size."""
        sizes = {self.input: (height, width)}
        for op in self.ops:
            h, w = sizes[op.inputs[0]]
            sizes[op.output] = (op.rows.size(h), op.cols.size(w))
        return sizes

    def _multiple(self) -> int:
        # The smallest side m such that every multiple of m passes through the graph (U-Net: 2 ** depth).
        # Odd multiples of m: a side that m divides only once more is the test of each halving.
        for m in (4, 8, 16, 32, 64, 128, 256, 512, 1024):
            if self._fits(3 * m, 5 * m) and self._fits(7 * m, 9 * m):
                return m
        raise TileError("Tiled translation cannot find the sizes this generator takes.")

    def _fits(self, height: int, width: int) -> bool:
        sizes = {self.input: (height, width)}
        for op in self.ops:
            shapes = {sizes[i] for i in op.inputs}
            if len(shapes) != 1:
                return False
            h, w = shapes.pop()
            sizes[op.output] = (op.rows.size(h), op.cols.size(w))
            if min(sizes[op.output]) < 1:
                return False
        return sizes[self.output] == (height, width)

    def _halo(self) -> int:
        # Context each output pixel draws on, in input pixels: what one pixel in the middle of a large
        # photo needs from it when the whole network runs at once.
        side = 64 * self.multiple
        stage = Stage(self.output, self.ops, [self.input])
        needs, _ = self._needs(stage, (side // 2, side // 2 + 1) * 2, self.sizes(side, side))
        y0, y1, x0, x1 = needs[self.input]
        return max(side // 2 - y0, y1 - side // 2 - 1, side // 2 - x0, x1 - side // 2 - 1)

    # ----- plans --------------------------------------------------------------------------------------

    def _stages(self, exact: bool) -> list[Stage]:
        """Exact: one stage per normalisation input (and per tensor two later stages read), in order.
        Otherwise one stage for the whole network."""
        cuts = {self.output}
        if exact:
            cuts |= set(self.norm_inputs)
            uses: dict[int, int] = {}
            for op in self.ops:
                for i in op.inputs:
                    uses[i] = uses.get(i, 0) + 1
            for op in self.ops:
                if uses.get(op.output, 0) > 1 and not self._derived(op.output, cuts):
                    cuts.add(op.output)
        stages = []
        for op in self.ops:
            if op.output in cuts:
                stages.append(self._stage(op.output, cuts | {self.input}))
        return stages

    def _derived(self, tensor: int, cuts: set[int]) -> bool:
        # Computed from a stored tensor by pointwise layers of one input: recomputing it is free.
        while tensor in self.producer and tensor not in cuts:
            op = self.producer[tensor]
            if not isinstance(op.layer, (InstanceNormalization, *CHAINABLE)):
                return False
            tensor = op.inputs[0]
        return True

    def _stage(self, target: int, stored: set[int]) -> Stage:
        wanted, ops, sources = {target}, [], set()
        for op in reversed(self.ops):
            if op.output not in wanted:
                continue
            ops.append(op)
            for i in op.inputs:
                (sources if i in stored else wanted).add(i)
        return Stage(target, ops[::-1], sorted(sources))

    def _needs(self, stage: Stage, region: Region, sizes) -> tuple[dict[int, Region], dict[int, list]]:
        needs: dict[int, Region] = {stage.target: region}
        per_op: dict[int, list[Region]] = {}
        for op in reversed(stage.ops):
            y0, y1, x0, x1 = needs[op.output]
            wants = []
            for i in op.inputs:
                h, w = sizes[i]
                want = (*op.rows.need(y0, y1, h), *op.cols.need(x0, x1, w))
                wants.append(want)
                needs[i] = union(needs.get(i), want)
            per_op[op.output] = wants
        return needs, per_op

    def _step(self, tensor: int, side: int, sizes, height: int) -> int:
        # A tile of ``side`` input pixels, in this tensor's pixels.
        return max(1, math.ceil(side * sizes[tensor][0] / height))

    def _tiles(self, tensor: int, side: int, sizes, height: int) -> list[Region]:
        h, w = sizes[tensor]
        step = self._step(tensor, side, sizes, height)
        return [
            (y, min(y + step, h), x, min(x + step, w)) for y in range(0, h, step) for x in range(0, w, step)
        ]

    def _stage_bytes(self, stage: Stage, region: Region, sizes) -> int:
        # Peak bytes of one tile's tensors, freed after their last use as ``_run_tile`` frees them.
        return int(self._live_peak(stage, self._needs(stage, region, sizes)[0]) * TILE_OVERHEAD)

    def _live_peak(self, stage: Stage, needs: dict[int, Region]) -> int:
        """The most bytes of the stage's tensors alive at once, each freed after its last reader."""

        def nbytes(tensor: int) -> int:
            r = needs[tensor]
            return 4 * (r[1] - r[0]) * (r[3] - r[2]) * self.channels[tensor]

        uses = use_counts(stage)
        live = sum(nbytes(s) for s in stage.sources if s in needs)
        peak = live
        for op in stage.ops:
            out = nbytes(op.output)
            peak = max(peak, live + out)
            live += out
            for i in op.inputs:
                uses[i] -= 1
                if not uses[i]:
                    live -= nbytes(i)
        return peak

    def whole_bytes(self, height: int, width: int) -> int:
        """Memory the generator takes on a photo of this size whole, as ``cyclegan_keras.deploy.forward``
        runs it: the tensors alive at once, each freed after its last reader, with the convolutions'
        working memory on the backend in use (``WHOLE_OVERHEAD``) and the weights it copies
        (``WEIGHT_COPIES``)."""
        sizes = self.sizes(height, width)
        needs = {tensor: (0, h, 0, w) for tensor, (h, w) in sizes.items()}
        live = self._live_peak(Stage(self.output, self.ops, [self.input]), needs)
        backend = keras.backend.backend()
        weights = 4 * sum(op.layer.count_params() for op in self.ops) * WEIGHT_COPIES[backend]
        return int(live * WHOLE_OVERHEAD[backend]) + weights

    def plan(self, height: int, width: int, tile: int, exact: bool) -> dict:
        """Memory a tiled translation takes: ``tile_bytes`` for the tensors of the largest tile's work,
        ``store_bytes`` for the whole-photo arrays kept at once (exact mode).

        ``height`` and ``width`` must be multiples of ``multiple``.
        """
        sizes = self.sizes(height, width)
        tile_bytes, store_bytes, live = 0, 0, {}
        stages = self._stages(exact)
        last = last_reads(stages)
        for index, stage in enumerate(stages):
            # The middle tile: one inside the photo needs context on every side, the most of any.
            h, w = sizes[stage.target]
            step = self._step(stage.target, tile, sizes, height)
            y, x = step * ((h - 1) // step // 2), step * ((w - 1) // step // 2)
            middle = (y, min(y + step, h), x, min(x + step, w))
            tile_bytes = max(tile_bytes, self._stage_bytes(stage, middle, sizes))
            if stage.target != self.output:
                live[stage.target] = 4 * h * w * self.channels[stage.target]
            store_bytes = max(store_bytes, sum(live.values()))
            for tensor in [t for t in live if last.get(t, -1) <= index]:
                del live[tensor]
        return {"tile_bytes": tile_bytes, "store_bytes": store_bytes, "stages": len(stages)}

    def array_memory(self, budget: int, height: int, width: int, tile_bytes: int) -> int:
        """Of a process-wide memory ``budget``, what the whole-photo arrays of exact mode may hold in
        memory for a photo of this size: the budget less what the process holds already, one tile's
        work and the result."""
        result = 4 * height * width * self.channels[self.output]
        return max(0, budget - resident_memory() - tile_bytes - result)

    # ----- running ------------------------------------------------------------------------------------

    def check_tile(self, tile: int, exact: bool) -> None:
        """Raises ``TileError`` for a tile smaller than the network's context needs."""
        smallest = self.multiple if exact else max(self.multiple, self.halo)
        if not isinstance(tile, int) or tile < smallest:
            why = f"the {self.multiple} px this generator's downsampling needs"
            if not exact:
                why = f"this generator's context of {self.halo} px on each side (thumbnail statistics)"
            raise TileError(f"A tile of {tile} px is smaller than {why}: pass --tile {smallest} or more.")

    def __call__(
        self,
        image: np.ndarray,
        tile: int,
        tile_stats: str = "exact",
        memory: int | None = None,
        temp_dir: str | None = None,
        progress: Callable[[int, int], None] | None = None,
        thumbnail_pixels: int = THUMBNAIL_PIXELS,
        statistics: Statistics | None = None,
    ) -> np.ndarray:
        """Translates one image ``[H, W, C]`` whose sides are multiples of ``multiple``.

        Args:
            image: ``uint8`` pixels (the result is ``uint8`` too), or floats in [-1, 1] (float32 out).
            tile: the tile side in input pixels.
            tile_stats: ``"exact"`` or ``"thumbnail"`` (``TILE_STATS``).
            memory: bytes the whole-photo arrays of exact mode may take in memory; beyond that they go
                to disk (default: always in memory).
            temp_dir: where those disk-backed arrays go (default: the system's temporary folder); their
                folder is removed when this returns or raises.
            progress: called with (done, total) after each tile.
            thumbnail_pixels: the thumbnail's size in thumbnail mode.
            statistics: in exact mode, what each normalisation uses instead of the photo's own statistics
                (``Statistics``: a video's, ``cyclegan_keras.video.statistics``).

        Raises:
            TileError: a tile too small, a photo too large even for the disk.
            WriteError: the disk filled up while the temporary arrays were being made.
        """
        if tile_stats not in TILE_STATS:
            raise TileError(f"tile_stats must be one of {', '.join(TILE_STATS)}, got {tile_stats!r}")
        exact = tile_stats == "exact"
        self.check_tile(tile, exact)
        height, width = image.shape[:2]
        if height % self.multiple or width % self.multiple:
            raise TileError(f"Tiled translation needs sides that are multiples of {self.multiple}.")
        thumb = None if exact else thumbnail(image, self.multiple, thumbnail_pixels)
        if thumb is not None and thumb.shape == image.shape:
            exact, thumb = True, None  # the photo is its own thumbnail: its statistics are the exact ones
        stats: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        sizes = self.sizes(height, width)
        stages = self._stages(exact)
        total = sum(len(self._tiles(s.target, tile, sizes, height)) for s in stages)
        if thumb is not None:
            thumb_sizes, thumb_stages = self.sizes(*thumb.shape[:2]), self._stages(True)
            total += sum(len(self._tiles(s.target, tile, thumb_sizes, thumb.shape[0])) for s in thumb_stages)
        counter = Progress(progress, total)
        # Made at each call: it holds the weights as they are now.
        layout = _layout(self.ops)
        with layout.running():
            if thumb is not None:
                # The thumbnail's statistics, exactly: its arrays are small enough for memory.
                with TileArrays(None, None) as arrays:
                    self._run(thumb, thumb_stages, thumb_sizes, tile, (stats, layout), arrays, counter)
            plan = self.plan(height, width, tile, exact)
            with TileArrays(memory, temp_dir, plan["store_bytes"]) as arrays:
                return self._run(
                    image,
                    stages,
                    sizes,
                    tile,
                    (stats, layout),
                    arrays,
                    counter,
                    statistics if exact else None,
                )

    def _run(
        self, image, stages, sizes, tile, state, arrays: TileArrays, counter: Progress, statistics=None
    ) -> np.ndarray:
        # ``state``: the statistics found so far, and how the tiles run (``KerasLayers``, ``TileFunctions``).
        stats, layout = state
        height = image.shape[0]
        pixels = image.dtype == np.uint8
        last = last_reads(stages)
        for index, stage in enumerate(stages):
            h, w = sizes[stage.target]
            final = stage.target == self.output
            if final:
                arrays.trim()
                out = np.empty((h, w, self.channels[self.output]), np.uint8 if pixels else np.float32)
            else:
                arrays.create(stage.target, (h, w, self.channels[stage.target]))
            sums = np.zeros((2, self.channels[stage.target])) if stage.target in self.norm_inputs else None
            for region in self._tiles(stage.target, tile, sizes, height):
                value = self._run_tile(stage, region, sizes, image, arrays, state)
                array = layout.array(value) if final or sums is not None else None
                if sums is not None:
                    sums += channel_sums(array)
                y0, y1, x0, x1 = region
                if final:
                    out[y0:y1, x0:x1] = to_pixels(array) if pixels else array
                else:
                    arrays.write(stage.target, region, value, layout, array)
                counter.step()
            if sums is not None:
                mean = sums[0] / (h * w)
                variance = np.maximum(sums[1] / (h * w) - mean * mean, 0.0)
                if statistics is not None:
                    mean, variance = (s[0] for s in statistics(stage.target, mean[None], variance[None]))
                stats[stage.target] = (mean, variance)
            for tensor in [t for t in arrays.names() if last.get(t, -1) <= index]:
                arrays.free(tensor)
        return out

    def _run_tile(self, stage: Stage, region: Region, sizes, image, arrays: TileArrays, state):
        layout = state[1]
        needs, per_op = self._needs(stage, region, sizes)
        values = {}
        for source in stage.sources:
            if source not in needs:
                continue
            y0, y1, x0, x1 = needs[source]
            if source == self.input:
                part = image[y0:y1, x0:x1]
                part = part.astype(np.float32) / 127.5 - 1.0 if part.dtype == np.uint8 else part
            else:
                part = arrays.read(source, needs[source])
            values[source] = layout.tensor(np.asarray(part, np.float32))
        uses = use_counts(stage)
        for op in stage.ops:
            args = [
                crop_region(values[i], needs[i], want, layout.rows)
                for i, want in zip(op.inputs, per_op[op.output])
            ]
            values[op.output] = self._apply(op, args, needs[op.output], per_op[op.output][0], sizes, state)
            for i in op.inputs:
                uses[i] -= 1
                if not uses[i]:
                    del values[i]
        return values[stage.target]

    def _apply(self, op: Op, args: list, region: Region, have: Region, sizes, state):
        # ``have``: the region of the (first) input that ``args`` hold, for ``region`` of the output.
        stats, layout = state
        rows = layout.rows
        if op.rows.kind == "pad":
            h, w = sizes[op.inputs[0]]
            (value,) = args
            ends = end_pads(op.rows, region[:2], h, have[:2]), end_pads(op.cols, region[2:], w, have[2:])
            if all(ends):
                # One pad of the rows this tile holds, as the whole photo's padding layer would do it.
                ((r0, r1), rows_pad), ((c0, c1), cols_pad) = ends
                kept = (have[0] + r0, have[0] + r1, have[2] + c0, have[2] + c1)
                value = crop_region(value, have, kept, rows)
                if rows_pad == cols_pad == (0, 0):
                    return value
                # In keras.ops.pad's names, which PyTorch's F.pad shares.
                mode = "reflect" if op.rows.mode == "reflect" else "constant"
                return layout.pad(value, rows_pad, cols_pad, mode)
            value = pad_axis(value, op.rows, region[0], region[1], h, have[:2], rows)
            return pad_axis(value, op.cols, region[2], region[3], w, have[2:], rows + 1)
        if isinstance(op.layer, InstanceNormalization):
            return layout.normalise(op, args[0], *stats[op.inputs[0]])
        if op.rows.kind == "crop":
            return args[0]  # the crop is in the region asked of the input
        value = layout.call(op, args)
        if op.rows.kind == "convt":
            i0, j0 = have[0] * op.rows.b, have[2] * op.cols.b
            value = crop_region(value, (i0, 0, j0, 0), region, rows)
        return value
