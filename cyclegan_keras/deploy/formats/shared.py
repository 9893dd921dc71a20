"""What the TensorFlow-written formats share: the generator on photos of any size, and writing an
export beside ``out`` so that only a verified one reaches it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence

from cyclegan_keras.data.images import tf_pad_to_multiple
from cyclegan_keras.run.outputs import staging_folder, write_errors


def padded_call(generator, images):
    """The generator on images of any size: reflection padding to a multiple of 4, then crop back."""
    import tensorflow as tf

    padded, (height, width) = tf_pad_to_multiple(images)
    return tf.cast(generator(padded, training=False), tf.float32)[:, :height, :width, :]


def staged_export(
    out: str,
    what: str,
    write: Callable[[str], object],
    verify: Callable[[str], None],
    companions: Sequence[str] = (),
) -> None:
    """``write(path)`` into a staging folder beside ``out``, ``verify(path)``, then the result (and its
    ``companions``: suffixes of files written beside it, such as ``.json``) moved to ``out``. A failure
    leaves ``out`` as it was and no staging folder behind.

    Raises:
        WriteError: ``out`` could not be written (a full disk).
    """
    staging = None
    try:
        with write_errors(out, what):
            parent = os.path.dirname(os.path.abspath(out))
            os.makedirs(parent, exist_ok=True)
            staging = staging_folder(parent, f".{os.path.basename(out)}.partial-")
            staged = os.path.join(staging, os.path.basename(out))
            write(staged)
            verify(staged)
            if os.path.isdir(out):
                shutil.rmtree(out)  # checked before: empty, or an export the user asked to replace
            os.replace(staged, out)
            for suffix in companions:
                os.replace(staged + suffix, out + suffix)
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
