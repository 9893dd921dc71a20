"""What differs between Keras backends, checked on the backend this process runs on.

``tests/test_backends.py`` runs ``python -m tests.backend_checks OUT_JSON WORK_DIR DATA_DIR`` with
``KERAS_BACKEND`` set to JAX or PyTorch, in a process where importing TensorFlow fails; the TensorFlow
tests call the same functions in-process. Each check returns numbers; the tests assert on them.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import sys
import time
import traceback

import keras
import numpy as np

from tests.pool_images import distinct_images, ids
from tests.video_checks import statistics_gaps

LOSS_NAMES = {  # ours -> the official log's
    "adv_ab": "G_A",
    "adv_ba": "G_B",
    "cycle_aba": "cycle_A",
    "cycle_bab": "cycle_B",
    "identity_ab": "idt_A",
    "identity_ba": "idt_B",
    "disc_b": "D_A",
    "disc_a": "D_B",
}


def _images(seed, shape=(2, 32, 32, 3)):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32")


def _flat(weights):
    return np.concatenate([np.ravel(w) for w in weights])


def one_step_against_official() -> dict:
    """One ``train_on_batch`` of a small CycleGAN against the official step in PyTorch, from the same
    weights on the same images.

    Returns:
        ``losses``: each term as ``[ours, official]``; ``gaps``: for each network, the norm of the
        difference of the two updates over the norm of the official update.
    """
    from cyclegan_keras import CycleGAN, load_official_weights, patchgan_discriminator, resnet_generator
    from tests import torch_reference as ref

    nets = {
        "g_a": ref.randomize(ref.ResnetGenerator(ngf=8, n_blocks=2), 10),
        "g_b": ref.randomize(ref.ResnetGenerator(ngf=8, n_blocks=2), 11),
        "d_a": ref.randomize(ref.NLayerDiscriminator(ndf=8), 12),
        "d_b": ref.randomize(ref.NLayerDiscriminator(ndf=8), 13),
    }
    # Official netD_A judges B images: it is our discriminator_b.
    model = CycleGAN(
        load_official_weights(resnet_generator(2, ngf=8, name="g_ab"), ref.numpy_state(nets["g_a"])),
        load_official_weights(resnet_generator(2, ngf=8, name="g_ba"), ref.numpy_state(nets["g_b"])),
        load_official_weights(patchgan_discriminator(ndf=8, name="d_a"), ref.numpy_state(nets["d_b"])),
        load_official_weights(patchgan_discriminator(ndf=8, name="d_b"), ref.numpy_state(nets["d_a"])),
    )
    model.compile()
    ours_by_key = {
        "g_a": model.generator_ab,
        "g_b": model.generator_ba,
        "d_b": model.discriminator_a,
        "d_a": model.discriminator_b,
    }
    before = {key: _flat(net.get_weights()) for key, net in ours_by_key.items()}
    a, b = _images(20), _images(21)
    logs = model.train_on_batch(a, b, return_dict=True)
    expected = ref.official_step(nets["g_a"], nets["g_b"], nets["d_a"], nets["d_b"], ref.nchw(a), ref.nchw(b))
    gaps = {}
    for key, net in ours_by_key.items():
        official = load_official_weights(keras.models.clone_model(net), ref.numpy_state(nets[key]))
        ours = _flat(net.get_weights()) - before[key]
        theirs = _flat(official.get_weights()) - before[key]
        gaps[key] = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
    losses = {name: [float(logs[name]), float(expected[official])] for name, official in LOSS_NAMES.items()}
    return {"losses": losses, "gaps": gaps}


def pool_behaviour(steps: int = 100) -> dict:
    """The official pool, size 4: what it returns while filling, and how often it swaps once full."""
    from cyclegan_keras import ImagePool

    pool = ImagePool(size=4, seed=1)
    filling = ids(pool(distinct_images(3))) + ids(pool(distinct_images(1, start=3)))
    stored = sorted(ids(pool.images))
    swaps = returned_stored = 0
    for step in range(steps):
        before = set(ids(pool.images))
        (returned,) = ids(pool(distinct_images(1, start=100 + step)))
        if returned != 100 + step:
            swaps += 1
            returned_stored += returned in before and 100 + step in ids(pool.images)
    return {"filling": filling, "stored": stored, "swaps": swaps, "returned_stored": returned_stored}


def tiny_cyclegan():
    """The small CycleGAN that the checkpoint checks use on every backend."""
    from cyclegan_keras import CycleGAN, patchgan_discriminator, resnet_generator

    model = CycleGAN(
        resnet_generator(1, ngf=4, name="generator_ab"),
        resnet_generator(1, ngf=4, name="generator_ba"),
        patchgan_discriminator(n_layers=2, ndf=4, name="discriminator_a"),
        patchgan_discriminator(n_layers=2, ndf=4, name="discriminator_b"),
        pool_size=2,
        seed=0,
    )
    model.compile(jit_compile=keras.backend.backend() == "jax")
    model.build((1, 16, 16, 3))
    model.build_optimizers()
    return model


def state_arrays(model) -> dict:
    """Every checkpointed variable of ``model`` as numpy, by its checkpoint key."""
    from cyclegan_keras.run.checkpoint import state_variables

    return {key: np.asarray(keras.ops.convert_to_numpy(v)) for key, v in state_variables(model).items()}


def checkpoint_round_trip(work: str) -> dict:
    """Restores ``work/written`` (a checkpoint of another backend), compares every variable with what
    was saved, trains one step and checkpoints into ``work/back`` for the other backend to read."""
    from cyclegan_keras.run.checkpoint import restore_checkpoint, save_checkpoint

    model = tiny_cyclegan()
    epoch = restore_checkpoint(model, os.path.join(work, "written"))
    saved = dict(np.load(os.path.join(work, "expected.npz")))
    restored = state_arrays(model)
    differences = {
        key: float(np.max(np.abs(restored[key].astype("float64") - saved[key].astype("float64")), initial=0))
        for key in saved
    }
    model.train_on_batch(_images(3, (1, 16, 16, 3)), _images(4, (1, 16, 16, 3)))
    save_checkpoint(model, os.path.join(work, "back"), epoch + 1)
    np.savez(os.path.join(work, "back.npz"), **state_arrays(model))
    return {"epoch": epoch, "keys_missing": sorted(set(saved) - set(restored)), "max_difference": differences}


def mixed_precision() -> dict:
    """The final loss of two steps of the small CycleGAN under each mixed policy this backend trains
    in on a CPU (PyTorch's CPU convolutions have no float16 gradients)."""
    policies = ["mixed_bfloat16"] + (["mixed_float16"] if keras.backend.backend() != "torch" else [])
    found = {}
    for policy in policies:
        keras.config.set_dtype_policy(policy)
        keras.utils.set_random_seed(0)
        try:
            model = tiny_cyclegan()
            a, b = _images(5, (2, 16, 16, 3)), _images(6, (2, 16, 16, 3))
            history = model.fit(a, y=b, batch_size=1, epochs=1, verbose=0)
            found[policy] = {
                "cycle_aba": history.history["cycle_aba"][-1],
                "compute_dtype": model.generator_ab.layers[1].compute_dtype,
                "optimizer": type(model.generator_optimizer).__name__,
            }
        finally:
            keras.config.set_dtype_policy("float32")
    return found


def official_variants() -> dict:
    """Two steps of a CycleGAN with the variants whose state differs by backend: batch norm (its moving
    statistics update inside the step), grayscale A and RGB B (pools of 1- and 3-channel images), a pixel
    discriminator."""
    from cyclegan_keras.training.config import TrainConfig
    from cyclegan_keras.training.loop import build_cyclegan

    config = TrainConfig(generator="resnet_6blocks", ngf=4, ndf=4, crop_size=16, load_size=16, norm="batch",
                         netd="pixel", input_nc=1, output_nc=3, lambda_identity=0, pool_size=2)  # fmt: skip
    model = build_cyclegan(config)
    norm = model.generator_ab.get_layer("norm_in")
    before = keras.ops.convert_to_numpy(norm.moving_mean).copy()
    a, b = _images(7, (2, 16, 16, 1)), _images(8, (2, 16, 16, 3))
    history = model.fit(a, y=b, batch_size=1, epochs=1, verbose=0)
    return {
        "moving_mean_change": float(np.abs(keras.ops.convert_to_numpy(norm.moving_mean) - before).max()),
        "losses_finite": all(np.isfinite(values[-1]) for values in history.history.values()),
        "pool_channels": [int(pool.images.shape[-1]) for pool in (model.pool_a, model.pool_b)],
    }


def keras_file_from_tensorflow(work: str) -> float:
    """The largest difference between TensorFlow's outputs of ``work/generator.keras`` (saved there with
    the inputs and outputs in ``work/generator.npz``) and this backend's."""
    saved = np.load(os.path.join(work, "generator.npz"))
    generator = keras.models.load_model(os.path.join(work, "generator.keras"), safe_mode=True)
    ours = keras.ops.convert_to_numpy(generator(saved["inputs"], training=False))
    return float(np.max(np.abs(ours - saved["outputs"])))


def tiled_translation(work: str) -> float:
    """The largest difference between TensorFlow's whole-image outputs of ``work/generator.keras`` and
    this backend's translation of the same inputs in 8 px tiles with exact statistics; and between a
    U-Net's whole call here and its 32 px tiles (skips, transposed convolutions' crops)."""
    from cyclegan_keras import unet_generator
    from cyclegan_keras.deploy.tiling import TiledGenerator

    saved = np.load(os.path.join(work, "generator.npz"))
    tiled = TiledGenerator(keras.models.load_model(os.path.join(work, "generator.keras"), safe_mode=True))
    gaps = [np.max(np.abs(tiled(x, 8, "exact") - y)) for x, y in zip(saved["inputs"], saved["outputs"])]
    unet = unet_generator(num_downs=5, ngf=4)
    image = np.random.default_rng(3).uniform(-1, 1, (64, 96, 3)).astype("float32")
    whole = keras.ops.convert_to_numpy(unet(image[None], training=False))[0]
    gaps.append(np.max(np.abs(TiledGenerator(unet)(image, 32, "exact") - whole)))
    return float(max(gaps))


def _other_layers() -> keras.Model:
    """A generator of the layers the tiling engine takes beyond ResNet's and U-Net's: a learned and a
    per-channel instance norm, an 8-bit file's norm, leaky ReLU, sigmoid, zero padding and cropping, and
    a dropout beside the tensor it passes on."""
    from cyclegan_keras.networks.layers import InstanceNormalization, SignSplitInstanceNormalization

    inputs = keras.Input((None, None, 3))
    x = keras.layers.ZeroPadding2D(1)(inputs)
    x = keras.layers.Conv2D(6, 3, activation="sigmoid")(x)
    x = InstanceNormalization(epsilon=[1e-3] * 6, center=True, scale=True)(x)
    x = keras.layers.LeakyReLU(0.3)(x)
    # A ReLU after an identity (dropout at inference) whose input the sum still reads: no ReLU in place.
    x = keras.layers.Add()([keras.layers.ReLU()(keras.layers.Dropout(0.5)(x)), x])
    x = keras.layers.Cropping2D(1)(keras.layers.ZeroPadding2D(1)(x))
    x = SignSplitInstanceNormalization()(x)
    outputs = keras.layers.Conv2D(3, 1, activation="tanh")(x)
    model = keras.Model(inputs, outputs)
    for weight in model.weights:  # gains and offsets away from their 1 and 0
        weight.assign(weight + np.random.default_rng(0).normal(0, 0.3, weight.shape).astype("float32"))
    return model


def compiled_inference(work: str) -> dict:
    """The largest differences between the runner's compiled whole-photo call (``deploy.forward``) and
    an eager call of the same generator (a ResNet and a U-Net), and between it and TensorFlow's outputs
    of ``work/generator.keras``."""
    from cyclegan_keras import Style, resnet_generator, unet_generator
    from cyclegan_keras.deploy.forward import inference_call
    from cyclegan_keras.deploy.tiling import TiledGenerator

    gaps = {}
    for name, generator, shape in (
        ("resnet", resnet_generator(2, ngf=4), (2, 28, 36, 3)),
        ("unet", unet_generator(5, ngf=4), (1, 64, 96, 3)),
        ("batch_norm", resnet_generator(1, ngf=4, style=Style(norm="batch")), (1, 20, 24, 3)),
        ("other_layers", _other_layers(), (2, 12, 16, 3)),
    ):
        images = _images(11, shape)
        eager = keras.ops.convert_to_numpy(generator(images, training=False))
        compiled = inference_call(generator, TiledGenerator(generator), compile_from=0)
        gaps[name] = float(np.max(np.abs(compiled(images) - eager)))
    if keras.backend.backend() == "torch":
        # The norms' sums of squares through a buffer of 12 rows: many parts, a short last one.
        from cyclegan_keras.deploy import torch_native

        generator, images = resnet_generator(2, ngf=4), _images(12, (2, 28, 36, 3))
        eager = keras.ops.convert_to_numpy(generator(images, training=False))
        squares, torch_native._SQUARES = torch_native._SQUARES, 12 * 16
        try:
            compiled = inference_call(generator, TiledGenerator(generator), compile_from=0)
            gaps["squares_in_parts"] = float(np.max(np.abs(compiled(images) - eager)))
        finally:
            torch_native._SQUARES = squares
        # A residual block of 128 channels: its two 3x3 convolutions as Winograd's, at 5 x 7 (odd sizes).
        generator, images = resnet_generator(1, ngf=32), _images(13, (1, 20, 28, 3))
        eager = keras.ops.convert_to_numpy(generator(images, training=False))
        compiled = inference_call(generator, TiledGenerator(generator), compile_from=0)
        gaps["winograd"] = float(np.max(np.abs(compiled(images) - eager)))
        convs = [layer for layer in generator.layers if isinstance(layer, keras.layers.Conv2D)]
        gaps["winograd_layers"] = sum(torch_native._winograd(c, torch_native._kernel(c)[0]) for c in convs)
    saved = np.load(os.path.join(work, "generator.npz"))
    generator = keras.models.load_model(os.path.join(work, "generator.keras"), safe_mode=True)
    compiled = inference_call(generator, TiledGenerator(generator), compile_from=0)
    gaps["from_tensorflow"] = float(np.max(np.abs(compiled(saved["inputs"]) - saved["outputs"])))
    return gaps


def few_step_run(work: str, data_dir: str) -> dict:
    """A two-epoch run through the command line (the Python input pipeline, sample grids, checkpoints)."""
    from cyclegan_keras.cli import main

    out = os.path.join(work, "run")
    args = ["train", "--data-dir", data_dir, "--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4",
            "--netd", "n_layers", "--n-layers-d", "2",
            "--load-size", "36", "--crop-size", "32", "--num-samples", "1",
            "--pool-size", "2", "--epochs", "2", "--epochs-decay", "0", "--steps-per-epoch", "2",
            "--out", out, "--verbose", "2"]  # fmt: skip
    if keras.backend.backend() == "torch":
        args.append("--jit-compile")  # said in one line, and the step runs uncompiled
    said = io.StringIO()
    home = os.path.join(work, "home")
    os.environ["CYCLEGAN_KERAS_HOME"] = home  # where JAX keeps the compiled step
    with contextlib.redirect_stdout(said):
        status = main(args)
    compiled = os.path.join(home, "jax")
    return {
        "exit": status,
        "files": sorted(os.listdir(out)),
        "samples": sorted(os.listdir(f"{out}/samples")),
        "jit_note": [line for line in said.getvalue().splitlines() if line.startswith("--jit-compile")],
        "compiled_steps": len(os.listdir(compiled)) if os.path.isdir(compiled) else 0,
    }


def translation_size() -> dict:
    """The shapes ``predict`` (of a model not built yet) and ``translate`` give a 30 x 34 batch, how
    many small photos ``translate`` takes at once (side by side on PyTorch on a CPU), and how far five
    photos taken together are from each alone."""
    images = _images(9, (2, 30, 34, 3))
    from cyclegan_keras import CycleGAN, patchgan_discriminator, resnet_generator

    model = CycleGAN(
        resnet_generator(1, ngf=4), resnet_generator(1, ngf=4), patchgan_discriminator(n_layers=2, ndf=4),
        patchgan_discriminator(n_layers=2, ndf=4), pool_size=2,
    )  # fmt: skip
    from cyclegan_keras.deploy.runners import KerasRunner, streams

    runner = KerasRunner(model.generator_ab, max_memory="4G")
    photos = [np.random.default_rng(k).integers(0, 256, (40, 52, 3), dtype=np.uint8) for k in range(5)]
    together, alone = runner.translate_many(photos), [runner(photo) for photo in photos]
    apart = max(int(np.abs(a.astype(int) - b.astype(int)).max()) for a, b in zip(together, alone))
    return {
        "predict": list(model.predict(images, verbose=0).shape),
        "translate": list(keras.ops.convert_to_numpy(model.translate(images, "b_to_a")).shape),
        "batch": runner.batch_size_for(64, 64),
        "streams": streams(),
        "together_vs_alone": apart,
    }


def bfloat16_without_onednn() -> dict:
    """PyTorch only: two mixed_bfloat16 steps with oneDNN switched off, so that convolutions take
    PyTorch's reference path, as on a CPU without bfloat16 instructions."""
    import torch

    from cyclegan_keras.training.steps.torch_bfloat16 import onednn_computes_bfloat16

    with torch.backends.mkldnn.flags(enabled=False):
        fallback = not onednn_computes_bfloat16()
        found = mixed_precision()["mixed_bfloat16"]
    return {"fallback_path": fallback, **found}


def lean_training_call() -> dict:
    """PyTorch: the official networks' lean training call (``training.steps.torch_call``) exists, and
    its outputs and weight gradients against Keras' call: the largest differences."""
    import torch

    from cyclegan_keras import patchgan_discriminator, resnet_generator
    from cyclegan_keras.networks.layers import InstanceNormalization
    from cyclegan_keras.training.steps.torch_call import training_call

    inputs = keras.Input((None, None, 3))
    norm = InstanceNormalization(center=True, scale=True)
    x = norm(keras.layers.Conv2D(8, 3, activation="relu")(inputs))
    learned = keras.Model(inputs, keras.layers.Conv2D(3, 3)(x))
    rng = np.random.default_rng(6)
    norm.gamma.assign(rng.uniform(0.5, 2.0, 8).astype("float32"))
    norm.beta.assign(rng.uniform(-1.0, 1.0, 8).astype("float32"))
    single = InstanceNormalization(center=True)  # over a 1 x 1 image: its offset, as Keras' layer gives
    one_pixel = keras.Model(inputs, single(keras.layers.Conv2D(4, 32)(inputs)))
    single.beta.assign(rng.uniform(-1.0, 1.0, 4).astype("float32"))
    gaps = {}
    for name, network in (
        ("generator", resnet_generator(2, ngf=8)),
        ("discriminator", patchgan_discriminator(2, ndf=8)),
        ("learned_norm", learned),  # an instance norm's own gain and offset, and their gradients
        ("one_pixel_norm", one_pixel),
    ):
        images = torch.from_numpy(_images(5, (2, 32, 32, 3)))
        lean = training_call(network)
        results = []
        for call in (functools.partial(network, training=True), lean):
            out = call(images)
            grads = torch.autograd.grad(out.square().mean(), [v.value for v in network.trainable_variables])
            results.append((out.detach().numpy(), [g.numpy() for g in grads]))
        (keras_out, keras_grads), (lean_out, lean_grads) = results
        gaps[name] = float(np.max(np.abs(keras_out - lean_out)))
        # Against the largest gradient of the network: a bias before an instance norm has a gradient of
        # zero, which both calls give as round-off of a different size.
        scale = max(float(np.max(np.abs(g))) for g in keras_grads)
        gaps[name + "_grads"] = (
            max(float(np.max(np.abs(a - b))) for a, b in zip(keras_grads, lean_grads)) / scale
        )
    return gaps


def grouped_adam() -> dict:
    """PyTorch: ``OfficialAdam``'s update, which runs over cache-sized groups of variables on a CPU,
    against ``torch.optim.Adam`` over five steps (variables larger and smaller than a group): the
    number of groups, the variables' order through them, and the updates' difference relative to their
    size."""
    import torch

    from cyclegan_keras import OfficialAdam
    from cyclegan_keras.training.steps import torch as torch_step

    rng = np.random.default_rng(7)
    shapes = [(3, 3, 64, 256), (64,), (7, 7, 3, 64), (4, 4, 256, 512), (256,), (3, 3, 256, 256), (3,)]
    starts = [(rng.standard_normal(shape) * 1e-2).astype("float32") for shape in shapes]  # round-off < moves
    grads = [[(rng.standard_normal(shape) * 1e-3).astype("float32") for shape in shapes] for _ in range(5)]
    variables = [keras.Variable(start.copy()) for start in starts]
    reference = [torch.tensor(start.copy(), requires_grad=True) for start in starts]
    ours, theirs = OfficialAdam(2e-4, 0.5, 0.999, 1e-8), torch.optim.Adam(reference, 2e-4, (0.5, 0.999), 1e-8)
    used = []  # the groups the update ran over
    grouping = torch_step._groups
    torch_step._groups = lambda tensors, limit: used.append(grouping(tensors, limit)) or used[-1]
    try:
        for step in grads:
            ours.apply_gradients([(torch.from_numpy(g), v) for g, v in zip(step, variables)])
            for weight, gradient in zip(reference, step):
                weight.grad = torch.from_numpy(gradient)
            theirs.step()
    finally:
        torch_step._groups = grouping
    theirs_moves = np.concatenate([(r.detach().numpy() - s).ravel() for r, s in zip(reference, starts)])
    our_moves = np.concatenate(
        [(keras.ops.convert_to_numpy(v) - s).ravel() for v, s in zip(variables, starts)]
    )
    gap = np.linalg.norm(our_moves - theirs_moves) / np.linalg.norm(theirs_moves)
    return {"groups": len(used[-1]), "order": [i for group in used[-1] for i in group], "gap": float(gap)}


def torch_order_kernels(work: str) -> dict:
    """PyTorch: after training steps, the convolution kernels of the lean call and their Adam moments are
    stored in PyTorch's order (``training.steps.torch.store_in_torch_order``); the weights against the
    same steps with Keras' layout kept, a ``.keras`` file's round trip and an ``assign``: differences."""
    from cyclegan_keras.deploy.torch_native import plain_conv
    from cyclegan_keras.training.steps import torch as torch_step

    def trained(store):
        keras.utils.set_random_seed(11)
        model = tiny_cyclegan()
        kept = torch_step._store
        torch_step._store = store
        try:
            for seed in range(3):
                model.train_on_batch(_images(20 + seed, (1, 16, 16, 3)), _images(30 + seed, (1, 16, 16, 3)))
        finally:
            torch_step._store = kept
        return model

    model, kept_layout = trained(torch_step._store), trained(lambda variable: None)
    slots = []
    for network, optimizer in ((model.generator_ab, model.generator_optimizer),
                               (model.discriminator_a, model.discriminator_optimizer)):  # fmt: skip
        for layer in network.layers:
            if plain_conv(layer):
                index = optimizer._get_variable_index(layer.kernel)
                slots += [layer.kernel, optimizer._momentums[index], optimizer._velocities[index]]
    ours, theirs = state_arrays(model), state_arrays(kept_layout)
    gaps = {"stored": sum(v.value.permute(3, 2, 0, 1).is_contiguous() for v in slots), "slots": len(slots)}
    gaps["against_keras_layout"] = max(float(np.max(np.abs(ours[k] - theirs[k]), initial=0)) for k in ours)
    path = os.path.join(work, "torch_order.keras")
    model.generator_ab.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    gaps["keras_file"] = max(
        float(np.max(np.abs(keras.ops.convert_to_numpy(a) - keras.ops.convert_to_numpy(b))))
        for a, b in zip(model.generator_ab.weights, loaded.weights)
    )
    kernel = slots[0]
    values = np.random.default_rng(5).standard_normal(kernel.shape).astype("float32")
    kernel.assign(values)
    gaps["assign"] = float(np.max(np.abs(keras.ops.convert_to_numpy(kernel) - values)))
    gaps["assign_keeps_order"] = bool(kernel.value.permute(3, 2, 0, 1).is_contiguous())
    return gaps


def run_checks(work: str, data_dir: str, names: list[str] | None = None) -> dict:
    """Every check (or those ``names``), each on its own: one that raises is recorded with its traceback,
    and the rest run."""
    checks = {
        "parity": one_step_against_official,
        "pool": pool_behaviour,
        "checkpoint": lambda: checkpoint_round_trip(work),
        "run": lambda: few_step_run(work, data_dir),
        "mixed": mixed_precision,
        "variants": official_variants,
        "keras_file": lambda: keras_file_from_tensorflow(work),
        "tiled": lambda: tiled_translation(work),
        "translation_size": translation_size,
        "compiled_inference": lambda: compiled_inference(work),
        "video_statistics": statistics_gaps,
    }
    if keras.backend.backend() == "torch":
        checks["bfloat16_reference_path"] = bfloat16_without_onednn
        checks["lean_training"] = lean_training_call
        checks["grouped_adam"] = grouped_adam
        checks["torch_order"] = lambda: torch_order_kernels(work)
    results = {"backend": keras.backend.backend()}
    for name, check in checks.items():
        if names is not None and name not in names:
            continue
        start = time.perf_counter()
        try:
            results[name] = {"value": check()}
        except Exception:
            results[name] = {"error": traceback.format_exc()}
        results[name]["seconds"] = round(time.perf_counter() - start, 1)  # where the suite's time goes
    results["tensorflow_imported"] = "tensorflow" in sys.modules and hasattr(
        sys.modules["tensorflow"], "constant"
    )
    return results


if __name__ == "__main__":
    result_path, work, data_dir, *names = sys.argv[1:]
    with open(result_path, "w") as file:
        json.dump(run_checks(work, data_dir, names[0].split(",") if names else None), file)
