"""The official pretrained CycleGAN generators by name, downloaded once and read without PyTorch.

``pretrained("horse2zebra")`` downloads ``horse2zebra.pth`` from the official location (what the
official ``scripts/download_cyclegan_model.sh`` fetches) into ``$CYCLEGAN_KERAS_HOME/pretrained``,
converts it, caches the ``.keras`` beside it, and returns the generator. Later calls read the cache.
The base URL can be pointed elsewhere (a mirror, an air-gapped server) with
``CYCLEGAN_KERAS_PRETRAINED_URL``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

from cyclegan_keras.errors import UsageError
from cyclegan_keras.system.cache import cache_dir, download

URL_VARIABLE = "CYCLEGAN_KERAS_PRETRAINED_URL"
OFFICIAL_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/"


@dataclass(frozen=True)
class PretrainedGenerator:
    """One official generator: its name, what it turns into what, and its architecture."""

    name: str
    source: str
    target: str
    dataset: str
    architecture: str = "resnet_9blocks"

    @property
    def description(self) -> str:
        return f"{self.source} -> {self.target}"


PRETRAINED = {
    name: PretrainedGenerator(name, source, target, dataset)
    for name, source, target, dataset in (
        # name, what it translates, into what, the dataset it was trained on
        ("apple2orange", "apple photo", "orange", "apple2orange"),
        ("orange2apple", "orange photo", "apple", "apple2orange"),
        ("summer2winter_yosemite", "Yosemite in summer", "winter", "summer2winter_yosemite"),
        ("winter2summer_yosemite", "Yosemite in winter", "summer", "summer2winter_yosemite"),
        ("horse2zebra", "horse photo", "zebra", "horse2zebra"),
        ("zebra2horse", "zebra photo", "horse", "horse2zebra"),
        ("monet2photo", "Monet painting", "photo", "monet2photo"),
        ("style_monet", "photo", "painting in Monet's style", "monet2photo"),
        ("style_cezanne", "photo", "painting in Cezanne's style", "cezanne2photo"),
        ("style_ukiyoe", "photo", "Ukiyo-e print style", "ukiyoe2photo"),
        ("style_vangogh", "photo", "painting in Van Gogh's style", "vangogh2photo"),
        ("sat2map", "satellite photo", "Google map", "maps"),
        ("map2sat", "Google map", "satellite photo", "maps"),
        ("cityscapes_photo2label", "street photo", "Cityscapes label colours", "cityscapes"),
        ("cityscapes_label2photo", "Cityscapes label colours", "street photo", "cityscapes"),
        ("facades_photo2label", "building facade photo", "facade label colours", "facades"),
        ("facades_label2photo", "facade label colours", "building facade photo", "facades"),
        ("iphone2dslr_flower", "iPhone flower photo", "DSLR look (shallow focus)", "iphone2dslr_flower"),
    )
}  # fmt: skip


def check_name(name: str) -> PretrainedGenerator:
    """The registry entry of ``name``.

    Raises:
        UsageError: listing the names, with the closest ones first.
    """
    if name in PRETRAINED:
        return PRETRAINED[name]
    close = difflib.get_close_matches(name, PRETRAINED, n=3, cutoff=0.5)
    hint = f" Did you mean {' or '.join(close)}?" if close else ""
    raise UsageError(f"No pretrained generator named {name!r}.{hint} Known: {', '.join(PRETRAINED)}.")


def base_url() -> str:
    url = os.environ.get(URL_VARIABLE) or OFFICIAL_URL
    return url if url.endswith("/") else url + "/"


def cached_files(name: str) -> tuple[str, str]:
    """The cache paths of ``name``'s official checkpoint and of its converted ``.keras``."""
    folder = cache_dir("pretrained")
    return os.path.join(folder, f"{name}.pth"), os.path.join(folder, f"{name}.keras")


def is_cached(name: str) -> bool:
    return any(os.path.isfile(path) for path in cached_files(check_name(name).name))


def pretrained_path(name: str) -> str:
    """The cached ``.keras`` file of the official generator ``name``, downloading and converting it once.

    Raises:
        UsageError: unknown name; the download failed (the message names the URL and where to put
            the file by hand); the file is not an official generator checkpoint. Nothing partial
            is left in the cache.
    """
    from cyclegan_keras.networks.official import load_official_generator

    entry = check_name(name)
    pth, converted = cached_files(entry.name)
    if os.path.isfile(converted):
        return converted
    built = []  # the download's check converts it; no need to do that twice
    if not os.path.isfile(pth):
        download(
            base_url() + f"{entry.name}.pth",
            pth,
            check=lambda path: built.append(load_official_generator(path, name=entry.name)),
            what=f"the official {entry.name} generator",
        )
    generator = built[0] if built else load_official_generator(pth, name=entry.name)
    staging = os.path.join(os.path.dirname(converted), f".{entry.name}.partial.keras")
    generator.save(staging)
    os.replace(staging, converted)
    return converted


def pretrained(name: str):
    """An official pretrained CycleGAN generator as a ``keras.Model``, downloaded once, then cached.

    ``uint8`` photos map to its input as ``x / 127.5 - 1`` and back as ``(y + 1) * 127.5``; any size
    whose sides are multiples of 4 works (``cyclegan_keras.deploy.runners.KerasRunner`` pads others).

    Args:
        name: one of ``PRETRAINED`` (``horse2zebra``, ``style_monet``, ...).

    Example:

    >>> generator = pretrained("horse2zebra")  # doctest: +SKIP
    >>> zebras = generator(horses / 127.5 - 1)  # doctest: +SKIP

    Raises:
        UsageError: see ``pretrained_path``.
    """
    import keras

    from cyclegan_keras.networks import layers  # noqa: F401  (registers the layers the file names)

    return keras.models.load_model(pretrained_path(name), safe_mode=True)
