"""Every variable of an :class:`ElectraPretrainer` under its Google TF1 checkpoint name.

This is the Keras end of the TF1 names :mod:`electra_tf.model.networks` lists (interop maps them
to Hugging Face's): export reads the model's weights through it, and imports (a Hugging Face
export, a Google checkpoint) assign through it. The embedding and encoder helpers also name the
variables of a fine-tuning network (``electra_tf.finetune.model``), which reuses both layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import keras
import numpy as np

from electra_tf.errors import UserError
from electra_tf.model.embeddings import SharedEmbeddings
from electra_tf.model.encoder import TransformerEncoder
from electra_tf.model.networks import DISCRIMINATOR, GENERATOR, SHARED_EMBEDDINGS_SCOPE, Network, encoder_config
from electra_tf.model.networks import tf1_variable_shapes as expected_shapes
from electra_tf.model.pretrainer import ElectraPretrainer


def dense_variables(scope: str, layer: keras.layers.Dense) -> dict[str, keras.Variable]:
    return {f"{scope}/kernel": layer.kernel, f"{scope}/bias": layer.bias}


def _layer_norm(scope: str, layer: keras.layers.LayerNormalization) -> dict[str, keras.Variable]:
    return {f"{scope}/gamma": layer.gamma, f"{scope}/beta": layer.beta}


def embedding_variables(embeddings: SharedEmbeddings) -> dict[str, keras.Variable]:
    """The shared embedding tables and their LayerNorm, under ``electra/embeddings/``."""
    return {
        f"{SHARED_EMBEDDINGS_SCOPE}/word_embeddings": embeddings.word_embeddings,
        f"{SHARED_EMBEDDINGS_SCOPE}/token_type_embeddings": embeddings.token_type_embeddings,
        f"{SHARED_EMBEDDINGS_SCOPE}/position_embeddings": embeddings.position_embeddings,
        **_layer_norm(f"{SHARED_EMBEDDINGS_SCOPE}/LayerNorm", embeddings.layer_norm),
    }


def encoder_variables(scope: str, encoder: TransformerEncoder) -> dict[str, keras.Variable]:
    """The projection and transformer layers of ``encoder`` under the TF1 ``scope`` ("electra", "generator")."""
    variables: dict[str, keras.Variable] = {}
    if encoder.embeddings_project is not None:
        variables |= dense_variables(f"{scope}/embeddings_project", encoder.embeddings_project)
    for index, layer in enumerate(encoder.transformer_layers):
        prefix = f"{scope}/encoder/layer_{index}"
        variables |= dense_variables(f"{prefix}/attention/self/query", layer.query)
        variables |= dense_variables(f"{prefix}/attention/self/key", layer.key)
        variables |= dense_variables(f"{prefix}/attention/self/value", layer.value)
        variables |= dense_variables(f"{prefix}/attention/output/dense", layer.attention_output)
        variables |= _layer_norm(f"{prefix}/attention/output/LayerNorm", layer.attention_layer_norm)
        variables |= dense_variables(f"{prefix}/intermediate/dense", layer.intermediate)
        variables |= dense_variables(f"{prefix}/output/dense", layer.output_dense)
        variables |= _layer_norm(f"{prefix}/output/LayerNorm", layer.output_layer_norm)
    return variables


def tf1_variables(model: ElectraPretrainer) -> dict[str, keras.Variable]:
    """``{TF1 name: variable}`` for every trainable variable of ``model`` (shared embeddings once)."""
    variables = embedding_variables(model.embeddings)
    variables |= encoder_variables(DISCRIMINATOR.encoder_scope, model.discriminator)
    variables |= encoder_variables(GENERATOR.encoder_scope, model.generator)
    head = model.discriminator_head
    variables |= dense_variables(f"{DISCRIMINATOR.head_scope}/dense", head.dense)
    variables |= dense_variables(f"{DISCRIMINATOR.head_scope}/dense_1", head.dense_1)
    head = model.generator_head
    variables |= dense_variables(f"{GENERATOR.head_scope}/dense", head.dense)
    variables |= _layer_norm(f"{GENERATOR.head_scope}/LayerNorm", head.layer_norm)
    variables[f"{GENERATOR.head_scope}/output_bias"] = head.output_bias
    return variables


def tf1_weights(model: ElectraPretrainer) -> dict[str, np.ndarray]:
    """The model's weights as float32 numpy arrays under their TF1 names (what export writes)."""
    return variable_values(tf1_variables(model))


def variable_values(variables: Mapping[str, keras.Variable]) -> dict[str, np.ndarray]:
    """``{name: float32 numpy copy}`` of named variables."""
    return {name: np.asarray(keras.ops.convert_to_numpy(variable), np.float32) for name, variable in variables.items()}


def network_variable_names(model: ElectraPretrainer, network: Network) -> list[str]:
    """The TF1 names of ``network``'s own variables plus the shared embeddings."""
    return list(expected_shapes(network, encoder_config(model.config, network)))


def assign_tf1_weights(
    model: ElectraPretrainer, weights: Mapping[str, np.ndarray], networks: tuple[Network, ...]
) -> int:
    """Assign ``weights`` to the variables of ``networks`` (and the shared embeddings); returns how many.

    Every variable of those networks must be present with the model's shape (:class:`UserError`
    otherwise); variables of other networks keep their values.
    """
    names: dict[str, None] = {}
    for network in networks:
        names |= dict.fromkeys(network_variable_names(model, network))
    return assign_named(tf1_variables(model), weights, names)


def assign_named(
    variables: Mapping[str, keras.Variable], weights: Mapping[str, np.ndarray], names: Iterable[str]
) -> int:
    """Assign ``weights[name]`` to ``variables[name]`` for each of ``names``; returns how many.

    Every name must be in ``weights`` with the variable's shape (:class:`UserError` otherwise),
    checked before any variable changes.
    """
    names = list(names)
    for name in names:
        if name not in weights:
            raise UserError(f"the weights to import lack {name}.")
        expected = tuple(variables[name].shape)
        if tuple(np.shape(weights[name])) != expected:
            raise UserError(
                f"size mismatch for {name}: the weights have shape {list(np.shape(weights[name]))}, "
                f"the model expects {list(expected)} (check --model-size and --hparams against the source model)."
            )
    for name in names:
        variables[name].assign(np.asarray(weights[name], np.float32))
    return len(names)
