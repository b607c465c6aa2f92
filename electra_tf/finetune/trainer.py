"""``FinetuningTrainer``: a fine-tuning network trained, evaluated and run with Keras ``fit``/``evaluate``/``predict``.

The step is pretraining's, for one loss (``electra_tf/model/compiled_step.py``): the forward and
backward pass run in one ``tf.function`` per model, XLA-compiled with ``jit_compile``; the loss is
the softmax cross-entropy summed over the scored positions (tagging: each word's first piece;
classification: each example) and divided by the number of scored positions in the *global*
batch, summed over replicas before the pass, so one device and N replicas make the same update;
the summed gradient is clipped to norm 1.0 (unscaled under ``mixed_float16``'s loss scaling) and
applied. Dropout masks come from ``(seed, step, example index in the global batch)``
(``finetune/model.py`` ``dropout_keys``), as in pretraining.

``predict`` returns, per input, the predicted label ids (tagging: one per position, padded with
:data:`~electra_tf.finetune.windows.IGNORE` to ``max_seq_length`` so batches of different bucket
lengths concatenate), the loss summed over its scored positions and their number.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from electra_tf.finetune.batches import FEATURES, LABELS
from electra_tf.finetune.model import dropout_keys
from electra_tf.finetune.windows import IGNORE
from electra_tf.model.compiled_step import (
    CompiledPerModel,
    apply_global_gradients,
    current_learning_rate,
    loss_scale,
    reducible_by_keras,
    replica_position,
    step_logs,
    sum_over_replicas,
    sum_statistics_over_replicas,
)
from electra_tf.model.metrics import GRAD_NORM, LEARNING_RATE, LOSS, LOSS_SCALE, RatioMetric

LOGGED_METRICS = (LOSS, "accuracy", LEARNING_RATE, GRAD_NORM, LOSS_SCALE)
"""What a fine-tuning step reports, for the training logger."""


def masked_cross_entropy(logits: tf.Tensor, label_ids: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(loss sum, scored count, correct count)`` per example over the positions whose label is not IGNORE.

    ``logits`` ``[B, T, L]`` with ``label_ids`` ``[B, T]`` (tagging) or ``[B, L]`` with ``[B]``
    (classification, every example scored); each result is ``[B]`` float32.
    """
    logits = tf.cast(logits, tf.float32)
    scored = label_ids != IGNORE
    safe_labels = tf.where(scored, label_ids, tf.zeros_like(label_ids))
    losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    correct = scored & (tf.argmax(logits, axis=-1, output_type=tf.int32) == label_ids)
    weights = tf.cast(scored, tf.float32)

    def per_example(values: tf.Tensor) -> tf.Tensor:
        return values if label_ids.shape.rank == 1 else tf.reduce_sum(values, axis=-1)

    return (
        per_example(tf.where(scored, losses, tf.zeros_like(losses))),
        per_example(weights),
        per_example(tf.cast(correct, tf.float32)),
    )


class FinetuningTrainer(keras.Model):
    """Trains ``network`` (``finetune/model.py``: features → float32 logits) with ``fit``.

    ``max_seq_length`` pads tagging predictions; ``seed`` keys dropout (a variable, so a new trial
    sets it without retracing the step); ``jit_compile`` compiles
    the inner functions with XLA; ``several_workers`` says whether the strategy spans processes.
    Build it, and compile it with its optimizer, under the strategy's scope and precision policy.
    """

    def __init__(
        self,
        network: keras.Model,
        *,
        max_seq_length: int,
        seed: int,
        jit_compile: bool = False,
        several_workers: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(name="finetuning_trainer", **kwargs)
        self.network = network
        self.max_seq_length = max_seq_length
        self.dropout_seed = self.add_weight(
            name="dropout_seed", shape=(), dtype="int64", initializer=keras.initializers.Constant(seed), trainable=False
        )
        self.step_jit_compile = jit_compile
        self.several_workers = several_workers
        self._loss_metric = RatioMetric(LOSS)
        self._accuracy_metric = RatioMetric("accuracy")
        CompiledPerModel.build_all(self)
        self.built = True

    # ------------------------------------------------------------------------------------------
    # Training: train_step → loss_gradients (compiled) → apply_global_gradients.
    # ------------------------------------------------------------------------------------------
    def train_step(self, data: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        features, labels = {name: data[name] for name in FEATURES}, data[LABELS]
        replica_id, _ = replica_position()
        local_scored = tf.reduce_sum(tf.cast(labels != IGNORE, tf.float32))
        (scored_total,) = sum_over_replicas([local_scored])
        scale = loss_scale(self.optimizer)
        step = tf.convert_to_tensor(self.optimizer.iterations)
        learning_rate = current_learning_rate(self.optimizer)
        first_example = tf.cast(replica_id, tf.int32) * tf.shape(labels)[0]
        gradients, statistics = self.loss_gradients(features, labels, scored_total, scale, step, first_example)
        norm = apply_global_gradients(self.optimizer, gradients, self.trainable_variables, scale)
        return step_logs(
            self._update_metrics(statistics), self.optimizer, norm, learning_rate, scale, self.several_workers
        )

    @CompiledPerModel
    def loss_gradients(
        self,
        features: dict[str, tf.Tensor],
        labels: tf.Tensor,
        scored_total: tf.Tensor,
        scale: tf.Tensor,
        step: tf.Tensor,
        first_example: tf.Tensor,
    ) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        """Gradients of ``scale · Σ losses / scored_total`` on this replica's examples, and statistics."""
        variables = self.trainable_variables
        example_index = first_example + tf.range(tf.shape(labels)[0])
        keys = dropout_keys(tf.convert_to_tensor(self.dropout_seed), step, example_index)
        with tf.GradientTape() as tape:
            logits = self._logits(features, keys, training=True)
            loss_sums, scored, correct = masked_cross_entropy(logits, labels)
            loss = tf.reduce_sum(loss_sums) / tf.maximum(scored_total, 1.0)
            scaled = loss * scale
        gradients = [tf.convert_to_tensor(g) for g in tape.gradient(scaled, variables)]
        statistics = {
            "loss_sum": tf.reduce_sum(loss_sums),
            "scored": tf.reduce_sum(scored),
            "correct": tf.reduce_sum(correct),
        }
        return gradients, statistics

    def _logits(self, features: dict[str, tf.Tensor], keys: tf.Tensor | None, training: bool) -> tf.Tensor:
        return tf.cast(self.network(features, training=training, dropout_keys=keys), tf.float32)

    # ------------------------------------------------------------------------------------------
    # Evaluation and prediction: no dropout.
    # ------------------------------------------------------------------------------------------
    def test_step(self, data: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = self.predicted(data)
        statistics = {
            "loss_sum": tf.reduce_sum(outputs["loss_sum"]),
            "scored": tf.reduce_sum(outputs["scored"]),
            "correct": tf.reduce_sum(outputs["correct"]),
        }
        return reducible_by_keras(self._update_metrics(statistics), self.several_workers)

    def predict_step(self, data: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self.predicted(data)

    @CompiledPerModel
    def predicted(self, data: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """Per example: ``predictions`` (label ids; tagging: ``[B, max_seq_length]``, IGNORE-padded),
        and the ``loss_sum``, ``scored`` and ``correct`` counts over its scored positions."""
        features, labels = {name: data[name] for name in FEATURES}, data[LABELS]
        logits = self._logits(features, None, training=False)
        loss_sums, scored, correct = masked_cross_entropy(logits, labels)
        predictions = tf.argmax(logits, axis=-1, output_type=tf.int32)
        if predictions.shape.rank == 2:
            padding = self.max_seq_length - tf.shape(predictions)[1]
            predictions = tf.pad(predictions, [[0, 0], [0, padding]], constant_values=IGNORE)
        return {"predictions": predictions, "loss_sum": loss_sums, "scored": scored, "correct": correct}

    def _update_metrics(self, statistics: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        statistics = sum_statistics_over_replicas(statistics)
        self._loss_metric.update_state(statistics["loss_sum"], statistics["scored"])
        self._accuracy_metric.update_state(statistics["correct"], statistics["scored"])
        return {metric.name: metric.result() for metric in self.metrics}

    # ------------------------------------------------------------------------------------------
    # Keras hooks.
    # ------------------------------------------------------------------------------------------
    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """The network's float32 logits for a batch of features (no dropout)."""
        return self._logits({name: inputs[name] for name in FEATURES}, None, training=False)

    def compile(self, optimizer: keras.optimizers.Optimizer, **kwargs) -> None:
        """Keras' compile, then the optimizer's slots are created at once (under the strategy's scope).

        Keras' own ``jit_compile`` stays off: the inner functions are what XLA compiles (see the module).
        """
        super().compile(optimizer=optimizer, jit_compile=False, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None) -> None:
        """Nothing to build: the network is built before the trainer (see ``ElectraPretrainer``)."""

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self._loss_metric, self._accuracy_metric]
