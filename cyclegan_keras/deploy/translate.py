"""Translating image files with a generator: inputs from files, folders and globs; outputs that never
replace an input or (without ``overwrite``) an existing file."""

from __future__ import annotations

import glob
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from cyclegan_keras_edge.photos import UNREADABLE, png_names
from PIL import Image

from cyclegan_keras.data.images import IMAGE_EXTENSIONS, image_files, open_image, save_image
from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.run.outputs import check_new_files


def expand_inputs(inputs: Iterable[str]) -> list[str]:
    """Image paths from files, folders (searched recursively) and glob patterns, in order, once each.

    Raises:
        FileNotFoundError: naming every input that matches no image.
    """
    found, missing = [], []
    for item in inputs:
        if os.path.isdir(item):
            paths = image_files(item)
        elif os.path.isfile(item):
            paths = [item]
        else:
            paths = sorted(p for p in glob.glob(item, recursive=True) if p.lower().endswith(IMAGE_EXTENSIONS))
        if not paths:
            missing.append(item)
        found.extend(paths)
    if missing:
        raise MissingInputError(f"No image found for: {', '.join(missing)}")
    return list(dict.fromkeys(found))


def output_paths(inputs: list[str], out: str | os.PathLike) -> list[str]:
    """Where ``translate_files`` writes each input: ``out/<input name>.png``, or ``out`` itself when it
    names an image file (then there must be exactly one input).

    Raises:
        UsageError: ``out`` names a file but there are several inputs.
    """
    out = os.fspath(out)
    if out.lower().endswith(IMAGE_EXTENSIONS) and not os.path.isdir(out):
        if len(inputs) != 1:
            raise UsageError(
                f"--out {out!r} names one image file but there are {len(inputs)} inputs: pass a folder."
            )
        return [out]
    return [os.path.join(out, name) for name in png_names(inputs)]


class Translated(list):
    """The files ``translate_files`` wrote (a list), and in ``skipped`` the ``(input, reason)`` of every
    input it could not read."""

    def __init__(self):
        super().__init__()
        self.skipped: list[tuple[str, str]] = []


def translate_files(
    translator: Callable[[np.ndarray], np.ndarray],
    inputs: Iterable[str],
    out: str | os.PathLike,
    max_size: int | None = None,
    overwrite: bool = False,
    batch_size: int | None = None,
) -> Translated:
    """Translates image files into ``out``; returns the files written.

    Over many inputs (several, or a folder or glob), an unreadable file is skipped with one warning
    naming it and the reason, and listed in the result's ``skipped``; every readable photo is still
    translated. A single named file that cannot be read raises instead, with nothing written.
    Consecutive photos of one size go through the network together where the translator takes batches
    (``Runner.translate_many``), while the next photos are decoded and the last ones written.

    Args:
        translator: ``uint8 [H, W, 3]`` -> ``uint8 [H, W, 3]``, e.g. a
            ``cyclegan_keras.deploy.runners.Runner``.
        inputs: files, folders or globs (``expand_inputs``).
        out: a folder (created if needed) that gets ``<input name>.png`` for each input, or, for one
            input, the image file to write (its extension picks the format).
        max_size: if given, photos whose longer side is larger are scaled down to it first.
        overwrite: replace output files that exist already. An input is never replaced.
        batch_size: photos of one size translated together at the most (default: as many as fit the
            translator's memory budget, ``Runner.batch_size_for``); more than fit is lowered to what
            does, with one warning.

    Raises:
        OutputExistsError: an output exists (and ``overwrite`` is False), or is one of the inputs;
            checked before anything is written.
        UsageError: the one input named cannot be read as an image.
        WriteError: an output could not be written (a full disk); the files written before it are
            whole, and no half-written file is left.
    """
    inputs = list(inputs)
    paths = expand_inputs(inputs)
    targets = output_paths(paths, out)
    check_new_files(targets, protected=paths, overwrite=overwrite)
    single = len(inputs) == 1 and os.path.isfile(inputs[0])
    written = Translated()
    batcher = _Batcher(translator, batch_size)
    with ThreadPoolExecutor(1) as writer:
        saving: deque[tuple[Future, str]] = deque()

        def save(results: list[tuple[str, np.ndarray]], wait: bool = False) -> None:
            saving.extend((writer.submit(save_image, result, done), done) for done, result in results)
            while saving and (wait or saving[0][0].done()):
                future, done = saving.popleft()
                future.result()  # a write that failed raises here, before more work
                written.append(done)

        for (path, target), decoded in zip(zip(paths, targets), _decoded(paths, max_size)):
            if isinstance(decoded, BaseException):
                reason = str(decoded) or type(decoded).__name__
                if single:
                    message = f"Cannot read {path!r} as an image ({reason}); nothing was written."
                    raise UsageError(message) from decoded
                warnings.warn(f"Skipped {path!r}: cannot read it as an image ({reason}).", UserWarning, 2)
                written.skipped.append((path, reason))
                continue
            save(batcher.add(decoded, target))
        save(batcher.flush(), wait=True)
    return written


class _Batcher:
    """Collects consecutive photos of one size and translates them together when the batch is full,
    the size changes, or the inputs end."""

    def __init__(self, translator, batch_size: int | None):
        self.translator, self.batch_size = translator, batch_size
        self.pending: list[tuple[np.ndarray, str]] = []
        self.warned = False

    def _limit(self, height: int, width: int) -> int:
        fits = getattr(self.translator, "batch_size_for", lambda h, w: 1)(height, width)
        if self.batch_size is None:
            return fits
        if self.batch_size > fits and fits > 1 and not self.warned:
            self.warned = True
            warnings.warn(
                f"--batch-size {self.batch_size} does not fit the memory budget at {width}x{height}: "
                f"translating {fits} at a time (--max-memory sets the budget).",
                UserWarning,
                3,
            )
        return max(1, min(self.batch_size, fits)) if fits > 1 else 1

    def add(self, pixels: np.ndarray, target: str) -> list[tuple[str, np.ndarray]]:
        done = []
        if self.pending and self.pending[0][0].shape != pixels.shape:
            done = self.flush()
        self.pending.append((pixels, target))
        if len(self.pending) >= self._limit(*pixels.shape[:2]):
            done += self.flush()
        return done

    def flush(self) -> list[tuple[str, np.ndarray]]:
        if not self.pending:
            return []
        photos, targets = zip(*self.pending)
        self.pending = []
        if len(photos) == 1 or not hasattr(self.translator, "translate_many"):
            results = [self.translator(photo) for photo in photos]
        else:
            results = self.translator.translate_many(list(photos))
        return list(zip(targets, results))


def _decoded(paths: list[str], max_size: int | None) -> Iterator[np.ndarray | BaseException]:
    """Each photo's pixels (or why it cannot be read), decoded a few photos ahead in a thread."""

    def decode(path: str) -> np.ndarray | BaseException:
        try:
            image = open_image(path)
            if max_size and max(image.size) > max_size:
                image.thumbnail((max_size, max_size), Image.BICUBIC)
            return np.asarray(image)
        except UNREADABLE as error:
            return error

    with ThreadPoolExecutor(1) as reader:
        ahead: deque[Future] = deque()
        for path in paths:
            ahead.append(reader.submit(decode, path))
            if len(ahead) > _DECODE_AHEAD:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


# Photos decoded ahead of the one being translated: enough to hide decoding, few enough to hold.
_DECODE_AHEAD = 2
