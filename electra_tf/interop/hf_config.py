"""Hugging Face ``config.json`` for each network, and reading one back (docs/checkpoint_names.md#model-config).

Every field is written explicitly: ``ElectraConfig``'s defaults describe the *small discriminator*,
so a config relying on them silently builds the wrong shapes for any other model. The generator's
config is built from the generator's actual ``ModelConfig`` (docs/algorithm.md#pitfalls: a generator config taken
from defaults or from the discriminator does not load).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from electra_tf.config import ModelConfig
from electra_tf.errors import UserError
from electra_tf.model.networks import NETWORKS, Network

CONFIG_FILE = "config.json"

# Used only by ElectraForMultipleChoice / sequence summary; written so v4 and v5 readers agree.
_SUMMARY_FIELDS = {
    "summary_type": "first",
    "summary_use_proj": True,
    "summary_activation": "gelu",
    "summary_last_dropout": 0.1,
}


def hf_config(network: Network, config: ModelConfig, pad_token_id: int) -> dict[str, Any]:
    """The ``config.json`` contents of ``network`` with encoder ``config``.

    ``pad_token_id`` is the vocab's ``[PAD]`` id (not necessarily 0: BETO's is 1). The output layer
    of the generator stays tied to the word embeddings (``tie_word_embeddings: true``).
    """
    return {
        "architectures": [network.architecture],
        "model_type": "electra",
        **config.to_dict(),
        "pad_token_id": pad_token_id,
        "position_embedding_type": "absolute",
        "tie_word_embeddings": True,
        **_SUMMARY_FIELDS,
    }


def read_hf_config(directory: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a Hugging Face model directory (:class:`UserError` if unusable)."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{directory} is not a Hugging Face model directory: it has no {CONFIG_FILE}.")
    values = read_json_object(path)
    if values.get("model_type") != "electra":
        raise UserError(f"{path} describes a {values.get('model_type')!r} model, not an ELECTRA model.")
    return values


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, a file of a Hugging Face directory (:class:`UserError` if it holds none)."""
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise UserError(f"{path} must hold a JSON object.")
    return values


def network_of(values: dict[str, Any], path: Path) -> Network:
    """Which ELECTRA network a parsed ``config.json`` describes, from its ``architectures``."""
    architectures = values.get("architectures") or []
    for network in NETWORKS:
        if network.architecture in architectures:
            return network
    known = " or ".join(network.architecture for network in NETWORKS)
    raise UserError(
        f"{path / CONFIG_FILE} has architectures {architectures}; expected {known} "
        "(a pretraining discriminator or generator, not a fine-tuned model)."
    )


def model_config_from_hf(values: dict[str, Any], path: Path) -> ModelConfig:
    """The encoder config stated by a parsed ``config.json``.

    Fields the file omits take ``ModelConfig``'s defaults, which equal ``ElectraConfig``'s, so the
    result describes the shapes ``transformers`` itself would build from the file.
    """
    fields = {field.name for field in dataclasses.fields(ModelConfig)}
    try:
        return ModelConfig(**{name: value for name, value in values.items() if name in fields})
    except (UserError, TypeError) as error:
        raise UserError(f"{path / CONFIG_FILE}: {error}") from None
