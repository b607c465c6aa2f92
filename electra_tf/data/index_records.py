"""Describe TFRecords made by another tool (e.g. Google's builder) with a ``dataset_info.json``.

Training reads every dataset through its ``dataset_info.json`` (shard example counts for the
resumable input, the vocab hash, the normalisation flags). Google's ``build_pretraining_dataset.py``
writes the same record schema but no such file; this module counts the records of each shard, reads
the sequence length from the first record, and writes the file (with a copy of the vocab) into a
directory of its own, so ``run_pretraining.py --data-dir`` trains on the records where they are.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import tensorflow as tf
from absl import logging

from electra_tf.data.dataset_info import UNKNOWN_PACKING, VOCAB_COPY, DatasetInfo
from electra_tf.data.input_pipeline import FEATURES, Shard
from electra_tf.data.shard_check import count_records
from electra_tf.errors import UserError
from electra_tf.tokenization import Vocab, resolve_strip_accents


def expand(patterns: str) -> list[str]:
    """The files matching comma-separated glob ``patterns``, sorted and de-duplicated."""
    files = sorted({path for pattern in patterns.split(",") if pattern.strip() for path in glob.glob(pattern.strip())})
    return [path for path in files if Path(path).is_file()]


def sequence_length(path: str) -> int:
    """``max_seq_length`` of the records in ``path``: the length of the first record's features."""
    try:
        first = list(tf.data.TFRecordDataset(path).take(1))
    except tf.errors.OpError as error:
        raise UserError(f"{path} is not a readable TFRecord file: {error.message}") from None
    for serialized in first:
        example = tf.train.Example.FromString(serialized.numpy())
        lengths = {name: len(example.features.feature[name].int64_list.value) for name in FEATURES}
        if len(set(lengths.values())) != 1 or 0 in lengths.values():
            raise UserError(f"{path} does not hold Google's pretraining schema ({FEATURES}, one length): {lengths}.")
        return lengths["input_ids"]
    raise UserError(f"{path} holds no records.")


def index_records(
    train_patterns: str,
    eval_patterns: str | None,
    vocab_file: Path,
    output_dir: Path,
    do_lower_case: bool,
    strip_accents: bool | None,
) -> DatasetInfo:
    """Write ``output_dir/dataset_info.json`` (and the vocab) describing existing records."""
    train_files = expand(train_patterns)
    if not train_files:
        raise UserError(f"no file matches --tfrecords {train_patterns!r}.")
    eval_files = expand(eval_patterns) if eval_patterns else []
    vocab = Vocab.load(vocab_file)
    lengths = {sequence_length(path) for path in train_files[:1] + eval_files[:1]}
    if len(lengths) != 1:
        raise UserError(f"the training and evaluation records have different sequence lengths: {sorted(lengths)}.")

    def shards(files: list[str]) -> tuple[Shard, ...]:
        counted = []
        for index, path in enumerate(files):
            counted.append(Shard(str(Path(path).resolve()), count_records(path), os.path.getsize(path)))
            logging.info("counted %d/%d: %s (%d records)", index + 1, len(files), path, counted[-1].num_examples)
        return tuple(shard for shard in counted if shard.num_examples > 0)

    output_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(vocab_file, output_dir / VOCAB_COPY)
    train, held_out = shards(train_files), shards(eval_files)
    info = DatasetInfo(
        data_dir=output_dir.resolve(),
        **DatasetInfo.vocab_fields(vocab),
        do_lower_case=do_lower_case,
        strip_accents=resolve_strip_accents(do_lower_case, strip_accents),
        max_seq_length=lengths.pop(),
        seed=0,
        packing=UNKNOWN_PACKING,
        train_shards=train,
        eval_shards=held_out,
        stats={
            "indexed_from": train_patterns,
            "examples_train": sum(s.num_examples for s in train),
            "examples_eval": sum(s.num_examples for s in held_out),
        },
    )
    info.save()
    logging.info(
        "wrote %s: %d training and %d held-out examples", output_dir, info.num_train_examples, info.num_eval_examples
    )
    return info
