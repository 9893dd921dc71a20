"""Videos through ``translate``: streams kept (frames, rate, time stamps, size, orientation, audio),
statistics along time, and bad input as one line each."""

import os
import subprocess
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from cyclegan_keras.cli import main
from cyclegan_keras.deploy.runners import KerasRunner, Runner, load_runner
from cyclegan_keras.errors import UsageError
from cyclegan_keras.video.translate import translate_video
from tests.video_checks import assert_statistics, statistics_gaps

RATE = Fraction(30000, 1001)  # NTSC's, not a whole number
TIME_BASE = Fraction(1, 30000)


def make_clip(path, frames=8, height=32, width=48, rotation=0, audio=True, codec="libx264"):
    """A clip of a bright square moving 2 px a frame (with a quiet tone as AAC audio); returns its frames
    as encoded (``uint8 [N, H, W, 3]``)."""
    pixels = []
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=RATE)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = TIME_BASE
        if rotation:
            video.set_display_rotation(rotation)
        sound = _sound(container) if audio else None
        for t in range(frames):
            image = np.full((height, width, 3), 40, np.uint8)
            image[8:20, 2 * t : 2 * t + 12] = (230, 200, 60)
            pixels.append(image)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = t * 1001, TIME_BASE
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio:
            _tone(container, int(16000 * frames / RATE), sound)
    return np.stack(pixels)


def _sound(container):
    """A mono AAC audio stream in the container."""
    sound = container.add_stream("aac", rate=16000)
    sound.layout = "mono"
    return sound


def _tone(container, samples: int, sound=None) -> None:
    """A quiet tone of this many samples into the container's audio stream (a new one by default)."""
    sound = sound or _sound(container)
    tone = (0.2 * np.sin(np.arange(samples) * 0.05)).astype(np.float32)[None]
    chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
    chunk.sample_rate, chunk.pts = 16000, 0
    container.mux(sound.encode(chunk))
    container.mux(sound.encode(None))


def streams(path):
    """What a player sees of a file: the video's frames (as stored), time stamps, rate, rotation and
    stored size, and the audio packets' bytes."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        decoded = list(container.decode(video=0))
        found = {
            "rate": video.average_rate,
            "size": (video.codec_context.width, video.codec_context.height),
            "times": [float(f.pts * f.time_base) for f in decoded],
            "rotation": {f.rotation for f in decoded},
            "frames": np.stack([f.to_ndarray(format="rgb24") for f in decoded]),
        }
    with av.open(str(path)) as container:
        audio = container.streams.audio
        found["audio"] = [bytes(p) for p in container.demux(audio[:1]) if p.dts is not None] if audio else []
    return found


@pytest.fixture
def runner(tiny_generator_file):
    return load_runner(tiny_generator_file)


def test_a_clip_keeps_its_frames_rate_time_stamps_size_orientation_and_audio(runner, tmp_path):
    clip, out = tmp_path / "clip.mp4", tmp_path / "out" / "zebra.mp4"
    make_clip(clip, rotation=90)
    result = translate_video(runner, clip, out, crf=0)
    source, written = streams(clip), streams(out)
    assert result.frames == 8 and result.video_stats == "clip" and result.codec == "libx264"
    for key in ("rate", "size", "times", "rotation", "audio"):
        assert written[key] == source[key], key
    assert written["rate"] == RATE and written["rotation"] == {90} and len(source["audio"]) > 2
    assert sorted(os.listdir(out.parent)) == ["zebra.mp4"]  # nothing left beside it


def test_frame_mode_writes_each_frame_translated_as_a_photo(runner, tmp_path):
    # The frames a player shows are the photos' translations, as displayed (rotated), up to the codec:
    # compared in luma, which 4:2:0 keeps at crf 0 (a random generator's colour noise it does not).
    clip, out = tmp_path / "clip.mkv", tmp_path / "out.mkv"
    make_clip(clip, frames=5, rotation=270, audio=False)
    translate_video(runner, clip, out, video_stats="frame", crf=0)
    stored, written = streams(clip)["frames"], streams(out)["frames"]

    def gap(turns):  # against translating the frames turned this many times counter-clockwise
        translated = np.stack([runner(frame) for frame in np.rot90(stored, turns, axes=(1, 2))])
        luma = np.array([0.299, 0.587, 0.114])
        return np.abs(written @ luma - np.rot90(translated, -turns, axes=(1, 2)) @ luma).mean()

    assert gap(3) < 2.0, gap(3)  # 270 degrees: as displayed
    assert gap(0) > gap(3) + 5, (gap(0), gap(3))  # translated as stored is far


def test_statistics_along_time_are_exact_on_this_backend():
    assert_statistics(statistics_gaps())


def test_running_statistics_average_the_mean_and_second_moment_over_calls():
    from cyclegan_keras.video.statistics import RunningStatistics

    means, variances = np.array([[1.0], [3.0], [5.0]]), np.array([[4.0], [1.0], [0.0]])
    # second moments 5, 10, 25; at momentum 0.75: means 1, 1.5, 2.375 and second moments 5, 6.25, 10.9375
    expected_means = np.array([[1.0], [1.5], [2.375]])
    expected_variances = np.array([[4.0], [6.25 - 1.5**2], [10.9375 - 2.375**2]])
    together = RunningStatistics(0.75)(7, means, variances)
    split = RunningStatistics(0.75)
    parts = [split(7, means[:2], variances[:2]), split(7, means[2:], variances[2:])]
    for found in (together, tuple(np.concatenate(p) for p in zip(*parts))):
        np.testing.assert_allclose(found[0], expected_means)
        np.testing.assert_allclose(found[1], expected_variances)


@pytest.mark.parametrize("mode", ["clip", "running"])
def test_shared_statistics_change_the_frames_and_keep_the_stream(runner, tmp_path, mode):
    clip = tmp_path / "source.mp4"
    make_clip(clip, frames=6, audio=False)
    translate_video(runner, clip, tmp_path / "frame.mp4", video_stats="frame", crf=0)
    translate_video(runner, clip, tmp_path / f"{mode}.mp4", video_stats=mode, crf=0)
    frame, shared = streams(tmp_path / "frame.mp4"), streams(tmp_path / f"{mode}.mp4")
    assert shared["times"] == frame["times"]
    later = np.abs(shared["frames"][1:].astype(int) - frame["frames"][1:]).max()
    assert later > 2, later  # other statistics than each frame's own
    if mode == "running":  # its first frame is the frame mode's
        assert np.abs(shared["frames"][0].astype(int) - frame["frames"][0]).max() <= 2


def test_the_clip_statistics_come_from_every_stride_th_frame(runner, tmp_path, monkeypatch):
    from cyclegan_keras.video.statistics import StatisticsTranslator

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=8, audio=False)
    call = StatisticsTranslator.__call__
    first_pass = []

    def spy(self, frames, statistics):
        if statistics.collecting:
            first_pass.extend(frames)
        return call(self, frames, statistics)

    monkeypatch.setattr(StatisticsTranslator, "__call__", spy)
    translate_video(runner, clip, tmp_path / "every.mp4", stats_stride=1, crf=0)
    assert len(first_pass) == 8
    with pytest.raises(UsageError, match="--stats-stride must be a positive integer"):
        translate_video(runner, clip, tmp_path / "none.mp4", stats_stride=0)
    first_pass.clear()
    translate_video(runner, clip, tmp_path / "third.mp4", stats_stride=3, crf=0)
    decoded = streams(clip)["frames"]
    assert len(first_pass) == 3
    for found, expected in zip(first_pass, decoded[::3]):
        np.testing.assert_array_equal(found, expected)
    every, third = streams(tmp_path / "every.mp4"), streams(tmp_path / "third.mp4")
    assert third["times"] == every["times"]
    assert np.abs(third["frames"].astype(int) - every["frames"]).max() > 2  # other statistics


class _Failing(Runner):
    """A translator that fails on its third batch (``error``)."""

    def __init__(self, error):
        self.calls, self.error = 0, error

    def __call__(self, pixels):
        self.calls += 1
        if self.calls == 3:
            raise self.error
        return pixels


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("boom")])
def test_an_interrupted_video_leaves_nothing_that_looks_finished(tmp_path, error):
    clip, folder = tmp_path / "clip.mp4", tmp_path / "out"
    make_clip(clip)
    folder.mkdir()
    (folder / "old.mp4").write_bytes(b"kept")
    with pytest.raises(type(error)):
        translate_video(_Failing(error), clip, folder / "new.mp4")
    assert sorted(os.listdir(folder)) == ["old.mp4"] and (folder / "old.mp4").read_bytes() == b"kept"


def test_the_command_translates_a_clip_and_never_replaces_a_file(tiny_generator_file, tmp_path, capsys):
    clip = tmp_path / "clip.mp4"
    make_clip(clip)
    args = ["translate", "--model", str(tiny_generator_file), str(clip), "--out", str(tmp_path / "out")]
    assert main(args) == 0  # the default: clip statistics, two passes
    said = capsys.readouterr().out
    assert "from one frame in 16 (--stats-stride)" in said and "first pass" in said
    assert "H.264 (libx264) crf 18, audio copied, --video-stats clip" in said
    assert "Translated 8 frames of" in said
    written = tmp_path / "out" / "clip.mp4"
    before = written.read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and written.read_bytes() == before
    assert "already exist" in capsys.readouterr().err


def _status_and_error(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    err = capsys.readouterr().err.strip()
    return exit_info.value.code, err


def test_bad_videos_and_flags_are_one_line_each(tiny_generator_file, tmp_path, capsys):
    model = ["--model", str(tiny_generator_file)]
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    audio_only = tmp_path / "sound.mp4"
    with av.open(str(audio_only), "w") as container:
        _tone(container, 4096)
    empty = tmp_path / "empty.mkv"  # a video stream without frames beside the audio
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        _tone(container, 4096)
    clip, photo = tmp_path / "clip.mp4", tmp_path / "a.png"
    make_clip(clip, frames=2, audio=False)
    from PIL import Image

    Image.new("RGB", (16, 16)).save(photo)
    cases = {
        "as a video": [str(not_video), "--out", str(tmp_path / "o1.mp4")],
        "no video stream": [str(audio_only), "--out", str(tmp_path / "o2.mp4")],
        "has no frames": [str(empty), "--out", str(tmp_path / "o3.mkv")],
        "not both in one command": [str(clip), str(photo), "--out", str(tmp_path / "o4")],
        "--video-stats is for videos": [str(photo), "--out", str(tmp_path / "o5"), "--video-stats", "clip"],
        "--max-size is for photos": [str(clip), "--out", str(tmp_path / "o6.mp4"), "--max-size", "8"],
        "--stats-momentum is for --video-stats running": [
            str(clip), "--out", str(tmp_path / "o7.mp4"), "--video-stats", "clip", "--stats-momentum", "0.5"
        ],
        "--stats-stride is for --video-stats clip": [
            str(clip), "--out", str(tmp_path / "o10.mp4"), "--video-stats", "running", "--stats-stride", "2"
        ],
        "--stats-stride: must be a positive integer": [
            str(clip), "--out", str(tmp_path / "o11.mp4"), "--stats-stride", "0"
        ],
        "no such encoder": [str(clip), "--out", str(tmp_path / "o8.mp4"), "--codec", "nonesuch"],
        "pass a video file name": [str(clip), "--out", str(tmp_path / "o9.png")],
    }  # fmt: skip
    for expected, args in cases.items():
        code, err = _status_and_error(["translate", *model, *args], capsys)
        assert code == 2 and expected in err and "Traceback" not in err, (expected, err)
        assert len(err.splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("o")) == []


def test_exported_files_translate_frames_their_own_way(runner, tmp_path):
    # Statistics along time need the Keras graph; a runner without it says so and takes the frame mode.
    class Plain(Runner):
        def run_float(self, batch):
            return batch

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=3, audio=False)
    with pytest.raises(UsageError, match="pass --video-stats frame"):
        translate_video(Plain(), clip, tmp_path / "a.mp4", video_stats="running")
    assert translate_video(Plain(), clip, tmp_path / "b.mp4").video_stats == "frame"
    assert isinstance(runner, KerasRunner)


def test_a_missing_pyav_says_which_extra_to_install(tiny_generator_file, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=2, audio=False)
    code = (
        "import sys; sys.modules['av'] = None\n"
        "from cyclegan_keras.cli import main\n"
        f"main(['translate', '--model', {str(tiny_generator_file)!r}, {str(clip)!r}, '--out', "
        f"{str(tmp_path / 'o.mp4')!r}])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert "pip install 'cyclegan-keras[video]'" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("stride", [[], ["--stats-stride", "1"]], ids=["second pass", "first pass"])
def test_a_clip_damaged_part_way_exits_1_saying_the_frames_done(
    tiny_generator_file, tmp_path, capsys, monkeypatch, stride
):
    from cyclegan_keras.video.streams import VideoReader

    items = VideoReader.items

    def damaged(reader, **options):  # the decoder gives up after three frames, as on a truncated download
        for item in items(reader, **options):
            yield item
            if reader.decoded == 3:
                raise av.error.InvalidDataError(1094995529, "Invalid data found when processing input")

    monkeypatch.setattr(VideoReader, "items", damaged)
    clip = tmp_path / "clip.mp4"
    make_clip(clip, audio=False)
    out = tmp_path / "out.mp4"
    code = main(
        ["translate", "--model", str(tiny_generator_file), str(clip), "--out", str(out), "--batch-size", "1"]
        + stride
    )
    said = capsys.readouterr()
    assert code == 1 and "after frame 3" in said.err and "Nothing was written" in said.err, said.err
    # the first pass reads every frame with --stats-stride 1 and fails there; by default it reads frame 0
    # only, and the second pass fails
    assert ("from every frame" in said.out) == bool(stride)
    assert ("Writing out.mp4" in said.out) != bool(stride)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4", "g.keras"]
