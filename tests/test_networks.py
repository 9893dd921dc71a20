"""Architecture facts of the official networks: parameter counts, shapes, layers, serialisation."""

import keras
import numpy as np
import pytest

from cyclegan_keras import (
    InstanceNormalization,
    ReflectionPadding2D,
    patchgan_discriminator,
    resnet_generator,
    unet_generator,
)


@pytest.mark.parametrize(("n_blocks", "params"), [(9, 11_378_179), (6, 7_837_699)])
def test_resnet_generator_parameter_count(n_blocks, params):
    assert resnet_generator(n_blocks=n_blocks).count_params() == params


@pytest.mark.parametrize("name", ["resnet_9blocks", "resnet_6blocks", "unet_256", "unet_128"])
def test_the_generator_registry_builds_what_each_name_says(name):
    """Each registered name builds its family at its depth, with the parameters the memory estimates use
    (the official counts), and a training crop its sizes cannot take is refused by the entry's rule."""
    from cyclegan_keras import TrainConfig, generator, official_keys
    from cyclegan_keras.errors import UsageError
    from cyclegan_keras.networks.architectures import GENERATORS

    entry = GENERATORS[name]
    model = generator(name)
    assert model.count_params() == entry.parameters
    assert entry.family_module().MARKER in {layer.name for layer in model.layers}
    assert len(official_keys(model)) == len([layer for layer in model.layers if layer.weights])
    with pytest.raises(UsageError, match=f"{name} needs crop_size a multiple of {entry.size_multiple}"):
        TrainConfig(generator=name, crop_size=entry.size_multiple + 2, load_size=1024)
    TrainConfig(generator=name, crop_size=entry.size_multiple * 2, load_size=1024)


def test_patchgan_parameter_count_and_30x30_output():
    disc = patchgan_discriminator()
    assert disc.count_params() == 2_764_737
    assert disc.compute_output_shape((1, 256, 256, 3)) == (1, 30, 30, 1)


def test_full_size_generator_keeps_256_shape():
    gen = resnet_generator()
    assert gen.compute_output_shape((1, 256, 256, 3)) == (1, 256, 256, 3)


@pytest.mark.parametrize(("height", "width"), [(32, 32), (36, 20), (8, 12), (64, 44)])
def test_resnet_generator_keeps_any_multiple_of_4(height, width):
    gen = resnet_generator(n_blocks=1, ngf=4)
    out = gen(np.zeros((2, height, width, 3), "float32"))
    assert out.shape == (2, height, width, 3)


def test_unet_generators_shapes():
    assert unet_generator(num_downs=8).compute_output_shape((1, 256, 256, 3)) == (1, 256, 256, 3)
    small = unet_generator(num_downs=5, ngf=4)
    assert small(np.zeros((1, 64, 32, 3), "float32")).shape == (1, 64, 32, 3)


def test_instance_norm_normalises_each_image_and_channel():
    x = np.random.default_rng(0).normal(3.0, 5.0, (2, 8, 6, 4)).astype("float32")
    norm = InstanceNormalization()
    y = keras.ops.convert_to_numpy(norm(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 25.0 / (25.0 + 1e-5), rtol=1e-3)
    assert norm.count_params() == 0


@pytest.mark.parametrize("padding", [1, 2, 3])
def test_reflection_padding_equals_numpy_reflect(padding):
    x = np.random.default_rng(padding).normal(size=(2, 7, 5, 3)).astype("float32")
    expected = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ReflectionPadding2D(padding)(x)), expected)


def test_reflection_padding_rejects_too_small_images():
    with pytest.raises(ValueError, match="height of 3"):
        ReflectionPadding2D(3)(np.zeros((1, 3, 8, 1), "float32"))


def test_kernels_are_independent_normal_002():
    gen = resnet_generator(n_blocks=3, ngf=8)
    kernels = [gen.get_layer(f"res_{b}_conv_1").kernel.numpy() for b in range(3)]
    assert not np.allclose(kernels[0], kernels[1])
    assert abs(np.std(np.concatenate([k.ravel() for k in kernels])) - 0.02) < 0.002
    assert np.all(gen.get_layer("conv_in").bias.numpy() == 0)


def test_leaky_relu_slope_is_02():
    disc = patchgan_discriminator(ndf=4)
    assert disc.get_layer("lrelu_0").negative_slope == pytest.approx(0.2)


def test_generator_saves_and_loads_safe_mode(tmp_path):
    gen = resnet_generator(n_blocks=1, ngf=4)
    path = tmp_path / "gen.keras"
    gen.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), gen(x), atol=1e-6)


def test_single_mean_and_its_sum_of_products_equal_the_row_means():
    """The int8 files' means (one reduction; variances as one batched product per channel) are the same
    numbers as the float files' row means, and the size-agnostic path is taken for unknown sizes."""
    from cyclegan_keras.networks.layers import _mean_square, _single_mean, _spatial_mean

    x = np.random.default_rng(0).normal(2, 3, (2, 12, 20, 5)).astype("float32")
    np.testing.assert_allclose(_single_mean(x), _spatial_mean(x), rtol=1e-5)
    np.testing.assert_allclose(_mean_square(x), np.mean(x**2, axis=(1, 2), keepdims=True), rtol=1e-5)
    single = InstanceNormalization(single_mean=True)
    np.testing.assert_allclose(single(x), InstanceNormalization()(x), atol=1e-5)
    assert InstanceNormalization.from_config(single.get_config()).single_mean
    sizeless = keras.Input((None, None, 5))
    assert keras.Model(sizeless, _mean_square(sizeless)).output.shape == (None, 1, 1, 5)


def test_two_grid_norm_is_the_relu_of_the_norm_of_its_coarse_half(tmp_path):
    from cyclegan_keras.networks.layers import TwoGridInstanceNormalization

    rng = np.random.default_rng(1)
    coarse = rng.laplace(0.3, 0.1, (2, 16, 16, 4)).astype("float32")
    fine_scale = [1.0, 2.5, 7.0, 0.5]
    norm = TwoGridInstanceNormalization(fine_scale=fine_scale, epsilon=[1e-5, 1e-4, 1e-5, 1e-6])
    halves = np.concatenate([coarse, coarse * np.asarray(fine_scale, "float32")], axis=-1)
    reference = InstanceNormalization(epsilon=[1e-5, 1e-4, 1e-5, 1e-6])(coarse)
    np.testing.assert_allclose(norm(halves), keras.ops.relu(reference), atol=1e-4)
    assert norm.compute_output_shape((2, 16, 16, 8)) == (2, 16, 16, 4)
    x = keras.Input((16, 16, 8))
    model = keras.Model(x, norm(x))
    model.save(tmp_path / "two_grid.keras")
    loaded = keras.saving.load_model(tmp_path / "two_grid.keras", safe_mode=True)
    np.testing.assert_allclose(loaded(halves), model(halves), atol=1e-6)
    with pytest.raises(ValueError, match="positive fine_scale"):
        TwoGridInstanceNormalization(fine_scale=[1.0, 0.0])
