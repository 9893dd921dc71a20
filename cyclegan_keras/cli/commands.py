"""What each ``cyclegan-keras`` command does with its parsed flags: a thin layer over the Python API.

TensorFlow is imported only by the commands that need it, so ``--help``, ``--version``, ``pretrained``
without a name and ``serve`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import sys

from cyclegan_keras.cli.flags import options_from
from cyclegan_keras.options import flag_of
from cyclegan_keras.training.config import TrainConfig

DEFAULTS = TrainConfig()


def _flag(name: str) -> str:
    return flag_of(next(f for f in dataclasses.fields(TrainConfig) if f.name == name))


def _config_from(args: argparse.Namespace) -> tuple[TrainConfig, list[str]]:
    """The run's settings: the flags given over the defaults, or with ``--resume`` over the run's own;
    and the lines that say what a resume changes.

    A resumed run takes a flag that ``resume_applies`` (more epochs, a moved --data-dir, another
    --eval-every) and says so; any other flag whose value differs from the run's is refused.
    """
    from cyclegan_keras.errors import UsageError
    from cyclegan_keras.run.folder import find_run
    from cyclegan_keras.training.loop import load_config

    options = {f.name: f for f in dataclasses.fields(TrainConfig) if "help" in f.metadata}
    given = {k: v for k, v in vars(args).items() if k in options}
    if given.get("data_dir"):  # the run's config.json then finds it from any directory
        given["data_dir"] = os.path.abspath(given["data_dir"])
    if not (args.resume and find_run(given.get("out", DEFAULTS.out)) is not None):
        return TrainConfig(**given), []
    out = given.pop("out", DEFAULTS.out)
    saved = load_config(out)
    changed = {k: v for k, v in given.items() if v != getattr(saved, k)}
    refused = [k for k in changed if not options[k].metadata.get("resume_applies")]
    if refused:
        name = refused[0]
        raise UsageError(
            f"--resume continues {out!r} with its own {_flag(name)} {getattr(saved, name)}, and "
            f"{_flag(name)} {changed[name]} would change what it trains: drop {_flag(name)}, or start a new "
            "run with another --out."
        )
    notes = [
        f"Resuming with {_flag(name)} {value} (the run had {getattr(saved, name)})."
        for name, value in changed.items()
    ]
    if "data_dir" in changed:
        changed["dataset"] = DEFAULTS.dataset
    elif saved.data_dir is not None and not os.path.isdir(saved.data_dir):
        relative = "" if os.path.isabs(saved.data_dir) else ", a path relative to where the run started"
        raise UsageError(
            f"--resume: the run's data folder {saved.data_dir!r}{relative} is not found from "
            f"{os.getcwd()!r}: pass --data-dir DIR with --resume (the same photos, where they are now)."
        )
    return dataclasses.replace(saved, out=out, **changed), notes


def use_backend(args: argparse.Namespace) -> None:
    """Picks the Keras backend before anything imports Keras: ``--backend``, else ``$KERAS_BACKEND``,
    else (with ``--resume``) the run's own, else (``translate`` with a Keras generator) the fastest
    installed for inference, else Keras' default. An explicit choice is passed on as the
    flag, so that ``--resume`` says it changes the run's backend."""
    import json

    from cyclegan_keras.training.backends import select_backend

    if getattr(args, "backend", None) is None and os.environ.get("KERAS_BACKEND"):
        args.backend = os.environ["KERAS_BACKEND"]
    if args.command == "translate" and not hasattr(args, "backend_reason"):
        from cyclegan_keras.deploy.backend import inference_backend, runs_on_keras

        args.backend_reason = None
        if runs_on_keras(args.model):
            args.backend, args.backend_reason = inference_backend(args.backend)
    backend = getattr(args, "backend", None)
    if backend is None and getattr(args, "resume", False):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            with open(os.path.join(getattr(args, "out", DEFAULTS.out), "config.json")) as file:
                backend = json.load(file).get("backend")
    if backend is not None:
        select_backend(backend)


def cmd_train(args: argparse.Namespace) -> int:
    use_backend(args)
    from cyclegan_keras.run.checkpoint import TrainingStopped
    from cyclegan_keras.run.distributed import WorkerError
    from cyclegan_keras.training.loop import train

    config, notes = _config_from(args)
    try:
        result = train(config, resume=args.resume, verbose=args.verbose, notes=notes)
    except (TrainingStopped, WorkerError) as error:
        print(f"cyclegan-keras: {error}", file=sys.stderr)
        return 1
    print(f"Trained to epoch {result.epoch}. Generators: {result.generator_ab}, {result.generator_ba}")
    return 0


# translate's flags for videos only, and those for photos only.
VIDEO_FLAGS = ("video_stats", "stats_momentum", "stats_stride", "codec", "crf")
PHOTO_FLAGS = ("max_size",)


def cmd_translate(args: argparse.Namespace) -> int:
    from cyclegan_keras.video.streams import is_video

    videos = [path for path in args.inputs if is_video(path)]
    _check_translate_flags(args, videos)
    use_backend(args)
    if args.backend_reason:
        print(f"Backend: {args.backend} ({args.backend_reason})")
    from cyclegan_keras.deploy.runners import load_runner
    from cyclegan_keras.deploy.translate import translate_files
    from cyclegan_keras.run.distributed import stop_on_sigterm

    if videos:
        targets = _video_targets(videos, args.out, args.overwrite)

    translator = load_runner(
        args.model,
        direction=args.direction,
        threads=args.threads,
        tile=args.tile,
        tile_stats=args.tile_stats,
        max_memory=args.max_memory,
        verbose=not videos,  # a video has one progress bar over its frames, not one per frame's tiles
    )
    if videos:
        with stop_on_sigterm():  # a kill, like Ctrl-C, leaves no unfinished video behind
            return _translate_videos(translator, videos, targets, args)
    with stop_on_sigterm():  # a kill, like Ctrl-C, still removes the tiles' temporary arrays
        written = translate_files(
            translator,
            args.inputs,
            args.out,
            max_size=args.max_size,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
        )
    skipped = f"; skipped {len(written.skipped)} unreadable file(s)" if written.skipped else ""
    print(f"Translated {len(written)} image(s) into {args.out}{skipped}")
    return 1 if written.skipped else 0


def _check_translate_flags(args: argparse.Namespace, videos: list[str]) -> None:
    from cyclegan_keras.errors import UsageError

    if videos and len(videos) != len(args.inputs):
        raise UsageError(
            "translate takes photos or videos, not both in one command: translate the videos "
            f"({', '.join(videos[:3])}{', ...' if len(videos) > 3 else ''}) in a command of their own."
        )
    wrong = [name for name in (PHOTO_FLAGS if videos else VIDEO_FLAGS) if getattr(args, name) is not None]
    if wrong:
        flag = "--" + wrong[0].replace("_", "-")
        raise UsageError(f"{flag} is for {'photos' if videos else 'videos'}: drop it.")


def _video_targets(videos: list[str], out: str, overwrite: bool) -> list[str]:
    """Where each video goes: ``out`` itself for one input and a video file name, else ``out/<name>``;
    all checked before any is written."""
    from cyclegan_keras.errors import MissingInputError, UsageError
    from cyclegan_keras.run.outputs import check_new_files
    from cyclegan_keras.video.streams import is_video

    missing = [path for path in videos if not os.path.isfile(path)]
    if missing:
        raise MissingInputError(f"No video at: {', '.join(missing)}")
    if os.path.splitext(out)[1] and not is_video(out) and not os.path.isdir(out):
        raise UsageError(f"--out {out!r} for videos: pass a video file name (.mp4, .mkv, ...) or a folder.")
    if is_video(out) and not os.path.isdir(out):
        if len(videos) != 1:
            raise UsageError(
                f"--out {out!r} names one video file but there are {len(videos)} inputs: pass a folder."
            )
        targets = [out]
    else:
        targets = [os.path.join(out, os.path.basename(path)) for path in videos]
    check_new_files(targets, protected=videos, overwrite=overwrite)
    return targets


def _translate_videos(translator, videos: list[str], targets: list[str], args: argparse.Namespace) -> int:
    from cyclegan_keras.video.translate import VideoError, translate_video

    failed = 0
    for source, target in zip(videos, targets):
        try:
            result = translate_video(
                translator,
                source,
                target,
                video_stats=args.video_stats,
                stats_momentum=args.stats_momentum,
                stats_stride=args.stats_stride,
                codec=args.codec,
                crf=args.crf,
                overwrite=args.overwrite,
                batch_size=args.batch_size,
                verbose=True,
            )
        except VideoError as error:
            print(f"cyclegan-keras translate: {error} Nothing was written at {target}.", file=sys.stderr)
            failed += 1
            continue
        print(f"Translated {result.frames} frames of {source} into {target} ({result.fps:.2f} frames/s)")
    return 1 if failed else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cyclegan_keras.cli.demo import run_demo

    run_demo(args.out, epochs=args.epochs)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from cyclegan_keras.deploy.export import export_generator
    from cyclegan_keras.deploy.options import ExportOptions
    from cyclegan_keras.deploy.verify import ExportVerificationError

    try:
        export_generator(**options_from(args, ExportOptions))
    except ExportVerificationError as error:
        print(f"cyclegan-keras export: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_pretrained(args: argparse.Namespace) -> int:
    from cyclegan_keras.networks.pretrained import PRETRAINED, is_cached, pretrained_path

    if args.name:
        path = pretrained_path(args.name)
        print(f"{args.name}: {path}")
        return 0
    width = max(map(len, PRETRAINED))
    print(f"{'name':{width}}  {'translates':52}  cached")
    for name, entry in PRETRAINED.items():
        print(f"{name:{width}}  {entry.description:52}  {'yes' if is_cached(name) else 'no'}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cyclegan_keras.data.folders import domain_folders
    from cyclegan_keras.data.tfds import tfds_images
    from cyclegan_keras.deploy.runners import load_runner
    from cyclegan_keras.evaluation.evaluate import evaluate
    from cyclegan_keras.run.outputs import check_output_file, write_json

    if args.out:
        check_output_file(args.out, "report")
    args.direction = args.direction or "a_to_b"
    source, target = ("testA", "testB") if args.direction == "a_to_b" else ("testB", "testA")
    if args.data_dir:
        folders = domain_folders(args.data_dir, required=(source, target))
        sources, targets = folders[source], folders[target]
    else:
        sources, targets = (tfds_images(args.dataset, split) for split in (source, target))
    translator = load_runner(args.model, direction=args.direction, threads=args.threads)
    result = evaluate(
        translator, sources, targets, size=args.size, inception=args.inception, resize=args.resize
    )
    print("| model | direction | FID | KID x 1000 | images |\n|---|---|---|---|---|")
    print(
        f"| {args.model} | {args.direction} | {result['fid']:.2f} | {1000 * result['kid_mean']:.2f} "
        f"+- {1000 * result['kid_std']:.2f} | {result['num_translated']} vs {result['num_target']} |"
    )
    if args.out:
        report = {"model": args.model, "direction": args.direction, "size": args.size, "resize": args.resize}
        write_json(args.out, {**report, **result, "data": args.data_dir or f"cycle_gan/{args.dataset}"})
        print(f"Report: {args.out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from cyclegan_keras.deploy.serve import serve

    serve(args.folder, host=args.host, port=args.port)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from cyclegan_keras.networks.official import load_official_generator
    from cyclegan_keras.run.outputs import check_output_file, staged_file

    check_output_file(args.out, "keras", overwrite=args.overwrite)
    generator = load_official_generator(args.pth, name=os.path.splitext(os.path.basename(args.out))[0])
    with staged_file(args.out, "the converted generator") as staging:
        generator.save(staging)
    print(f"Converted {args.pth} ({generator.count_params():,} parameters) to {args.out}")
    return 0
