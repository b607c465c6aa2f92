"""Every file the project writes gets the mode ``open()`` would give it: 0666 less the user's umask.

Not a temporary file's private 0600 (colleagues on a shared cluster could not read an exported
``model.safetensors``) and not a fixed 0644 (a group-sharing umask 002 asks for 0664). Checked under
umask 022 and 002 for an export, a dataset build, a model directory's own files, a checkpoint, a
trained vocab and the tokenizer's rules cache.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import export_reference as ref
import numpy as np
import pytest
import tensorflow as tf

from electra_tf import DEFAULT_VOCAB_FILE, SAMPLE_CORPUS_DIR
from electra_tf.atomic_io import ordinary_file_mode, write_json_atomically
from electra_tf.config import PretrainingConfig
from electra_tf.data.builder import BuildOptions, build_dataset
from electra_tf.interop.hf_export import export_weights
from electra_tf.model_dir import ModelDirectory
from electra_tf.tokenization import CharRules, Vocab, _store_rules
from electra_tf.vocab_training import train_vocab


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request) -> int:
    """Run the test under this umask (process-wide, restored after)."""
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def modes_under(folder: Path) -> dict[str, str]:
    """``{relative path: octal mode}`` of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): oct(stat.S_IMODE(path.stat().st_mode))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def assert_ordinary(folder: Path, umask: int, expected_files: set[str]) -> None:
    modes = modes_under(folder)
    assert expected_files <= set(modes), sorted(modes)
    assert {name: mode for name, mode in modes.items() if mode != oct(0o666 & ~umask)} == {}


def test_ordinary_file_mode_follows_the_umask(umask):
    assert ordinary_file_mode() == 0o666 & ~umask


def test_an_export_is_readable_like_any_file(tmp_path, umask):
    vocab = Vocab.load(DEFAULT_VOCAB_FILE)
    config = ref.tiny_config(len(vocab))
    export_weights(ref.random_tf1_weights(config), config, vocab, tmp_path / "hf")
    network_files = {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "README.md"}
    expected = {f"{network}/{name}" for network in ("discriminator", "generator") for name in network_files}
    assert_ordinary(tmp_path / "hf", umask, expected)


def test_a_dataset_is_readable_like_any_file(tmp_path, umask):
    options = BuildOptions(
        corpus_dir=SAMPLE_CORPUS_DIR,
        output_dir=tmp_path / "data",
        vocab_file=DEFAULT_VOCAB_FILE,
        file_patterns=("cultura_y_ocio.txt",),
        eval_fraction=0.2,
    )
    info = build_dataset(options)
    shards = {str(Path(shard.path).relative_to(tmp_path / "data")) for shard in info.train_shards + info.eval_shards}
    assert any(name.startswith("eval/") for name in shards)
    assert_ordinary(tmp_path / "data", umask, {"dataset_info.json", "vocab.txt", *shards})


def test_a_model_directory_a_vocab_and_the_rules_cache_are_readable_like_any_file(tmp_path, umask):
    directory = ModelDirectory(tmp_path / "model")
    directory.save_config(PretrainingConfig.from_size("small"))
    directory.save_vocab(DEFAULT_VOCAB_FILE)
    directory.save_training_data({"data_dir": "data"})
    write_json_atomically(directory.eval_results_file, {"disc_auc": 0.9})
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(step=tf.Variable(1)), str(directory.checkpoints), 2)
    manager.save()
    train_vocab([SAMPLE_CORPUS_DIR / "salud_y_clinica.txt"], tmp_path / "model" / "trained.txt", vocab_size=300)
    rules = CharRules(np.zeros(1, np.int32), np.zeros(1, np.int32), "", frozenset(), frozenset())
    _store_rules(tmp_path / "model" / "cache" / "rules.npz", rules)
    expected = {"config.json", "vocab.txt", "training_data.json", "eval_results.json", "trained.txt"}
    assert_ordinary(tmp_path / "model", umask, {*expected, "checkpoints/checkpoint", "cache/rules.npz"})
