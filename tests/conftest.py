"""Fixtures and tiny models shared by several test modules (import the helpers with ``from conftest import ...``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import export_reference as ref
import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.config import PretrainingConfig
from electra_tf.model.masking import SpecialIds
from electra_tf.model.pretrainer import ElectraPretrainer
from electra_tf.optimization import optimizer_for_precision
from electra_tf.tokenization import SPECIAL_TOKENS, Vocab
from electra_tf.vocab_training import find_corpus_files, train_vocab

BETO_LAYOUT = ("[MASK]", "[PAD]", "[EOS]", "[UNK]", "[CLS]", "[SEP]")
"""The first ids of BETO's cased vocab: [MASK] = 0 and [PAD] = 1, not BERT's [PAD] = 0."""


@pytest.fixture(scope="session")
def cased_vocab_file(tmp_path_factory) -> Path:
    """A cased Spanish WordPiece vocab (3,000 entries, learnt from the sample corpus in about a second)
    with BETO's special-token ids, so tests of case, accents and unusual special ids need no
    outside vocab. Its accented and capitalised pieces ("##ción", "El") are ones the default vocab
    lacks."""
    folder = tmp_path_factory.mktemp("cased_vocab")
    trained = train_vocab(
        find_corpus_files(SAMPLE_CORPUS_DIR), folder / "trained.txt", vocab_size=3000, do_lower_case=False
    ).output
    pieces = [token for token in trained.read_text(encoding="utf-8").split("\n") if token]
    assert set(SPECIAL_TOKENS) <= set(pieces)
    path = folder / "vocab.txt"
    rest = [token for token in pieces if token not in BETO_LAYOUT]
    path.write_text("".join(f"{token}\n" for token in [*BETO_LAYOUT, *rest]), encoding="utf-8")
    return path


# ----------------------------------------------------------------------------------------------
# Tiny pretrainers: seconds to build and train on a CPU.
# ----------------------------------------------------------------------------------------------
VOCAB_SIZE = 120
SPECIAL = SpecialIds(cls_id=2, sep_id=3, mask_id=4)


def tiny(**overrides) -> PretrainingConfig:
    """A two-layer model (E=24, H=32, generator H=16) with dropout off unless overridden."""
    dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    config = ref.tiny_config(VOCAB_SIZE, num_warmup_steps=0, learning_rate=1e-3, num_train_steps=1000, **overrides)
    return config.replace(model_hparam_overrides={**config.model_hparam_overrides, **dropout})


def batch(size=8, length=16, seed=0) -> dict[str, np.ndarray]:
    """Random ids between [CLS] and [SEP], with some padding and a second segment in every row."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, VOCAB_SIZE, size=(size, length)).astype(np.int32)
    mask = np.ones((size, length), np.int32)
    segments = np.zeros((size, length), np.int32)
    for row in range(size):
        real = length - row % 4  # some padding
        ids[row, real:], mask[row, real:] = 0, 0
        ids[row, 0], ids[row, real - 1] = SPECIAL.cls_id, SPECIAL.sep_id
        segments[row, real // 2 : real] = 1
    return {"input_ids": ids, "input_mask": mask, "segment_ids": segments}


def compiled(config: PretrainingConfig, seed=0) -> ElectraPretrainer:
    """:func:`tiny`'s model compiled with the optimizer ``config`` trains with, weights from ``seed``."""
    keras.utils.set_random_seed(seed)
    model = ElectraPretrainer(config, SPECIAL)
    model.compile(optimizer=optimizer_for_precision(config))
    return model


def build_model(config: PretrainingConfig, vocab: Vocab) -> ElectraPretrainer:
    """An uncompiled pretrainer of ``config`` with ``vocab``'s special ids."""
    return ElectraPretrainer(config, SpecialIds.from_vocab(vocab))


# ----------------------------------------------------------------------------------------------
# MirroredStrategy on a CPU: scripts run in a fresh process, split the CPU before TensorFlow starts.
# ----------------------------------------------------------------------------------------------
LOGICAL_CPUS = 2


def configure_logical_cpus() -> list[str]:
    """Split the CPU into :data:`LOGICAL_CPUS` logical devices (before TensorFlow initialises); their names."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * LOGICAL_CPUS)
    return [f"/cpu:{i}" for i in range(LOGICAL_CPUS)]


def run_json_script(name: str) -> dict:
    """Run ``tests/{name}`` in a fresh Python process and return the JSON object it prints."""
    result = subprocess.run(
        [sys.executable, str(Path(__file__).parent / name)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)
