"""The embedding tables ELECTRA's generator and discriminator share (docs/algorithm.md#shared-embeddings).

Word, position and token-type tables and the embedding LayerNorm live in Google's
``electra/embeddings`` scope and are used by both networks; each network applies its own dropout
(and, if its hidden size differs from the embedding width, its own projection; see encoder.py).
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.config import ModelConfig
from electra_tf.model.dropout import CounterDropout, DropoutNoise
from electra_tf.model.initializers import truncated_normal


class SharedEmbeddings(keras.layers.Layer):
    """``LayerNorm(word[ids] + token_type[segments] + position[0..S-1])`` followed by dropout.

    Positions start at 0 with no padding offset and nothing is scaled by √E. The LayerNorm runs in
    float32 under mixed precision (epsilon 1e-12 underflows in float16).
    """

    def __init__(self, config: ModelConfig, noise: DropoutNoise, **kwargs) -> None:
        super().__init__(name="embeddings", **kwargs)
        self.config = config
        init = truncated_normal(config.initializer_range)
        width = config.embedding_size
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(config.vocab_size, width), initializer=init
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(config.max_position_embeddings, width), initializer=init
        )
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(config.type_vocab_size, width), initializer=init
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_eps, name="LayerNorm", dtype="float32"
        )
        self.layer_norm.build((None, None, width))
        self.dropout = CounterDropout(config.hidden_dropout_prob, noise)

    def call(self, input_ids: tf.Tensor, segment_ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        seq_length = tf.shape(input_ids)[1]
        summed = (
            tf.gather(self.word_embeddings, input_ids)
            + tf.gather(self.token_type_embeddings, segment_ids)
            + self.position_embeddings[None, :seq_length]
        )
        normalized = self.layer_norm(tf.cast(summed, tf.float32))
        return self.dropout(tf.cast(normalized, self.compute_dtype), training=training)
