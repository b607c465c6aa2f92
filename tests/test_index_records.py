"""Records made by another tool (Google's schema, no dataset_info.json) can be indexed and trained on."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from electra_tf import DEFAULT_VOCAB_FILE, REPO_ROOT
from electra_tf.data.dataset_info import UNKNOWN_PACKING, DatasetInfo
from electra_tf.data.index_records import index_records
from electra_tf.errors import UserError

LENGTH = 16


def _write_google_records(path, count, seed):
    """``count`` examples as Google's builder writes them: [CLS] A [SEP] B [SEP], padded with 0."""
    rng = np.random.default_rng(seed)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for _ in range(count):
            ids = [2, *rng.integers(5, 3000, 6).tolist(), 3, *rng.integers(5, 3000, 5).tolist(), 3]
            padding = LENGTH - len(ids)
            features = {
                "input_ids": ids + [0] * padding,
                "input_mask": [1] * len(ids) + [0] * padding,
                "segment_ids": [0] * 8 + [1] * 6 + [0] * padding,
            }
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in features.items()}
                )
            )
            writer.write(example.SerializeToString())


@pytest.fixture()
def google_records(tmp_path):
    records = tmp_path / "google"
    records.mkdir()
    for index, count in enumerate([7, 5]):
        _write_google_records(records / f"pretrain_data.tfrecord-{index}-of-2", count, index)
    _write_google_records(records / "eval.tfrecord", 4, 9)
    return records


@pytest.mark.slow
def test_indexing_counts_every_shard_and_training_reads_them_in_place(google_records, tmp_path):
    out = tmp_path / "indexed"
    info = index_records(
        str(google_records / "pretrain_data.tfrecord-*"),
        str(google_records / "eval.tfrecord"),
        DEFAULT_VOCAB_FILE,
        out,
        do_lower_case=True,
        strip_accents=None,
    )
    assert [shard.num_examples for shard in info.train_shards] == [7, 5]
    assert info.num_eval_examples == 4 and info.max_seq_length == LENGTH and info.strip_accents
    assert info.packing == UNKNOWN_PACKING  # another tool made the records: their packing is not known
    reloaded = DatasetInfo.load(out)  # shard paths outside the directory survive the round trip
    assert (
        reloaded.train_shards == info.train_shards
        and reloaded.vocab_file.read_bytes() == DEFAULT_VOCAB_FILE.read_bytes()
    )

    hparams = json.dumps({"model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1}, "embedding_size": 16})
    result = subprocess.run(
        [
            sys.executable,
            "run_pretraining.py",
            f"--data-dir={out}",
            f"--model-dir={tmp_path / 'model'}",
            f"--hparams={hparams}",
            "--num-train-steps=2",
            "--train-batch-size=4",
            "--eval-batch-size=2",
            "--do-eval",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "model" / "eval_results.json").read_text())["global_step"] == 2
    assert json.loads((tmp_path / "model" / "training_data.json").read_text())["packing"] == UNKNOWN_PACKING


def test_files_that_are_not_tfrecords_are_refused(tmp_path):
    (tmp_path / "bad.tfrecord").write_bytes(b"not a record at all")
    with pytest.raises(UserError, match=r"not a readable TFRecord file|schema|no records"):
        index_records(str(tmp_path / "*.tfrecord"), None, DEFAULT_VOCAB_FILE, tmp_path / "out", True, None)
    with pytest.raises(UserError, match="no file matches"):
        index_records(str(tmp_path / "missing-*"), None, DEFAULT_VOCAB_FILE, tmp_path / "out", True, None)
