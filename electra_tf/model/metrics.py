"""Pretraining metrics accumulated from per-batch sufficient statistics.

The training step computes sums (correct predictions, weights, confusion counts per threshold)
inside the compiled step; these metrics only add them up. Sums aggregate exactly across replicas,
accumulation micro-batches and logging windows, so every value is a true token-weighted ratio over
the window, not an average of per-step averages. The definitions follow Google's eval metrics
(docs/algorithm.md#evaluation-metrics), except that the discriminator's AUC is computed over real tokens only
(Google's counts padding as easy negatives, which inflates it).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

NUM_AUC_THRESHOLDS = 200


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
