"""Checks of a video's instance-norm statistics along time (``cyclegan_keras.video.statistics``) on the
backend in use: run in the test process (``tests/test_video.py``) and in the other backends' processes
(``tests/backend_checks.py``), where PyTorch takes its own channels-first path."""

from __future__ import annotations

import keras
import numpy as np


def _frames(count: int = 5, height: int = 24, width: int = 32, seed: int = 3) -> np.ndarray:
    """Frames of a smooth scene moving a pixel a frame, in [-1, 1]."""
    rng = np.random.default_rng(seed)
    scene = rng.normal(0, 1, (height + 8, width + 8 + count, 3))
    scene = np.cumsum(np.cumsum(scene, 0), 1)
    scene = np.tanh((scene - scene.mean()) / scene.std())
    return np.stack([scene[4 : 4 + height, t : t + width] for t in range(count)]).astype(np.float32)


def statistics_gaps() -> dict:
    """The largest differences that must be round-off: running statistics' first frame against the frame
    mode, momentum 0 against the frame mode, frames in a batch against one at a time, the clip's
    statistics against those of every frame stacked (relative), the clip's statistics as fixed against
    handed back for each frame's own, a static clip against its frame, and
    running statistics in 8 px tiles against whole frames (``uint8`` levels); and how often the clip's
    statistics were asked for each frame's own while they were fixed (none)."""
    from cyclegan_keras import InstanceNormalization, resnet_generator
    from cyclegan_keras.deploy.runners import KerasRunner
    from cyclegan_keras.video.statistics import ClipStatistics, RunningStatistics, StatisticsTranslator

    keras.utils.set_random_seed(4)
    generator = resnet_generator(2, ngf=4)
    translator = StatisticsTranslator(KerasRunner(generator, max_memory="64G"))
    frames = _frames()
    own = keras.ops.convert_to_numpy(generator(frames, training=False))
    gaps = {}
    running = translator.run_float(frames, RunningStatistics(0.9))
    gaps["running_first_frame"] = float(np.max(np.abs(running[0] - own[0])))
    gaps["running_differs_later"] = float(np.max(np.abs(running[-1] - own[-1])))  # must NOT be round-off
    gaps["momentum_0"] = float(np.max(np.abs(translator.run_float(frames, RunningStatistics(0.0)) - own)))
    one_by_one = RunningStatistics(0.9)
    singles = np.concatenate(
        [translator.run_float(frames[t : t + 1], one_by_one) for t in range(len(frames))]
    )
    gaps["running_batched"] = float(np.max(np.abs(singles - running)))

    class Counted(ClipStatistics):
        calls = 0

        def __call__(self, *args):
            self.calls += 1
            return super().__call__(*args)

    clip = Counted()
    translator.run_float(frames[:2], clip)  # two batches: the sums run over both
    translator.run_float(frames[2:], clip)
    clip.finish()
    before = clip.calls
    fixed = translator.run_float(frames, clip)  # whole frames: the clip's, not reading the frames' own
    gaps["clip_calls_when_fixed"] = clip.calls - before
    given = translator.run_float(frames, lambda *args: clip(*args))  # no ``fixed``: handed each frame's own
    gaps["clip_fixed_against_given"] = float(np.max(np.abs(fixed - given)))
    gaps["clip_differs"] = float(np.max(np.abs(fixed - own)))  # must NOT be round-off
    norms = [layer for layer in generator.layers if isinstance(layer, InstanceNormalization)]
    probe = keras.Model(generator.inputs[0], [layer.input for layer in norms])
    worst = 0.0
    for layer, value in zip(norms, probe(frames)):
        stacked = np.asarray(keras.ops.convert_to_numpy(value), np.float64).reshape(-1, value.shape[-1])
        mean, variance = clip.clip[id(layer.input)]
        worst = max(worst, float(np.max(np.abs(mean - stacked.mean(0)) / (stacked.std(0) + 1e-12))))
        worst = max(worst, float(np.max(np.abs(variance / stacked.var(0) - 1))))
    gaps["clip_against_stacked"] = worst
    gaps["clip_norms"] = len(clip.clip) - len(norms)  # one set per norm

    static, still = ClipStatistics(), np.repeat(frames[:1], 3, 0)
    translator.run_float(still, static)
    static.finish()
    gaps["static_clip"] = float(np.max(np.abs(translator.run_float(still, static) - own[:1])))

    pixels = [np.round((f + 1) * 127.5).astype(np.uint8) for f in frames]
    whole = translator(pixels, RunningStatistics(0.9))
    tiled = StatisticsTranslator(KerasRunner(generator, tile=8))(pixels, RunningStatistics(0.9))
    gaps["tiles_levels"] = int(max(np.max(np.abs(a.astype(int) - b)) for a, b in zip(whole, tiled)))
    return gaps


def assert_statistics(gaps: dict) -> None:
    """What ``statistics_gaps`` must find on every backend."""
    rounded = (
        "running_first_frame",
        "momentum_0",
        "running_batched",
        "static_clip",
        "clip_fixed_against_given",
    )
    for name in rounded:
        assert gaps[name] < 1e-5, (name, gaps)
    assert gaps["running_differs_later"] > 1e-3, gaps  # the running mode does change later frames
    assert gaps["clip_differs"] > 1e-3, gaps
    assert gaps["clip_calls_when_fixed"] == 0, gaps  # fixed statistics: the frames' own are not read
    assert gaps["clip_against_stacked"] < 1e-5, gaps
    assert gaps["clip_norms"] == 0, gaps
    assert gaps["tiles_levels"] <= 1, gaps
