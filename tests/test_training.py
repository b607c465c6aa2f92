"""run_pretraining.py end to end: train, checkpoint, resume after kill -9, evaluate, refuse bad data.

Also the damaged model directories a crash or a full disk leaves: a lost checkpoint state file,
truncated checkpoints, a failed checkpoint write (the unit cases are in test_checkpoint_recovery.py).
"""

import hashlib
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
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


def _run(*args: str, check: bool = True, **options) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=600, **options
    )
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


def _pretrain(
    data_dir: Path, model_dir: Path, *extra: str, check: bool = True, **options
) -> subprocess.CompletedProcess:
    return _run(
        "run_pretraining.py",
        f"--data-dir={data_dir}",
        f"--model-dir={model_dir}",
        *TRAIN_FLAGS,
        *extra,
        check=check,
        **options,
    )


def _step(model_dir: Path) -> int:
    reader = tf.train.load_checkpoint(str(model_dir / "checkpoints"))
    names = [
        name for name in reader.get_variable_to_shape_map() if name.startswith("optimizer/") and "iterations" in name
    ]
    return int(reader.get_tensor(names[0]))


def _kill_during_training(data_dir: Path, model_dir: Path, ready: Callable[[], bool], *flags: str) -> int:
    """Train towards 400 steps, ``kill -9`` the run once ``ready()`` (within 5 minutes, before it ends);
    the step the state file records."""
    command = [sys.executable, "run_pretraining.py", f"--data-dir={data_dir}", f"--model-dir={model_dir}"]
    command += [*TRAIN_FLAGS, *flags, "--num-train-steps=400"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not ready():
            assert process.poll() is None, "training ended before its second checkpoint"
            assert time.time() < deadline, "no checkpoint in time"
            time.sleep(0.2)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    return _step(model_dir)


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_after_kill_continues_the_step_and_schedule(data_dir, tmp_path):
    model_dir = tmp_path / "model"
    killed_at = _kill_during_training(
        data_dir, model_dir, lambda: any((model_dir / "checkpoints").glob("ckpt-6.index"))
    )
    assert 6 <= killed_at < 400
    # Re-running the same command (here with fewer steps to keep the test short) resumes.
    result = _pretrain(data_dir, model_dir, "--num-train-steps=" + str(killed_at + 3))
    assert f"at step {killed_at}" in result.stderr
    assert _step(model_dir) == killed_at + 3


@pytest.mark.slow
def test_resume_with_a_different_model_is_refused(data_dir, tmp_path):
    model_dir = tmp_path / "model"
    _pretrain(data_dir, model_dir, "--num-train-steps=1")
    result = _pretrain(data_dir, model_dir, "--num-train-steps=2", "--model-size=base", check=False)
    assert result.returncode == 1
    assert "model_size" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
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


# ------------------------------------------------------------------------------------------------
# Damaged model directories: a lost state file, unreadable checkpoints, a failed checkpoint write.
# ------------------------------------------------------------------------------------------------
SAVE_EVERY_5 = ("--save-checkpoints-steps=5", "--keep-checkpoint-max=10", "--nojit-compile")


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory) -> Path:
    """A model directory after 20 steps, holding ckpt-5, ckpt-10, ckpt-15 and ckpt-20 (copy it to damage it)."""
    model_dir = tmp_path_factory.mktemp("trained") / "model"
    _pretrain(data_dir, model_dir, *SAVE_EVERY_5, "--num-train-steps=20")
    return model_dir


def _digests(checkpoints: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in checkpoints.glob("ckpt-*.*")}


def _data_file(checkpoints: Path, number: int) -> Path:
    return checkpoints / f"ckpt-{number}.data-00000-of-00001"


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _resumed_step(stderr: str) -> int:
    resumed = re.search(r"Resumed from \S+ at step (\d+)", stderr)
    assert resumed, "the run did not resume from a checkpoint"
    return int(resumed.group(1))


def test_a_lost_state_file_resumes_from_the_newest_checkpoint_on_disk(data_dir, trained, tmp_path):
    model_dir = shutil.copytree(trained, tmp_path / "model")
    checkpoints = model_dir / "checkpoints"
    before = _digests(checkpoints)
    (checkpoints / "checkpoint").unlink()
    result = _pretrain(data_dir, model_dir, *SAVE_EVERY_5, "--num-train-steps=20")
    assert _resumed_step(result.stderr) == 20 and "is missing" in result.stderr
    assert _step(model_dir) == 20  # the rebuilt state file names ckpt-20
    assert _digests(checkpoints) == before  # not one old checkpoint replaced or removed


def test_unreadable_newest_checkpoints_are_set_aside_and_the_run_resumes_before_them(data_dir, trained, tmp_path):
    model_dir = shutil.copytree(trained, tmp_path / "model")
    checkpoints = model_dir / "checkpoints"
    _truncate(checkpoints / "ckpt-20.index")
    _truncate(_data_file(checkpoints, 15))
    result = _pretrain(data_dir, model_dir, *SAVE_EVERY_5, "--num-train-steps=10")
    assert "Traceback" not in result.stderr
    assert _resumed_step(result.stderr) == 10
    damaged = ["ckpt-20.index", "ckpt-20.data-00000-of-00001", "ckpt-15.index", "ckpt-15.data-00000-of-00001"]
    assert all(name in result.stderr for name in damaged)
    assert sorted(path.name for path in (checkpoints / "corrupt").iterdir()) == sorted(damaged)
    assert _step(model_dir) == 10  # the state file now names ckpt-10, the newest intact checkpoint


def test_no_readable_checkpoint_is_one_clear_error(data_dir, trained, tmp_path):
    model_dir = shutil.copytree(trained, tmp_path / "model")
    checkpoints = model_dir / "checkpoints"
    for number in (5, 10, 15, 20):
        _truncate(_data_file(checkpoints, number))
    before = _digests(checkpoints)
    result = _pretrain(data_dir, model_dir, *SAVE_EVERY_5, "--num-train-steps=25", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: none of the 4 checkpoint(s) in ")
    assert _digests(checkpoints) == before and not (checkpoints / "corrupt").exists()


@pytest.mark.slow
def test_a_failed_checkpoint_write_is_one_clear_error_and_its_partial_files_go(data_dir, trained, tmp_path):
    limit = _data_file(trained / "checkpoints", 5).stat().st_size // 2

    def small_file_limit() -> None:  # as `ulimit -f`: a write beyond the limit fails with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    model_dir = shutil.copytree(trained, tmp_path / "model")
    checkpoints = model_dir / "checkpoints"
    result = _pretrain(
        data_dir, model_dir, *SAVE_EVERY_5, "--num-train-steps=25", check=False, preexec_fn=small_file_limit
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "ran out of data" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: cannot write checkpoint ckpt-25 in {checkpoints}: File too large. Free disk space there and "
        f"re-run the same command: it resumes from {checkpoints}/ckpt-20 and removes the partial files."
    )
    assert (checkpoints / "ckpt-25_temp").is_dir()  # what the failed write left
    result = _pretrain(data_dir, model_dir, *SAVE_EVERY_5, "--num-train-steps=20")
    assert not (checkpoints / "ckpt-25_temp").exists() and "ckpt-25_temp" in result.stderr
    assert _step(model_dir) == 20


def test_evaluation_on_fewer_held_out_examples_than_one_batch_uses_them_all(data_dir, tmp_path):
    held_out = sum(
        shard["num_examples"] for shard in json.loads((data_dir / "dataset_info.json").read_text())["eval_shards"]
    )
    model_dir = tmp_path / "model"
    result = _pretrain(
        data_dir, model_dir, "--nodo-train", "--do-eval", f"--eval-batch-size={held_out + 4}", "--nojit-compile"
    )
    assert f"on {held_out} held-out examples" in result.stdout
    assert json.loads((model_dir / "eval_results.json").read_text())["num_eval_examples"] == held_out


def test_evaluation_without_held_out_examples_says_why_before_training(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    paragraphs = (SAMPLE_CORPUS_DIR / "cultura_y_ocio.txt").read_text(encoding="utf-8").split("\n\n")[:3]
    (corpus / "three_documents.txt").write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    _run(
        "build_pretraining_dataset.py",
        f"--corpus-dir={corpus}",
        f"--output-dir={data}",
        "--max-seq-length=32",
        "--eval-fraction=0.01",
        "--num-processes=1",
    )
    model_dir = tmp_path / "model"
    result = _pretrain(data, model_dir, "--num-train-steps=5", "--do-eval", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "--eval-fraction 0.01" in message and "3 document(s)" in message
    assert not (model_dir / "checkpoints").exists()  # refused before training, not after it


def _kill_after_checkpoint_10(data_dir: Path, model_dir: Path) -> int:
    """Train towards 400 steps, ``kill -9`` once ckpt-10 is complete; the step the state file records."""

    def ready() -> bool:
        return tf.train.latest_checkpoint(str(model_dir / "checkpoints")) is not None and _step(model_dir) >= 10

    return _kill_during_training(data_dir, model_dir, ready, *SAVE_EVERY_5)


@pytest.mark.slow
def test_kill_then_a_lost_state_file_never_restarts_or_overwrites(data_dir, tmp_path):
    model_dir = tmp_path / "model"
    recorded = _kill_after_checkpoint_10(data_dir, model_dir)
    checkpoints = model_dir / "checkpoints"
    before = {name: digest for name, digest in _digests(checkpoints).items() if int(name[5:].split(".")[0]) <= recorded}
    (checkpoints / "checkpoint").unlink()
    result = _pretrain(data_dir, model_dir, *SAVE_EVERY_5, f"--num-train-steps={recorded + 3}")
    # The recorded checkpoint, or a newer one completed just before the kill.
    resumed = _resumed_step(result.stderr)
    assert resumed >= recorded
    after = _digests(checkpoints)
    assert {name: after.get(name) for name in before} == before
    assert _step(model_dir) == max(resumed, recorded + 3)


@pytest.mark.slow
def test_kill_then_a_truncated_newest_checkpoint_falls_back_to_the_previous_one(data_dir, tmp_path):
    model_dir = tmp_path / "model"
    recorded = _kill_after_checkpoint_10(data_dir, model_dir)
    checkpoints = model_dir / "checkpoints"
    damaged = sorted(path for path in checkpoints.glob("ckpt-*.data-*") if int(path.name[5:].split(".")[0]) >= recorded)
    for path in damaged:  # the recorded checkpoint and any newer one the kill left
        _truncate(path)
    result = _pretrain(data_dir, model_dir, *SAVE_EVERY_5, f"--num-train-steps={recorded + 3}")
    assert "Traceback" not in result.stderr and all(path.name in result.stderr for path in damaged)
    assert _resumed_step(result.stderr) == recorded - 5
    assert _step(model_dir) == recorded + 3
