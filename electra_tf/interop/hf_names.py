"""Google TF1 variable names ⇄ Hugging Face parameter names, for both ELECTRA networks.

One table serves export to Hugging Face, import of such an export, and import of a Google TF1
checkpoint (docs/checkpoint_names.md). Weights travel between those formats as a flat
``{TF1 name: numpy array}`` dict in TF1 layout (Dense kernels are ``[in, out]``); only the
Hugging Face side is transposed (torch ``Linear.weight`` is ``[out, in]``).

The networks and their TF1 variables are the model's (``electra_tf.model.networks``);
``generator_lm_head.weight`` is never listed: it is tied to the shared word embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from electra_tf.config import ModelConfig
from electra_tf.errors import UserError
from electra_tf.model.networks import GENERATOR, Network, Shape, tf1_variable_shapes

# TF1 path segments Hugging Face names differently (docs/checkpoint_names.md#name-mapping).
_RENAMED_SEGMENTS = {"dense_1": "dense_prediction", "kernel": "weight", "gamma": "weight", "beta": "bias"}


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
    return named_to_hf(weights, tf1_variable_shapes(network, config), network, f"the {network.name} weights")


def named_to_hf(
    weights: Mapping[str, np.ndarray], shapes: Mapping[str, Shape], network: Network, source: str
) -> dict[str, np.ndarray]:
    """The Hugging Face tensors of the TF1 variables ``shapes`` lists, named as in ``network``'s model.

    Any TF1 scope outside the network's encoder keeps its path with ``.`` for ``/`` (a fine-tuning
    head ``classifier/out_proj/kernel`` becomes ``classifier.out_proj.weight``).
    """
    check_weights(weights, shapes, source)
    return {hf_name(tf1, network): _relayout(weights[tf1], is_kernel(tf1)) for tf1 in shapes}


def from_hf_tensors(
    tensors: Mapping[str, np.ndarray], network: Network, config: ModelConfig, source: str
) -> dict[str, np.ndarray]:
    """TF1-named weights (float32, TF1 layout) from a Hugging Face state dict of ``network``."""
    return named_from_hf(tensors, tf1_variable_shapes(network, config), network, source)


def named_from_hf(
    tensors: Mapping[str, np.ndarray], shapes: Mapping[str, Shape], network: Network, source: str
) -> dict[str, np.ndarray]:
    """The TF1 variables ``shapes`` lists, read from Hugging Face tensors named as in ``network``'s model."""
    hf_shapes = {
        hf_name(tf1, network): tuple(reversed(shape)) if is_kernel(tf1) else shape for tf1, shape in shapes.items()
    }
    check_weights(tensors, hf_shapes, source)
    return {tf1: _relayout(tensors[hf_name(tf1, network)], is_kernel(tf1)) for tf1 in shapes}


def _relayout(array: np.ndarray, transpose: bool) -> np.ndarray:
    """A contiguous float32 copy of ``array``, transposed for kernels."""
    array = np.asarray(array, dtype=np.float32)
    return np.ascontiguousarray(array.T if transpose else array)
