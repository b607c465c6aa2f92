"""The fine-tuning step: masked loss, learning on a tiny model, and every word of a long sentence scored once."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import REPO_ROOT
from electra_tf.config import ModelConfig
from electra_tf.finetune.batches import Batches
from electra_tf.finetune.evaluation import EncodedSplit, predict_labels
from electra_tf.finetune.examples import Location, TaggedSentence
from electra_tf.finetune.model import build_finetuning_model
from electra_tf.finetune.pair_encoding import ClassificationInput
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING
from electra_tf.finetune.trainer import FinetuningTrainer, masked_cross_entropy
from electra_tf.finetune.windows import IGNORE, TaggingWindow, encode_tagging
from electra_tf.optimization import create_finetuning_optimizer

VOCAB_SIZE = 60
CLS, SEP, UNK = 4, 5, 3


def tiny_encoder(dropout: float = 0.0) -> ModelConfig:
    return ModelConfig(
        vocab_size=VOCAB_SIZE,
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )


def numpy_masked_loss(logits: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per example: Σ −log softmax(logits)[label] over positions whose label is not IGNORE, and their count."""
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    sums, counts = np.zeros(labels.shape[0]), np.zeros(labels.shape[0])
    for index in np.ndindex(labels.shape):
        if labels[index] != IGNORE:
            sums[index[0]] -= log_probs[index][labels[index]]
            counts[index[0]] += 1
    return sums, counts


def test_masked_loss_ignores_unscored_positions_like_a_numpy_restatement():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 9, 5)).astype(np.float32) * 3
    labels = rng.integers(0, 5, size=(4, 9)).astype(np.int32)
    labels[rng.random((4, 9)) < 0.4] = IGNORE
    labels[2] = IGNORE  # an example with nothing scored contributes nothing
    sums, counts, correct = (t.numpy() for t in masked_cross_entropy(tf.constant(logits), tf.constant(labels)))
    expected_sums, expected_counts = numpy_masked_loss(logits, labels)
    np.testing.assert_allclose(sums, expected_sums, rtol=1e-5)
    np.testing.assert_array_equal(counts, expected_counts)
    assert sums[2] == 0 and counts[2] == 0
    expected_correct = ((logits.argmax(-1) == labels) & (labels != IGNORE)).sum(-1)
    np.testing.assert_array_equal(correct, expected_correct)
    # Changing the logits at an ignored position changes nothing.
    changed = logits.copy()
    changed[labels == IGNORE] += 100.0
    np.testing.assert_allclose(masked_cross_entropy(tf.constant(changed), tf.constant(labels))[0].numpy(), sums, 1e-5)


def test_masked_loss_of_classification_scores_every_example():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(6, 3)).astype(np.float32)
    labels = rng.integers(0, 3, size=6).astype(np.int32)
    sums, counts, _ = (t.numpy() for t in masked_cross_entropy(tf.constant(logits), tf.constant(labels)))
    expected, _ = numpy_masked_loss(logits[:, None, :], labels[:, None])
    np.testing.assert_allclose(sums, expected, rtol=1e-5)
    np.testing.assert_array_equal(counts, np.ones(6))


def trainer_for(kind: str, num_labels: int, steps: int, jit_compile: bool = False, dropout: float = 0.0):
    keras.utils.set_random_seed(0)
    network = build_finetuning_model(tiny_encoder(dropout), kind, num_labels)
    optimizer = create_finetuning_optimizer(
        network,
        learning_rate=3e-3,
        num_train_steps=steps,
        warmup_proportion=0.1,
        layerwise_lr_decay=0.9,
        precision=keras.config.dtype_policy().name,
    )
    trainer = FinetuningTrainer(network, max_seq_length=64, seed=0, jit_compile=jit_compile)
    trainer.compile(optimizer=optimizer)
    return trainer


def learnable_windows(count: int, seed: int) -> list[TaggingWindow]:
    """Windows whose label at each scored position is the id's residue mod 3 (learnable from the id alone)."""
    rng = np.random.default_rng(seed)
    made = []
    for index in range(count):
        ids = [CLS, *rng.integers(6, VOCAB_SIZE, size=int(rng.integers(3, 30))).tolist(), SEP]
        scored = [position for position in range(1, len(ids) - 1) if rng.random() < 0.7]
        labels = [ids[position] % 3 if position in scored else IGNORE for position in range(len(ids))]
        made.append(TaggingWindow(index, ids, [0] * len(ids), labels, [IGNORE] * len(ids)))
    return made


def learnable_pairs(count: int, seed: int) -> list[ClassificationInput]:
    """Inputs whose label is the cue id that starts the text (7: label 0, 8: label 1)."""
    rng = np.random.default_rng(seed)
    made = []
    for _ in range(count):
        label = int(rng.integers(0, 2))
        ids = [CLS, 7 + label, *rng.integers(9, VOCAB_SIZE, size=int(rng.integers(2, 20))).tolist(), SEP]
        made.append(ClassificationInput(ids, [0] * len(ids), label, False))
    return made


def mean_loss(trainer: FinetuningTrainer, batches: Batches) -> float:
    return float(trainer.evaluate(batches.dataset(), verbose=0, return_dict=True)["loss"])


@pytest.mark.parametrize(
    ("kind", "num_labels", "jit_compile"),
    [(TAGGING, 3, False), pytest.param(TAGGING, 3, True, marks=pytest.mark.slow), (CLASSIFICATION, 2, False)],
    ids=["tagging", "tagging-xla", "classification"],
)
def test_a_few_steps_of_fine_tuning_lower_the_loss(kind, num_labels, jit_compile):
    make = learnable_windows if kind == TAGGING else learnable_pairs
    train = Batches(make(96, seed=0), batch_size=16, max_seq_length=32, seed=0)
    dev = Batches(make(32, seed=1), batch_size=16, max_seq_length=32)
    epochs = 8
    trainer = trainer_for(kind, num_labels, epochs * train.num_batches, jit_compile, dropout=0.1)
    before = mean_loss(trainer, dev)
    history = trainer.fit(
        train.dataset(epochs), epochs=epochs, steps_per_epoch=train.num_batches, verbose=0, shuffle=False
    )
    after = mean_loss(trainer, dev)
    assert after < 0.6 * before, (before, after, history.history["loss"])
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert int(trainer.optimizer.iterations.numpy()) == epochs * train.num_batches


@pytest.fixture
def mixed_float16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def test_mixed_float16_scales_the_loss_and_trains_with_float32_logits(mixed_float16):
    train = Batches(learnable_windows(48, seed=0), batch_size=16, max_seq_length=32, seed=0)
    trainer = trainer_for(TAGGING, 3, steps=3 * train.num_batches, dropout=0.1)
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    history = trainer.fit(train.dataset(3), epochs=3, steps_per_epoch=train.num_batches, verbose=0, shuffle=False)
    assert all(np.isfinite(history.history["loss"])) and history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["loss_scale"][-1] > 1.0
    assert trainer(next(train.arrays())).dtype == "float32"


def test_evaluate_reports_the_mean_loss_over_the_scored_positions_of_all_batches():
    trainer = trainer_for(TAGGING, 3, steps=10)
    inputs = learnable_windows(21, seed=3)
    batches = Batches(inputs, batch_size=4, max_seq_length=32)
    total, count = 0.0, 0.0
    for arrays in batches.arrays():
        logits = trainer(arrays).numpy()
        sums, counts = numpy_masked_loss(logits, arrays["label_ids"])
        total, count = total + sums.sum(), count + counts.sum()
    assert mean_loss(trainer, batches) == pytest.approx(total / count, rel=1e-5)


def test_every_word_of_a_sentence_longer_than_max_seq_length_is_predicted_once_at_its_first_piece():
    """End to end: windows → bucketed batches → predict → word labels, against the network run per window."""
    rng = np.random.default_rng(5)
    vocabulary = {f"w{index}": [6 + index % 50] + [6 + (index * 7) % 50] * (index % 3) for index in range(200)}
    words = [f"w{int(rng.integers(0, 200))}" for _ in range(150)]
    long = TaggedSentence(words, ["A"] * len(words), Location("fixture", 1))
    short = TaggedSentence(words[:5], ["B"] * 5, Location("fixture", 2))

    class Special:
        cls_id, sep_id, unk_id = CLS, SEP, UNK

    max_seq_length = 32
    encoding = encode_tagging([long, short], {"A": 0, "B": 1, "C": 2}, vocabulary.__getitem__, Special, max_seq_length)
    assert sum(window.sentence == 0 for window in encoding.windows) > 5  # the long sentence needs many windows
    trainer = trainer_for(TAGGING, 3, steps=1)
    trainer.max_seq_length = max_seq_length
    batches = Batches(encoding.windows, batch_size=3, max_seq_length=max_seq_length)
    split = EncodedSplit([long, short], encoding.windows)
    predicted, _ = predict_labels(trainer, batches, split, ["A", "B", "C"])
    assert [len(labels) for labels in predicted] == [150, 5]

    expected = [[None] * 150, [None] * 5]
    for window in encoding.windows:
        ids = np.array([window.input_ids], np.int32)
        features = {"input_ids": ids, "input_mask": np.ones_like(ids), "segment_ids": np.zeros_like(ids)}
        best = trainer(features).numpy()[0].argmax(-1)
        for position, word in enumerate(window.word_ids):
            if word != IGNORE:
                assert expected[window.sentence][word] is None  # scored once
                expected[window.sentence][word] = "ABC"[best[position]]
    assert predicted == expected


def test_two_replicas_make_the_one_device_update_and_predictions():
    """MirroredStrategy over 2 logical CPUs (dropout on): the same weights, losses and predictions."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / "finetune_mirrored.py")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=Path(__file__).parent,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(Path(__file__).parent)])},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["max_weight_change"] > 1e-3  # the steps moved the weights
    assert report["max_weight_difference"] < 1e-5, report
    np.testing.assert_allclose(report["mirrored_losses"], report["one_device_losses"], rtol=1e-5)
    assert report["same_predictions"] and report["prediction_rows"] == 13
