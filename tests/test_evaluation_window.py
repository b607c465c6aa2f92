"""An evaluation during training leaves the logger's training-metric window whole.

The logger reports each window's metrics and resets them; an evaluation in the middle of a window
(``--eval-every-steps`` not a multiple of ``--log-every-steps``) shares the metric objects and
must put back the state it found, on one device and under a tf.distribute strategy, where each
replica holds its own SUM-aggregated copy of every metric variable; and its time must not count
in the window's throughput.
"""

import types

import pytest
import tensorflow as tf
from conftest import run_json_script, tiny
from evaluation_window import logged_window, logged_windows

from electra_tf import callbacks
from electra_tf.model.metrics import EVALUATED_METRICS, GRAD_NORM, LEARNING_RATE
from electra_tf.training import training_callbacks

WINDOW_METRICS = (*EVALUATED_METRICS, GRAD_NORM, LEARNING_RATE)
"""What the logged window must repeat exactly (throughput is timing, not the window's metrics)."""


def _check_windows(report: dict) -> None:
    without, with_eval = report["without_eval"], report["with_eval"]
    assert (without["evaluations"], with_eval["evaluations"]) == (0, 1)
    assert set(WINDOW_METRICS) <= set(without["window"])
    expected = {name: without["window"][name] for name in WINDOW_METRICS}
    logged = {name: with_eval["window"][name] for name in WINDOW_METRICS}
    assert logged == pytest.approx(expected, rel=1e-6)


def test_an_evaluation_leaves_the_logged_training_window_whole_on_one_device():
    _check_windows(logged_windows(tf.distribute.OneDeviceStrategy("/cpu:0")))


@pytest.mark.slow
def test_an_evaluation_leaves_the_logged_training_window_whole_under_mirrored_strategy():
    """2 logical CPUs: each replica's copy of the metric variables is set aside and put back."""
    report = run_json_script("evaluation_window.py")
    copies = report["replica_copies"]
    assert copies["before"] == [1.0, 2.0, 10.0, 10.0]  # numerator and denominator, one copy per replica
    assert copies["after"] == copies["before"]
    _check_windows(report["windows"])


def test_the_time_an_evaluation_takes_is_left_out_of_the_window_throughput(monkeypatch, tmp_path):
    """A fake clock: each step takes 1 s, the evaluation at step 3 takes 100 s; the window of steps
    1-4 reports 4 steps' examples over 4 s."""
    clock = [0.0]
    monkeypatch.setattr(callbacks.time, "perf_counter", lambda: clock[0])

    def evaluate() -> dict:
        clock[0] += 100.0
        return {}

    # What the callbacks use of a model: its step counter and the metric reset.
    model = types.SimpleNamespace(
        optimizer=types.SimpleNamespace(iterations=tf.Variable(0)), reset_metrics=lambda: None
    )
    config = tiny(train_batch_size=8, log_every_steps=4, eval_every_steps=3).replace(num_train_steps=4)
    writer = tf.summary.create_file_writer(str(tmp_path))
    run = training_callbacks(config, None, writer, 1, None, None, evaluate)
    for callback in run:
        callback.set_model(model)
        callback.on_train_begin()
    for step in range(1, 5):
        clock[0] += 1.0
        model.optimizer.iterations.assign(step)
        for callback in run:
            callback.on_train_batch_end(step - 1, {"loss": 1.0})
    writer.close()
    assert clock[0] == 104.0  # the evaluation ran
    logged = logged_window(tmp_path)
    assert logged["examples_per_second"] == pytest.approx(4 * 8 / 4.0)
