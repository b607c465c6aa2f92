"""Data faults end in one `error:` line naming the file: damaged shards, full disks, unwritable outputs,
damaged or binary corpus files, vocab paths that are folders. Nothing here needs ../shared."""

from __future__ import annotations

import gzip
import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from electra_tf import DEFAULT_VOCAB_FILE, REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.data.builder import BuildOptions, build_dataset
from electra_tf.data.dataset_info import DATASET_INFO_FILE, DatasetInfo
from electra_tf.data.index_records import index_records
from electra_tf.data.input_pipeline import training_dataset
from electra_tf.data.shard_check import naming_damaged_shards, verify_dataset
from electra_tf.errors import UserError
from electra_tf.tokenization import Vocab
from electra_tf.vocab_training import find_corpus_files, train_vocab

SAMPLE_FILE = SAMPLE_CORPUS_DIR / "ciencia_y_tecnologia.txt"
TINY_MODEL = json.dumps({"model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2}, "embedding_size": 16})


def run_script(script: str, *arguments: str, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    """Run a top-level script; ``file_size_limit`` (bytes) makes larger writes fail as on a full disk."""

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.run(
        [sys.executable, str(REPO_ROOT / script), *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
        preexec_fn=limit_file_size if file_size_limit else None,
    )


def error_line(result: subprocess.CompletedProcess) -> str:
    """The one `error:` line a failed run ends with (and no traceback before it)."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr[-3000:]
    return last


def small_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "a.txt").write_bytes(SAMPLE_FILE.read_bytes())
    return folder


def build(corpus: Path, output: Path, **changes) -> DatasetInfo:
    options = BuildOptions(
        corpus_dir=corpus, output_dir=output, vocab_file=DEFAULT_VOCAB_FILE, max_seq_length=32, eval_fraction=0.1
    )
    return build_dataset(BuildOptions(**{**options.__dict__, **changes}))


def flip_bytes(path: str | Path, at: int, count: int = 16) -> None:
    data = bytearray(Path(path).read_bytes())
    data[at : at + count] = bytes(byte ^ 0xFF for byte in data[at : at + count])
    Path(path).write_bytes(bytes(data))


def shard_bytes(info: DatasetInfo) -> list[bytes]:
    return [Path(shard.path).read_bytes() for shard in info.train_shards + info.eval_shards]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> DatasetInfo:
    """A small built dataset: copy it before damaging it."""
    root = tmp_path_factory.mktemp("dataset")
    return build(small_corpus(root / "corpus"), root / "data")


def damaged_copy(dataset: DatasetInfo, folder: Path, damage: str, split: str = "train") -> tuple[Path, str]:
    """A copy of ``dataset`` whose first ``split`` shard is truncated to half or has bytes flipped in
    its middle; returns the copy and the damaged shard's path."""
    copy = folder / "data"
    subprocess.run(["cp", "-r", str(dataset.data_dir), str(copy)], check=True)
    info = DatasetInfo.load(copy)
    shard = (info.train_shards if split == "train" else info.eval_shards)[0].path
    size = os.path.getsize(shard)
    if damage == "truncate":
        os.truncate(shard, size // 2)
    else:
        flip_bytes(shard, size // 2)
    return copy, shard


# ----------------------------------------------------------------------------------------------
# Damaged shards (item 7).
# ----------------------------------------------------------------------------------------------


def test_shard_sizes_are_recorded_and_a_truncated_shard_is_refused_on_loading(dataset, tmp_path):
    """Training loads the dataset first, so a truncated shard stops it before any model is built."""
    assert all(shard.num_bytes == os.path.getsize(shard.path) for shard in dataset.train_shards + dataset.eval_shards)
    data, shard = damaged_copy(dataset, tmp_path, "truncate")
    written = dataset.train_shards[0].num_bytes
    expected = rf"shard {shard} has {written // 2} bytes, but {written} were written: it was truncated"
    with pytest.raises(UserError, match=expected + r".*build_pretraining_dataset\.py with --overwrite"):
        DatasetInfo.load(data)


def test_a_damaged_shard_met_while_reading_is_named_with_its_byte_offset(dataset, tmp_path):
    """TensorFlow's DataLossError names no file; the error names the shard found by reading them again."""
    data, shard = damaged_copy(dataset, tmp_path, "flip")
    info = DatasetInfo.load(data)  # same size: only reading finds it
    expected = rf"training shard {shard} is damaged: corrupted record at byte \d+; rebuild"
    with pytest.raises(UserError, match=expected), naming_damaged_shards(data):
        for _ in training_dataset(info.train_shards, batch_size=4, seq_length=32, seed=1).take(10_000):
            pass


def test_errors_other_than_damaged_records_pass_unchanged(dataset):
    with pytest.raises(ValueError, match="unrelated"), naming_damaged_shards(dataset.data_dir):
        raise ValueError("unrelated")


def test_evaluating_on_a_corrupted_shard_is_one_clear_line(dataset, tmp_path):
    """Through the real CLI: the error surfaces inside Keras's evaluate and is mapped to the shard."""
    data, shard = damaged_copy(dataset, tmp_path, "flip", split="eval")
    flip_bytes(shard, 20)  # the first record, so the two evaluation batches read it
    result = run_script(
        "run_pretraining.py",
        f"--data-dir={data}",
        f"--model-dir={tmp_path / 'model'}",
        f"--hparams={TINY_MODEL}",
        "--nodo-train",
        "--do-eval",
        "--eval-batch-size=2",
        "--num-eval-steps=2",
        "--nojit-compile",
    )
    line = error_line(result)
    assert f"held-out shard {shard} is damaged: corrupted record at byte " in line and "rebuild" in line


@pytest.mark.slow
def test_training_on_a_corrupted_shard_is_one_clear_line(dataset, tmp_path):
    data, shard = damaged_copy(dataset, tmp_path, "flip")
    result = run_script(
        "run_pretraining.py",
        f"--data-dir={data}",
        f"--model-dir={tmp_path / 'model'}",
        f"--hparams={TINY_MODEL}",
        "--train-batch-size=4",
        "--num-train-steps=400",
        "--nojit-compile",
    )
    line = error_line(result)
    assert f"training shard {shard} is damaged: corrupted record at byte " in line


def test_verify_cli_names_the_damaged_shard(dataset, tmp_path):
    data, shard = damaged_copy(dataset, tmp_path, "flip")
    line = error_line(run_script("build_pretraining_dataset.py", "--verify", f"--output-dir={data}"))
    assert f"training shard {shard} is damaged: corrupted record at byte " in line and "rebuild" in line


def test_verify_reads_every_record_and_checks_counts(dataset, tmp_path):
    assert verify_dataset(dataset.data_dir) == dataset
    data, shard = damaged_copy(dataset, tmp_path, "truncate")
    raw = json.loads((data / DATASET_INFO_FILE).read_text())
    for entry in raw["train_shards"]:  # as in a dataset from before sizes were recorded
        del entry["num_bytes"]
    (data / DATASET_INFO_FILE).write_text(json.dumps(raw))
    with pytest.raises(UserError, match=rf"training shard {shard} is damaged: truncated record at byte \d+; rebuild"):
        verify_dataset(data)
    subprocess.run(["cp", str(dataset.train_shards[0].path), shard], check=True)
    raw["eval_shards"][0]["num_examples"] += 1
    (data / DATASET_INFO_FILE).write_text(json.dumps(raw))
    with pytest.raises(UserError, match=r"held-out shard .*eval-00000-of-00001\.tfrecord holds \d+ records, but"):
        verify_dataset(data)


def test_rebuilding_a_damaged_dataset_needs_overwrite_and_restores_it(dataset, tmp_path):
    corpus = small_corpus(tmp_path / "corpus")
    clean = dataset  # built from the same text with the same flags
    truncated = build(corpus, tmp_path / "out")
    os.truncate(truncated.train_shards[0].path, 100)
    with pytest.raises(UserError, match=r"holds an unusable dataset \(pass --overwrite to rebuild it\): shard .*train"):
        build(corpus, tmp_path / "out")
    assert shard_bytes(build(corpus, tmp_path / "out", overwrite=True)) == shard_bytes(clean)
    # Flipped bytes keep the size; --overwrite rebuilds even this very build.
    flip_bytes(truncated.train_shards[0].path, 100)
    assert shard_bytes(build(corpus, tmp_path / "out", overwrite=True)) == shard_bytes(clean)


# ----------------------------------------------------------------------------------------------
# Unwritable output and a full disk while building (item 9).
# ----------------------------------------------------------------------------------------------


def test_output_under_a_regular_file_is_refused_before_any_work(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    expected = f"cannot write --output-dir under {tmp_path}/afile: {tmp_path}/afile is a file, not a folder"
    with pytest.raises(UserError, match=expected):
        build(SAMPLE_CORPUS_DIR, tmp_path / "afile" / "out")


def test_a_full_disk_is_one_line_and_the_rerun_resumes(dataset, tmp_path):
    """A file size limit makes writes fail with EFBIG, as a full disk does: here the vocab copy, the
    last file the build writes; the same command then finishes the staged build."""
    corpus = small_corpus(tmp_path / "corpus")
    clean = dataset  # built from the same text with the same flags
    arguments = [
        f"--corpus-dir={corpus}",
        f"--output-dir={tmp_path / 'out'}",
        "--max-seq-length=32",
        "--eval-fraction=0.1",
        "--num-processes=1",
    ]
    largest_shard = max(os.path.getsize(shard.path) for shard in clean.train_shards + clean.eval_shards)
    assert largest_shard < 150_000 < DEFAULT_VOCAB_FILE.stat().st_size
    line = error_line(run_script("build_pretraining_dataset.py", *arguments, file_size_limit=150_000))
    assert line.startswith(f"error: cannot write {tmp_path}/.out.building/vocab.txt: File too large; rerun"), line
    assert not (tmp_path / "out").exists() and (tmp_path / ".out.building").is_dir()
    rerun = run_script("build_pretraining_dataset.py", *arguments)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert shard_bytes(DatasetInfo.load(tmp_path / "out")) == shard_bytes(clean)


@pytest.mark.slow  # three TensorFlow start-ups
def test_a_write_failing_in_a_worker_process_is_one_line(tmp_path):
    """Two units (a level-0 .gz is planned at 3x its size, a unit alone), so two worker processes;
    their record writes fail at 10 kB."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    text = b"".join(path.read_bytes() for path in sorted(SAMPLE_CORPUS_DIR.glob("*.txt")))
    (corpus / "big.txt.gz").write_bytes(gzip.compress(text * 2, compresslevel=0))
    (corpus / "small.txt").write_bytes(SAMPLE_FILE.read_bytes())
    result = run_script(
        "build_pretraining_dataset.py",
        f"--corpus-dir={corpus}",
        f"--output-dir={tmp_path / 'out'}",
        "--num-processes=2",
        file_size_limit=10_000,
    )
    line = error_line(result)
    unit_file = rf"{tmp_path}/\.out\.building/units/\.unit-00000[01]\.(train|eval)\.tfrecord\.tmp"
    assert re.match(rf"error: cannot write {unit_file}: File too large; rerun the same command", line), line
    assert "RemoteTraceback" not in result.stderr


# ----------------------------------------------------------------------------------------------
# The vocab trainer (item 10) and vocab paths that are folders (item 11).
# ----------------------------------------------------------------------------------------------

RUN_WITHOUT_INSTALL = """
import runpy, sys
# Forget the editable install: electra_tf must come from the checkout the script is in.
sys.meta_path = [finder for finder in sys.meta_path if "editable" not in repr(finder)]
sys.path = [path for path in sys.path if "__editable__" not in path and path not in ("", ".")]
sys.argv = [sys.argv[1], "--help"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_vocab_script_runs_from_a_checkout_without_installing(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_INSTALL, str(REPO_ROOT / "vocab" / "build_vocab.py")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert "ModuleNotFoundError" not in result.stderr, result.stderr[-2000:]
    assert "--corpus-dir" in result.stdout and "--vocab-size" in result.stdout


def test_vocab_truncated_gz_is_named(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    packed = gzip.compress(SAMPLE_FILE.read_bytes())
    (corpus / "cut.txt.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(UserError, match=rf"cannot read corpus file {corpus / 'cut.txt.gz'}: it is truncated"):
        train_vocab(find_corpus_files(corpus), tmp_path / "vocab.txt", vocab_size=300)
    assert not (tmp_path / "vocab.txt").exists()


def test_binary_files_are_skipped_by_the_vocab_trainer_as_by_the_builder(tmp_path, caplog):
    corpus = small_corpus(tmp_path / "corpus")
    (corpus / "noise.txt").write_bytes(os.urandom(50_000) + b"\0")
    assert find_corpus_files(corpus) == [corpus / "a.txt"]
    assert "skipping" in caplog.text and "noise.txt" in caplog.text
    text_only = train_vocab([corpus / "a.txt"], tmp_path / "text.txt", vocab_size=300)
    with_noise = train_vocab(find_corpus_files(corpus), tmp_path / "both.txt", vocab_size=300)
    assert with_noise.output.read_bytes() == text_only.output.read_bytes()
    assert build(corpus, tmp_path / "data").stats["files_skipped_binary"] == ["noise.txt"]


def test_vocab_output_problems_are_refused_before_training(tmp_path, caplog):
    corpus = small_corpus(tmp_path / "corpus")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "out_dir").mkdir()
    for output, expected in [
        (tmp_path / "out_dir", f"--output {tmp_path}/out_dir is a folder; give the vocab file to write, e.g. "),
        (tmp_path / "afile" / "v.txt", f"cannot write the vocab under {tmp_path}/afile: {tmp_path}/afile is a file"),
    ]:
        with pytest.raises(UserError, match=expected):
            train_vocab(find_corpus_files(corpus), output, vocab_size=300, overwrite=True)
    assert "training a" not in caplog.text  # refused before any work


def test_vocab_write_failure_after_training_is_one_line(tmp_path):
    corpus = small_corpus(tmp_path / "corpus")
    output = tmp_path / "vocab.txt"
    arguments = [f"--corpus-dir={corpus}", f"--output={output}", "--vocab-size=300", "--num-threads=1"]
    result = run_script("vocab/build_vocab.py", *arguments, file_size_limit=1000)
    assert error_line(result) == f"error: cannot write {output}: File too large"
    assert not output.exists() and [path.name for path in tmp_path.iterdir()] == ["corpus"]


def test_a_vocab_file_that_is_a_folder_is_named_as_such(tmp_path):
    expected = f"vocab file {tmp_path} is a folder, not a file"
    with pytest.raises(UserError, match=expected):
        Vocab.load(tmp_path)
    (tmp_path / "x.tfrecord").write_bytes(b"")
    with pytest.raises(UserError, match=expected):
        index_records(str(tmp_path / "*.tfrecord"), None, tmp_path, tmp_path / "out", True, None)
    with pytest.raises(UserError, match=expected):
        build(SAMPLE_CORPUS_DIR, tmp_path / "out", vocab_file=tmp_path)
