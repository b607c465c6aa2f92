"""``ElectraPretrainer``: the generator and discriminator trained jointly by replaced token detection.

A ``keras.Model`` with a custom ``train_step``/``test_step``, driven by ``model.fit``. One step
(docs/algorithm.md): mask the batch, run the generator and its MLM loss, sample replacements with
the Gumbel-max trick, label the replaced tokens, run the discriminator and its BCE loss, and take
``gen_weight · MLM + disc_weight · BCE``; then one global-norm clip at 1.0 and one optimizer update.

How the step is compiled and distributed:

* The forward and backward pass (all micro-batches of a gradient-accumulation step) run in one
  ``tf.function(jit_compile=...)``, :meth:`ElectraPretrainer.loss_gradients`. It is an inner function
  rather than ``compile(jit_compile=True)`` because XLA-compiling the whole Keras step fails under
  ``MirroredStrategy`` (README.md#design).
* Losses are normalised by the *global* batch's denominators (summed across replicas before the
  pass), so summing gradients over replicas and micro-batches gives exactly the gradient of the
  global batch: one device, N replicas and k accumulation steps make the same update.
* The clip uses the norm of the summed (and, under float16, unscaled) gradient, as on one device.
* Masking and sampling randomness is a function of (seed, step, example index in the global batch)
  (see ``counter_random``), so a resumed run repeats exactly what the uninterrupted one would do.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from electra_tf.config import PretrainingConfig
from electra_tf.data.input_pipeline import FEATURES
from electra_tf.model import counter_random
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
from electra_tf.model.dropout import DropoutNoise
from electra_tf.model.embeddings import SharedEmbeddings
from electra_tf.model.encoder import TransformerEncoder
from electra_tf.model.heads import DiscriminatorHead, GeneratorHead
from electra_tf.model.masking import (
    MaskedBatch,
    SpecialIds,
    StepKeys,
    candidates_mask,
    gumbel_sample,
    mask_batch,
    masked_slot_counts,
    replace_at_slots,
    replacement_labels,
)
from electra_tf.model.metrics import (
    AUC,
    DISC_LOSS,
    LOSS,
    MLM_LOSS,
    PRETRAINING_METRICS,
    RatioMetric,
    RocAucMetric,
    auc_thresholds,
    confusion_counts,
)

_EVAL_STEP = -1
"""Evaluation draws its masks with this step and a fingerprint of each example (reproducible)."""


@dataclasses.dataclass(frozen=True)
class StepDenominators:
    """Global-batch totals the losses are divided by: masked slots and real tokens."""

    masked: tf.Tensor
    tokens: tf.Tensor


@dataclasses.dataclass(frozen=True)
class Corruption:
    """The generator's side of a step: masking, its logits at the chosen slots, its samples, and
    the discriminator's input and labels (1.0 where the sampled token differs from the original)."""

    masked: MaskedBatch
    mlm_logits: tf.Tensor
    sampled: tf.Tensor
    fake_ids: tf.Tensor
    labels: tf.Tensor


class ElectraPretrainer(keras.Model):
    """ELECTRA's generator and discriminator with shared embeddings, trainable with ``fit``.

    ``special`` holds the vocab's [CLS]/[SEP]/[MASK] ids; ``several_workers`` says whether the
    distribution strategy spans several processes (the driver knows; see
    :func:`electra_tf.model.compiled_step.reducible_by_keras`).
    Build the model and its optimizer under the distribution strategy's scope and the
    mixed-precision policy you train with.
    """

    def __init__(self, config: PretrainingConfig, special: SpecialIds, several_workers: bool = False, **kwargs) -> None:
        super().__init__(name="electra_pretrainer", **kwargs)
        self.config = config
        self.special = special
        self.several_workers = several_workers
        self.step_jit_compile = config.jit_compile
        discriminator, generator = config.discriminator_config(), config.generator_config()
        self.noise = DropoutNoise()
        self.embeddings = SharedEmbeddings(discriminator, self.noise)
        self.generator = TransformerEncoder(generator, self.noise, name="generator")
        self.discriminator = TransformerEncoder(discriminator, self.noise, name="electra")
        self.generator_head = GeneratorHead(generator)
        self.discriminator_head = DiscriminatorHead(discriminator)
        self._metric_set = _PretrainingMetrics()
        self._thresholds = tf.constant(auc_thresholds())
        CompiledPerModel.build_all(self)
        self.built = True

    # ------------------------------------------------------------------------------------------
    # The training step, top-down: train_step → loss_gradients → _objective → _corrupt.
    # ------------------------------------------------------------------------------------------
    def train_step(self, data: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One optimizer step on this replica's share of the global batch.

        Read top-down: the global denominators; :meth:`loss_gradients` (compiled) runs each
        micro-batch's :meth:`_objective` (:meth:`_corrupt`: mask → generator → sample; then the
        discriminator → losses) and sums the gradients; then the replicas' sum → clip → apply → metrics.
        """
        replica_id, num_replicas = replica_position()
        batch = {name: data[name] for name in FEATURES}
        local_size = batch["input_ids"].shape[0]
        if local_size is None:
            # Multi-worker iterators drop the static batch size; the accumulation split needs it.
            local_size = self.config.train_batch_size // num_replicas
            batch = {name: tf.ensure_shape(value, [local_size, *value.shape[1:]]) for name, value in batch.items()}

        local = self.step_denominators(batch["input_ids"], batch["input_mask"])
        denominators = StepDenominators(*sum_over_replicas([local.masked, local.tokens]))
        scale = loss_scale(self.optimizer)
        step = tf.convert_to_tensor(self.optimizer.iterations)
        learning_rate = current_learning_rate(self.optimizer)
        first_example = tf.cast(replica_id, tf.int32) * local_size
        gradients, statistics = self.loss_gradients(
            batch, step, first_example, denominators.masked, denominators.tokens, scale
        )

        norm = apply_global_gradients(self.optimizer, gradients, self.trainable_variables, scale)

        self._metric_set.update(sum_statistics_over_replicas(statistics))
        return step_logs(
            self._metric_set.results(self.config), self.optimizer, norm, learning_rate, scale, self.several_workers
        )

    @CompiledPerModel
    def loss_gradients(
        self,
        batch: dict[str, tf.Tensor],
        step: tf.Tensor,
        first_example: tf.Tensor,
        masked_total: tf.Tensor,
        token_total: tf.Tensor,
        loss_scale: tf.Tensor,
    ) -> tuple[list[tf.Tensor], dict[str, tf.Tensor]]:
        """Summed gradients of ``loss_scale · loss`` over the accumulation micro-batches, and statistics.

        ``masked_total``/``token_total`` are the global batch's denominators (see StepDenominators).
        """
        denominators = StepDenominators(masked=masked_total, tokens=token_total)
        variables = self.trainable_variables
        micro_batches = self.config.gradient_accumulation_steps
        micro_size = batch["input_ids"].shape[0] // micro_batches

        # [micro_batches, micro_size, ...]: indexing keeps static shapes inside the accumulation loop.
        split = {
            name: tf.reshape(batch[name], [micro_batches, micro_size, *batch[name].shape[1:]]) for name in FEATURES
        }

        def one_micro_batch(index: int | tf.Tensor):
            part = {name: split[name][index] for name in FEATURES}
            example_index = first_example + index * micro_size + tf.range(micro_size)
            keys = StepKeys.derive(self.config.seed, step, example_index)
            with tf.GradientTape() as tape:
                loss, statistics = self._objective(part, keys, denominators, training=True)
                scaled = loss * loss_scale
            gradients = [tf.convert_to_tensor(g) for g in tape.gradient(scaled, variables)]
            return gradients, statistics

        if micro_batches == 1:
            return one_micro_batch(0)

        # Accumulate in a loop (graph size independent of the number of micro-batches).
        first_gradients, first_statistics = one_micro_batch(0)

        def body(index, gradients, statistics):
            more_gradients, more_statistics = one_micro_batch(index)
            return (
                index + 1,
                [a + b for a, b in zip(gradients, more_gradients, strict=True)],
                {name: statistics[name] + more_statistics[name] for name in statistics},
            )

        _, gradients, statistics = tf.while_loop(
            lambda index, *_: index < micro_batches, body, (tf.constant(1), first_gradients, first_statistics)
        )
        return gradients, statistics

    def _objective(
        self, batch: dict[str, tf.Tensor], keys: StepKeys, denominators: StepDenominators, training: bool
    ) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        """Weighted loss of one (micro-)batch and the metric statistics it contributes."""
        config = self.config
        input_mask, segment_ids = batch["input_mask"], batch["segment_ids"]
        corruption = self._corrupt(batch, keys, training)
        masked, labels = corruption.masked, corruption.labels

        log_probs = tf.nn.log_softmax(corruption.mlm_logits, axis=-1)
        target_log_probs = tf.gather(log_probs, masked.target_ids, batch_dims=2)
        mlm_sum = -tf.reduce_sum(masked.weights * target_log_probs)

        with self.noise.keys_for_pass(keys.discriminator_dropout):
            disc_logits = self.discriminator_logits(corruption.fake_ids, input_mask, segment_ids, training)
        token_weights = tf.cast(input_mask, tf.float32)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=disc_logits)
        disc_sum = tf.reduce_sum(bce * token_weights)

        loss = config.gen_weight * mlm_sum / (denominators.masked + 1e-6) + config.disc_weight * disc_sum / (
            denominators.tokens + 1e-6
        )
        predictions = tf.cast(disc_logits > 0, tf.float32)
        mlm_predictions = tf.argmax(corruption.mlm_logits, axis=-1, output_type=tf.int32)
        auc_counts = confusion_counts(tf.sigmoid(disc_logits), labels, token_weights, self._thresholds)
        statistics = {
            "mlm_loss_sum": mlm_sum,
            "disc_loss_sum": disc_sum,
            "masked": tf.reduce_sum(masked.weights),
            "tokens": tf.reduce_sum(token_weights),
            "mlm_correct": tf.reduce_sum(masked.weights * tf.cast(mlm_predictions == masked.target_ids, tf.float32)),
            "sampled_correct": tf.reduce_sum(
                masked.weights * tf.cast(corruption.sampled == masked.target_ids, tf.float32)
            ),
            "disc_correct": tf.reduce_sum(token_weights * tf.cast(predictions == labels, tf.float32)),
            "disc_true_positive": tf.reduce_sum(token_weights * predictions * labels),
            "disc_predicted_positive": tf.reduce_sum(token_weights * predictions),
            "disc_positive": tf.reduce_sum(token_weights * labels),
            **{f"auc_{kind}": value for kind, value in auc_counts.items()},
        }
        return loss, statistics

    def _corrupt(self, batch: dict[str, tf.Tensor], keys: StepKeys, training: bool) -> Corruption:
        """Mask the batch, run the generator, and write its samples at the chosen positions."""
        config = self.config
        input_ids, input_mask, segment_ids = (batch[name] for name in FEATURES)
        masked = mask_batch(
            input_ids, input_mask, self.special, config.mask_prob, config.max_predictions_per_seq, keys, config.masking
        )
        with self.noise.keys_for_pass(keys.generator_dropout):
            embedded = self.embeddings(masked.masked_ids, segment_ids, training=training)
            generator_hidden = self.generator(embedded, input_mask, training=training)
        at_positions = tf.gather(generator_hidden, masked.positions, batch_dims=1)
        mlm_logits = self.generator_head(at_positions, self.embeddings.word_embeddings)
        sampling_logits = mlm_logits
        if config.disallow_correct:
            sampling_logits -= 1000.0 * tf.one_hot(masked.target_ids, config.vocab_size)
        sampled = gumbel_sample(sampling_logits, config.temperature, keys.sampling)
        chosen = masked.weights > 0
        fake_ids = replace_at_slots(input_ids, masked.positions, sampled, chosen)
        replaced = replacement_labels(input_ids, fake_ids, masked.positions, chosen)
        return Corruption(masked, mlm_logits, sampled, fake_ids, tf.cast(replaced, tf.float32))

    def step_denominators(self, input_ids: tf.Tensor, input_mask: tf.Tensor) -> StepDenominators:
        """This replica's masked-slot and real-token counts (deterministic: no random draw needed)."""
        config = self.config
        candidates = candidates_mask(input_ids, input_mask, self.special)
        count = masked_slot_counts(
            candidates, input_mask, config.mask_prob, config.max_predictions_per_seq, config.masking
        )
        return StepDenominators(
            masked=tf.cast(tf.reduce_sum(count), tf.float32),
            tokens=tf.reduce_sum(tf.cast(input_mask, tf.float32)),
        )

    # ------------------------------------------------------------------------------------------
    # Evaluation: the same objective without dropout, with reproducible masks.
    # ------------------------------------------------------------------------------------------
    def test_step(self, data: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        batch = {name: data[name] for name in FEATURES}
        denominators = self.step_denominators(batch["input_ids"], batch["input_mask"])
        statistics = self.eval_statistics(batch, denominators.masked, denominators.tokens)
        self._metric_set.update(sum_statistics_over_replicas(statistics))
        return reducible_by_keras(self._metric_set.results(self.config), self.several_workers)

    @CompiledPerModel
    def eval_statistics(
        self, batch: dict[str, tf.Tensor], masked_total: tf.Tensor, token_total: tf.Tensor
    ) -> dict[str, tf.Tensor]:
        denominators = StepDenominators(masked=masked_total, tokens=token_total)
        keys = StepKeys.derive(
            self.config.seed, tf.constant(_EVAL_STEP, tf.int64), counter_random.fingerprint(batch["input_ids"])
        )
        _, statistics = self._objective(batch, keys, denominators, training=False)
        return statistics

    def replaced_token_example(self, batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One evaluation-mode corruption of ``batch``: the ids the discriminator saw, the true
        replaced-token labels and the discriminator's probabilities (for the TensorBoard text sample)."""
        keys = StepKeys.derive(
            self.config.seed, tf.constant(_EVAL_STEP, tf.int64), counter_random.fingerprint(batch["input_ids"])
        )
        corruption = self._corrupt(batch, keys, training=False)
        logits = self.discriminator_logits(corruption.fake_ids, batch["input_mask"], batch["segment_ids"])
        return {"fake_ids": corruption.fake_ids, "labels": corruption.labels, "probabilities": tf.sigmoid(logits)}

    # ------------------------------------------------------------------------------------------
    # Plain forward passes (inference, export checks).
    # ------------------------------------------------------------------------------------------
    def discriminator_logits(self, input_ids, input_mask, segment_ids, training: bool = False) -> tf.Tensor:
        """Replaced-token logits ``[B, S]`` (float32) of the discriminator for ``input_ids``."""
        hidden = self.discriminator(
            self.embeddings(input_ids, segment_ids, training=training), input_mask, training=training
        )
        return self.discriminator_head(hidden)

    def generator_logits(self, input_ids, input_mask, segment_ids, training: bool = False) -> tf.Tensor:
        """MLM logits ``[B, S, V]`` (float32) of the generator at every position."""
        hidden = self.generator(
            self.embeddings(input_ids, segment_ids, training=training), input_mask, training=training
        )
        return self.generator_head(hidden, self.embeddings.word_embeddings)

    def call(self, inputs: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """The discriminator's logits for a batch dict (``input_ids``, ``input_mask``, ``segment_ids``)."""
        return self.discriminator_logits(inputs["input_ids"], inputs["input_mask"], inputs["segment_ids"], training)

    # ------------------------------------------------------------------------------------------
    # Keras hooks.
    # ------------------------------------------------------------------------------------------
    def compile(self, optimizer: keras.optimizers.Optimizer, **kwargs) -> None:
        """Keras' compile, then the optimizer's slots (and loss scale) are created at once, so a
        checkpoint can be restored into them before the first step."""
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None) -> None:
        """Nothing to build: every weight exists from ``__init__`` and the optimizer's from ``compile``.

        Keras' version (TF backend, under a strategy) first averages the replicas' first batch with
        ``strategy.reduce``, which fails for dict batches under MultiWorkerMirroredStrategy
        (keras-team/keras#20329) and, under MirroredStrategy, hands the layers float ids.
        """

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return self._metric_set.all


class _PretrainingMetrics:
    """The step's metric objects: one per accumulated row of :data:`PRETRAINING_METRICS`, the loss derived."""

    def __init__(self) -> None:
        self.ratios = [(RatioMetric(spec.name), spec.ratio) for spec in PRETRAINING_METRICS if spec.ratio]
        self.auc = RocAucMetric(AUC)
        self.all = [metric for metric, _ in self.ratios] + [self.auc]

    def update(self, statistics: dict[str, tf.Tensor]) -> None:
        for metric, (numerator, denominator) in self.ratios:
            metric.update_state(statistics[numerator], statistics[denominator])
        self.auc.update_state(*(statistics[f"auc_{kind}"] for kind in ("tp", "fp", "fn", "tn")))

    def results(self, config: PretrainingConfig) -> dict[str, tf.Tensor]:
        logs = {metric.name: metric.result() for metric in self.all}
        logs[LOSS] = config.gen_weight * logs[MLM_LOSS] + config.disc_weight * logs[DISC_LOSS]
        return logs
