"""Scoring a split with the trainer's current weights, and keeping the best epoch's weights of a trial.

:class:`SplitEvaluator` predicts a split's inputs (bucketed batches, Keras ``predict``), maps the
predictions back to the examples (for tagging, each word's label from the one window that scores
it), scores them by the task's metric (:mod:`.scoring`) and writes them in the input's format.
:class:`KeepBestEpoch` runs it on the dev set after every epoch of ``fit``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.finetune.batches import Batches
from electra_tf.finetune.examples import TaggedSentence
from electra_tf.finetune.model import network_weights
from electra_tf.finetune.predictions import (
    write_brat_predictions,
    write_classification_predictions,
    write_tagging_predictions,
)
from electra_tf.finetune.recipe import FinetuningHparams
from electra_tf.finetune.scoring import score_classification, score_tagging
from electra_tf.finetune.splits import Splits
from electra_tf.finetune.tasks import CHAR_SPAN_F1, TAGGING, Task
from electra_tf.finetune.trainer import FinetuningTrainer
from electra_tf.finetune.windows import TaggingWindow, word_predictions


@dataclasses.dataclass(frozen=True)
class EncodedSplit:
    """One split's examples and their model inputs (for tagging, windows of sentences)."""

    examples: list[Any]
    inputs: list[Any]


class SplitEvaluator:
    """Predicts a split with the trainer's current weights, scores it, and writes its predictions."""

    def __init__(
        self,
        trainer: FinetuningTrainer,
        task: Task,
        splits: Splits,
        encoded: dict[str, EncodedSplit],
        hparams: FinetuningHparams,
        out: Path | None,
        trial: int,
    ) -> None:
        self.trainer = trainer
        self.task = task
        self.splits = splits
        self.encoded = encoded
        self.batches = {
            name: Batches(split.inputs, hparams.eval_batch_size, hparams.max_seq_length)
            for name, split in encoded.items()
            if split.inputs
        }
        self.folder = out / f"trial_{trial}" if out is not None else None

    def evaluate(self, split: str, write_predictions: bool = False) -> dict[str, Any]:
        """The split's scores (``score`` is the task's metric) and ``loss``; predictions written if asked."""
        labels, loss = predict_labels(self.trainer, self.batches[split], self.encoded[split], self.splits.labels)
        examples = self.encoded[split].examples
        if self.task.kind == TAGGING:
            scores = score_tagging(self.splits.metric, examples, labels)
        else:
            scores = score_classification(self.splits.metric, examples, labels)
        if write_predictions and self.folder is not None:
            write_split_predictions(self.folder, split, examples, labels, self.splits.metric)
        return {**scores, "loss": loss}


def predict_labels(
    trainer: FinetuningTrainer, batches: Batches, split: EncodedSplit, labels: Sequence[str]
) -> tuple[list[Any], float]:
    """Each example's predicted label(s) (tagging: one per word) and the mean loss over scored positions."""
    outputs = trainer.predict(batches.dataset(), verbose=0)
    order = np.asarray(batches.order)
    predictions = np.empty_like(outputs["predictions"])
    predictions[order] = outputs["predictions"]
    loss = float(np.sum(outputs["loss_sum"]) / max(float(np.sum(outputs["scored"])), 1.0))
    if isinstance(split.inputs[0], TaggingWindow):
        lengths = [len(sentence.words) for sentence in split.examples]
        word_ids = word_predictions(split.inputs, predictions.tolist(), lengths)
        return [[labels[index] for index in sentence] for sentence in word_ids], loss
    return [labels[index] for index in predictions.tolist()], loss


def write_split_predictions(folder: Path, split: str, examples: list[Any], predicted: list[Any], metric: str) -> None:
    """Predictions in the input's format: brat ``.ann`` folder, CoNLL columns or TSV."""
    if metric == CHAR_SPAN_F1:
        write_brat_predictions(folder / f"{split}_predictions", examples, predicted)
    elif isinstance(examples[0], TaggedSentence):
        write_tagging_predictions(folder / f"{split}_predictions.txt", examples, predicted)
    else:
        write_classification_predictions(folder / f"{split}_predictions.tsv", examples, predicted)


class KeepBestEpoch(keras.callbacks.Callback):
    """After each epoch: score dev, log it, and keep a copy of the weights if it is the best so far.

    ``took`` receives the seconds each dev evaluation took (the training logger's ``leave_out``, so that
    its throughput and ETA count training steps only).
    """

    def __init__(
        self,
        evaluator: SplitEvaluator,
        writer: tf.summary.SummaryWriter | None,
        took: Callable[[float], None],
    ) -> None:
        super().__init__()
        self.evaluator = evaluator
        self.writer = writer
        self.took = took
        self.epochs: list[dict[str, Any]] = []
        self.best_epoch = 0
        self.weights: dict[str, np.ndarray] = {}

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        start = time.perf_counter()
        dev = self.evaluator.evaluate("dev")
        step = int(self.model.optimizer.iterations.numpy())
        # The logger resets the training metrics after each of its windows: the loss is the last window's.
        train_loss = _float(logs, "loss")
        self.epochs.append({"epoch": epoch + 1, "step": step, "train_loss_last_window": train_loss, "dev": dev})
        logging.info(
            "Epoch %d: dev %s %.4f, dev loss %.4f.", epoch + 1, self.evaluator.splits.metric, dev["score"], dev["loss"]
        )
        if self.writer is not None:
            with self.writer.as_default(step=step):
                tf.summary.scalar(self.evaluator.splits.metric, dev["score"])
                tf.summary.scalar("loss", dev["loss"])
            self.writer.flush()
        if not self.weights or dev["score"] > self.epochs[self.best_epoch - 1]["dev"]["score"]:
            self.best_epoch = epoch + 1
            self.weights = network_weights(self.model.network)
        self.took(time.perf_counter() - start)


def _float(logs: dict[str, Any] | None, name: str) -> float | None:
    return float(logs[name]) if logs and name in logs else None
