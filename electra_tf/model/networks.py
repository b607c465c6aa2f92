"""ELECTRA's two networks and the TF1 variables each one holds, with their shapes.

The network names and Google's TF1 variable scopes belong to the model: the Keras end
(``tf1_names``) and every interop format (Hugging Face export and import, Google checkpoints) read
them from here (docs/checkpoint_names.md).

The two networks share the embedding tables and their LayerNorm (``electra/embeddings/*``); each
has its own projection, encoder layers and head.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from electra_tf.config import ModelConfig, PretrainingConfig

SHARED_EMBEDDINGS_SCOPE = "electra/embeddings"


@dataclasses.dataclass(frozen=True)
class Network:
    """One of ELECTRA's two networks: where its variables live in TF1 and which HF class holds it."""

    name: str
    encoder_scope: str
    """TF1 scope of the network's own encoder layers and embedding projection."""
    head_scope: str
    """TF1 scope of the network's pretraining head."""
    architecture: str
    """The Hugging Face ``transformers`` class (config.json ``architectures``)."""


DISCRIMINATOR = Network("discriminator", "electra", "discriminator_predictions", "ElectraForPreTraining")
GENERATOR = Network("generator", "generator", "generator_predictions", "ElectraForMaskedLM")
NETWORKS = (DISCRIMINATOR, GENERATOR)

Shape = tuple[int, ...]


def encoder_config(config: PretrainingConfig, network: Network) -> ModelConfig:
    """The encoder config of ``network`` in a pretraining run."""
    return config.discriminator_config() if network is DISCRIMINATOR else config.generator_config()


def tf1_variable_shapes(network: Network, config: ModelConfig) -> dict[str, Shape]:
    """Every TF1 variable of ``network`` that its Hugging Face model holds, with its TF1 shape.

    ``config`` is the network's own encoder config (its ``embedding_size`` is the shared width E).
    The order is the checkpoint's natural order: embeddings, projection, layers, head.
    """
    width, hidden, scope = config.embedding_size, config.hidden_size, network.encoder_scope
    shapes: dict[str, Shape] = {
        f"{SHARED_EMBEDDINGS_SCOPE}/word_embeddings": (config.vocab_size, width),
        f"{SHARED_EMBEDDINGS_SCOPE}/token_type_embeddings": (config.type_vocab_size, width),
        f"{SHARED_EMBEDDINGS_SCOPE}/position_embeddings": (config.max_position_embeddings, width),
    }
    _add_layer_norm(shapes, f"{SHARED_EMBEDDINGS_SCOPE}/LayerNorm", width)
    if width != hidden:
        _add_dense(shapes, f"{scope}/embeddings_project", width, hidden)
    for index in range(config.num_hidden_layers):
        layer = f"{scope}/encoder/layer_{index}"
        for projection in ("query", "key", "value"):
            _add_dense(shapes, f"{layer}/attention/self/{projection}", hidden, hidden)
        _add_dense(shapes, f"{layer}/attention/output/dense", hidden, hidden)
        _add_layer_norm(shapes, f"{layer}/attention/output/LayerNorm", hidden)
        _add_dense(shapes, f"{layer}/intermediate/dense", hidden, config.intermediate_size)
        _add_dense(shapes, f"{layer}/output/dense", config.intermediate_size, hidden)
        _add_layer_norm(shapes, f"{layer}/output/LayerNorm", hidden)
    if network is DISCRIMINATOR:
        _add_dense(shapes, f"{network.head_scope}/dense", hidden, hidden)
        _add_dense(shapes, f"{network.head_scope}/dense_1", hidden, 1)
    else:
        _add_dense(shapes, f"{network.head_scope}/dense", hidden, width)
        _add_layer_norm(shapes, f"{network.head_scope}/LayerNorm", width)
        shapes[f"{network.head_scope}/output_bias"] = (config.vocab_size,)
    return shapes


def encoder_variable_shapes(config: ModelConfig) -> dict[str, Shape]:
    """The discriminator's embeddings, projection and layers without its pretraining head.

    What fine-tuning starts from: the encoder under Google's names (``electra/...``) for the
    discriminator's encoder ``config``.
    """
    head = DISCRIMINATOR.head_scope + "/"
    return {
        name: shape for name, shape in tf1_variable_shapes(DISCRIMINATOR, config).items() if not name.startswith(head)
    }


def _add_dense(shapes: dict[str, Shape], scope: str, inputs: int, outputs: int) -> None:
    shapes[f"{scope}/kernel"] = (inputs, outputs)
    shapes[f"{scope}/bias"] = (outputs,)


def _add_layer_norm(shapes: dict[str, Shape], scope: str, width: int) -> None:
    shapes[f"{scope}/gamma"] = (width,)
    shapes[f"{scope}/beta"] = (width,)


@dataclasses.dataclass(frozen=True)
class ImportedWeights:
    """Weights read from an existing model, by Google TF1 name, ready to initialise a pretrainer.

    ``networks`` are the networks whose own variables (projection, encoder layers, head) are in
    ``weights``; the shared embeddings are always there. ``vocab_file`` is the vocab that came with
    the weights, if any, so a caller can check it is the one it trains with.
    """

    weights: dict[str, np.ndarray]
    networks: tuple[Network, ...]
    description: str
    vocab_file: Path | None
