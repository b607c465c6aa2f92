"""Counter-based random numbers: each value is a hash of (seed, step, example, position, salt).

Masking, sampling and dropout (``dropout.py``) draw from these instead of a stateful generator, so the random numbers an
example sees depend only on the run's seed, the training step and the example's index in the
global batch, never on how the batch is split over replicas or accumulation micro-batches, and
never on the state of a generator. That gives three guarantees that stateful RNGs cannot:

* a resumed run masks, samples and drops out exactly as the uninterrupted run would have;
* one device, N replicas and k accumulation micro-batches compute the same update;
* nothing random needs to be stored in a checkpoint.

The hash is Chris Wellons' "lowbias32" integer mixer, applied to a running combination of the
counters; it is cheap elementwise integer arithmetic, which XLA fuses.
"""

from __future__ import annotations

import tensorflow as tf

_UINT32_MULTIPLIERS = (0x7FEB352D, 0x846CA68B)
_GOLDEN = 0x9E3779B9


def _mix(x: tf.Tensor) -> tf.Tensor:
    """lowbias32: a bijective uint32 → uint32 mixer with good avalanche."""
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))
    x = x * tf.constant(_UINT32_MULTIPLIERS[0], tf.uint32)
    x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(15, tf.uint32)))
    x = x * tf.constant(_UINT32_MULTIPLIERS[1], tf.uint32)
    return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def _combine(key: tf.Tensor, value: tf.Tensor) -> tf.Tensor:
    """Fold ``value`` into ``key`` (both uint32, broadcastable)."""
    return _mix(tf.bitwise.bitwise_xor(key, value + tf.constant(_GOLDEN, tf.uint32)))


def _as_uint32(value: tf.Tensor | int) -> tf.Tensor:
    value = tf.convert_to_tensor(value)
    if value.dtype != tf.int64:
        value = tf.cast(value, tf.int64)
    return tf.cast(tf.bitwise.bitwise_and(value, tf.constant(0xFFFFFFFF, tf.int64)), tf.uint32)


def row_keys(seed: int, step: tf.Tensor, example_index: tf.Tensor, salt: int) -> tf.Tensor:
    """One uint32 key per example ``[B]`` for one use (``salt``) at one training ``step``."""
    key = _combine(_as_uint32(seed), _as_uint32(salt))
    key = _combine(key, _as_uint32(step))
    return _combine(key, _as_uint32(example_index))


def uniform(keys: tf.Tensor, shape_tail: tuple[int, ...] | list[int] | tf.TensorShape | tf.Tensor) -> tf.Tensor:
    """Float32 values uniform in the open interval (0, 1), shape ``[B, *shape_tail]``.

    Element ``(b, i, j, ...)`` hashes ``keys[b]`` with the element's flat index inside the row, so
    a row's values do not depend on the other rows. The index is hashed before it meets the key:
    XOR-ing the raw index into the key would make two rows whose keys differ in a few low bits
    share almost all their values, shifted by a few places. 24 random bits per value: never exactly
    0 or 1, so ``log(u)`` and ``log(-log(u))`` are finite. ``shape_tail`` may be a tensor (a
    dimension only known when the step runs, as in fine-tuning's bucketed batches).
    """
    if isinstance(shape_tail, tf.TensorShape):
        shape_tail = shape_tail.as_list()
    shape_tail = tf.convert_to_tensor(shape_tail, tf.int32)
    counters = tf.cast(tf.range(tf.reduce_prod(shape_tail), dtype=tf.int32), tf.uint32)
    bits = _combine(keys[:, None], _mix(counters)[None, :])
    top24 = tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32)
    values = (top24 + 0.5) * (1.0 / (1 << 24))
    return tf.reshape(values, tf.concat([[-1], shape_tail], axis=0))


def fingerprint(ids: tf.Tensor) -> tf.Tensor:
    """A uint32 hash per row of an int ``[B, S]`` tensor (position-sensitive), e.g. an example's identity."""
    positions = tf.cast(tf.range(tf.shape(ids)[1]), tf.uint32)
    mixed = _combine(_mix(positions)[None, :], _as_uint32(ids))
    total = tf.reduce_sum(tf.cast(mixed, tf.int64), axis=1)
    return _mix(_as_uint32(total))
