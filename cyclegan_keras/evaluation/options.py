"""The options of ``cyclegan-keras evaluate``, declared once (``cyclegan_keras.options``)."""

from __future__ import annotations

from dataclasses import dataclass

from cyclegan_keras.data.tfds import CYCLE_GAN_CONFIGS
from cyclegan_keras.deploy.options import DIRECTION_HELP, DIRECTIONS, MODEL_HELP
from cyclegan_keras.options import option

RESIZES = ("clean", "legacy_tensorflow")


@dataclass
class EvaluateOptions:
    """``cyclegan-keras evaluate``: a generator's FID and KID on a test split (``evaluate``)."""

    model: str = option(None, MODEL_HELP, required=True)
    data_dir: str | None = option(
        None, "a folder with testA/ and testB/", exclusive="data", one_required=True
    )
    dataset: str | None = option(None, "a tfds cycle_gan config", choices=CYCLE_GAN_CONFIGS, exclusive="data",
                                 one_required=True)  # fmt: skip
    direction: str | None = option(None, DIRECTION_HELP + "; a_to_b translates testA and compares with "
                                   "testB, b_to_a the other way", choices=DIRECTIONS)  # fmt: skip
    size: int = option(256, "test size", minimum=1)
    resize: str = option("clean", "how images reach 299x299: clean-fid's (default) or the original TF FID "
                         "code's", choices=RESIZES)  # fmt: skip
    inception: str | None = option(None, "the Inception graph file (default: download once into the cache)")
    threads: int | None = option(None, "LiteRT/ONNX threads", minimum=1)
    out: str | None = option(None, "also write the scores to this JSON file")
