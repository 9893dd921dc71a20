"""A generator's layers as PyTorch's own functions on channels-first tensors, for inference.

Keras' layers on the PyTorch backend take channels-last tensors and transpose around every
convolution, and a functional model keeps every intermediate tensor of a call: at a megapixel that is
1.6x the official network's time. Here the layer graph (``TiledGenerator.ops``) runs as
``torch.nn.functional`` calls in the official network's layout, each tensor dropped after its last
reader; the kernels are transposed once. Layers without a channels-first form here run as themselves
on a channels-last view, so any graph the tiling engine reads runs. The numbers are the Keras call's
to float32 round-off (``tests/test_inference.py``).
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
from cyclegan_keras.networks.layers import InstanceNormalization, ReflectionPadding2D

Function = Callable[..., torch.Tensor]


def _kernel(layer) -> tuple[torch.Tensor, torch.Tensor | None]:
    # Keras kernels are [kh, kw, in, out] (Conv2D) and [kh, kw, out, in] (Conv2DTranspose); PyTorch's
    # are [out, in, kh, kw] and [in, out, kh, kw]: the same permutation serves both.
    kernel = layer.kernel.value.detach().permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    bias = layer.bias.value.detach() if layer.use_bias else None
    return kernel, bias


def _instance_norm(layer: InstanceNormalization) -> Function:
    epsilon = layer.epsilon
    if not isinstance(epsilon, float):  # one per channel, on the device the weights are on
        epsilon = keras.ops.convert_to_tensor(np.asarray(epsilon, np.float32)).reshape(1, -1, 1, 1)
    gamma = layer.gamma.value.detach().reshape(1, -1, 1, 1) if layer.gamma is not None else None
    beta = layer.beta.value.detach().reshape(1, -1, 1, 1) if layer.beta is not None else None

    def norm(x: torch.Tensor) -> torch.Tensor:
        # Centred first, then scaled in place: two passes over the tensor and one new one (about 30%
        # faster than F.instance_norm here, and as close to a float64 norm: 1e-6).
        centred = x - x.mean(dim=(2, 3), keepdim=True)
        centred.mul_(torch.rsqrt(centred.square().mean(dim=(2, 3), keepdim=True) + epsilon))
        if gamma is not None:
            centred.mul_(gamma)
        return centred.add_(beta) if beta is not None else centred

    return norm


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
_IN_PLACE = (keras.layers.ReLU, keras.layers.LeakyReLU, keras.layers.Add)


def lower(
    layer: keras.layers.Layer, inplace: bool = False, normalised: bool = False, live: bool = False
) -> Function | None:
    """One layer as a function of channels-first tensors (a list for layers of several inputs), or None
    where it has no such form here.

    Args:
        layer: the Keras layer.
        inplace: it may write into its (first) input, which nothing reads after it.
        normalised: its output goes only into an instance norm, which removes a per-channel bias: a
            convolution's is then left out (5-9% of ResNet-9's time at 512 px here).
        live: for training: the weights read at each call, gradients flowing to them, nothing in place;
            layers that act differently in training (dropout, batch norm) have no such form here.
    """
    if live:
        return _live(layer)
    if type(layer) is InstanceNormalization and not layer.single_mean:
        return _instance_norm(layer)
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
        conv = F.conv_transpose2d if isinstance(layer, keras.layers.Conv2DTranspose) else F.conv2d
        strides = tuple(layer.strides)
        return lambda x: activation(conv(x, kernel, bias, stride=strides))
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


class _LiveKernel:
    """A Keras kernel in PyTorch's order: the variable's own values where they are stored so
    (``training.steps.torch.store_in_torch_order``), else a copy, made again only after the variable
    changed (an optimizer's in-place update bumps its version): a network called several times a step
    copies it once, and the copy passes its gradient on to the variable. Convolving with a permuted view
    of Keras' layout makes oneDNN reorder the weights on every call (2.6x slower steps at 32 px)."""

    def __init__(self, variable: keras.Variable):
        self.variable, self.version, self.copy, self.source = variable, None, None, None

    def __call__(self) -> torch.Tensor:
        value = self.variable.value
        view = value.permute(3, 2, 0, 1)
        if view.is_contiguous():
            return view
        if self.version != value._version or self.copy is None or self.source is not value:
            self.copy = _TorchOrder.apply(value)
            self.version, self.source = value._version, value
        return self.copy


class _TorchOrder(torch.autograd.Function):
    """A Keras kernel ``[kh, kw, in, out]`` copied into PyTorch's ``[out, in, kh, kw]`` order, dense as
    the official network's weights: with channels-first activations, neither the convolution nor its
    backward reorders it (channels-last weights were copied again in every convolution's backward, 11%
    of a 32 px step); its gradient comes back in the kernel's own layout, so that the optimizer's
    updates run over dense, alike tensors (a strided gradient made them 5x slower)."""

    @staticmethod
    def forward(ctx, kernel: torch.Tensor) -> torch.Tensor:
        # Two copies that PyTorch makes fast, where one of the 4-D permutation is element by element
        # (1.5-5x slower): rows of `out` moved whole into [in, kh*kw, out], then a 2-D transpose, which
        # it copies in cache-sized blocks.
        height, width, inputs, outputs = kernel.shape
        rows = kernel.reshape(height * width, inputs, outputs).transpose(0, 1).contiguous()
        return rows.view(-1, outputs).t().contiguous().view(outputs, inputs, height, width)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.permute(2, 3, 1, 0).contiguous()


def _live(layer: keras.layers.Layer) -> Function | None:
    """``lower(layer, live=True)``."""
    if isinstance(layer, (keras.layers.Dropout, keras.layers.BatchNormalization)):
        return None
    if type(layer) is InstanceNormalization and isinstance(layer.epsilon, float):
        epsilon = layer.epsilon

        def norm(x: torch.Tensor) -> torch.Tensor:
            # PyTorch's own norm, as the official network's: one op and its backward, where the
            # centring and scaling written out were eight (some 5% of a 32 px step). The op itself, not
            # F.instance_norm, which refuses a 1 x 1 image in training (Keras' layer gives its offset).
            gamma = layer.gamma.value if layer.gamma is not None else None
            beta = layer.beta.value if layer.beta is not None else None
            return torch.instance_norm(x, gamma, beta, None, None, True, 0.0, epsilon, False)

        return norm
    if plain_conv(layer):
        activation = _activation(layer.activation.__name__)
        conv = F.conv_transpose2d if isinstance(layer, keras.layers.Conv2DTranspose) else F.conv2d
        strides = tuple(layer.strides)

        kernel = _LiveKernel(layer.kernel)

        def convolve(x: torch.Tensor) -> torch.Tensor:
            bias = layer.bias.value if layer.use_bias else None
            return activation(conv(x, kernel(), bias, stride=strides))

        return convolve
    if not layer.weights:
        return lower(layer)  # weightless: the inference form, which is out of place unless asked
    return None


class _Node(typing.NamedTuple):
    layer: keras.layers.Layer
    inputs: list[int]
    output: int


class _Graph(typing.NamedTuple):
    ops: list[_Node]
    input: int
    output: int


def functional_graph(model: keras.Model) -> _Graph | None:
    """A functional model's layers in order with the tensors each reads and writes (as ids), or None
    for a model of several inputs or outputs, or a layer called more than once."""
    if len(getattr(model, "inputs", None) or ()) != 1 or len(model.outputs) != 1:
        return None
    ops = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            inputs, output = layer.input, layer.output
        except (AttributeError, ValueError):
            return None
        inputs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
        ops.append(_Node(layer, [id(t) for t in inputs], id(output)))
    return _Graph(ops, id(model.inputs[0]), id(model.outputs[0]))


def training_call(model: keras.Model) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """``model(x, training=True)`` for a channels-last float32 tensor, as PyTorch's own functions on
    channels-first views, differentiable with respect to the model's weights: the same numbers without
    Keras' work around each layer call (argument checks, conversions, layouts). None for a model that
    cannot run so (a layer without a live form, mixed precision)."""
    graph = functional_graph(model)
    if graph is None or any(layer.compute_dtype != "float32" for layer in model.layers):
        return None
    steps = [(lower(op.layer, live=True), op) for op in graph.ops]
    if any(function is None for function, _ in steps):
        return None
    readers = reader_counts(graph)
    # Dense channels-first activations, as the official network's: see ``_TorchOrder``.
    return lambda x: _run(graph, steps, readers, x.permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1)


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
    readers = reader_counts(graph)
    normalised = {op.inputs[0] for op in graph.ops if type(op.layer) is InstanceNormalization}
    lowered = [
        lower(op.layer, normalised=op.output in normalised and readers[op.output] == 1) for op in graph.ops
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
        elif isinstance(op.layer, _IN_PLACE) and readers[op.inputs[0]] == 1 and op.inputs[0] not in shared:
            function = lower(op.layer, inplace=True)
        steps.append((function, op))

    device = _keras_device()

    def call(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            inputs = torch.from_numpy(np.ascontiguousarray(batch)).to(device).permute(0, 3, 1, 2)
            # Channels-last memory under channels-first indexing: oneDNN's fastest convolutions here.
            outputs = _run(graph, steps, readers, inputs.contiguous(memory_format=torch.channels_last))
            return outputs.permute(0, 2, 3, 1).float().cpu().numpy()

    return call


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

    def tensor(self, part: np.ndarray) -> torch.Tensor:
        """A float32 ``[H, W, C]`` array as a channels-first batch of one (channels-last in memory,
        oneDNN's fastest convolutions)."""
        return torch.from_numpy(part[None]).to(self.device).permute(0, 3, 1, 2)

    def array(self, value: torch.Tensor) -> np.ndarray:
        return value[0].permute(1, 2, 0).float().cpu().numpy()

    def call(self, op, args: list) -> torch.Tensor:
        return self.functions[op.output](args if len(args) > 1 else args[0])

    def normalise(self, op, x: torch.Tensor, mean: np.ndarray, variance: np.ndarray) -> torch.Tensor:
        return self.functions[op.output](x, mean, variance)

    def running(self):
        return torch.inference_mode()
