"""Pretraining metrics: the one table of their names, and the metrics that add up per-batch statistics.

:data:`PRETRAINING_METRICS` is the only place a metric's name, labels and audience are written: the
step's metric objects, the console/TensorBoard logger, the evaluator, the printed eval table and the
model card all read it (and fine-tuning's metrics will add their rows the same way).

The training step computes sums (correct predictions, weights, confusion counts per threshold)
inside the compiled step; these metrics only add them up. Sums aggregate exactly across replicas,
accumulation micro-batches and logging windows, so every value is a true token-weighted ratio over
the window, not an average of per-step averages. The definitions follow Google's eval metrics
(docs/algorithm.md#evaluation-metrics), except that the discriminator's AUC is computed over real tokens only
(Google's counts padding as easy negatives, which inflates it).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

import keras
import numpy as np
import tensorflow as tf

from electra_tf.model.networks import DISCRIMINATOR, GENERATOR, Network

NUM_AUC_THRESHOLDS = 200


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One metric of a pretraining run and where it is shown."""

    name: str
    """Its key in the step's logs, TensorBoard, ``eval_results.json`` and the eval history (Google's names)."""
    ratio: tuple[str, str] | None = None
    """The step statistics (numerator, denominator) whose sums give it, for a :class:`RatioMetric`."""
    network: Network | None = None
    """The network the model card shows it for (the generator's metrics appear on both cards)."""
    card_label: str | None = None
    """Its label in the model card's evaluation table (``None``: not on the card)."""
    console_label: str | None = None
    """Its label in the eval table printed after each evaluation (``None``: not printed)."""
    evaluated: bool = True
    """Part of evaluation results; ``False`` for values only training logs (learning rate, gradient norm)."""


# The names code refers to one by one (the logger's console line, the step's logs); the table
# below spells out the rest.
AUC = "disc_auc"
"""The one metric accumulated from confusion counts (``auc_tp``... statistics) rather than a ratio."""
DISC_LOSS = "disc_loss"
MLM_LOSS = "masked_lm_loss"
MLM_ACCURACY = "masked_lm_accuracy"
LOSS = "loss"
"""``gen_weight · masked_lm_loss + disc_weight · disc_loss``, derived from the two losses."""
LEARNING_RATE = "learning_rate"
GRAD_NORM = "grad_norm"
"""The global norm of the step's unscaled gradient, before the clip."""
LOSS_SCALE = "loss_scale"
"""The dynamic loss scale (reported under mixed_float16 only)."""

PRETRAINING_METRICS = (
    MetricSpec("disc_accuracy", ("disc_correct", "tokens"), DISCRIMINATOR, "Accuracy", "Accuracy"),
    MetricSpec(
        "disc_precision", ("disc_true_positive", "disc_predicted_positive"), DISCRIMINATOR, "Precision", "Precision"
    ),
    MetricSpec("disc_recall", ("disc_true_positive", "disc_positive"), DISCRIMINATOR, "Recall", "Recall"),
    MetricSpec(AUC, None, DISCRIMINATOR, "AUC", "AUC"),
    MetricSpec(DISC_LOSS, ("disc_loss_sum", "tokens"), DISCRIMINATOR, "Loss"),
    MetricSpec(MLM_ACCURACY, ("mlm_correct", "masked"), GENERATOR, "MLM accuracy", "MLM accuracy (generator)"),
    MetricSpec("sampled_masked_lm_accuracy", ("sampled_correct", "masked"), GENERATOR, "Sampled-token accuracy"),
    MetricSpec(MLM_LOSS, ("mlm_loss_sum", "masked"), GENERATOR, "MLM loss"),
    MetricSpec(LOSS),
    MetricSpec(LEARNING_RATE, evaluated=False),
    MetricSpec(GRAD_NORM, evaluated=False),
    MetricSpec(LOSS_SCALE, evaluated=False),
)
"""Every metric of pretraining, in the order tables show them (discriminator first, as model cards do)."""

LOGGED_METRICS = tuple(spec.name for spec in PRETRAINING_METRICS)
"""What the training logger writes to the console and TensorBoard (each when the step reports it)."""
EVALUATED_METRICS = tuple(spec.name for spec in PRETRAINING_METRICS if spec.evaluated)
"""What an evaluation records (``eval_results.json``, the eval history, TensorBoard's eval run)."""


def console_rows(values: dict[str, float]) -> list[tuple[str, float]]:
    """``(label, value)`` of the printed eval table, for the metrics in ``values``."""
    shown = [spec for spec in PRETRAINING_METRICS if spec.console_label and spec.name in values]
    return [(spec.console_label, values[spec.name]) for spec in shown]


def card_rows(network: Network, values: dict[str, float]) -> list[tuple[str, float]]:
    """``(label, value)`` of ``network``'s model-card evaluation table: the discriminator's card shows
    both networks' metrics, the generator's only its own."""
    shown = (GENERATOR,) if network is GENERATOR else (DISCRIMINATOR, GENERATOR)
    return [
        (spec.card_label, values[spec.name])
        for spec in PRETRAINING_METRICS
        if spec.card_label and spec.network in shown and spec.name in values
    ]


@contextlib.contextmanager
def state_set_aside(metrics: Sequence[keras.metrics.Metric], strategy: tf.distribute.Strategy) -> Iterator[None]:
    """Run the ``with`` body (an evaluation, which resets and fills ``metrics``), then put back the
    state ``metrics`` had before it, so the training window the body interrupted goes on unchanged.

    Under a ``tf.distribute`` strategy each metric variable is sync-on-read and SUM-aggregated: reading
    it sums the replicas' copies and assigning it splits the value among them. So each replica's own
    copy is saved and restored (``strategy.experimental_local_results``), which is exact whatever
    the copies hold.
    """
    copies = [
        component
        for metric in metrics
        for variable in metric.variables
        for component in strategy.experimental_local_results(variable.value)
    ]
    saved = [copy.numpy() for copy in copies]
    try:
        yield
    finally:
        for copy, value in zip(copies, saved, strict=True):
            copy.assign(value)


def auc_thresholds(num_thresholds: int = NUM_AUC_THRESHOLDS) -> np.ndarray:
    """Evenly spaced thresholds in [0, 1], the ends nudged outside so probabilities 0 and 1 fall inside."""
    epsilon = 1e-7
    inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    return np.array([-epsilon, *inner, 1.0 + epsilon], np.float32)


class RatioMetric(keras.metrics.Metric):
    """``Σ numerator / Σ denominator`` over everything seen since the last reset."""

    def __init__(self, name: str, scale: float = 1.0, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.scale = scale
        self.numerator = self.add_variable(shape=(), initializer="zeros", name="numerator", aggregation="sum")
        self.denominator = self.add_variable(shape=(), initializer="zeros", name="denominator", aggregation="sum")

    def update_state(self, numerator: tf.Tensor, denominator: tf.Tensor) -> None:
        self.numerator.assign_add(tf.cast(numerator, self.dtype))
        self.denominator.assign_add(tf.cast(denominator, self.dtype))

    def result(self) -> tf.Tensor:
        return self.scale * tf.math.divide_no_nan(self.numerator, self.denominator)


class RocAucMetric(keras.metrics.Metric):
    """ROC AUC from confusion counts at fixed thresholds (trapezoidal rule, as ``tf.metrics.auc``)."""

    def __init__(self, name: str, num_thresholds: int = NUM_AUC_THRESHOLDS, **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.counts = {
            kind: self.add_variable(shape=(num_thresholds,), initializer="zeros", name=kind, aggregation="sum")
            for kind in ("tp", "fp", "fn", "tn")
        }

    def update_state(self, tp: tf.Tensor, fp: tf.Tensor, fn: tf.Tensor, tn: tf.Tensor) -> None:
        for kind, value in zip(("tp", "fp", "fn", "tn"), (tp, fp, fn, tn), strict=True):
            self.counts[kind].assign_add(tf.cast(value, self.dtype))

    def result(self) -> tf.Tensor:
        tp, fp, fn, tn = (self.counts[kind] for kind in ("tp", "fp", "fn", "tn"))
        recall = tf.math.divide_no_nan(tp, tp + fn)
        false_positive_rate = tf.math.divide_no_nan(fp, fp + tn)
        # Thresholds ascend, so the rates descend: sum the trapezoids between neighbours.
        widths = false_positive_rate[:-1] - false_positive_rate[1:]
        heights = (recall[:-1] + recall[1:]) / 2.0
        return tf.reduce_sum(widths * heights)


def confusion_counts(
    probabilities: tf.Tensor, labels: tf.Tensor, weights: tf.Tensor, thresholds: tf.Tensor
) -> dict[str, tf.Tensor]:
    """Weighted TP/FP/FN/TN ``[T]`` of ``probabilities > threshold`` against binary ``labels``."""
    predicted = tf.cast(probabilities[..., None] > thresholds, tf.float32)  # [..., T]
    positive = (labels * weights)[..., None]
    negative = ((1.0 - labels) * weights)[..., None]
    axes = list(range(len(probabilities.shape)))
    return {
        "tp": tf.reduce_sum(predicted * positive, axes),
        "fp": tf.reduce_sum(predicted * negative, axes),
        "fn": tf.reduce_sum((1.0 - predicted) * positive, axes),
        "tn": tf.reduce_sum((1.0 - predicted) * negative, axes),
    }
