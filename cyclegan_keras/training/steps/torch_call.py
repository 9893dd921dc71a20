"""The networks' training call as PyTorch's own functions on channels-first tensors
(``deploy.torch_native``'s lowering, with the weights read at each call and gradients flowing to
them), in place of Keras' layer calls: the same numbers without Keras' work around each call."""

from __future__ import annotations

from collections.abc import Callable

import keras
import torch
import torch.nn.functional as F

from cyclegan_keras.deploy.graph import reader_counts
from cyclegan_keras.deploy.torch_native import Function, _activation, _Graph, _Node, _run, lower, plain_conv
from cyclegan_keras.networks.layers import InstanceNormalization


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
    """One layer for training, as ``deploy.torch_native.lower`` makes it for inference: the weights read
    at each call, gradients flowing to them, nothing in place; None for layers that act differently in
    training (dropout, batch norm) or have no such form here."""
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
    steps = [(_live(op.layer), op) for op in graph.ops]
    if any(function is None for function, _ in steps):
        return None
    readers = reader_counts(graph)
    # Dense channels-first activations, as the official network's: see ``_TorchOrder``.
    return lambda x: _run(graph, steps, readers, x.permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1)
