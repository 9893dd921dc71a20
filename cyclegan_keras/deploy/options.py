"""The options of ``cyclegan-keras translate`` and ``export``, declared once (``cyclegan_keras.options``):
the command line's flags and help come from these fields, ``export_generator`` checks with them."""

from __future__ import annotations

import typing
from dataclasses import dataclass

from cyclegan_keras.deploy.formats import FORMATS, QUANTIZATIONS
from cyclegan_keras.errors import UsageError
from cyclegan_keras.options import check_setting, declared, option
from cyclegan_keras.training.config import BACKENDS

# Instance-norm statistics of photos translated in tiles (``cyclegan_keras.deploy.tiling``).
TILE_STATS = ("exact", "thumbnail")
# Instance-norm statistics along a video's frames (``cyclegan_keras.video.statistics``). The default
# where the generator allows it: on a panned clip (bench/video.py, docs/benchmarks.md) the clip's
# statistics cut flicker by 83% against each frame's own, where a moving average cuts 1-2% (content that
# moves in and out of the frame shifts the statistics steadily, and a moving average follows a steady
# shift); its first pass reads every STATS_STRIDE-th frame, so the whole costs some 5% more than one pass
# (the second reads no statistics of its own). The running mode's weight of the past, the best of 0.8,
# 0.9, 0.95 there.
VIDEO_STATS = ("frame", "clip", "running")
DEFAULT_VIDEO_STATS = "clip"
STATS_MOMENTUM = 0.9
# The clip mode's first pass reads the statistics of every this many frames: any fixed set of statistics
# removes the flicker (docs/benchmarks.md, "Video": flicker 0.467 from every 16th frame, 0.436 from
# every frame), and a sixteenth of the frames costs a sixteenth of a pass; 1 reads every frame (the exact
# statistics of the whole clip).
STATS_STRIDE = 16
DIRECTIONS = ("a_to_b", "b_to_a")
MODEL_HELP = (
    "a .keras generator (or whole CycleGAN), SavedModel folder, .tflite, .onnx, official .pth, or the "
    "name of a pretrained generator (`cyclegan-keras pretrained` lists them)"
)
DIRECTION_HELP = (
    "for a whole CycleGAN .keras file: which generator (default: a_to_b); a file of one generator "
    "translates its own way, and one whose name says the other is refused"
)


@dataclass
class TranslateOptions:
    """``cyclegan-keras translate``: photos of any size through a generator (``translate_files``)."""

    model: str = option(None, MODEL_HELP, required=True)
    inputs: list[str] = option(None, "image files, folders or glob patterns; or video files (.mp4, .mov, "
                               ".mkv, .webm, .avi)", positional=True, nargs="+",
                               metavar="INPUT")  # fmt: skip
    out: str = option(None, "folder for the translated images (NAME.png each) or videos (NAME.mp4 each), or "
                      "for one input the image or video file to write", required=True,
                      metavar="DIR_OR_FILE")  # fmt: skip
    overwrite: bool = option(False, "replace output images that exist already (never an input)")
    direction: str | None = option(None, DIRECTION_HELP, choices=DIRECTIONS)
    max_size: int | None = option(None, "scale larger photos down to this side first", minimum=1)
    threads: int | None = option(None, "LiteRT/ONNX threads", minimum=1)
    tile: int | None = option(None, "translate in tiles of about N x N pixels, with the overlap the network "
                              "needs (default: only photos that do not fit --max-memory whole, in tiles "
                              "chosen for it)", minimum=1, metavar="N")  # fmt: skip
    tile_stats: str | None = option(None, "instance-norm statistics of tiled photos: exact (default; the "
                                    "whole photo's, equal to the whole-photo result, stage by stage) or "
                                    "thumbnail (a 1 MP copy's; one pass, faster)",
                                    choices=TILE_STATS)  # fmt: skip
    batch_size: int | None = option(None, "photos of one size translated together at the most (default: as "
                                    "many as fit the memory budget, up to 8; with PyTorch on a CPU, as many "
                                    "as it has threads, side by side, one thread each)",
                                    minimum=1)  # fmt: skip
    backend: str | None = option(None, "the Keras backend that runs .keras, .pth and pretrained generators "
                                 "(default: $KERAS_BACKEND, else the fastest installed for inference: torch, "
                                 "tensorflow, jax); exported files keep their own runtimes",
                                 choices=BACKENDS)  # fmt: skip
    max_memory: str | None = option(None, "memory budget, e.g. 3G: larger photos go in tiles, and exact mode "
                                    "keeps its whole-photo arrays on disk (TMPDIR) beyond it (default: this "
                                    "process's memory plus half the memory available)",
                                    metavar="SIZE")  # fmt: skip
    video_stats: str | None = option(None, "videos: instance-norm statistics along time: frame (each frame "
                                     "its own, as the official code; flickers), clip (one set for the whole "
                                     "clip, from a first pass over every --stats-stride-th frame; least "
                                     "flicker) or running (a moving average, one pass); "
                                     "default clip for Keras generators, frame for exported files",
                                     choices=VIDEO_STATS)  # fmt: skip
    stats_momentum: float | None = option(None, f"videos, --video-stats running: the weight of the past "
                                          f"frames' statistics (default {STATS_MOMENTUM})", minimum=0.0,
                                          below=1.0)  # fmt: skip
    stats_stride: int | None = option(None, f"videos, --video-stats clip: the first pass reads the "
                                      f"statistics of every Nth frame (default {STATS_STRIDE}; 1: every "
                                      f"frame, the exact clip statistics)", minimum=1,
                                      metavar="N")  # fmt: skip
    codec: str | None = option(None, "videos: the encoder (default: H.264 where FFmpeg has it, else MPEG-4; "
                               "VP9 for .webm)")  # fmt: skip
    crf: int | None = option(None, "videos: constant quality for H.264, H.265 and VP9, lower is better "
                             "(default 18, 22, 31)", minimum=0, maximum=63)  # fmt: skip


@dataclass
class ExportOptions:
    """``cyclegan-keras export`` (``export_generator``): a generator written in a deployment format,
    verified against Keras. ``formats`` says which formats an option is for."""

    model: str = option(None, MODEL_HELP.replace(", SavedModel folder, .tflite, .onnx", ""), required=True)
    direction: str | None = option(None, DIRECTION_HELP, choices=DIRECTIONS)
    format: str = option(None, "; ".join(f"{name}: {entry.help}" for name, entry in FORMATS.items()),
                         choices=tuple(FORMATS), required=True)  # fmt: skip
    quantize: str | None = option(None, "LiteRT quantization (tflite; web: all but int16x8)",
                                  choices=QUANTIZATIONS, formats=("tflite", "web"))  # fmt: skip
    calibration_dir: str | None = option(None, "real images to calibrate int8 quantization")
    input_size: int = option(256, "fixed LiteRT input size, a multiple of 4", minimum=1)
    dynamic_size: bool = option(False, "LiteRT input of any height and width", formats=("tflite",))
    uint8_io: bool = option(False, "LiteRT takes and returns uint8 pixels", formats=("tflite",))
    verify_dir: str | None = option(None, "images to verify on (default: bundled sample photos)")
    threads: int | None = option(2, "CPU threads when timing LiteRT and ONNX Runtime", minimum=1)
    out: str = option(None, "output path", required=True)
    overwrite: bool = option(False, "replace an existing .tflite, .onnx or SavedModel at --out (a web app "
                             "folder needs none: a re-export replaces only the files it wrote)")  # fmt: skip

    def check(self) -> None:
        """Refuses a value outside its choices or bounds, an option of another format, and a
        quantization the format lacks, naming the flags.

        Raises:
            UsageError: the first of those.
        """
        entry = FORMATS.get(self.format)  # the registry's entries, also those registered at run time
        if entry is None:
            raise UsageError(f"format must be one of {', '.join(FORMATS)}; got {self.format!r}")
        hints = typing.get_type_hints(ExportOptions)
        for spec in declared(ExportOptions):
            value = getattr(self, spec.name)
            if spec.name != "format" and ("choices" in spec.metadata or "minimum" in spec.metadata):
                check_setting(spec, value, hints[spec.name])
            formats = spec.metadata.get("formats")
            if formats and value not in (None, False) and self.format not in formats:
                flag = "--" + spec.name.replace("_", "-")
                raise UsageError(f"{flag} applies to --format {' and '.join(formats)} only")
        if self.quantize and self.quantize not in entry.quantizations:
            raise UsageError(
                f"--quantize {self.quantize} is not for --format {self.format}: it takes "
                f"{', '.join(entry.quantizations)}"
            )
