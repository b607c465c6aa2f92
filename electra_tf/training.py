"""A pretraining run: data, strategy, precision, model, optimizer, resume, ``fit``, evaluation.

``run_pretraining`` is what ``run_pretraining.py`` calls. Re-running the same command continues from
the newest intact checkpoint in the model directory (see ``checkpoint_recovery.py``): weights,
optimizer slots, step and loss scale are restored, the learning-rate schedule continues from the
step, and the input stream resumes at the example the step implies (see ``data/input_pipeline.py``),
so no part of the data is replayed or skipped beyond one shuffle buffer.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from absl import logging

from electra_tf.atomic_io import write_json_atomically
from electra_tf.callbacks import CheckpointSaver, PeriodicEvaluation, StopOnNonFiniteLoss, TrainingLogger
from electra_tf.checkpoint_recovery import resume_point
from electra_tf.config import PretrainingConfig, resolve_run_config
from electra_tf.data.dataset_info import DatasetInfo
from electra_tf.data.input_pipeline import Shard, evaluation_dataset, training_dataset
from electra_tf.distribution import check_every_worker_restored, create_strategy, is_chief, spans_several_workers
from electra_tf.errors import UserError
from electra_tf.flops import measured_matmul_peak, training_flops_per_example
from electra_tf.model.masking import SpecialIds
from electra_tf.model.metrics import EVALUATED_METRICS, console_rows, state_set_aside
from electra_tf.model.pretrainer import ElectraPretrainer
from electra_tf.model_dir import ModelDirectory
from electra_tf.optimization import optimizer_for_precision
from electra_tf.tokenization import Vocab

EVAL_HISTORY_FILE = "eval_history.jsonl"
"""One line of eval results per evaluation (periodic and final), for learning curves."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What the user asked of a run: where it reads and writes, what it does, and the config inputs
    (see :func:`electra_tf.config.resolve_run_config`)."""

    data_dir: Path
    model_dir: Path
    model_size: str | None = None
    """``--model-size``, or ``None`` when not given (a resumed run keeps its own, a new one is small)."""
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    config_flags: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The config flags that were given, by field name."""
    do_train: bool = True
    do_eval: bool = False
    init_checkpoint: Path | None = None
    strategy: str = "auto"
    tpu: str | None = None


def check_dataset_matches_model(info: DatasetInfo, model_dir: ModelDirectory) -> None:
    """Refuse data built with another vocab than the one the model in ``model_dir`` was trained with."""
    if model_dir.vocab_file.is_file():
        trained_with = Vocab.load(model_dir.vocab_file)
        if trained_with.sha256 != info.vocab_sha256:
            raise UserError(
                f"the dataset in {info.data_dir} was built with another vocab (sha256 {info.vocab_sha256[:12]}…) "
                f"than the model in {model_dir.path} (sha256 {trained_with.sha256[:12]}…); ids would mean other "
                "tokens. Rebuild the dataset with the model's vocab.txt."
            )


def check_evaluation_data(info: DatasetInfo) -> None:
    """Refuse evaluation, with what actually happened and the fix, when the dataset holds no held-out example."""
    if info.num_eval_examples > 0:
        return
    stats, fraction = info.stats, info.stats.get("eval_fraction")
    if "indexed_from" in stats:
        why, fix = "it was indexed without --eval-tfrecords", "index held-out records with --eval-tfrecords"
    elif fraction:
        held_out, documents = stats.get("documents_eval", 0), stats.get("documents_train", 0)
        why = f"it was built with --eval-fraction {fraction}, but " + (
            f"its {held_out} held-out document(s) gave no example"
            if held_out
            else f"none of the corpus's {documents} document(s) was drawn for evaluation (too few documents)"
        )
        fix = "rebuild it from a corpus with more documents or with a larger --eval-fraction"
    else:
        why, fix = "it was built with --eval-fraction 0", "rebuild it with --eval-fraction above 0"
    raise UserError(
        f"evaluation needs held-out examples, and the dataset in {info.data_dir} has none: {why}. To evaluate, {fix}; "
        "or train without --do-eval and --eval-every-steps."
    )


def run_pretraining(options: RunOptions) -> dict[str, float] | None:
    """Train and/or evaluate as ``options`` say; returns the final evaluation results if ``do_eval``."""
    info = DatasetInfo.load(options.data_dir)
    model_dir = ModelDirectory(options.model_dir)
    check_dataset_matches_model(info, model_dir)
    config = resolve_run_config(
        options.model_size, options.hparams, options.config_flags, info.model_settings(), model_dir.stored_config()
    )
    if options.do_eval or config.eval_every_steps:
        check_evaluation_data(info)  # now, not after the training it would follow
    vocab = Vocab.load(info.vocab_file)
    if vocab.sha256 != info.vocab_sha256:
        raise UserError(f"{info.vocab_file} does not match the vocab recorded in {info.data_dir}/dataset_info.json.")

    strategy = create_strategy(options.strategy, options.tpu)
    chief = is_chief(strategy)
    if chief:
        model_dir.save_config(config)
        model_dir.save_vocab(info.vocab_file)
        model_dir.save_training_data(
            {"data_dir": str(info.data_dir), "vocab_sha256": info.vocab_sha256, "packing": info.packing, **info.stats}
        )
    keras.mixed_precision.set_dtype_policy(config.precision)
    keras.utils.set_random_seed(config.seed)
    special = SpecialIds.from_vocab(vocab)
    with strategy.scope():
        model = ElectraPretrainer(config, special, several_workers=spans_several_workers(strategy))
        optimizer = optimizer_for_precision(config)
        model.compile(optimizer=optimizer, steps_per_execution=config.steps_per_execution)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
    _restore_or_initialise(checkpoint, model, model_dir, options, vocab, chief)
    check_every_worker_restored(strategy, int(model.optimizer.iterations.numpy()))

    evaluator = Evaluator(model, config, info, model_dir, chief) if options.do_eval or config.eval_every_steps else None
    # Non-chief workers save too (MultiWorkerMirroredStrategy expects every worker to), into a scratch
    # directory removed at the end.
    scratch = None if chief else tempfile.TemporaryDirectory(prefix="electra_tf_worker_")
    try:
        manager = tf.train.CheckpointManager(
            checkpoint,
            scratch.name if scratch else str(model_dir.checkpoints),
            max_to_keep=config.keep_checkpoint_max if chief else 1,
        )
        if options.do_train:
            _train(model, config, info, strategy, manager, model_dir, vocab, evaluator, chief)
    finally:
        if scratch is not None:
            scratch.cleanup()
    return evaluator() if options.do_eval else None


def _restore_or_initialise(
    checkpoint: tf.train.Checkpoint,
    model: ElectraPretrainer,
    model_dir: ModelDirectory,
    options: RunOptions,
    vocab: Vocab,
    chief: bool,
) -> None:
    """Every worker restores the chief's newest intact checkpoint, or else imports ``--init-checkpoint`` if given.

    The checkpoint is chosen from the files on disk (see ``checkpoint_recovery``); the chief also
    removes partial writes, sets unreadable checkpoints aside and repairs the state file first.
    """
    latest = resume_point(model_dir.checkpoints, tidy=chief)
    if latest is not None:
        try:
            checkpoint.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as error:
            raise UserError(f"cannot restore {latest}: {error}") from None
        logging.info("Resumed from %s at step %d.", latest, int(model.optimizer.iterations.numpy()))
        if options.init_checkpoint is not None:
            logging.warning("--init-checkpoint ignored: the model directory already has a checkpoint to resume.")
        return
    if options.init_checkpoint is not None:
        from electra_tf.interop.init_checkpoint import initialise_from

        initialise_from(model, options.init_checkpoint, vocab)


def _train(
    model: ElectraPretrainer,
    config: PretrainingConfig,
    info: DatasetInfo,
    strategy: tf.distribute.Strategy,
    manager: tf.train.CheckpointManager,
    model_dir: ModelDirectory,
    vocab: Vocab,
    evaluator: Evaluator | None,
    chief: bool,
) -> None:
    """Fit to ``config.num_train_steps``; every worker saves (non-chief workers to a scratch directory),
    as MultiWorkerMirroredStrategy requires."""
    start_step = int(model.optimizer.iterations.numpy())
    remaining = config.num_train_steps - start_step
    if remaining <= 0:
        logging.info("Already trained %d of %d steps; nothing to do.", start_step, config.num_train_steps)
        return
    dataset = _distributed_training_data(config, info, strategy, start_step)
    peak = _matmul_peak(config.precision)
    flops = training_flops_per_example(config)
    writer = tf.summary.create_file_writer(str(model_dir.path / "train")) if chief else None
    sample = _first_eval_example(config, info)
    sample_text = (lambda: replaced_token_markdown(model, sample, vocab)) if sample is not None else None
    callbacks = training_callbacks(config, manager, writer, flops, peak, sample_text, evaluator)
    logging.info(
        "Training steps %d..%d: global batch %d (%d micro-batch(es) per step), %s, XLA %s, %.2f GFLOP per example, "
        "matmul peak %.1f TFLOP/s.",
        start_step,
        config.num_train_steps,
        config.train_batch_size,
        config.gradient_accumulation_steps,
        config.precision,
        "on" if config.jit_compile else "off",
        flops / 1e9,
        (peak or 0) / 1e12,
    )
    model.fit(dataset, epochs=1, steps_per_epoch=remaining, callbacks=callbacks, verbose=0, shuffle=False)


def training_callbacks(
    config: PretrainingConfig,
    manager: tf.train.CheckpointManager,
    writer: tf.summary.SummaryWriter | None,
    flops_per_example: int,
    peak_flops: float | None,
    sample_text: Callable[[], str] | None,
    evaluator: Evaluator | None,
) -> list[keras.callbacks.Callback]:
    """The callbacks of a training run in their fixed order (Keras calls them in list order after each step)."""
    callbacks: list[keras.callbacks.Callback] = []
    if config.precision != "mixed_float16":
        # 1. First, so a non-finite loss stops the run before a checkpoint saves ruined weights
        #    (under mixed_float16 the loss scale skips such steps instead).
        callbacks.append(StopOnNonFiniteLoss(config.precision))
    # 2. Checkpoints every save_checkpoints_steps and at the end.
    callbacks.append(CheckpointSaver(manager, config.save_checkpoints_steps))
    # 3. The logger owns the training-metric window: it reports the window's metrics, then resets them
    #    (nothing else does: evaluation puts back the window it interrupts, see evaluate_aside).
    logger = TrainingLogger(
        every=config.log_every_steps,
        writer=writer,
        total_steps=config.num_train_steps,
        examples_per_step=config.train_batch_size,
        tokens_per_example=config.max_seq_length,
        flops_per_example=flops_per_example,
        peak_flops=peak_flops,
        sample_text=sample_text,
    )
    callbacks.append(logger)
    if config.eval_every_steps:
        # 4. Last, after the logger: when both are due, the step's log line comes before the eval table.
        #    Its time is left out of the window's throughput.
        callbacks.append(PeriodicEvaluation(config.eval_every_steps, evaluator, took=logger.leave_out))
    return callbacks


def _distributed_training_data(
    config: PretrainingConfig, info: DatasetInfo, strategy: tf.distribute.Strategy, start_step: int
) -> tf.distribute.DistributedDataset:
    """Per-replica batches; each input pipeline (worker) reads its own share of the shards."""
    if config.train_batch_size % strategy.num_replicas_in_sync:
        raise UserError(
            f"train_batch_size {config.train_batch_size} is not divisible by the {strategy.num_replicas_in_sync} "
            "replicas."
        )

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        shards = _worker_shards(info.train_shards, context.input_pipeline_id, context.num_input_pipelines)
        per_replica = context.get_per_replica_batch_size(config.train_batch_size)
        per_pipeline = per_replica * (strategy.num_replicas_in_sync // context.num_input_pipelines)
        logging.info(
            "Input pipeline %d of %d reads %d of %d training shards.",
            context.input_pipeline_id,
            context.num_input_pipelines,
            len(shards),
            len(info.train_shards),
        )
        dataset = training_dataset(
            shards,
            batch_size=per_replica,
            seq_length=config.max_seq_length,
            seed=config.seed,
            start_example=start_step * per_pipeline,
        )
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
        return dataset.with_options(options)

    return strategy.distribute_datasets_from_function(dataset_fn)


def _worker_shards(shards: tuple[Shard, ...], index: int, count: int) -> list[Shard]:
    mine = list(shards[index::count])
    if not mine:
        raise UserError(f"{len(shards)} training shard(s) cannot feed {count} workers; rebuild with more --num-shards.")
    return mine


def _matmul_peak(precision: str) -> float | None:
    dtype = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}[precision]
    try:
        return measured_matmul_peak(dtype)
    except (tf.errors.OpError, TypeError) as error:
        logging.warning("Could not measure the %s matmul peak (%s); MFU is not reported.", dtype, error)
        return None


def _first_eval_example(config: PretrainingConfig, info: DatasetInfo) -> dict[str, tf.Tensor] | None:
    """The first held-out example (or the first training one), for the TensorBoard text sample."""
    shards = info.eval_shards or info.train_shards
    if not shards:
        return None
    return next(iter(evaluation_dataset([shards[0].path], 1, config.max_seq_length)))


def replaced_token_markdown(model: ElectraPretrainer, example: dict[str, tf.Tensor], vocab: Vocab) -> str:
    """A markdown table of one corrupted example: each token, whether it was replaced, the verdict."""
    result = model.replaced_token_example(example)
    length = int(tf.reduce_sum(example["input_mask"][0]))
    original = vocab.convert_ids_to_tokens(example["input_ids"][0, :length].numpy().tolist())
    fake = vocab.convert_ids_to_tokens(result["fake_ids"][0, :length].numpy().tolist())
    labels = result["labels"][0, :length].numpy()
    probabilities = result["probabilities"][0, :length].numpy()
    rows = ["| token seen | original | replaced | P(replaced) |", "|---|---|---|---|"]
    for seen, source, label, probability in zip(fake, original, labels, probabilities, strict=True):
        verdict = "**yes**" if label else "no"
        rows.append(f"| {_cell(seen)} | {_cell(source) if label else ''} | {verdict} | {probability:.2f} |")
    return "\n".join(rows)


def _cell(token: str) -> str:
    return token.replace("|", "\\|")


class Evaluator:
    """Evaluation on the held-out shards: metrics to eval_results.json, eval_history.jsonl and TensorBoard eval/.

    The dataset must hold held-out examples (see :func:`check_evaluation_data`). Up to ``num_eval_steps``
    batches are read; a last partial batch is padded with empty examples that count in no metric.
    """

    def __init__(
        self,
        model: ElectraPretrainer,
        config: PretrainingConfig,
        info: DatasetInfo,
        model_dir: ModelDirectory,
        chief: bool,
    ) -> None:
        self.model, self.model_dir, self.chief = model, model_dir, chief
        self.steps = min(config.num_eval_steps, math.ceil(info.num_eval_examples / config.eval_batch_size))
        self.num_examples = min(info.num_eval_examples, self.steps * config.eval_batch_size)
        padding = self.steps * config.eval_batch_size - self.num_examples
        logging.info(
            "Evaluation: %d held-out example(s) in %d batch(es) of %d%s.",
            self.num_examples,
            self.steps,
            config.eval_batch_size,
            f", the last padded with {padding} empty example(s) that count in no metric" if padding else "",
        )
        dataset = evaluation_dataset(
            [shard.path for shard in info.eval_shards], config.eval_batch_size, config.max_seq_length
        )
        # Across workers, each reads all held-out records and keeps its share of every batch: sharding by
        # file would leave a worker without files when there are fewer shards than workers, and the
        # first worker out of data ends the evaluation for all.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        self.dataset = dataset.with_options(options)
        self.writer = tf.summary.create_file_writer(str(model_dir.path / "eval")) if chief else None
        self._last: dict[str, float] | None = None

    def __call__(self) -> dict[str, float]:
        """Evaluate the current weights (once per step); the results are also printed as the model-card table."""
        if self._last is not None and self._last["global_step"] == int(self.model.optimizer.iterations.numpy()):
            return self._last
        results = evaluate_aside(self.model, self.dataset, self.steps)
        step = int(self.model.optimizer.iterations.numpy())
        values = {name: float(results[name]) for name in EVALUATED_METRICS if name in results}
        values |= {"global_step": step, "num_eval_examples": self.num_examples}
        if self.chief:
            write_json_atomically(self.model_dir.eval_results_file, values)
            with open(self.model_dir.path / EVAL_HISTORY_FILE, "a", encoding="utf-8") as history:
                history.write(json.dumps(values, sort_keys=True) + "\n")
            with self.writer.as_default(step=step):
                for name in EVALUATED_METRICS:
                    if name in values:
                        tf.summary.scalar(name, values[name])
            self.writer.flush()
        print(format_eval_table(values), flush=True)
        self._last = values
        return values


def evaluate_aside(model: keras.Model, dataset: tf.data.Dataset, steps: int) -> dict[str, Any]:
    """``model.evaluate`` on ``steps`` batches of ``dataset``, the training metrics left as it found them.

    Evaluation resets and fills the metric objects training uses; during ``fit`` they hold the
    logger's unfinished window, so their state is set aside and put back (the logger alone resets it).
    """
    with state_set_aside(model.metrics, model.distribute_strategy):
        return model.evaluate(dataset, steps=steps, return_dict=True, verbose=0)


def format_eval_table(values: dict[str, float]) -> str:
    """The discriminator table model cards publish, plus the generator's accuracy."""
    lines = [
        f"Evaluation at step {values.get('global_step')} on {values.get('num_eval_examples')} held-out examples:",
        "| Metric | Value |",
        "|---|---|",
    ]
    lines += [f"| {name} | {value:.4f} |" for name, value in console_rows(values) if math.isfinite(value)]
    return "\n".join(lines)
