"""bench/probe_layers.py: layer-wise ridge probes of exported discriminators, on a learnable fixture."""

from __future__ import annotations

import json
import sys

import pytest
from finetune_fixtures import write_conllu, write_pretrained_model, write_vocab

from electra_tf import REPO_ROOT
from electra_tf.finetune.conllu import read_conllu

sys.path.insert(0, str(REPO_ROOT / "bench"))
import probe_layers


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("probe_layers")
    return write_pretrained_model(root, write_vocab(root / "vocab.txt"), export=True)


def test_every_layer_of_every_model_is_probed_and_word_identity_is_recovered(export_dir, tmp_path):
    data = tmp_path / "ud"
    data.mkdir()
    write_conllu(data / probe_layers.TRAIN_FILE, 60, seed=0)
    write_conllu(data / probe_layers.TEST_FILE, 30, seed=1)
    output = tmp_path / "layers.json"
    models = ["--random-init", str(export_dir), "--model", f"export={export_dir}"]
    results = probe_layers.main(["--data-dir", str(data), *models, "--output", str(output)])
    assert list(results) == ["random init", "export"] and json.loads(output.read_text()) == results
    tags = [tag for sentence in read_conllu(data / probe_layers.TEST_FILE) for tag in sentence.labels]
    majority = max(tags.count(tag) for tag in set(tags)) / len(tags)
    for result in results.values():
        assert len(result["layer_accuracy"]) == 3  # the embeddings and 2 layers
        # Each fixture word has one tag and sentences are random word draws, so the features of a word's first
        # piece predict the tags far above the majority class only if each is paired with its own word's tag.
        assert majority < 0.35 and min(result["layer_accuracy"]) > 0.7
        assert result["top3_dims_mean_abs"] >= result["median_dim_mean_abs"] > 0
    assert results["export"]["test_words"] == results["random init"]["test_words"] > 100


def test_a_model_must_be_named(tmp_path, capsys):
    with pytest.raises(SystemExit):
        probe_layers.main(["--data-dir", str(tmp_path)])
    assert "name at least one --model" in capsys.readouterr().err
