"""An evaluation during training leaves the logger's training-metric window whole.

The logger reports each window's metrics and resets them; an evaluation in the middle of a window
(``--eval-every-steps`` not a multiple of ``--log-every-steps``) shares the metric objects and
must put back the state it found, on one device and under a tf.distribute strategy, where each
replica holds its own SUM-aggregated copy of every metric variable.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
from evaluation_window import logged_windows

from electra_tf import REPO_ROOT
from electra_tf.model.metrics import EVALUATED_METRICS, GRAD_NORM, LEARNING_RATE

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


def test_an_evaluation_leaves_the_logged_training_window_whole_under_mirrored_strategy():
    """2 logical CPUs: each replica's copy of the metric variables is set aside and put back."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "evaluation_window.py")],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    copies = report["replica_copies"]
    assert copies["before"] == [1.0, 2.0, 10.0, 10.0]  # numerator and denominator, one copy per replica
    assert copies["after"] == copies["before"]
    _check_windows(report["windows"])
