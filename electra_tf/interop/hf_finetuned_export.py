"""Export a fine-tuned model (``run_finetuning.py``'s output directory) as one Hugging Face model.

The directory's ``finetuning.json`` (:class:`~electra_tf.finetune.record.FinetuningRecord`) names the
chosen weights (TF1 names, safetensors), the vocab, the casing, the labels and the task kind. The
export loads as ``ElectraForTokenClassification`` (tagging) or ``ElectraForSequenceClassification``
(classification), so ``transformers.pipeline("token-classification")`` and
``pipeline("text-classification")`` work on it and name the labels. It holds ``config.json`` (with
``id2label``/``label2id``), ``model.safetensors``, the four tokenizer files with the starting point's
casing, and a ``README.md`` card with the scores of ``results.json``. It is written atomically.

The heads of :mod:`electra_tf.finetune.model` are Hugging Face's, so the exported model computes the
Keras network's logits exactly (float32).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging

from electra_tf.atomic_io import atomic_directory
from electra_tf.errors import UserError
from electra_tf.finetune.model import head_variable_shapes
from electra_tf.finetune.record import FINETUNING_FILE, FinetuningRecord
from electra_tf.finetune.tasks import TAGGING
from electra_tf.interop.finetuned_card import finetuned_card
from electra_tf.interop.hf_config import CONFIG_FILE, hf_config
from electra_tf.interop.hf_export import MODEL_CARD_FILE
from electra_tf.interop.hf_names import named_to_hf
from electra_tf.interop.safetensors_io import WEIGHTS_FILE, read_weights_file, write_weights
from electra_tf.interop.tokenizer_files import write_tokenizer_files
from electra_tf.model.networks import DISCRIMINATOR, encoder_variable_shapes
from electra_tf.model_dir import read_json
from electra_tf.tokenization import Vocab

ARCHITECTURES = {TAGGING: "ElectraForTokenClassification"}
SEQUENCE_ARCHITECTURE = "ElectraForSequenceClassification"


def architecture(kind: str) -> str:
    """The ``transformers`` class of a fine-tuned model of ``kind``."""
    return ARCHITECTURES.get(kind, SEQUENCE_ARCHITECTURE)


def is_finetuning_output(path: Path) -> bool:
    """Whether ``path`` is a fine-tuning output directory (it holds ``finetuning.json``)."""
    return (Path(path) / FINETUNING_FILE).is_file()


def export_finetuning_dir(
    finetuning_dir: str | Path, output_dir: str | Path, hub_repo: str | None = None, overwrite: bool = False
) -> Path:
    """Export the fine-tuned model in ``finetuning_dir`` to ``output_dir``; returns the output path.

    ``hub_repo`` (e.g. ``"org/electra-es-ner"``) is what the card's usage snippet loads; by default the
    exported directory itself.
    """
    directory = Path(finetuning_dir)
    record = FinetuningRecord.read(directory)
    if record.weights is None:
        raise UserError(
            f"{directory / FINETUNING_FILE} names no weights yet: the fine-tuning run did not finish; export its "
            "output directory once run_finetuning.py has ended."
        )
    weights = read_weights_file(directory / record.weights)
    vocab = Vocab.load(directory / record.vocab_file)
    results = read_json(directory / record.results, "the run's results") if record.results else None
    if results is not None and not isinstance(results, dict):
        raise UserError(f"{directory / record.results} must hold a JSON object.")
    logging.info("Exporting %s (%s) from %s.", record.task, directory / record.weights, directory)
    return export_finetuned_weights(
        weights, record, vocab, output_dir, results=results, hub_repo=hub_repo, overwrite=overwrite
    )


def export_finetuned_weights(
    weights: Mapping[str, np.ndarray],
    record: FinetuningRecord,
    vocab: Vocab,
    output_dir: str | Path,
    *,
    results: Mapping[str, Any] | None = None,
    hub_repo: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the Hugging Face model of a fine-tuned network's TF1-named ``weights`` to ``output_dir``."""
    output_dir = Path(output_dir)
    encoder = record.encoder
    if len(vocab) != encoder.vocab_size:
        raise UserError(
            f"the vocab has {len(vocab)} tokens but the model's vocab_size is {encoder.vocab_size}; the fine-tuning "
            "directory's vocab is not the one the model was trained with."
        )
    shapes = encoder_variable_shapes(encoder) | head_variable_shapes(encoder, record.kind, len(record.labels))
    tensors = named_to_hf(weights, shapes, DISCRIMINATOR, f"the fine-tuned weights of {record.task}")
    with atomic_directory(output_dir, overwrite) as staging:
        (staging / CONFIG_FILE).write_text(json.dumps(finetuned_config(record, vocab), indent=2) + "\n", "utf-8")
        write_weights(staging / WEIGHTS_FILE, tensors)
        write_tokenizer_files(
            staging,
            vocab,
            do_lower_case=record.do_lower_case,
            strip_accents=record.do_lower_case and record.strip_accents,
            model_max_length=encoder.max_position_embeddings,
        )
        card = finetuned_card(record, hub_repo or str(output_dir), results)
        (staging / MODEL_CARD_FILE).write_text(card, encoding="utf-8")
    logging.info("Exported %s (%s) to %s.", record.task, architecture(record.kind), output_dir)
    return output_dir


def finetuned_config(record: FinetuningRecord, vocab: Vocab) -> dict[str, Any]:
    """``config.json``: the encoder's fields, the architecture, the labels both ways and the task."""
    values = hf_config(DISCRIMINATOR, record.encoder, pad_token_id=vocab.pad_id)
    values["architectures"] = [architecture(record.kind)]
    values["id2label"] = {str(index): label for index, label in enumerate(record.labels)}
    values["label2id"] = {label: index for index, label in enumerate(record.labels)}
    values["finetuning_task"] = record.task
    return values
