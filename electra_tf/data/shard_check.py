"""Checking TFRecord shards: every record's checksums, the counts in ``dataset_info.json``, and which
shard a reading error came from.

TensorFlow's record reader reports a damaged file as ``DataLossError: corrupted record at 124902``
(or ``truncated record at ...``) without naming the file, and in training the error surfaces inside
``model.fit`` from an interleave of several shards. :func:`naming_damaged_shards` turns it into one
line naming the shard and the byte offset, found by reading the shards again;
:func:`verify_dataset` checks a whole dataset on demand (``build_pretraining_dataset.py --verify``).
A truncated shard is usually caught earlier and more cheaply: :meth:`DatasetInfo.load` compares each
shard's size with the size recorded when it was written.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import tensorflow as tf
from absl import logging

from electra_tf.data.dataset_info import DATASET_INFO_FILE, REBUILD_HINT, DatasetInfo
from electra_tf.data.input_pipeline import Shard
from electra_tf.errors import UserError

_READER_ERROR = re.compile(r"(corrupted|truncated) record at (\d+)")
"""How TensorFlow's record reader reports a bad checksum or a file that ends inside a record."""


class DamagedShardError(UserError):
    """A TFRecord file that cannot be read to its end."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path} is damaged: {reason}")
        self.path = path


def read_error_reason(error: tf.errors.OpError) -> str:
    """The reader's complaint, e.g. "corrupted record at byte 124902", without TensorFlow's node names."""
    found = _READER_ERROR.search(error.message)
    if found:
        return f"{found.group(1)} record at byte {found.group(2)}"
    return error.message.strip().splitlines()[-1] if error.message.strip() else type(error).__name__


def count_records(path: str) -> int:
    """Records in one TFRecord file, checking each one's checksums (:class:`DamagedShardError` if one fails)."""
    try:
        return int(tf.data.TFRecordDataset(path).reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
    except tf.errors.OpError as error:
        raise DamagedShardError(path, read_error_reason(error)) from None


def verify_dataset(data_dir: Path) -> DatasetInfo:
    """Read every record of every shard of the dataset in ``data_dir`` and compare the counts with
    ``dataset_info.json``; :class:`UserError` naming the first damaged shard (and byte offset)."""
    info = DatasetInfo.load(data_dir)
    shards = _labelled_shards(info)
    for number, (kind, shard) in enumerate(shards, 1):
        count = _checked_count(kind, shard)
        if count != shard.num_examples:
            raise UserError(
                f"{kind} shard {shard.path} holds {count} records, but {DATASET_INFO_FILE} lists "
                f"{shard.num_examples}; {REBUILD_HINT}."
            )
        logging.info("checked %d/%d: %s (%d records)", number, len(shards), shard.path, count)
    logging.info(
        "%s is intact: %d shard(s), %d training and %d held-out examples",
        info.data_dir,
        len(shards),
        info.num_train_examples,
        info.num_eval_examples,
    )
    return info


@contextlib.contextmanager
def naming_damaged_shards(data_dir: Path) -> Iterator[None]:
    """Turn a record reader's ``DataLossError`` raised in the block into a :class:`UserError` naming the
    damaged shard of the dataset in ``data_dir`` and the byte offset. Other errors pass unchanged, and
    so does this one if no shard turns out to be damaged."""
    try:
        yield
    except tf.errors.DataLossError as error:
        found = _READER_ERROR.search(error.message)
        if found is None:
            raise
        logging.warning("a shard of %s is damaged (%s); reading the shards to find it", data_dir, found.group(0))
        offset = int(found.group(2))
        for kind, shard in _labelled_shards(DatasetInfo.load(data_dir)):
            if os.path.getsize(shard.path) >= offset:  # the damage lies at ``offset`` in the file
                _checked_count(kind, shard)
        raise


def _labelled_shards(info: DatasetInfo) -> list[tuple[str, Shard]]:
    return [("training", shard) for shard in info.train_shards] + [("held-out", shard) for shard in info.eval_shards]


def _checked_count(kind: str, shard: Shard) -> int:
    try:
        return count_records(shard.path)
    except DamagedShardError as damaged:
        raise UserError(f"{kind} shard {damaged}; {REBUILD_HINT}.") from None
