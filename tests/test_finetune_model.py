"""The fine-tuning network computes what transformers' ElectraFor{Token,Sequence}Classification compute.

Both get the same random weights (far from an initialiser's, so a dropped or untransposed variable
shows); the torch models are built by transformers from an ``ElectraConfig`` and given the weights
through the project's TF1 → Hugging Face name table. Also: float32 logits under mixed precision,
dropout that changes with its keys and is off at inference, starting weights assigned one to one,
and a build under a distribution strategy.
"""

from __future__ import annotations

import contextlib

import export_reference as ref
import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from transformers import ElectraConfig, ElectraForSequenceClassification, ElectraForTokenClassification

from electra_tf.config import ModelConfig
from electra_tf.errors import UserError
from electra_tf.finetune.model import (
    assign_starting_weights,
    assign_weights,
    build_finetuning_model,
    dropout_keys,
    head_variable_shapes,
    network_weights,
)
from electra_tf.finetune.starting_point import StartingPoint
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING
from electra_tf.interop.hf_names import named_to_hf
from electra_tf.model.networks import DISCRIMINATOR, encoder_variable_shapes

TOLERANCE = 1e-5
NUM_LABELS = 5
ENCODER = ModelConfig(vocab_size=60, embedding_size=ref.EMBEDDING_SIZE, **ref.TINY_ENCODER)
HF_CLASSES = {TAGGING: ElectraForTokenClassification, CLASSIFICATION: ElectraForSequenceClassification}


def random_weights(
    encoder: ModelConfig, kind: str, num_labels: int = NUM_LABELS, seed: int = 0
) -> dict[str, np.ndarray]:
    """Every TF1 variable of the network: kernels O(0.3), biases O(0.1), LayerNorm gammas around 1."""
    rng = np.random.default_rng(seed)
    shapes = encoder_variable_shapes(encoder) | head_variable_shapes(encoder, kind, num_labels)
    weights = {}
    for name, shape in shapes.items():
        scale, offset = (
            (0.2, 1.0) if name.endswith("/gamma") else (0.1, 0.0) if name.endswith(("bias", "beta")) else (0.3, 0.0)
        )
        weights[name] = (offset + scale * rng.standard_normal(shape)).astype(np.float32)
    return weights


def inputs(seed: int = 1) -> dict[str, np.ndarray]:
    """Three rows of 12: two segments, right padding (pads are id 1, BETO's [PAD])."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, ENCODER.vocab_size, size=(3, 12)).astype(np.int32)
    mask = np.zeros((3, 12), np.int32)
    segments = np.zeros((3, 12), np.int32)
    for row, length in enumerate([12, 9, 5]):
        mask[row, :length] = 1
        segments[row, length // 2 : length] = 1
        ids[row, length:] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}


def transformers_logits(kind: str, weights: dict[str, np.ndarray], batch: dict[str, np.ndarray]) -> np.ndarray:
    """Logits of transformers' model for ``kind`` holding ``weights``."""
    config = ElectraConfig(**ENCODER.to_dict(), num_labels=NUM_LABELS)
    model = HF_CLASSES[kind](config).eval()
    shapes = encoder_variable_shapes(ENCODER) | head_variable_shapes(ENCODER, kind, NUM_LABELS)
    state = {
        name: torch.from_numpy(value) for name, value in named_to_hf(weights, shapes, DISCRIMINATOR, "test").items()
    }
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in name for name in missing)
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
            token_type_ids=torch.tensor(batch["segment_ids"], dtype=torch.long),
        ).logits.numpy()


def keras_network(kind: str, weights: dict[str, np.ndarray]):
    network = build_finetuning_model(ENCODER, kind, NUM_LABELS)
    assert assign_weights(network, weights) == len(weights)
    return network


@pytest.mark.parametrize("kind", [TAGGING, CLASSIFICATION])
def test_logits_equal_transformers_with_the_same_weights(kind):
    weights = random_weights(ENCODER, kind)
    batch = inputs()
    logits = keras_network(kind, weights)(batch).numpy()
    expected = transformers_logits(kind, weights, batch)
    assert logits.dtype == np.float32
    if kind == TAGGING:
        assert logits.shape == (3, 12, NUM_LABELS)
        real = batch["input_mask"] == 1
        logits, expected = logits[real], expected[real]
    else:
        assert logits.shape == (3, NUM_LABELS)
    assert np.abs(expected).max() > 0.5  # far from trivial
    np.testing.assert_allclose(logits, expected, atol=TOLERANCE, rtol=0)


@contextlib.contextmanager
def policy(name: str):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("kind", [TAGGING, CLASSIFICATION])
def test_mixed_float16_gives_float32_logits_close_to_float32(kind):
    weights = random_weights(ENCODER, kind)
    batch = inputs()
    reference = keras_network(kind, weights)(batch).numpy()
    with policy("mixed_float16"):
        network = keras_network(kind, weights)
        assert network.electra.layer_0.query.compute_dtype == "float16"
        logits = network(batch).numpy()
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    tolerance = 0.05 * np.abs(reference).max()  # float16 activations: about three significant digits
    if kind == TAGGING:
        real = batch["input_mask"] == 1
        logits, reference = logits[real], reference[real]
    np.testing.assert_allclose(logits, reference, atol=tolerance, rtol=0)


def test_dropout_follows_its_keys_and_is_off_at_inference():
    encoder = ModelConfig(**{**ENCODER.to_dict(), "hidden_dropout_prob": 0.3, "attention_probs_dropout_prob": 0.3})
    network = build_finetuning_model(encoder, TAGGING, NUM_LABELS)
    batch = inputs()
    rows = tf.range(3)
    first = network(batch, training=True, dropout_keys=dropout_keys(7, tf.constant(0), rows)).numpy()
    again = network(batch, training=True, dropout_keys=dropout_keys(7, tf.constant(0), rows)).numpy()
    next_step = network(batch, training=True, dropout_keys=dropout_keys(7, tf.constant(1), rows)).numpy()
    inference = network(batch).numpy()
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, next_step)
    assert not np.allclose(first, inference)
    np.testing.assert_array_equal(inference, network(batch, training=False).numpy())
    with pytest.raises(ValueError, match="dropout_keys"):
        network(batch, training=True)


@pytest.mark.parametrize("kind", [TAGGING, CLASSIFICATION])
def test_starting_weights_fill_the_encoder_and_leave_the_head_fresh(kind, tmp_path):
    weights = random_weights(ENCODER, kind)
    encoder_weights = {name: weights[name] for name in encoder_variable_shapes(ENCODER)}
    point = StartingPoint(ENCODER, encoder_weights, tmp_path / "vocab.txt", True, True, "test")
    keras.utils.set_random_seed(0)
    network = build_finetuning_model(ENCODER, kind, NUM_LABELS)
    head_before = {name: value for name, value in network_weights(network).items() if name.startswith("classifier/")}
    assert assign_starting_weights(network, point) == len(encoder_weights)
    after = network_weights(network)
    for name, value in encoder_weights.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert head_before.keys() == head_variable_shapes(ENCODER, kind, NUM_LABELS).keys()
    for name, value in head_before.items():
        np.testing.assert_array_equal(after[name], value, err_msg=name)
    assert assign_starting_weights(network, point.without_weights()) == 0


def test_starting_weights_of_another_shape_are_refused_before_anything_changes(tmp_path):
    weights = random_weights(ENCODER, TAGGING)
    network = build_finetuning_model(ENCODER, TAGGING, NUM_LABELS)
    before = network_weights(network)
    broken = {name: weights[name] for name in encoder_variable_shapes(ENCODER)}
    broken["electra/encoder/layer_1/output/dense/kernel"] = np.zeros((40, 31), np.float32)
    point = StartingPoint(ENCODER, broken, tmp_path / "vocab.txt", True, True, "test")
    with pytest.raises(UserError, match="size mismatch for electra/encoder/layer_1/output/dense/kernel"):
        assign_starting_weights(network, point)
    for name, value in network_weights(network).items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)


def test_the_network_builds_and_runs_under_a_distribution_strategy():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        network = build_finetuning_model(ENCODER, CLASSIFICATION, NUM_LABELS)
    assert all(isinstance(variable.value, tf.distribute.DistributedValues) for variable in network.trainable_variables)
    weights = random_weights(ENCODER, CLASSIFICATION)
    assign_weights(network, weights)
    batch = inputs()
    logits = strategy.run(lambda: network(batch))
    expected = transformers_logits(CLASSIFICATION, weights, batch)
    np.testing.assert_allclose(np.asarray(logits), expected, atol=TOLERANCE, rtol=0)
