"""tf.data input for pretraining and evaluation, with a resumable training stream.

The training stream is a deterministic function of the seed and the number of examples already
consumed, so a resumed run continues where the checkpoint left off without checkpointing the
iterator (``model.fit`` owns the iterator and cannot checkpoint it):

- epoch ``e`` reads the shards in an order that depends only on ``(seed, e)``;
- shards are interleaved round-robin (``cycle_length`` open at a time, deterministic order);
- given each shard's example count, :func:`consumed_per_shard` computes exactly how many records
  of each shard the first ``n`` outputs of an epoch took, and the resumed stream skips them.

Only the record shuffle buffer is not restored: up to ``shuffle_buffer`` examples around the resume
point may be seen twice or not at all, out of the whole stream. Google's pipeline restarts the data
from scratch on every resume instead.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tensorflow as tf

FEATURES = ("input_ids", "input_mask", "segment_ids")
"""The features of every record and batch (Google's pretraining schema), in the order the model reads them."""


@dataclasses.dataclass(frozen=True)
class Shard:
    """One TFRecord file, the number of examples in it and, if recorded, its size in bytes."""

    path: str
    num_examples: int
    num_bytes: int | None = None
    """The file's size when it was written: another size means it was truncated or changed since."""


def consumed_per_shard(counts: Sequence[int], cycle_length: int, num_outputs: int) -> list[int]:
    """Records taken from each shard by the first ``num_outputs`` elements of a deterministic interleave.

    Mirrors ``Dataset.interleave(cycle_length=c, block_length=1, deterministic=True)`` visiting
    rules: slots are visited round-robin; an empty slot opens the next shard and yields from it at
    once; a slot whose shard is exhausted is emptied on that visit and yields nothing. Whole rounds
    in which no shard can run out are taken in one jump, so the cost grows with the number of
    shards, not with ``num_outputs``. Every count must be positive.
    """
    if any(count <= 0 for count in counts):
        raise ValueError("every shard must hold at least one example")
    if num_outputs > sum(counts):
        raise ValueError(f"{num_outputs} outputs exceed the {sum(counts)} examples of the shards")
    consumed = [0] * len(counts)
    slots: list[int | None] = [None] * cycle_length
    next_shard, cursor, left = 0, 0, num_outputs
    while left > 0:
        open_slots = [shard for shard in slots if shard is not None]
        all_open = next_shard == len(counts) or len(open_slots) == cycle_length
        if cursor == 0 and open_slots and all_open:
            rounds = min(min(counts[s] - consumed[s] for s in open_slots), left // len(open_slots))
            if rounds > 0:
                for shard in open_slots:
                    consumed[shard] += rounds
                left -= rounds * len(open_slots)
                continue
        shard = slots[cursor]
        if shard is None and next_shard < len(counts):
            shard = slots[cursor] = next_shard
            next_shard += 1
        if shard is not None:
            if consumed[shard] < counts[shard]:
                consumed[shard] += 1
                left -= 1
            else:
                slots[cursor] = None
        cursor = (cursor + 1) % cycle_length
    return consumed


def epoch_order(num_shards: int, seed: int, epoch: int) -> list[int]:
    """Shard indices in the order epoch ``epoch`` reads them (same in Python and in the graph)."""
    return _epoch_order_tensor(num_shards, seed, tf.constant(epoch, tf.int64)).numpy().tolist()


def _epoch_order_tensor(num_shards: int, seed: int, epoch: tf.Tensor) -> tf.Tensor:
    seed_pair = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(num_shards, dtype=tf.int64), seed=seed_pair)


def training_dataset(
    shards: Sequence[Shard],
    batch_size: int,
    seq_length: int,
    seed: int,
    start_example: int = 0,
    cycle_length: int = 8,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """An endless stream of shuffled batches, resuming after ``start_example`` examples.

    ``shards`` are the shards this input pipeline reads (one worker's share under multi-worker
    training); ``batch_size`` is the batch this pipeline produces. Batches are dicts of int32
    ``[batch_size, seq_length]`` tensors named as in Google's TFRecords; the last partial batch of
    the stream never occurs because the stream is endless. ``shuffle_buffer`` of 0 or 1 keeps the
    interleaved order (used by tests that check the resume arithmetic).
    """
    shards = [shard for shard in shards if shard.num_examples > 0]
    if not shards:
        raise ValueError("no non-empty shards to read")
    paths = tf.constant([shard.path for shard in shards])
    counts = [shard.num_examples for shard in shards]
    cycle_length = min(cycle_length, len(shards))
    epoch, offset = divmod(start_example, sum(counts))

    # The epoch the run stopped in: shards in that epoch's order, each skipping what was consumed.
    order = epoch_order(len(shards), seed, epoch)
    skips = consumed_per_shard([counts[i] for i in order], cycle_length, offset)
    remaining = [(order[i], skip) for i, skip in enumerate(skips) if skip < counts[order[i]]]
    first = _interleave(
        tf.gather(paths, [index for index, _ in remaining]),
        tf.constant([skip for _, skip in remaining], tf.int64),
        cycle_length,
    )
    # Every later epoch, generated in the graph from the same order function. Epochs are
    # interleaved one at a time so that an epoch's position is well defined.
    later = tf.data.Dataset.counter(start=epoch + 1).flat_map(
        lambda e: _interleave(
            tf.gather(paths, _epoch_order_tensor(len(shards), seed, e)), tf.zeros([len(shards)], tf.int64), cycle_length
        )
    )
    records = first.concatenate(later)
    if shuffle_buffer > 1:
        # A resumed stream gets its own shuffle seed; the buffer itself is not restored.
        records = records.shuffle(shuffle_buffer, seed=(seed * 1_000_003 + start_example) % 2**31)
    return _parse_batches(records, batch_size, seq_length)


def _interleave(paths: tf.Tensor, skips: tf.Tensor, cycle_length: int) -> tf.data.Dataset:
    """Records of ``paths`` (each after skipping ``skips`` records), round-robin, in a fixed order."""
    return tf.data.Dataset.from_tensor_slices((paths, skips)).interleave(
        lambda path, skip: tf.data.TFRecordDataset(path).skip(skip),
        cycle_length=cycle_length,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def evaluation_dataset(paths: Sequence[str], batch_size: int, seq_length: int) -> tf.data.Dataset:
    """The held-out shards once, in order, in full batches; the last is padded with empty examples.

    An empty example (every feature 0, so ``input_mask`` is 0) weighs nothing in any loss or metric,
    so every held-out example counts, even when there are fewer than one batch (Google drops the
    final partial batch). Batches keep a static size, as XLA and the strategies need.
    """
    if not paths:
        raise ValueError("no evaluation shards to read")
    records = tf.data.TFRecordDataset(list(paths), num_parallel_reads=min(4, len(paths)))
    # batch_size - 1 empty records complete a partial last batch and never fill one of their own.
    padding = tf.data.Dataset.from_tensors(_empty_record(seq_length)).repeat(batch_size - 1)
    return _parse_batches(records.concatenate(padding), batch_size, seq_length)


def _empty_record(seq_length: int) -> bytes:
    zeros = tf.train.Feature(int64_list=tf.train.Int64List(value=[0] * seq_length))
    return tf.train.Example(features=tf.train.Features(feature=dict.fromkeys(FEATURES, zeros))).SerializeToString()


def _parse_batches(records: tf.data.Dataset, batch_size: int, seq_length: int) -> tf.data.Dataset:
    spec = {name: tf.io.FixedLenFeature([seq_length], tf.int64) for name in FEATURES}

    def parse(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        features = tf.io.parse_example(serialized, spec)
        return {name: tf.cast(features[name], tf.int32) for name in FEATURES}

    return (
        records.batch(batch_size, drop_remainder=True)
        .map(parse, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
