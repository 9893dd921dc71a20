"""A picture of real results: test photos and their translations by a generator this package trained.

    python bench/showcase.py RUN_DIR --data ../shared/data/horse2zebra --out docs/results_horse2zebra.png

Translates the first ``--count`` test photos of each domain (testA with ``generator_ab.keras``, testB
with ``generator_ba.keras``) at the run's training scale (each photo resized to its ``load_size``
square, as training saw them), and writes a grid: a row of inputs, a row of translations, for each
direction, enlarged ``--zoom`` times (nearest neighbour, so every pixel shown is the network's), with
a caption of the run's settings and length. Refuses an ``--out`` that exists.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run folder of `cyclegan-keras train`")
    parser.add_argument("--data", required=True, help="a folder with testA/ and testB/")
    parser.add_argument("--out", required=True, help="the PNG to write")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--zoom", type=int, default=3)
    parser.add_argument("--note", default="", help="appended to the caption (e.g. the training time)")
    args = parser.parse_args()
    if os.path.exists(args.out):
        parser.error(f"--out {args.out} exists; name a new file (nothing is overwritten)")
    import keras

    from cyclegan_keras.data.images import image_files, resized_images, save_image, to_float, to_uint8

    with open(os.path.join(args.run, "config.json")) as file:
        config = json.load(file)
    with open(os.path.join(args.run, "history.csv")) as file:
        epochs = len(list(csv.DictReader(file)))
    size = config["load_size"]
    rows = []
    for split, name in (("testA", "generator_ab"), ("testB", "generator_ba")):
        photos = np.stack(resized_images(image_files(os.path.join(args.data, split)), size, args.count))
        generator = keras.models.load_model(os.path.join(args.run, f"{name}.keras"), safe_mode=True)
        translated = to_uint8(keras.ops.convert_to_numpy(generator(to_float(photos), training=False)))
        rows += [np.concatenate(list(photos), axis=1), np.concatenate(list(translated), axis=1)]
    grid = Image.fromarray(np.concatenate(rows, axis=0))
    grid = grid.resize((grid.width * args.zoom, grid.height * args.zoom), Image.NEAREST)
    steps = epochs * (config["steps_per_epoch"] or 200)
    caption = (
        f"rows: test horses, their translations; test zebras, theirs. {size} px, {config['generator']} ngf "
        f"{config['ngf']}, {epochs} epochs = {steps} steps, batch 1, {config.get('backend') or 'tensorflow'}"
        + (f"; {args.note}" if args.note else "")
    )
    canvas = Image.new("RGB", (grid.width, grid.height + 24), "white")
    canvas.paste(grid, (0, 0))
    ImageDraw.Draw(canvas).text((6, grid.height + 6), caption, fill="black")
    save_image(np.asarray(canvas), args.out)
    print(f"{args.out}: {caption}")


if __name__ == "__main__":
    main()
