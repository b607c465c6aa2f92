"""The post-LayerNorm BERT encoder of each ELECTRA network (docs/algorithm.md#encoder).

Layer names carry Google's TF1 scope names (``query``, ``LayerNorm`` ...), so variable paths read
like Google's checkpoints and the weight-decay exclusion ("LayerNorm", "bias") matches them; the
exact TF1 name of every variable is given by :mod:`electra_tf.model.tf1_names`.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from electra_tf.config import ModelConfig
from electra_tf.model.dropout import CounterDropout, DropoutNoise
from electra_tf.model.initializers import tf1_default, truncated_normal

ATTENTION_MASK_ADDER = -10000.0
"""Added to the attention scores of padding keys (Google's value; safe in float16)."""


def activation(name: str):
    """Google's activations by name; "gelu" is the exact erf form, as Google and Hugging Face use."""
    if name == "gelu":
        return lambda x: keras.activations.gelu(x, approximate=False)
    return keras.activations.get(name)


def dense(units: int, config: ModelConfig, name: str, activation_name: str | None = None) -> keras.layers.Dense:
    """A Dense layer with Google's truncated-normal kernel initialiser and zero bias."""
    return keras.layers.Dense(
        units,
        activation=activation(activation_name) if activation_name else None,
        kernel_initializer=truncated_normal(config.initializer_range),
        name=name,
    )


def layer_norm(config: ModelConfig, name: str) -> keras.layers.LayerNormalization:
    """LayerNorm with Google's epsilon (1e-12), computed in float32 under mixed precision."""
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name, dtype="float32")


class TransformerLayer(keras.layers.Layer):
    """One post-LN BERT layer: self-attention, add & norm, GELU feed-forward, add & norm."""

    def __init__(self, config: ModelConfig, noise: DropoutNoise, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        hidden = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_size = config.head_size
        self.query = dense(hidden, config, "query")
        self.key = dense(hidden, config, "key")
        self.value = dense(hidden, config, "value")
        self.attention_dropout = CounterDropout(config.attention_probs_dropout_prob, noise)
        self.attention_output = dense(hidden, config, "attention_output_dense")
        self.attention_layer_norm = layer_norm(config, "attention_output_LayerNorm")
        self.intermediate = dense(config.intermediate_size, config, "intermediate_dense", config.hidden_act)
        self.output_dense = dense(hidden, config, "output_dense")
        self.output_layer_norm = layer_norm(config, "output_LayerNorm")
        self.attention_output_dropout = CounterDropout(config.hidden_dropout_prob, noise)
        self.output_dropout = CounterDropout(config.hidden_dropout_prob, noise)

    def build(self, input_shape) -> None:
        hidden, intermediate = self.config.hidden_size, self.config.intermediate_size
        for layer in (self.query, self.key, self.value, self.attention_output):
            layer.build((None, None, hidden))
        self.attention_layer_norm.build((None, None, hidden))
        self.intermediate.build((None, None, hidden))
        self.output_dense.build((None, None, intermediate))
        self.output_layer_norm.build((None, None, hidden))

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        return tf.transpose(tf.reshape(x, [batch, length, self.num_heads, self.head_size]), [0, 2, 1, 3])

    def call(self, hidden: tf.Tensor, attention_adder: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``hidden`` ``[B, S, H]``; ``attention_adder`` ``[B, 1, 1, S]`` (0 for real keys, -10000 for padding)."""
        q, k, v = (self._split_heads(layer(hidden)) for layer in (self.query, self.key, self.value))
        scores = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(self.head_size))
        # Softmax in float32: exact in float32 runs, stable under mixed precision.
        probs = tf.nn.softmax(tf.cast(scores, tf.float32) + tf.cast(attention_adder, tf.float32), axis=-1)
        probs = self.attention_dropout(tf.cast(probs, v.dtype), training=training)
        context = tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3])
        context = tf.reshape(context, [tf.shape(hidden)[0], tf.shape(hidden)[1], self.config.hidden_size])
        attended = self._add_and_norm(
            self.attention_output_dropout(self.attention_output(context), training=training),
            hidden,
            self.attention_layer_norm,
        )
        expanded = self.intermediate(attended)
        return self._add_and_norm(
            self.output_dropout(self.output_dense(expanded), training=training), attended, self.output_layer_norm
        )

    def _add_and_norm(self, update: tf.Tensor, residual: tf.Tensor, norm) -> tf.Tensor:
        summed = tf.cast(update, tf.float32) + tf.cast(residual, tf.float32)
        return tf.cast(norm(summed), self.compute_dtype)


class TransformerEncoder(keras.layers.Layer):
    """One network's encoder: the optional ``embeddings_project`` (E→H) and its transformer layers.

    It takes the shared embeddings' output, so the generator and the discriminator each have their
    own projection, as in Google's code (the projection is not shared).
    """

    def __init__(self, config: ModelConfig, noise: DropoutNoise, **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.embeddings_project = None
        if config.embedding_size != config.hidden_size:
            self.embeddings_project = keras.layers.Dense(
                config.hidden_size, kernel_initializer=tf1_default(), name="embeddings_project"
            )
            self.embeddings_project.build((None, None, config.embedding_size))
        self.transformer_layers = [
            TransformerLayer(config, noise, name=f"layer_{index}") for index in range(config.num_hidden_layers)
        ]
        for index, layer in enumerate(self.transformer_layers):
            layer.build((None, None, config.hidden_size))
            # tf.train.Checkpoint does not follow Keras' list wrapper: name each layer as an attribute
            # too, or a model-only restore (export) would silently leave the layers uninitialised.
            setattr(self, f"layer_{index}", layer)

    def call(self, embedded: tf.Tensor, input_mask: tf.Tensor, training: bool = False) -> tf.Tensor:
        """Sequence output ``[B, S, H]`` for embeddings ``[B, S, E]`` and ``input_mask`` ``[B, S]``."""
        hidden = self.embeddings_project(embedded) if self.embeddings_project is not None else embedded
        # Only the key side is masked (Google's create_attention_mask_from_input_mask).
        adder = (1.0 - tf.cast(input_mask, tf.float32))[:, None, None, :] * ATTENTION_MASK_ADDER
        for layer in self.transformer_layers:
            hidden = layer(hidden, adder, training=training)
        return hidden
