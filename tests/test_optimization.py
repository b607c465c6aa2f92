"""The pretraining optimizer against hand computations of Google's schedule, AdamWeightDecayOptimizer and LAMB."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import electra_tf
from electra_tf.config import PretrainingConfig
from electra_tf.errors import UserError
from electra_tf.model.networks import DISCRIMINATOR, GENERATOR, encoder_config, tf1_variable_shapes
from electra_tf.optimization import (
    ElectraAdamW,
    ElectraLamb,
    ElectraLearningRate,
    create_optimizer,
    is_decayed,
    variable_path,
)

KERNEL_PATH = "electra/encoder/layer_0/attention/self/query/kernel"
BIAS_PATH = "electra/encoder/layer_0/attention/self/query/bias"
GAMMA_PATH = "electra/encoder/layer_0/attention/output/LayerNorm/gamma"
LEARNING_RATES = (0.01, 0.008, 0.006)
WEIGHT_DECAY = 0.1


def _lr(schedule: ElectraLearningRate, step: int) -> float:
    return float(schedule(tf.constant(step, tf.int64)))


def _variable_at(path: str, value: np.ndarray) -> keras.Variable:
    """A Keras variable whose ``path`` is ``path`` (Keras name scopes take one segment each)."""
    *scopes, name = path.split("/")
    with contextlib.ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(keras.name_scope(scope))
        return keras.Variable(value, name=name)


class _StepwiseRate(keras.optimizers.schedules.LearningRateSchedule):
    """LEARNING_RATES[t]: a schedule simple enough to write the numpy reference against."""

    def __call__(self, step):
        return tf.gather(tf.constant(LEARNING_RATES), tf.cast(step, tf.int32))


def _gradients(steps: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [tuple(rng.normal(size=shape).astype("float32") for shape in ((3, 2), (2,), (2,))) for _ in range(steps)]


def _initial_values() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.normal(size=(3, 2)).astype("float32"), rng.normal(size=(2,)).astype("float32"), np.ones(2, "float32")


def _variables() -> list[keras.Variable]:
    return [
        _variable_at(path, value)
        for path, value in zip((KERNEL_PATH, BIAS_PATH, GAMMA_PATH), _initial_values(), strict=True)
    ]


def _reference_adamw(steps: int, beta_1: float = 0.9, beta_2: float = 0.999, eps: float = 1e-6) -> list[np.ndarray]:
    """Google's AdamWeightDecayOptimizer in float64 numpy: only the kernel is decayed."""
    thetas = [value.astype("float64") for value in _initial_values()]
    moments = [(np.zeros_like(theta), np.zeros_like(theta)) for theta in thetas]
    for lr, grads in zip(LEARNING_RATES[:steps], _gradients(steps), strict=True):
        for index, (theta, grad) in enumerate(zip(thetas, grads, strict=True)):
            m, v = moments[index]
            m = beta_1 * m + (1 - beta_1) * grad
            v = beta_2 * v + (1 - beta_2) * grad**2
            update = m / (np.sqrt(v) + eps)
            if index == 0:
                update = update + WEIGHT_DECAY * theta
            moments[index] = (m, v)
            thetas[index] = theta - lr * update
    return thetas


def _run(optimizer: keras.optimizers.Optimizer, steps: int, jit_compile: bool = False) -> list[np.ndarray]:
    variables = _variables()
    optimizer.build(variables)

    def apply(grads):
        optimizer.apply(grads, variables)

    apply = tf.function(apply, jit_compile=True) if jit_compile else apply
    for grads in _gradients(steps):
        apply([tf.constant(grad) for grad in grads])
    assert int(optimizer.iterations) == steps
    return [variable.numpy() for variable in variables]


# ---------------------------------------------------------------------------------------------
# Learning-rate schedule
# ---------------------------------------------------------------------------------------------
def test_schedule_matches_google_for_the_pretraining_defaults():
    schedule = ElectraLearningRate(5e-4, 1_000_000, 10_000)
    assert _lr(schedule, 0) == 0.0
    assert _lr(schedule, 5_000) == pytest.approx(5e-4 * 0.995 * 0.5, rel=1e-6)
    # Warmup multiplies a decay that already started at step 0: 0.99 · peak, not peak.
    assert _lr(schedule, 10_000) == pytest.approx(4.95e-4, rel=1e-6)
    assert _lr(schedule, 500_000) == pytest.approx(2.5e-4, rel=1e-6)
    assert _lr(schedule, 1_000_000) == 0.0
    assert _lr(schedule, 1_200_000) == 0.0


def test_schedule_power_and_no_warmup():
    squared = ElectraLearningRate(1e-3, 100, 10, decay_power=2.0)
    assert _lr(squared, 50) == pytest.approx(1e-3 * 0.25, rel=1e-6)
    assert _lr(squared, 5) == pytest.approx(1e-3 * 0.95**2 * 0.5, rel=1e-6)
    no_warmup = ElectraLearningRate(1e-3, 100, 0)
    assert _lr(no_warmup, 0) == pytest.approx(1e-3)
    assert _lr(no_warmup, 40) == pytest.approx(6e-4, rel=1e-6)


def test_warmup_offset_rewarms_from_the_imported_step_while_decay_keeps_the_global_step():
    schedule = ElectraLearningRate(1e-3, 2_000, 100, warmup_offset=1_000)
    assert _lr(schedule, 500) == 0.0
    assert _lr(schedule, 1_000) == 0.0
    assert _lr(schedule, 1_050) == pytest.approx(1e-3 * (1 - 1_050 / 2_000) * 0.5, rel=1e-6)
    assert _lr(schedule, 1_500) == pytest.approx(1e-3 * 0.25, rel=1e-6)


def test_optimizer_reads_the_schedule_at_its_iteration_count_before_the_update():
    optimizer = ElectraAdamW(ElectraLearningRate(1e-2, 100, 10), weight_decay_rate=WEIGHT_DECAY)
    initial = _initial_values()
    after_first = _run(optimizer, 1)
    for before, after in zip(initial, after_first, strict=True):
        np.testing.assert_array_equal(after, before)  # lr(0) = 0: the first update changes nothing
    assert float(optimizer.learning_rate) == pytest.approx(1e-2 * 0.99 * 0.1, rel=1e-6)  # lr(1) is next


def test_schedule_config_round_trip_and_validation():
    schedule = ElectraLearningRate(2e-4, 766_000, 10_000, decay_power=1.5, warmup_offset=7)
    restored = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, ElectraLearningRate)
    assert restored.get_config() == schedule.get_config()
    with pytest.raises(UserError, match="num_train_steps"):
        ElectraLearningRate(1e-3, 0, 0)
    with pytest.raises(UserError, match="warmup"):
        ElectraLearningRate(1e-3, 10, -1)


# ---------------------------------------------------------------------------------------------
# Weight-decay exclusions
# ---------------------------------------------------------------------------------------------
def test_is_decayed_on_every_variable_of_both_networks():
    config = PretrainingConfig.from_size("small", {"vocab_size": 64})
    names = {
        name for net in (DISCRIMINATOR, GENERATOR) for name in tf1_variable_shapes(net, encoder_config(config, net))
    }
    decayed = {name for name in names if is_decayed(name)}
    assert "generator_predictions/output_bias" in names
    assert "electra/embeddings/LayerNorm/gamma" in names
    # Google decays exactly the kernels and the embedding tables.
    assert decayed == {name for name in names if name.endswith(("/kernel", "_embeddings"))}
    # Keras paths carry the TF1 segments below a model prefix and a Keras-style leaf.
    assert is_decayed("electra_pretrainer/electra/embeddings/word_embeddings/embeddings")
    assert not is_decayed("electra_pretrainer/generator/embeddings_project/bias")
    assert not is_decayed("electra_pretrainer/generator_predictions/layer_norm/beta")


def test_decay_flags_follow_the_keras_path_or_else_the_tf_variable_name():
    keras_gamma = _variable_at(GAMMA_PATH, np.ones(2, "float32"))
    assert keras_gamma.name == "gamma"  # the leaf alone would not reveal LayerNorm
    assert variable_path(keras_gamma) == GAMMA_PATH
    with tf.name_scope("LayerNorm"):
        tf_gamma = tf.Variable(np.ones(2, "float32"), name="gamma")
    tf_kernel = tf.Variable(np.ones((2, 2), "float32"), name="dense_kernel")
    assert variable_path(tf_gamma) == "LayerNorm/gamma:0"
    optimizer = ElectraAdamW(1.0, weight_decay_rate=0.5, beta_1=0.0, beta_2=0.0)
    variables = [keras_gamma, tf_gamma, tf_kernel]
    optimizer.apply([tf.zeros_like(variable) for variable in variables], variables)
    # Zero gradients leave only the decay term: θ ← θ − lr·wd·θ for the decayed kernel alone.
    np.testing.assert_array_equal(keras_gamma.numpy(), 1.0)
    np.testing.assert_array_equal(tf_gamma.numpy(), 1.0)
    np.testing.assert_allclose(tf_kernel.numpy(), 0.5)


def test_keras_weight_decay_argument_is_refused():
    with pytest.raises(ValueError, match="weight_decay_rate"):
        ElectraAdamW(1e-3, weight_decay=0.01)


# ---------------------------------------------------------------------------------------------
# ElectraAdamW
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("steps", [1, 3])
def test_adamw_matches_google_update_rule(steps):
    got = _run(ElectraAdamW(_StepwiseRate(), weight_decay_rate=WEIGHT_DECAY), steps)
    for value, expected in zip(got, _reference_adamw(steps), strict=True):
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6)


def test_adamw_has_no_bias_correction_unlike_keras_adamw():
    ours = _run(ElectraAdamW(0.01, weight_decay_rate=0.0), 1)
    keras_adamw = _run(keras.optimizers.AdamW(0.01, weight_decay=0.0, epsilon=1e-6), 1)
    initial = _initial_values()
    ours_step = [before - after for before, after in zip(initial, ours, strict=True)]
    keras_step = [before - after for before, after in zip(initial, keras_adamw, strict=True)]
    # With fresh slots: ours is lr·0.1g/√(0.001g²) ≈ 3.16·lr·sign(g); bias-corrected Adam gives lr·sign(g).
    for mine, theirs in zip(ours_step, keras_step, strict=True):
        np.testing.assert_allclose(mine / theirs, 0.1 / np.sqrt(0.001), rtol=0.05)


def test_adamw_under_jit_compile_matches_eager():
    eager = _run(ElectraAdamW(_StepwiseRate(), weight_decay_rate=WEIGHT_DECAY), 3)
    compiled = _run(ElectraAdamW(_StepwiseRate(), weight_decay_rate=WEIGHT_DECAY), 3, jit_compile=True)
    for a, b in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_adamw_densifies_sparse_embedding_gradients():
    table = _variable_at("electra/embeddings/word_embeddings/embeddings", np.ones((4, 2), "float32"))
    optimizer = ElectraAdamW(1.0, weight_decay_rate=0.0)
    sparse = tf.IndexedSlices(tf.ones((1, 2)), indices=tf.constant([2]), dense_shape=tf.constant([4, 2]))
    optimizer.apply([sparse], [table])
    expected = np.ones((4, 2), "float32")
    expected[2] -= 0.1 / (np.sqrt(0.001) + 1e-6)
    np.testing.assert_allclose(table.numpy(), expected, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# LAMB
# ---------------------------------------------------------------------------------------------
def test_lamb_applies_trust_ratio_and_decay_only_to_decayed_variables():
    lr, (kernel0, bias0, gamma0), (grads,) = 0.01, _initial_values(), _gradients(1)
    kernel, bias, gamma = _run(ElectraLamb(lr, weight_decay_rate=WEIGHT_DECAY), 1, jit_compile=True)

    def bias_corrected_direction(grad):
        return (0.1 * grad / 0.1) / (np.sqrt(0.001 * grad**2 / 0.001) + 1e-6)

    update = bias_corrected_direction(grads[0]) + WEIGHT_DECAY * kernel0
    ratio = np.linalg.norm(kernel0) / np.linalg.norm(update)
    np.testing.assert_allclose(kernel, kernel0 - lr * ratio * update, rtol=1e-5)
    # Excluded variables take a plain bias-corrected Adam step: no decay, no trust ratio.
    np.testing.assert_allclose(bias, bias0 - lr * bias_corrected_direction(grads[1]), rtol=1e-5)
    np.testing.assert_allclose(gamma, gamma0 - lr * bias_corrected_direction(grads[2]), rtol=1e-5)


# ---------------------------------------------------------------------------------------------
# create_optimizer
# ---------------------------------------------------------------------------------------------
def test_create_optimizer_from_config():
    config = PretrainingConfig.from_size("small", {"num_train_steps": 50, "num_warmup_steps": 100})
    optimizer = create_optimizer(config)
    assert isinstance(optimizer, ElectraAdamW)
    assert optimizer.weight_decay_rate == config.weight_decay_rate
    assert optimizer.epsilon == 1e-6 and optimizer.global_clipnorm is None and optimizer.clipnorm is None
    schedule = optimizer._learning_rate
    # Warmup is capped at the run length (config.effective_warmup_steps).
    assert (schedule.peak_learning_rate, schedule.num_train_steps, schedule.num_warmup_steps) == (5e-4, 50, 50)
    lamb = create_optimizer(config.replace(optimizer="lamb"), warmup_offset=10)
    assert isinstance(lamb, ElectraLamb) and lamb._learning_rate.warmup_offset == 10
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(lamb))
    assert isinstance(restored, ElectraLamb) and restored.get_config() == lamb.get_config()
    with pytest.raises(UserError, match="must exceed the imported step"):
        create_optimizer(config, warmup_offset=50)


# ---------------------------------------------------------------------------------------------
# Mixed precision and checkpoints
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def mixed_float16():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_loss_scale_optimizer_wraps_applies_and_skips_non_finite_steps(mixed_float16):
    layer = keras.layers.Dense(2, name="dense")
    layer.build((None, 3))
    assert layer.kernel.dtype == "float32" and layer.compute_dtype == "float16"
    optimizer = keras.optimizers.LossScaleOptimizer(ElectraAdamW(ElectraLearningRate(1e-2, 100, 0)))
    optimizer.build(layer.trainable_variables)
    inputs = tf.ones((4, 3), tf.float16)

    @tf.function(jit_compile=True)
    def step(poison):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.cast(layer(inputs), tf.float32)) * poison
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, layer.trainable_variables), layer.trainable_variables)

    kernel, bias = layer.kernel.numpy(), layer.bias.numpy()
    step(tf.constant(1.0))
    assert int(optimizer.iterations) == 1
    # Every unscaled gradient is d mean / dθ = 0.5, so u = 0.1·0.5 / (√(0.001·0.25) + ε); the kernel adds decay.
    update = 0.05 / (np.sqrt(0.001) * 0.5 + 1e-6)
    np.testing.assert_allclose(layer.bias.numpy(), bias - 1e-2 * update, rtol=1e-5)
    np.testing.assert_allclose(layer.kernel.numpy(), kernel - 1e-2 * (update + 0.01 * kernel), rtol=1e-5)
    scale, kernel = float(optimizer.dynamic_scale), layer.kernel.numpy()
    step(tf.constant(np.inf))
    assert int(optimizer.iterations) == 1
    assert float(optimizer.dynamic_scale) == scale / 2
    np.testing.assert_array_equal(layer.kernel.numpy(), kernel)


@pytest.mark.parametrize("build_before_restore", [True, False], ids=["built", "deferred"])
@pytest.mark.parametrize("optimizer_class", [ElectraAdamW, ElectraLamb])
def test_checkpoint_round_trip_restores_slots_and_step(tmp_path, optimizer_class, build_before_restore):
    def fresh(build):
        variables = _variables()
        optimizer = optimizer_class(ElectraLearningRate(1e-2, 100, 2), weight_decay_rate=WEIGHT_DECAY)
        if build:
            optimizer.build(variables)
        return variables, optimizer

    variables, optimizer = fresh(build=True)
    grads = [[tf.constant(grad) for grad in step] for step in _gradients(3)]
    for step in grads[:2]:
        optimizer.apply(step, variables)
    assert sum("adam_m" in slot.path for slot in optimizer.variables) == len(variables)
    path = tf.train.Checkpoint(variables=variables, optimizer=optimizer).write(str(tmp_path / "ckpt"))
    optimizer.apply(grads[2], variables)

    # Keras builds the optimizer lazily on the first apply; slots restored before that are applied on build.
    restored_variables, restored_optimizer = fresh(build=build_before_restore)
    status = tf.train.Checkpoint(variables=restored_variables, optimizer=restored_optimizer).read(path)
    assert int(restored_optimizer.iterations) == 2
    restored_optimizer.apply(grads[2], restored_variables)
    status.assert_consumed()
    for restored, original in zip(restored_variables, variables, strict=True):
        np.testing.assert_array_equal(restored.numpy(), original.numpy())


# ---------------------------------------------------------------------------------------------
# tf.distribute
# ---------------------------------------------------------------------------------------------
_MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from electra_tf.optimization import ElectraAdamW, ElectraLearningRate

    GLOBAL_BATCH = 8
    rng = np.random.default_rng(0)
    features = rng.normal(size=(3 * GLOBAL_BATCH, 4)).astype("float32")
    targets = rng.normal(size=(3 * GLOBAL_BATCH, 1)).astype("float32")

    def train(strategy):
        with strategy.scope():
            layer = keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="ones")
            layer.build((None, 4))
            optimizer = ElectraAdamW(ElectraLearningRate(1e-2, 10, 1), weight_decay_rate=0.1)
            optimizer.build(layer.trainable_variables)

        @tf.function(jit_compile=True)
        def gradients(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(tf.square(layer(x) - y)) / GLOBAL_BATCH
            return tape.gradient(loss, layer.trainable_variables)

        def replica_step(x, y):
            optimizer.apply(gradients(x, y), layer.trainable_variables)

        @tf.function
        def step(batch):
            strategy.run(replica_step, args=batch)

        data = tf.data.Dataset.from_tensor_slices((features, targets)).batch(GLOBAL_BATCH)
        for batch in strategy.experimental_distribute_dataset(data):
            step(batch)
        return {
            "replicas": strategy.num_replicas_in_sync,
            "iterations": int(optimizer.iterations.numpy()),
            "kernel": layer.kernel.numpy().ravel().tolist(),
            "bias": layer.bias.numpy().ravel().tolist(),
        }

    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    print(json.dumps({
        "one": train(tf.distribute.OneDeviceStrategy(devices[0])),
        "mirrored": train(tf.distribute.MirroredStrategy(devices)),
    }))
    """
)


def test_mirrored_strategy_on_two_cpus_matches_one_device():
    result = subprocess.run(
        [sys.executable, "-c", _MIRRORED_SCRIPT],
        cwd=electra_tf.REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout.strip().splitlines()[-1])
    one, mirrored = runs["one"], runs["mirrored"]
    assert (mirrored["replicas"], mirrored["iterations"], one["iterations"]) == (2, 3, 3)
    assert one["kernel"] != [1.0] * 4  # the steps after the lr=0 first step moved the weights
    np.testing.assert_allclose(mirrored["kernel"], one["kernel"], rtol=1e-5)
    np.testing.assert_allclose(mirrored["bias"], one["bias"], rtol=1e-5)
