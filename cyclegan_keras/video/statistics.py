"""Instance-norm statistics along time, for video without flicker.

Instance normalisation gives each frame its own statistics, so small changes between frames change the
colours of the whole frame (the official code's flicker). Here a video's frames can share them, as the
tiles of a large photo share the whole photo's (``deploy.tiling``):

- ``frame``: each frame its own (the official behaviour; any generator, exported files too);
- ``clip``: two passes. The first translates every frame (or every ``stats_stride``-th: any fixed set of
  statistics removes the flicker) with its own statistics and accumulates, for every normalisation
  layer, the mean and second moment of its input over those frames in float64; the second translates
  the clip with those: one set of statistics for every frame.
- ``running``: one pass. Each layer's mean and second moment follow an exponential moving average over
  the frames (``momentum``: the weight of the past); the first frame uses its own, as ``frame`` does.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops

from cyclegan_keras.data.images import pad_to_multiple, to_channels, to_float, to_uint8
from cyclegan_keras.deploy.graph import run_layers
from cyclegan_keras.deploy.options import STATS_MOMENTUM
from cyclegan_keras.deploy.runners import KerasRunner, streams
from cyclegan_keras.errors import UsageError
from cyclegan_keras.networks.layers import InstanceNormalization


class ClipStatistics:
    """``clip`` statistics (``deploy.tiling.Statistics``): while ``collecting``, each input's own are
    used and accumulated; after ``finish()``, the clip's are used for every frame."""

    def __init__(self):
        self.collecting = True
        self.sums: dict[int, np.ndarray] = {}  # key -> [frames, sum of means, sum of second moments]
        self.clip: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, key: int, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.collecting:
            sums = self.sums.setdefault(key, np.zeros((3, mean.shape[-1])))
            sums[0] += len(mean)
            sums[1] += mean.sum(0)
            sums[2] += (variance + mean * mean).sum(0)
            return mean, variance
        clip_mean, clip_variance = self.clip[key]
        return np.broadcast_to(clip_mean, mean.shape), np.broadcast_to(clip_variance, variance.shape)

    def fixed(self, key: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The clip's means and variances ``[C]`` for every frame, once ``finish()`` was called."""
        return None if self.collecting else self.clip[key]

    def finish(self) -> None:
        """Ends the first pass: from now on every frame is normalised with the clip's statistics."""
        for key, (frames, means, squares) in self.sums.items():
            mean = means / frames[0]
            self.clip[key] = (mean, np.maximum(squares / frames[0] - mean * mean, 0.0))
        self.collecting = False


class RunningStatistics:
    """``running`` statistics (``deploy.tiling.Statistics``): an exponential moving average of each
    layer's mean and second moment over the frames, in their order (a batch is frames in order)."""

    def __init__(self, momentum: float = STATS_MOMENTUM):
        if not 0.0 <= momentum < 1.0:
            raise UsageError(f"--stats-momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.state: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, key: int, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means, squares = np.empty_like(mean), np.empty_like(mean)
        for t in range(len(mean)):
            square = variance[t] + mean[t] * mean[t]
            if key in self.state:
                last_mean, last_square = self.state[key]
                keep = self.momentum
                mean_t, square = (
                    keep * last_mean + (1 - keep) * mean[t],
                    keep * last_square + (1 - keep) * square,
                )
            else:
                mean_t = mean[t]
            self.state[key] = (mean_t, square)
            means[t], squares[t] = mean_t, square
        return means, np.maximum(squares - means * means, 0.0)


class StatisticsTranslator:
    """Frames of one size through a Keras generator with each normalisation's statistics from a
    ``deploy.tiling.Statistics``: whole frames in one call per batch (PyTorch's channels-first functions,
    or the layers one by one), frames over the memory budget in tiles (exact mode), as photos go.

    Args:
        runner: the ``KerasRunner`` of the generator (its memory budget and tiles decide).

    Raises:
        UsageError: the generator has layers the tiling engine cannot read (then only ``frame`` works).
    """

    def __init__(self, runner: KerasRunner):
        if runner.tiled is None:
            raise UsageError(
                "--video-stats clip and running need a generator of this package's layers: pass "
                "--video-stats frame."
            )
        self.runner, self.graph = runner, runner.tiled
        self.statistics: Callable | None = None
        self._call = None

    def __call__(self, frames: list[np.ndarray], statistics) -> list[np.ndarray]:
        """``uint8 [H, W, 3]`` frames of one size, in order, translated with ``statistics``."""
        height, width = frames[0].shape[:2]
        channels = self.runner.input_channels
        padded = [pad_to_multiple(to_channels(f, channels), self.graph.multiple)[0] for f in frames]
        tiling = self.runner.tiling(*padded[0].shape[:2])
        if tiling is None:
            # One frame at a time where the runner would put frames side by side (PyTorch on a CPU,
            # where a batch tensor is slower per frame): the statistics hook follows one call at a time.
            step = 1 if streams() else len(padded)
            parts = [np.stack(padded[k : k + step]) for k in range(0, len(padded), step)]
            outputs = np.concatenate([to_uint8(self.run_float(to_float(part), statistics)) for part in parts])
        else:
            tile, _, memory, _ = tiling
            outputs = [self.graph(p, tile, "exact", memory=memory, statistics=statistics) for p in padded]
        return [out[:height, :width] for out in outputs]

    def run_float(self, batch: np.ndarray, statistics) -> np.ndarray:
        """A float32 batch ``[N, H, W, C]`` in [-1, 1] (frames in order, sides the generator takes)
        through the whole generator with ``statistics``."""
        self.statistics = statistics
        if self._call is None:
            self._call = self._build()
        return self._call(batch)

    def _build(self) -> Callable[[np.ndarray], np.ndarray]:
        hook = _Current(self)
        float32 = all(layer.compute_dtype == "float32" for layer in self.graph.generator.layers)
        if keras.backend.backend() == "torch" and float32:
            from cyclegan_keras.deploy.torch_native import native_call

            return native_call(self.graph, statistics=hook)
        return lambda batch: _layer_by_layer(self.graph, batch, hook)


class _Current:
    """The statistics of a ``StatisticsTranslator``'s call in progress (``deploy.tiling.Statistics``, with
    ``fixed``), for functions built once."""

    def __init__(self, translator: StatisticsTranslator):
        self.translator = translator

    def __call__(self, key: int, mean: np.ndarray, variance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.translator.statistics(key, mean, variance)

    def fixed(self, key: int) -> tuple[np.ndarray, np.ndarray] | None:
        fixed = getattr(self.translator.statistics, "fixed", None)
        return fixed(key) if fixed is not None else None


def _layer_by_layer(graph, batch: np.ndarray, statistics: _Current) -> np.ndarray:
    """The generator's layers one by one, each instance norm with ``statistics``, each tensor dropped
    after its last reader (no trace or compilation: the host reads every norm's statistics)."""

    def apply(op, args):
        if not isinstance(op.layer, InstanceNormalization):
            return op.layer(args if len(args) > 1 else args[0], training=False)
        x = ops.cast(args[0], "float32")
        found = statistics.fixed(op.inputs[0])
        if found is not None:
            return op.layer.normalise_with(x, *found)
        mean = ops.mean(x, axis=(1, 2))
        variance = ops.mean(ops.square(x - mean[:, None, None, :]), axis=(1, 2))
        found = (np.asarray(ops.convert_to_numpy(v), np.float64) for v in (mean, variance))
        mean, variance = statistics(op.inputs[0], *found)
        return op.layer.normalise_with(x, mean[:, None, None, :], variance[:, None, None, :])

    with _no_gradients():
        outputs = run_layers(graph, ops.convert_to_tensor(batch), apply)
        return np.asarray(ops.convert_to_numpy(outputs), np.float32)


def _no_gradients():
    if keras.backend.backend() == "torch":
        import torch

        return torch.inference_mode()
    import contextlib

    return contextlib.nullcontext()
