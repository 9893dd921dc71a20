"""Which generator a file, folder or pretrained name holds: whole CycleGANs, single generators and
official checkpoints, and the direction each translates."""

from __future__ import annotations

import os
import warnings
import zipfile

import keras

from cyclegan_keras.deploy.backend import is_pretrained_name
from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.options import check_choice
from cyclegan_keras.training.model import DIRECTIONS  # importing it registers what .keras files name


def model_path(model: str | os.PathLike) -> str:
    """``model`` itself when it names a file or folder, else the cached file of the pretrained generator
    of that name (downloaded and converted once: ``cyclegan_keras.networks.pretrained``).

    Raises:
        MissingInputError: no such file, and no pretrained generator of that name.
    """
    model = os.fspath(model)
    if not is_pretrained_name(model):
        return model
    from cyclegan_keras.networks.pretrained import PRETRAINED, check_name, pretrained_path

    if model not in PRETRAINED:
        try:
            check_name(model)
        except UsageError as error:
            raise MissingInputError(f"No model file {model!r}. {error}") from None
    return pretrained_path(model)


# What a single generator translates, where its name says it: the files a training run writes
# (generator_ab.keras, generator_ba.keras) and the official checkpoints (latest_net_G_A.pth is A -> B).
_OWN_DIRECTIONS = {"generator_ab": "a_to_b", "generator_ba": "b_to_a", "G_A": "a_to_b", "G_B": "b_to_a"}


def generator_direction(generator: keras.Model, path: str | os.PathLike | None = None) -> str | None:
    """What a single generator translates (``a_to_b`` or ``b_to_a``) as its name, or its official
    checkpoint's file name (``..._net_G_A.pth``), says; None where neither says."""
    return _OWN_DIRECTIONS.get(generator.name) or _file_direction(path)


def _file_direction(path: str | os.PathLike | None) -> str | None:
    stem = os.path.splitext(os.path.basename(os.fspath(path or "")))[0]
    return next((own for key, own in _OWN_DIRECTIONS.items() if stem.endswith(f"_{key}")), None)


def check_image_generator(model: keras.Model, path: str) -> keras.Model:
    """``model`` if it maps images to images (one 4-D input and output, of 1 or 3 channels each).

    Raises:
        UsageError: it does not (a classifier, a model of other channels), naming what it takes.
    """
    inputs, outputs = getattr(model, "inputs", None) or [], getattr(model, "outputs", None) or []
    shapes = [tuple(t.shape) for t in (*inputs, *outputs)]
    if len(inputs) != 1 or len(outputs) != 1 or any(len(s) != 4 or s[-1] not in (1, 3) for s in shapes):
        found = " -> ".join(str(s) for s in shapes) or "no fixed inputs and outputs"
        raise UsageError(
            f"{path!r} is not an image generator: it maps {found}, and a generator maps [batch, height, "
            "width, 1 or 3] images to images. Pass a generator or a whole CycleGAN .keras file."
        )
    return model


def _one_way(generator: keras.Model, path: str, direction: str | None) -> keras.Model:
    """A single generator, checked against the ``direction`` asked of it: a generator whose name says
    the other direction is refused; one whose direction is unknown runs as it is, with a warning."""
    own = generator_direction(generator, path)
    if direction is None or direction == own:
        return generator
    if own is not None:
        raise UsageError(
            f"{path!r} holds one generator, which translates {own}: --direction {direction} needs the other "
            "generator's file or a whole CycleGAN .keras file (drop --direction to run this one)."
        )
    warnings.warn(
        f"{path!r} holds one generator, whose direction its file does not say: --direction {direction} "
        "picks a generator of a whole CycleGAN file only, so this one runs as it is.",
        UserWarning,
        stacklevel=3,
    )
    return generator


def load_generator(path: str | os.PathLike, direction: str | None = None) -> keras.Model:
    """A generator from a ``.keras`` file (a generator or a whole CycleGAN), an official ``.pth``/``.npz``
    checkpoint, or the name of a pretrained generator (``cyclegan_keras.networks.pretrained.PRETRAINED``).

    Args:
        path: the file or pretrained name.
        direction: ``a_to_b`` (the default for a whole CycleGAN) or ``b_to_a``: which generator of a
            whole CycleGAN file. A file of one generator has one direction: one whose name says the
            other is refused.

    Raises:
        UsageError: the file is not a generator this package loads, or holds the other direction.
    """
    if direction is not None:
        check_choice("direction", direction, DIRECTIONS)
    path = model_path(path)
    if path.endswith((".pth", ".npz")):
        from cyclegan_keras.networks.official import load_official_generator

        own = _file_direction(path) or direction or "a_to_b"
        generator = load_official_generator(path, name="generator_ab" if own == "a_to_b" else "generator_ba")
        return _one_way(generator, path, direction)
    if not os.path.isfile(path):
        raise MissingInputError(f"No model file {path!r}.")
    if path.endswith(".keras") and not zipfile.is_zipfile(path):  # Keras would say "File not found"
        raise UsageError(
            f"{path!r} is not a .keras file: a .keras file is a zip archive, and this one is damaged, cut "
            "short or another kind of file. Save the model again (model.save('generator.keras'))."
        )
    try:
        model = keras.models.load_model(path, safe_mode=True)
    except (OSError, ValueError, TypeError) as error:  # not a zip, not a Keras archive, unknown classes
        raise UsageError(f"{path!r} is not a .keras model this package can load: {error}") from error
    if hasattr(model, "translate"):
        return model.generator_ba if direction == "b_to_a" else model.generator_ab
    return _one_way(check_image_generator(model, path), path, direction)
