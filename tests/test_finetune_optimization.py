"""Fine-tuning's optimizer: layer-wise learning-rate multipliers and the AdamW step they scale.

On a 3-layer network the multipliers must follow the formula exactly (top layer ``decay``, layer k of
n ``decay^(n−k+1)``, embeddings ``decay^(n+1)``, head 1), and one step with them must move every
variable by exactly its multiplier times the step without them, weight decay included (powers of two
keep the products exact).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf.config import ModelConfig
from electra_tf.errors import UserError
from electra_tf.finetune.model import build_finetuning_model, network_weights
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING
from electra_tf.optimization import ElectraAdamW, create_finetuning_optimizer, layerwise_lr_multipliers

ENCODER = ModelConfig(
    vocab_size=40,
    embedding_size=16,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=40,
    max_position_embeddings=32,
)
DECAY = 0.8


@pytest.fixture(scope="module")
def network():
    keras.utils.set_random_seed(0)
    return build_finetuning_model(ENCODER, TAGGING, 4)


def test_multipliers_follow_the_formula_on_a_three_layer_model(network):
    multipliers = layerwise_lr_multipliers(network, DECAY)
    expected = {
        "electra/encoder/layer_0/attention/self/query/kernel": DECAY**3,
        "electra/encoder/layer_0/output/LayerNorm/gamma": DECAY**3,
        "electra/encoder/layer_1/intermediate/dense/bias": DECAY**2,
        "electra/encoder/layer_2/attention/self/query/kernel": DECAY**1,  # Google's code gives the top layer DECAY**2
        "electra/embeddings/word_embeddings": DECAY**4,
        "electra/embeddings/position_embeddings": DECAY**4,
        "electra/embeddings/LayerNorm/beta": DECAY**4,
        "electra/embeddings_project/kernel": DECAY**4,
        "classifier/kernel": 1.0,
        "classifier/bias": 1.0,
    }
    for name, value in expected.items():
        assert multipliers[name] == pytest.approx(value, rel=1e-12), name
    assert set(multipliers) == set(network.tf1_variables())
    assert len(multipliers) == len(network.trainable_variables)
    per_layer = [sum(1 for name in multipliers if f"/layer_{index}/" in name) for index in range(3)]
    assert per_layer == [16, 16, 16]


def test_classification_head_keeps_the_full_rate():
    network = build_finetuning_model(ENCODER, CLASSIFICATION, 3)
    multipliers = layerwise_lr_multipliers(network, 0.5)
    head = {name: value for name, value in multipliers.items() if name.startswith("classifier/")}
    assert sorted(head) == [
        "classifier/dense/bias",
        "classifier/dense/kernel",
        "classifier/out_proj/bias",
        "classifier/out_proj/kernel",
    ]
    assert set(head.values()) == {1.0}


def test_decay_outside_zero_one_is_refused(network):
    for decay in (0.0, 1.5, -0.1):
        with pytest.raises(UserError, match="layerwise_lr_decay"):
            layerwise_lr_multipliers(network, decay)


def one_step(decay: float, weights: dict[str, np.ndarray], gradients: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The change of every variable after one step of the fine-tuning optimizer from ``weights``."""
    keras.utils.set_random_seed(0)
    network = build_finetuning_model(ENCODER, TAGGING, 4)
    for name, variable in network.tf1_variables().items():
        variable.assign(weights[name])
    optimizer = create_finetuning_optimizer(
        network,
        learning_rate=2.0**-7,
        num_train_steps=100,
        warmup_proportion=0.0,
        weight_decay_rate=0.5,
        layerwise_lr_decay=decay,
    )
    optimizer.apply([tf.constant(g) for g in gradients], network.trainable_variables)
    after = network_weights(network)
    return {name: weights[name] - after[name] for name in weights}


def test_a_step_with_multipliers_is_the_multiplier_times_the_step_without(network):
    weights = network_weights(network)
    rng = np.random.default_rng(3)
    gradients = [rng.standard_normal(variable.shape).astype(np.float32) for variable in network.trainable_variables]
    decay = 0.5  # powers of two: lr·multiplier·u is exact
    plain = one_step(1.0, weights, gradients)
    scaled = one_step(decay, weights, gradients)
    multipliers = layerwise_lr_multipliers(network, decay)
    for name, step in plain.items():
        assert np.abs(step).max() > 0, name
        np.testing.assert_allclose(scaled[name], multipliers[name] * step, rtol=0, atol=1e-7, err_msg=name)
    # The plain step is Google's AdamW step, weight decay included (fresh moments, no bias correction).
    kernel = "electra/encoder/layer_0/attention/self/query/kernel"
    index = [id(variable) for variable in network.trainable_variables].index(id(network.tf1_variables()[kernel]))
    gradient = gradients[index]
    adam = 0.1 * gradient / (np.sqrt(0.001 * gradient**2) + 1e-6)
    np.testing.assert_allclose(plain[kernel], 2.0**-7 * (adam + 0.5 * weights[kernel]), rtol=1e-5, atol=1e-7)


def test_the_schedule_warms_up_over_the_proportion_then_decays_linearly_to_zero(network):
    optimizer = create_finetuning_optimizer(network, learning_rate=1e-4, num_train_steps=200, warmup_proportion=0.1)
    rates = []
    for step in (0, 10, 20, 110, 200):
        optimizer.iterations.assign(step)
        rates.append(float(optimizer.learning_rate))
    np.testing.assert_allclose(rates, [0.0, 1e-4 * 0.95 * 0.5, 1e-4 * 0.9, 1e-4 * 0.45, 0.0], rtol=1e-5, atol=1e-12)
    assert optimizer.epsilon == 1e-6 and optimizer.weight_decay_rate == 0.01


def test_mixed_float16_wraps_the_optimizer_for_loss_scaling(network):
    optimizer = create_finetuning_optimizer(network, learning_rate=1e-4, num_train_steps=10, precision="mixed_float16")
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(optimizer.inner_optimizer, ElectraAdamW)


def test_multipliers_that_miss_a_variable_are_refused(network):
    variables = network.trainable_variables
    optimizer = ElectraAdamW(1e-3, lr_multipliers=[(variable, 0.5) for variable in variables[1:]])
    with pytest.raises(ValueError, match="no multiplier for 1 variables"):
        optimizer.build(variables)
