"""Fine-tuning batches: length-sorted, padded to the bucket of their longest input, every input exactly once."""

from collections import Counter

import numpy as np
import pytest

from electra_tf.finetune.batches import Batches, pad_batch
from electra_tf.finetune.buckets import batch_plan, bucket_lengths
from electra_tf.finetune.pair_encoding import ClassificationInput
from electra_tf.finetune.windows import IGNORE, TaggingWindow

MAX_SEQ_LENGTH = 128


def windows(count: int, seed: int = 0) -> list[TaggingWindow]:
    """Tagging windows of random lengths 3..128; ids encode (window, position) so rows can be traced back."""
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        length = int(rng.integers(3, MAX_SEQ_LENGTH + 1))
        ids = [1000 * index + position + 1 for position in range(length)]
        labels = [IGNORE] + [int(rng.integers(0, 5)) for _ in range(length - 2)] + [IGNORE]
        made.append(TaggingWindow(index, ids, [0] * length, labels, list(range(length))))
    return made


def row_owner(row: np.ndarray) -> int:
    """The window a padded row came from (its ids are 1000·window + position + 1)."""
    return (int(row[0]) - 1) // 1000


def test_batches_are_sorted_by_length_and_padded_to_the_smallest_bucket_that_holds_them():
    inputs = windows(300)
    batches = Batches(inputs, batch_size=16, max_seq_length=MAX_SEQ_LENGTH)
    buckets = bucket_lengths(MAX_SEQ_LENGTH)
    previous_longest = 0
    for plan, arrays in zip(batches.epoch_plan(), batches.arrays(), strict=True):
        lengths = [len(inputs[index].input_ids) for index in plan]
        assert min(lengths) >= previous_longest  # sorted: no batch starts below the last one's longest
        previous_longest = max(lengths)
        width = arrays["input_ids"].shape[1]
        assert width in buckets and width >= max(lengths)
        assert width == min(bucket for bucket in buckets if bucket >= max(lengths))
        assert arrays["label_ids"].shape == arrays["input_ids"].shape


def test_padding_is_zero_ids_masked_out_and_never_scored():
    inputs = windows(40)
    arrays = pad_batch(inputs, list(range(40)), bucket_lengths(MAX_SEQ_LENGTH))
    for row, item in enumerate(inputs):
        size = len(item.input_ids)
        assert arrays["input_ids"][row, :size].tolist() == item.input_ids
        assert arrays["label_ids"][row, :size].tolist() == item.label_ids
        assert arrays["input_mask"][row].tolist() == [1] * size + [0] * (arrays["input_mask"].shape[1] - size)
        assert (arrays["input_ids"][row, size:] == 0).all()
        assert (arrays["label_ids"][row, size:] == IGNORE).all()


def test_evaluation_batches_hold_every_input_once_with_the_last_partial_batch_kept():
    inputs = windows(101)
    batches = Batches(inputs, batch_size=8, max_seq_length=MAX_SEQ_LENGTH)
    rows = [row_owner(row) for arrays in batches.arrays() for row in arrays["input_ids"]]
    assert sorted(rows) == list(range(101))
    assert rows == batches.order  # predictions come back in this order
    sizes = [len(arrays["input_ids"]) for arrays in batches.arrays()]
    assert sizes == [8] * 12 + [5] and batches.num_batches == 13
    assert batches.epoch_plan(0) == batches.epoch_plan(3)  # unshuffled: the same every time


def test_training_epochs_each_hold_every_input_once_in_a_seeded_order():
    inputs = windows(101)
    batches = Batches(inputs, batch_size=8, max_seq_length=MAX_SEQ_LENGTH, seed=7)
    rows_per_epoch = []
    for epoch in range(3):
        plan = batches.epoch_plan(epoch)
        assert Counter(index for batch in plan for index in batch) == Counter(range(101))
        rows_per_epoch.append(plan)
    assert rows_per_epoch[0] != rows_per_epoch[1]  # each epoch another batch order
    assert Batches(inputs, 8, MAX_SEQ_LENGTH, seed=7).epoch_plan(1) == rows_per_epoch[1]  # reproducible
    assert Batches(inputs, 8, MAX_SEQ_LENGTH, seed=8).epoch_plan(1) != rows_per_epoch[1]
    # The dataset yields the epochs one after another, each batch still length-homogeneous.
    dataset_rows = [row_owner(row) for arrays in batches.dataset(epochs=3) for row in arrays["input_ids"].numpy()]
    assert dataset_rows == [index for plan in rows_per_epoch for batch in plan for index in batch]


def test_equal_lengths_are_shuffled_within_their_place_in_the_sorted_order():
    lengths = [5] * 10 + [9] * 10
    plan = batch_plan(lengths, 5, seed=0)
    for batch in plan:
        assert len({lengths[index] for index in batch}) == 1
    shuffled_ties = batch_plan(lengths, 20, seed=0)[0]
    assert shuffled_ties[:10] != list(range(10)) and sorted(shuffled_ties[:10]) == list(range(10))


def test_classification_batches_carry_one_label_per_example():
    inputs = [ClassificationInput([4, 10 + index, 5], [0, 0, 0], index % 3, False) for index in range(10)]
    inputs.append(ClassificationInput([4, 7, 5, 8, 9, 5], [0, 0, 0, 1, 1, 1], 2, False))
    batches = Batches(inputs, batch_size=4, max_seq_length=64)
    arrays = list(batches.arrays())
    assert [a["label_ids"].shape for a in arrays] == [(4,), (4,), (3,)]
    labels = np.concatenate([a["label_ids"] for a in arrays])
    assert labels[np.argsort(batches.order)].tolist() == [item.label_id for item in inputs]
    last = arrays[-1]
    assert last["input_ids"].shape == (3, 32)
    assert last["segment_ids"][-1, :6].tolist() == [0, 0, 0, 1, 1, 1]


def test_an_input_longer_than_max_seq_length_is_a_programming_error():
    too_long = TaggingWindow(0, list(range(1, 131)), [0] * 130, [IGNORE] * 130, [IGNORE] * 130)
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        list(Batches([too_long], 4, MAX_SEQ_LENGTH).arrays())


def test_batch_plan_sorts_by_length_and_shuffles_each_epoch_from_the_seed():
    rng = np.random.default_rng(5)
    lengths = rng.integers(3, 12, size=53).tolist()
    evaluation = batch_plan(lengths, 10)
    assert [len(batch) for batch in evaluation] == [10, 10, 10, 10, 10, 3]
    flat = [index for batch in evaluation for index in batch]
    assert flat == sorted(range(53), key=lambda index: (lengths[index], index))  # ties in input order
    epochs = [batch_plan(lengths, 10, seed=1, epoch=epoch) for epoch in range(3)]
    assert epochs[0] == batch_plan(lengths, 10, seed=1, epoch=0)  # reproducible
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != batch_plan(lengths, 10, seed=2, epoch=0)
    for plan in epochs:
        assert sorted(index for batch in plan for index in batch) == list(range(53))
        # Each batch is a run of the length-sorted order: put back in length order, they tile it.
        by_length = sorted(plan, key=lambda batch: (min(lengths[i] for i in batch), max(lengths[i] for i in batch)))
        runs = [sorted(lengths[index] for index in batch) for batch in by_length]
        assert [length for run in runs for length in run] == sorted(lengths)
