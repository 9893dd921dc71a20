"""bfloat16 convolutions on PyTorch CPUs without bfloat16 instructions.

Where oneDNN cannot compute in bfloat16 (no AVX-512 BF16 or AMX, or oneDNN switched off), PyTorch
falls back to its reference convolution, ``slow_conv2d``. Its weight gradient requires the weight to
be contiguous, and Keras hands PyTorch a permuted view of its channels-last kernel: with a
channels-last input and one output channel (a PatchGAN's last conv) ``backward()`` fails with
"slow_conv2d: grad_weight must be contiguous". ``contiguous_conv_weights`` makes the weight contiguous
on exactly that path and leaves every other one alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import torch
from torch.overrides import TorchFunctionMode

_CONVOLUTIONS = frozenset(
    {
        torch.nn.functional.conv1d,
        torch.nn.functional.conv2d,
        torch.nn.functional.conv3d,
        torch.nn.functional.conv_transpose1d,
        torch.nn.functional.conv_transpose2d,
        torch.nn.functional.conv_transpose3d,
    }
)


def onednn_computes_bfloat16() -> bool:
    """Whether PyTorch's CPU convolutions run bfloat16 in oneDNN (else: the reference fallback)."""
    mkldnn = torch.backends.mkldnn
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(mkldnn.is_available() and mkldnn.enabled and supported is not None and supported())


class _ContiguousWeights(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _CONVOLUTIONS:
            if len(args) > 1:
                args = (args[0], args[1].contiguous(), *args[2:])
            elif "weight" in kwargs:
                kwargs = {**kwargs, "weight": kwargs["weight"].contiguous()}
        return func(*args, **kwargs)


def contiguous_conv_weights(
    compute_dtypes: Iterable[str], device: torch.device
) -> contextlib.AbstractContextManager:
    """A context in which convolutions get contiguous weights, where PyTorch's fallback needs them:
    networks computing in bfloat16 on a CPU whose convolutions do not run it in oneDNN. Elsewhere a
    context that does nothing (no per-op Python cost on the fast paths)."""
    if "bfloat16" not in set(compute_dtypes) or device.type != "cpu" or onednn_computes_bfloat16():
        return contextlib.nullcontext()
    return _ContiguousWeights()
