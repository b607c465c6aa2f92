"""Counter-based dropout: inverted scaling, rate, determinism, independence between layers and passes."""

import numpy as np
import tensorflow as tf

from electra_tf.model.dropout import CounterDropout, DropoutNoise


def test_drops_at_the_rate_scales_the_rest_and_is_a_no_op_when_not_training():
    noise = DropoutNoise()
    layer = CounterDropout(0.1, noise)
    inputs = tf.ones([64, 32, 16])
    with noise.keys_for_pass(tf.cast(tf.range(64), tf.uint32)):
        out = layer(inputs, training=True).numpy()
    kept = out != 0
    assert abs(kept.mean() - 0.9) < 0.005
    np.testing.assert_allclose(out[kept], 1 / 0.9, rtol=1e-6)
    np.testing.assert_array_equal(layer(inputs, training=False).numpy(), inputs.numpy())


def test_masks_depend_on_the_keys_and_the_layer_not_on_state():
    noise = DropoutNoise()
    first, second = CounterDropout(0.5, noise), CounterDropout(0.5, noise)
    inputs = tf.ones([4, 50])
    keys = tf.constant([11, 12, 13, 14], tf.uint32)
    with noise.keys_for_pass(keys):
        a, again, other_layer = (layer(inputs, training=True).numpy() for layer in (first, first, second))
    np.testing.assert_array_equal(a, again)  # no hidden state: same keys, same mask
    assert not np.array_equal(a, other_layer)  # each layer has its own salt
    with noise.keys_for_pass(keys[2:]):
        part = first(inputs[2:], training=True).numpy()
    np.testing.assert_array_equal(part, a[2:])  # a row's mask does not depend on the rest of the batch
    with noise.keys_for_pass(keys + 100):
        assert not np.array_equal(first(inputs, training=True).numpy(), a)
