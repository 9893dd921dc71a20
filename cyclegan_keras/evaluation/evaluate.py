"""Scoring translations as the papers do: FID and KID in Inception features, a function and a callback.

``evaluate`` translates a test split as the official test script does (load size = crop size, no
flip), extracts features of the translations and of the real target images, and returns FID and
KID. ``InceptionFeatures`` is the network FID is defined with: the TensorFlow graph
``inception-2015-12-05`` (``classify_image_graph_def.pb``), its 2048-d ``pool_3`` features. Any
callable ``uint8 [N, H, W, 3] -> [N, D]`` can stand in for it (``feature_extractor=``).
``EvaluateEvery`` scores the generators during training and keeps the best one.
"""

from __future__ import annotations

import json
import math
import os
import tarfile
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf
from cyclegan_keras_edge.photos import UNREADABLE
from PIL import Image

from cyclegan_keras.data.images import ImageSource, image_files, open_image
from cyclegan_keras.deploy.runners import KerasRunner, load_runner
from cyclegan_keras.errors import MissingInputError, UsageError
from cyclegan_keras.evaluation.metrics import frechet_distance, kernel_inception_distance
from cyclegan_keras.system.budget import check_fits
from cyclegan_keras.system.cache import cache_dir, download

INCEPTION_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
INCEPTION_GRAPH = "classify_image_graph_def.pb"
INPUT_TENSOR = "ExpandDims:0"  # float32 [N, H, W, 3] in 0..255; the graph resizes to 299 itself
OUTPUT_TENSOR = "pool_3:0"  # [N, 1, 1, 2048]
FEATURES = 2048
RESIZE_MODES = ("clean", "legacy_tensorflow")
INCEPTION_SIZE = 299

# uint8 [N, H, W, 3] -> float [N, D]
FeatureExtractor = Callable[[np.ndarray], np.ndarray]


def clean_resize(image: np.ndarray, size: int = INCEPTION_SIZE) -> np.ndarray:
    """Resizes a ``uint8`` ``[H, W, 3]`` image as clean-fid's "clean" mode: Pillow bicubic on each
    channel in float32 (``F``) mode, no re-quantization to ``uint8``, values clipped to [0, 255]."""
    channels = [
        np.asarray(
            Image.fromarray(image[..., c].astype(np.float32), mode="F").resize((size, size), Image.BICUBIC)
        )
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0)


def inception_graph_path(path: str | os.PathLike | None = None) -> str:
    """The Inception graph file: ``path`` when given, else the cached copy, downloaded once.

    Raises:
        MissingInputError: ``path`` does not exist.
        UsageError: the download failed; the message names the URL, the cache path and
            ``--inception``.
    """
    if path is not None:
        if not os.path.isfile(path):
            raise MissingInputError(f"No Inception graph file at {os.fspath(path)!r}.")
        return os.fspath(path)
    folder = cache_dir("inception")
    graph = os.path.join(folder, INCEPTION_GRAPH)
    if os.path.isfile(graph):
        return graph
    archive = os.path.join(folder, os.path.basename(INCEPTION_URL))

    def has_graph(tgz: str) -> None:
        try:
            with tarfile.open(tgz) as tar:
                tar.getmember(INCEPTION_GRAPH)
        except (tarfile.TarError, KeyError, OSError) as error:
            raise UsageError(f"not an archive holding {INCEPTION_GRAPH} ({error})") from error

    try:
        download(INCEPTION_URL, archive, check=has_graph, what="the Inception graph")
    except UsageError as error:
        raise UsageError(
            f"{error} Or extract {INCEPTION_GRAPH} from it to {graph!r}, or pass its path with --inception "
            "(inception=... in Python)."
        ) from None
    with tarfile.open(archive) as tar:
        data = tar.extractfile(INCEPTION_GRAPH).read()
    staging = graph + ".partial"
    with open(staging, "wb") as file:
        file.write(data)
    os.replace(staging, graph)
    os.remove(archive)
    return graph


class InceptionFeatures:
    """The 2048-d ``pool_3`` features of the Inception graph that FID is defined with.

    Args:
        path: the graph file (``classify_image_graph_def.pb``); None downloads it once into the cache
            (``$CYCLEGAN_KERAS_HOME/inception``).
        resize: ``clean`` (default) resizes each image to 299x299 as clean-fid does (``clean_resize``),
            so the graph's own resize is a no-op; ``legacy_tensorflow`` feeds each image at its size
            and lets the graph's bilinear resize do it, as the original TensorFlow FID code did.
        batch_size: images per run of the graph.

    Call it on ``uint8`` images ``[N, H, W, 3]`` (or a list of ``[H, W, 3]`` of any sizes).
    """

    def __init__(self, path: str | os.PathLike | None = None, resize: str = "clean", batch_size: int = 25):

        if resize not in RESIZE_MODES:
            raise UsageError(f"resize must be one of {', '.join(RESIZE_MODES)}; got {resize!r}")
        self.path = inception_graph_path(path)
        self.resize = resize
        self.batch_size = batch_size
        graph_def = tf.compat.v1.GraphDef()
        try:
            with open(self.path, "rb") as file:
                graph_def.ParseFromString(file.read())
        except Exception as error:  # protobuf's DecodeError and friends
            raise UsageError(f"{self.path!r} is not a TensorFlow graph file ({error}).") from error
        names = {node.name for node in graph_def.node}
        missing = [t for t in (INPUT_TENSOR, OUTPUT_TENSOR) if t.split(":")[0] not in names]
        if missing:
            raise UsageError(f"{self.path!r} is not the Inception graph: it has no {', '.join(missing)}.")

        def features(images):
            (pool,) = tf.compat.v1.import_graph_def(
                graph_def, input_map={INPUT_TENSOR: images}, return_elements=[OUTPUT_TENSOR], name="inception"
            )
            return tf.reshape(pool, [tf.shape(images)[0], -1])

        self._run = tf.compat.v1.wrap_function(features, [tf.TensorSpec([None, None, None, 3], tf.float32)])

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        if self.resize == "clean":
            prepared = [clean_resize(np.asarray(image)) for image in images]
        else:
            prepared = [np.asarray(image, np.float32) for image in images]
        out = []
        start = 0
        while start < len(prepared):
            # One batch of equal sizes (legacy mode keeps each image's own size).
            shape = prepared[start].shape
            end = start + 1
            while end < len(prepared) and end - start < self.batch_size and prepared[end].shape == shape:
                end += 1
            out.append(self._run(np.stack(prepared[start:end]).astype(np.float32)).numpy())
            start = end
        return np.concatenate(out).astype(np.float64)


def _images(source, size: int, what: str) -> list[np.ndarray]:
    """``uint8`` images resized to ``size`` square (bicubic) from a folder, paths, bytes or arrays."""
    if isinstance(source, (str, os.PathLike)):
        source = image_files(source)
    images = []
    for item in source:
        if isinstance(item, np.ndarray):
            image = Image.fromarray(_pixels(item))
        else:
            try:
                image = open_image(item)
            except UNREADABLE as error:
                raise UsageError(f"Cannot read {item!r:.80} as an image ({error}).") from error
        images.append(np.asarray(image.resize((size, size), Image.BICUBIC)))
    if len(images) < 2:
        raise UsageError(f"Scoring needs at least 2 {what} images, got {len(images)}.")
    return images


def _pixels(array: np.ndarray) -> np.ndarray:
    """An image array as ``uint8`` pixels, read by its range: ``uint8`` as it is; floats in [0, 1]
    (Keras' and matplotlib's convention) or [-1, 1] (the networks') scaled; floats of whole levels in
    [0, 255] rounded.

    Raises:
        UsageError: any other dtype or range, which no convention maps to pixels.
    """
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating) and array.size and np.all(np.isfinite(array)):
        low, high = float(array.min()), float(array.max())
        if 0 <= low and high <= 1:
            return np.rint(array * 255.0).astype(np.uint8)
        if -1 <= low and high <= 1:
            return np.rint((array + 1.0) * 127.5).astype(np.uint8)
        if 0 <= low and high <= 255 and np.all(array == np.rint(array)):
            return array.astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer) and array.size and 0 <= array.min() and array.max() <= 255:
        return array.astype(np.uint8)
    found = f"{array.min()} to {array.max()}" if array.size and np.issubdtype(array.dtype, np.number) else "-"
    raise UsageError(
        f"Cannot read an image array of dtype {array.dtype} with values {found} as pixels: pass uint8 "
        "pixels, or floats in [0, 1] or [-1, 1]."
    )


def _translator(generator) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(generator, keras.Model):
        return KerasRunner(generator)
    if callable(generator):
        return generator  # uint8 [H, W, 3] -> uint8 [H, W, 3], e.g. a Runner
    return load_runner(generator)


def scores(translated_features: np.ndarray, target_features: np.ndarray, subsets: int = 100) -> dict:
    """FID and KID (mean, std) of two feature sets, with the sizes."""
    kid_mean, kid_std = kernel_inception_distance(translated_features, target_features, subsets=subsets)
    return {
        "fid": frechet_distance(translated_features, target_features),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "num_translated": int(len(translated_features)),
        "num_target": int(len(target_features)),
    }


def evaluate(
    generator,
    source_images: str | os.PathLike | Sequence[ImageSource | np.ndarray],
    target_images: str | os.PathLike | Sequence[ImageSource | np.ndarray],
    *,
    size: int = 256,
    feature_extractor: FeatureExtractor | None = None,
    inception: str | os.PathLike | None = None,
    resize: str = "clean",
    kid_subsets: int = 100,
) -> dict:
    """Translates ``source_images`` and scores them against ``target_images``: FID, KID and counts.

    Both sets are resized to ``size`` square (bicubic) first, as the official test script loads
    them (load size = crop size, no flip); horse2zebra's test photos are 256x256 already.

    Args:
        generator: a ``keras.Model`` generator, a callable ``uint8 [H, W, 3] -> uint8 [H, W, 3]``, or
            anything ``cyclegan_keras.deploy.runners.load_runner`` takes (file, folder, pretrained name).
        source_images: the source domain's test images (a folder, paths, encoded bytes or arrays:
            ``uint8`` pixels, or floats in [0, 1] or [-1, 1], read by their range).
        target_images: the target domain's real test images, likewise.
        size: the test size.
        feature_extractor: ``uint8 [N, H, W, 3] -> [N, D]``; default ``InceptionFeatures``.
        inception: the Inception graph file for the default extractor (default: the cached download).
        resize: the default extractor's resize mode, ``clean`` or ``legacy_tensorflow``.
        kid_subsets: subsets for KID.

    Returns:
        ``{"fid", "kid_mean", "kid_std", "num_translated", "num_target"}``.
    """
    listed = [
        image_files(s) if isinstance(s, (str, os.PathLike)) else list(s)
        for s in (source_images, target_images)
    ]
    # Every image is held at the test size, and each translated one beside it.
    count = len(listed[0]) + len(listed[1])
    needed = size * size * 3 * (2 * len(listed[0]) + len(listed[1]))
    check_fits(needed, f"{count} test images at --size {size}", "lower --size")
    translate = _translator(generator)
    sources = _images(listed[0], size, "source")
    targets = _images(listed[1], size, "target")
    extract = feature_extractor or InceptionFeatures(inception, resize=resize)
    translated = np.stack([translate(image) for image in sources])
    return scores(extract(translated), extract(np.stack(targets)), subsets=kid_subsets)


class EvaluateEvery(keras.callbacks.Callback):
    """A ``model.fit`` callback: FID/KID of a ``CycleGAN``'s generators every few epochs; keeps the best.

    Scores ``generator_ab`` (``test_a`` translated, against ``test_b``) and ``generator_ba`` (``test_b``
    translated, against ``test_a``), and adds ``fid_ab``, ``kid_ab``, ``fid_ba``, ``kid_ba`` to the
    epoch's logs (NaN in the epochs between, so that ``CSVLogger`` keeps their columns). The best
    ``generator_ab`` by FID is saved as ``RUN_DIR/best_generator_ab.keras`` with its epoch and scores
    in ``RUN_DIR/best.json``; a resumed run reads the record back and only a better score replaces it.

    Args:
        every: epochs between evaluations.
        test_a: domain-A test images (folder, paths, bytes or arrays).
        test_b: domain-B test images, likewise.
        run_dir: where the best generator and ``best.json`` go.
        size: the test size.
        feature_extractor: see ``evaluate``; default ``InceptionFeatures(inception)``.
        inception: the Inception graph file (default: the cached download).
    """

    KEYS = ("fid_ab", "kid_ab", "fid_ba", "kid_ba")

    def __init__(
        self,
        every: int,
        test_a,
        test_b,
        run_dir: str | os.PathLike,
        size: int = 256,
        feature_extractor: FeatureExtractor | None = None,
        inception: str | os.PathLike | None = None,
    ):
        super().__init__()
        if every < 1:
            raise UsageError(f"every must be >= 1, got {every}")
        self.every = every
        self.run_dir = os.fspath(run_dir)
        self.extract = feature_extractor or InceptionFeatures(inception)
        # Each domain's test images are one direction's sources and the other's targets.
        self.sources = {
            "ab": np.stack(_images(test_a, size, "domain-A test")),
            "ba": np.stack(_images(test_b, size, "domain-B test")),
        }
        self.targets = {"ab": self.extract(self.sources["ba"]), "ba": self.extract(self.sources["ab"])}
        self.best = self._read_best()

    def _read_best(self) -> dict | None:
        try:
            with open(os.path.join(self.run_dir, "best.json")) as file:
                return json.load(file)
        except (OSError, ValueError):
            return None

    def _score(self, generator, direction: str) -> dict:
        translate = KerasRunner(generator)
        translated = np.stack([translate(image) for image in self.sources[direction]])
        return scores(self.extract(translated), self.targets[direction])

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        for key in self.KEYS:
            logs[key] = math.nan
        if (epoch + 1) % self.every:
            return
        for direction in ("ab", "ba"):
            result = self._score(getattr(self.model, f"generator_{direction}"), direction)
            logs[f"fid_{direction}"] = result["fid"]
            logs[f"kid_{direction}"] = result["kid_mean"]
        if self.best is None or logs["fid_ab"] < self.best["fid_ab"]:
            self.best = {"epoch": epoch + 1, **{key: float(logs[key]) for key in self.KEYS}}
            os.makedirs(self.run_dir, exist_ok=True)
            path = os.path.join(self.run_dir, "best_generator_ab.keras")
            staging = os.path.join(self.run_dir, ".best_generator_ab.partial.keras")
            self.model.generator_ab.save(staging)
            os.replace(staging, path)
            with open(os.path.join(self.run_dir, "best.json.partial"), "w") as file:
                json.dump(self.best, file, indent=2)
            os.replace(
                os.path.join(self.run_dir, "best.json.partial"), os.path.join(self.run_dir, "best.json")
            )
