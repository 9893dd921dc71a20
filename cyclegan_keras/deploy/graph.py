"""Lookups in a functional model's layer graph, for the rewrites that prepare generators for export, and
a walk through a layer graph (``TiledGenerator.ops`` and the like) that frees each tensor after its last
reader."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


def producers(model: keras.Model) -> dict[int, keras.layers.Layer]:
    """Each layer output's ``id`` to its layer."""
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    return {id(layer.output): layer for layer in layers}


def consumers(model: keras.Model) -> dict[int, list[keras.layers.Layer]]:
    """Each tensor's ``id`` to the layers that read it."""
    readers: dict[int, list[keras.layers.Layer]] = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer):
            for tensor in layer.input if isinstance(layer.input, list) else [layer.input]:
                readers.setdefault(id(tensor), []).append(layer)
    return readers


def reader_counts(graph) -> dict[int, int]:
    """How many of the graph's ops read each tensor (``graph.ops``: ``.inputs`` as ids)."""
    readers: dict[int, int] = {}
    for op in graph.ops:
        for tensor in op.inputs:
            readers[tensor] = readers.get(tensor, 0) + 1
    return readers


def run_layers(graph, inputs, apply: Callable[[Any, list], Any], readers: dict[int, int] | None = None):
    """``graph.output``'s value from ``inputs`` at ``graph.input``: ``apply(op, args)`` for each op in
    order, each tensor dropped after its last reader (a functional model's own call keeps them all)."""
    left = dict(readers if readers is not None else reader_counts(graph))
    values = {graph.input: inputs}
    for op in graph.ops:
        values[op.output] = apply(op, [values[tensor] for tensor in op.inputs])
        for tensor in op.inputs:
            left[tensor] -= 1
            if not left[tensor]:
                del values[tensor]
    return values[graph.output]
