"""The resumable training stream: interleave arithmetic, resume without replay or skip, evaluation batches."""

import random

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.data.input_pipeline import (
    Shard,
    consumed_per_shard,
    epoch_order,
    evaluation_dataset,
    training_dataset,
)

SEQ = 4


def _write_shards(directory, counts) -> list[Shard]:
    """Shards whose records carry (shard, record) in input_ids so every example is identifiable."""
    shards = []
    for shard_index, count in enumerate(counts):
        path = str(directory / f"shard-{shard_index:03d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for record in range(count):
                feature = {
                    "input_ids": [shard_index, record, 0, 0],
                    "input_mask": [1, 1, 0, 0],
                    "segment_ids": [0, 0, 0, 0],
                }
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            name: tf.train.Feature(int64_list=tf.train.Int64List(value=values))
                            for name, values in feature.items()
                        }
                    )
                )
                writer.write(example.SerializeToString())
        shards.append(Shard(path, count))
    return shards


def _take(dataset, count) -> list[tuple[int, int]]:
    examples = []
    for batch in dataset:
        ids = batch["input_ids"].numpy()
        examples.extend((int(row[0]), int(row[1])) for row in ids)
        if len(examples) >= count:
            return examples[:count]
    raise AssertionError("stream ended early")


@pytest.mark.parametrize("trial", range(6))
def test_consumed_per_shard_matches_tf_data_interleave(trial):
    rng = random.Random(trial)
    counts = [rng.randint(1, 9) for _ in range(rng.randint(1, 7))]
    cycle = rng.randint(1, 4)
    lengths = tf.constant(counts, tf.int64)
    order = tf.data.Dataset.range(len(counts)).interleave(
        lambda i: tf.data.Dataset.range(lengths[i]).map(lambda _: i),
        cycle_length=cycle,
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    produced = [int(x) for x in order.as_numpy_iterator()]
    for n in range(len(produced) + 1):
        expected = np.bincount(produced[:n], minlength=len(counts)).tolist()
        assert consumed_per_shard(counts, cycle, n) == expected, (counts, cycle, n)


def test_consumed_per_shard_jumps_whole_rounds_on_large_shards():
    counts = [10**9, 10**9 + 7, 3 * 10**8]
    consumed = consumed_per_shard(counts, 2, 1_500_000_123)
    assert sum(consumed) == 1_500_000_123
    assert all(0 <= c <= limit for c, limit in zip(consumed, counts, strict=True))


def test_epoch_order_is_a_seeded_permutation():
    first = epoch_order(10, seed=7, epoch=0)
    assert sorted(first) == list(range(10))
    assert first == epoch_order(10, seed=7, epoch=0)
    assert first != epoch_order(10, seed=7, epoch=1) or first != epoch_order(10, seed=8, epoch=0)


@pytest.mark.parametrize("stop", [0, 1, 13, 29, 37])
def test_resumed_stream_neither_replays_nor_skips(tmp_path, stop):
    counts = [7, 3, 11, 5, 4]
    total = sum(counts)
    shards = _write_shards(tmp_path, counts)
    stream = training_dataset(shards, batch_size=1, seq_length=SEQ, seed=3, cycle_length=3, shuffle_buffer=0)
    uninterrupted = _take(stream, 2 * total + 5)

    resumed_stream = training_dataset(
        shards, batch_size=1, seq_length=SEQ, seed=3, start_example=stop, cycle_length=3, shuffle_buffer=0
    )
    resumed = uninterrupted[:stop] + _take(resumed_stream, 2 * total + 5 - stop)
    every_record = sorted((s, r) for s, count in enumerate(counts) for r in range(count))
    epoch_end = (stop // total + 1) * total
    # Each epoch is read exactly once: no example replayed or skipped around the resume point...
    for epoch_start in range(0, epoch_end, total):
        assert sorted(resumed[epoch_start : epoch_start + total]) == every_record
    # ...and after the interrupted epoch the stream is the uninterrupted one, example for example.
    assert resumed[epoch_end:] == uninterrupted[epoch_end:]


def test_training_batches_have_the_training_schema(tmp_path):
    shards = _write_shards(tmp_path, [5, 6])
    batch = next(iter(training_dataset(shards, batch_size=4, seq_length=SEQ, seed=0)))
    assert set(batch) == {"input_ids", "input_mask", "segment_ids"}
    for tensor in batch.values():
        assert tensor.dtype == tf.int32 and tensor.shape == (4, SEQ)


@pytest.mark.parametrize("batch_size", [3, 11, 16])
def test_evaluation_reads_each_example_once_and_pads_the_last_batch(tmp_path, batch_size):
    shards = _write_shards(tmp_path, [5, 6])
    batches = list(evaluation_dataset([s.path for s in shards], batch_size=batch_size, seq_length=SEQ))
    assert len(batches) == -(-11 // batch_size)  # every example, even when they do not fill one batch
    assert all(batch["input_ids"].shape == (batch_size, SEQ) for batch in batches)
    ids = np.concatenate([batch["input_ids"].numpy() for batch in batches])
    mask = np.concatenate([batch["input_mask"].numpy() for batch in batches])
    assert sorted((int(row[0]), int(row[1])) for row in ids[:11]) == [(0, r) for r in range(5)] + [
        (1, r) for r in range(6)
    ]
    # The padding is empty examples: no token counts (input_mask 0), so they weigh nothing.
    assert mask[:11].any(axis=1).all() and not mask[11:].any() and not ids[11:].any()
