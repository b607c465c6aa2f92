"""Dropout whose masks come from the counter-based generator (see ``counter_random``).

Keras' ``Dropout`` draws from a stateful seed generator. Inside an XLA-compiled training step on CPU
that costs about 7 s per step for a 4-layer model (measured: 8.2 s vs 1.0 s without dropout; see
bench/RESULTS.md), and its masks depend on how many times the generator was called, so a resumed
run, or the same batch split over replicas, sees other masks. Here each mask element is a hash of
(the forward pass's per-example keys, the layer's salt, the element's position): no state, the same
masks whatever the replica or accumulation split, and the XLA step costs what the model costs.

The pretrainer sets the per-example keys of each forward pass on the model's :class:`DropoutNoise`
(one for the generator pass, one for the discriminator pass); every :class:`CounterDropout` layer
reads them and folds in its own salt, so no two layers (or passes) share a mask.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import tensorflow as tf

from electra_tf.model import counter_random


class DropoutNoise:
    """The per-example keys of the current forward pass, shared by all dropout layers of one model."""

    def __init__(self) -> None:
        self.keys: tf.Tensor | None = None
        self._salts = 0

    def new_salt(self) -> int:
        """A salt for one more dropout layer (layers are created in a fixed order, so salts are stable)."""
        self._salts += 1
        return self._salts

    @contextlib.contextmanager
    def keys_for_pass(self, keys: tf.Tensor) -> Iterator[None]:
        """Use ``keys`` (uint32 ``[B]``) for the dropout layers called inside the block."""
        previous, self.keys = self.keys, keys
        try:
            yield
        finally:
            self.keys = previous


class CounterDropout(keras.layers.Layer):
    """Inverted dropout with counter-based masks (a no-op unless ``training``)."""

    def __init__(self, rate: float, noise: DropoutNoise, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self.noise = noise
        self.salt = noise.new_salt()

    def call(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        if not training or self.rate == 0:
            return inputs
        keys = self.noise.keys
        if keys is None:  # outside a pretraining step: key each row by its position in the batch
            keys = tf.cast(tf.range(tf.shape(inputs)[0]), tf.uint32)
        layer_keys = counter_random.row_keys(self.salt, tf.constant(0, tf.int64), tf.cast(keys, tf.int64), salt=0)
        tail = inputs.shape[1:] if inputs.shape[1:].is_fully_defined() else tf.shape(inputs)[1:]
        keep = counter_random.uniform(layer_keys, tail) >= self.rate
        return tf.where(keep, inputs / tf.cast(1.0 - self.rate, inputs.dtype), tf.zeros_like(inputs))
