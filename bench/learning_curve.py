"""Does this package learn horse -> zebra as soon and as often as the official recipe? Curves over seeds.

Trains the same task with this package (``cyclegan_keras.train``, the code path of ``cyclegan-keras
train``, with its data pipeline) and with the official recipe in PyTorch (the test suite's reference
networks, the official unaligned sampling: a shuffled A per epoch and a random B per step, Pillow
bicubic resize, random crop and flip, the official image pool with Python's ``random``, Adam 2e-4 /
0.5 / 0.999 / 1e-8), on ``../shared/data/horse2zebra`` at 64 px crops (load 72), ResNet 6 blocks,
ngf 32, batch 1, the official defaults otherwise. Seed ``s`` starts both implementations from the
SAME initial weights (Keras' initialisation for that seed, copied into PyTorch), so that each seed
is a pair.

Every ``--eval-every`` steps both generators translate the test split, and an independent judge scores
them: a small horse-vs-zebra classifier trained here on the training photos. In its features,
``score = 1 - KID(translated, real target) / KID(real source, real target)`` (0: still horses, 1: as
close to the test zebras as real zebras are) and ``share`` = the fraction the judge calls the target.

Hours on 2 cores, so it runs in the background and resumes: per seed, from the last finished epoch.

    python bench/learning_curve.py run --seeds 0 1 2 3 4       # both implementations, side by side
    python bench/learning_curve.py worker --impl torch --seeds 3  # one implementation, one process
    python bench/learning_curve.py report                       # docs/learning.md and the plot

Results (small JSON files, committed) go to ``bench/results/learning_curve``; checkpoints to
``$CYCLEGAN_KERAS_HOME/learning_curve`` (default ``~/.cache/cyclegan-keras``).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import subprocess
import sys
import time

import numpy as np
from PIL import Image

REPO = pathlib.Path(__file__).resolve().parents[1]
# Another copy of the photos (a machine without ../shared) via LEARNING_CURVE_DATA.
DATA = pathlib.Path(os.environ.get("LEARNING_CURVE_DATA", REPO.parent / "shared" / "data" / "horse2zebra"))
RESULTS = REPO / "bench" / "results" / "learning_curve"
WORK = (
    pathlib.Path(os.environ.get("CYCLEGAN_KERAS_HOME", "~/.cache/cyclegan-keras")).expanduser()
    / "learning_curve"
)
IMPLS = ("keras", "torch")
SIZE, LOAD, BLOCKS, NGF = 64, 72, 6, 32
DIRECTIONS = {"ab": ("testA", "testB"), "ba": ("testB", "testA")}
JUDGE_EPOCHS = 60


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(threads)


def _files(split: str) -> list[pathlib.Path]:
    return sorted(p for p in (DATA / split).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))


def _resized(split: str, size: int) -> np.ndarray:
    return np.stack(
        [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC)) for p in _files(split)]
    )


def _atomic_json(path: pathlib.Path, data) -> None:
    staging = path.with_suffix(".tmp")
    staging.write_text(json.dumps(data, indent=1))
    os.replace(staging, path)


# -- the judge --------------------------------------------------------------------------------------


def _judge_network():
    from torch import nn

    layers, channels = [], 3
    for width in (32, 64, 128, 128):
        layers += [nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.BatchNorm2d(width), nn.ReLU()]
        channels = width
    features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return nn.ModuleDict({"features": features, "head": nn.Linear(channels, 2)})


def _judge_path() -> pathlib.Path:
    return RESULTS / "judge.pt"


def prepare_judge() -> None:
    """Trains the horse-vs-zebra judge on the training photos, once.

    Load 72, crop 64, flips, and brightness/contrast/saturation jitter (so that colour casts, which
    early generators make, are not what it reads); AdamW with a cosine schedule. It classifies 91% of
    the test horses and 86% of the test zebras correctly (``report`` prints the figures).
    """
    import torch

    if _judge_path().is_file():
        return
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = np.concatenate([_resized("trainA", LOAD), _resized("trainB", LOAD)])
    labels = np.array([0] * len(_files("trainA")) + [1] * len(_files("trainB")))
    net = _judge_network()
    batches = -(-len(images) // 32)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, JUDGE_EPOCHS * batches)
    for _ in range(JUDGE_EPOCHS):
        order = rng.permutation(len(images))
        net.train()
        for start in range(0, len(order), 32):
            idx = order[start : start + 32]
            batch = []
            for i in idx:
                y, x = rng.integers(0, LOAD - SIZE + 1, 2)
                crop = images[i, y : y + SIZE, x : x + SIZE].astype(np.float32)
                crop = crop[:, ::-1] if rng.random() < 0.5 else crop
                mean = crop.mean()
                crop = (crop - mean) * rng.uniform(0.7, 1.3) + mean * rng.uniform(0.7, 1.3)
                gray = crop.mean(axis=-1, keepdims=True)
                batch.append(np.clip(gray + (crop - gray) * rng.uniform(0.5, 1.5), 0, 255))
            logits = net["head"](net["features"](_tensor(np.stack(batch))))
            loss = torch.nn.functional.cross_entropy(logits, torch.as_tensor(labels[idx]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    net.eval()
    RESULTS.mkdir(parents=True, exist_ok=True)
    staging = _judge_path().with_suffix(".tmp")
    torch.save(net.state_dict(), staging)
    os.replace(staging, _judge_path())


def _tensor(pixels: np.ndarray):
    import torch

    return (
        torch.as_tensor(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)), dtype=torch.float32) / 127.5 - 1
    )


class Judge:
    """Scores translated test images: KID-based ``score`` and the judged-target ``share``."""

    def __init__(self):
        import torch

        from cyclegan_keras.evaluation.metrics import kernel_inception_distance

        self._kid = kernel_inception_distance
        self.net = _judge_network()
        self.net.load_state_dict(torch.load(_judge_path(), weights_only=True))
        self.net.eval()
        self.test = {split: _resized(split, SIZE) for split in ("testA", "testB")}
        self.features = {split: self.embed(pixels)[0] for split, pixels in self.test.items()}
        self.baseline = {
            d: self._kid(self.features[s], self.features[t], subset_size=1000)[0]
            for d, (s, t) in DIRECTIONS.items()
        }

    def embed(self, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features ``[N, 128]`` and zebra probabilities ``[N]`` of ``uint8`` images."""
        import torch

        with torch.no_grad():
            features = torch.cat(
                [self.net["features"](_tensor(pixels[i : i + 64])) for i in range(0, len(pixels), 64)]
            )
            zebra = torch.softmax(self.net["head"](features), dim=1)[:, 1]
        return features.numpy().astype(np.float64), zebra.numpy()

    def score(self, direction: str, translated: np.ndarray) -> dict:
        features, zebra = self.embed(translated)
        target = DIRECTIONS[direction][1]
        kid = self._kid(features, self.features[target], subset_size=1000)[0]
        share = float(np.mean(zebra > 0.5)) if target == "testB" else float(np.mean(zebra <= 0.5))
        return {"score": 1.0 - kid / self.baseline[direction], "share": share, "kid": kid}

    def ends(self) -> dict:
        """The scale's ends: the source images themselves, and real target images of the train split."""
        out = {}
        for direction, (source, target) in DIRECTIONS.items():
            train_target = _resized("train" + target[-1], SIZE)
            out[direction] = {
                "real source": self.score(direction, self.test[source]),
                "real target (train split)": self.score(direction, train_target),
            }
        return out


# -- shared initial weights -------------------------------------------------------------------------


def _keras_config(seed: int, steps: int):
    from cyclegan_keras.training.loop import TrainConfig

    epoch_steps = max(len(_files("trainA")), len(_files("trainB")))
    if steps % epoch_steps:
        raise SystemExit(f"--steps must be a multiple of the epoch's {epoch_steps} steps")
    return TrainConfig(
        data_dir=str(DATA),
        generator=f"resnet_{BLOCKS}blocks",
        ngf=NGF,
        load_size=LOAD,
        crop_size=SIZE,
        n_epochs=steps // epoch_steps,  # the official 100 + 100 epochs keep the rate constant this long
        n_epochs_decay=0,
        seed=seed,
        out=str(WORK / f"keras-seed{seed}"),
        sample_every=steps // epoch_steps,
        num_samples=2,
    )


NETWORKS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")


def prepare_init(seed: int, steps: int) -> pathlib.Path:
    """The four networks' initial weights of ``cyclegan_keras.train`` for ``seed``, in official layout."""
    path = WORK / f"init-seed{seed}.npz"
    if path.is_file():
        return path
    import keras

    from cyclegan_keras.networks.official import official_keys
    from cyclegan_keras.training.loop import build_cyclegan

    config = _keras_config(seed, steps)
    keras.utils.set_random_seed(config.seed)  # as train() does before it builds the model
    model = build_cyclegan(config)
    arrays = {}
    for name in NETWORKS:
        network = getattr(model, name)
        for layer, prefix in official_keys(network).items():
            kernel, bias = network.get_layer(layer).get_weights()
            arrays[f"{name}/{prefix}.weight"] = kernel.transpose(3, 2, 0, 1)
            arrays[f"{name}/{prefix}.bias"] = bias
    WORK.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.stem + ".tmp.npz")
    np.savez(staging, **arrays)
    os.replace(staging, path)
    return path


# -- the runs ---------------------------------------------------------------------------------------


def _result_path(impl: str, seed: int) -> pathlib.Path:
    return RESULTS / f"{impl}-seed{seed}.json"


def _load_result(impl: str, seed: int, resumed_step: int) -> dict:
    path = _result_path(impl, seed)
    result = json.loads(path.read_text()) if path.is_file() else {"impl": impl, "seed": seed, "evals": []}
    # Evaluations after the checkpoint are repeated by the resumed run.
    result["evals"] = [e for e in result["evals"] if e["step"] <= resumed_step]
    return result


def run_keras(seed: int, steps: int, eval_every: int, judge: Judge) -> None:
    import keras

    from cyclegan_keras.data.images import to_float, to_uint8
    from cyclegan_keras.run.checkpoint import latest_checkpoint
    from cyclegan_keras.training.loop import train

    config = _keras_config(seed, steps)
    found = latest_checkpoint(os.path.join(config.out, "checkpoints"))
    epoch_steps = steps // config.n_epochs
    start_step = found[1] * epoch_steps if found else 0
    result = _load_result("keras", seed, start_step)
    init = np.load(WORK / f"init-seed{seed}.npz")
    sources = {d: to_float(judge.test[s]) for d, (s, _) in DIRECTIONS.items()}

    class Evaluate(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.epoch, self.clock = 0, time.perf_counter()
            if found is None:  # the pair's shared start: the same weights as the PyTorch run
                kernel = self.model.generator_ab.get_layer("conv_in").get_weights()[0]
                stored = init["generator_ab/model.1.weight"].transpose(2, 3, 1, 0)
                if not np.array_equal(kernel, stored):
                    raise RuntimeError("train() did not start from the weights prepared for this seed")

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            step = self.epoch * epoch_steps + batch + 1
            if step % eval_every:
                return
            entry = {"step": step, "seconds_per_step": (time.perf_counter() - self.clock) / eval_every}
            for direction, generator in (("ab", self.model.generator_ab), ("ba", self.model.generator_ba)):
                x = sources[direction]
                out = np.concatenate(
                    [
                        keras.ops.convert_to_numpy(generator(x[i : i + 20], training=False))
                        for i in range(0, len(x), 20)
                    ]
                )
                entry[direction] = judge.score(direction, to_uint8(out))
            entry["losses"] = {k: float(v) for k, v in (logs or {}).items()}
            result["evals"].append(entry)
            _atomic_json(_result_path("keras", seed), result)
            print(
                f"keras seed {seed} step {step}: ab {entry['ab']['score']:.3f} ba {entry['ba']['score']:.3f}",
                flush=True,
            )
            self.clock = time.perf_counter()

    train(config, resume=found is not None, verbose=0, callbacks=[Evaluate()])
    result["done"] = True
    _atomic_json(_result_path("keras", seed), result)


class _OfficialPool:
    """The official ``ImagePool`` (``util/image_pool.py``), with Python's ``random`` as there."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images):
        import torch

        if self.size == 0:
            return images
        out = []
        for image in images:
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                index = random.randint(0, self.size - 1)
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def _official_transform(path: pathlib.Path, rng: np.random.Generator) -> np.ndarray:
    # transforms.Resize([72, 72], BICUBIC) -> RandomCrop(64) -> RandomHorizontalFlip, on PIL images.
    pixels = np.asarray(Image.open(path).convert("RGB").resize((LOAD, LOAD), Image.BICUBIC))
    y, x = rng.integers(0, LOAD - SIZE + 1, 2)
    crop = pixels[y : y + SIZE, x : x + SIZE]
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def run_torch(seed: int, steps: int, eval_every: int, judge: Judge, device: str = "cpu") -> None:
    import torch
    from torch import nn

    # float32 on a GPU too: TF32 matmuls and convolutions would be a difference of their own.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    sys.path.insert(0, str(REPO / "tests"))
    from torch_reference import NLayerDiscriminator, ResnetGenerator

    files_a, files_b = _files("trainA"), _files("trainB")
    epoch_steps = max(len(files_a), len(files_b))
    nets = {
        "generator_ab": ResnetGenerator(NGF, BLOCKS),
        "generator_ba": ResnetGenerator(NGF, BLOCKS),
        "discriminator_a": NLayerDiscriminator(64, 3),
        "discriminator_b": NLayerDiscriminator(64, 3),
    }
    init = np.load(WORK / f"init-seed{seed}.npz")
    for name, net in nets.items():
        net.load_state_dict(
            {k.split("/", 1)[1]: torch.as_tensor(init[k]) for k in init.files if k.startswith(name + "/")}
        )
        net.to(device)
    g_params = list(nets["generator_ab"].parameters()) + list(nets["generator_ba"].parameters())
    d_params = list(nets["discriminator_a"].parameters()) + list(nets["discriminator_b"].parameters())
    opt_g = torch.optim.Adam(g_params, lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    opt_d = torch.optim.Adam(d_params, lr=2e-4, betas=(0.5, 0.999), eps=1e-8)
    pool_a, pool_b = _OfficialPool(), _OfficialPool()  # generated A images, generated B images
    random.seed(seed)
    torch.manual_seed(seed)
    run_dir = WORK / f"torch-seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = run_dir / "checkpoint.pt"
    start_epoch = 0
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location=device, weights_only=False)  # ours: pools, RNG too
        for name, net in nets.items():
            net.load_state_dict(state[name])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        pool_a.images, pool_b.images = state["pool_a"], state["pool_b"]
        random.setstate(state["random"])
        start_epoch = state["epoch"]
    result = _load_result("torch", seed, start_epoch * epoch_steps)
    result["device"] = torch.cuda.get_device_name(device) if device.startswith("cuda") else "cpu"
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    g_ab, g_ba, d_a, d_b = (nets[k] for k in NETWORKS)
    sources = {d: _tensor(judge.test[s]).to(device) for d, (s, _) in DIRECTIONS.items()}

    def gan(scores, real: bool):
        return mse(scores, torch.full_like(scores, 1.0 if real else 0.0))

    clock = time.perf_counter()
    for epoch in range(start_epoch, steps // epoch_steps):
        rng = np.random.default_rng([seed, epoch])
        order = rng.permutation(epoch_steps)  # DataLoader(shuffle=True) over max(|A|, |B|) indices
        for batch, index in enumerate(order):
            real_a = _tensor(_official_transform(files_a[index % len(files_a)], rng)[None]).to(device)
            file_b = files_b[rng.integers(0, len(files_b))]  # drawn after A's crop and flip, as before
            real_b = _tensor(_official_transform(file_b, rng)[None]).to(device)
            # optimize_parameters of models/cycle_gan_model.py; netG_A = g_ab, netD_A judges B = d_b.
            fake_b = g_ab(real_a)
            rec_a = g_ba(fake_b)
            fake_a = g_ba(real_b)
            rec_b = g_ab(fake_a)
            d_a.requires_grad_(False)
            d_b.requires_grad_(False)
            opt_g.zero_grad()
            loss_g = (
                l1(g_ab(real_b), real_b) * 10 * 0.5
                + l1(g_ba(real_a), real_a) * 10 * 0.5
                + gan(d_b(fake_b), True)
                + gan(d_a(fake_a), True)
                + l1(rec_a, real_a) * 10
                + l1(rec_b, real_b) * 10
            )
            loss_g.backward()
            opt_g.step()
            d_a.requires_grad_(True)
            d_b.requires_grad_(True)
            opt_d.zero_grad()
            pooled_b = pool_b.query(fake_b)
            loss_d_b = 0.5 * (gan(d_b(real_b), True) + gan(d_b(pooled_b.detach()), False))
            loss_d_b.backward()
            pooled_a = pool_a.query(fake_a)
            loss_d_a = 0.5 * (gan(d_a(real_a), True) + gan(d_a(pooled_a.detach()), False))
            loss_d_a.backward()
            opt_d.step()
            step = epoch * epoch_steps + batch + 1
            if step % eval_every == 0:
                entry = {"step": step, "seconds_per_step": (time.perf_counter() - clock) / eval_every}
                with torch.no_grad():
                    for direction, generator in (("ab", g_ab), ("ba", g_ba)):
                        out = generator(sources[direction]).cpu().numpy().transpose(0, 2, 3, 1)
                        pixels = np.clip(np.rint((out + 1.0) * 127.5), 0, 255).astype(np.uint8)
                        entry[direction] = judge.score(direction, pixels)
                entry["losses"] = {
                    k: float(v.detach())
                    for k, v in (("loss_g", loss_g), ("disc_a", loss_d_a), ("disc_b", loss_d_b))
                }
                result["evals"].append(entry)
                _atomic_json(_result_path("torch", seed), result)
                print(
                    f"torch seed {seed} step {step}: ab {entry['ab']['score']:.3f} "
                    f"ba {entry['ba']['score']:.3f}",
                    flush=True,
                )
                clock = time.perf_counter()
        state = {name: net.state_dict() for name, net in nets.items()}
        state.update(
            opt_g=opt_g.state_dict(),
            opt_d=opt_d.state_dict(),
            pool_a=pool_a.images,
            pool_b=pool_b.images,
            random=random.getstate(),
            epoch=epoch + 1,
        )
        staging = checkpoint.with_suffix(".tmp")
        torch.save(state, staging)
        os.replace(staging, checkpoint)
    result["done"] = True
    _atomic_json(_result_path("torch", seed), result)


def worker(
    impl: str, seeds: list[int], steps: int, eval_every: int, threads: int, device: str = "cpu"
) -> None:
    if impl == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    _set_threads(threads)
    judge = Judge()
    for seed in seeds:
        path = _result_path(impl, seed)
        if path.is_file() and json.loads(path.read_text()).get("done"):
            continue
        if impl == "keras":
            run_keras(seed, steps, eval_every, judge)
        else:
            run_torch(seed, steps, eval_every, judge, device)


def run(seeds: list[int], steps: int, eval_every: int, threads: int) -> None:
    """Prepares the judge and the shared initial weights, then both implementations side by side."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _set_threads(threads)
    prepare_judge()
    for seed in seeds:
        prepare_init(seed, steps)
    WORK.mkdir(parents=True, exist_ok=True)
    common = [
        "--seeds",
        *map(str, seeds),
        "--steps",
        str(steps),
        "--eval-every",
        str(eval_every),
        "--threads",
        str(threads),
    ]
    processes = []
    for impl in IMPLS:
        log = open(WORK / f"{impl}.log", "a")
        processes.append(
            subprocess.Popen(
                [sys.executable, __file__, "worker", "--impl", impl, *common],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a worker failed (exit codes {codes}); see {WORK}/*.log")


# -- the report -------------------------------------------------------------------------------------


def _curves(impl: str, folder: pathlib.Path = RESULTS) -> dict[int, dict]:
    out = {}
    for path in sorted(folder.glob(f"{impl}-seed*.json")):
        result = json.loads(path.read_text())
        out[result["seed"]] = result
    return out


def report(out: pathlib.Path, keras_results: pathlib.Path = RESULTS) -> None:
    """Writes the plot and the tables of ``docs/learning.md``'s measured part to ``out`` (markdown);
    the Keras runs' results are read from ``keras_results``. Replaces only an earlier report."""
    plot = out.with_suffix(".png")
    heading = f"![learning curves]({plot.name})"
    ours = out.is_file() and out.read_text().startswith(heading)
    for path in (out, plot):
        if path.exists() and not ours:
            raise SystemExit(f"{path} exists and is not an earlier report; pass --out with a new file name")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    runs = {impl: _curves(impl, keras_results if impl == "keras" else RESULTS) for impl in IMPLS}
    figure, axes = plt.subplots(2, 2, figsize=(11, 7), sharex=True)
    lines = []
    for col, direction in enumerate(DIRECTIONS):
        for row, measure in enumerate(("score", "share")):
            ax = axes[row, col]
            for impl, colour in zip(IMPLS, ("tab:red", "tab:blue")):
                done = [r for r in runs[impl].values() if r.get("done")]  # a running seed would skew means
                if not done:
                    continue
                steps = sorted({e["step"] for r in done for e in r["evals"]})
                table = np.full((len(done), len(steps)), np.nan)
                for i, r in enumerate(done):
                    for e in r["evals"]:
                        table[i, steps.index(e["step"])] = e[direction][measure]
                for r_values in table:
                    ax.plot(steps, r_values, color=colour, alpha=0.25, linewidth=0.8)
                if len(done) > 1:  # the spread over seeds: lowest to highest
                    ax.fill_between(steps, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=colour,
                                    alpha=0.12, linewidth=0)  # fmt: skip
                ax.plot(
                    steps,
                    np.nanmean(table, axis=0),
                    color=colour,
                    linewidth=2,
                    label=f"{impl} (mean of {len(done)} finished seeds)",
                )
            ax.set_title(f"{'A->B' if direction == 'ab' else 'B->A'}: {measure}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("training step")
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(plot, dpi=90)

    lines.append(f"{heading}\n")
    lines.append(
        "| impl | seed | steps | A->B score: last / best / mean after half | share last | "
        "B->A score: last / best / mean after half | s/step | device |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    paired = {d: {} for d in DIRECTIONS}
    for impl in IMPLS:
        for seed, r in sorted(runs[impl].items()):
            if not r["evals"]:
                continue
            last = r["evals"][-1]
            cells = []
            for direction in DIRECTIONS:
                values = [e[direction]["score"] for e in r["evals"]]
                half = [e[direction]["score"] for e in r["evals"] if e["step"] > r["evals"][-1]["step"] / 2]
                cells.append(f"{values[-1]:.3f} / {max(values):.3f} / {np.mean(half):.3f}")
                if r.get("done"):
                    paired[direction].setdefault(seed, {})[impl] = float(np.mean(half))
            speed = np.median([e["seconds_per_step"] for e in r["evals"]])
            lines.append(
                f"| {impl} | {seed} | {last['step']}{'' if r.get('done') else ' (running)'} | "
                f"{cells[0]} | {last['ab']['share']:.2f} | {cells[1]} | {speed:.2f} | "
                f"{r.get('device', 'cpu')} |"
            )
    lines.append("")
    for direction in DIRECTIONS:
        pairs = {s: v for s, v in paired[direction].items() if len(v) == 2}
        if not pairs:
            continue
        diff = np.array([v["keras"] - v["torch"] for v in pairs.values()])
        lines.append(
            f"Paired by seed, {'A->B' if direction == 'ab' else 'B->A'} (mean score over the second "
            f"half of training, keras - torch), seeds {sorted(pairs)}: "
            + ", ".join(f"{d:+.3f}" for d in diff)
            + f"; mean {diff.mean():+.3f}."
        )
        if len(diff) >= 3:
            t = stats.ttest_rel([v["keras"] for v in pairs.values()], [v["torch"] for v in pairs.values()])
            w = stats.wilcoxon(diff)
            lines.append(f"  Paired t-test p = {t.pvalue:.3f}; Wilcoxon signed-rank p = {w.pvalue:.3f}.")
        lines.append("")
    judge = Judge()
    lines.append("Scale's ends (the judge on real images):\n")
    lines.append("| direction | images | score | share judged target |")
    lines.append("|---|---|---|---|")
    for direction, ends in judge.ends().items():
        for name, value in ends.items():
            lines.append(f"| {direction} | {name} | {value['score']:.3f} | {value['share']:.2f} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "worker"):
        sub = commands.add_parser(name)
        sub.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
        sub.add_argument("--steps", type=int, default=6000)
        sub.add_argument("--eval-every", type=int, default=500)
        sub.add_argument("--threads", type=int, default=1)
        if name == "worker":
            sub.add_argument("--impl", choices=IMPLS, required=True)
            sub.add_argument("--device", default="cpu", help="torch only: where it trains, e.g. cuda:0")
    rep = commands.add_parser("report")
    rep.add_argument("--out", type=pathlib.Path, default=REPO / "docs" / "learning_results.md",
                     help="the tables; the plot goes beside it, as .png")  # fmt: skip
    rep.add_argument("--keras-results", type=pathlib.Path, default=RESULTS,
                     help="the Keras runs' JSON files (earlier runs are kept in subfolders)")  # fmt: skip
    args = parser.parse_args()
    if args.command == "run":
        run(args.seeds, args.steps, args.eval_every, args.threads)
    elif args.command == "worker":
        if args.impl == "keras" and args.device != "cpu":
            parser.error("--device is for --impl torch; the Keras runs use this machine's CPU")
        worker(args.impl, args.seeds, args.steps, args.eval_every, args.threads, args.device)
    else:
        report(args.out, args.keras_results)


if __name__ == "__main__":
    main()
