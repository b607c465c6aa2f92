"""Encoded fine-tuning inputs as ``tf.data`` batches: length-sorted, padded to a few bucket lengths.

Inputs (tagging windows or classification inputs) are sorted by length and cut into batches, so
a batch holds inputs of similar length and is padded only to the smallest of
:func:`electra_tf.finetune.buckets.bucket_lengths` that holds its longest input (XLA compiles one
program per shape, so a handful of shapes rather than one per batch; about half the ids of padding
everything to ``max_seq_length`` on CoNLL-2002, docs/finetuning_data.md).

Training: each epoch sorts with ties broken at random and shuffles the order of the batches, both
from ``(seed, epoch)``, so every epoch sees every input exactly once, in another order, and a
trial's data order is reproducible. The last batch of an epoch may be partial (no input is left
out). Dev and test: sorted once, batches in that order, the last one partial; :attr:`order` maps
the predictions back to the inputs.

Features: ``input_ids``, ``input_mask``, ``segment_ids`` (int32 ``[B, T]``, padding 0) and
``label_ids``: ``[B, T]`` for tagging with :data:`~electra_tf.finetune.windows.IGNORE` at every
position that is not scored (padding included), ``[B]`` for classification.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import tensorflow as tf

from electra_tf.finetune.buckets import batch_plan, bucket_lengths, padded_length
from electra_tf.finetune.pair_encoding import ClassificationInput
from electra_tf.finetune.windows import IGNORE, TaggingWindow

FEATURES = ("input_ids", "input_mask", "segment_ids")
LABELS = "label_ids"

EncodedInput = TaggingWindow | ClassificationInput


def pad_batch(inputs: Sequence[EncodedInput], indices: Sequence[int], buckets: Sequence[int]) -> dict[str, np.ndarray]:
    """The features of ``inputs[indices]``, padded to the bucket that holds the longest of them."""
    chosen = [inputs[index] for index in indices]
    length = padded_length((len(item.input_ids) for item in chosen), buckets)
    features = {name: np.zeros((len(chosen), length), np.int32) for name in FEATURES}
    tagging = isinstance(chosen[0], TaggingWindow)
    labels = np.full((len(chosen), length), IGNORE, np.int32) if tagging else np.zeros(len(chosen), np.int32)
    for row, item in enumerate(chosen):
        size = len(item.input_ids)
        features["input_ids"][row, :size] = item.input_ids
        features["input_mask"][row, :size] = 1
        features["segment_ids"][row, :size] = item.segment_ids
        if tagging:
            labels[row, :size] = item.label_ids
        else:
            labels[row] = item.label_id
    return {**features, LABELS: labels}


class Batches:
    """The batches of one split's encoded inputs.

    ``seed`` None: evaluation order (sorted once, see :func:`~electra_tf.finetune.buckets.batch_plan`);
    otherwise a training split whose epoch ``e`` is shuffled from ``(seed, e)``.
    """

    def __init__(
        self, inputs: Sequence[EncodedInput], batch_size: int, max_seq_length: int, seed: int | None = None
    ) -> None:
        if not inputs:
            raise ValueError("no inputs to batch")
        self.inputs = list(inputs)
        self.batch_size = batch_size
        self.buckets = bucket_lengths(max_seq_length)
        self.seed = seed
        self.lengths = [len(item.input_ids) for item in self.inputs]
        self.tagging = isinstance(self.inputs[0], TaggingWindow)

    @property
    def num_batches(self) -> int:
        """Batches per epoch (the last may be partial)."""
        return -(-len(self.inputs) // self.batch_size)

    def epoch_plan(self, epoch: int = 0) -> list[list[int]]:
        """The input indices of each batch of ``epoch`` (evaluation: the same for every epoch)."""
        return batch_plan(self.lengths, self.batch_size, self.seed, epoch)

    @property
    def order(self) -> list[int]:
        """The input index of each row the evaluation batches hold, in order (predictions come back so)."""
        return [index for batch in self.epoch_plan() for index in batch]

    def arrays(self, epochs: int = 1) -> Iterator[dict[str, np.ndarray]]:
        """The padded batches of ``epochs`` epochs, one after another."""
        for epoch in range(epochs):
            for indices in self.epoch_plan(epoch):
                yield pad_batch(self.inputs, indices, self.buckets)

    def dataset(self, epochs: int = 1) -> tf.data.Dataset:
        """:meth:`arrays` as a ``tf.data.Dataset`` (each batch a dict of the features and ``label_ids``)."""
        label_shape = [None, None] if self.tagging else [None]
        signature = {name: tf.TensorSpec([None, None], tf.int32) for name in FEATURES}
        signature[LABELS] = tf.TensorSpec(label_shape, tf.int32)
        dataset = tf.data.Dataset.from_generator(lambda: self.arrays(epochs), output_signature=signature)
        # A known length lets Keras end each pass without an "input ran out of data" warning.
        return dataset.apply(tf.data.experimental.assert_cardinality(epochs * self.num_batches)).prefetch(2)
