"""The ``cycle_gan`` datasets of TensorFlow Datasets (``tfds``): their names, and their images."""

from __future__ import annotations

from cyclegan_keras.data.folders import SPLITS
from cyclegan_keras.errors import DatasetUnavailableError, UsageError

CYCLE_GAN_CONFIGS = (
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "cityscapes",
    "facades",
    "iphone2dslr_flower",
)


def tfds_images(name: str, split: str, data_dir: str | None = None, download: bool = True) -> list[bytes]:
    """The encoded images of one split of a ``tfds`` ``cycle_gan`` dataset, without decoding them.

    Args:
        name: a config (``horse2zebra``) or the full name (``cycle_gan/horse2zebra``).
        split: ``trainA``, ``trainB``, ``testA`` or ``testB``.
        data_dir: where tfds keeps its data (its default if None).
        download: let tfds download and prepare the dataset if it is not there.

    Raises:
        DatasetUnavailableError: the download or preparation failed; the message says how to train
            from folders instead.
    """
    import tensorflow_datasets as tfds

    config = name.removeprefix("cycle_gan/")
    if config not in CYCLE_GAN_CONFIGS:
        raise UsageError(f"Unknown cycle_gan dataset {name!r}; known: {', '.join(CYCLE_GAN_CONFIGS)}.")
    if split not in SPLITS:
        raise UsageError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    try:
        dataset = tfds.load(
            f"cycle_gan/{config}",
            split=split,
            data_dir=data_dir,
            download=download,
            decoders={"image": tfds.decode.SkipDecoding()},
        )
    except ImportError as error:  # not the network's fault: a module tfds needs is missing
        raise DatasetUnavailableError(
            f"tensorflow_datasets cannot load cycle_gan/{config}: it needs the module {error.name!r}, which "
            f"is not installed. Install it (pip install {error.name}), or train from folders with --data-dir."
        ) from error
    except Exception as error:  # tfds raises many kinds: network, checksum, missing files
        raise DatasetUnavailableError(
            f"Could not load cycle_gan/{config} with tensorflow_datasets ({type(error).__name__}: {error}). "
            "Without a network, train from folders instead: put domain A's images in DIR/trainA and "
            "domain B's in DIR/trainB, then run `cyclegan-keras train --data-dir DIR` "
            "(or train_dataset('DIR/trainA', 'DIR/trainB') in Python)."
        ) from error
    return [bytes(example["image"]) for example in tfds.as_numpy(dataset)]
