"""Model FLOPs of an ELECTRA training step, and the measured matmul peak to compare them with.

Counted as Google's ``flops_computation.py`` counts them: multiply-adds of every matmul (2 FLOPs
each), attention included, embedding lookups and elementwise work excluded; a training step costs
three forward passes (forward, and a backward pass twice as expensive). Model FLOPs utilisation
(MFU) is achieved model FLOP/s over the peak matmul FLOP/s of the device, measured here rather than
taken from a data sheet (a CPU has no meaningful data-sheet figure).
"""

from __future__ import annotations

import functools
import time

import tensorflow as tf

from electra_tf.config import ModelConfig, PretrainingConfig


def encoder_forward_flops(config: ModelConfig, seq_length: int) -> int:
    """Matmul FLOPs of one encoder's forward pass over one sequence (projection included)."""
    hidden, inner = config.hidden_size, config.intermediate_size
    per_token = 2 * (4 * hidden * hidden + 2 * hidden * inner) + 2 * (2 * seq_length * hidden)
    projection = 2 * config.embedding_size * hidden if config.embedding_size != hidden else 0
    return seq_length * (config.num_hidden_layers * per_token + projection)


def training_flops_per_example(config: PretrainingConfig) -> int:
    """Model FLOPs of one example in one training step (generator + discriminator, forward + backward)."""
    length, predictions = config.max_seq_length, config.max_predictions_per_seq
    generator, discriminator = config.generator_config(), config.discriminator_config()
    width, vocab = discriminator.embedding_size, discriminator.vocab_size
    generator_head = predictions * 2 * (generator.hidden_size * width + width * vocab)
    discriminator_head = (
        length * 2 * (discriminator.hidden_size * discriminator.hidden_size + discriminator.hidden_size)
    )
    forward = (
        encoder_forward_flops(generator, length)
        + generator_head
        + encoder_forward_flops(discriminator, length)
        + discriminator_head
    )
    return 3 * forward


@functools.cache
def measured_matmul_peak(dtype: str = "float32", size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a large square matmul in ``dtype`` on TensorFlow's default device (best of a few runs)."""
    a = tf.random.normal([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda x: tf.matmul(x, x))
    matmul(a).numpy()  # warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            result = matmul(a)
        result.numpy()
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * size**3 / best
