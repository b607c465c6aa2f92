"""ELECTRA's two pretraining heads (docs/algorithm.md#heads); both have no dropout.

Their logits are returned in float32: the vocabulary softmax/cross-entropy and the binary
cross-entropy are computed in float32 under mixed precision.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import ModelConfig
from electra_tf.model.encoder import dense, layer_norm
from electra_tf.model.initializers import tf1_default


class DiscriminatorHead(keras.layers.Layer):
    """``Dense(H→H, gelu)`` → ``Dense(H→1)`` → squeeze: one replaced-token logit per position."""

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(name="discriminator_predictions", **kwargs)
        self.dense = dense(config.hidden_size, config, "dense", config.hidden_act)
        self.dense_1 = keras.layers.Dense(1, kernel_initializer=tf1_default(), name="dense_1")
        self.dense.build((None, None, config.hidden_size))
        self.dense_1.build((None, None, config.hidden_size))

    def call(self, hidden: tf.Tensor) -> tf.Tensor:
        return tf.cast(tf.squeeze(self.dense_1(self.dense(hidden)), -1), tf.float32)


class GeneratorHead(keras.layers.Layer):
    """``Dense(Hg→E, gelu)`` → LayerNorm → ``· word_embeddingsᵀ + output_bias``.

    The output matrix is the shared word-embedding table (tied, as in Google's code); only
    ``output_bias`` belongs to the head.
    """

    def __init__(self, config: ModelConfig, **kwargs) -> None:
        super().__init__(name="generator_predictions", **kwargs)
        self.dense = dense(config.embedding_size, config, "dense", config.hidden_act)
        self.layer_norm = layer_norm(config, "LayerNorm")
        self.dense.build((None, None, config.hidden_size))
        self.layer_norm.build((None, None, config.embedding_size))
        self.output_bias = self.add_weight(name="output_bias", shape=(config.vocab_size,), initializer="zeros")

    def call(self, hidden: tf.Tensor, word_embeddings: tf.Variable) -> tf.Tensor:
        """Logits ``[..., V]`` (float32) for generator states ``hidden`` ``[..., Hg]``."""
        projected = tf.cast(self.layer_norm(tf.cast(self.dense(hidden), tf.float32)), self.compute_dtype)
        table = tf.cast(word_embeddings, self.compute_dtype)
        logits = tf.matmul(projected, table, transpose_b=True)
        return tf.cast(logits, tf.float32) + tf.cast(self.output_bias, tf.float32)
