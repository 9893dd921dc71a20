"""The training step on PyTorch: ``backward()`` through the losses, and Adam's update for all variables at
once.

The networks run as PyTorch's own functions (``training.steps.torch_call.training_call``) where they can:
a Keras layer call on this backend costs some 0.1-0.3 ms of Python on the host (argument checks,
conversions, a transpose around every convolution), which at ~700 layer calls a step set the pace
wherever convolutions are small (a CPU at 32 px, any GPU).
"""

from __future__ import annotations

import weakref

import keras
import torch

from cyclegan_keras.deploy.torch_native import plain_conv
from cyclegan_keras.training.steps.torch_bfloat16 import contiguous_conv_weights
from cyclegan_keras.training.steps.torch_call import training_call

# network -> its lean training call, or None where it runs through Keras
_CALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# network -> (optimizer, whether it had its moments, the kernels its lean call convolves with and those
# moments)
_SLOTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# The mark of a value stored in PyTorch's order (``store_in_torch_order``), an attribute of the tensor.
_STORED = "_cyclegan_keras_torch_order"


def lean_training_call(network: keras.Model):
    """``training.steps.torch_call.training_call(network)``, made once per network."""
    if network not in _CALLS:
        _CALLS[network] = training_call(network)
    return _CALLS[network]


def lean_call(network: keras.Model, images, training: bool):
    """``network(images, training=training)``, through PyTorch's own functions where the network allows
    (``CycleGAN.generator_losses``' ``call``)."""
    function = lean_training_call(network)
    if function is None or not training:
        return network(images, training=training)
    return function(images if isinstance(images, torch.Tensor) else keras.ops.convert_to_tensor(images))


def train_step(model, data):
    """One official step of ``model`` (a ``CycleGAN``) on a batch ``(a, b)``; returns the logs."""
    a, b = model.unpack_and_build(data)
    networks = (model.generator_ab, model.generator_ba, model.discriminator_a, model.discriminator_b)
    for network, optimizer in zip(
        networks, [model.generator_optimizer] * 2 + [model.discriminator_optimizer] * 2
    ):
        store_in_torch_order(network, optimizer)
    convolutions = contiguous_conv_weights({network.compute_dtype for network in networks}, a.device)
    with convolutions:
        losses, fake_a, fake_b = model.generator_losses(a, b, training=True, call=lean_call)
    _update(model.generator_optimizer, sum(losses.values()), model.generator_variables)

    with torch.no_grad():
        pooled_a = model.pool_a(fake_a.detach())
        pooled_b = model.pool_b(fake_b.detach())
    with convolutions:
        losses.update(model.discriminator_losses(a, b, pooled_a, pooled_b, call=lean_call))
    _update(model.discriminator_optimizer, losses["disc_a"] + losses["disc_b"], model.discriminator_variables)
    return model.track({name: value.detach() for name, value in losses.items()})


def store_in_torch_order(network: keras.Model, optimizer) -> None:
    """Stores the kernels of ``network``'s convolutions (those its lean call runs), and their Adam
    moments, in PyTorch's ``[out, in, kh, kw]`` order: Keras sees its own ``[kh, kw, in, out]`` shape (a
    permuted view; values, saving and assigning unchanged), and the lean call convolves with the values
    themselves. Copying every kernel into PyTorch's order and its gradient back took some 85 ms of a
    32 px step (docs/benchmarks.md, issue 39). Each is stored once: a step that finds them so costs a
    few microseconds."""
    for variable in _slots(network, optimizer):
        if not getattr(variable._value, _STORED, False):
            _store(variable)


def _slots(network: keras.Model, optimizer) -> list[keras.Variable]:
    """The kernels of ``network`` that its lean call convolves with, and their Adam moments once
    ``optimizer`` has them; none for a network that has no lean call."""
    built = bool(getattr(optimizer, "_momentums", None)) and bool(getattr(optimizer, "_velocities", None))
    cached = _SLOTS.get(network)
    if cached is not None and cached[0] is optimizer and cached[1] == built:
        return cached[2]
    slots = []
    if lean_training_call(network) is not None:
        for kernel in (layer.kernel for layer in network.layers if plain_conv(layer)):
            slots.append(kernel)
            if built and optimizer._var_key(kernel) in optimizer._trainable_variables_indices:
                index = optimizer._get_variable_index(kernel)
                slots += [optimizer._momentums[index], optimizer._velocities[index]]
    _SLOTS[network] = (optimizer, built, slots)
    return slots


def _store(variable: keras.Variable) -> None:
    value = variable._value
    if value is None or value.dim() != 4:
        return
    if not value.permute(3, 2, 0, 1).is_contiguous():
        with torch.no_grad():
            values = value.detach().permute(3, 2, 0, 1).contiguous()
        # Keras' torch Variable keeps its Parameter in ``_value`` and assigns into it in place
        # (``copy_``), so the layout stays through assigning, loading and saving.
        value = torch.nn.Parameter(values.permute(2, 3, 1, 0), requires_grad=value.requires_grad)
        variable._value = value
    setattr(value, _STORED, True)


def _update(optimizer, loss, variables) -> None:
    """The optimizer's step on ``variables`` from ``loss``: gradients of these variables alone (the
    generators' loss leaves none on the discriminators, as the official step's ``requires_grad_(False)``),
    returned rather than accumulated into ``.grad`` (no copy into each weight's layout)."""
    grads = torch.autograd.grad(
        optimizer.scale_loss(loss), [v.value for v in variables], allow_unused=True, materialize_grads=True
    )
    optimizer.apply(list(grads), variables)


def test_step(model, data):
    """The losses of a batch ``(a, b)`` without updates."""
    return model.track(model.evaluation_losses(*model.unpack(data)))


# Adam's update runs over the variables in groups of about this many bytes on a CPU, each group while it
# is in cache, as torch.optim.Adam's loop over tensors does: each foreach op over all of a CycleGAN's
# 28M weights at once is a pass through memory, 2x the time at 32 px (docs/benchmarks.md). On a GPU,
# one group: fewest launches.
CPU_GROUP_BYTES = 1 << 20


def foreach_adam_update(optimizer, grads, trainable_variables, learning_rate) -> None:
    """``OfficialAdam``'s update of every variable in one foreach call per op and group of variables
    (``torch.optim.Adam(foreach=True)``'s way).

    Keras runs ``update_step``'s ~10 ops per variable eagerly, each through its op dispatch: over a
    CycleGAN's ~120 variables that is host time a GPU step cannot hide.
    """
    with torch.no_grad():
        variables = [variable.value for variable in trainable_variables]
        dtype = variables[0].dtype
        grads = [gradient.to(dtype) for gradient in grads]
        # Python numbers, as torch.optim.Adam's CPU path: a 0-d tensor beside every tensor of a foreach
        # op is a broadcast per tensor (its square root took 4x as long).
        lr = float(keras.ops.convert_to_numpy(learning_rate))
        step = float(keras.ops.convert_to_numpy(optimizer.iterations.value)) + 1
        correction_1 = 1 - optimizer.beta_1**step
        correction_2 = 1 - optimizer.beta_2**step
        indices = [optimizer._get_variable_index(variable) for variable in trainable_variables]
        m = [optimizer._momentums[i].value for i in indices]
        v = [optimizer._velocities[i].value for i in indices]
        limit = CPU_GROUP_BYTES if variables[0].device.type == "cpu" else None
        for group in _groups(variables, limit):
            g_m, g_v, g_grads = [m[i] for i in group], [v[i] for i in group], [grads[i] for i in group]
            g_variables = [variables[i] for i in group]
            torch._foreach_lerp_(g_m, g_grads, 1 - optimizer.beta_1)
            torch._foreach_mul_(g_v, optimizer.beta_2)
            torch._foreach_addcmul_(g_v, g_grads, g_grads, value=1 - optimizer.beta_2)
            denominators = torch._foreach_sqrt(g_v)
            torch._foreach_div_(denominators, correction_2**0.5)
            torch._foreach_add_(denominators, optimizer.epsilon)
            torch._foreach_addcdiv_(g_variables, g_m, denominators, value=-lr / correction_1)


def _groups(tensors: list[torch.Tensor], limit: int | None) -> list[list[int]]:
    """Indices of ``tensors`` in consecutive groups of at most ``limit`` bytes (a larger tensor alone);
    one group where ``limit`` is None."""
    if limit is None:
        return [list(range(len(tensors)))]
    groups: list[list[int]] = [[]]
    size = 0
    for index, tensor in enumerate(tensors):
        bytes_ = tensor.numel() * tensor.element_size()
        if groups[-1] and size + bytes_ > limit:
            groups.append([])
            size = 0
        groups[-1].append(index)
        size += bytes_
    return groups


def input_gradient(function, x):
    """The gradient of the scalar ``function(x)`` with respect to ``x``, kept differentiable (a
    gradient penalty is itself trained through)."""
    x = x.detach().requires_grad_(True)
    return torch.autograd.grad(function(x), x, create_graph=True)[0]
