"""Dynamic masking for the generator and sampling of replacement tokens.

See docs/algorithm.md#masking and docs/algorithm.md#sampling-and-labels for the whole procedure.

Deliberate deviation from Google (its issue #41, documented in the README): Google draws the N
masked positions *with replacement* and averages duplicated updates, so about 7% of draws are
wasted and ~1% of positions get an arbitrary averaged id. By default (``masking="distinct"``) the
positions of a row are a uniformly random set of *distinct* candidates (top-k of random scores), so
exactly ``num_to_predict`` distinct tokens are masked; ``masking="google"`` draws them with
replacement and averages duplicates as Google does, to reproduce its runs. Everything else follows
Google: the count is
``max(1, min(N, round_half_even(mask_prob · Σ input_mask)))``, [CLS]/[SEP]/[MASK]/padding are never
chosen, 85% of the chosen positions become [MASK] and 15% keep their token, and the discriminator
label of a position is 1 only where the sampled token differs from the original.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import tensorflow as tf

from electra_tf.model import counter_random

if TYPE_CHECKING:
    from electra_tf.tokenization import Vocab

MASK_REPLACE_PROB = 0.85
"""Share of chosen positions replaced by [MASK]; the others keep their token (Google: no random token)."""

# Salts that keep the random streams of the different uses independent.
_SALT_POSITIONS, _SALT_MASK_COIN, _SALT_SAMPLING, _SALT_GENERATOR_DROPOUT, _SALT_DISCRIMINATOR_DROPOUT = 1, 2, 3, 4, 5


@dataclasses.dataclass(frozen=True)
class SpecialIds:
    """The vocab ids masking needs (read from the vocab, never assumed)."""

    cls_id: int
    sep_id: int
    mask_id: int

    @classmethod
    def from_vocab(cls, vocab: Vocab) -> SpecialIds:
        return cls(cls_id=vocab.cls_id, sep_id=vocab.sep_id, mask_id=vocab.mask_id)


@dataclasses.dataclass(frozen=True)
class StepKeys:
    """Per-example uint32 keys ``[B]`` of the random draws of one training step: masked positions,
    the [MASK]-or-keep coin, the generator's samples, and the dropout of each network's pass."""

    positions: tf.Tensor
    mask_coin: tf.Tensor
    sampling: tf.Tensor
    generator_dropout: tf.Tensor
    discriminator_dropout: tf.Tensor

    @classmethod
    def derive(cls, seed: int, step: tf.Tensor, example_index: tf.Tensor) -> StepKeys:
        """Keys for the examples ``example_index`` (their indices in the global batch) at ``step``."""
        return cls(
            positions=counter_random.row_keys(seed, step, example_index, _SALT_POSITIONS),
            mask_coin=counter_random.row_keys(seed, step, example_index, _SALT_MASK_COIN),
            sampling=counter_random.row_keys(seed, step, example_index, _SALT_SAMPLING),
            generator_dropout=counter_random.row_keys(seed, step, example_index, _SALT_GENERATOR_DROPOUT),
            discriminator_dropout=counter_random.row_keys(seed, step, example_index, _SALT_DISCRIMINATOR_DROPOUT),
        )


@dataclasses.dataclass
class MaskedBatch:
    """The generator's input and targets for one batch.

    ``positions``/``target_ids``/``weights`` are ``[B, N]``: the chosen positions (distinct in a row),
    the original ids there, and 1.0 for the first ``num_to_predict`` slots (0.0 for unused slots).
    """

    masked_ids: tf.Tensor
    positions: tf.Tensor
    target_ids: tf.Tensor
    weights: tf.Tensor


def num_to_predict(input_mask: tf.Tensor, mask_prob: float, max_predictions: int) -> tf.Tensor:
    """Masked slots per row ``[B]``: ``max(1, min(N, round_half_even(mask_prob · Σ input_mask)))`` (Google's count)."""
    num_tokens = tf.reduce_sum(tf.cast(input_mask, tf.float32), axis=-1)
    count = tf.cast(tf.round(num_tokens * mask_prob), tf.int32)
    return tf.maximum(1, tf.minimum(max_predictions, count))


def candidates_mask(input_ids: tf.Tensor, input_mask: tf.Tensor, special: SpecialIds) -> tf.Tensor:
    """Positions that may be masked: real tokens other than [CLS], [SEP] and [MASK] (bool ``[B, S]``)."""
    is_special = (input_ids == special.cls_id) | (input_ids == special.sep_id) | (input_ids == special.mask_id)
    return tf.cast(input_mask, tf.bool) & ~is_special


def masked_slot_counts(
    candidates: tf.Tensor, input_mask: tf.Tensor, mask_prob: float, max_predictions: int, masking: str
) -> tf.Tensor:
    """Slots with weight 1 per row ``[B]`` (``candidates``: :func:`candidates_mask`): Google's count,
    capped by the candidates for distinct positions (a row with fewer candidates masks all of them);
    with replacement only a row without any candidate masks nothing."""
    available = tf.reduce_sum(tf.cast(candidates, tf.int32), axis=-1)
    count = num_to_predict(input_mask, mask_prob, max_predictions)
    if masking == "google":
        return tf.where(available > 0, count, 0)
    return tf.minimum(count, available)


def mask_batch(
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    special: SpecialIds,
    mask_prob: float,
    max_predictions: int,
    keys: StepKeys,
    masking: str = "distinct",
) -> MaskedBatch:
    """Choose the positions of each row (``masking``: "distinct" or "google", see the module's
    docstring) and build the generator's masked input."""
    seq_length = input_ids.shape[1]
    candidates = candidates_mask(input_ids, input_mask, special)
    if masking == "google":
        positions = draw_with_replacement(candidates, keys.positions, max_predictions)
    else:
        scores = tf.where(candidates, counter_random.uniform(keys.positions, [seq_length]), -1.0)
        _, positions = tf.math.top_k(scores, k=max_predictions, sorted=True)
    count = masked_slot_counts(candidates, input_mask, mask_prob, max_predictions, masking)
    weights = tf.sequence_mask(count, max_predictions, dtype=tf.float32)
    target_ids = tf.gather(input_ids, positions, batch_dims=1) * tf.cast(weights, input_ids.dtype)

    use_mask = (counter_random.uniform(keys.mask_coin, [max_predictions]) < MASK_REPLACE_PROB) & (weights > 0)
    to_mask = scatter_slots(use_mask, positions, seq_length)
    masked_ids = tf.where(to_mask, tf.constant(special.mask_id, input_ids.dtype), input_ids)
    return MaskedBatch(masked_ids=masked_ids, positions=positions, target_ids=target_ids, weights=weights)


def draw_with_replacement(candidates: tf.Tensor, key: tf.Tensor, num_slots: int) -> tf.Tensor:
    """Positions ``[B, N]`` drawn independently and uniformly from each row's candidates (bool ``[B, S]``),
    as Google's ``tf.random.categorical`` over them: repeats happen. A row without candidates gets 0s."""
    available = tf.reduce_sum(tf.cast(candidates, tf.int32), axis=-1, keepdims=True)
    draws = counter_random.uniform(key, [num_slots]) * tf.cast(available, tf.float32)
    ranks = tf.minimum(tf.cast(draws, tf.int32), tf.maximum(available - 1, 0))  # [B, N]: which candidate
    candidate_rank = tf.cumsum(tf.cast(candidates, tf.int32), axis=-1) - 1  # [B, S]
    is_drawn = (candidate_rank[:, None, :] == ranks[:, :, None]) & candidates[:, None, :]
    return tf.argmax(tf.cast(is_drawn, tf.int32), axis=-1, output_type=tf.int32)


def scatter_slots(selected: tf.Tensor, positions: tf.Tensor, seq_length: int) -> tf.Tensor:
    """Bool ``[B, S]``: True at the positions of the selected slots (``selected``/``positions`` ``[B, N]``)."""
    one_hot = tf.one_hot(positions, seq_length, on_value=True, off_value=False, dtype=tf.bool)
    return tf.reduce_any(one_hot & selected[:, :, None], axis=1)


def replace_at_slots(ids: tf.Tensor, positions: tf.Tensor, values: tf.Tensor, selected: tf.Tensor) -> tf.Tensor:
    """``ids`` with ``values[b, n]`` written at ``positions[b, n]`` for every selected slot.

    A position written by several slots (only with ``masking="google"``) gets the floor of their
    values' mean, as Google's ``scatter_update`` does: usually an arbitrary token.
    """
    seq_length = ids.shape[1]
    one_hot = tf.one_hot(positions, seq_length, dtype=ids.dtype) * tf.cast(selected, ids.dtype)[:, :, None]
    written = tf.reduce_sum(one_hot * values[:, :, None], axis=1)
    writes = tf.reduce_sum(one_hot, axis=1)
    return tf.where(writes > 0, tf.math.floordiv(written, tf.maximum(writes, 1)), ids)


def replacement_labels(
    original_ids: tf.Tensor, fake_ids: tf.Tensor, positions: tf.Tensor, selected: tf.Tensor
) -> tf.Tensor:
    """The discriminator's labels, bool ``[B, S]``: True where a selected slot wrote a token that differs
    from the original (a correct sample, or repeats whose mean is the original, count as real)."""
    return scatter_slots(selected, positions, original_ids.shape[1]) & (fake_ids != original_ids)


def gumbel_sample(logits: tf.Tensor, temperature: float, key: tf.Tensor) -> tf.Tensor:
    """One token per slot from ``softmax(logits / temperature)`` by the Gumbel-max trick (float32).

    ``logits`` ``[B, N, V]``; returns int32 ``[B, N]``; no gradient flows through the sample.
    """
    logits = tf.cast(tf.stop_gradient(logits), tf.float32)
    noise = counter_random.uniform(key, logits.shape[1:])
    gumbel = -tf.math.log(-tf.math.log(noise))
    return tf.argmax(logits / temperature + gumbel, axis=-1, output_type=tf.int32)
