"""Scale-out: MirroredStrategy and gradient accumulation match one device; two local workers train and resume."""

import contextlib
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_json_script
from test_training import TRAIN_FLAGS, _run, _step

from electra_tf import REPO_ROOT, SAMPLE_CORPUS_DIR

NUM_WORKERS = 2
WORKER_TIMEOUT_S = 420


@pytest.mark.slow
def test_mirrored_replicas_and_accumulation_make_the_one_device_update():
    """2 logical CPUs, XLA on, dropout off, 2 steps at global batch 8: same losses and weights as one device."""
    report = run_json_script("mirrored_equivalence.py")
    assert report["max_weight_change"] > 1e-3  # the two steps really moved the weights
    for setup in ("mirrored", "mirrored_accumulation"):
        assert report[setup]["max_weight_difference"] < 1e-5, (setup, report)
        # Logged losses are exact global-batch ratios, not averages of the replicas' ratios.
        assert report[setup]["losses"] == pytest.approx(report["one_device_losses"], rel=1e-6), (setup, report)


@pytest.fixture(scope="module")
def two_shard_data(tmp_path_factory) -> Path:
    """2.5 MB of Spanish text in 2 training shards, one per worker, and held-out documents.

    The builder's shards hold whole input blocks of at least 2 MiB, so the sample corpus is written
    7 times into one file, which it cuts in two.
    """
    corpus = tmp_path_factory.mktemp("corpus")
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted(SAMPLE_CORPUS_DIR.glob("*.txt")))
    (corpus / "general.txt").write_text("\n".join([text] * 7), encoding="utf-8")
    out = tmp_path_factory.mktemp("data") / "general"
    _run(
        "build_pretraining_dataset.py",
        f"--corpus-dir={corpus}",
        f"--output-dir={out}",
        "--max-seq-length=32",
        "--eval-fraction=0.1",
        f"--num-shards={NUM_WORKERS}",
        "--num-processes=1",
    )
    assert len(list((out / "train").glob("*.tfrecord"))) == NUM_WORKERS
    return out


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("localhost", 0))
        return [sock.getsockname()[1] for sock in sockets]


def _launch_workers(data_dir: Path, model_dirs: list[Path], logs_dir: Path, *extra: str) -> list[tuple[int, str]]:
    """Run the CLI as worker 0 (chief) and worker 1 of a localhost cluster, worker i with ``model_dirs[i]``;
    each one's exit code and log once both have exited.

    A worker still running 60 s after the other failed (waiting for it in a collective), or when the
    run overruns, is killed, so no worker outlives the test.
    """
    cluster = {"worker": [f"localhost:{port}" for port in _free_ports(NUM_WORKERS)]}
    logs_dir.mkdir(parents=True, exist_ok=True)
    log_files = [logs_dir / f"worker_{index}.log" for index in range(NUM_WORKERS)]
    processes: list[subprocess.Popen] = []
    try:
        for index, (model_dir, log_file) in enumerate(zip(model_dirs, log_files, strict=True)):
            task = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            command = [
                sys.executable,
                "run_pretraining.py",
                f"--data-dir={data_dir}",
                f"--model-dir={model_dir}",
                "--strategy=multi_worker_mirrored",
                *TRAIN_FLAGS,
                *extra,
            ]
            with log_file.open("w") as log:
                env = {**os.environ, "TF_CONFIG": json.dumps(task)}
                processes.append(
                    subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        while any(p.poll() is None for p in processes) and time.monotonic() < deadline:
            if any(p.poll() not in (None, 0) for p in processes):
                deadline = min(deadline, time.monotonic() + 60)
            time.sleep(0.5)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
    return [(p.returncode, f.read_text()) for p, f in zip(processes, log_files, strict=True)]


def _train_on_two_workers(data_dir: Path, model_dir: Path, logs_dir: Path, *extra: str) -> list[str]:
    """Both workers' logs from a run that shares ``model_dir`` and must succeed."""
    results = _launch_workers(data_dir, [model_dir] * NUM_WORKERS, logs_dir, *extra)
    assert all(code == 0 for code, _ in results), _worker_failure(results)
    return [log for _, log in results]


def _worker_failure(results: list[tuple[int, str]]) -> str:
    return "".join(f"\n--- worker {i} (exit {code}):\n{log[-2500:]}" for i, (code, log) in enumerate(results))


def _resumed_step(log: str) -> int | None:
    match = re.search(r"Resumed from \S+ at step (\d+)", log)
    return int(match.group(1)) if match else None


@pytest.mark.slow
def test_two_workers_train_checkpoint_once_resume_and_refuse_an_unshared_model_dir(two_shard_data, tmp_path):
    model_dir = tmp_path / "model"
    first = _train_on_two_workers(
        two_shard_data, model_dir, tmp_path / "first", "--num-train-steps=3", "--save-checkpoints-steps=100"
    )
    for index, log in enumerate(first):
        assert "Strategy CollectiveAllReduceStrategy with 2 replica(s)" in log
        assert f"Input pipeline {index} of 2 reads 1 of 2 training shards" in log
        assert _resumed_step(log) is None
    # Only the chief wrote: one checkpoint, at the end of training, in the shared model directory.
    assert _step(model_dir) == 3
    assert sorted(p.name for p in (model_dir / "checkpoints").glob("*.index")) == ["ckpt-3.index"]

    second = _train_on_two_workers(two_shard_data, model_dir, tmp_path / "second", "--num-train-steps=5", "--do-eval")
    assert [_resumed_step(log) for log in second] == [3, 3]  # every worker restored the chief's checkpoint
    assert _step(model_dir) == 5
    # Both workers evaluated, and their replica-summed metrics are those of one device on the same batches.
    assert all("Evaluation at step 5" in log for log in second)
    two_workers = json.loads((model_dir / "eval_results.json").read_text())
    _run(
        "run_pretraining.py",
        f"--data-dir={two_shard_data}",
        f"--model-dir={model_dir}",
        *TRAIN_FLAGS,
        "--nodo-train",
        "--do-eval",
    )
    one_device = json.loads((model_dir / "eval_results.json").read_text())
    assert {"disc_auc", "disc_accuracy", "masked_lm_loss", "loss"} <= set(two_workers)
    assert two_workers == pytest.approx(one_device, rel=1e-5)

    # A worker that cannot see the chief's model directory would train from other weights: refused.
    unshared = [model_dir, tmp_path / "worker_1_local_dir"]
    refused = _launch_workers(two_shard_data, unshared, tmp_path / "third", "--num-train-steps=7")
    assert [code for code, _ in refused] == [1, 1], _worker_failure(refused)
    assert all("the workers restored different steps (5, 0" in log for _, log in refused)
    assert _step(model_dir) == 5


@pytest.mark.slow
def test_lamb_through_the_cli_trains(two_shard_data, tmp_path):
    """--optimizer lamb (for large global batches) runs end to end and lowers the loss."""
    model_dir = tmp_path / "model"
    result = _run(
        "run_pretraining.py",
        f"--data-dir={two_shard_data}",
        f"--model-dir={model_dir}",
        *TRAIN_FLAGS,
        "--optimizer=lamb",
        "--num-train-steps=15",
    )
    assert json.loads((model_dir / "config.json").read_text())["optimizer"] == "lamb"
    window_losses = [float(loss) for loss in re.findall(r"step \d+/15\s+loss (\S+)", result.stderr)]
    assert len(window_losses) == 5, result.stderr[-2000:]
    assert all(math.isfinite(loss) for loss in window_losses)
    assert window_losses[-1] < window_losses[0], window_losses
    assert _step(model_dir) == 15
