"""The Keras ELECTRA pretrainer: forward parity, variables, parameter counts, loss, training steps, precision."""

import export_reference as ref
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import SPECIAL, batch, compiled, tiny

from electra_tf.config import PretrainingConfig
from electra_tf.data.input_pipeline import evaluation_dataset
from electra_tf.model.masking import StepKeys
from electra_tf.model.networks import NETWORKS, tf1_variable_shapes
from electra_tf.model.pretrainer import ElectraPretrainer
from electra_tf.model.tf1_names import assign_tf1_weights, tf1_variables


@pytest.fixture(autouse=True)
def float32_policy():
    keras.mixed_precision.set_dtype_policy("float32")
    yield
    keras.mixed_precision.set_dtype_policy("float32")


def test_forward_passes_match_the_reference_implementation():
    config = tiny()
    model = ElectraPretrainer(config, SPECIAL)
    weights = ref.random_tf1_weights(config)
    assign_tf1_weights(model, weights, NETWORKS)
    ids, mask, segments = ref.batch(config.vocab_size)
    real = mask == 1
    disc = model.discriminator_logits(ids, mask, segments).numpy()
    np.testing.assert_allclose(
        disc[real], ref.discriminator_logits(weights, config, ids, mask, segments)[real], atol=1e-5
    )
    gen = model.generator_logits(ids, mask, segments).numpy()
    np.testing.assert_allclose(gen[real], ref.generator_logits(weights, config, ids, mask, segments)[real], atol=1e-5)


def test_every_trainable_variable_has_exactly_one_tf1_name_with_the_tables_shape():
    config = tiny()
    model = ElectraPretrainer(config, SPECIAL)
    named = tf1_variables(model)
    assert {id(v) for v in named.values()} == {id(v) for v in model.trainable_variables}
    assert len(named) == len(model.trainable_variables)
    expected = {}
    for network in NETWORKS:
        encoder = config.discriminator_config() if network.name == "discriminator" else config.generator_config()
        expected |= tf1_variable_shapes(network, encoder)
    assert {name: tuple(v.shape) for name, v in named.items()} == expected


def _encoder_parameters(shapes: dict) -> int:
    heads = ("discriminator_predictions/", "generator_predictions/")
    return sum(int(np.prod(shape)) for name, shape in shapes.items() if not name.startswith(heads))


@pytest.mark.parametrize(
    "size, generator_hidden_size, discriminator_count, generator_count",
    [
        ("small", 0.25, 13_483_008, 4_580_928),
        ("small", 1.0, 13_483_008, 13_483_008),
        ("base", 0.33333, 108_891_648, 33_511_168),
        ("large", 0.25, 334_092_288, 50_999_552),
    ],
)
def test_encoder_parameter_counts_are_the_published_ones(
    size, generator_hidden_size, discriminator_count, generator_count
):
    config = PretrainingConfig.from_size(size, {"generator_hidden_size": generator_hidden_size})
    shapes = {
        network.name: tf1_variable_shapes(network, encoder)
        for network, encoder in zip(NETWORKS, (config.discriminator_config(), config.generator_config()), strict=True)
    }
    assert _encoder_parameters(shapes["discriminator"]) == discriminator_count
    assert _encoder_parameters(shapes["generator"]) == generator_count


def test_the_small_keras_model_has_the_published_parameter_count():
    config = PretrainingConfig.from_size("small", {})
    model = ElectraPretrainer(config, SPECIAL)
    named = {name: tuple(v.shape) for name, v in tf1_variables(model).items()}
    shared = sum(int(np.prod(s)) for n, s in named.items() if n.startswith("electra/embeddings/"))
    discriminator = sum(int(np.prod(s)) for n, s in named.items() if n.startswith("electra/"))
    generator = sum(int(np.prod(s)) for n, s in named.items() if n.startswith("generator/"))
    assert discriminator == 13_483_008
    assert generator + shared == 4_580_928


@pytest.mark.parametrize("masking", ["distinct", "google"])
def test_loss_is_googles_weighted_sum_of_masked_means(masking):
    config = tiny(masking=masking)
    model = ElectraPretrainer(config, SPECIAL)
    data = {k: tf.constant(v) for k, v in batch().items()}
    keys = StepKeys.derive(config.seed, tf.constant(5, tf.int64), tf.range(8))
    denominators = model.step_denominators(data["input_ids"], data["input_mask"])
    loss, stats = model._objective(data, keys, denominators, training=False)
    corruption = model._corrupt(data, keys, training=False)

    # Recompute both losses in numpy from the same generator outputs and discriminator logits.
    logits = corruption.mlm_logits.numpy().astype(np.float64)
    log_probs = (
        logits
        - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - logits.max(-1, keepdims=True)
    )
    targets, weights = corruption.masked.target_ids.numpy(), corruption.masked.weights.numpy()
    picked = np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    mlm = -(weights * picked).sum() / (weights.sum() + 1e-6)
    disc_logits = model.discriminator_logits(corruption.fake_ids, data["input_mask"], data["segment_ids"]).numpy()
    labels, mask = corruption.labels.numpy(), data["input_mask"].numpy()
    bce = np.maximum(disc_logits, 0) - disc_logits * labels + np.log1p(np.exp(-np.abs(disc_logits)))
    disc = (bce * mask).sum() / (mask.sum() + 1e-6)
    assert weights.sum() == float(denominators.masked) > 0
    np.testing.assert_allclose(float(loss), 1.0 * mlm + 50.0 * disc, rtol=1e-5)
    # Replacements are labelled only where the token changed.
    changed = corruption.fake_ids.numpy() != data["input_ids"].numpy()
    np.testing.assert_array_equal(labels.astype(bool), changed)
    assert float(stats["masked"]) == weights.sum()


def test_a_few_steps_reduce_the_loss_and_report_every_metric():
    config = tiny()
    model = compiled(config)
    data = tf.data.Dataset.from_tensors(batch()).repeat()
    history = model.fit(data, epochs=4, steps_per_epoch=10, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]
    for name in (
        "masked_lm_loss",
        "disc_loss",
        "masked_lm_accuracy",
        "sampled_masked_lm_accuracy",
        "disc_accuracy",
        "disc_precision",
        "disc_recall",
        "disc_auc",
        "learning_rate",
        "grad_norm",
    ):
        assert np.isfinite(history[name]).all(), name
    assert 0.5 < history["disc_auc"][-1] <= 1.0


def _one_step_weights(config: PretrainingConfig, data: dict) -> list[np.ndarray]:
    model = compiled(config, seed=3)
    model.fit(tf.data.Dataset.from_tensors(data), epochs=1, steps_per_epoch=1, verbose=0)
    return [v.numpy() for v in model.trainable_variables]


def test_xla_and_plain_graph_steps_agree():
    data = batch()
    with_xla = _one_step_weights(tiny(jit_compile=True), data)
    without = _one_step_weights(tiny(jit_compile=False), data)
    for a, b in zip(with_xla, without, strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6)


@pytest.mark.parametrize("dropout", [0.0, pytest.param(0.1, marks=pytest.mark.slow)])
def test_gradient_accumulation_equals_one_step_on_the_whole_batch(dropout):
    # Masking, sampling and dropout masks depend on (seed, step, example), not on the split, so the
    # equality holds with dropout on too.
    data = batch(size=8)
    rates = {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}

    def config(**overrides):
        base = tiny(train_batch_size=8, **overrides)
        return base.replace(model_hparam_overrides={**base.model_hparam_overrides, **rates})

    whole = _one_step_weights(config(), data)
    accumulated = _one_step_weights(config(gradient_accumulation_steps=4), data)
    moved = 0
    for a, b, before in zip(whole, accumulated, _initial_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-6)
        moved += int(not np.allclose(a, before))
    assert moved > 10  # the step really changed the weights


def _initial_weights() -> list[np.ndarray]:
    keras.utils.set_random_seed(3)
    return [v.numpy() for v in ElectraPretrainer(tiny(), SPECIAL).trainable_variables]


@pytest.mark.parametrize("precision", [pytest.param("mixed_float16", marks=pytest.mark.slow), "mixed_bfloat16"])
def test_mixed_precision_trains_with_finite_losses(precision):
    keras.mixed_precision.set_dtype_policy(precision)
    config = tiny(precision=precision)
    model = compiled(config)
    assert model.discriminator.transformer_layers[0].query.compute_dtype == precision.removeprefix("mixed_")
    history = model.fit(tf.data.Dataset.from_tensors(batch()).repeat(), epochs=3, steps_per_epoch=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    assert history["loss"][-1] < history["loss"][0]
    if precision == "mixed_float16":
        # Dynamic loss scaling is active (the scale starts at 2^15 and moves with overflow/growth).
        assert all(scale > 0 for scale in history["loss_scale"])
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    # Vocabulary logits are float32 whatever the policy.
    data = batch()
    logits = model.generator_logits(data["input_ids"], data["input_mask"], data["segment_ids"])
    assert logits.dtype == tf.float32


def test_evaluation_is_reproducible():
    config = tiny()
    model = compiled(config)
    data = tf.data.Dataset.from_tensors(batch()).repeat(3)
    first = model.evaluate(data, return_dict=True, verbose=0)
    second = model.evaluate(data, return_dict=True, verbose=0)
    assert first == second
    assert set(first) >= {"disc_auc", "disc_precision", "disc_recall", "masked_lm_accuracy"}


def test_padding_the_last_evaluation_batch_changes_no_metric(tmp_path):
    """Held-out examples in batches padded with empty examples score exactly as the examples alone."""
    examples = batch(size=5, seed=3)
    path = str(tmp_path / "eval.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for row in range(5):
            features = {
                name: tf.train.Feature(int64_list=tf.train.Int64List(value=values[row].tolist()))
                for name, values in examples.items()
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    model = compiled(tiny(jit_compile=False))
    # One batch of exactly the 5 examples (no padding), one of 8 (3 empty ones), three of 2 (1 empty one).
    results = [
        model.evaluate(evaluation_dataset([path], size, 16), steps=-(-5 // size), return_dict=True, verbose=0)
        for size in (5, 8, 2)
    ]
    assert results[0]["disc_loss"] > 0
    for padded in results[1:]:
        assert padded.keys() == results[0].keys()
        for name, value in results[0].items():
            assert padded[name] == pytest.approx(value, rel=1e-6, abs=1e-7), name


def test_a_model_only_checkpoint_restores_every_variable(tmp_path):
    config = tiny()
    keras.utils.set_random_seed(1)
    saved = ElectraPretrainer(config, SPECIAL)
    tf.train.Checkpoint(model=saved).write(str(tmp_path / "model"))
    keras.utils.set_random_seed(2)
    restored = ElectraPretrainer(config, SPECIAL)
    tf.train.Checkpoint(model=restored).read(str(tmp_path / "model")).assert_existing_objects_matched()
    for a, b in zip(saved.trainable_variables, restored.trainable_variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
