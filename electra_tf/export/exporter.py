"""Export both ELECTRA networks as Hugging Face model directories.

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
from electra_tf.export.hf_config import CONFIG_FILE, hf_config
from electra_tf.export.model_card import CardFacts, model_card
from electra_tf.export.names import to_hf_tensors
from electra_tf.export.safetensors_io import WEIGHTS_FILE, write_weights
from electra_tf.export.tokenizer_files import write_tokenizer_files
from electra_tf.model.networks import NETWORKS, Network, encoder_config
from electra_tf.tokenization import Vocab

MODEL_CARD_FILE = "README.md"


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
