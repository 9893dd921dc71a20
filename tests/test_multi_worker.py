"""`--strategy multi_worker` with real worker processes on 127.0.0.1, against one process.

Two workers with one replica each and a global batch of 2 must train what one process trains with
the same global batch: `--strategy mirrored` over two logical CPU devices (also two replicas, so
also per-replica pools), and, with the pool off, the plain default strategy with batch 2.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from tests.conftest import photo_subset

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--generator", "resnet_6blocks", "--ngf", "4", "--ndf", "4", "--netd", "n_layers",
        "--n-layers-d", "2", "--load-size", "36",
        "--crop-size", "32", "--num-samples", "1", "--batch-size", "2", "--deterministic", "--seed", "3",
        "--verbose", "0"]  # fmt: skip
# Two logical CPU devices, then the command line: `--strategy mirrored` in one process.
MIRRORED = (
    "import sys, tensorflow as tf; cpu = tf.config.list_physical_devices('CPU')[0]; "
    "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2); "
    "from cyclegan_keras.cli import main; sys.exit(main(sys.argv[1:]))"
)
WAIT = 240  # seconds any process of these tests may take


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, photos):
    return photo_subset(
        tmp_path_factory.mktemp("h2z"), photos, {"trainA": 4, "trainB": 5, "testA": 1, "testB": 1}
    )


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _env(tmp, **extra):
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(tmp), "PYTHONPATH": REPO, **extra}


def _workers(args, tmp_path, started=(0, 1), ports=None, sigint=signal.SIG_DFL):
    """Starts the `started` workers of a cluster of two; returns their processes and temporary folders."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports or _ports(2)]}
    processes, temps = [], []
    for index in started:
        temp = tmp_path / f"tmp{index}-{time.monotonic_ns()}"
        temp.mkdir()
        config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "cyclegan_keras", "train", *args, "--strategy", "multi_worker"],
                env=_env(temp, TF_CONFIG=config),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
            )
        )
        temps.append(temp)
    return processes, temps


def _finish(processes, timeout=WAIT):
    try:
        return [p.communicate(timeout=timeout) for p in processes]
    finally:
        for p in processes:
            p.kill()


def _one_process(args, tmp_path, *strategy):
    command = [sys.executable, *(["-c", MIRRORED] if "mirrored" in strategy else ["-m", "cyclegan_keras"])]
    result = subprocess.run(
        [*command, "train", *args, *strategy],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def _outputs(run):
    """Both generators' translations of fixed images: what training changed, as users see it."""
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    return {
        name: keras.ops.convert_to_numpy(keras.models.load_model(run / f"{name}.keras", safe_mode=True)(x))
        for name in ("generator_ab", "generator_ba")
    }


def _train_args(data_dir, out, pool, epochs=1, steps=2):
    return ["--data-dir", str(data_dir), *TINY, "--pool-size", str(pool), "--epochs", str(epochs),
            "--epochs-decay", "0", "--steps-per-epoch", str(steps), "--out", str(out)]  # fmt: skip


@pytest.mark.slow
# Two workers with pools equal two replicas in one process, which test_scale holds equal to one device.
# The same without pools ran the same path a second time (85 s): dropped to keep the suite within 30 min.
@pytest.mark.parametrize("pool", [4])
def test_two_workers_train_what_one_process_trains(data_dir, tmp_path, pool):
    workers_run = tmp_path / "workers"
    processes, temps = _workers(_train_args(data_dir, workers_run, pool), tmp_path)
    results = _finish(processes)
    for process, (_, stderr) in zip(processes, results):
        assert process.returncode == 0, stderr[-3000:]
    # One set of artefacts, in the run folder, from the chief; the other worker's saves are gone.
    assert sorted(p.name for p in workers_run.iterdir()) == sorted(
        [
            ".cyclegan-keras.lock",  # the chief's: one trainer per run folder
            "checkpoints",
            "config.json",
            "generator_ab.keras",
            "generator_ba.keras",
            "history.csv",
            "logs",
            "samples",
        ]  # fmt: skip
    )
    assert [p.name for p in (workers_run / "samples").iterdir()] == ["epoch_0001.png"]
    assert all(not any(temp.iterdir()) for temp in temps), [list(t.iterdir()) for t in temps]

    # Without pools: one plain process with batch 2. With pools: two replicas in one process, since
    # per-replica pools make two replicas differ from one batch of 2 by design.
    reference = tmp_path / "one-process"
    strategy = ("--strategy", "mirrored") if pool else ()
    _one_process(_train_args(data_dir, reference, pool), tmp_path, *strategy)
    ours, theirs = _outputs(workers_run), _outputs(reference)
    for name in ours:
        # Two steps from the same weights on the same images: only float round-off apart (each
        # process sums the replicas' gradients in its own order).
        np.testing.assert_allclose(ours[name], theirs[name], atol=2e-3, err_msg=name)


def test_a_worker_started_alone_times_out_with_a_clear_message_and_writes_nothing(data_dir, tmp_path):
    out = tmp_path / "run"
    start = time.monotonic()
    (process,), _ = _workers([*_train_args(data_dir, out, 0), "--worker-timeout", "3"], tmp_path, [0])
    (stdout, stderr), = _finish([process])  # fmt: skip
    assert process.returncode == 1, stderr[-3000:]
    assert time.monotonic() - start < 60
    assert "Waited 3 s for worker(s) 127.0.0.1:" in stderr
    assert "Traceback" not in stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("how", "inherited"),
    [(signal.SIGTERM, signal.SIG_DFL), (signal.SIGINT, signal.SIG_DFL), (signal.SIGINT, signal.SIG_IGN)],
    ids=["sigterm", "ctrl-c", "ctrl-c-started-with-sigint-ignored"],
)
def test_a_waiting_worker_stops_at_once_on_sigterm_or_ctrl_c(data_dir, tmp_path, how, inherited):
    """Started with SIGINT ignored, as a background job of a non-interactive shell (CI) starts it, a worker
    used to ignore Ctrl-C for good: Python installs no handler of its own then."""
    out = tmp_path / "run"
    ports = _ports(2)
    (process,), _ = _workers(_train_args(data_dir, out, 0), tmp_path, [1], ports, sigint=inherited)
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:  # until it holds its port open: waiting for the other worker
        try:
            socket.create_connection(("127.0.0.1", ports[1]), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, process.communicate()[1][-3000:]
            time.sleep(0.2)
    time.sleep(1)
    process.send_signal(how)
    start = time.monotonic()
    (stdout, stderr), = _finish([process], timeout=60)  # fmt: skip
    assert process.returncode == (143 if how == signal.SIGTERM else 130), stderr[-3000:]
    assert time.monotonic() - start < 10
    assert "resume a training run with --resume" in stderr and "Traceback" not in stderr
    assert not out.exists()


def _killed_run_args(data_dir, out):
    # Pool off: a checkpoint holds the chief's pool only, so per-replica pools resume differently.
    return _train_args(data_dir, out, 0, epochs=3, steps=2)


@pytest.fixture(scope="module")
def uninterrupted(data_dir, tmp_path_factory):
    """The run that the killed and resumed runs must end up equal to; one for both victims."""
    tmp = tmp_path_factory.mktemp("uninterrupted")
    _finish_ok(_workers(_killed_run_args(data_dir, tmp / "run"), tmp)[0])
    return tmp / "run"


@pytest.mark.slow
@pytest.mark.parametrize("victim", [1, 0], ids=["worker", "chief"])
def test_killed_worker_stops_the_other_with_a_clear_error_and_resume_continues_identically(
    data_dir, uninterrupted, tmp_path, victim
):
    killed = tmp_path / "killed"
    processes, _ = _workers(_killed_run_args(data_dir, killed), tmp_path)
    latest = killed / "checkpoints" / "latest"
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and not latest.exists():
        assert processes[0].poll() is None, processes[0].communicate()[1][-3000:]
        time.sleep(0.2)
    processes[victim].kill()  # SIGKILL: no chance to say goodbye
    killed_at = time.monotonic()
    survivor = processes[1 - victim]
    (_, stderr) = _finish(processes)[1 - victim]
    assert survivor.returncode == 1, stderr[-3000:]
    assert time.monotonic() - killed_at < 90
    assert "Lost contact with another worker" in stderr and "--resume" in stderr
    epoch = _epoch(latest)
    assert 1 <= epoch < 3 and not (killed / "generator_ab.keras").exists()

    _finish_ok(_workers(["--out", str(killed), "--resume", "--verbose", "0"], tmp_path)[0])
    assert _epoch(latest) == 3
    ours, theirs = _outputs(killed), _outputs(uninterrupted)
    for name in ours:  # the same processes, the same data and state: the same numbers
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-5, err_msg=name)


def _epoch(latest):
    return json.loads(latest.read_text())["epoch"]


def _finish_ok(processes):
    for process, (_, stderr) in zip(processes, _finish(processes)):
        assert process.returncode == 0, stderr[-3000:]


def test_batch_that_does_not_split_over_the_replicas_is_refused(data_dir, tmp_path):
    args = _train_args(data_dir, tmp_path / "run", 0)
    args[args.index("--batch-size") + 1] = "3"
    processes, _ = _workers(args, tmp_path)
    for process, (_, stderr) in zip(processes, _finish(processes)):
        assert process.returncode == 2, stderr[-3000:]
        assert "must split evenly over the 2 replicas" in stderr
