"""The ``cyclegan-keras`` command line: ``train``, ``translate``, ``demo``, ``export``, ``convert``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence

from cyclegan_keras.data import CYCLE_GAN_CONFIGS, PREPROCESS_MODES
from cyclegan_keras.losses import GAN_MODES
from cyclegan_keras.training import GENERATORS, PRECISIONS, STRATEGIES, TrainConfig

DEFAULTS = TrainConfig()


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _add_train_options(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    source = data.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        default=DEFAULTS.dataset,
        choices=CYCLE_GAN_CONFIGS,
        help="tfds cycle_gan config to download (default: %(default)s)",
    )
    source.add_argument("--data-dir", help="a folder with trainA/ and trainB/ (testA/, testB/ optional)")
    data.add_argument(
        "--load-size",
        type=_positive_int,
        default=DEFAULTS.load_size,
        help="scale images to this size (default: %(default)s)",
    )
    data.add_argument(
        "--crop-size",
        type=_positive_int,
        default=DEFAULTS.crop_size,
        help="then crop to this size (default: %(default)s)",
    )
    data.add_argument(
        "--preprocess",
        choices=PREPROCESS_MODES,
        default=DEFAULTS.preprocess,
        help="official preprocessing mode (default: %(default)s)",
    )
    data.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    data.add_argument("--cache", action="store_true", help="keep decoded, resized images in memory")

    model = parser.add_argument_group("model")
    model.add_argument(
        "--generator",
        choices=GENERATORS,
        default=DEFAULTS.generator,
        help="generator architecture (default: %(default)s)",
    )
    model.add_argument(
        "--ngf",
        type=_positive_int,
        default=DEFAULTS.ngf,
        help="generator filters in the first layer (default: %(default)s)",
    )
    model.add_argument(
        "--ndf",
        type=_positive_int,
        default=DEFAULTS.ndf,
        help="discriminator filters in the first layer (default: %(default)s)",
    )
    model.add_argument(
        "--n-layers-d",
        type=_positive_int,
        default=DEFAULTS.n_layers_d,
        help="PatchGAN stride-2 layers (default: %(default)s: 70x70 patches)",
    )
    model.add_argument(
        "--gan-mode",
        choices=GAN_MODES,
        default=DEFAULTS.gan_mode,
        help="adversarial loss (default: %(default)s)",
    )
    model.add_argument(
        "--pool-size",
        type=int,
        default=DEFAULTS.pool_size,
        help="image pool size, 0 for none (default: %(default)s)",
    )
    model.add_argument(
        "--lambda-a",
        type=_non_negative_float,
        default=DEFAULTS.lambda_a,
        help="weight of the A->B->A cycle loss (default: %(default)s)",
    )
    model.add_argument(
        "--lambda-b",
        type=_non_negative_float,
        default=DEFAULTS.lambda_b,
        help="weight of the B->A->B cycle loss (default: %(default)s)",
    )
    model.add_argument(
        "--lambda-identity",
        type=_non_negative_float,
        default=DEFAULTS.lambda_identity,
        help="identity loss weight, relative to the cycle weights (default: %(default)s)",
    )

    optim = parser.add_argument_group("optimisation")
    optim.add_argument(
        "--epochs",
        type=int,
        help=f"epochs at the initial learning rate (default: {DEFAULTS.epochs}; with --resume, the run's)",
    )
    optim.add_argument(
        "--epochs-decay",
        type=int,
        help=f"epochs of linear decay to zero after them (default: {DEFAULTS.epochs_decay}; with --resume, "
        "the run's)",
    )
    optim.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        help="batches per epoch (default: max(|A|, |B|) / batch size); fewer for quick runs",
    )
    optim.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULTS.batch_size,
        help="images per domain per step (default: %(default)s)",
    )
    optim.add_argument(
        "--lr", type=float, default=DEFAULTS.lr, help="Adam learning rate (default: %(default)s)"
    )
    optim.add_argument(
        "--beta1", type=float, default=DEFAULTS.beta1, help="Adam beta_1 (default: %(default)s)"
    )
    optim.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=DEFAULTS.precision,
        help="float32, or mixed precision (default: %(default)s)",
    )
    optim.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=DEFAULTS.strategy,
        help="tf.distribute: one device, all local GPUs (mirrored), or TF_CONFIG workers "
        "(default: %(default)s)",
    )
    optim.add_argument("--jit-compile", action="store_true", help="XLA-compile the training step")
    optim.add_argument(
        "--steps-per-execution",
        type=_positive_int,
        default=DEFAULTS.steps_per_execution,
        help="training steps per tf.function call (default: %(default)s)",
    )
    optim.add_argument("--seed", type=int, default=DEFAULTS.seed, help="random seed (default: %(default)s)")
    optim.add_argument(
        "--deterministic",
        action="store_true",
        help="TensorFlow op determinism: the same seed gives the same weights",
    )

    run = parser.add_argument_group("run")
    run.add_argument(
        "--out",
        default=DEFAULTS.out,
        metavar="RUN_DIR",
        help="run folder for checkpoints, samples, logs and generators (default: %(default)s)",
    )
    run.add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint"
    )
    run.add_argument(
        "--sample-every",
        type=_positive_int,
        default=DEFAULTS.sample_every,
        help="epochs between sample grids (default: %(default)s)",
    )
    run.add_argument(
        "--num-samples",
        type=_positive_int,
        default=DEFAULTS.num_samples,
        help="test images per domain in the sample grids (default: %(default)s)",
    )
    run.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1, help="progress output (default: 1)")


def _config_from(args: argparse.Namespace) -> TrainConfig:
    from cyclegan_keras.training import load_config

    epochs = {k: getattr(args, k) for k in ("epochs", "epochs_decay") if getattr(args, k) is not None}
    if args.resume and os.path.isfile(os.path.join(args.out, "config.json")):
        # A resumed run keeps its own settings; only the length of training may change.
        return dataclasses.replace(load_config(args.out), out=args.out, **epochs)
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"versions", "epochs", "epochs_decay"}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in fields}, **epochs)


def _cmd_train(args: argparse.Namespace) -> int:
    from cyclegan_keras.checkpoint import TrainingStopped
    from cyclegan_keras.training import train

    try:
        result = train(_config_from(args), resume=args.resume, verbose=args.verbose)
    except TrainingStopped as error:
        print(f"cyclegan-keras: {error}", file=sys.stderr)
        return 1
    print(f"Trained to epoch {result.epoch}. Generators: {result.generator_ab}, {result.generator_ba}")
    return 0


def _cmd_translate(args: argparse.Namespace) -> int:
    from cyclegan_keras.export import load_translator
    from cyclegan_keras.translate import translate_files

    translator = load_translator(args.model, direction=args.direction, threads=args.threads)
    written = translate_files(translator, args.inputs, args.out, max_size=args.max_size)
    print(f"Translated {len(written)} image(s) into {args.out}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from cyclegan_keras.demo import run_demo

    run_demo(args.out, epochs=args.epochs)
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from cyclegan_keras.export import ExportVerificationError, export_generator

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
        )
    except ExportVerificationError as error:
        print(f"cyclegan-keras export: {error}", file=sys.stderr)
        return 1
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from cyclegan_keras.official import load_official_generator

    generator = load_official_generator(args.pth, name=os.path.splitext(os.path.basename(args.out))[0])
    generator.save(args.out)
    print(f"Converted {args.pth} ({generator.count_params():,} parameters) to {args.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``cyclegan-keras``."""
    parser = argparse.ArgumentParser(
        prog="cyclegan-keras",
        description="CycleGAN in Keras 3: train with the official recipe, translate, export to LiteRT.",
    )
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
    translate.add_argument(
        "--model", required=True, help="a .keras generator, SavedModel folder, .tflite or .onnx"
    )
    translate.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    translate.add_argument("--out", required=True, metavar="DIR", help="folder for the translated images")
    translate.add_argument(
        "--direction",
        choices=("a_to_b", "b_to_a"),
        default="a_to_b",
        help="for a whole CycleGAN .keras file: which generator (default: %(default)s)",
    )
    translate.add_argument(
        "--max-size", type=_positive_int, help="scale larger photos down to this side first"
    )
    translate.add_argument("--threads", type=_positive_int, default=None, help="LiteRT/ONNX threads")
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
    export.add_argument("--model", required=True, help="a .keras generator (or an official .pth)")
    export.add_argument("--format", required=True, choices=("saved_model", "tflite", "onnx"))
    export.add_argument("--quantize", choices=("float16", "dynamic", "int8"), help="LiteRT quantization")
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
    export.set_defaults(run=_cmd_export)

    convert = commands.add_parser(
        "convert",
        help="convert an official PyTorch checkpoint to .keras",
        description="Convert an official CycleGAN generator (.pth or .npz) to .keras.",
    )
    convert.add_argument("--pth", required=True, help="official checkpoint, e.g. horse2zebra.pth")
    convert.add_argument("--out", required=True, help="the .keras file to write")
    convert.set_defaults(run=_cmd_convert)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``cyclegan-keras``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from cyclegan_keras.data import DatasetUnavailableError

    try:
        return args.run(args)
    except (
        ValueError,
        FileNotFoundError,
        FileExistsError,
        ImportError,
        DatasetUnavailableError,
    ) as error:
        parser.exit(2, f"cyclegan-keras {args.command}: error: {error}\n")
    except KeyboardInterrupt:
        parser.exit(130, "cyclegan-keras: interrupted; resume a training run with --resume\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
