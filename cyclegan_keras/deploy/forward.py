"""A generator's forward pass for inference on the Keras backend in use, holding only the tensors it
still needs.

A plain eager call of a functional Keras model keeps every intermediate tensor until it returns (and,
on PyTorch, an autograd graph of them): at a megapixel, gigabytes more than the network needs. Here
TensorFlow runs the call as one ``tf.function`` (its executor frees each tensor after its last use),
JAX as one ``jax.jit``-compiled stateless call, and PyTorch layer by layer under
``torch.inference_mode`` in PyTorch's own channels-first functions (``deploy.torch_native``), each
tensor dropped after its last reader. The numbers are the eager call's.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

# Batches of fewer pixels (photos x height x width) run as a plain call on TensorFlow and JAX: there
# compiling costs more than it saves (a trace of 0.2 s and more, a compilation per size on JAX), and
# every tensor kept is little memory (ResNet-9 at 128 x 128: 0.15 GB).
COMPILE_FROM = 128 * 128


def inference_call(
    generator: keras.Model, graph=None, compile_from: int = COMPILE_FROM
) -> Callable[[np.ndarray], np.ndarray]:
    """``generator(batch, training=False)`` as a function of a float32 batch ``[N, H, W, C]`` to a
    float32 numpy batch, compiled for the backend in use.

    Args:
        generator: a Keras generator.
        graph: its ``TiledGenerator`` (the layer graph, for PyTorch's layer-by-layer call); without it,
            PyTorch makes a plain call.
        compile_from: on TensorFlow and JAX, batches of fewer pixels run as a plain call (0: none).
    """
    backend = keras.backend.backend()
    compiled = _CALLS[backend](generator, graph)
    if backend == "torch" or compile_from <= 0:
        return compiled

    def call(batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] * batch.shape[1] * batch.shape[2] < compile_from:
            return keras.ops.convert_to_numpy(generator(batch, training=False)).astype(np.float32)
        return compiled(batch)

    return call


def _tensorflow(generator: keras.Model, graph) -> Callable:
    import tensorflow as tf

    # One trace serves every photo size (shapes relax to None after the second size).
    call = tf.function(lambda images: generator(images, training=False), reduce_retracing=True)
    return lambda batch: call(batch).numpy().astype(np.float32)


def _jax(generator: keras.Model, graph) -> Callable:
    import jax

    trainable = [variable.value for variable in generator.trainable_variables]
    non_trainable = [variable.value for variable in generator.non_trainable_variables]

    @jax.jit
    def call(trainable, non_trainable, images):
        return generator.stateless_call(trainable, non_trainable, images, training=False)[0]

    return lambda batch: np.asarray(call(trainable, non_trainable, batch), np.float32)


def _torch(generator: keras.Model, graph) -> Callable:
    import torch

    if graph is not None and all(layer.compute_dtype == "float32" for layer in generator.layers):
        from cyclegan_keras.deploy.torch_native import native_call

        return native_call(graph)

    def call(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            outputs = generator(batch, training=False) if graph is None else _layer_by_layer(graph, batch)
            return keras.ops.convert_to_numpy(outputs).astype(np.float32)

    return call


def _layer_by_layer(graph, batch: np.ndarray):
    """The generator's layers in order, each tensor dropped after its last reader."""
    from cyclegan_keras.deploy.graph import run_layers

    def apply(op, args):
        return op.layer(args if len(args) > 1 else args[0], training=False)

    return run_layers(graph, keras.ops.convert_to_tensor(batch), apply)


_CALLS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
