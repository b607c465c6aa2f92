"""Dynamic masking and sampling: counts, excluded tokens, distinct positions (or Google's draws with
replacement), 85/15, labels, determinism."""

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.model import counter_random
from electra_tf.model.masking import (
    MASK_REPLACE_PROB,
    SpecialIds,
    StepKeys,
    gumbel_sample,
    mask_batch,
    num_to_predict,
    replace_at_slots,
    replacement_labels,
    scatter_slots,
)

# BETO-like ids on purpose: [MASK]=0 and [PAD]=1, so nothing may assume BERT's layout.
SPECIAL = SpecialIds(cls_id=4, sep_id=5, mask_id=0)
PAD = 1


def _rows(lengths, seq_length=32, seed=0):
    """Rows ``[CLS] tokens [SEP]`` right-padded with PAD; real tokens drawn from ids 6..99."""
    rng = np.random.default_rng(seed)
    ids = np.full((len(lengths), seq_length), PAD, np.int32)
    mask = np.zeros((len(lengths), seq_length), np.int32)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(6, 100, length)
        ids[row, 0], ids[row, length - 1] = SPECIAL.cls_id, SPECIAL.sep_id
        mask[row, :length] = 1
    return ids, mask


def _mask(ids, mask, mask_prob=0.15, max_predictions=5, step=0, first_example=0, masking="distinct"):
    keys = StepKeys.derive(7, tf.constant(step, tf.int64), first_example + tf.range(ids.shape[0]))
    return mask_batch(tf.constant(ids), tf.constant(mask), SPECIAL, mask_prob, max_predictions, keys, masking)


def test_count_is_googles_rounded_share_of_real_tokens_half_to_even():
    # 0.15·10 = 1.5 → 2 and 0.15·30 = 4.5 → 4 (round half to even); at least 1; at most N.
    lengths = [3, 10, 30, 32]
    _, mask = _rows(lengths)
    counts = num_to_predict(tf.constant(mask), 0.15, 19).numpy()
    assert counts.tolist() == [1, 2, 4, 5]
    assert num_to_predict(tf.constant(mask), 0.15, 3).numpy().tolist() == [1, 2, 3, 3]


def test_positions_are_distinct_real_candidates_and_weights_mark_the_count():
    ids, mask = _rows([32, 20, 7, 3] * 8, seed=1)
    result = _mask(ids, mask, mask_prob=0.3, max_predictions=9)
    positions, weights = result.positions.numpy(), result.weights.numpy()
    expected_counts = np.minimum(num_to_predict(tf.constant(mask), 0.3, 9).numpy(), mask.sum(1) - 2)
    np.testing.assert_array_equal(weights.sum(1), expected_counts)
    for row in range(len(ids)):
        chosen = positions[row][weights[row] > 0]
        assert len(set(chosen.tolist())) == len(chosen)  # distinct
        assert mask[row, chosen].all()  # never padding
        assert not np.isin(ids[row, chosen], [SPECIAL.cls_id, SPECIAL.sep_id, SPECIAL.mask_id]).any()
        np.testing.assert_array_equal(result.target_ids.numpy()[row][weights[row] > 0], ids[row, chosen])


def test_googles_masking_draws_candidates_with_replacement_and_keeps_its_count():
    ids, mask = _rows([32, 20, 7, 3] * 8, seed=1)
    result = _mask(ids, mask, mask_prob=0.3, max_predictions=9, masking="google")
    positions, weights = result.positions.numpy(), result.weights.numpy()
    # Google's count, not capped by the candidates: a 3-token row ([CLS] x [SEP]) draws its one candidate.
    np.testing.assert_array_equal(weights.sum(1), num_to_predict(tf.constant(mask), 0.3, 9).numpy())
    repeats = 0
    for row in range(len(ids)):
        chosen = positions[row][weights[row] > 0]
        repeats += len(chosen) - len(set(chosen.tolist()))
        assert mask[row, chosen].all()
        assert not np.isin(ids[row, chosen], [SPECIAL.cls_id, SPECIAL.sep_id, SPECIAL.mask_id]).any()
        np.testing.assert_array_equal(result.target_ids.numpy()[row][weights[row] > 0], ids[row, chosen])
    assert repeats > 0


def test_googles_masking_masks_about_13_8_percent_of_a_full_row():
    # 19 draws among 126 candidates leave 126·(1 − (125/126)^19) ≈ 17.69 distinct positions: 13.8% of 128.
    ids, mask = _rows([128] * 2000, seq_length=128, seed=5)
    result = _mask(ids, mask, max_predictions=19, masking="google")
    chosen = scatter_slots(result.weights > 0, result.positions, 128).numpy()
    expected = 126 * (1 - (125 / 126) ** 19)
    assert abs(chosen.sum(1).mean() - expected) < 0.05, chosen.sum(1).mean()  # σ of the mean ≈ 0.025
    frequencies = np.bincount(result.positions.numpy().ravel(), minlength=128)[1:127] / result.positions.numpy().size
    assert np.abs(frequencies - 1 / 126).max() < 0.3 / 126, frequencies  # uniform over the candidates


@pytest.mark.parametrize("masking", ["distinct", "google"])
def test_a_row_of_only_cls_and_sep_masks_nothing(masking):
    ids, mask = _rows([2, 12])
    result = _mask(ids, mask, masking=masking)
    assert result.weights.numpy()[0].sum() == 0
    np.testing.assert_array_equal(result.masked_ids.numpy()[0], ids[0])


def test_85_percent_of_chosen_positions_become_mask_and_the_rest_keep_their_token():
    ids, mask = _rows([32] * 2000, seed=2)
    result = _mask(ids, mask, max_predictions=5)
    masked_ids = result.masked_ids.numpy()
    chosen = scatter_slots(result.weights > 0, result.positions, ids.shape[1]).numpy()
    became_mask = masked_ids[chosen] == SPECIAL.mask_id
    share = became_mask.mean()
    assert abs(share - MASK_REPLACE_PROB) < 0.01, share  # 10,000 draws: 3.6σ ≈ 0.013
    np.testing.assert_array_equal(masked_ids[chosen][~became_mask], ids[chosen][~became_mask])
    np.testing.assert_array_equal(masked_ids[~chosen], ids[~chosen])  # nothing else changes


def test_positions_are_uniform_over_candidates():
    ids, mask = _rows([12] * 5000, seed=3)
    result = _mask(ids, mask, mask_prob=0.1, max_predictions=1)  # one position per row among 10 candidates
    chosen = result.positions.numpy()[:, 0]
    frequencies = np.bincount(chosen, minlength=12)[1:11] / len(chosen)
    assert np.abs(frequencies - 0.1).max() < 0.015, frequencies


def test_draws_depend_on_step_seed_and_example_index_not_on_the_rest_of_the_batch():
    ids, mask = _rows([32, 25, 18, 30], seed=4)
    whole = _mask(ids, mask, step=3)
    # Rows 2-3 alone, told they are examples 2-3 of the global batch, draw exactly the same.
    part = _mask(ids[2:], mask[2:], step=3, first_example=2)
    np.testing.assert_array_equal(whole.positions.numpy()[2:], part.positions.numpy())
    np.testing.assert_array_equal(whole.masked_ids.numpy()[2:], part.masked_ids.numpy())
    # Another step draws differently.
    other = _mask(ids, mask, step=4)
    assert not np.array_equal(whole.positions.numpy(), other.positions.numpy())


def test_replacements_are_written_only_at_selected_slots():
    ids = tf.constant([[10, 11, 12, 13, 14]])
    out = replace_at_slots(ids, tf.constant([[3, 1]]), tf.constant([[90, 91]]), tf.constant([[True, False]]))
    assert out.numpy().tolist() == [[10, 11, 12, 90, 14]]


def test_a_position_drawn_twice_gets_the_floor_of_the_mean_as_in_googles_scatter_update():
    ids = tf.constant([[10, 11, 12, 13, 14]])
    positions, selected = tf.constant([[3, 3, 1, 2]]), tf.constant([[True, True, True, False]])
    out = replace_at_slots(ids, positions, tf.constant([[90, 95, 7, 50]]), selected)
    assert out.numpy().tolist() == [[10, 7, 12, 92, 14]]


def test_labels_mark_only_replacements_that_differ_from_the_original():
    # A correct sample, or two samples whose mean is the original, is "real".
    ids = tf.constant([[10, 11, 12, 13, 14]])
    positions = tf.constant([[1, 3, 2, 2, 0]])
    sampled = tf.constant([[11, 99, 8, 16, 7]])
    chosen = tf.constant([[True, True, True, True, False]])
    fake = replace_at_slots(ids, positions, sampled, chosen)
    labels = replacement_labels(ids, fake, positions, chosen).numpy()
    assert labels.tolist() == [[False, False, False, True, False]]


def test_gumbel_sampling_follows_the_softmax():
    logits = tf.math.log(tf.constant([[[0.5, 0.3, 0.15, 0.05]]] * 20000))
    logits = tf.reshape(logits, [20000, 1, 4])
    keys = counter_random.row_keys(1, tf.constant(0, tf.int64), tf.range(20000), salt=9)
    samples = gumbel_sample(logits, 1.0, keys).numpy().ravel()
    frequencies = np.bincount(samples, minlength=4) / len(samples)
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.15, 0.05], atol=0.012)
    # Low temperature makes it (nearly) argmax.
    cold = gumbel_sample(logits, 0.01, keys).numpy().ravel()
    assert (cold == 0).mean() > 0.99


@pytest.mark.parametrize("shape", [[7], [3, 5]])
def test_uniform_values_are_in_the_open_interval_and_row_independent(shape):
    keys = counter_random.row_keys(3, tf.constant(1, tf.int64), tf.range(1000), salt=1)
    values = counter_random.uniform(keys, shape).numpy()
    assert values.shape == (1000, *shape)
    assert values.min() > 0 and values.max() < 1
    assert abs(values.mean() - 0.5) < 0.01
    np.testing.assert_array_equal(counter_random.uniform(keys[5:6], shape).numpy()[0], values[5])
