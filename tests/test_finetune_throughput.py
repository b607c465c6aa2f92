"""Fine-tuning's training throughput: the training steps' time only, per epoch (``TrainingStepTimer``), as a rate."""

import time
import types

import keras
import numpy as np
import pytest

from electra_tf.callbacks import TrainingStepTimer
from electra_tf.finetune import evaluation
from electra_tf.finetune.throughput import EXAMPLE, throughput_summary


class FakeClock:
    """Advances one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


class SlowEvaluation(keras.callbacks.Callback):
    """Stands for the dev evaluation after each epoch: a long time passes on the clock."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.clock.now += 1000.0


def test_only_the_training_batches_are_timed_and_evaluation_is_left_out():
    clock = FakeClock()
    timer = TrainingStepTimer(clock=clock)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    features, targets = np.zeros((24, 3), np.float32), np.zeros((24, 2), np.float32)
    model.fit(
        features,
        targets,
        batch_size=8,
        epochs=3,
        shuffle=False,
        verbose=0,
        callbacks=[timer, SlowEvaluation(clock)],
    )
    # Each batch reads the clock twice (start, end): one second per batch, three batches per epoch.
    assert timer.seconds_by_epoch == [3.0, 3.0, 3.0]
    summary = throughput_summary(24, timer.seconds_by_epoch)
    assert summary["examples_per_second"] == pytest.approx(24 / 3)
    assert summary["examples_per_second_after_first_epoch"] == pytest.approx(24 / 3)
    assert summary["example"] == EXAMPLE and summary["examples_per_epoch"] == 24


def test_the_rate_after_the_first_epoch_leaves_the_first_out():
    summary = throughput_summary(100, [10.0, 2.0, 3.0])
    assert summary["examples_per_second"] == pytest.approx(300 / 15)
    assert summary["examples_per_second_after_first_epoch"] == pytest.approx(200 / 5)
    assert throughput_summary(100, [4.0])["examples_per_second_after_first_epoch"] is None


class SlowDevEvaluator:
    """Stands for ``SplitEvaluator``: each dev evaluation takes ``seconds`` of real time."""

    splits = types.SimpleNamespace(metric="entity_f1")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def evaluate(self, split: str) -> dict[str, float]:
        time.sleep(self.seconds)
        return {"score": 0.5, "loss": 1.0}


def test_the_dev_evaluation_after_each_epoch_is_left_out_of_the_training_log(monkeypatch):
    """KeepBestEpoch hands each dev evaluation's seconds to the training logger's leave_out, so the
    logged examples/s and ETA count training steps only (a window spanning an epoch end included it)."""
    monkeypatch.setattr(evaluation, "network_weights", lambda network: {"weights": np.zeros(1)})
    left_out: list[float] = []
    keep_best = evaluation.KeepBestEpoch(SlowDevEvaluator(0.2), writer=None, took=left_out.append)
    keep_best.set_model(
        types.SimpleNamespace(optimizer=types.SimpleNamespace(iterations=keras.Variable(32)), network=None)
    )
    keep_best.on_epoch_end(0, logs={"loss": 0.7})
    keep_best.on_epoch_end(1, logs={"loss": 0.6})
    assert len(left_out) == 2 and all(0.2 <= seconds < 5 for seconds in left_out)
    assert [epoch["dev"]["score"] for epoch in keep_best.epochs] == [0.5, 0.5] and keep_best.best_epoch == 1
