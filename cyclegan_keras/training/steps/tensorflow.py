"""The training step on TensorFlow: two ``tf.GradientTape`` updates, under any ``tf.distribute``
strategy (losses averaged over every replica of every worker)."""

from __future__ import annotations

import tensorflow as tf


def train_step(model, data):
    """One official step of ``model`` (a ``CycleGAN``) on a batch ``(a, b)``; returns the logs."""
    a, b = model.unpack_and_build(data)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
        losses, fake_a, fake_b = model.generator_losses(a, b, training=True)
        # Each replica's mean over its share of the batch; the optimizer sums over replicas.
        generator_loss = tf.add_n(list(losses.values())) / replicas
        scaled = model.generator_optimizer.scale_loss(generator_loss)
    generator_variables = model.generator_variables
    grads = tape.gradient(scaled, generator_variables)
    model.generator_optimizer.apply_gradients(zip(grads, generator_variables))

    pooled_a = model.pool_a(tf.stop_gradient(fake_a))
    pooled_b = model.pool_b(tf.stop_gradient(fake_b))
    with tf.GradientTape() as tape:
        losses.update(model.discriminator_losses(a, b, pooled_a, pooled_b))
        scaled = model.discriminator_optimizer.scale_loss((losses["disc_a"] + losses["disc_b"]) / replicas)
    discriminator_variables = model.discriminator_variables
    grads = tape.gradient(scaled, discriminator_variables)
    model.discriminator_optimizer.apply_gradients(zip(grads, discriminator_variables))
    return _per_worker(model.track(_global_mean(losses)))


def test_step(model, data):
    """The losses of a batch ``(a, b)`` without updates, averaged as the training step's."""
    return _per_worker(model.track(_global_mean(model.evaluation_losses(*model.unpack(data)))))


def _multi_worker() -> bool:
    extended = tf.distribute.get_strategy().extended
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def _global_mean(losses: dict) -> dict:
    """Each loss averaged over all replicas (of every worker), so that every replica logs the same."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return losses
    names = list(losses)
    stacked = tf.stack([tf.cast(losses[name], tf.float32) for name in names])
    return dict(zip(names, tf.unstack(context.all_reduce("mean", stacked))))


def _per_worker(logs: dict) -> dict:
    if not _multi_worker():
        return logs
    # Keras 3 averages the workers' logs along axis 0, which a scalar lacks (keras-team/keras via
    # tensorflow/tensorflow#72388); every replica logs the same global mean anyway.
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


def input_gradient(function, x):
    """The gradient of the scalar ``function(x)`` with respect to ``x``, kept differentiable (a
    gradient penalty is itself trained through)."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = function(x)
    return tape.gradient(value, x)
