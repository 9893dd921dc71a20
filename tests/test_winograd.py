"""Winograd's F(2x2, 3x3) convolution on PyTorch (``deploy.winograd``): the direct convolution's numbers
at every size, parity and band split."""

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from cyclegan_keras.deploy.winograd import winograd_conv, winograd_kernel  # noqa: E402


@pytest.mark.parametrize(
    ("batch", "channels", "filters", "height", "width", "band_bytes"),
    [
        (1, 16, 16, 10, 12, 1 << 21),  # even outputs, one band
        (2, 24, 8, 9, 14, 1 << 21),  # odd rows: computed one row larger and cut
        (3, 17, 19, 5, 3, 1 << 21),  # odd both ways, 1 output column
        (1, 16, 32, 22, 10, 64 * 4 * 16),  # bands of 1 row of 4 blocks, 10 of them
        (2, 16, 16, 17, 8, 64 * 2 * 3 * 16 * 3),  # bands of 3 rows, a short last one
    ],
)
def test_winograd_computes_the_direct_convolution(batch, channels, filters, height, width, band_bytes):
    generator = torch.Generator().manual_seed(height * width)
    x = torch.randn(batch, channels, height, width, generator=generator)
    kernel = torch.randn(filters, channels, 3, 3, generator=generator) * 0.2
    bias = torch.randn(filters, generator=generator)
    exact = F.leaky_relu(F.conv2d(x.double(), kernel.double(), bias.double()), 0.2)
    direct = F.leaky_relu(F.conv2d(x, kernel, bias), 0.2)
    with torch.inference_mode():
        found = winograd_conv(kernel, bias, lambda y: F.leaky_relu(y, 0.2), band_bytes)(x)
    assert found.shape == exact.shape
    # Round-off of the direct float32 convolution's order, not a different result.
    error, direct_error = (found.double() - exact).abs().max(), (direct.double() - exact).abs().max()
    assert error <= max(4 * direct_error, 1e-6), (error, direct_error)


def test_winograd_kernel_is_g_g_gt_at_each_position():
    kernel = torch.randn(2, 3, 3, 3, dtype=torch.float64)
    g = torch.tensor([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=torch.float64)
    transformed = winograd_kernel(kernel)
    assert transformed.shape == (16, 3, 2)
    for out in range(2):
        for inp in range(3):
            expected = (g @ kernel[out, inp] @ g.T).reshape(16)
            assert torch.allclose(transformed[:, inp, out], expected)
