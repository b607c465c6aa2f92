"""Batches of similar lengths, padded to a few fixed buckets rather than always ``max_seq_length``.

XLA compiles one program per input shape, so lengths come from a short fixed list (32, 64, 128,
... and ``max_seq_length`` itself); padding every batch to ``max_seq_length`` instead would waste
most of the compute on short sentences: CoNLL-2002's training windows have a median of 42 ids
with BETO's vocab, and padded to 128 they are two thirds padding. Buckets pay off only for batches
of similar lengths: batches of 32 in file order, each padded to its bucket, hold 3% fewer ids than
padding to 128, batches of length-sorted windows 52% fewer (docs/finetuning_data.md), hence
:func:`batch_plan`. No TensorFlow here: electra_tf's ``tf.data`` batches (``batches.py``) and the
Hugging Face PyTorch peer (bench/hf_finetuning.py) share the plan, so both train on the same batches
in the same order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

import numpy as np

SMALLEST_BUCKET = 32


def bucket_lengths(max_seq_length: int, smallest: int = SMALLEST_BUCKET) -> tuple[int, ...]:
    """``smallest``, twice that, ... below ``max_seq_length``, then ``max_seq_length``."""
    if max_seq_length < 1 or smallest < 1:
        raise ValueError(f"bucket lengths need positive sizes, not {max_seq_length} and {smallest}")
    lengths = []
    length = smallest
    while length < max_seq_length:
        lengths.append(length)
        length *= 2
    return (*lengths, max_seq_length)


def padded_length(lengths: Iterable[int], buckets: Sequence[int]) -> int:
    """The smallest bucket that holds the longest of a batch's ``lengths``."""
    longest = max(lengths)
    index = bisect.bisect_left(buckets, longest)
    if index == len(buckets):
        raise ValueError(f"a sequence of {longest} ids is longer than the largest bucket ({buckets[-1]})")
    return buckets[index]


def batch_plan(lengths: Sequence[int], batch_size: int, seed: int | None = None, epoch: int = 0) -> list[list[int]]:
    """The input indices of each batch: sorted by length, cut into ``batch_size`` runs (the last partial).

    With a ``seed`` (training), one generator drawn from ``(seed, epoch)`` first orders equal lengths
    at random and then shuffles the batches; without (evaluation), equal lengths keep their input
    order and the batches run from shortest to longest.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, not {batch_size}")
    rng = None if seed is None else np.random.default_rng([seed, epoch])
    tie_break = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    order = np.lexsort((tie_break, np.asarray(lengths))).tolist()
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    return batches if rng is None else [batches[index] for index in rng.permutation(len(batches))]
