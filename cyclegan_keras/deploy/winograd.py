"""3x3 convolutions as Winograd's F(2x2, 3x3) on a CPU, for PyTorch's inference functions.

A ResNet generator spends nine tenths of its arithmetic in the 3x3, 256 -> 256 convolutions of its
residual blocks, and oneDNN computes them directly at close to the CPU's peak. Winograd's minimal
filtering (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016) computes each
2x2 block of outputs from a 4x4 block of inputs with 16 products per channel pair instead of 36: the
input blocks and the kernels are transformed once (``B^T d B``, ``G g G^T``), the 16 transformed
positions are 16 matrix products over the channels, and ``A^T m A`` gives the outputs back. The
products are 2.25x fewer; the transforms are additions. Rows of blocks go through in bands whose
buffers stay in the CPU's cache, so the memory is the output's and a few megabytes.

Float32 round-off stays of the direct convolution's order (``tests/test_winograd.py``): the transforms'
coefficients are 0, +-1 and +-1/2, and the kernel transform is computed in float64.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# G (the kernel transform) of F(2x2, 3x3); the input and output transforms are written out as sums.
_G = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
# Fewer channels than this: the transforms cost more than the products save.
MIN_CHANNELS = 128
# Bytes of transformed input a band holds: the band's buffers then stay in the CPU's cache.
BAND_BYTES = 1 << 21


def winograd_kernel(kernel: torch.Tensor) -> torch.Tensor:
    """A PyTorch kernel ``[out, in, 3, 3]`` as Winograd's ``G g G^T``: ``[16, in, out]``, one matrix
    per transformed position, computed in float64."""
    g = torch.tensor(_G, dtype=torch.float64, device=kernel.device)
    transformed = torch.einsum("ij,kcjl,ml->imck", g, kernel.double(), g)
    return transformed.reshape(16, kernel.shape[1], kernel.shape[0]).to(kernel.dtype).contiguous()


def _input_transform(d: list[torch.Tensor], out: torch.Tensor) -> None:
    """``B^T`` along one axis: four slices of the input block in, four of ``out`` written."""
    torch.sub(d[0], d[2], out=out[0])
    torch.add(d[1], d[2], out=out[1])
    torch.sub(d[2], d[1], out=out[2])
    torch.sub(d[1], d[3], out=out[3])


def _output_transform(m: list[torch.Tensor], first: torch.Tensor, second: torch.Tensor) -> None:
    """``A^T`` along one axis: four slices in, the two outputs written into ``first`` and ``second``."""
    first.copy_(m[0]).add_(m[1]).add_(m[2])
    second.copy_(m[1]).sub_(m[2]).sub_(m[3])


def _convolve(x: torch.Tensor, transformed: torch.Tensor, band_bytes: int) -> torch.Tensor:
    """The valid 3x3 convolution of ``x`` ``[N, C, H + 2, W + 2]`` (channels-last in memory, H and W
    even) with a ``winograd_kernel``: ``[N, K, H, W]``, channels-last in memory."""
    batch, channels, height, width = x.shape[0], x.shape[1], x.shape[2] - 2, x.shape[3] - 2
    filters, columns = transformed.shape[2], width // 2
    out = torch.empty(batch, filters, height, width, dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last)  # fmt: skip
    pixels, outputs = x.permute(0, 2, 3, 1), out.permute(0, 2, 3, 1)  # [N, H, W, C] views
    band = max(1, min(height // 2, band_bytes // (64 * batch * columns * channels)))
    new = dict(dtype=x.dtype, device=x.device)
    rows_done = torch.empty(4, batch, band, width + 2, channels, **new)
    blocks = torch.empty(4, 4, batch, band, columns, channels, **new)
    products = torch.empty(16, batch * band * columns, filters, **new)
    halves = torch.empty(2, 4, batch, band, columns, filters, **new)
    for start in range(0, height // 2, band):
        rows = min(band, height // 2 - start)
        part = pixels[:, 2 * start : 2 * (start + rows) + 2]
        # B^T d B: first along rows (row 2r + i of block r), then along columns.
        along_rows = rows_done[:, :, :rows]
        _input_transform([part[:, i : i + 2 * rows : 2] for i in range(4)], along_rows)
        block = blocks[:, :, :, :rows]
        columns_of = [along_rows[:, :, :, j : j + 2 * columns : 2] for j in range(4)]
        _input_transform(columns_of, block.transpose(0, 1))
        count = batch * rows * columns
        product = torch.bmm(block.reshape(16, count, channels), transformed, out=products[:, :count])
        product = product.view(4, 4, batch, rows, columns, filters)
        # A^T m A: along rows into ``halves``, then along columns into the output's 2x2 blocks.
        half = halves[:, :, :, :rows]
        _output_transform(list(product), half[0], half[1])
        target = outputs[:, 2 * start : 2 * (start + rows)].view(batch, rows, 2, columns, 2, filters)
        for i in range(2):
            _output_transform(list(half[i]), target[:, :, i, :, 0], target[:, :, i, :, 1])
    return out


def winograd_conv(
    kernel: torch.Tensor, bias: torch.Tensor | None, activation: Callable, band_bytes: int = BAND_BYTES
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A valid, stride-1 3x3 convolution (``F.conv2d(x, kernel, bias)``, then ``activation``) computed
    as Winograd's F(2x2, 3x3); an odd-sized output is computed one row or column larger and cut.

    Args:
        kernel: ``[out, in, 3, 3]``.
        bias: ``[out]`` or None.
        activation: a function of the convolution's output.
        band_bytes: the most bytes of transformed input the rows of blocks taken at once hold.
    """
    transformed = winograd_kernel(kernel)

    def convolve(x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[2] - 2, x.shape[3] - 2
        if height % 2 or width % 2:
            x = F.pad(x, (0, width % 2, 0, height % 2))
        y = _convolve(x.contiguous(memory_format=torch.channels_last), transformed, band_bytes)
        if bias is not None:
            y.add_(bias.view(1, -1, 1, 1))
        return activation(y[:, :, :height, :width])

    return convolve
