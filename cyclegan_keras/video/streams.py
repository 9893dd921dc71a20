"""Video files in and out through PyAV (FFmpeg in its wheels): frames decoded as RGB pixels in their
display orientation, and written back with the input's time stamps, frame rate, size, orientation and
audio (copied unchanged)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from cyclegan_keras.errors import MissingExtraError, UsageError

# What ``translate`` reads as a video rather than a photo, and writes one to.
VIDEO_EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
# Encoders tried in order when --codec is not given: H.264 (what every player plays), then MPEG-4 part 2
# (in every FFmpeg build); a WebM file takes VP9 or VP8 only.
DEFAULT_CODECS = {".webm": ("libvpx-vp9", "libvpx"), "": ("libx264", "h264", "libopenh264", "mpeg4")}
# Constant-quality settings (--crf): visually lossless for H.264/H.265, good for VP9.
DEFAULT_CRF = {"libx264": 18, "libx265": 22, "libvpx-vp9": 31}
# Encoders without a crf: a bit rate in bits per pixel per frame (MPEG-4 part 2 at ~0.3 looks clean).
BITS_PER_PIXEL = 0.3


def import_av():
    """The ``av`` module, or a ``MissingExtraError`` that says how to install it."""
    try:
        import av
    except ImportError:
        raise MissingExtraError(
            "Video needs PyAV (FFmpeg in its wheels): pip install 'cyclegan-keras[video]'"
        ) from None
    return av


def is_video(path: str | os.PathLike) -> bool:
    """Whether ``translate`` treats this path as a video (by its extension)."""
    return os.fspath(path).lower().endswith(VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class VideoInfo:
    """What ``VideoReader`` found: the frames' size as displayed, the rate and the frame count (0 when
    the container does not say), the display rotation, and the streams."""

    width: int
    height: int
    rate: Fraction
    frames: int
    rotation: int
    codec: str
    audio: str | None


class VideoReader:
    """A video file's frames, decoded in display orientation, with its audio packets in file order.

    Raises:
        UsageError: not a video, no video stream, or a codec the installed FFmpeg cannot decode (one line
            each, saying what to pass instead).
    """

    def __init__(self, path: str | os.PathLike):
        av = import_av()
        self.path = os.fspath(path)
        try:
            self.container = av.open(self.path)
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            raise UsageError(f"Cannot read {self.path!r} as a video ({_reason(error)}).") from None
        streams = self.container.streams
        if not streams.video:
            self.container.close()
            raise UsageError(f"{self.path!r} has no video stream: pass a video file.")
        self.video = streams.video[0]
        self.audio = streams.audio[0] if streams.audio else None
        context = self.video.codec_context
        if context is None or context.codec is None:
            self.container.close()
            raise UsageError(
                f"The installed FFmpeg cannot decode the video of {self.path!r}: convert it to H.264 first."
            )
        self.decoded = 0  # frames decoded by ``items``
        self.video.thread_type = "AUTO"  # decoding on every core frees the network's time
        rotation = _rotation(self.path)
        width, height = context.width, context.height
        if rotation % 180:
            width, height = height, width
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        self.info = VideoInfo(
            width, height, Fraction(rate), self.video.frames or 0, rotation, context.codec.name,
            self.audio.codec_context.codec.name if self.audio is not None else None,
        )  # fmt: skip

    def items(self, every: int = 1, audio: bool = True) -> Iterator[tuple]:
        """In file order: ``("frame", pixels, pts, time_base)`` for each decoded frame (``uint8 [H, W, 3]``
        as displayed) and ``("audio", packet)`` for each audio packet.

        Args:
            every: yield the first frame and every ``every``-th after it; the others are decoded (later
                frames need them) but not converted to pixels.
            audio: yield the audio packets too.

        Raises:
            av.error.FFmpegError: the file is damaged from some frame on (``decoded`` says how many went
                through before it).
        """
        audio = audio and self.audio is not None
        streams = [self.video] + ([self.audio] if audio else [])
        turns = self.info.rotation // 90
        for packet in self.container.demux(streams):
            if packet.stream is self.audio:
                if packet.dts is not None:  # not the demuxer's empty end-of-stream packet
                    yield ("audio", packet)
                continue
            for frame in packet.decode():
                self.decoded += 1
                if (self.decoded - 1) % every:
                    continue
                pixels = frame.to_ndarray(format="rgb24")
                yield ("frame", np.rot90(pixels, turns) if turns else pixels, frame.pts, frame.time_base)

    def close(self) -> None:
        self.container.close()


class VideoWriter:
    """A video file written frame by frame with a reader's rate, time stamps, orientation and audio.

    Args:
        path: the file to write (its extension picks the container).
        reader: the ``VideoReader`` of the input.
        codec: the encoder (default: H.264 where the FFmpeg build has it, else ``DEFAULT_CODECS``' next).
        crf: constant quality for the encoders that take it (lower is better; ``DEFAULT_CRF``).

    Raises:
        UsageError: an encoder FFmpeg lacks, a ``crf`` for an encoder without one, or audio that the
            container cannot hold unchanged.
    """

    def __init__(self, path: str, reader: VideoReader, codec: str | None = None, crf: int | None = None):
        av = import_av()
        info = reader.info
        self.codec = _encoder(codec, os.path.splitext(path)[1].lower())
        if crf is not None and self.codec not in DEFAULT_CRF:
            raise UsageError(f"--crf is for {', '.join(DEFAULT_CRF)}; --codec {self.codec} has none.")
        self.crf = crf if crf is not None else DEFAULT_CRF.get(self.codec)
        # The input's display rotation kept as such where PyAV can write it (18+); else the frames are
        # stored upright, which plays the same.
        rotate = hasattr(av.video.stream.VideoStream, "set_display_rotation")
        self.turns = info.rotation // 90 if rotate else 0
        self.container = av.open(path, "w")
        try:
            stream = self.container.add_stream(self.codec, rate=info.rate)
            context = reader.video.codec_context
            stream.width, stream.height = (
                (context.width, context.height) if rotate else (info.width, info.height)
            )
            even = stream.width % 2 == 0 and stream.height % 2 == 0
            # 4:2:0 (what players expect) needs even sides; odd ones keep full colour resolution.
            stream.pix_fmt = "yuv420p" if even or self.codec == "libvpx-vp9" else "yuv444p"
            stream.time_base = reader.video.time_base
            stream.codec_context.time_base = reader.video.time_base
            if self.crf is not None:
                stream.options = {"crf": str(self.crf), **({"b": "0"} if self.codec == "libvpx-vp9" else {})}
            else:
                stream.bit_rate = int(BITS_PER_PIXEL * context.width * context.height * float(info.rate))
            if info.rotation and rotate:
                stream.set_display_rotation(info.rotation)
            self.video = stream
            self.audio = None
            if reader.audio is not None:
                self.audio = self.container.add_stream_from_template(reader.audio)
            self.container.start_encoding()
        except (av.error.FFmpegError, ValueError) as error:
            self.container.close()
            if reader.audio is not None:
                raise UsageError(
                    f"Cannot write {info.audio} audio unchanged into {os.path.basename(path)!r} "
                    f"({_reason(error)}): pass --out with another container, e.g. .mkv."
                ) from None
            raise UsageError(
                f"Cannot write {os.path.basename(path)!r} with {self.codec} ({_reason(error)})."
            ) from None

    def frame(self, pixels: np.ndarray, pts: int | None, time_base: Fraction) -> None:
        """One translated frame (``uint8 [H, W, 3]`` as displayed) at the input frame's time stamp."""
        import av

        if self.turns:
            pixels = np.rot90(pixels, -self.turns)
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        self.container.mux(self.video.encode(frame))

    def audio_packet(self, packet) -> None:
        """One audio packet of the input, unchanged."""
        packet.stream = self.audio
        self.container.mux(packet)

    def close(self) -> None:
        """Flushes the encoder and finishes the file."""
        self.container.mux(self.video.encode(None))
        self.container.close()

    def abandon(self) -> None:
        """Closes the file without finishing it (the caller removes it)."""
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - an unfinished file's close may fail; it is removed anyway
            pass


def codec_label(codec: str) -> str:
    """How the output line names an encoder."""
    names = {"libx264": "H.264", "h264": "H.264", "libopenh264": "H.264", "libx265": "H.265",
             "mpeg4": "MPEG-4", "libvpx-vp9": "VP9", "libvpx": "VP8"}  # fmt: skip
    return f"{names.get(codec, codec)} ({codec})"


def _encoder(codec: str | None, extension: str) -> str:
    import av

    def has(name: str) -> bool:
        try:
            av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            return False
        return True

    if codec is not None:
        if not has(codec):
            raise UsageError(
                f"--codec {codec}: the installed FFmpeg has no such encoder (try libx264, mpeg4 or "
                "libvpx-vp9)."
            )
        return codec
    for name in DEFAULT_CODECS.get(extension, DEFAULT_CODECS[""]):
        if has(name):
            return name
    raise UsageError(f"The installed FFmpeg has no encoder for {extension or 'this'} files: pass --codec.")


def _rotation(path: str) -> int:
    """The video's display rotation in degrees counter-clockwise (0, 90, 180 or 270), from its first
    frame's display matrix (decoders attach the stream's), read through a second opening of the file."""
    import av

    try:
        with av.open(path) as probe:
            angle = next(probe.decode(video=0)).rotation
    except (av.error.FFmpegError, StopIteration):
        return 0
    return int(round(angle / 90)) % 4 * 90


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__
