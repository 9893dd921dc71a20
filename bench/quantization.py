"""Where integer LiteRT files lose quality and time, and what the export does about it (issue 24).

For a trained generator: PSNR against the Keras model on real test photos and latency, for float32,
dynamic, int8 (float ends and --uint8-io) and int16x8, each with the export's channel equalization
(``cyclegan_keras.deploy.quantization``) and, for the integer modes, without it; int8 step by step (none,
channel ranges, least-error activation ranges from ``cyclegan_keras.deploy.calibration``, sign-split norms,
two-grid norms where the tails are heaviest, sub-pixel convs from ``cyclegan_keras.deploy.subpixel``), then
the files timed in turn against the first of their kind (LiteRT's own int8 file; float files
without sub-pixel convs). Then LiteRT's quantization debugger on the int8 file with sign-split norms
only (LiteRT's own ranges; a two-grid norm needs the export's): each op's error in units of its own
quantization step (0.29 is the rounding floor), the worst first, and what keeping each kind of op (or
the last norm's ops) in float would give; last, how heavy-tailed each instance norm's input is,
which is what an 8-bit grid per tensor cannot hold.

    python bench/quantization.py --model runs/zebra/generator_ab.keras --size 64 \
        --photos ../shared/data/horse2zebra
"""

from __future__ import annotations

import argparse
import atexit
import csv
import io
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import cyclegan_keras.deploy.formats.tflite as export  # noqa: E402
import cyclegan_keras.deploy.quantization as quantization  # noqa: E402
from cyclegan_keras.data.images import image_files, resized_images, to_float  # noqa: E402
from cyclegan_keras.deploy.quantization import equalize_channels, split_norms  # noqa: E402
from cyclegan_keras.deploy.verify import verify_export  # noqa: E402
from cyclegan_keras.networks.layers import InstanceNormalization  # noqa: E402

VARIANTS = [(None, False), ("dynamic", False), ("int8", False), ("int8", True), ("int16x8", False)]
# The int8 export's steps, cumulative: channel scaling, least-error ranges, sign-split norms, two grids,
# sub-pixel convs.
STEPS = [
    (False, False, False, False, False),
    (True, False, False, False, False),
    (True, True, False, False, False),
    (True, True, True, False, False),
    (True, True, True, True, False),
    (True, True, True, True, True),
]
# What the debugger's float-kept variants keep in float: the instance norms' ops, or the convs.
KEPT = {"norm ops (MEAN, SUB, MUL, RSQRT, ADD)": ["MEAN", "SUB", "MUL", "RSQRT", "ADD"],
        "convs (CONV_2D, TRANSPOSE_CONV)": ["CONV_2D", "TRANSPOSE_CONV"]}  # fmt: skip


def _converter(generator, size, calibration, folder):
    archive = keras.export.ExportArchive()
    archive.track(generator)
    spec = [tf.TensorSpec([1, size, size, 3], tf.float32, name="images")]
    archive.add_endpoint(
        "serving_default", lambda x: {"images": generator(x, training=False)}, input_signature=spec
    )
    archive.write_out(folder, verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(folder)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = export._representative(calibration, False)
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    return converter


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="a trained generator (.keras)")
    parser.add_argument("--photos", default="../shared/data/horse2zebra", help="trainA (calibration), testA")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--calibration", type=int, default=16, help="calibration photos")
    parser.add_argument("--test", type=int, default=16, help="test photos")
    parser.add_argument("--worst", type=int, default=12, help="ops listed from the debugger")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of the int8 files timed in turn")
    args = parser.parse_args()
    generator = keras.saving.load_model(args.model, safe_mode=True)
    calibration = resized_images(
        image_files(os.path.join(args.photos, "trainA")), args.size, args.calibration
    )
    test = resized_images(image_files(os.path.join(args.photos, "testA")), args.size, args.test)
    work = tempfile.mkdtemp()
    # Every exported file goes here; removed at exit, an error or Ctrl-C included.
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    two_grids = quantization.TWO_GRID
    exported = export.equalize_channels, export.least_error_ranges, export.split_norms, export.subpixel_convs
    print(f"{args.model}: {generator.count_params():,} parameters, {args.size} px, {len(calibration)} "
          f"calibration and {len(test)} test photos\n")  # fmt: skip
    print("| file | channel scaling | int8 ranges | sign-split norms | two grids | sub-pixel convs | PSNR vs "
          "Keras | latency (1 thread) | Keras (TF) |\n|---|---|---|---|---|---|---:|---:|---:|")  # fmt: skip
    timed = []
    for quantize, uint8_io in VARIANTS:
        # int8: each step of the export added to the previous one; int16x8: with and without scaling.
        # Float files with and without sub-pixel convs; int16x8 files have none (no 16x8 kernels).
        steps = {
            "int8": STEPS,
            "int16x8": [STEPS[-1], (False, True, True, True, True)],
        }.get(quantize, [(*STEPS[-1][:-1], False), STEPS[-1]])
        for equalize, least, split, two_grid, subpixel in steps:
            export.equalize_channels = exported[0] if equalize else (lambda model, photos, target: model)
            export.least_error_ranges = exported[1] if least else (lambda calibrated, inputs, **_: calibrated)
            export.split_norms = exported[2] if split else (lambda model, photos, **_: model)
            quantization.TWO_GRID = two_grids if two_grid else 1.0  # 1: no norm is heavy enough
            export.subpixel_convs = exported[3] if subpixel else (lambda model: model)
            flags = f"{equalize}-{least}-{split}-{two_grid}-{subpixel}"
            path = os.path.join(work, f"{quantize}-{uint8_io}-{flags}.tflite")
            export.export_tflite(generator, path, quantize=quantize, input_size=args.size, uint8_io=uint8_io,
                                 calibration=calibration)  # fmt: skip
            result = verify_export(generator, path, test, kind="", threads=1)
            name = (quantize or "float32") + (" --uint8-io" if uint8_io else "")
            scaled = ("yes" if equalize else "no") if quantize in ("int8", "int16x8") else "-"
            ranges = ("least error" if least else "min/max") if quantize == "int8" else "-"
            split_ = ("yes" if split else "no") if quantize == "int8" else "-"
            grids = ("yes" if two_grid else "no") if quantize == "int8" else "-"
            phased = "-" if quantize == "int16x8" else ("yes" if subpixel else "no")
            print(f"| {name} | {scaled} | {ranges} | {split_} | {grids} | {phased} | "
                  f"{result.psnr_db:.1f} dB | {result.latency_ms:.2f} ms | "
                  f"{result.keras_latency_ms:.1f} ms |", flush=True)  # fmt: skip
            if quantize != "int16x8":
                timed.append((name, f"{name}, {flags}" if quantize == "int8" else f"{name}, {phased}", path))
    export.equalize_channels, export.least_error_ranges, export.split_norms, export.subpixel_convs = exported
    _interleaved(timed, args.rounds)
    quantization.TWO_GRID = 1.0  # the debugger's file takes LiteRT's ranges: sign-split norms only

    for title, model in (
        (
            "int8, equalized and sign-split (LiteRT's ranges)",
            split_norms(equalize_channels(generator, calibration, "range"), calibration),
        ),
        ("int8, no equalization", generator),
    ):
        converter = _converter(model, args.size, calibration, os.path.join(work, title.replace(" ", "_")))
        debug = export._representative(test, False)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug)
        debugger.run()
        dump = io.StringIO()
        debugger.layer_statistics_dump(dump)
        rows = list(csv.DictReader(io.StringIO(dump.getvalue())))
        for row in rows:
            row["levels"] = float(row["mean_squared_error"]) ** 0.5 / float(row["scale"])
        rows.sort(key=lambda row: -row["levels"])
        print(f"\n{title}: the ops whose output is furthest from float, in quantization steps (RMS)\n")
        print("| op | tensor | error (steps) |\n|---|---|---:|")
        for row in rows[: args.worst]:
            print(f"| {row['op_name']} | `{row['tensor_name'][-50:]}` | {row['levels']:.2f} |")
        last = [layer.name for layer in model.layers if isinstance(layer, InstanceNormalization)][-1]
        nodes = [row["tensor_name"] for row in rows if f"/{last}_1/" in row["tensor_name"]]
        print(f"\n{title}: PSNR with one kind of op kept in float\n\n| kept in float | PSNR |\n|---|---:|")
        for name, ops in {"nothing": [], **KEPT, f"the last norm's ops (`{last}`)": nodes}.items():
            kind = "denylisted_nodes" if name.startswith("the last") else "denylisted_ops"
            options = tf.lite.experimental.QuantizationDebugOptions(**{kind: ops}) if ops else None
            folder = os.path.join(work, f"{title}-{name}"[:40])
            quantized = tf.lite.experimental.QuantizationDebugger(
                converter=_converter(model, args.size, calibration, folder), debug_dataset=debug,
                debug_options=options,
            ).get_nondebug_quantized_model()  # fmt: skip
            path = os.path.join(work, "kept.tflite")
            with open(path, "wb") as file:
                file.write(quantized)
            print(
                f"| {name} | {verify_export(generator, path, test, kind='').psnr_db:.1f} dB |",
                flush=True,
            )
    _tails(generator, calibration)


def _interleaved(files: list[tuple[str, str, str]], rounds: int) -> None:
    """Each ``(kind, name, path)`` file's latency (1 thread), the files timed in turn for ``rounds``
    rounds so that the CPU's drift falls on all of them alike; medians, and ratios to the first file of
    the same kind."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for _, _, path in files:
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        source = interpreter.get_input_details()[0]
        pixels = np.random.default_rng(0).uniform(-1, 1, source["shape"])
        interpreter.set_tensor(source["index"], pixels.astype(source["dtype"]))
        interpreter.invoke()
        interpreters.append(interpreter)
    runs = max(1, int(0.2 / _seconds(interpreters[-1], 1)))  # about 0.2 s a file and round
    times = [[] for _ in files]
    for _ in range(rounds):
        for interpreter, measured in zip(interpreters, times):
            measured.append(_seconds(interpreter, runs) * 1000)
    print(f"\nFiles timed in turn ({rounds} rounds of {runs} runs, 1 thread; medians)\n")
    print("| file (float: sub-pixel convs; int8: scaling-ranges-split-two grids-sub-pixel) | latency | "
          "vs the first of its kind |\n|---|---:|---:|")  # fmt: skip
    first: dict[str, float] = {}
    for (kind, name, _), measured in zip(files, times):
        latency = float(np.median(measured))
        first.setdefault(kind, latency)
        print(f"| {name} | {latency:.2f} ms | {latency / first[kind]:.2f}x |", flush=True)


def _seconds(interpreter, runs: int) -> float:
    start = time.perf_counter()
    for _ in range(runs):
        interpreter.invoke()
    return (time.perf_counter() - start) / runs


def _tails(generator, calibration) -> None:
    """Per instance norm: its input's largest deviation and the share of its variance beyond 6 sigma
    (medians over photos and channels), and how many 8-bit levels one sigma gets when the tensor's
    range is its calibration range (channels equalized as the export does)."""
    even = equalize_channels(generator, calibration, "range")
    norms = [layer for layer in even.layers if isinstance(layer, InstanceNormalization)]
    outputs = keras.Model(even.input, [n.input for n in norms]).predict(
        to_float(np.stack(calibration)), verbose=0, batch_size=4
    )
    print("\nInstance norm inputs (equalized), over the calibration photos\n")
    print("| norm | largest deviation (sigma) | variance beyond 6 sigma | levels per sigma |")
    print("|---|---:|---:|---:|")
    for norm, values in zip(norms, outputs):
        values = np.asarray(values, np.float64)
        centred = values - values.mean(axis=(1, 2), keepdims=True)
        sigma = centred.std(axis=(1, 2), keepdims=True) + 1e-12
        z = centred / sigma
        beyond = ((z**2) * (np.abs(z) > 6)).sum(axis=(1, 2)) / (z**2).sum(axis=(1, 2))
        levels = 255 * np.median(sigma) / (values.max() - values.min())
        print(f"| {norm.name} | {np.median(np.abs(z).max(axis=(1, 2))):.1f} | "
              f"{np.median(beyond):.0%} | {levels:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
