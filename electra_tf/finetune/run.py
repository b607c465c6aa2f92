"""A fine-tuning run: task data, starting point, trials of ``fit`` with dev scores per epoch, test scores.

``run_finetuning`` is what ``run_finetuning.py`` calls. The network, optimizer and compiled step
are built once (:class:`Learner`); each trial resets them to the starting point with its own seed
(``--seed`` + trial number: head initialisation, dropout, data order), trains for the recipe's epochs,
scores the dev set after each epoch, keeps the weights of the best dev epoch, and scores the test
set with them. ``results.json`` holds every trial and the median over trials, because one
fine-tuning run of a small data set varies by a point or more with the seed (Google report the
median of 10). Everything is written into a staging folder that becomes ``--output-dir`` when the
run succeeds (``atomic_io.atomic_directory``), so a failed run leaves nothing half-written:

    results.json      every trial's dev and test scores (per type / label), best epoch, training
                      examples/s (finetune/throughput.py), the medians
    finetuning.json   what export needs: task, labels, starting point, vocab and casing, encoder, hparams
    vocab.txt         the starting point's vocab
    trial_N/          model.safetensors (the best epoch's weights, TF1 names), epochs.json,
                      dev and test predictions in the input's format
    logs/trial_N/     TensorBoard: train/ (loss, accuracy, lr, throughput), dev/ (score, loss per epoch)
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.atomic_io import atomic_directory, copy_file_atomically, write_json_atomically, write_text_atomically
from electra_tf.callbacks import TrainingLogger, TrainingStepTimer
from electra_tf.distribution import create_strategy, is_chief, spans_several_workers
from electra_tf.errors import UserError
from electra_tf.finetune.batches import Batches
from electra_tf.finetune.char_spans import spans_bio_cannot_represent
from electra_tf.finetune.evaluation import EncodedSplit, KeepBestEpoch, SplitEvaluator
from electra_tf.finetune.hparams import resolve_hparams, split_hparams
from electra_tf.finetune.model import assign_starting_weights, assign_weights, build_finetuning_model, network_weights
from electra_tf.finetune.pair_encoding import encode_classification
from electra_tf.finetune.recipe import FinetuningHparams, recipe_size
from electra_tf.finetune.record import FINETUNING_FILE, FinetuningRecord
from electra_tf.finetune.splits import Splits, load_splits
from electra_tf.finetune.starting_point import StartingPoint, load_starting_point
from electra_tf.finetune.tasks import CHAR_SPAN_F1, TAGGING, Task
from electra_tf.finetune.throughput import throughput_summary
from electra_tf.finetune.trainer import LOGGED_METRICS, FinetuningTrainer
from electra_tf.finetune.windows import encode_tagging
from electra_tf.finetune.word_pieces import batch_tokenize, word_piece_lookup
from electra_tf.interop.safetensors_io import WEIGHTS_FILE, write_weights
from electra_tf.optimization import create_finetuning_optimizer
from electra_tf.tokenization import Tokenizer, Vocab

RESULTS_FILE = "results.json"
VOCAB_FILE = "vocab.txt"


@dataclasses.dataclass(frozen=True)
class FinetuningOptions:
    """What the user asked of a fine-tuning run (the flags of ``run_finetuning.py``)."""

    task: Task
    data_dir: Path
    output_dir: Path
    init_checkpoint: Path | None = None
    random_init: bool = False
    vocab_file: Path | None = None
    model_size: str | None = None
    do_lower_case: bool | None = None
    strip_accents: bool | None = None
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    hparam_flags: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Given flags that set a :class:`FinetuningHparams` field, by field name."""
    num_trials: int = 1
    seed: int = 0
    precision: str = "float32"
    jit_compile: bool = False
    distribution: str = "auto"
    overwrite: bool = False
    max_train_examples: int | None = None


def run_finetuning(options: FinetuningOptions) -> dict[str, Any]:
    """Fine-tune as ``options`` say; returns what ``results.json`` holds."""
    if options.num_trials < 1:
        raise UserError(f"--num-trials must be at least 1, got {options.num_trials}.")
    with atomic_directory(options.output_dir, options.overwrite) as staging:
        logging.info("Writing into %s; it becomes %s when the run ends.", staging, options.output_dir)
        return _run(options, staging)


def _run(options: FinetuningOptions, out: Path) -> dict[str, Any]:
    settings, architecture = split_hparams(options.hparams)
    point = load_starting_point(
        options.init_checkpoint,
        vocab_file=options.vocab_file,
        model_size=options.model_size,
        hparams=architecture,
        do_lower_case=options.do_lower_case,
        strip_accents=options.strip_accents,
    )
    if options.random_init and point.weights is not None:
        point = point.without_weights()
    size, size_note = recipe_size(options.model_size, point.encoder)
    hparams = resolve_hparams(size, settings, options.hparam_flags)
    notes = [note for note in (size_note,) if note]
    if hparams.max_seq_length > point.encoder.max_position_embeddings:
        raise UserError(
            f"max_seq_length {hparams.max_seq_length} exceeds the starting point's "
            f"{point.encoder.max_position_embeddings} positions."
        )
    task = options.task
    splits = load_splits(task, options.data_dir, dev_fraction=hparams.dev_fraction, seed=options.seed)
    notes += splits.notes
    splits, limit_note = _limit_training(splits, options.max_train_examples)
    notes += [limit_note] if limit_note else []
    if splits.metric == CHAR_SPAN_F1:
        notes += _char_span_ceilings(splits)
    for note in notes:
        logging.info("Note: %s", note)
    logging.info("Starting point: %s (%s recipe).", point.description, size)

    vocab = Vocab.load(point.vocab_file)
    tokenizer = Tokenizer(vocab, point.do_lower_case, point.strip_accents)
    label_to_id = {label: index for index, label in enumerate(splits.labels)}
    encoded = _encode(task.kind, splits, tokenizer, vocab, label_to_id, hparams.max_seq_length)
    logging.info(
        "%s: %d labels; %d training, %d dev and %d test examples (%d, %d and %d model inputs).",
        task.name,
        len(splits.labels),
        *(len(encoded[name].examples) for name in ("train", "dev", "test")),
        *(len(encoded[name].inputs) for name in ("train", "dev", "test")),
    )

    strategy = create_strategy(options.distribution)
    chief = is_chief(strategy)
    steps_per_epoch = Batches(encoded["train"].inputs, hparams.train_batch_size, hparams.max_seq_length).num_batches
    if chief:
        copy_file_atomically(point.vocab_file, out / VOCAB_FILE)
        record = _finetuning_record(options, task, splits, point, hparams, trial=None)
        write_text_atomically(out / FINETUNING_FILE, record.to_json())
    previous_policy = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(options.precision)
    try:
        num_train_steps = hparams.num_train_epochs * steps_per_epoch
        learner = Learner.build(options, point, task.kind, len(splits.labels), hparams, num_train_steps, strategy)
        trials = [
            _run_trial(trial, learner, options, task, splits, encoded, point, hparams, out, chief)
            for trial in range(options.num_trials)
        ]
    finally:
        keras.mixed_precision.set_dtype_policy(previous_policy)
    results = _results(task, splits, notes, trials, options, hparams)
    if chief:
        write_json_atomically(out / RESULTS_FILE, results)
        record = _finetuning_record(options, task, splits, point, hparams, trial=results["exported_trial"])
        write_text_atomically(out / FINETUNING_FILE, record.to_json())
    logging.info("%s", summary_line(results))
    return results


def _limit_training(splits: Splits, limit: int | None) -> tuple[Splits, str | None]:
    """``splits`` with only the first ``limit`` training examples (``--max-train-examples``), and a note."""
    if limit is None:
        return splits, None
    if limit < 1:
        raise UserError(f"--max-train-examples must be at least 1, got {limit}.")
    if limit >= len(splits.train):
        return splits, f"--max-train-examples {limit}: training on all {len(splits.train)} training examples."
    note = f"--max-train-examples: training on the first {limit} of {len(splits.train)} training examples."
    return dataclasses.replace(splits, train=splits.train[:limit]), note


def _char_span_ceilings(splits: Splits) -> list[str]:
    """A note per scored split on the gold entities word-level BIO cannot reproduce."""
    notes = []
    for name, sentences in (("dev", splits.dev), ("test", splits.test)):
        gold = sum(len(sentence.spans) for sentence in sentences)
        lost = len(spans_bio_cannot_represent(sentences))
        if gold:
            notes.append(
                f"{name}: {lost} of {gold} gold entities cannot be expressed in word-level BIO "
                f"(recall ceiling {1 - lost / gold:.1%})."
            )
    return notes


def _encode(
    kind: str, splits: Splits, tokenizer: Tokenizer, vocab: Vocab, label_to_id: dict[str, int], max_seq_length: int
) -> dict[str, EncodedSplit]:
    """Each split's model inputs; notes on cut words or texts go to the log."""
    split_examples = {"train": splits.train, "dev": splits.dev, "test": splits.test}
    tokenize = batch_tokenize(tokenizer)
    encoded = {}
    if kind == TAGGING:
        words = (word for examples in split_examples.values() for sentence in examples for word in sentence.words)
        pieces = word_piece_lookup(tokenize, words)
        for name, examples in split_examples.items():
            encoding = encode_tagging(examples, label_to_id, pieces, vocab, max_seq_length)
            if encoding.truncated_words:
                logging.info("%s: %d word(s) longer than a window were cut.", name, encoding.truncated_words)
            encoded[name] = EncodedSplit(list(examples), encoding.windows)
    else:
        for name, examples in split_examples.items():
            inputs = encode_classification(examples, label_to_id, tokenize, vocab, max_seq_length) if examples else []
            cut = sum(item.truncated for item in inputs)
            if cut:
                logging.info("%s: %d example(s) cut to max_seq_length %d.", name, cut, max_seq_length)
            encoded[name] = EncodedSplit(list(examples), inputs)
    return encoded


# ------------------------------------------------------------------------------------------------
# One trial.
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Learner:
    """The network, optimizer and trainer of a run, built and compiled once and reset for each trial,
    so every trial reuses the traced (and XLA-compiled) step instead of compiling its own."""

    trainer: FinetuningTrainer
    initial_optimizer_state: list[np.ndarray]

    @classmethod
    def build(
        cls,
        options: FinetuningOptions,
        point: StartingPoint,
        kind: str,
        num_labels: int,
        hparams: FinetuningHparams,
        num_train_steps: int,
        strategy: tf.distribute.Strategy,
    ) -> Learner:
        with strategy.scope():
            network = build_finetuning_model(point.encoder, kind, num_labels, hparams.freeze_encoder)
            optimizer = create_finetuning_optimizer(
                network,
                learning_rate=hparams.learning_rate,
                num_train_steps=num_train_steps,
                warmup_proportion=hparams.warmup_proportion,
                weight_decay_rate=hparams.weight_decay_rate,
                layerwise_lr_decay=hparams.layerwise_lr_decay,
                precision=options.precision,
            )
            trainer = FinetuningTrainer(
                network,
                max_seq_length=hparams.max_seq_length,
                seed=options.seed,
                jit_compile=options.jit_compile,
                several_workers=spans_several_workers(strategy),
            )
            trainer.compile(optimizer=optimizer)
        return cls(trainer, [np.array(variable.numpy()) for variable in optimizer.variables])

    def start_trial(self, point: StartingPoint, seed: int) -> None:
        """Fresh weights drawn from ``seed`` (the starting point's for the encoder), fresh optimizer
        state (step 0, zero moments, the initial loss scale) and ``seed``'s dropout masks."""
        network = self.trainer.network
        keras.utils.set_random_seed(seed)
        fresh = build_finetuning_model(network.encoder_config, network.kind, network.num_labels)
        assign_weights(network, network_weights(fresh))
        assign_starting_weights(network, point)
        for variable, value in zip(self.trainer.optimizer.variables, self.initial_optimizer_state, strict=True):
            variable.assign(value)
        self.trainer.dropout_seed.assign(seed)


def _run_trial(
    trial: int,
    learner: Learner,
    options: FinetuningOptions,
    task: Task,
    splits: Splits,
    encoded: dict[str, EncodedSplit],
    point: StartingPoint,
    hparams: FinetuningHparams,
    out: Path,
    chief: bool,
) -> dict[str, Any]:
    """Train one trial, keep its best dev epoch, score test; returns its entry of ``results.json``."""
    seed = options.seed + trial
    folder = out / f"trial_{trial}"
    learner.start_trial(point, seed)
    trainer = learner.trainer
    train = Batches(encoded["train"].inputs, hparams.train_batch_size, hparams.max_seq_length, seed=seed)
    num_train_steps = hparams.num_train_epochs * train.num_batches
    evaluator = SplitEvaluator(trainer, task, splits, encoded, hparams, out if chief else None, trial)
    logs = out / "logs" / f"trial_{trial}"
    writer = tf.summary.create_file_writer(str(logs / "train")) if chief else None
    logger = TrainingLogger(
        every=hparams.log_every_steps,
        writer=writer,
        total_steps=num_train_steps,
        examples_per_step=hparams.train_batch_size,
        tokens_per_example=None,
        flops_per_example=None,
        peak_flops=None,
        metric_names=LOGGED_METRICS,
        summary=finetuning_summary,
    )
    dev_writer = tf.summary.create_file_writer(str(logs / "dev")) if chief else None
    best = KeepBestEpoch(evaluator, dev_writer, took=logger.leave_out)
    timer = TrainingStepTimer()
    logging.info(
        "Trial %d of %d (seed %d): %d epochs of %d steps, batch %d, lr %.3g, layer-wise decay %.2f, %s, XLA %s%s.",
        trial + 1,
        options.num_trials,
        seed,
        hparams.num_train_epochs,
        train.num_batches,
        hparams.train_batch_size,
        hparams.learning_rate,
        hparams.layerwise_lr_decay,
        options.precision,
        "on" if options.jit_compile else "off",
        ", encoder frozen (only the head trains)" if hparams.freeze_encoder else "",
    )
    trainer.fit(
        train.dataset(hparams.num_train_epochs),
        epochs=hparams.num_train_epochs,
        steps_per_epoch=train.num_batches,
        callbacks=[timer, logger, best],  # the timer first: its batches end before the logger's work
        verbose=0,
        shuffle=False,
    )
    assign_weights(trainer.network, best.weights)
    dev = evaluator.evaluate("dev", write_predictions=True)
    test = evaluator.evaluate("test", write_predictions=True) if encoded["test"].inputs else None
    if chief:
        write_weights(folder / WEIGHTS_FILE, best.weights)
        write_json_atomically(folder / "epochs.json", best.epochs)
    speed = throughput_summary(len(train.inputs), timer.seconds_by_epoch)
    logging.info(
        "Trial %d: best epoch %d, dev %s %.4f%s; %.1f training examples/s.",
        trial + 1,
        best.best_epoch,
        splits.metric,
        dev["score"],
        f", test {test['score']:.4f}" if test else "",
        speed["examples_per_second"],
    )
    return {
        "trial": trial,
        "seed": seed,
        "best_epoch": best.best_epoch,
        "dev": dev,
        "test": test,
        "epochs": best.epochs,
        "training_throughput": speed,
    }


def finetuning_summary(values: dict[str, float]) -> str:
    """The console line's metrics for fine-tuning."""
    loss, accuracy, rate = (values.get(name, math.nan) for name in ("loss", "accuracy", "learning_rate"))
    return f"loss {loss:.4f}  acc {accuracy:.3f}  lr {rate:.3g}"


# ------------------------------------------------------------------------------------------------
# Results.
# ------------------------------------------------------------------------------------------------
def _results(
    task: Task,
    splits: Splits,
    notes: list[str],
    trials: list[dict[str, Any]],
    options: FinetuningOptions,
    hparams: FinetuningHparams,
) -> dict[str, Any]:
    dev_scores = [trial["dev"]["score"] for trial in trials]
    test_scores = [trial["test"]["score"] for trial in trials if trial["test"] is not None]
    exported = max(range(len(trials)), key=lambda index: dev_scores[index])
    return {
        "task": task.name,
        "metric": splits.metric,
        "notes": notes,
        "num_trials": len(trials),
        "median": {
            "dev": statistics.median(dev_scores),
            "test": statistics.median(test_scores) if test_scores else None,
        },
        "exported_trial": exported,
        "exported_because": "the best dev score (test scores never choose a model)",
        "hparams": hparams.to_dict(),
        "precision": options.precision,
        "trials": trials,
    }


def summary_line(results: dict[str, Any]) -> str:
    """One line with the medians, e.g. for the end of the log."""
    median = results["median"]
    test = f", test {median['test']:.4f}" if median["test"] is not None else " (no test split)"
    return (
        f"{results['task']}: median {results['metric']} over {results['num_trials']} trial(s): dev "
        f"{median['dev']:.4f}{test}."
    )


def _finetuning_record(
    options: FinetuningOptions,
    task: Task,
    splits: Splits,
    point: StartingPoint,
    hparams: FinetuningHparams,
    trial: int | None,
) -> FinetuningRecord:
    """What export needs to rebuild the network and its tokenizer; ``trial`` None: no weights yet."""
    return FinetuningRecord(
        task=task.name,
        kind=task.kind,
        labels=tuple(splits.labels),
        encoder=point.encoder,
        vocab_file=VOCAB_FILE,
        do_lower_case=point.do_lower_case,
        strip_accents=point.strip_accents,
        starting_point=point.description,
        weights=f"trial_{trial}/{WEIGHTS_FILE}" if trial is not None else None,
        metric=splits.metric,
        init_checkpoint=str(options.init_checkpoint) if options.init_checkpoint else None,
        random_init=point.weights is None,
        hparams=hparams.to_dict(),
        results=RESULTS_FILE if trial is not None else None,
    )
