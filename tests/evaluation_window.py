"""Train the tiny pretrainer 4 steps with the run's callbacks, with and without an evaluation at step 3,
and read back the training window the logger wrote at step 4.

:func:`logged_windows` runs both on a given strategy (``tests/test_evaluation_window.py`` calls it on
one device). Run as a script, in a fresh process because the logical devices must be configured
before TensorFlow initialises, it does so under MirroredStrategy over 2 logical CPUs and prints
the result as one JSON object, with a check that each replica's own copy of a metric's variables
is put back (:func:`replica_copies_round_trip`).
"""

import json
import sys
import tempfile
from pathlib import Path

import tensorflow as tf
from conftest import LOGICAL_CPUS, configure_logical_cpus

GLOBAL_BATCH = 8
STEPS = 4
EVAL_AT = 3
EVAL_STEPS = 2


def _dataset(seeds: range) -> tf.data.Dataset:
    from conftest import batch

    batches = [batch(size=GLOBAL_BATCH, seed=seed) for seed in seeds]
    columns = {name: tf.concat([b[name] for b in batches], axis=0) for name in batches[0]}
    return tf.data.Dataset.from_tensor_slices(columns).batch(GLOBAL_BATCH, drop_remainder=True)


def logged_window(train_dir: Path) -> dict[str, float]:
    """The scalars of the one window the logger wrote (at step ``STEPS``)."""
    values = {}
    for event_file in train_dir.glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(event_file)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    assert event.step == STEPS, event.step
                    values[value.tag] = float(tf.make_ndarray(value.tensor))
    return values


def logged_windows(strategy: tf.distribute.Strategy) -> dict[str, dict]:
    """The window logged at step ``STEPS`` and the number of evaluations, for a run ``without_eval``
    and one ``with_eval`` from the same weights under ``strategy``.

    One model serves both runs (its weights and optimizer put back from a checkpoint in between), so
    its training step is traced once. A second MirroredStrategy over the same devices would not do:
    in one process it reuses the collective instance keys of the first one's functions, and an
    evaluation whose all-reduce meets a key first used with another shape fails.
    """
    from conftest import compiled, tiny

    from electra_tf.training import evaluate_aside, training_callbacks

    config = tiny(
        train_batch_size=GLOBAL_BATCH, eval_batch_size=GLOBAL_BATCH, log_every_steps=STEPS, jit_compile=False
    ).replace(num_train_steps=STEPS)
    with strategy.scope():
        model = compiled(config, seed=3)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    held_out = _dataset(range(100, 100 + EVAL_STEPS))
    evaluations: list[dict] = []

    def evaluator() -> dict:
        evaluations.append(evaluate_aside(model, held_out, EVAL_STEPS))
        return evaluations[-1]

    report = {}
    with tempfile.TemporaryDirectory() as scratch:
        start = checkpoint.write(str(Path(scratch) / "start"))
        for run, eval_every_steps in (("without_eval", 0), ("with_eval", EVAL_AT)):
            checkpoint.read(start).assert_existing_objects_matched()
            evaluations.clear()
            folder = Path(scratch) / run
            writer = tf.summary.create_file_writer(str(folder))
            run_config = config.replace(eval_every_steps=eval_every_steps)
            callbacks = training_callbacks(run_config, None, writer, 1, None, None, evaluator)
            model.fit(_dataset(range(STEPS)), epochs=1, steps_per_epoch=STEPS, callbacks=callbacks, verbose=0)
            writer.close()
            report[run] = {"window": logged_window(folder), "evaluations": len(evaluations)}
    return report


def replica_copies_round_trip(strategy: tf.distribute.Strategy) -> dict[str, list[float]]:
    """Each replica's copy of a metric's variables, ``before`` and ``after`` a reset inside
    :func:`~electra_tf.model.metrics.state_set_aside`; the replicas' copies are made to differ
    (the step keeps them equal), so only restoring each copy as it was brings them all back."""
    from electra_tf.model.metrics import RatioMetric, state_set_aside

    with strategy.scope():
        metric = RatioMetric("probe")

    def update() -> None:
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        metric.update_state(tf.cast(replica + 1, tf.float32), 10.0)

    def copies() -> list[float]:
        return [
            float(copy.numpy())
            for variable in metric.variables
            for copy in strategy.experimental_local_results(variable.value)
        ]

    strategy.run(update)
    before = copies()
    with state_set_aside([metric], strategy):
        metric.reset_state()
    return {"before": before, "after": copies()}


def main() -> None:
    devices = configure_logical_cpus()
    import keras

    keras.mixed_precision.set_dtype_policy("float32")
    strategy = tf.distribute.MirroredStrategy(devices)
    assert strategy.num_replicas_in_sync == LOGICAL_CPUS
    report = {"replica_copies": replica_copies_round_trip(strategy), "windows": logged_windows(strategy)}
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
