"""run_pretraining.py end to end: train, checkpoint, resume after kill -9, evaluate, refuse bad data."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf

from electra_tf import REPO_ROOT, SAMPLE_CORPUS_DIR

TINY = json.dumps({"model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}, "embedding_size": 16})
TRAIN_FLAGS = [
    f"--hparams={TINY}",
    "--train-batch-size=4",
    "--eval-batch-size=2",
    "--num-warmup-steps=4",
    "--save-checkpoints-steps=3",
    "--log-every-steps=3",
    "--num-eval-steps=2",
]


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("data") / "sample"
    _run(
        "build_pretraining_dataset.py",
        f"--corpus-dir={SAMPLE_CORPUS_DIR}",
        f"--output-dir={out}",
        "--max-seq-length=32",
        "--eval-fraction=0.1",
        "--num-processes=1",
    )
    return out


def _pretrain(data_dir: Path, model_dir: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run(
        "run_pretraining.py", f"--data-dir={data_dir}", f"--model-dir={model_dir}", *TRAIN_FLAGS, *extra, check=check
    )


def _step(model_dir: Path) -> int:
    reader = tf.train.load_checkpoint(str(model_dir / "checkpoints"))
    names = [
        name for name in reader.get_variable_to_shape_map() if name.startswith("optimizer/") and "iterations" in name
    ]
    return int(reader.get_tensor(names[0]))


def test_train_then_evaluate_writes_every_artifact(data_dir, tmp_path):
    model_dir = tmp_path / "model"
    result = _pretrain(data_dir, model_dir, "--num-train-steps=6", "--do-eval")
    assert _step(model_dir) == 6
    config = json.loads((model_dir / "config.json").read_text())
    assert config["num_train_steps"] == 6 and config["model_hparam_overrides"]["hidden_size"] == 32
    assert (model_dir / "vocab.txt").read_bytes() == (data_dir / "vocab.txt").read_bytes()
    results = json.loads((model_dir / "eval_results.json").read_text())
    assert results["global_step"] == 6
    for name in ("disc_accuracy", "disc_precision", "disc_recall", "disc_auc", "masked_lm_accuracy"):
        assert 0.0 <= results[name] <= 1.0
    assert "| AUC |" in result.stdout
    # TensorBoard: train scalars (with throughput) and the replaced-token text sample, and eval scalars.
    tags = set()
    for event_file in (model_dir / "train").glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            tags |= {value.tag for value in event.summary.value}
    assert {"loss", "disc_auc", "learning_rate", "examples_per_second", "replaced_token_detection"} <= tags
    assert list((model_dir / "eval").glob("events.*"))


def test_resume_after_kill_continues_the_step_and_schedule(data_dir, tmp_path):
    model_dir = tmp_path / "model"
    command = [
        sys.executable,
        "run_pretraining.py",
        f"--data-dir={data_dir}",
        f"--model-dir={model_dir}",
        *TRAIN_FLAGS,
        "--num-train-steps=400",
    ]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not list((model_dir / "checkpoints").glob("ckpt-6.index")):
            assert process.poll() is None, "training ended before its second checkpoint"
            assert time.time() < deadline, "no checkpoint in time"
            time.sleep(0.2)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = _step(model_dir)
    assert 6 <= killed_at < 400
    # Re-running the same command (here with fewer steps to keep the test short) resumes.
    result = _pretrain(data_dir, model_dir, "--num-train-steps=" + str(killed_at + 3))
    assert f"at step {killed_at}" in result.stderr
    assert _step(model_dir) == killed_at + 3


def test_resume_with_a_different_model_is_refused(data_dir, tmp_path):
    model_dir = tmp_path / "model"
    _pretrain(data_dir, model_dir, "--num-train-steps=1")
    result = _pretrain(data_dir, model_dir, "--num-train-steps=2", "--model-size=base", check=False)
    assert result.returncode == 1
    assert "model_size" in result.stderr and "Traceback" not in result.stderr


def test_data_built_with_another_vocab_is_refused(data_dir, tmp_path, cased_vocab_file):
    model_dir = tmp_path / "model"
    _pretrain(data_dir, model_dir, "--num-train-steps=1")
    other = tmp_path / "cased"
    _run(
        "build_pretraining_dataset.py",
        f"--corpus-dir={SAMPLE_CORPUS_DIR}",
        f"--output-dir={other}",
        f"--vocab-file={cased_vocab_file}",
        "--nodo-lower-case",
        "--max-seq-length=32",
        "--num-processes=1",
    )
    result = _pretrain(other, model_dir, "--num-train-steps=2", check=False)
    assert result.returncode == 1
    assert "another vocab" in result.stderr and "Traceback" not in result.stderr


def test_missing_dataset_is_one_clear_error(tmp_path):
    result = _pretrain(tmp_path / "nothing", tmp_path / "model", "--num-train-steps=1", check=False)
    assert result.returncode == 1
    assert "not a pretraining dataset" in result.stderr and "Traceback" not in result.stderr
