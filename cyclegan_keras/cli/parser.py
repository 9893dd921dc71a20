"""The commands of ``cyclegan-keras`` and their flags, generated from the options each room declares:
``TrainConfig`` (training), ``TranslateOptions`` and ``ExportOptions`` (deploy), ``EvaluateOptions``
(evaluation), and the small commands' options below."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from cyclegan_keras.cli import commands
from cyclegan_keras.cli.flags import Parser, add_flags
from cyclegan_keras.deploy.options import ExportOptions, TranslateOptions
from cyclegan_keras.evaluation.options import EvaluateOptions
from cyclegan_keras.options import option
from cyclegan_keras.training.config import TrainConfig
from cyclegan_keras.version import __version__


@dataclass
class DemoOptions:
    out: str = option("cyclegan-demo", "output folder", metavar="DIR")
    epochs: int | None = option(None, "override the demo's epochs", minimum=1)


@dataclass
class PretrainedOptions:
    name: str | None = option(None, "a name to download, e.g. horse2zebra", positional=True, nargs="?",
                              metavar="NAME")  # fmt: skip


@dataclass
class ConvertOptions:
    pth: str = option(None, "official checkpoint, e.g. horse2zebra.pth", required=True)
    out: str = option(None, "the .keras file to write", required=True)
    overwrite: bool = option(False, "replace an existing .keras file at --out")


@dataclass
class ServeOptions:
    folder: str = option(None, "the web export's folder", positional=True, metavar="DIR")
    host: str = option("127.0.0.1", "address to listen on")
    port: int = option(8000, "port, 0 for any free one", minimum=0, maximum=65535)


@dataclass(frozen=True)
class Command:
    """A command: its options, its help, and the function that runs it (``commands``)."""

    name: str
    options: type
    run: Callable[[argparse.Namespace], int]
    help: str
    description: str


def _commands() -> tuple[Command, ...]:
    # Read when the parser is built, so that a test may replace a command's function.
    return (
        Command("train", TrainConfig, commands.cmd_train, "train a CycleGAN",
                "Train CycleGAN with the official recipe; defaults are the paper's settings."),
        Command("translate", TranslateOptions, commands.cmd_translate, "translate images with a generator",
                "Translate images of any size with a trained generator."),
        Command("demo", DemoOptions, commands.cmd_demo,
                "train a small model offline on bundled photos (a few minutes)",
                "Train a small CycleGAN on a few horse and zebra photos that ship with the package, then "
                "translate one: no download, a few minutes on a CPU."),
        Command("export", ExportOptions, commands.cmd_export,
                "export a generator to SavedModel, LiteRT or ONNX",
                "Export a generator, verify it against Keras and print a table."),
        Command("pretrained", PretrainedOptions, commands.cmd_pretrained,
                "list the official pretrained generators, or download one",
                "The official pretrained CycleGAN generators: without NAME, list them (and which are "
                "cached); with NAME, download and convert that one into the cache ($CYCLEGAN_KERAS_HOME)."),
        Command("evaluate", EvaluateOptions, commands.cmd_evaluate,
                "score a generator with FID and KID on a test split",
                "Translate a test split as the official test script does and score it against the real "
                "target images: FID and KID in the features of the Inception graph FID is defined with."),
        Command("convert", ConvertOptions, commands.cmd_convert,
                "convert an official PyTorch checkpoint to .keras",
                "Convert an official CycleGAN generator (.pth or .npz) to .keras."),
        Command("serve", ServeOptions, commands.cmd_serve,
                "serve a web export on this machine, with the headers its threads need",
                "Serve a folder that `export --format web` wrote, with the cross-origin isolation headers "
                "that let the page use WebAssembly threads (python -m http.server sends none, and the page "
                "then runs on one thread)."),
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cyclegan-keras``."""
    parser = Parser(
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
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in _commands():
        sub = subparsers.add_parser(command.name, help=command.help, description=command.description)
        # A training run's flags stay out of the namespace unless given: --resume tells them from defaults.
        add_flags(sub, command.options, only_given=command.options is TrainConfig)
        sub.set_defaults(run=command.run)
    train = subparsers.choices["train"]
    (run,) = [group for group in train._action_groups if group.title == "run"]
    run.add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint"
    )
    run.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="progress output (default: 1)")
    return parser
