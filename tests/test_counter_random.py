"""Counter-based random numbers: uniformity and independence of rows whose keys are close."""

import numpy as np
import tensorflow as tf

from electra_tf.model import counter_random


def _bits(values: np.ndarray) -> np.ndarray:
    """The 24 random bits behind each uniform value."""
    return np.round(values * (1 << 24) - 0.5).astype(np.int64)


def test_rows_whose_keys_differ_in_a_few_bits_share_no_more_values_than_chance():
    base = 0x12345678
    keys = tf.constant([base, base ^ 1, base ^ 2, base ^ 3, base ^ (1 << 7), base ^ (1 << 19)], tf.uint32)
    size = 19 * 4096  # the shape of a Gumbel-noise row: masked slots x (part of) a vocab
    values = counter_random.uniform(keys, [size]).numpy()
    first = set(_bits(values[0]).tolist())
    # Two independent rows of n 24-bit values share about n^2 / 2^24 of them by chance (~360 here);
    # the old construction shared ~97% of them (the same values, shifted by a few places).
    chance = size * size / (1 << 24)
    for row in range(1, len(keys)):
        shared = len(first & set(_bits(values[row]).tolist()))
        assert shared < 2 * chance, (row, shared)
        correlation = np.corrcoef(values[0], values[row])[0, 1]
        assert abs(correlation) < 0.02, (row, correlation)


def test_values_are_uniform_in_the_open_interval_and_depend_only_on_the_row_key():
    keys = tf.constant(np.arange(64, dtype=np.uint32) * 7919)
    values = counter_random.uniform(keys, [32, 8]).numpy()
    assert values.shape == (64, 32, 8)
    assert values.min() > 0.0 and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.01
    histogram, _ = np.histogram(values, bins=10, range=(0, 1))
    assert np.all(np.abs(histogram / values.size - 0.1) < 0.01)
    np.testing.assert_array_equal(counter_random.uniform(keys[5:9], [32, 8]).numpy(), values[5:9])
