"""A generator's layers as PyTorch's own functions on channels-first tensors, for inference.

Keras' layers on the PyTorch backend take channels-last tensors and transpose around every
convolution, and a functional model keeps every intermediate tensor of a call: at a megapixel that is
1.6x the official network's time. Here the layer graph (``TiledGenerator.ops``) runs as
``torch.nn.functional`` calls in the official network's layout, each tensor dropped after its last
reader; the kernels are transposed once, a zero padding or a cropping goes into the convolution beside
it, and norms work in place. Layers without a channels-first form here run as themselves
on a channels-last view, so any graph the tiling engine reads runs. The numbers are the Keras call's
to float32 round-off (``tests/test_inference.py``). ``training.steps.torch_call`` lowers the same
layers for training.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable

import keras
import numpy as np
import torch
import torch.nn.functional as F

from cyclegan_keras.deploy.graph import reader_counts, run_layers
from cyclegan_keras.deploy.winograd import MIN_CHANNELS, winograd_conv
from cyclegan_keras.networks.layers import InstanceNormalization, ReflectionPadding2D
from cyclegan_keras.system.hardware import release_free_memory

Function = Callable[..., torch.Tensor]


def _kernel(layer) -> tuple[torch.Tensor, torch.Tensor | None]:
    # Keras kernels are [kh, kw, in, out] (Conv2D) and [kh, kw, out, in] (Conv2DTranspose); PyTorch's
    # are [out, in, kh, kw] and [in, out, kh, kw]: the same permutation serves both.
    kernel = layer.kernel.value.detach().permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    bias = layer.bias.value.detach() if layer.use_bias else None
    return kernel, bias


def _instance_norm(layer: InstanceNormalization, inplace: bool = False) -> Function:
    epsilon = layer.epsilon
    if not isinstance(epsilon, float):  # one per channel, on the device the weights are on
        epsilon = keras.ops.convert_to_tensor(np.asarray(epsilon, np.float32)).reshape(1, -1, 1, 1)
    gamma = layer.gamma.value.detach().reshape(1, -1, 1, 1) if layer.gamma is not None else None
    beta = layer.beta.value.detach().reshape(1, -1, 1, 1) if layer.beta is not None else None

    def norm(x: torch.Tensor) -> torch.Tensor:
        # Centred (in place where nothing else reads the input), then scaled in place: a third of
        # F.instance_norm's time here, and as close to a float64 norm (1e-6).
        mean = x.mean(dim=(2, 3), keepdim=True)
        centred = x.sub_(mean) if inplace else x - mean
        centred.mul_(torch.rsqrt(_mean_square(centred) + epsilon))
        if gamma is not None:
            centred.mul_(gamma)
        return centred.add_(beta) if beta is not None else centred

    return norm


# Floats in the buffer that ``_mean_square`` squares through: 1 MB, within a core's L2 cache.
_SQUARES = 1 << 18


def _mean_square(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x ** 2`` per image and channel (``[N, C, 1, 1]``). On a CPU and channels-last
    memory, summed through a cache-sized buffer instead of a photo-sized square: each new photo-sized
    tensor costs a pass and page faults, and a megapixel's norms took 2.4x as long with one (and a
    centred copy) each."""
    count, channels, height, width = x.shape
    if x.device.type != "cpu" or not x.is_contiguous(memory_format=torch.channels_last):
        return x.square().mean(dim=(2, 3), keepdim=True)
    rows = max(1, _SQUARES // channels)
    buffer = torch.empty(rows, channels, dtype=x.dtype)
    sums = torch.zeros(count, channels, dtype=torch.float64)
    for image in range(count):
        for part in x[image].permute(1, 2, 0).reshape(-1, channels).split(rows):
            squares = buffer[: part.shape[0]]
            sums[image] += torch.mul(part, part, out=squares).sum(0)
    return (sums / (height * width)).to(x.dtype).view(count, channels, 1, 1)


def normalise_with(
    layer: InstanceNormalization,
) -> Callable[[torch.Tensor, np.ndarray, np.ndarray], torch.Tensor]:
    """``InstanceNormalization.normalise_with`` on channels-first tensors: the norm with means and
    variances given in float64 (``[C]``, or ``[N, C]``) in place of the input's own."""
    epsilon = np.asarray(layer.epsilon, np.float64)
    gamma = layer.gamma.value.detach().reshape(1, -1, 1, 1) if layer.gamma is not None else None
    beta = layer.beta.value.detach().reshape(1, -1, 1, 1) if layer.beta is not None else None

    def normalise(x: torch.Tensor, mean: np.ndarray, variance: np.ndarray) -> torch.Tensor:
        scale = (1.0 / np.sqrt(variance + epsilon)).astype(np.float32)
        mean, scale = (torch.from_numpy(v.astype(np.float32)).to(x.device).reshape(-1, v.shape[-1], 1, 1)
                       for v in (mean, scale))  # fmt: skip
        if gamma is not None:  # one pass over the tensor fewer than scaling it twice
            scale = scale * gamma
        x = (x - mean).mul_(scale)
        return x.add_(beta) if beta is not None else x

    return normalise


def _given_statistics(layer: InstanceNormalization, key: int, statistics) -> Function:
    """An instance norm that normalises with what ``statistics`` (``deploy.tiling.Statistics``) returns
    for its input's own means and variances; with what its ``fixed`` returns, where it has one, without
    reading the input's own."""
    normalise = normalise_with(layer)
    fixed = getattr(statistics, "fixed", lambda key: None)

    def norm(x: torch.Tensor) -> torch.Tensor:
        found = fixed(key)
        if found is None:
            mean = x.mean(dim=(2, 3), keepdim=True)
            variance = (x - mean).square_().mean(dim=(2, 3))
            own = (v.reshape(v.shape[:2]).double().cpu().numpy() for v in (mean, variance))
            found = statistics(key, *own)
        return normalise(x, *found)

    return norm


def _batch_norm(layer: keras.layers.BatchNormalization) -> Function:
    def value(weight):
        return weight.value.detach() if weight is not None else None

    mean, variance = value(layer.moving_mean), value(layer.moving_variance)
    gamma, beta = value(layer.gamma), value(layer.beta)
    return lambda x: F.batch_norm(x, mean, variance, gamma, beta, False, 0.0, layer.epsilon)


def _activation(name: str) -> Function | None:
    return {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": F.relu, "linear": lambda x: x}.get(name)


def _channels_last(layer) -> Function:
    """A layer with no channels-first form here, called on channels-last views of its inputs."""

    def call(inputs):
        if isinstance(inputs, list):
            return layer([x.permute(0, 2, 3, 1) for x in inputs], training=False).permute(0, 3, 1, 2)
        return layer(inputs.permute(0, 2, 3, 1), training=False).permute(0, 3, 1, 2)

    return call


# Layers whose output may be their input or a view of it: never written into in place.
_VIEWS = (keras.layers.Dropout, keras.layers.Cropping2D, keras.layers.Activation)
# Layers with an in-place form.
_IN_PLACE = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.Add, InstanceNormalization)


def lower(
    layer: keras.layers.Layer,
    inplace: bool = False,
    normalised: bool = False,
    padding: tuple[int, int] = (0, 0),
    output_padding: tuple[int, int] = (0, 0),
) -> Function | None:
    """One layer as a function of channels-first tensors (a list for layers of several inputs), or None
    where it has no such form here.

    Args:
        layer: the Keras layer.
        inplace: it may write into its (first) input, which nothing reads after it.
        normalised: its output goes only into an instance norm, which removes a per-channel bias: a
            convolution's is then left out (5-9% of ResNet-9's time at 512 px here).
        padding, output_padding: a plain convolution's, as ``F.conv2d``/``F.conv_transpose2d`` take
            them: a zero padding before it or a cropping after it taken in (``_merged``).
    """
    if type(layer) is InstanceNormalization and not layer.single_mean:
        return _instance_norm(layer, inplace)
    if isinstance(layer, ReflectionPadding2D):
        pad = (layer.padding,) * 4
        return lambda x: F.pad(x, pad, mode="reflect")
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = layer.padding
        return lambda x: F.pad(x, (left, right, top, bottom))
    if isinstance(layer, keras.layers.Cropping2D):
        (top, bottom), (left, right) = layer.cropping
        return lambda x: x[:, :, top : x.shape[2] - bottom, left : x.shape[3] - right]
    if plain_conv(layer):
        activation = _activation(layer.activation.__name__)
        kernel, bias = _kernel(layer)
        bias = None if normalised and layer.activation.__name__ == "linear" else bias
        strides = tuple(layer.strides)
        if isinstance(layer, keras.layers.Conv2DTranspose):
            return _transposed(kernel, bias, activation, strides, padding, output_padding)
        if _few_outputs(layer) and padding == (0, 0):
            return _rows_as_channels(kernel, bias, activation)
        if _winograd(layer, kernel) and padding == (0, 0):
            return winograd_conv(kernel, bias, activation)
        return lambda x: activation(F.conv2d(x, kernel, bias, stride=strides, padding=padding))
    if isinstance(layer, keras.layers.Activation) and _activation(layer.activation.__name__):
        return _activation(layer.activation.__name__)
    if isinstance(layer, keras.layers.ReLU) and layer.max_value is None and not layer.threshold:
        slope = float(layer.negative_slope)
        return (lambda x: F.leaky_relu(x, slope, inplace)) if slope else (F.relu_ if inplace else F.relu)
    if isinstance(layer, keras.layers.LeakyReLU):
        slope = float(layer.negative_slope)
        return lambda x: F.leaky_relu(x, slope, inplace)
    if isinstance(layer, keras.layers.BatchNormalization) and layer.axis in (-1, 3):
        return _batch_norm(layer)
    if isinstance(layer, keras.layers.Dropout):
        return lambda x: x
    if isinstance(layer, keras.layers.Add) and inplace:
        return lambda xs: functools.reduce(torch.Tensor.add_, xs[1:], xs[0])
    if isinstance(layer, keras.layers.Add):
        return lambda xs: functools.reduce(torch.add, xs)
    if isinstance(layer, keras.layers.Concatenate) and layer.axis in (-1, 3):
        return lambda xs: torch.cat(xs, dim=1)
    return None


def _transposed(kernel, bias, activation: Function, strides, padding, output_padding) -> Function:
    """``F.conv_transpose2d`` computed with an ``output_padding`` of ``stride - 1``, where oneDNN is fast,
    the extra rows and columns sliced off its end (a view): an odd-sized output took 1.7-2x as long
    (89 ms against 53 ms, 256 -> 128 channels at 128 px)."""
    extra = [stride - 1 - pad for stride, pad in zip(strides, output_padding)]
    fast = {"stride": strides, "padding": padding, "output_padding": tuple(s - 1 for s in strides)}

    def convolve(x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(x, kernel, bias, **fast)
        return activation(y[:, :, : y.shape[2] - extra[0], : y.shape[3] - extra[1]] if any(extra) else y)

    return convolve


def _few_outputs(layer: keras.layers.Layer) -> bool:
    """A stride-1 convolution of a few output channels and several kernel rows, such as a generator's
    last (64 -> 3, 7 x 7): oneDNN computes 16 output channels whatever the count, at 42 of this CPU's
    227 GFLOP/s for that layer, and ``_rows_as_channels`` computes it 2.9x faster."""
    return (
        not isinstance(layer, keras.layers.Conv2DTranspose)
        and tuple(layer.strides) == (1, 1)
        and layer.filters <= 4
        and layer.kernel_size[0] > 1
    )


def _winograd(layer: keras.layers.Layer, kernel: torch.Tensor) -> bool:
    """A stride-1 3x3 convolution of many channels on a CPU, such as a residual block's: Winograd's
    (``deploy.winograd``) takes 0.7x the time of oneDNN's direct one there (256 channels at 64 x 64 and
    256 x 256, 2 threads; 0.8x at 128 channels, more than 1x at 64)."""
    return (
        not isinstance(layer, keras.layers.Conv2DTranspose)
        and tuple(layer.kernel_size) == (3, 3)
        and tuple(layer.strides) == (1, 1)
        and min(kernel.shape[:2]) >= MIN_CHANNELS
        and kernel.device.type == "cpu"
    )


def _rows_as_channels(kernel: torch.Tensor, bias: torch.Tensor | None, activation: Function) -> Function:
    """A ``_few_outputs`` convolution as a convolution of one kernel row whose output channels are the
    kernel's (output, row) pairs, and a sum of those channels shifted by their row: the same products
    (3e-6 from a float64 convolution at 64 -> 3, 7 x 7, where the direct one was 1e-5)."""
    outputs, inputs, rows, columns = kernel.shape
    row_kernel = kernel.permute(0, 2, 1, 3).reshape(outputs * rows, inputs, 1, columns).contiguous()

    def convolve(x: torch.Tensor) -> torch.Tensor:
        partial = F.conv2d(x, row_kernel)
        height = partial.shape[2] - rows + 1
        partial = partial.view(partial.shape[0], outputs, rows, partial.shape[2], partial.shape[3])
        out = partial[:, :, 0, :height].clone(memory_format=torch.contiguous_format)
        for row in range(1, rows):
            out.add_(partial[:, :, row, row : row + height])
        return activation(out.add_(bias.view(1, -1, 1, 1)) if bias is not None else out)

    return convolve


def plain_conv(layer: keras.layers.Layer) -> bool:
    """A convolution ``F.conv2d``/``F.conv_transpose2d`` computes as it is: valid padding, no dilation
    or groups, no output padding, an activation of ``_activation``'s."""
    if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
        return False
    transposed = isinstance(layer, keras.layers.Conv2DTranspose)
    return (
        layer.padding == "valid"
        and tuple(layer.dilation_rate) == (1, 1)
        and getattr(layer, "groups", 1) == 1
        and not (transposed and layer.output_padding is not None)
        and _activation(layer.activation.__name__) is not None
    )


class _Node(typing.NamedTuple):
    layer: keras.layers.Layer
    inputs: list[int]
    output: int


class _Graph(typing.NamedTuple):
    ops: list[_Node]
    input: int
    output: int


def _run(graph, steps: list, readers: dict[int, int], inputs: torch.Tensor) -> torch.Tensor:
    """The graph's ``(function, op)`` steps on channels-first ``inputs``, each tensor dropped after its
    last reader."""
    functions = {op.output: function for function, op in steps}

    def apply(op, args):
        return functions[op.output](args if len(args) > 1 else args[0])

    return run_layers(graph, inputs, apply, readers)


def _keras_device() -> torch.device:
    """Where Keras puts new tensors (its GPU where it has one)."""
    return keras.ops.convert_to_tensor(np.zeros((), np.float32)).device


def native_call(graph, statistics=None) -> Callable[[np.ndarray], np.ndarray]:
    """The generator of a ``TiledGenerator`` as a function of a float32 ``[N, H, W, C]`` numpy batch,
    run channels-first under ``torch.inference_mode`` with each tensor freed after its last reader.

    Args:
        graph: the ``TiledGenerator``.
        statistics: what each instance norm normalises with instead of its input's own statistics
            (``deploy.tiling.Statistics``, keyed by the norm's input).
    """
    graph, pads = _merged(graph, reader_counts(graph))
    readers = reader_counts(graph)
    normalised = {op.inputs[0] for op in graph.ops if type(op.layer) is InstanceNormalization}
    lowered = [
        lower(
            op.layer,
            normalised=op.output in normalised and readers[op.output] == 1,
            **pads.get(op.output, {}),
        )
        for op in graph.ops
    ]
    # Writing into a tensor that only this layer reads saves a new tensor; never into the caller's input
    # or a tensor that may share memory with another.
    shared = {graph.input} | {
        op.output
        for op, function in zip(graph.ops, lowered)
        if function is None or isinstance(op.layer, _VIEWS)
    }
    steps = []
    for op, function in zip(graph.ops, lowered):
        if statistics is not None and isinstance(op.layer, InstanceNormalization):
            function = _given_statistics(op.layer, op.inputs[0], statistics)
        elif function is None:
            function = _channels_last(op.layer)
        elif isinstance(op.layer, _IN_PLACE):
            # The first input that only this layer reads takes the result (a sum's terms commute).
            writable = [
                k for k, tensor in enumerate(op.inputs) if readers[tensor] == 1 and tensor not in shared
            ]
            if writable:
                function = _first(lower(op.layer, inplace=True), writable[0])
        steps.append((function, op))

    device = _keras_device()
    release_free_memory()  # the temporaries of the kernels' new layouts

    def call(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(batch)).to(device).permute(0, 3, 1, 2)
            # Channels-last memory under channels-first indexing: oneDNN's fastest convolutions here.
            outputs = _run(graph, steps, readers, inputs.contiguous(memory_format=torch.channels_last))
            return outputs.permute(0, 2, 3, 1).float().cpu().numpy()

    return call


def _first(function: Function, index: int) -> Function:
    """``function`` of a layer's inputs with input ``index`` moved first (the one it may write into)."""
    if index == 0:
        return function
    return lambda xs: function([xs[index], *xs[:index], *xs[index + 1 :]])


def _merged(graph, readers: dict[int, int]) -> tuple[_Graph, dict[int, dict]]:
    """The graph with each zero padding taken into the convolution that alone reads it, and each
    cropping into the transposed convolution it alone reads, as ``F.conv2d``'s ``padding`` and
    ``F.conv_transpose2d``'s ``padding`` and ``output_padding``: oneDNN's padded forms skip a padded
    copy of the photo, and its transposed convolution of the official network's padding takes half the
    time of the unpadded one and a cropping (53 ms against 89 ms, 256 -> 128 channels at 128 px). Also
    the keyword arguments of ``lower`` for each merged op (by output)."""
    single = {op.output: op for op in graph.ops if readers.get(op.output) == 1 and op.output != graph.output}
    reader = {op.inputs[0]: op for op in graph.ops if len(op.inputs) == 1}
    dropped, ops, pads = set(), [], {}
    for op in graph.ops:
        if op.output in dropped:
            continue
        source = single.get(op.inputs[0]) if len(op.inputs) == 1 else None
        after = reader.get(op.output) if op.output in single else None
        if (
            plain_conv(op.layer)
            and not isinstance(op.layer, keras.layers.Conv2DTranspose)
            and not _few_outputs(op.layer)
            and isinstance(getattr(source, "layer", None), keras.layers.ZeroPadding2D)
            and all(top == bottom for top, bottom in source.layer.padding)
        ):
            pads[op.output] = {"padding": tuple(side[0] for side in source.layer.padding)}
            ops[ops.index(source)] = _Node(op.layer, source.inputs, op.output)
            continue
        if (
            plain_conv(op.layer)
            and isinstance(op.layer, keras.layers.Conv2DTranspose)
            and isinstance(getattr(after, "layer", None), keras.layers.Cropping2D)
            and all(
                0 <= first - last < stride
                for (first, last), stride in zip(after.layer.cropping, op.layer.strides)
            )
        ):
            cropping = after.layer.cropping
            pads[after.output] = {
                "padding": tuple(first for first, _ in cropping),
                "output_padding": tuple(first - last for first, last in cropping),
            }
            ops.append(_Node(op.layer, op.inputs, after.output))
            dropped.add(after.output)
            continue
        ops.append(op)
    return _Graph(ops, graph.input, graph.output), pads


class TileFunctions:
    """How ``deploy.tiling`` runs its tiles on PyTorch: as channels-first tensors through each layer's
    function here (``lower``), where Keras' layer calls transpose around every convolution (2.2x the
    whole photo's time per pixel at 24 MP, tile 512). ``deploy.tiling.KerasLayers`` is the same
    interface with Keras' own calls."""

    rows = 2  # the rows' dimension of a tile's tensors; the columns' is the next

    def __init__(self, ops):
        self.functions = {}
        for op in ops:
            if isinstance(op.layer, InstanceNormalization):
                self.functions[op.output] = normalise_with(op.layer)
            else:
                self.functions[op.output] = lower(op.layer) or _channels_last(op.layer)
        self.device = _keras_device()
        release_free_memory()

    def tensor(self, part: np.ndarray) -> torch.Tensor:
        """A float32 ``[H, W, C]`` array as a channels-first batch of one (channels-last in memory,
        oneDNN's fastest convolutions): on a CPU, a view of it (the functions here never write into their
        inputs)."""
        return torch.from_numpy(part[None]).to(self.device).permute(0, 3, 1, 2)

    def array(self, value: torch.Tensor) -> np.ndarray:
        return value[0].permute(1, 2, 0).float().cpu().numpy()

    def copy(self, destination: np.ndarray, value: torch.Tensor) -> None:
        # PyTorch's copy runs on every thread, numpy's on one: 3.5x as fast on two.
        torch.from_numpy(destination).copy_(value[0].permute(1, 2, 0))

    def pad(self, value: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int], mode: str):
        return F.pad(value, (*cols, *rows), mode=mode)

    def call(self, op, args: list) -> torch.Tensor:
        return self.functions[op.output](args if len(args) > 1 else args[0])

    def normalise(self, op, x: torch.Tensor, mean: np.ndarray, variance: np.ndarray) -> torch.Tensor:
        return self.functions[op.output](x, mean, variance)

    def running(self):
        return torch.inference_mode()
