#!/usr/bin/env python3
"""Fine-tuning with Hugging Face ``transformers`` in PyTorch: the peer electra_tf's fine-tuning is measured against.

It fine-tunes an ELECTRA discriminator directory (this project's export, its root or its
``discriminator/`` folder, or any ``ElectraForPreTraining`` directory with its tokenizer files) on a
task of ``electra_tf.finetune.tasks`` with ``ElectraForTokenClassification`` or
``ElectraForSequenceClassification``, and writes per-seed dev and test scores, their median and the
training throughput to a JSON file. Both sides see identical examples: the splits, the first-piece
tagging labels and windows, the pair encoding, the buckets and the scores are electra_tf's own
TF-free data layer; only the tokenizer is the export's Hugging Face one (it gives electra_tf's ids,
which the tests check on a cased vocab).

The recipe is electra_tf's fine-tuning defaults, which restate Google's:

- AdamW **without bias correction** (Google's ``AdamWeightDecayOptimizer``; torch's ``AdamW`` is
  bias-corrected, so :class:`AdamWeightDecay` restates it), β 0.9/0.999, ε 1e-6 outside the square
  root, weight decay 0.01 on every parameter but LayerNorm weights and biases;
- layer-wise learning-rate decay: the top encoder layer gets lr·decay, layer k of n (1-based)
  lr·decay^(n−k+1), the embeddings lr·decay^(n+1), the head lr (its weight decay scaled alike);
- ``lr(t) = peak·(1 − t/T)·min(1, t/W)`` with W = 10% of the T steps (``ElectraLearningRate``),
  global-norm gradient clipping at 1.0, 3 epochs of batches of 32, dropout as in the model config;
- batches of length-sorted inputs padded to ``buckets.bucket_lengths(max_seq_length)``, the last
  partial batch kept; each epoch orders equal lengths at random and shuffles the batches, both from
  ``(seed, epoch)`` (electra_tf's ``buckets.batch_plan``); ``torch.manual_seed(seed)`` before the
  head is initialised;
- dev scores after each epoch; the best epoch's weights are scored on test.

Throughput is training inputs (windows for tagging) per second of the training loop alone: batches
are built beforehand and evaluation is not counted (``finetune/throughput.py``, electra_tf's own
definition; overall and for the epochs after the first). The default learning rate and decay are the
recipe of the size ``run_finetuning.py`` picks for the same model (``electra_tf.finetune.recipe``):
``--model-size``, else the preset whose width and depth the model has, else small, with a note.

    python bench/hf_finetuning.py --model-dir EXPORT --task conll2002_ner --data-dir DATA \\
        --output hf_finetuning.json --seeds 1,2,3
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoTokenizer,
    ElectraConfig,
    ElectraForSequenceClassification,
    ElectraForTokenClassification,
    PreTrainedModel,
)

from electra_tf.atomic_io import write_json_atomically
from electra_tf.config import MODEL_SIZES
from electra_tf.errors import UserError
from electra_tf.finetune.buckets import batch_plan, bucket_lengths, padded_length
from electra_tf.finetune.char_spans import char_span_scores
from electra_tf.finetune.metrics import Prf, entity_scores, label_scores, word_label_scores
from electra_tf.finetune.pair_encoding import ClassificationInput, encode_classification
from electra_tf.finetune.recipe import RECIPES, FinetuningHparams, recipe_size
from electra_tf.finetune.splits import Splits, load_splits
from electra_tf.finetune.tasks import CHAR_SPAN_F1, TAGGING, WORD_ACCURACY, get_task
from electra_tf.finetune.throughput import throughput_summary
from electra_tf.finetune.windows import IGNORE, TaggingWindow, encode_tagging, word_predictions
from electra_tf.finetune.word_pieces import BatchTokenize, word_piece_lookup

WEIGHT_DECAY_EXCLUSIONS = ("LayerNorm", "bias")
"""Google's exclusions, as they appear in Hugging Face's parameter names."""
_ENCODER_LAYER = re.compile(r"^electra\.encoder\.layer\.(\d+)\.")
_EMBEDDINGS = ("electra.embeddings.", "electra.embeddings_project.")

ModelInput = TaggingWindow | ClassificationInput


# ------------------------------------------------------------------------------------------------
# The recipe and the optimizer.
# ------------------------------------------------------------------------------------------------
RECORDED_SETTINGS = (
    "learning_rate",
    "layerwise_lr_decay",
    "num_train_epochs",
    "train_batch_size",
    "max_seq_length",
    "warmup_proportion",
    "weight_decay_rate",
)
"""The :class:`FinetuningHparams` this script applies, as its results record them (``"recipe"``); the
others (logging, the dev fraction, a frozen encoder) are electra_tf's alone, and evaluation batches
have the training batch size."""


def resolve_recipe(config: ElectraConfig, args: argparse.Namespace) -> tuple[FinetuningHparams, str | None]:
    """The command line's settings, the recipe's where it gives none, and a note if the size is a guess.

    The recipe's size is the one ``run_finetuning.py`` takes for the same model (:func:`recipe_size`).
    """
    size, note = recipe_size(args.model_size, config)
    given = {"learning_rate": args.learning_rate, "layerwise_lr_decay": args.layerwise_lr_decay}
    hparams = FinetuningHparams(
        **{**RECIPES[size], **{name: value for name, value in given.items() if value is not None}},
        num_train_epochs=args.epochs,
        train_batch_size=args.batch_size,
        eval_batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        warmup_proportion=args.warmup_proportion,
        weight_decay_rate=args.weight_decay,
    )
    return hparams, note


class AdamWeightDecay(torch.optim.Optimizer):
    """Google's ``AdamWeightDecayOptimizer`` (electra_tf's ``ElectraAdamW``), for θ with gradient g::

        m ← β1·m + (1−β1)·g;   v ← β2·v + (1−β2)·g²
        u = m / (√v + ε) + weight_decay·θ      # no bias correction; decay on the pre-update θ
        θ ← θ − lr·u

    Each parameter group has its own ``lr`` and ``weight_decay``.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:  # type: ignore[override]
        if closure is not None:
            raise ValueError("AdamWeightDecay takes no closure")
        for group in self.param_groups:
            beta_1, beta_2 = group["betas"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                state = self.state[parameter]
                if not state:
                    state["m"] = torch.zeros_like(parameter)
                    state["v"] = torch.zeros_like(parameter)
                m, v, gradient = state["m"], state["v"], parameter.grad
                m.mul_(beta_1).add_(gradient, alpha=1.0 - beta_1)
                v.mul_(beta_2).addcmul_(gradient, gradient, value=1.0 - beta_2)
                update = m / (v.sqrt() + group["eps"])
                if group["weight_decay"]:
                    update.add_(parameter, alpha=group["weight_decay"])
                parameter.sub_(update, alpha=group["lr"])


def layerwise_multiplier(name: str, num_layers: int, decay: float) -> float:
    """The learning-rate multiplier of the parameter called ``name`` in an HF ELECTRA fine-tuning model."""
    layer = _ENCODER_LAYER.match(name)
    if layer:
        return decay ** (num_layers - int(layer.group(1)))
    if name.startswith(_EMBEDDINGS):
        return decay ** (num_layers + 1)
    if name.startswith("electra."):
        raise ValueError(f"{name}: a parameter of the encoder outside its embeddings and layers")
    return 1.0


def parameter_groups(model: PreTrainedModel, decay: float, weight_decay_rate: float) -> list[dict[str, Any]]:
    """One optimizer group per (learning-rate multiplier, weight decay), each with its ``lr_multiplier``."""
    num_layers = model.config.num_hidden_layers
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        decayed = not any(exclusion in name for exclusion in WEIGHT_DECAY_EXCLUSIONS)
        key = (layerwise_multiplier(name, num_layers, decay), weight_decay_rate if decayed else 0.0)
        groups.setdefault(key, []).append(parameter)
    return [
        {"params": params, "lr_multiplier": multiplier, "weight_decay": rate}
        for (multiplier, rate), params in groups.items()
    ]


def learning_rate(step: int, peak: float, total_steps: int, warmup_steps: int) -> float:
    """``ElectraLearningRate`` with power 1: linear warmup multiplied onto a linear decay to 0 at ``total_steps``."""
    rate = peak * (1.0 - min(step, total_steps) / total_steps)
    return rate * min(1.0, step / warmup_steps) if warmup_steps else rate


def clip_global_norm(parameters: Sequence[torch.nn.Parameter], clip_norm: float = 1.0) -> None:
    """Scale the gradients by ``clip_norm / max(norm, clip_norm)``, as ``tf.clip_by_global_norm``."""
    gradients = [parameter.grad for parameter in parameters if parameter.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gradients]))
    scale = clip_norm / max(float(norm), clip_norm)
    if scale < 1.0:
        for gradient in gradients:
            gradient.mul_(scale)


# ------------------------------------------------------------------------------------------------
# The model directory and its tokenizer.
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SpecialIds:
    """The special ids the encoders and the padding need, from the Hugging Face tokenizer."""

    cls_id: int
    sep_id: int
    unk_id: int
    pad_id: int


def discriminator_dir(model_dir: Path) -> Path:
    """``model_dir`` itself, or its ``discriminator/`` folder when it is this project's export root."""
    for candidate in (model_dir / "discriminator", model_dir):
        if (candidate / "config.json").is_file():
            return candidate
    raise UserError(f"--model-dir {model_dir}: no config.json there or in its discriminator/ folder.")


def hf_tokenizer(model_dir: Path) -> tuple[BatchTokenize, SpecialIds]:
    """The directory's own tokenizer as a batch callable (no special tokens), and its special ids."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    except (OSError, ValueError) as error:
        raise UserError(f"--model-dir {model_dir}: cannot load its tokenizer ({error}).") from None
    special = SpecialIds(tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id, tokenizer.pad_token_id)
    if None in dataclasses.astuple(special):
        raise UserError(f"--model-dir {model_dir}: its tokenizer lacks one of [CLS], [SEP], [UNK], [PAD].")

    def tokenize(texts: Sequence[str]) -> list[list[int]]:
        return tokenizer(list(texts), add_special_tokens=False)["input_ids"] if texts else []

    return tokenize, special


def load_model(model_dir: Path, kind: str, labels: Sequence[str]) -> PreTrainedModel:
    """The discriminator's encoder with a fresh tagging or classification head (from torch's RNG)."""
    model_class = ElectraForTokenClassification if kind == TAGGING else ElectraForSequenceClassification
    return model_class.from_pretrained(
        str(model_dir),
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: index for index, label in enumerate(labels)},
    )


# ------------------------------------------------------------------------------------------------
# Inputs, batches and scores.
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class EncodedSplit:
    """A split's examples and their model inputs (tagging windows or classification inputs)."""

    examples: list[Any]
    inputs: list[ModelInput]


def encode_split(
    kind: str, examples: list[Any], labels: Sequence[str], tokenize: BatchTokenize, special: SpecialIds, length: int
) -> EncodedSplit:
    """``examples`` encoded by electra_tf's encoders, with ``tokenize`` as the tokenizer."""
    label_to_id = {label: index for index, label in enumerate(labels)}
    if kind == TAGGING:
        pieces = word_piece_lookup(tokenize, (word for example in examples for word in example.words))
        return EncodedSplit(examples, encode_tagging(examples, label_to_id, pieces, special, length).windows)
    return EncodedSplit(examples, encode_classification(examples, label_to_id, tokenize, special, length))


def make_batches(
    inputs: Sequence[ModelInput], plan: Sequence[Sequence[int]], max_seq_length: int, pad_id: int
) -> list[tuple[list[int], dict[str, torch.Tensor]]]:
    """The batches of ``plan``, each padded to the smallest bucket that holds it: ``(indices, tensors)``."""
    buckets = bucket_lengths(max_seq_length)
    batches = []
    for indices in plan:
        members = [inputs[index] for index in indices]
        length = padded_length((len(member.input_ids) for member in members), buckets)
        ids = np.full((len(members), length), pad_id, np.int64)
        mask = np.zeros((len(members), length), np.int64)
        segments = np.zeros((len(members), length), np.int64)
        tagging = isinstance(members[0], TaggingWindow)
        labels = np.full((len(members), length), IGNORE, np.int64) if tagging else np.zeros(len(members), np.int64)
        for row, member in enumerate(members):
            size = len(member.input_ids)
            ids[row, :size], mask[row, :size], segments[row, :size] = member.input_ids, 1, member.segment_ids
            if tagging:
                labels[row, :size] = member.label_ids
            else:
                labels[row] = member.label_id
        tensors = {"input_ids": ids, "attention_mask": mask, "token_type_ids": segments, "labels": labels}
        batches.append((list(indices), {key: torch.from_numpy(value) for key, value in tensors.items()}))
    return batches


def split_batches(
    inputs: Sequence[ModelInput], recipe: FinetuningHparams, pad_id: int, seed: int | None = None, epoch: int = 0
) -> list[tuple[list[int], dict[str, torch.Tensor]]]:
    """A split's batches for one epoch of training (``seed`` given) or for evaluation."""
    plan = batch_plan([len(item.input_ids) for item in inputs], recipe.train_batch_size, seed, epoch)
    return make_batches(inputs, plan, recipe.max_seq_length, pad_id)


def loss_of(model: PreTrainedModel, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Softmax cross-entropy, the mean over the batch's scored positions (or examples)."""
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]
    ).logits
    return torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), batch["labels"].reshape(-1), ignore_index=IGNORE
    )


@torch.no_grad()
def predict(model: PreTrainedModel, batches: Sequence[tuple[list[int], dict[str, torch.Tensor]]]) -> list[Any]:
    """Each input's predicted label id (classification) or ids per position (tagging), in input order."""
    model.eval()
    predictions: dict[int, Any] = {}
    for indices, batch in batches:
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
        ).logits
        for index, predicted in zip(indices, logits.argmax(-1).tolist(), strict=True):
            predictions[index] = predicted
    return [predictions[index] for index in range(len(predictions))]


def score(metric: str, kind: str, split: EncodedSplit, predictions: Sequence[Any], labels: Sequence[str]) -> dict:
    """The task's metric as ``{"score": ..., ...}`` (with precision/recall or macro-F1 beside it)."""
    if kind == TAGGING:
        lengths = [len(example.words) for example in split.examples]
        words = word_predictions(split.inputs, predictions, lengths)
        predicted = [[labels[label_id] for label_id in sentence] for sentence in words]
        gold = [example.labels for example in split.examples]
        if metric == WORD_ACCURACY:
            return {"score": word_label_scores(gold, predicted).accuracy}
        scores = (
            char_span_scores(split.examples, predicted) if metric == CHAR_SPAN_F1 else entity_scores(gold, predicted)
        )
        return _prf(scores.overall)
    result = label_scores([example.label for example in split.examples], [labels[p] for p in predictions])
    return {"score": result.accuracy, "macro_f1": result.macro_f1}


def _prf(prf: Prf) -> dict:
    return {"score": prf.f1, "precision": prf.precision, "recall": prf.recall}


# ------------------------------------------------------------------------------------------------
# Trials.
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TaskData:
    """Everything a trial needs that does not depend on its seed."""

    model_dir: Path
    kind: str
    metric: str
    labels: list[str]
    train: EncodedSplit
    dev: EncodedSplit
    test: EncodedSplit
    pad_id: int


def train_steps(
    model: PreTrainedModel,
    optimizer: AdamWeightDecay,
    batches: Sequence[dict[str, torch.Tensor]],
    schedule: Callable[[int], float],
    first_step: int,
) -> Iterator[float]:
    """Train on ``batches`` in order, one optimizer step each; yields each step's loss."""
    model.train()
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    for step, batch in enumerate(batches, first_step):
        rate = schedule(step)
        for group in optimizer.param_groups:
            group["lr"] = rate * group["lr_multiplier"]
        optimizer.zero_grad(set_to_none=True)
        loss = loss_of(model, batch)
        loss.backward()
        clip_global_norm(parameters)
        optimizer.step()
        yield loss.item()


def run_trial(data: TaskData, recipe: FinetuningHparams, seed: int, log: Callable[[str], None] = print) -> dict:
    """Fine-tune with ``seed``; dev scores per epoch, test scores of the best epoch, training speed."""
    torch.manual_seed(seed)
    model = load_model(data.model_dir, data.kind, data.labels)
    groups = parameter_groups(model, recipe.layerwise_lr_decay, recipe.weight_decay_rate)
    optimizer = AdamWeightDecay(groups, betas=(0.9, 0.999), eps=1e-6)
    steps_per_epoch = -(-len(data.train.inputs) // recipe.train_batch_size)
    total_steps = recipe.num_train_epochs * steps_per_epoch
    warmup_steps = int(total_steps * recipe.warmup_proportion)

    def schedule(step: int) -> float:
        return learning_rate(step, recipe.learning_rate, total_steps, warmup_steps)

    dev_batches = split_batches(data.dev.inputs, recipe, data.pad_id)
    train_seconds, dev_scores, losses = [], [], []
    best_score, best_state, best_epoch = -math.inf, None, 0
    for epoch in range(recipe.num_train_epochs):
        batches = [tensors for _, tensors in split_batches(data.train.inputs, recipe, data.pad_id, seed, epoch)]
        start = time.perf_counter()
        epoch_losses = list(train_steps(model, optimizer, batches, schedule, epoch * steps_per_epoch))
        train_seconds.append(time.perf_counter() - start)
        losses.append(statistics.fmean(epoch_losses))
        dev = score(data.metric, data.kind, data.dev, predict(model, dev_batches), data.labels)
        dev_scores.append(dev)
        log(f"seed {seed} epoch {epoch + 1}: loss {losses[-1]:.4f}, dev {data.metric} {dev['score']:.4f}")
        if dev["score"] > best_score:
            best_score, best_epoch = dev["score"], epoch + 1
            best_state = {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}
    model.load_state_dict(best_state)
    test = None
    if data.test.inputs:
        test_batches = split_batches(data.test.inputs, recipe, data.pad_id)
        test = score(data.metric, data.kind, data.test, predict(model, test_batches), data.labels)
    return {
        "seed": seed,
        "best_epoch": best_epoch,
        "dev": dev_scores[best_epoch - 1],
        "test": test,
        "dev_by_epoch": [dev["score"] for dev in dev_scores],
        "train_loss_by_epoch": losses,
        "training_throughput": throughput_summary(len(data.train.inputs), train_seconds),
    }


def prepare(
    model_dir: Path,
    task_name: str,
    data_dir: Path,
    max_seq_length: int,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    split_seed: int = 0,
) -> tuple[TaskData, Splits]:
    """Load and encode the task's splits with the directory's tokenizer (optionally only the first examples).

    ``split_seed`` draws the dev slice of a task without a dev split (electra_tf's ``--seed``).
    """
    model_dir = discriminator_dir(model_dir)
    task = get_task(task_name)
    splits = load_splits(task, data_dir, seed=split_seed)
    tokenize, special = hf_tokenizer(model_dir)

    def encode(examples: list[Any], limit: int | None) -> EncodedSplit:
        return encode_split(task.kind, examples[:limit], splits.labels, tokenize, special, max_seq_length)

    data = TaskData(
        model_dir=model_dir,
        kind=task.kind,
        metric=splits.metric,
        labels=splits.labels,
        train=encode(splits.train, max_train_examples),
        dev=encode(splits.dev, max_eval_examples),
        test=encode(splits.test, max_eval_examples),
        pad_id=special.pad_id,
    )
    if not data.train.inputs or not data.dev.inputs:
        raise UserError(f"{data_dir}: no training or no dev examples left to fine-tune {task_name} with.")
    return data, splits


def run(args: argparse.Namespace) -> dict:
    """Every trial of the command line's run, and the summary written to ``--output``."""
    torch.set_num_threads(args.threads)
    seeds = parse_seeds(args.seeds)
    data, splits = prepare(
        args.model_dir,
        args.task,
        args.data_dir,
        args.max_seq_length,
        args.max_train_examples,
        args.max_eval_examples,
        args.split_seed,
    )
    recipe, size_note = resolve_recipe(ElectraConfig.from_pretrained(str(data.model_dir)), args)
    notes = [note for note in (size_note,) if note] + splits.notes
    for note in notes:
        print(note)
    trials = [run_trial(data, recipe, seed) for seed in seeds]
    test_scores = [trial["test"]["score"] for trial in trials if trial["test"] is not None]
    results = {
        "task": args.task,
        "metric": data.metric,
        "model_dir": str(data.model_dir),
        "recipe": {name: getattr(recipe, name) for name in RECORDED_SETTINGS},
        "examples": {
            "train": len(data.train.examples),
            "train_inputs": len(data.train.inputs),
            "dev": len(data.dev.examples),
            "test": len(data.test.examples),
        },
        "notes": notes,
        "trials": trials,
        "median": {
            "dev": statistics.median(trial["dev"]["score"] for trial in trials),
            "test": statistics.median(test_scores) if test_scores else None,
        },
        "train_examples_per_second": statistics.median(
            trial["training_throughput"]["examples_per_second"] for trial in trials
        ),
        "torch_threads": torch.get_num_threads(),
        "versions": {"torch": version("torch"), "transformers": version("transformers")},
    }
    write_json_atomically(args.output, results)
    return results


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` as ``[1, 2, 3]``; :class:`UserError` for anything else."""
    try:
        seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected comma-separated integers such as 1,2,3.") from None
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: a seed is repeated.")
    return seeds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="HF export root or ELECTRA discriminator dir")
    parser.add_argument("--task", required=True, help="an electra_tf.finetune.tasks name (conll2002_ner, xnli, ...)")
    parser.add_argument("--data-dir", type=Path, required=True, help="the folder of the task's split files")
    parser.add_argument("--output", type=Path, required=True, help="the results JSON to write")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated seeds, one trial each (median reported)")
    parser.add_argument(
        "--model-size", choices=MODEL_SIZES, help="the recipe's size (default: the model's preset, else small)"
    )
    parser.add_argument("--learning-rate", type=float, help="peak learning rate (default: the recipe's)")
    parser.add_argument("--layerwise-lr-decay", type=float, help="layer-wise decay (default: the recipe's)")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="training (and evaluation) batch size")
    parser.add_argument("--max-seq-length", type=int, default=128, help="longest input in word pieces")
    parser.add_argument("--warmup-proportion", type=float, default=0.1, help="share of the steps for warmup")
    parser.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight-decay rate")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch.set_num_threads")
    parser.add_argument("--max-train-examples", type=int, help="train on the first N training examples only")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of a dev slice (electra_tf's --seed)")
    parser.add_argument("--max-eval-examples", type=int, help="score the first N dev and test examples only")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        results = run(args)
    except UserError as error:
        sys.exit(f"error: {error}")
    median = results["median"]
    test = "none" if median["test"] is None else f"{median['test']:.4f}"
    print(
        f"{results['task']} {results['metric']}: median dev {median['dev']:.4f}, test {test}; "
        f"{results['train_examples_per_second']:.1f} training examples/s on {results['torch_threads']} threads "
        f"-> {args.output}"
    )


if __name__ == "__main__":
    main()
