"""Lookups in a functional model's layer graph, for the rewrites that prepare generators for export."""

from __future__ import annotations

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
