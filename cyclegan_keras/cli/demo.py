"""``cyclegan-keras demo``: a small CycleGAN trained offline on the bundled photos, in a few minutes."""

from __future__ import annotations

import dataclasses
import os

import keras

from cyclegan_keras.data.images import image_files, sample_data_dir
from cyclegan_keras.deploy.runners import KerasRunner
from cyclegan_keras.deploy.translate import translate_files
from cyclegan_keras.run.folder import find_run, is_run_folder
from cyclegan_keras.run.outputs import check_output_folder
from cyclegan_keras.training.loop import TrainConfig, load_config, train


def demo_config(out: str, epochs: int | None = None) -> TrainConfig:
    """Small settings that train in a few minutes on a laptop CPU: 64 px crops, a 6-block ResNet
    generator with 16 base filters; everything else as the official recipe."""
    epochs = epochs or 30
    return TrainConfig(
        data_dir=sample_data_dir(),
        generator="resnet_6blocks",
        ngf=16,
        ndf=16,
        load_size=72,
        crop_size=64,
        n_epochs=epochs // 2,
        n_epochs_decay=epochs - epochs // 2,
        lr=5e-4,
        out=os.path.join(out, "run"),
        num_samples=2,
        deterministic=False,
    )


def run_demo(out: str = "cyclegan-demo", epochs: int | None = None) -> dict[str, str]:
    """Trains the demo model into ``out/run`` and translates a bundled test horse into ``out``.

    Returns the paths of the last sample grid and of the translated photo, which it also prints.
    ``out`` must be new, empty, or a previous demo's folder (then the demo resumes or finishes there).
    """
    config = demo_config(out, epochs)
    run_dir = config.out
    check_output_folder(out, lambda path: is_run_folder(run_dir), "demo")
    resume = find_run(run_dir) is not None
    if resume:
        config = dataclasses.replace(
            load_config(run_dir), n_epochs=config.n_epochs, n_epochs_decay=config.n_epochs_decay
        )
    result = train(config, resume=resume, verbose=2)
    horse = image_files(os.path.join(sample_data_dir(), "testA"))[0]
    generator = keras.models.load_model(result.generator_ab)
    (translated,) = translate_files(KerasRunner(generator), [horse], out, overwrite=True)
    grids = sorted(os.listdir(os.path.join(run_dir, "samples")))
    paths = {"sample_grid": os.path.join(run_dir, "samples", grids[-1]), "translated": translated}
    print(f"Sample grid (real | translated | back): {paths['sample_grid']}")
    print(f"A test horse translated to a zebra:    {paths['translated']}")
    print(f"Generators: {result.generator_ab} (horse->zebra), {result.generator_ba} (zebra->horse)")
    return paths
