"""Train the tiny pretrainer 2 steps on one device and under MirroredStrategy over 2 logical CPUs.

Run as a script in a fresh process (the logical devices must be configured before TensorFlow
initialises); ``tests/test_distributed.py`` does. Prints one JSON object: for each setup
(``mirrored``, ``mirrored_accumulation``) the largest absolute difference of every trainable
weight from the one-device run, the per-step losses of all runs, and how far the weights moved.
"""

import json
import sys

import tensorflow as tf
from conftest import LOGICAL_CPUS, configure_logical_cpus

GLOBAL_BATCH = 8
STEPS = 2


def _train(strategy: tf.distribute.Strategy, **config_overrides) -> tuple[list, list[float]]:
    """Trainable weights and per-step losses after ``STEPS`` steps on distinct global batches."""
    from conftest import batch, compiled, tiny

    config = tiny(train_batch_size=GLOBAL_BATCH, **config_overrides)
    # Rows reordered so the two replicas hold different numbers of real tokens: per-replica ratios
    # then differ from the global ones, and only exactly aggregated losses and metrics agree.
    by_length = [0, 4, 1, 5, 2, 6, 3, 7]
    batches = [{k: v[by_length] for k, v in batch(size=GLOBAL_BATCH, seed=step).items()} for step in range(STEPS)]
    data = tf.data.Dataset.from_tensor_slices(
        {name: tf.concat([b[name] for b in batches], axis=0) for name in batches[0]}
    ).batch(GLOBAL_BATCH, drop_remainder=True)
    with strategy.scope():
        model = compiled(config, seed=3)
    # One step per epoch, so each epoch's logged loss is that step's loss.
    history = model.fit(data.repeat(), epochs=STEPS, steps_per_epoch=1, verbose=0).history
    return [v.numpy() for v in model.trainable_variables], [float(x) for x in history["loss"]]


def main() -> None:
    devices = configure_logical_cpus()
    import keras

    keras.mixed_precision.set_dtype_policy("float32")
    reference, reference_losses = _train(tf.distribute.OneDeviceStrategy("/cpu:0"))
    from conftest import compiled, tiny

    initial = [v.numpy() for v in compiled(tiny(), seed=3).trainable_variables]
    report = {
        "one_device_losses": reference_losses,
        "max_weight_change": max(float(abs(a - b).max()) for a, b in zip(reference, initial, strict=True)),
    }
    setups = {"mirrored": {}, "mirrored_accumulation": {"gradient_accumulation_steps": 2}}
    for name, overrides in setups.items():
        strategy = tf.distribute.MirroredStrategy(devices)
        assert strategy.num_replicas_in_sync == LOGICAL_CPUS
        weights, losses = _train(strategy, **overrides)
        report[name] = {
            "losses": losses,
            "max_weight_difference": max(float(abs(a - b).max()) for a, b in zip(reference, weights, strict=True)),
        }
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
