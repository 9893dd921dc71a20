"""The ``cyclegan-keras`` command line: a thin layer over the Python API.

``train``, ``translate``, ``demo``, ``export``, ``convert``, ``pretrained``, ``evaluate`` and ``serve``.
TensorFlow is imported only by the commands that need it, so ``--help``, ``--version``, ``pretrained``
without a name and ``serve`` answer at once.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import importlib.util
import os
import signal
import sys
import threading
import typing
import warnings
from collections.abc import Sequence

from cyclegan_keras.data.tfds import CYCLE_GAN_CONFIGS
from cyclegan_keras.deploy.options import QUANTIZATIONS, TILE_STATS
from cyclegan_keras.options import BOUNDS, range_text, within
from cyclegan_keras.training.config import TrainConfig
from cyclegan_keras.version import __version__

DEFAULTS = TrainConfig()
MODEL_HELP = (
    "a .keras generator (or whole CycleGAN), SavedModel folder, .tflite, .onnx, official .pth, or the "
    "name of a pretrained generator (`cyclegan-keras pretrained` lists them)"
)
_GROUPS = ("data", "model", "optimisation", "run")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, naming the flag and what it takes (the usage
    block that argparse prints first buries it; ``--help`` shows it)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _bounded(kind: type, **bounds: float):
    """An argparse ``type`` that reads an int or a finite float within the bounds (``above`` and
    ``below`` exclude their value, ``minimum`` and ``maximum`` include it)."""
    wanted = range_text(kind, **bounds)

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text!r}") from None
        if not within(value, **bounds):
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
        return value

    convert.kind, convert.bounds = kind, bounds  # what the command table test feeds wrong values
    return convert


_positive_int = _bounded(int, minimum=1)


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    """``cyclegan-keras train``'s options, one per ``TrainConfig`` field, from the fields' metadata."""
    groups = {name: parser.add_argument_group(name) for name in _GROUPS}
    exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
    hints = typing.get_type_hints(TrainConfig)
    for spec in dataclasses.fields(TrainConfig):
        rules = spec.metadata
        if "help" not in rules:
            continue
        group = groups[rules["group"]]
        if "exclusive" in rules:
            if rules["exclusive"] not in exclusive:
                exclusive[rules["exclusive"]] = group.add_mutually_exclusive_group()
            group = exclusive[rules["exclusive"]]
        flag = rules.get("flag", "--" + spec.name.replace("_", "-"))
        kind = next(
            t for t in typing.get_args(hints[spec.name]) or (hints[spec.name],) if t is not type(None)
        )
        default = DEFAULTS.__dict__[spec.name]
        # No defaults in the namespace: a field is there only when its flag was given, so that --resume
        # can tell a changed setting from the default; _config_from fills in the rest.
        text = rules["help"] + (f" [official {rules['official']}]" if "official" in rules else "")
        if kind is bool:
            group.add_argument(
                flag, action="store_true", help=text, dest=spec.name, default=argparse.SUPPRESS
            )
            if "off_flag" in rules:
                group.add_argument(
                    rules["off_flag"],
                    action="store_false",
                    help=f"the default: no {flag}",
                    dest=spec.name,
                    default=argparse.SUPPRESS,
                )
            continue
        if default is not None and "default:" not in text:
            text += f" (default: {default})"
        arguments = {"help": text, "metavar": rules.get("metavar"), "dest": spec.name}
        if "choices" in rules:
            arguments["choices"] = rules["choices"]
        if kind is not str:
            arguments["type"] = _bounded(kind, **{key: rules[key] for key in BOUNDS if key in rules})
        group.add_argument(
            flag, default=argparse.SUPPRESS, **{k: v for k, v in arguments.items() if v is not None}
        )
    groups["run"].add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint"
    )
    groups["run"].add_argument(
        "--verbose", type=int, choices=(0, 1, 2), default=1, help="progress output (default: 1)"
    )


def _flag(name: str) -> str:
    spec = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return spec.metadata.get("flag", "--" + name.replace("_", "-"))


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


def _use_backend(args: argparse.Namespace) -> None:
    """Picks the Keras backend before anything imports Keras: ``--backend``, else ``$KERAS_BACKEND``,
    else (with ``--resume``) the run's own, else Keras' default. An explicit choice is passed on as the
    flag, so that ``--resume`` says it changes the run's backend."""
    import json

    from cyclegan_keras.training.backends import select_backend

    if getattr(args, "backend", None) is None and os.environ.get("KERAS_BACKEND"):
        args.backend = os.environ["KERAS_BACKEND"]
    backend = getattr(args, "backend", None)
    if backend is None and args.resume:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            with open(os.path.join(getattr(args, "out", DEFAULTS.out), "config.json")) as file:
                backend = json.load(file).get("backend")
    if backend is not None:
        select_backend(backend)


def _cmd_train(args: argparse.Namespace) -> int:
    _use_backend(args)
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


def _cmd_translate(args: argparse.Namespace) -> int:
    from cyclegan_keras.deploy.runners import load_runner
    from cyclegan_keras.deploy.translate import translate_files
    from cyclegan_keras.run.distributed import stop_on_sigterm

    translator = load_runner(
        args.model,
        direction=args.direction,
        threads=args.threads,
        tile=args.tile,
        tile_stats=args.tile_stats,
        max_memory=args.max_memory,
        verbose=True,
    )
    with stop_on_sigterm():  # a kill, like Ctrl-C, still removes the tiles' temporary arrays
        written = translate_files(
            translator, args.inputs, args.out, max_size=args.max_size, overwrite=args.overwrite
        )
    skipped = f"; skipped {len(written.skipped)} unreadable file(s)" if written.skipped else ""
    print(f"Translated {len(written)} image(s) into {args.out}{skipped}")
    return 1 if written.skipped else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from cyclegan_keras.cli.demo import run_demo

    run_demo(args.out, epochs=args.epochs)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from cyclegan_keras.deploy.export import export_generator
    from cyclegan_keras.deploy.verify import ExportVerificationError

    try:
        export_generator(
            args.model,
            args.format,
            args.out,
            quantize=args.quantize,
            calibration_dir=args.calibration_dir,
            input_size=args.input_size,
            dynamic_size=args.dynamic_size,
            uint8_io=args.uint8_io,
            verify_dir=args.verify_dir,
            direction=args.direction,
            overwrite=args.overwrite,
        )
    except ExportVerificationError as error:
        print(f"cyclegan-keras export: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_pretrained(args: argparse.Namespace) -> int:
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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from cyclegan_keras.data.folders import domain_folders
    from cyclegan_keras.data.tf_data import tfds_images
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


def _cmd_serve(args: argparse.Namespace) -> int:
    from cyclegan_keras.deploy.serve import serve

    serve(args.folder, host=args.host, port=args.port)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from cyclegan_keras.networks.official import load_official_generator
    from cyclegan_keras.run.outputs import check_output_file, staged_file

    check_output_file(args.out, "keras", overwrite=args.overwrite)
    generator = load_official_generator(args.pth, name=os.path.splitext(os.path.basename(args.out))[0])
    with staged_file(args.out, "the converted generator") as staging:
        generator.save(staging)
    print(f"Converted {args.pth} ({generator.count_params():,} parameters) to {args.out}")
    return 0


def _add_direction(parser: argparse.ArgumentParser, more: str = "") -> None:
    parser.add_argument(
        "--direction",
        choices=("a_to_b", "b_to_a"),
        help="for a whole CycleGAN .keras file: which generator (default: a_to_b); a file of one generator "
        f"translates its own way, and one whose name says the other is refused{more}",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cyclegan-keras``."""
    parser = _Parser(
        prog="cyclegan-keras",
        description="CycleGAN in Keras 3: train with the official recipe, translate, export to LiteRT.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of every error, bad input included"
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        dest="framework_logs",
        help="show TensorFlow's and absl's start-up log lines (hidden by default, unless "
        "TF_CPP_MIN_LOG_LEVEL is set)",
    )
    parser.add_argument("--version", action="version", version=f"cyclegan-keras {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a CycleGAN",
        description="Train CycleGAN with the official recipe; defaults are the paper's settings.",
    )
    _add_train_options(train)
    train.set_defaults(run=_cmd_train)

    translate = commands.add_parser(
        "translate",
        help="translate images with a generator",
        description="Translate images of any size with a trained generator.",
    )
    translate.add_argument("--model", required=True, help=MODEL_HELP)
    translate.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    translate.add_argument(
        "--out",
        required=True,
        metavar="DIR_OR_FILE",
        help="folder for the translated images (NAME.png each), or for one input the image file to write",
    )
    translate.add_argument(
        "--overwrite", action="store_true", help="replace output images that exist already (never an input)"
    )
    _add_direction(translate)
    translate.add_argument(
        "--max-size", type=_positive_int, help="scale larger photos down to this side first"
    )
    translate.add_argument("--threads", type=_positive_int, default=None, help="LiteRT/ONNX threads")
    translate.add_argument(
        "--tile",
        type=_positive_int,
        metavar="N",
        help="translate in tiles of about N x N pixels, with the overlap the network needs (default: only "
        "photos that do not fit --max-memory whole, in tiles chosen for it)",
    )
    translate.add_argument(
        "--tile-stats",
        choices=TILE_STATS,
        help="instance-norm statistics of tiled photos: exact (default; the whole photo's, equal to the "
        "whole-photo result, stage by stage) or thumbnail (a 1 MP copy's; one pass, faster)",
    )
    translate.add_argument(
        "--max-memory",
        metavar="SIZE",
        help="memory budget, e.g. 3G: larger photos go in tiles, and exact mode keeps its whole-photo "
        "arrays on disk (TMPDIR) beyond it (default: half the memory available)",
    )
    translate.set_defaults(run=_cmd_translate)

    demo = commands.add_parser(
        "demo",
        help="train a small model offline on bundled photos (a few minutes)",
        description="Train a small CycleGAN on a few horse and zebra photos that "
        "ship with the package, then translate one: no download, a few minutes on a CPU.",
    )
    demo.add_argument(
        "--out", default="cyclegan-demo", metavar="DIR", help="output folder (default: %(default)s)"
    )
    demo.add_argument("--epochs", type=_positive_int, default=None, help="override the demo's epochs")
    demo.set_defaults(run=_cmd_demo)

    export = commands.add_parser(
        "export",
        help="export a generator to SavedModel, LiteRT or ONNX",
        description="Export a generator, verify it against Keras and print a table.",
    )
    export.add_argument(
        "--model", required=True, help=MODEL_HELP.replace(", SavedModel folder, .tflite, .onnx", "")
    )
    _add_direction(export)
    export.add_argument(
        "--format",
        required=True,
        choices=("saved_model", "tflite", "onnx", "web"),
        help="web: a static folder (index.html, the .tflite, the LiteRT.js runtime) that runs in a browser",
    )
    export.add_argument(
        "--quantize", choices=QUANTIZATIONS, help="LiteRT quantization (tflite; web: all but int16x8)"
    )
    export.add_argument("--calibration-dir", help="real images to calibrate int8 quantization")
    export.add_argument(
        "--input-size",
        type=_positive_int,
        default=256,
        help="fixed LiteRT input size, a multiple of 4 (default: %(default)s)",
    )
    export.add_argument("--dynamic-size", action="store_true", help="LiteRT input of any height and width")
    export.add_argument("--uint8-io", action="store_true", help="LiteRT takes and returns uint8 pixels")
    export.add_argument("--verify-dir", help="images to verify on (default: bundled sample photos)")
    export.add_argument("--out", required=True, help="output path")
    export.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing .tflite, .onnx or SavedModel at --out (a web app folder needs none: "
        "a re-export replaces only the files it wrote)",
    )
    export.set_defaults(run=_cmd_export)

    pretrained = commands.add_parser(
        "pretrained",
        help="list the official pretrained generators, or download one",
        description="The official pretrained CycleGAN generators: without NAME, list them (and which are "
        "cached); with NAME, download and convert that one into the cache ($CYCLEGAN_KERAS_HOME).",
    )
    pretrained.add_argument("name", nargs="?", metavar="NAME", help="a name to download, e.g. horse2zebra")
    pretrained.set_defaults(run=_cmd_pretrained)

    evaluate = commands.add_parser(
        "evaluate",
        help="score a generator with FID and KID on a test split",
        description="Translate a test split as the official test script does and score it against the "
        "real target images: FID and KID in the features of the Inception graph FID is defined with.",
    )
    evaluate.add_argument("--model", required=True, help=MODEL_HELP)
    data = evaluate.add_mutually_exclusive_group(required=True)
    data.add_argument("--data-dir", help="a folder with testA/ and testB/")
    data.add_argument("--dataset", choices=CYCLE_GAN_CONFIGS, help="a tfds cycle_gan config")
    _add_direction(evaluate, "; a_to_b translates testA and compares with testB, b_to_a the other way")
    evaluate.add_argument("--size", type=_positive_int, default=256, help="test size (default: %(default)s)")
    evaluate.add_argument(
        "--resize",
        choices=("clean", "legacy_tensorflow"),
        default="clean",
        help="how images reach 299x299: clean-fid's (default) or the original TF FID code's",
    )
    evaluate.add_argument(
        "--inception", help="the Inception graph file (default: download once into the cache)"
    )
    evaluate.add_argument("--threads", type=_positive_int, default=None, help="LiteRT/ONNX threads")
    evaluate.add_argument("--out", help="also write the scores to this JSON file")
    evaluate.set_defaults(run=_cmd_evaluate)

    convert = commands.add_parser(
        "convert",
        help="convert an official PyTorch checkpoint to .keras",
        description="Convert an official CycleGAN generator (.pth or .npz) to .keras.",
    )
    convert.add_argument("--pth", required=True, help="official checkpoint, e.g. horse2zebra.pth")
    convert.add_argument("--out", required=True, help="the .keras file to write")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing .keras file at --out")
    convert.set_defaults(run=_cmd_convert)

    serve = commands.add_parser(
        "serve",
        help="serve a web export on this machine, with the headers its threads need",
        description="Serve a folder that `export --format web` wrote, with the cross-origin isolation "
        "headers that let the page use WebAssembly threads (python -m http.server sends none, and the page "
        "then runs on one thread).",
    )
    serve.add_argument("folder", metavar="DIR", help="the web export's folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument(
        "--port",
        type=_bounded(int, minimum=0, maximum=65535),
        default=8000,
        help="port, 0 for any free one (default: %(default)s)",
    )
    serve.set_defaults(run=_cmd_serve)
    return parser


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Our warnings as one line each (``cyclegan-keras train: warning: ...``), not Python's two lines
    with a source path; other libraries' warnings keep Python's format."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, UserWarning) or f"{os.sep}cyclegan_keras{os.sep}" not in filename:
            return shown(message, category, filename, lineno, file, line)
        print(f"cyclegan-keras {command}: warning: {message}", file=file or sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``cyclegan-keras``; returns the exit status."""
    _take_ctrl_c()
    parser = build_parser()
    args = parser.parse_args(argv)
    from cyclegan_keras.errors import DatasetUnavailableError, UsageError, WriteError

    try:
        if args.framework_logs:
            from cyclegan_keras.system.native_logs import show_native_logs

            show_native_logs()
        else:  # inside the handlers: a Ctrl-C during TensorFlow's import is one line
            _quiet_tensorflow(args)
        with _one_line_warnings(args.command):
            return args.run(args)
    except KeyboardInterrupt as error:
        if args.debug:
            raise
        # 128 + the signal's number, as a shell reports a process the signal ended.
        status, why = (143, str(error)) if type(error).__name__ == "Interrupted" else (130, "interrupted")
        resume = "; resume a training run with --resume" if args.command == "train" else ""
        parser.exit(status, f"cyclegan-keras: {why}{resume}\n")
    except Exception as error:
        if args.debug:
            raise
        if isinstance(error, (UsageError, DatasetUnavailableError, WriteError)):
            status = 1 if isinstance(error, WriteError) else 2
            parser.exit(status, f"cyclegan-keras {args.command}: error: {error}\n")
        if _out_of_memory(error):
            parser.exit(
                2,
                f"cyclegan-keras {args.command}: error: out of memory ({type(error).__name__}): lower the "
                "sizes (--crop-size, --batch-size, --ngf; for photos --max-memory or --tile).\n",
            )
        if _not_writable(error):
            parser.exit(
                2,
                f"cyclegan-keras {args.command}: error: cannot use {error.filename!r} ({error.strerror}): "
                "check its permissions, or pass a place you can write (--out).\n",
            )
        raise  # anything but what a user can fix is a bug, and keeps its traceback
    return 0


def _out_of_memory(error: Exception) -> bool:
    """An allocation failure of Python or of a framework, told by name (importing the frameworks to
    compare classes would load them all): TensorFlow's, PyTorch's, and XLA's on JAX."""
    name = type(error).__name__
    return (
        isinstance(error, MemoryError)
        or name in ("ResourceExhaustedError", "OutOfMemoryError")
        or (name in ("XlaRuntimeError", "JaxRuntimeError") and "RESOURCE_EXHAUSTED" in str(error))
    )


def _not_writable(error: Exception) -> bool:
    """A file or folder the user may not use: no permission, a read-only file system."""
    return (
        isinstance(error, OSError)
        and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
        and error.filename is not None
    )


def _quiet_tensorflow(args: argparse.Namespace) -> None:
    """Imports TensorFlow, when the command will, with its start-up INFO and WARNING lines hidden
    (``cyclegan_keras.system.native_logs``). A level the user set in TF_CPP_MIN_LOG_LEVEL is left alone."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.command == "serve" or (args.command == "pretrained" and not args.name):
        return
    if args.command == "train":
        _use_backend(args)
        from cyclegan_keras.training.backends import active_backend

        if active_backend() != "tensorflow" and getattr(args, "input_pipeline", "auto") != "tf_data":
            return
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    from cyclegan_keras.system.native_logs import quiet_native_logs

    with quiet_native_logs():
        import tensorflow as tf

        tf.config.list_physical_devices()


def _take_ctrl_c() -> None:
    """Ctrl-C (SIGINT) stops every command, also one started where SIGINT was ignored.

    A process started in the background of a non-interactive shell (a CI job, ``cmd &`` in a
    script, some notebook and job runners) inherits SIGINT as ignored, and Python then installs no
    handler of its own: Ctrl-C, or ``kill -INT``, did nothing, and a waiting worker waited on.
    """
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.default_int_handler)


if __name__ == "__main__":
    sys.exit(main())
