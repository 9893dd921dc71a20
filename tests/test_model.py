"""The CycleGAN model: pool, schedule, saving, gan modes, and that it learns."""

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from cyclegan_keras import (
    LOSS_NAMES,
    CycleGAN,
    ImagePool,
    LinearDecay,
    linear_decay_factor,
)
from tests.pool_images import distinct_images, ids


def test_pool_returns_new_images_until_full_then_swaps_half():
    pool = ImagePool(size=4, seed=1)
    assert ids(pool(distinct_images(3))) == [0, 1, 2]
    assert ids(pool(distinct_images(1, start=3))) == [3]
    assert sorted(ids(pool.images)) == [0, 1, 2, 3]

    swaps = 0
    for step in range(200):
        new = 100 + step
        stored_before = set(ids(pool.images))
        (returned,) = ids(pool(distinct_images(1, start=new)))
        stored_after = set(ids(pool.images))
        if returned == new:
            assert stored_after == stored_before  # kept: the pool is unchanged
        else:
            swaps += 1
            assert returned in stored_before  # an old image comes back ...
            assert stored_after == stored_before - {returned} | {new}  # ... and the new one takes its place
    assert 70 < swaps < 130


def test_pool_in_a_tf_function_and_size_zero():
    pool = ImagePool(size=2, seed=0)
    step = tf.function(lambda x: pool(x))
    assert ids(step(distinct_images(3)))[:2] == [0, 1]
    assert int(pool.count.numpy()) == 2
    off = ImagePool(size=0)
    assert ids(off(distinct_images(2))) == [0, 1]
    with pytest.raises(ValueError, match="fixed size"):
        ImagePool(size=2).build((None, None, None, 3))


@pytest.mark.parametrize(
    ("epoch", "factor"), [(1, 1.0), (100, 1.0), (101, 1 - 1 / 101), (150, 1 - 50 / 101), (200, 1 / 101)]
)
def test_linear_decay_learning_rates(epoch, factor):
    assert linear_decay_factor(epoch) == pytest.approx(factor)
    assert LinearDecay().learning_rate_at(epoch) == pytest.approx(2e-4 * factor)


def test_linear_decay_drives_both_optimizers(tiny_cyclegan):
    model = tiny_cyclegan(pool_size=2)
    model.compile()
    data = tf.data.Dataset.from_tensor_slices((np.zeros((2, 16, 16, 3), "f"), np.zeros((2, 16, 16, 3), "f")))
    history = model.fit(data.batch(1), epochs=3, verbose=0, callbacks=[LinearDecay(1, 2, 1e-3)])
    assert history.history["learning_rate"] == pytest.approx([1e-3, 1e-3 * 2 / 3, 1e-3 / 3])
    for optimizer in (model.generator_optimizer, model.discriminator_optimizer):
        assert float(optimizer.learning_rate) == pytest.approx(1e-3 / 3)


def test_fit_reports_eight_losses_with_batches_of_two_and_validation(tiny_cyclegan, pairs):
    model = tiny_cyclegan(pool_size=3, seed=0)
    model.compile()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = model.fit(pairs().batch(2), validation_data=pairs(seed=1).batch(2), epochs=1, verbose=0)
    assert not [w for w in caught if "shuffle" in str(w.message)]  # our pipelines shuffle themselves
    for name in LOSS_NAMES:
        assert np.isfinite(history.history[name][0])
        assert np.isfinite(history.history[f"val_{name}"][0])
    assert int(model.pool_a.count.numpy()) == 3
    a = np.zeros((3, 16, 16, 3), "float32")
    assert model.predict(a, verbose=0).shape == (3, 16, 16, 3)
    np.testing.assert_allclose(model.translate(a, "b_to_a"), model.generator_ba(a), atol=1e-6)
    with pytest.raises(ValueError, match="direction"):
        model.translate(a, "sideways")


def test_every_input_kind_fit_takes_trains_through_one_trace(tiny_cyclegan):
    # numpy arrays and a Python generator trace the compiled step once, as tf.data does (the
    # PyDataset's read-ahead is bench/input_kinds.py's; step times within 5% of tf.data's there).
    rng = np.random.default_rng(0)
    a, b = (rng.uniform(-1, 1, (4, 16, 16, 3)).astype("float32") for _ in range(2))

    def generator():
        while True:
            yield from ((a[i : i + 1], b[i : i + 1]) for i in range(4))

    kinds = {  # tf.data told fit its shapes before; the others were traced twice
        "numpy": {"x": {"a": a, "b": b}, "batch_size": 1},
        "generator": {"x": generator(), "steps_per_epoch": 4},
    }
    for name, fit_args in kinds.items():
        model = tiny_cyclegan(pool_size=2)
        model.compile()
        traces = []
        step = model.train_step
        model.train_step = lambda data, step=step, traces=traces: traces.append(1) or step(data)  # traced
        history = model.fit(**fit_args, epochs=1, verbose=0, shuffle=False)
        assert np.isfinite(history.history["cycle_aba"]).all(), name
        assert len(traces) == 1, (name, len(traces))  # 4 steps, one trace


@pytest.mark.parametrize("gan_mode", ["vanilla", "wgangp", "hinge"])
def test_other_gan_modes_train(gan_mode, tiny_cyclegan, pairs):
    model = tiny_cyclegan(pool_size=0, gan_mode=gan_mode)
    model.compile()
    logs = model.fit(pairs(n=2).batch(2), epochs=1, verbose=0).history
    assert all(np.isfinite(logs[name][0]) for name in LOSS_NAMES)


def test_bad_arguments_are_clear(tiny_cyclegan):
    with pytest.raises(ValueError, match="gan_mode"):
        tiny_cyclegan(gan_mode="lsgn")
    with pytest.raises(ValueError, match="lambda_a"):
        tiny_cyclegan(lambda_a=-1)
    model = tiny_cyclegan()
    model.compile()
    with pytest.raises(ValueError, match=r"pairs"):
        model.fit(np.zeros((2, 16, 16, 3), "float32"), epochs=1, verbose=0)


def test_keras_file_round_trip_safe_mode(tmp_path, tiny_cyclegan, pairs):
    model = tiny_cyclegan(pool_size=2, seed=3, lambda_identity=0.25, gan_mode="vanilla")
    model.compile()
    model.fit(pairs().batch(2), epochs=1, verbose=0)
    model.save(tmp_path / "cyclegan.keras")
    loaded = keras.models.load_model(tmp_path / "cyclegan.keras", safe_mode=True)
    assert isinstance(loaded, CycleGAN)
    assert (loaded.lambda_identity, loaded.gan_mode, loaded.pool_size) == (0.25, "vanilla", 2)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    for name in ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b"):
        np.testing.assert_allclose(getattr(loaded, name)(x), getattr(model, name)(x), atol=1e-6)
    np.testing.assert_array_equal(loaded.pool_b.images.numpy(), model.pool_b.images.numpy())
    assert int(loaded.generator_optimizer.iterations.numpy()) == 2
    loaded.fit(pairs().batch(2), epochs=1, verbose=0)  # and it trains on
    # Each generator saves and loads alone.
    model.generator_ba.save(tmp_path / "g.keras")
    alone = keras.models.load_model(tmp_path / "g.keras", safe_mode=True)
    np.testing.assert_allclose(alone(x), model.generator_ba(x), atol=1e-6)


@pytest.mark.slow
def test_cyclegan_learns_a_colour_mapping(learns_colour_mapping):
    """Measured here: correct training ends with disc ~0.20 and adv ~0.39 (last four epochs: 0.21 and
    0.26-0.38 on a Sapphire Rapids Xeon); frozen discriminators leave disc ~0.83 (0.77-0.85 there); a
    wrong-signed adversarial term ends with adv ~1.02. A cycle detached from the
    first generator still closes (the second one learns to invert): test_official_parity catches it."""
    learns_colour_mapping()


def test_translate_and_predict_return_the_input_size(tiny_cyclegan):
    """Sides the generators' two halvings do not divide are padded and cropped back, as the CLI does."""
    from cyclegan_keras.data.images import pad_to_multiple

    model = tiny_cyclegan()
    images = np.random.default_rng(0).uniform(-1, 1, (2, 30, 34, 3)).astype("float32")
    padded = np.stack([pad_to_multiple(image)[0] for image in images])
    expected = keras.ops.convert_to_numpy(model.generator_ba(padded))[:, :30, :34]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model.translate(images, "b_to_a")), expected, atol=1e-6
    )
    assert model.predict(images, verbose=0).shape == (2, 30, 34, 3)
    assert keras.ops.convert_to_numpy(model(images)).shape == (2, 30, 34, 3)
