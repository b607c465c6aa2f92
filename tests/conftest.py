"""Fixtures and tiny models shared by several test modules (import the helpers with ``from conftest import ...``)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import export_reference as ref
import keras
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import DEFAULT_VOCAB_FILE, REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.config import PretrainingConfig
from electra_tf.interop.hf_export import export_model_dir
from electra_tf.model.masking import SpecialIds
from electra_tf.model.networks import NETWORKS
from electra_tf.model.pretrainer import ElectraPretrainer
from electra_tf.model.tf1_names import assign_tf1_weights
from electra_tf.model_dir import ModelDirectory
from electra_tf.optimization import create_optimizer, optimizer_for_precision
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
# A trained model directory, its export and a Google TF1 checkpoint (export and starting-point tests).
# ----------------------------------------------------------------------------------------------
EARLIER_STEP, NEWEST_STEP, PLANNED_STEPS = 20, 37, 100
EVAL_RESULTS = {
    "disc_accuracy": 0.9312,
    "disc_precision": 0.7021,
    "disc_recall": 0.4488,
    "disc_auc": 0.9034,
    "masked_lm_accuracy": 0.5123,
    "global_step": NEWEST_STEP,
    "num_eval_examples": 256,
}


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """A model directory as training leaves it, the live Keras model (newest weights) and its export."""

    model_dir: Path
    export_dir: Path
    vocab: Vocab
    config: PretrainingConfig
    model: ElectraPretrainer
    weights: dict[str, np.ndarray]
    earlier_weights: dict[str, np.ndarray]


def make_trained_run(root: Path, vocab_file: Path, do_lower_case: bool) -> TrainedRun:
    """Checkpoint random weights at steps 20 and 37 into ``root/model`` and export it to ``root/hf``."""
    vocab = Vocab.load(vocab_file)
    config = ref.tiny_config(
        len(vocab), do_lower_case=do_lower_case, strip_accents=do_lower_case, num_train_steps=PLANNED_STEPS
    )
    model = build_model(config, vocab)
    optimizer = create_optimizer(config)
    optimizer.build(model.trainable_variables)
    directory = ModelDirectory(root / "model")
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=optimizer), str(directory.checkpoints), max_to_keep=5
    )
    saved = {}
    for step in (EARLIER_STEP, NEWEST_STEP):
        saved[step] = ref.random_tf1_weights(config, seed=step)
        assign_tf1_weights(model, saved[step], NETWORKS)
        optimizer.iterations.assign(step)
        manager.save(checkpoint_number=step)
    directory.save_config(config)
    directory.save_vocab(vocab_file)
    directory.eval_results_file.write_text(json.dumps(EVAL_RESULTS), encoding="utf-8")
    directory.save_training_data({"data_dir": "/data/es_general", "vocab_sha256": vocab.sha256, "num_documents": 1234})
    export_dir = export_model_dir(directory.path, root / "hf")
    return TrainedRun(directory.path, export_dir, vocab, config, model, saved[NEWEST_STEP], saved[EARLIER_STEP])


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> TrainedRun:
    """A trained run with the default lower-cased vocab (built once per test module that asks for it)."""
    return make_trained_run(tmp_path_factory.mktemp("default"), DEFAULT_VOCAB_FILE, do_lower_case=True)


@pytest.fixture(scope="module")
def cased_run(tmp_path_factory, cased_vocab_file) -> TrainedRun:
    """A trained run with the cased vocab and BETO's special ids (built once per test module that asks for it)."""
    return make_trained_run(tmp_path_factory.mktemp("cased"), cased_vocab_file, do_lower_case=False)


def write_google_checkpoint(weights: dict[str, np.ndarray], directory: Path, step: int) -> None:
    """A TF1 checkpoint as Google's code writes it: TF1 names, Adam slots, global_step, an Electric variable."""
    rng = np.random.default_rng(7)
    values: dict[str, np.ndarray] = {
        "global_step": np.int64(step),
        "cloze_predictions/output_bias": np.ones(3, np.float32),
    }
    for name, value in weights.items():
        values[name] = value
        values[f"{name}/adam_m"] = rng.standard_normal(value.shape).astype(np.float32)
        values[f"{name}/adam_v"] = rng.random(value.shape).astype(np.float32)
    with tf.Graph().as_default():
        variables = {
            name: tf.compat.v1.Variable(value, name=f"v{index}") for index, (name, value) in enumerate(values.items())
        }
        saver = tf.compat.v1.train.Saver(var_list=variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(directory / "model.ckpt"), global_step=step, write_meta_graph=False)


@pytest.fixture(scope="module")
def google_checkpoint(default_run, tmp_path_factory) -> Path:
    """Google's TF1 checkpoint (step 1000) of the default run's newest weights, with its vocab.txt."""
    directory = tmp_path_factory.mktemp("google")
    write_google_checkpoint(default_run.weights, directory, step=1000)
    shutil.copyfile(default_run.model_dir / "vocab.txt", directory / "vocab.txt")
    return directory


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
