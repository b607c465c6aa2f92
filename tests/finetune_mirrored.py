"""Fine-tune a tiny tagger 3 steps on one device and under MirroredStrategy over 2 logical CPUs.

Run as a script in a fresh process (logical devices must be configured before TensorFlow starts);
``tests/test_finetune_trainer.py`` does. Prints one JSON object: the largest weight difference
between the two runs, both runs' per-step losses, how far the weights moved, and whether the
mirrored run's predictions equal the one-device run's (row order included).
"""

import json
import sys

import numpy as np
import tensorflow as tf

LOGICAL_CPUS = 2
STEPS = 3


def main() -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * LOGICAL_CPUS)
    from test_finetune_trainer import learnable_windows, trainer_for

    from electra_tf.finetune.batches import Batches
    from electra_tf.finetune.tasks import TAGGING

    # Length-sorted batches of 8: each replica gets 4 windows with another number of scored words.
    train = Batches(learnable_windows(24, seed=0), batch_size=8, max_seq_length=32, seed=0)
    dev = Batches(learnable_windows(13, seed=1), batch_size=4, max_seq_length=32)  # last batch: 1 window

    def run(strategy: tf.distribute.Strategy) -> tuple[list[np.ndarray], list[float], np.ndarray]:
        with strategy.scope():
            trainer = trainer_for(TAGGING, 3, steps=STEPS, dropout=0.1)
        history = trainer.fit(train.dataset(), epochs=STEPS, steps_per_epoch=1, verbose=0, shuffle=False).history
        predictions = trainer.predict(dev.dataset(), verbose=0)["predictions"]
        return [v.numpy() for v in trainer.trainable_variables], history["loss"], predictions

    reference, reference_losses, reference_predictions = run(tf.distribute.OneDeviceStrategy("/cpu:0"))
    initial = [v.numpy() for v in trainer_for(TAGGING, 3, steps=STEPS, dropout=0.1).trainable_variables]
    mirrored = tf.distribute.MirroredStrategy([f"/cpu:{index}" for index in range(LOGICAL_CPUS)])
    assert mirrored.num_replicas_in_sync == LOGICAL_CPUS
    weights, losses, predictions = run(mirrored)
    json.dump(
        {
            "max_weight_difference": max(float(abs(a - b).max()) for a, b in zip(reference, weights, strict=True)),
            "max_weight_change": max(float(abs(a - b).max()) for a, b in zip(reference, initial, strict=True)),
            "one_device_losses": [float(x) for x in reference_losses],
            "mirrored_losses": [float(x) for x in losses],
            "same_predictions": bool(np.array_equal(reference_predictions, predictions)),
            "prediction_rows": len(predictions),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
