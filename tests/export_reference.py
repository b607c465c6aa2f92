"""Test helpers for the export tests: a tiny config, random TF1-named weights, and an independent
numpy re-statement of ELECTRA's forward pass (docs/algorithm.md#encoder, docs/algorithm.md#heads) to
check exported models by.

The reference is written from that description, in float64, with the TF1 variable names spelled out, so it
shares nothing with the code under test except the names Google's checkpoints use.
"""

from __future__ import annotations

import math

import numpy as np

from electra_tf import DEFAULT_VOCAB_FILE
from electra_tf.config import ModelConfig, PretrainingConfig
from electra_tf.model.networks import NETWORKS, encoder_config, tf1_variable_shapes
from electra_tf.tokenization import Vocab

EMBEDDING_SIZE = 24
"""Differs from both hidden sizes (32 and 16), so both ``embeddings_project`` layers exist."""
TINY_ENCODER = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 40,
    "max_position_embeddings": 64,
}
"""The tiny discriminator's encoder besides its embedding width, in ``model_hparam_overrides`` names (which
``ModelConfig`` and ``transformers``' ``ElectraConfig`` share)."""


def default_vocab() -> Vocab:
    return Vocab.load(DEFAULT_VOCAB_FILE)


def tiny_config(vocab_size: int, **overrides) -> PretrainingConfig:
    """Discriminator H=32 (4 heads), generator H=16 (1 head), E=24, 2 layers, 64 positions."""
    values = {
        "vocab_size": vocab_size,
        "embedding_size": EMBEDDING_SIZE,
        "generator_hidden_size": 0.5,
        "max_seq_length": 16,
        "model_hparam_overrides": dict(TINY_ENCODER),
        **overrides,
    }
    return PretrainingConfig.from_size("small", values)


def random_tf1_weights(config: PretrainingConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Every variable of both networks, float32, with values far from an initialiser's.

    Kernels and embeddings are O(0.3), biases and LayerNorm betas O(0.1) and gammas around 1, so a
    variable that is dropped, swapped or left untransposed changes the logits visibly.
    """
    rng = np.random.default_rng(seed)
    weights: dict[str, np.ndarray] = {}
    for network in NETWORKS:
        for name, shape in tf1_variable_shapes(network, encoder_config(config, network)).items():
            if name.endswith("/gamma"):
                value = 1.0 + 0.2 * rng.standard_normal(shape)
            elif name.endswith(("/bias", "/beta")):
                value = 0.1 * rng.standard_normal(shape)
            else:
                value = 0.3 * rng.standard_normal(shape)
            weights[name] = value.astype(np.float32)
    return weights


def batch(vocab_size: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ids, input mask and segment ids ``[3, 12]``: two segments and right padding in two rows."""
    rng = np.random.default_rng(seed)
    lengths = [12, 9, 5]
    ids = rng.integers(5, vocab_size, size=(3, 12))
    mask = np.zeros((3, 12), np.int64)
    segments = np.zeros((3, 12), np.int64)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        segments[row, length // 2 : length] = 1
        ids[row, length:] = 0
    return ids, mask, segments


# ----------------------------------------------------------------------------------------------
# The forward pass, from docs/algorithm.md.
# ----------------------------------------------------------------------------------------------


def _gelu(x: np.ndarray) -> np.ndarray:
    return x * 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _layer_norm(x: np.ndarray, weights: dict[str, np.ndarray], scope: str, epsilon: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * weights[f"{scope}/gamma"] + weights[f"{scope}/beta"]


def _dense(x: np.ndarray, weights: dict[str, np.ndarray], scope: str) -> np.ndarray:
    return x @ weights[f"{scope}/kernel"].astype(np.float64) + weights[f"{scope}/bias"]


def _encoder(
    weights: dict[str, np.ndarray], scope: str, config: ModelConfig, ids: np.ndarray, mask: np.ndarray, segments
) -> np.ndarray:
    """The sequence output ``[B, S, H]`` of the encoder under ``scope`` ("electra" or "generator")."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    eps = config.layer_norm_eps
    seq_len = ids.shape[1]
    x = (
        w["electra/embeddings/word_embeddings"][ids]
        + w["electra/embeddings/token_type_embeddings"][segments]
        + w["electra/embeddings/position_embeddings"][:seq_len]
    )
    x = _layer_norm(x, w, "electra/embeddings/LayerNorm", eps)
    if config.embedding_size != config.hidden_size:
        x = _dense(x, w, f"{scope}/embeddings_project")
    heads, head_size = config.num_attention_heads, config.hidden_size // config.num_attention_heads
    adder = (1.0 - mask[:, None, None, :]) * -10000.0  # [B, 1, 1, T]: only the to-side mask

    def split(t: np.ndarray) -> np.ndarray:
        return t.reshape(t.shape[0], seq_len, heads, head_size).transpose(0, 2, 1, 3)

    for index in range(config.num_hidden_layers):
        layer = f"{scope}/encoder/layer_{index}"
        q, k, v = (split(_dense(x, w, f"{layer}/attention/self/{name}")) for name in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(head_size) + adder
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(x.shape[0], seq_len, config.hidden_size)
        attended = _layer_norm(
            _dense(context, w, f"{layer}/attention/output/dense") + x, w, f"{layer}/attention/output/LayerNorm", eps
        )
        intermediate = _gelu(_dense(attended, w, f"{layer}/intermediate/dense"))
        x = _layer_norm(
            _dense(intermediate, w, f"{layer}/output/dense") + attended, w, f"{layer}/output/LayerNorm", eps
        )
    return x


def discriminator_logits(weights, config: PretrainingConfig, ids, mask, segments) -> np.ndarray:
    """Replaced-token logits ``[B, S]``: Dense(H→H, gelu) → Dense(H→1) → squeeze."""
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    hidden = _encoder(weights, "electra", config.discriminator_config(), ids, mask, segments)
    hidden = _gelu(_dense(hidden, w, "discriminator_predictions/dense"))
    return _dense(hidden, w, "discriminator_predictions/dense_1")[..., 0]


def generator_logits(weights, config: PretrainingConfig, ids, mask, segments) -> np.ndarray:
    """MLM logits ``[B, S, V]`` at every position: Dense(Hg→E, gelu) → LayerNorm → · word_embeddingsᵀ + bias."""
    generator = config.generator_config()
    w = {name: value.astype(np.float64) for name, value in weights.items()}
    hidden = _encoder(weights, "generator", generator, ids, mask, segments)
    hidden = _gelu(_dense(hidden, w, "generator_predictions/dense"))
    hidden = _layer_norm(hidden, w, "generator_predictions/LayerNorm", generator.layer_norm_eps)
    return hidden @ w["electra/embeddings/word_embeddings"].T + w["generator_predictions/output_bias"]
