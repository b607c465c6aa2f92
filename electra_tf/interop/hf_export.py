"""Export both ELECTRA networks as Hugging Face model directories (``export_to_hf.py``).

:func:`export_model_dir` exports a trained model directory: the weights of a checkpoint (the newest
by default, see ``trained_checkpoint``), with the model's vocab, its last evaluation and a summary
of its training data for the model cards. :func:`export_weights` writes any TF1-named weights.

``OUT/discriminator`` loads as ``ElectraForPreTraining`` and ``OUT/generator`` as
``ElectraForMaskedLM``; each holds ``config.json``, ``model.safetensors`` (float32, no optimizer
state, the generator's output layer tied to the shared word embeddings), the tokenizer files and a
``README.md`` model card. The whole of ``OUT`` is written atomically.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging

from electra_tf.atomic_io import atomic_directory
from electra_tf.config import PretrainingConfig
from electra_tf.errors import UserError
from electra_tf.interop.hf_config import CONFIG_FILE, hf_config
from electra_tf.interop.hf_names import to_hf_tensors
from electra_tf.interop.model_card import CardFacts, model_card
from electra_tf.interop.safetensors_io import WEIGHTS_FILE, write_weights
from electra_tf.interop.tokenizer_files import write_tokenizer_files
from electra_tf.interop.trained_checkpoint import checkpoint_step, checkpoint_to_export, restored_weights
from electra_tf.model.networks import NETWORKS, Network, encoder_config
from electra_tf.model_dir import ModelDirectory
from electra_tf.tokenization import Vocab

MODEL_CARD_FILE = "README.md"


def export_model_dir(
    model_dir: str | Path,
    output_dir: str | Path,
    checkpoint: str | Path | None = None,
    hub_repo_prefix: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``output_dir/discriminator`` and ``output_dir/generator`` from the model in ``model_dir``.

    ``checkpoint`` is a checkpoint prefix (e.g. ``MODEL_DIR/checkpoints/ckpt-20000``); by default
    the newest in ``MODEL_DIR/checkpoints``. See :func:`export_weights` for ``hub_repo_prefix`` and
    ``overwrite``. Returns the output path.
    """
    directory = ModelDirectory(model_dir)
    if not directory.path.is_dir():
        raise UserError(f"model directory {directory.path} not found.")
    config = directory.require_config()
    if not directory.vocab_file.is_file():
        raise UserError(f"{directory.path} has no vocab.txt; the export needs the vocab the model was trained with.")
    vocab = Vocab.load(directory.vocab_file)
    prefix = checkpoint_to_export(directory, checkpoint)
    weights = restored_weights(config, vocab, prefix)
    step = checkpoint_step(prefix)
    logging.info("Exporting %s (step %s).", prefix, step if step is not None else "unknown")
    return export_weights(
        weights,
        config,
        vocab,
        output_dir,
        eval_results=_eval_results_for(directory, step),
        trained_steps=step,
        training_data=describe_training_data(directory.training_data()),
        hub_repo_prefix=hub_repo_prefix,
        overwrite=overwrite,
    )


def export_weights(
    weights: Mapping[str, np.ndarray],
    config: PretrainingConfig,
    vocab: Vocab,
    output_dir: str | Path,
    *,
    eval_results: Mapping[str, Any] | None = None,
    trained_steps: int | None = None,
    training_data: str | None = None,
    hub_repo_prefix: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the Hugging Face export of TF1-named ``weights`` (both networks) to ``output_dir``.

    ``config`` is the run's resolved config and ``vocab`` the vocab its data was built with.
    ``eval_results`` (``MODEL_DIR/eval_results.json``), ``trained_steps`` and ``training_data`` (a
    sentence about the corpus) go into the model cards. ``hub_repo_prefix`` (e.g.
    ``"org/electra-es-small"``) names the Hub repositories the usage snippets load
    (``PREFIX-discriminator``, ``PREFIX-generator``); by default they load the exported directories
    themselves. Returns the output path.
    """
    output_dir = Path(output_dir)
    if len(vocab) != config.vocab_size:
        raise UserError(
            f"the vocab has {len(vocab)} tokens but the model's vocab_size is {config.vocab_size}; "
            "export with the vocab the model was trained with."
        )
    hf_tensors = {network: to_hf_tensors(weights, network, encoder_config(config, network)) for network in NETWORKS}
    with atomic_directory(output_dir, overwrite) as staging:
        for network in NETWORKS:
            facts = CardFacts(
                model_id=f"{hub_repo_prefix}-{network.name}" if hub_repo_prefix else str(output_dir / network.name),
                eval_results=eval_results,
                trained_steps=trained_steps,
                training_data=training_data,
            )
            _write_network(staging / network.name, network, hf_tensors[network], config, vocab, facts)
    logging.info("Exported the discriminator and generator to %s.", output_dir)
    return output_dir


def _write_network(
    directory: Path,
    network: Network,
    tensors: dict[str, np.ndarray],
    config: PretrainingConfig,
    vocab: Vocab,
    facts: CardFacts,
) -> None:
    """One Hugging Face model directory: config, weights, tokenizer files, model card."""
    directory.mkdir()
    encoder = encoder_config(config, network)
    values = hf_config(network, encoder, pad_token_id=vocab.pad_id)
    (directory / CONFIG_FILE).write_text(json.dumps(values, indent=2) + "\n", encoding="utf-8")
    write_weights(directory / WEIGHTS_FILE, tensors)
    write_tokenizer_files(
        directory,
        vocab,
        do_lower_case=config.do_lower_case,
        # Google's rule (docs/data_format.md#tokenization): accents are stripped only when lower-casing.
        strip_accents=config.do_lower_case and config.strip_accents,
        model_max_length=encoder.max_position_embeddings,
    )
    (directory / MODEL_CARD_FILE).write_text(model_card(network, config, facts), encoding="utf-8")


def describe_training_data(summary: Mapping[str, Any] | None) -> str | None:
    """One sentence about the pretraining data for the model card, from ``training_data.json``."""
    if not summary:
        return None
    data_dir = summary.get("data_dir")
    counts = [
        f"{name.replace('_', ' ')}: {value:,}"
        for name, value in sorted(summary.items())
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    sentence = f"the pretraining dataset `{Path(data_dir).name}`" if data_dir else "the pretraining dataset"
    if counts:
        sentence += f" ({'; '.join(counts)})"
    return sentence + "."


def _eval_results_for(directory: ModelDirectory, step: int | None) -> dict[str, Any] | None:
    """``eval_results.json``, with a warning when it was measured at another step than the export's."""
    results = directory.eval_results()
    if results is None:
        logging.info("No eval_results.json in %s: the model cards will have no evaluation table.", directory.path)
        return None
    evaluated_at = results.get("global_step")
    if step is not None and evaluated_at is not None and evaluated_at != step:
        logging.warning(
            "eval_results.json was measured at step %s, the exported checkpoint is at step %d; the model cards "
            "state the step of the evaluation.",
            evaluated_at,
            step,
        )
    return results
