"""Google TF1 variable names ⇄ Hugging Face parameter names, for both ELECTRA networks.

One table serves export to Hugging Face, import of such an export, and import of a Google TF1
checkpoint (docs/checkpoint_names.md). Weights travel between those formats as a flat
``{TF1 name: numpy array}`` dict in TF1 layout (Dense kernels are ``[in, out]``); only the
Hugging Face side is transposed (torch ``Linear.weight`` is ``[out, in]``).

The two networks share the embedding tables and their LayerNorm (``electra/embeddings/*``); each
has its own projection, encoder layers and head. ``generator_lm_head.weight`` is never listed: it is
tied to the shared word embeddings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from electra_tf.config import ModelConfig, PretrainingConfig
from electra_tf.errors import UserError

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
Weights = dict[str, np.ndarray]

# TF1 path segments Hugging Face names differently (docs/checkpoint_names.md#name-mapping).
_RENAMED_SEGMENTS = {"dense_1": "dense_prediction", "kernel": "weight", "gamma": "weight", "beta": "bias"}


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


def _add_dense(shapes: dict[str, Shape], scope: str, inputs: int, outputs: int) -> None:
    shapes[f"{scope}/kernel"] = (inputs, outputs)
    shapes[f"{scope}/bias"] = (outputs,)


def _add_layer_norm(shapes: dict[str, Shape], scope: str, width: int) -> None:
    shapes[f"{scope}/gamma"] = (width,)
    shapes[f"{scope}/beta"] = (width,)


def hf_name(tf1_name: str, network: Network) -> str:
    """The Hugging Face parameter of ``network``'s model that holds TF1 variable ``tf1_name``.

    Only defined for names :func:`tf1_variable_shapes` lists for that network.
    """
    if tf1_name == f"{GENERATOR.head_scope}/output_bias":
        return "generator_lm_head.bias"
    scope = network.encoder_scope + "/"
    path = "electra/" + tf1_name[len(scope) :] if tf1_name.startswith(scope) else tf1_name
    segments: list[str] = []
    for segment in path.split("/"):
        if segment.startswith("layer_"):
            segments += ["layer", segment.removeprefix("layer_")]
        elif segment.endswith("_embeddings"):
            segments += [segment, "weight"]
        else:
            segments.append(_RENAMED_SEGMENTS.get(segment, segment))
    return ".".join(segments)


def is_kernel(tf1_name: str) -> bool:
    """Whether the variable is a Dense kernel (transposed between TF1 and torch layouts)."""
    return tf1_name.endswith("/kernel")


def name_table(network: Network, config: ModelConfig) -> dict[str, str]:
    """``{TF1 name: Hugging Face name}`` for every parameter of ``network``'s model."""
    return {name: hf_name(name, network) for name in tf1_variable_shapes(network, config)}


def check_weights(weights: Mapping[str, np.ndarray], expected: Mapping[str, Shape], source: str) -> None:
    """Raise :class:`UserError` unless ``weights`` holds every expected variable with its shape.

    ``source`` names where the weights come from, for the message.
    """
    missing = [name for name in expected if name not in weights]
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise UserError(f"{source} lacks {len(missing)} variable(s) the model needs: {shown}.")
    for name, shape in expected.items():
        actual = tuple(np.shape(weights[name]))
        if actual != tuple(shape):
            raise UserError(
                f"size mismatch for {name}: {source} has shape {list(actual)}, the model expects {list(shape)}."
            )


def to_hf_tensors(weights: Mapping[str, np.ndarray], network: Network, config: ModelConfig) -> dict[str, np.ndarray]:
    """The Hugging Face state dict of ``network`` (float32, kernels transposed) from TF1-named weights."""
    check_weights(weights, tf1_variable_shapes(network, config), f"the {network.name} weights")
    return {hf: _relayout(weights[tf1], is_kernel(tf1)) for tf1, hf in name_table(network, config).items()}


def from_hf_tensors(
    tensors: Mapping[str, np.ndarray], network: Network, config: ModelConfig, source: str
) -> dict[str, np.ndarray]:
    """TF1-named weights (float32, TF1 layout) from a Hugging Face state dict of ``network``."""
    table = name_table(network, config)
    hf_shapes = {
        hf: tuple(reversed(shape)) if is_kernel(tf1) else shape
        for (tf1, hf), shape in zip(table.items(), tf1_variable_shapes(network, config).values(), strict=True)
    }
    check_weights(tensors, hf_shapes, source)
    return {tf1: _relayout(tensors[hf], is_kernel(tf1)) for tf1, hf in table.items()}


def _relayout(array: np.ndarray, transpose: bool) -> np.ndarray:
    """A contiguous float32 copy of ``array``, transposed for kernels."""
    array = np.asarray(array, dtype=np.float32)
    return np.ascontiguousarray(array.T if transpose else array)
