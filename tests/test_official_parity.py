"""Numerical parity with the official PyTorch networks and training step (tests/torch_reference.py)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import keras  # noqa: E402

from cyclegan_keras import (  # noqa: E402
    load_official_generator,
    load_official_weights,
    patchgan_discriminator,
    resnet_generator,
    unet_generator,
)
from tests import torch_reference as ref  # noqa: E402


def _images(seed, shape=(2, 32, 32, 3)):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


@pytest.mark.parametrize(
    ("torch_net", "keras_net", "shape"),
    [
        (lambda: ref.ResnetGenerator(ngf=8, n_blocks=3), lambda: resnet_generator(3, ngf=8), (2, 36, 28, 3)),
        (lambda: ref.ResnetGenerator(ngf=64, n_blocks=9), lambda: resnet_generator(), (1, 32, 32, 3)),
        (lambda: ref.UnetGenerator(num_downs=6, ngf=4), lambda: unet_generator(6, ngf=4), (2, 64, 64, 3)),
        (lambda: ref.NLayerDiscriminator(ndf=8), lambda: patchgan_discriminator(ndf=8), (2, 64, 48, 3)),
    ],
    ids=["resnet_3blocks", "resnet_9blocks", "unet_6", "patchgan"],
)
def test_forward_parity_with_official_weights(torch_net, keras_net, shape):
    reference = ref.randomize(torch_net(), seed=3).eval()
    model = load_official_weights(keras_net(), ref.numpy_state(reference))
    x = _images(0, shape)
    expected = ref.nhwc(reference(ref.nchw(x)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=1e-4, rtol=0)


def test_load_official_generator_infers_architecture_and_drops_norm_buffers(tmp_path):
    reference = ref.randomize(ref.ResnetGenerator(ngf=8, n_blocks=6), seed=4).eval()
    state = reference.state_dict()
    state["model.2.running_mean"] = torch.zeros(8)  # old checkpoints carry these
    state["model.2.num_batches_tracked"] = torch.tensor(0)
    torch.save(state, tmp_path / "g.pth")
    gen = load_official_generator(tmp_path / "g.pth")
    assert sum(layer.name.endswith("_conv_1") for layer in gen.layers) == 6
    x = _images(5)
    np.testing.assert_allclose(gen(x), ref.nhwc(reference(ref.nchw(x))), atol=1e-4)

    np.savez(tmp_path / "g.npz", **ref.numpy_state(reference))
    np.testing.assert_allclose(load_official_generator(tmp_path / "g.npz")(x), gen(x), atol=1e-6)

    unet = ref.randomize(ref.UnetGenerator(num_downs=5, ngf=4), seed=6).eval()
    np.savez(tmp_path / "u.npz", **ref.numpy_state(unet))
    gen = load_official_generator(tmp_path / "u.npz")
    np.testing.assert_allclose(gen(x), ref.nhwc(unet(ref.nchw(x))), atol=1e-4)


def test_mismatched_checkpoint_names_missing_and_unexpected_keys():
    state = ref.numpy_state(ref.ResnetGenerator(ngf=8, n_blocks=2))
    state["model.99.weight"] = np.zeros(1)
    del state["model.1.bias"]
    with pytest.raises(ValueError, match=r"model\.1\.bias.*model\.99\.weight"):
        load_official_weights(resnet_generator(2, ngf=8), state)
    with pytest.raises(ValueError, match="does not fit"):
        load_official_weights(resnet_generator(3, ngf=8), ref.numpy_state(ref.ResnetGenerator(8, 2)))


def test_one_train_step_matches_official_step():
    from tests.backend_checks import one_step_against_official

    result = one_step_against_official()
    for name, (ours, official) in result["losses"].items():
        assert ours == pytest.approx(official, rel=1e-4), name
    for key, gap in result["gaps"].items():
        assert gap < 0.1, key


def test_official_adam_updates_as_torch_adam_does():
    """PyTorch adds epsilon after Adam's bias correction, Keras before: OfficialAdam does as PyTorch."""
    from cyclegan_keras import OfficialAdam

    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.uniform(-10, -1, 2000)  # gradients from round-off size to large
    grads = [(rng.standard_normal(2000) * scales).astype("float32") for _ in range(20)]
    start = rng.standard_normal(2000).astype("float32")
    weights = torch.tensor(start.copy(), requires_grad=True)
    adam = torch.optim.Adam([weights], lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    for grad in grads:
        weights.grad = torch.tensor(grad)
        adam.step()
    theirs = weights.detach().numpy() - start

    def gap(optimizer):
        variable = keras.Variable(start.copy())
        for grad in grads:
            optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), variable)])
        ours = keras.ops.convert_to_numpy(variable) - start
        return np.linalg.norm(ours - theirs) / np.linalg.norm(theirs)

    assert gap(OfficialAdam(2e-4, 0.5, 0.999, 1e-8)) < 1e-4
    assert gap(keras.optimizers.Adam(2e-4, 0.5, 0.999, 1e-8)) > 0.1  # the difference it makes
