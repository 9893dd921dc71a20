"""What multi-worker training costs: two workers (one core each) against one process, same global batch.

On one 2-core machine this measures overhead, not speed-up: two `--strategy multi_worker` processes,
each pinned to its own core, against one `default` process on both cores, the same global batch of 2,
in one run. A third figure, one process on one core training a batch of 1 (a worker's own share of
the work, with no one to talk to), splits a worker's step into computing and communicating:

    communication and synchronisation share = 1 - (one core, batch 1) / (two workers, batch 2)

    python bench/multi_worker.py                 # 64 px crops, ResNet 6 blocks, ngf 32
    python bench/multi_worker.py --steps 20 --crop 128

Each run trains through ``cyclegan_keras.train`` (the code of ``cyclegan-keras train``) on
``../shared/data/horse2zebra``; the first epoch (tracing, warm-up) and the checkpoints between epochs
are not timed.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "horse2zebra"


def worker(out: str, crop: int, steps: int, epochs: int, batch: int, strategy: str, report: str) -> None:
    """One training process; writes the seconds of each epoch after the first to ``report``."""
    import keras

    from cyclegan_keras.training.loop import TrainConfig, train

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs: list[float] = []

        # From the first step's start to the last step's end: the epoch's checkpoint is not timed.
        def on_train_batch_begin(self, batch, logs=None):
            if batch == 0:
                self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.end = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append(self.end - self.start)

    clock = Clock()
    config = TrainConfig(data_dir=str(DATA), generator="resnet_6blocks", ngf=32, load_size=crop + crop // 8,
                         crop_size=crop, n_epochs=epochs, n_epochs_decay=0, steps_per_epoch=steps,
                         batch_size=batch, strategy=strategy, out=out, num_samples=1,
                         sample_every=epochs + 1)  # fmt: skip
    train(config, verbose=0, callbacks=[clock])
    if report:
        pathlib.Path(report).write_text(json.dumps(clock.epochs[1:]))


def _run(cores: list[list[int]], batch: int, strategy: str, args, root: pathlib.Path) -> float:
    """Seconds per step of processes pinned to ``cores`` (one list of cores per process)."""
    ports = []
    for _ in cores:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    out = tempfile.mkdtemp(dir=root)
    processes = []
    for index, cpus in enumerate(cores):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        if strategy == "multi_worker":
            cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        report = str(root / f"{pathlib.Path(out).name}-{index}.json") if index == 0 else ""
        command = [sys.executable, __file__, "worker", "--out", out, "--crop", str(args.crop), "--steps",
                   str(args.steps), "--epochs", str(args.epochs), "--batch", str(batch), "--strategy",
                   strategy, "--report", report]  # fmt: skip
        processes.append(
            subprocess.Popen(command, env=env, preexec_fn=lambda cpus=cpus: os.sched_setaffinity(0, cpus))
        )
    if any(p.wait() for p in processes):
        raise SystemExit(f"a {strategy} process failed")
    epochs = json.loads((root / f"{pathlib.Path(out).name}-0.json").read_text())
    return sum(epochs) / (len(epochs) * args.steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="bench", choices=["bench", "worker"])
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs; all but the first are timed")
    parser.add_argument("--out", default="")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--report", default="")
    args = parser.parse_args()
    if args.command == "worker":
        worker(args.out, args.crop, args.steps, args.epochs, args.batch, args.strategy, args.report)
        return
    cores = sorted(os.sched_getaffinity(0))[:2]
    if len(cores) < 2:
        raise SystemExit("needs two cores")
    with tempfile.TemporaryDirectory() as tmp:
        root = pathlib.Path(tmp)
        one = _run([cores], 2, "default", args, root)
        two = _run([[cores[0]], [cores[1]]], 2, "multi_worker", args, root)
        share = _run([[cores[0]]], 1, "default", args, root)
    print(f"{args.crop} px crops, ResNet 6 blocks, ngf 32, global batch 2, {args.steps} steps x "
          f"{args.epochs - 1} timed epochs")  # fmt: skip
    rows = (
        ("one process, both cores (default strategy)", one, ""),
        ("two workers, one core each (multi_worker)", two, f"  ({two / one:.2f}x the one-process time)"),
        ("one core, batch 1 (a worker's share, no exchange)", share, ""),
    )
    for name, seconds, note in rows:
        print(f"{name:52s} {seconds * 1000:7.1f} ms/step  {1 / seconds:5.2f} steps/s{note}")
    print(f"communication and synchronisation share of a worker's step: {1 - share / two:.0%}")


if __name__ == "__main__":
    main()
