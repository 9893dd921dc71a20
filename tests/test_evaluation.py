"""FID/KID against closed forms and an independent implementation; Inception loading on a stand-in graph;
evaluate, the CLI command and the training callback."""

import json
import os

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
from PIL import Image

from cyclegan_keras.cli import main
from cyclegan_keras.data.images import image_files
from cyclegan_keras.errors import UsageError
from cyclegan_keras.evaluation.evaluate import InceptionFeatures, clean_resize, evaluate
from cyclegan_keras.evaluation.metrics import frechet_distance, kernel_inception_distance
from tests.conftest import photo_subset


def _with_moments(rng, n, mean, cov):
    """n samples whose sample mean and covariance are exactly ``mean`` and ``cov``."""
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # whitened: cov exactly I
    return z @ np.linalg.cholesky(cov).T + mean


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 6))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # Diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2.
    mu1, mu2 = np.arange(4.0), np.array([1.0, 0.0, 2.0, -1.0])
    s1, s2 = np.array([1.0, 4.0, 9.0, 0.25]), np.array([4.0, 1.0, 9.0, 1.0])
    x = _with_moments(rng, 200, mu1, np.diag(s1))
    y = _with_moments(rng, 300, mu2, np.diag(s2))
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-9)


def _scipy_fid(a, b):
    m1, m2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((m1 - m2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root.real))


@pytest.mark.parametrize(("n1", "n2", "dims"), [(140, 120, 64), (300, 260, 40)])
def test_frechet_distance_matches_scipy_sqrtm(n1, n2, dims):
    rng = np.random.default_rng(1)
    a = rng.gamma(2.0, size=(n1, dims))  # non-negative and skewed, like pool features
    b = rng.gamma(2.2, size=(n2, dims)) + 0.1
    assert frechet_distance(a, b) == pytest.approx(_scipy_fid(a, b), rel=1e-6)


def _naive_kid(a, b, subsets, subset_size, seed):
    """The unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, written out term by term."""
    rng = np.random.default_rng(seed)
    m, d = min(subset_size, len(a), len(b)), a.shape[1]
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        k = lambda u, v: (float(u @ v) / d + 1.0) ** 3  # noqa: E731
        xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
        xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
        values.append(xx + yy - 2 * xy)
    return float(np.mean(values)), float(np.std(values))


def test_kernel_inception_distance_matches_the_definition_and_is_near_zero_for_one_distribution():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 5)), rng.normal(0.8, 1.0, size=(25, 5))
    ours = kernel_inception_distance(a, b, subsets=4, subset_size=20, seed=7)
    np.testing.assert_allclose(ours, _naive_kid(a, b, 4, 20, 7), rtol=1e-5)
    same = kernel_inception_distance(rng.normal(size=(400, 5)), rng.normal(size=(400, 5)), subsets=20)[0]
    assert abs(same) < 0.05 * ours[0]
    with pytest.raises(UsageError):
        kernel_inception_distance(a, b[:, :3])


# -- Inception features on a stand-in graph with the real tensor names -------------------------------


@pytest.fixture(scope="module")
def stand_in_graph(tmp_path_factory):
    """A graph like classify_image_graph_def.pb where it matters: uint8 image -> Cast -> ExpandDims ->
    ResizeBilinear(299) -> ... -> pool_3 [N, 1, 1, 8]."""
    weights = np.random.default_rng(3).normal(size=(1, 1, 3, 8)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.uint8, [None, None, 3], name="DecodeJpeg")
        batch = tf.expand_dims(tf.cast(image, tf.float32), 0, name="ExpandDims")
        resized = tf.compat.v1.image.resize_bilinear(batch, [299, 299], name="ResizeBilinear")
        # A 5x5 window at a fixed place: the features depend on how the image reached 299 x 299.
        window = tf.slice(resized, [0, 120, 80, 0], [-1, 5, 5, -1])
        pooled = tf.reduce_mean(window / 255.0, axis=[1, 2], keepdims=True)
        tf.nn.conv2d(pooled, tf.constant(weights), strides=1, padding="VALID", name="pool_3")
    path = tmp_path_factory.mktemp("inception") / "classify_image_graph_def.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path, weights[0, 0]


def test_clean_resize_is_float_bicubic_per_channel_on_a_real_photo(photos):
    photo = np.asarray(Image.open(image_files(photos / "testA")[0]).convert("RGB"))
    resized = clean_resize(photo)
    assert resized.shape == (299, 299, 3) and resized.dtype == np.float32
    assert np.any(resized != np.round(resized))  # not re-quantized
    quantized = np.asarray(Image.fromarray(photo).resize((299, 299), Image.BICUBIC), np.float32)
    # The same filter; uint8 mode rounds between its two passes, which moves edges by a few levels.
    assert np.abs(resized - quantized).mean() < 0.6


def test_inception_features_run_the_graph_in_both_resize_modes(stand_in_graph, photos):
    path, weights = stand_in_graph
    images = [np.asarray(Image.open(p).convert("RGB")) for p in image_files(photos / "testB")[:3]]
    images.append(images[0][:200, :150])  # another size
    clean = InceptionFeatures(path, batch_size=2)(images)
    expected = np.stack([clean_resize(x)[120:125, 80:85].mean(axis=(0, 1)) / 255.0 @ weights for x in images])
    np.testing.assert_allclose(clean, expected, rtol=1e-5, atol=1e-6)
    legacy = InceptionFeatures(path, resize="legacy_tensorflow")(images)
    resize = tf.compat.v1.image.resize_bilinear
    windows = [resize(x[None].astype(np.float32), [299, 299]).numpy()[0, 120:125, 80:85] for x in images]
    direct = np.stack([window.mean(axis=(0, 1)) for window in windows])
    np.testing.assert_allclose(legacy, direct / 255.0 @ weights, rtol=1e-5, atol=1e-6)
    assert np.abs(legacy - clean).max() > 1e-3  # two different resizes (100x the precision above)


def test_a_graph_without_the_tensors_is_refused(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        tf.constant(1.0, name="something")
    path = tmp_path / "other.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(UsageError, match="pool_3"):
        InceptionFeatures(path)


def test_offline_without_a_graph_says_where_in_one_line(tmp_path, monkeypatch, capsys, photos):
    import cyclegan_keras.evaluation.evaluate as evaluation

    monkeypatch.setenv("CYCLEGAN_KERAS_HOME", str(tmp_path / "cache"))
    # Nothing listens on port 9 of the loopback: as offline as it gets, without touching the network.
    monkeypatch.setattr(evaluation, "INCEPTION_URL", "http://127.0.0.1:9/inception-2015-12-05.tgz")
    model = tmp_path / "g.keras"
    from cyclegan_keras import resnet_generator

    resnet_generator(1, ngf=4, name="g").save(model)
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "--model", str(model), "--data-dir", str(photos), "--size", "32"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert exit_info.value.code == 2
    assert "127.0.0.1:9" in err and "--inception" in err
    assert str(tmp_path / "cache" / "inception" / "classify_image_graph_def.pb") in err
    assert not os.listdir(tmp_path / "cache" / "inception")  # nothing half-written


def _colour_features(images):
    images = np.asarray(images, np.float64) / 255.0
    coarse = images[:, ::8, ::8].reshape(len(images), -1)[:, :10]
    return np.concatenate([images.mean(axis=(1, 2)), images.std(axis=(1, 2)), coarse], axis=1)


def test_evaluate_scores_identity_translations(many_photos):
    identity = lambda pixels: pixels  # noqa: E731
    test_a, test_b = many_photos / "testA", many_photos / "testB"
    same = evaluate(identity, test_a, test_a, size=32, feature_extractor=_colour_features)
    other = evaluate(identity, test_a, test_b, size=32, feature_extractor=_colour_features)
    assert same["fid"] == pytest.approx(0.0, abs=1e-6) and other["fid"] > 0.01
    assert other["kid_mean"] > 10 * abs(same["kid_mean"])
    assert other["num_translated"] == len(image_files(test_a))
    assert other["num_target"] == len(image_files(test_b))


@pytest.fixture
def small_data(tmp_path, photos):
    counts = {"trainA": 3, "trainB": 3, "testA": 6, "testB": 7}
    return photo_subset(tmp_path / "data", photos, counts)


def test_cli_evaluate_prints_a_table_and_writes_a_report(stand_in_graph, small_data, tmp_path, capsys):
    from cyclegan_keras import resnet_generator

    model = tmp_path / "g.keras"
    resnet_generator(1, ngf=4, name="g").save(model)
    report = tmp_path / "report.json"
    args = ["evaluate", "--model", str(model), "--data-dir", str(small_data), "--size", "32",
            "--inception", str(stand_in_graph[0]), "--direction", "b_to_a"]  # fmt: skip
    assert main([*args, "--out", str(report)]) == 0
    assert "| FID |" in capsys.readouterr().out
    scores = json.loads(report.read_text())
    assert scores["num_translated"] == 7 and scores["num_target"] == 6 and scores["fid"] >= 0
    assert main([*args, "--out", str(report)]) == 0  # its own report may be replaced
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": 1}')
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--out", str(notes)])
    assert exit_info.value.code == 2 and json.loads(notes.read_text()) == {"mine": 1}


def test_train_eval_every_logs_scores_and_keeps_the_best(stand_in_graph, small_data, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data-dir", str(small_data), "--generator", "resnet_6blocks", "--ngf", "4",
            "--ndf", "4", "--netd", "n_layers", "--n-layers-d", "2",
            "--load-size", "36", "--crop-size", "32", "--num-samples", "1",
            "--epochs", "3", "--epochs-decay", "0", "--steps-per-epoch", "2", "--eval-every", "2",
            "--inception", str(stand_in_graph[0]), "--out", str(out), "--verbose", "0"]  # fmt: skip
    assert main(args) == 0
    import csv

    with open(out / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["fid_ab"] == "nan" for row in rows] == [True, False, True]
    assert float(rows[1]["kid_ba"]) == float(rows[1]["kid_ba"])  # a number
    best = json.loads((out / "best.json").read_text())
    assert best["epoch"] == 2 and best["fid_ab"] == pytest.approx(float(rows[1]["fid_ab"]))
    assert (out / "best_generator_ab.keras").is_file()


def test_evaluate_reads_float_images_by_their_range(photos):
    pixels = [
        np.asarray(Image.open(p).convert("RGB").resize((32, 32))) for p in image_files(photos / "testA")[:6]
    ]
    targets = [
        np.asarray(Image.open(p).convert("RGB").resize((32, 32))) for p in image_files(photos / "testB")[:6]
    ]
    identity = lambda image: image  # noqa: E731

    def score(sources):
        return evaluate(
            identity, sources, targets, size=32, feature_extractor=_colour_features, kid_subsets=4
        )

    expected = score(pixels)
    for converted in ([p / 255.0 for p in pixels], [p / 127.5 - 1.0 for p in pixels],
                      [p.astype(np.float32) for p in pixels]):  # fmt: skip
        assert score(converted)["fid"] == pytest.approx(expected["fid"], rel=1e-6)
    with pytest.raises(UsageError, match="floats in"):
        score([p * 3.7 for p in pixels])
