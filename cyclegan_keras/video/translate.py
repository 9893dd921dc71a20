"""Translating a video file: frames streamed through a generator (memory does not grow with the clip),
decoding and encoding in threads beside the network, the result written beside ``out`` and renamed
when it is finished."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from cyclegan_keras.deploy.options import DEFAULT_VIDEO_STATS, STATS_MOMENTUM, STATS_STRIDE, VIDEO_STATS
from cyclegan_keras.deploy.runners import MIN_SIDE, KerasRunner, Runner, load_runner
from cyclegan_keras.errors import UsageError
from cyclegan_keras.run.outputs import check_new_files, staged_file
from cyclegan_keras.video.statistics import (
    ClipStatistics,
    RunningStatistics,
    StatisticsTranslator,
)
from cyclegan_keras.video.streams import VideoReader, VideoWriter, codec_label, import_av

# Frames and packets read ahead of the network, and translated frames waiting for the encoder: enough
# to keep the network busy, few enough that memory does not depend on the clip.
_QUEUE_FRAMES = 8


class VideoError(RuntimeError):
    """A video failed part-way (a damaged frame, a full disk): ``frames`` were translated, and nothing was
    left at the output path."""

    def __init__(self, message: str, frames: int):
        super().__init__(message)
        self.frames = frames


@dataclass
class VideoResult:
    """What ``translate_video`` wrote: the file, its frame count, the encoder, the statistics mode and the
    frames per second of the whole run (decoding, translating and encoding)."""

    path: str
    frames: int
    codec: str
    video_stats: str
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def video_stats_for(translator: Runner, video_stats: str | None) -> str:
    """The statistics mode to use: ``video_stats``, else ``DEFAULT_VIDEO_STATS`` for a Keras generator of
    this package's layers and ``frame`` for the rest (exported files normalise inside themselves).

    Raises:
        UsageError: a mode that is not one of ``VIDEO_STATS``, or clip/running for a generator that
            cannot take them.
    """
    keras_graph = isinstance(translator, KerasRunner) and translator.tiled is not None
    if video_stats is None:
        return DEFAULT_VIDEO_STATS if keras_graph else "frame"
    if video_stats not in VIDEO_STATS:
        raise UsageError(f"--video-stats must be one of {', '.join(VIDEO_STATS)}, got {video_stats!r}")
    if video_stats != "frame" and not keras_graph:
        raise UsageError(
            f"--video-stats {video_stats} needs a Keras generator (.keras, .pth, .npz or a pretrained name); "
            "exported files normalise each frame themselves: pass --video-stats frame."
        )
    return video_stats


def translate_video(
    translator: Runner | str | os.PathLike,
    source: str | os.PathLike,
    out: str | os.PathLike,
    video_stats: str | None = None,
    stats_momentum: float | None = None,
    stats_stride: int | None = None,
    codec: str | None = None,
    crf: int | None = None,
    overwrite: bool = False,
    batch_size: int | None = None,
    verbose: bool = False,
) -> VideoResult:
    """Translates a video file frame by frame into ``out``, keeping its frame rate, time stamps, size,
    orientation and audio (copied unchanged).

    Args:
        translator: a ``Runner`` (``load_runner``/``load_translator``): a Keras generator on any backend,
            a LiteRT or ONNX file, a pretrained name's generator; or a path or name ``load_runner`` takes.
        source: the video to read (any container and codec the installed FFmpeg decodes).
        out: the video to write; its extension picks the container (``.mp4``, ``.mkv``, ``.webm``...).
        video_stats: instance-norm statistics along time (``cyclegan_keras.video.statistics``): ``frame``,
            ``clip`` or ``running`` (default: ``clip`` for Keras generators, ``frame`` for exported
            files; ``DEFAULT_VIDEO_STATS``).
        stats_momentum: the running mode's weight of the past, in [0, 1) (default ``STATS_MOMENTUM``).
        stats_stride: the clip mode's first pass reads the statistics of the first frame and every
            ``stats_stride``-th after it (default ``STATS_STRIDE``; 1: every frame, the exact statistics
            of the whole clip). Any fixed set of statistics removes the flicker; fewer frames make the
            first pass cheaper.
        codec: the encoder (default: H.264 where FFmpeg has it, else MPEG-4; VP9 for ``.webm``).
        crf: constant quality for H.264, H.265 and VP9 (lower is better; default 18, 22, 31).
        overwrite: replace ``out`` if it exists (never ``source``).
        batch_size: frames through the network together at the most (default: as photos of that size,
            ``Runner.batch_size_for``).
        verbose: print what is written and a progress bar over frames (rate and time left).

    Raises:
        OutputExistsError: ``out`` exists (without ``overwrite``) or is ``source``.
        UsageError: not a video, no video stream, a codec FFmpeg cannot decode, zero frames, frames
            smaller than 8 px, or PyAV missing (``MissingExtraError``).
        VideoError: a failure part-way; no file is left at ``out``.
    """
    import_av()
    if isinstance(translator, (str, os.PathLike)):
        translator = load_runner(translator)
    source, out = os.fspath(source), os.fspath(out)
    check_new_files([out], protected=[source], overwrite=overwrite)
    mode = video_stats_for(translator, video_stats)
    statistics, stride = _statistics(mode, stats_momentum, stats_stride)
    probe = VideoReader(source)
    info = probe.info
    probe.close()
    if min(info.width, info.height) < MIN_SIDE:
        raise UsageError(
            f"{source!r} has {info.width}x{info.height} frames: the generators take {MIN_SIDE} px or more."
        )
    run = _frames_translator(translator, statistics)
    batch = _batch_size(translator, batch_size, info)
    start = time.perf_counter()
    with staged_file(out, "the video") as staging:
        if mode == "clip":
            done = _first_pass(source, run, batch, info, stride, verbose)
            statistics.finish()
            if not done:
                raise UsageError(f"{source!r} has no frames.")
        reader = VideoReader(source)
        try:
            writer = VideoWriter(staging, reader, codec, crf)
        except BaseException:
            reader.close()
            raise
        if verbose:
            _announce(out, info, writer, mode)
        frames = _stream(reader, writer, run, batch, _progress(info.frames, verbose))
        if not frames:
            raise UsageError(f"{source!r} has no frames.")
    return VideoResult(out, frames, writer.codec, mode, time.perf_counter() - start)


def _statistics(mode: str, stats_momentum: float | None, stats_stride: int | None) -> tuple:
    """The mode's statistics (None for ``frame``) and the clip mode's first-pass stride.

    Raises:
        UsageError: a momentum for a mode other than running, a stride for one other than clip, or a
            stride that is not a positive integer.
    """
    if stats_momentum is not None and mode != "running":
        raise UsageError(f"--stats-momentum is for --video-stats running, not {mode}.")
    if stats_stride is not None and mode != "clip":
        raise UsageError(f"--stats-stride is for --video-stats clip, not {mode}.")
    stride = STATS_STRIDE if stats_stride is None else stats_stride
    if not isinstance(stride, int) or stride < 1:
        raise UsageError(f"--stats-stride must be a positive integer, got {stride!r}")
    if mode == "clip":
        return ClipStatistics(), stride
    if mode == "running":
        return RunningStatistics(STATS_MOMENTUM if stats_momentum is None else stats_momentum), stride
    return None, stride


def _announce(out: str, info, writer: VideoWriter, mode: str) -> None:
    """The line that says what is written: size, rate, encoder, audio, statistics."""
    passes = " (second pass)" if mode == "clip" else ""
    quality = f" crf {writer.crf}" if writer.crf is not None else ""
    audio = "audio copied, " if writer.audio is not None else ""
    print(
        f"Writing {os.path.basename(out)}: {info.width}x{info.height} at {float(info.rate):.3g} fps, "
        f"{codec_label(writer.codec)}{quality}, {audio}--video-stats {mode}{passes}"
    )


def _frames_translator(translator: Runner, statistics) -> Callable:
    """A function of a list of frames (one size, in order) to their translations."""
    if statistics is None:
        many = getattr(translator, "translate_many", None)
        return many if many is not None else (lambda frames: [translator(f) for f in frames])
    forward = StatisticsTranslator(translator)
    return lambda frames: forward(frames, statistics)


def _batches(items: Iterator[tuple], size: int) -> Iterator[tuple[list, list]]:
    """Groups the reader's items into (frames, other items read with them), ``size`` frames at the most."""
    frames, others = [], []
    for item in items:
        (frames if item[0] == "frame" else others).append(item)
        if len(frames) >= size:
            yield frames, others
            frames, others = [], []
    if frames or others:
        yield frames, others


def _batch_size(translator: Runner, batch_size: int | None, info) -> int:
    fits = getattr(translator, "batch_size_for", lambda h, w: 1)(info.height, info.width)
    return max(1, min(batch_size, fits) if batch_size else fits)


class _Ahead:
    """An iterator's items produced in a thread, at most ``limit`` ahead; the thread's exception is
    raised to the reader. Leaving the ``with`` block stops the thread and waits for it, so that the file
    it reads can be closed."""

    _END = object()

    def __init__(self, items: Iterator, limit: int):
        self.box: queue.Queue = queue.Queue(limit)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._produce, args=(items,), daemon=True)

    def _offer(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, items: Iterator) -> None:
        try:
            for item in items:
                if not self._offer(item):
                    return
            self._offer(self._END)
        except BaseException as error:  # noqa: BLE001 - handed to the reader, which raises it
            self._offer(error)

    def __enter__(self):
        self.thread.start()
        return self

    def __iter__(self):
        while (item := self.box.get()) is not self._END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def _first_pass(source: str, run: Callable, batch: int, info, stride: int, verbose: bool) -> int:
    """The clip mode's first pass: the first frame and every ``stride``-th after it through the network,
    for their statistics; the frames read."""
    reader = VideoReader(source)
    if verbose:
        which = "every frame" if stride == 1 else f"one frame in {stride} (--stats-stride)"
        print(
            f"Reading {os.path.basename(source)}'s instance-norm statistics from {which} "
            "(--video-stats clip, first pass)"
        )
    total = -(-info.frames // stride)
    progress = _progress(total, verbose)
    done = 0
    try:
        with _Ahead(_batches(reader.items(every=stride, audio=False), batch), 2) as batches:
            for frames, _ in batches:
                if frames:
                    run([f[1] for f in frames])
                    done += len(frames)
                    progress(done)
    except _decode_errors() as error:
        raise VideoError(f"Cannot decode {source!r} after frame {reader.decoded} ({error}).", 0) from None
    finally:
        reader.close()
    return done


def _stream(reader: VideoReader, writer: VideoWriter, run: Callable, batch: int, progress) -> int:
    """The frames translated and written with the audio, decoding and encoding each in a thread of
    its own; the count. The file is finished only when every frame went through."""
    done = 0
    encoded: queue.Queue = queue.Queue(2)
    failure: list[BaseException] = []
    finished = threading.Event()

    def encode():
        try:
            while (work := encoded.get()) is not None:
                frames, others = work
                for item in others:
                    writer.audio_packet(item[1])
                for (_, _, pts, time_base), pixels in frames:
                    rgb = pixels if pixels.ndim == 3 else np.repeat(pixels[..., None], 3, -1)
                    writer.frame(rgb, pts, time_base)
            if finished.is_set():
                writer.close()
        except BaseException as error:  # noqa: BLE001 - raised in the main thread
            failure.append(error)
            while encoded.get() is not None:  # lets the main thread hand on what it has
                pass

    encoder = threading.Thread(target=encode, daemon=True)
    encoder.start()
    try:
        with _Ahead(_batches(reader.items(), batch), 2) as batches:
            for frames, others in batches:
                if failure:
                    break
                results = run([f[1] for f in frames]) if frames else []
                encoded.put((list(zip(frames, results)), others))
                done += len(frames)
                progress(done)
            else:
                finished.set()
    except _decode_errors() as error:
        raise VideoError(f"Cannot decode {reader.path!r} after frame {done} ({error}).", done) from None
    finally:
        encoded.put(None)
        encoder.join()
        reader.close()
        if failure or not finished.is_set():
            writer.abandon()
    if failure:
        error = failure[0]
        if isinstance(error, OSError):
            raise error
        raise VideoError(f"Writing the video failed after {done} frames ({error}).", done) from error
    return done


def _decode_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError,)


def _progress(total: int, verbose: bool, step: int = 10) -> Callable[[int], None]:
    """Progress over frames: Keras' bar (rate and time left) on a terminal; elsewhere one plain line every
    ``step`` percent (every 100 frames when the container does not say how many)."""
    if not verbose:
        return lambda done: None
    import keras

    bar, shown, start = None, -1, time.perf_counter()

    def update(done: int) -> None:
        nonlocal bar, shown
        if sys.stdout.isatty():
            bar = bar or keras.utils.Progbar(total or None, unit_name="frame")
            bar.update(done)
            return
        mark = 100 * done // total // step if total else done // 100
        if mark > shown:
            shown = mark
            rate = done / max(time.perf_counter() - start, 1e-9)
            left = f", {(total - done) / rate:.0f} s left" if total else ""
            print(f"frames: {done}{f'/{total}' if total else ''} ({rate:.2f} frames/s{left})", flush=True)

    return update
