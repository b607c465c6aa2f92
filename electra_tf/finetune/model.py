"""The fine-tuning network: the pretrained discriminator's encoder with a task head.

:func:`build_finetuning_model` reuses the pretraining layers (``SharedEmbeddings``, the
``TransformerEncoder`` named ``electra``, counter-based dropout), so a starting point's TF1-named
weights (``electra/embeddings/*``, ``electra/encoder/*``) assign one to one
(:func:`assign_starting_weights`). The heads are Hugging Face's, so the export to
``ElectraForTokenClassification`` / ``ElectraForSequenceClassification`` is exact:

- tagging: dropout → ``Dense(H→L)`` at every position (``classifier``);
- classification: on the [CLS] state, dropout → ``Dense(H→H)`` → GELU → dropout → ``Dense(H→L)``
  (``classifier/dense``, ``classifier/out_proj``). Google's fine-tuning head is a single dense layer
  on [CLS] after dropout; the two-layer head costs one H×H matrix and is what every exported ELECTRA
  classifier on the Hub uses (README, "Differences from Google's code").

Dropout masks are a hash of per-example keys (``model/dropout.py``): a training call takes
``dropout_keys`` (see :func:`dropout_keys`), so masks change every step and do not depend on how the
batch is split over replicas.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from electra_tf.config import ModelConfig
from electra_tf.finetune.starting_point import StartingPoint
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING
from electra_tf.model import counter_random
from electra_tf.model.dropout import CounterDropout, DropoutNoise
from electra_tf.model.embeddings import SharedEmbeddings
from electra_tf.model.encoder import TransformerEncoder, activation, dense
from electra_tf.model.networks import DISCRIMINATOR, Shape, encoder_variable_shapes
from electra_tf.model.tf1_names import (
    assign_named,
    dense_variables,
    embedding_variables,
    encoder_variables,
    variable_values,
)

HEAD_SCOPE = "classifier"
"""TF1 scope of the task head; its names map to Hugging Face's ``classifier.*`` parameters."""
KINDS = (TAGGING, CLASSIFICATION)
_DROPOUT_SALT = 6
"""Keeps fine-tuning's dropout keys apart from pretraining's random streams (masking.py uses 1–5)."""


def dropout_keys(seed: int, step: tf.Tensor, example_index: tf.Tensor) -> tf.Tensor:
    """The per-example dropout keys (uint32 ``[B]``) of the examples ``example_index`` (their indices
    in the global batch) at training ``step``: a function of those three only, as in pretraining."""
    return counter_random.row_keys(seed, step, example_index, _DROPOUT_SALT)


class TaggingHead(keras.layers.Layer):
    """Hugging Face's token-classification head: dropout → ``Dense(H→L)`` at every position."""

    def __init__(self, config: ModelConfig, num_labels: int, noise: DropoutNoise, **kwargs) -> None:
        super().__init__(name=HEAD_SCOPE, **kwargs)
        self.dropout = CounterDropout(config.hidden_dropout_prob, noise)
        self.classifier = dense(num_labels, config, "classifier")
        self.classifier.build((None, None, config.hidden_size))

    def call(self, hidden: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self.classifier(self.dropout(hidden, training=training))

    def tf1_variables(self) -> dict[str, keras.Variable]:
        return dense_variables(HEAD_SCOPE, self.classifier)


class ClassificationHead(keras.layers.Layer):
    """Hugging Face's ``ElectraClassificationHead`` on the [CLS] state (first position)."""

    def __init__(self, config: ModelConfig, num_labels: int, noise: DropoutNoise, **kwargs) -> None:
        super().__init__(name=HEAD_SCOPE, **kwargs)
        self.dropout = CounterDropout(config.hidden_dropout_prob, noise)
        self.dense = dense(config.hidden_size, config, "dense")
        self.activation = activation("gelu")  # Hugging Face's head always uses exact GELU
        self.output_dropout = CounterDropout(config.hidden_dropout_prob, noise)
        self.out_proj = dense(num_labels, config, "out_proj")
        self.dense.build((None, config.hidden_size))
        self.out_proj.build((None, config.hidden_size))

    def call(self, hidden: tf.Tensor, training: bool = False) -> tf.Tensor:
        first = self.dropout(hidden[:, 0], training=training)
        expanded = self.output_dropout(self.activation(self.dense(first)), training=training)
        return self.out_proj(expanded)

    def tf1_variables(self) -> dict[str, keras.Variable]:
        return dense_variables(f"{HEAD_SCOPE}/dense", self.dense) | dense_variables(
            f"{HEAD_SCOPE}/out_proj", self.out_proj
        )


class FinetuningNetwork(keras.Model):
    """Embeddings → ``electra`` encoder → task head; float32 logits ``[B, T, L]`` (tagging) or ``[B, L]``.

    With ``freeze_encoder`` the embeddings and encoder are not trainable (no gradients, no optimizer
    state) and run in inference mode (no dropout) even in a training call: only the head learns.

    Call it with ``{"input_ids", "input_mask", "segment_ids"}`` (int32 ``[B, T]``). A training call
    needs ``dropout_keys`` (uint32 ``[B]``, from :func:`dropout_keys`) unless dropout is off: with
    fixed keys every step would drop the same units. Build it (and its optimizer) under the
    distribution strategy's scope and the precision policy of the run.
    """

    def __init__(
        self, encoder: ModelConfig, kind: str, num_labels: int, freeze_encoder: bool = False, **kwargs
    ) -> None:
        super().__init__(name="finetuning_network", **kwargs)
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if num_labels < 1:
            raise ValueError(f"num_labels must be positive, got {num_labels}")
        self.encoder_config = encoder
        self.kind = kind
        self.num_labels = num_labels
        self.noise = DropoutNoise()
        self.embeddings = SharedEmbeddings(encoder, self.noise)
        self.electra = TransformerEncoder(encoder, self.noise, name=DISCRIMINATOR.encoder_scope)
        head_class = TaggingHead if kind == TAGGING else ClassificationHead
        self.head = head_class(encoder, num_labels, self.noise)
        self.freeze_encoder = freeze_encoder
        if freeze_encoder:
            self.embeddings.trainable = False
            self.electra.trainable = False
        self.built = True

    def call(
        self, inputs: dict[str, tf.Tensor], training: bool = False, dropout_keys: tf.Tensor | None = None
    ) -> tf.Tensor:
        uses_dropout = (
            self.encoder_config.hidden_dropout_prob > 0 or self.encoder_config.attention_probs_dropout_prob > 0
        )
        if training and uses_dropout and dropout_keys is None:
            raise ValueError("a training call needs dropout_keys (see electra_tf.finetune.model.dropout_keys)")
        keys = dropout_keys if dropout_keys is not None else tf.zeros_like(inputs["input_ids"][:, 0], tf.uint32)
        encoder_training = training and not self.freeze_encoder
        with self.noise.keys_for_pass(keys):
            embedded = self.embeddings(inputs["input_ids"], inputs["segment_ids"], training=encoder_training)
            hidden = self.electra(embedded, inputs["input_mask"], training=encoder_training)
            logits = self.head(hidden, training=training)
        return tf.cast(logits, tf.float32)

    def tf1_variables(self) -> dict[str, keras.Variable]:
        """``{TF1 name: variable}`` for every weight: ``electra/...`` as in pretraining, then ``classifier/...``."""
        variables = embedding_variables(self.embeddings)
        variables |= encoder_variables(DISCRIMINATOR.encoder_scope, self.electra)
        return variables | self.head.tf1_variables()


def build_finetuning_model(
    encoder: ModelConfig, kind: str, num_labels: int, freeze_encoder: bool = False
) -> FinetuningNetwork:
    """The network for ``kind`` (``tasks.TAGGING`` or ``tasks.CLASSIFICATION``) with ``num_labels`` outputs;
    ``freeze_encoder``: only the head trains (see :class:`FinetuningNetwork`)."""
    return FinetuningNetwork(encoder, kind, num_labels, freeze_encoder)


def head_variable_shapes(encoder: ModelConfig, kind: str, num_labels: int) -> dict[str, Shape]:
    """The TF1 names and shapes of the task head's variables (what export maps to ``classifier.*``)."""
    hidden = encoder.hidden_size
    if kind == TAGGING:
        return {f"{HEAD_SCOPE}/kernel": (hidden, num_labels), f"{HEAD_SCOPE}/bias": (num_labels,)}
    return {
        f"{HEAD_SCOPE}/dense/kernel": (hidden, hidden),
        f"{HEAD_SCOPE}/dense/bias": (hidden,),
        f"{HEAD_SCOPE}/out_proj/kernel": (hidden, num_labels),
        f"{HEAD_SCOPE}/out_proj/bias": (num_labels,),
    }


def network_weights(network: FinetuningNetwork) -> dict[str, np.ndarray]:
    """Every weight of ``network`` as a float32 numpy array under its TF1 name."""
    return variable_values(network.tf1_variables())


def assign_weights(network: FinetuningNetwork, weights: dict[str, np.ndarray]) -> int:
    """Assign TF1-named ``weights`` to every variable of ``network``, head included (a saved fine-tuned model)."""
    return assign_named(network.tf1_variables(), weights, network.tf1_variables())


def assign_starting_weights(network: FinetuningNetwork, point: StartingPoint) -> int:
    """Give ``network``'s embeddings and encoder the starting point's weights; the head stays fresh.

    Returns how many variables were assigned (0 for a random-init starting point). The network must
    have been built from ``point.encoder``; a weight missing or shaped otherwise is a
    :class:`UserError` raised before any variable changes.
    """
    if network.encoder_config != point.encoder:
        raise ValueError("the network was built from another encoder config than the starting point's")
    if point.weights is None:
        return 0
    return assign_named(network.tf1_variables(), point.weights, encoder_variable_shapes(point.encoder))
