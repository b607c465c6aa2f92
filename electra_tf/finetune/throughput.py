"""Fine-tuning's training throughput: model inputs per second of the training steps alone.

Both electra_tf's fine-tuning (``callbacks.TrainingStepTimer`` times its steps) and the Hugging
Face PyTorch peer (bench/hf_finetuning.py) report it through :func:`throughput_summary`, so the two
rates compare: the dev evaluation after each epoch and the data preparation before training are
left out. An example is one model input (:data:`EXAMPLE`): for tagging a window of a sentence (a
sentence longer than ``max_seq_length`` makes several), for classification a sentence or pair. The
first epoch pays for tracing (and XLA compilation with ``jit_compile``) of each bucket length, hence
the rate of the later epochs beside the overall one. No TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

EXAMPLE = "one model input: a sentence window for tagging, a sentence (pair) for classification"
"""What one example of the throughput is (results say so beside the figures)."""


def throughput_summary(inputs_per_epoch: int, seconds_by_epoch: Sequence[float]) -> dict[str, Any]:
    """The training rate over all epochs and over the epochs after the first (None with one epoch).

    ``inputs_per_epoch`` is the number of model inputs one epoch trains on (each exactly once),
    ``seconds_by_epoch`` the time of each epoch's training steps.
    """
    later = seconds_by_epoch[1:]
    return {
        "example": EXAMPLE,
        "examples_per_epoch": inputs_per_epoch,
        "train_seconds_by_epoch": list(seconds_by_epoch),
        "examples_per_second": inputs_per_epoch * len(seconds_by_epoch) / sum(seconds_by_epoch),
        "examples_per_second_after_first_epoch": inputs_per_epoch * len(later) / sum(later) if later else None,
    }
