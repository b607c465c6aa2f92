"""Where fine-tuning starts: every source gives the discriminator's encoder, its weights, vocab and casing.

The sources are made here: a tiny electra_tf model directory (checkpointed as training does, and
its Hugging Face export; see conftest.make_trained_run), a Google-style TF1 checkpoint of
the same weights, and models saved by ``transformers`` itself with a cased tokenizer. Each must give
the same encoder weights as the model directory (or as the torch model), and the casing its files
record; every wrong input ends in one :class:`UserError`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import export_reference as ref
import numpy as np
import pytest
import torch
from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining, ElectraModel, ElectraTokenizer

from electra_tf import DEFAULT_VOCAB_FILE
from electra_tf.errors import UserError
from electra_tf.finetune.starting_point import load_starting_point
from electra_tf.model.networks import encoder_variable_shapes
from electra_tf.tokenization import Vocab

HEADS = {"model_hparam_overrides": {"num_attention_heads": 4}}
"""The tiny model's head count, which variable shapes cannot tell (Google's rule would give 32 // 64 → 1)."""


def assert_encoder_weights(point, expected: dict[str, np.ndarray]) -> None:
    """The point holds exactly the embeddings and discriminator encoder, equal to ``expected``."""
    names = set(encoder_variable_shapes(point.encoder))
    assert set(point.weights) == names
    assert not any(name.startswith("discriminator_predictions/") for name in point.weights)
    for name in names:
        np.testing.assert_array_equal(point.weights[name], expected[name], err_msg=name)


# ------------------------------------------------------------------------------------------------
# electra_tf model directories and their Hugging Face exports.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_name", ["default_run", "cased_run"])
def test_model_directory_gives_its_newest_checkpoint_vocab_and_casing(request, run_name):
    run = request.getfixturevalue(run_name)
    point = load_starting_point(run.model_dir)
    assert point.encoder == run.config.discriminator_config()
    assert_encoder_weights(point, run.weights)
    assert point.vocab_file == run.model_dir / "vocab.txt"
    lower = run_name == "default_run"
    assert (point.do_lower_case, point.strip_accents) == (lower, lower)
    assert "step 37" in point.description


def test_a_checkpoint_prefix_of_a_model_directory_gives_that_checkpoint(default_run):
    point = load_starting_point(default_run.model_dir / "checkpoints" / "ckpt-20")
    assert_encoder_weights(point, default_run.earlier_weights)


@pytest.mark.parametrize("run_name", ["default_run", "cased_run"])
@pytest.mark.parametrize("folder", ["", "discriminator"])
def test_this_projects_export_gives_the_same_starting_point(request, run_name, folder):
    run = request.getfixturevalue(run_name)
    point = load_starting_point(run.export_dir / folder if folder else run.export_dir)
    assert point.encoder == run.config.discriminator_config()
    assert_encoder_weights(point, run.weights)
    assert Vocab.load(point.vocab_file).tokens == run.vocab.tokens
    lower = run_name == "default_run"
    assert (point.do_lower_case, point.strip_accents) == (lower, lower)


def test_a_casing_flag_that_contradicts_the_source_is_refused(cased_run):
    with pytest.raises(UserError, match="do_lower_case=True contradicts"):
        load_starting_point(cased_run.export_dir, do_lower_case=True)
    assert not load_starting_point(cased_run.model_dir, do_lower_case=False).do_lower_case


def test_a_generator_directory_is_refused(default_run):
    with pytest.raises(UserError, match="holds a generator"):
        load_starting_point(default_run.export_dir / "generator")


def test_a_vocab_file_other_than_the_sources_is_refused(default_run, cased_vocab_file):
    with pytest.raises(UserError, match="differs from"):
        load_starting_point(default_run.export_dir, vocab_file=cased_vocab_file)


# ------------------------------------------------------------------------------------------------
# Google TF1 checkpoints.
# ------------------------------------------------------------------------------------------------


def test_google_checkpoint_architecture_comes_from_its_shapes(default_run, google_checkpoint):
    point = load_starting_point(google_checkpoint, model_size="small", hparams=HEADS, do_lower_case=True)
    assert point.encoder == default_run.config.discriminator_config()
    assert_encoder_weights(point, default_run.weights)
    assert point.vocab_file == google_checkpoint / "vocab.txt"
    assert (point.do_lower_case, point.strip_accents) == (True, True)
    prefix = load_starting_point(google_checkpoint / "model.ckpt-1000", hparams=HEADS, do_lower_case=True)
    assert prefix.encoder == point.encoder


def test_google_checkpoint_needs_the_casing_and_refuses_contradicting_hparams(google_checkpoint):
    with pytest.raises(UserError, match="does not record whether its vocab is lower-cased"):
        load_starting_point(google_checkpoint, hparams=HEADS)
    with pytest.raises(UserError, match=r"hparams set hidden_size=64, but .* has hidden_size=32"):
        load_starting_point(
            google_checkpoint, hparams={"model_hparam_overrides": {"hidden_size": 64}}, do_lower_case=True
        )


def test_google_checkpoint_without_a_vocab_needs_one_of_its_size(default_run, google_checkpoint, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(google_checkpoint, bare)
    (bare / "vocab.txt").unlink()
    with pytest.raises(UserError, match=r"comes without a vocab\.txt"):
        load_starting_point(bare, hparams=HEADS, do_lower_case=True)
    small_vocab = tmp_path / "vocab.txt"
    small_vocab.write_text("".join(f"{token}\n" for token in default_run.vocab.tokens[:50]), encoding="utf-8")
    with pytest.raises(UserError, match="has 50 tokens but"):
        load_starting_point(bare, vocab_file=small_vocab, hparams=HEADS, do_lower_case=True)
    point = load_starting_point(bare, vocab_file=default_run.model_dir / "vocab.txt", hparams=HEADS, do_lower_case=True)
    assert point.vocab_file == default_run.model_dir / "vocab.txt"


# ------------------------------------------------------------------------------------------------
# Models saved by transformers itself.
# ------------------------------------------------------------------------------------------------


def save_transformers_model(model_class, directory: Path, vocab_file: Path, do_lower_case: bool) -> torch.nn.Module:
    """A tiny randomly initialised ELECTRA model and tokenizer, saved by transformers, plus vocab.txt as on the Hub."""
    vocab = Vocab.load(vocab_file)
    config = ElectraConfig(
        vocab_size=len(vocab), embedding_size=ref.EMBEDDING_SIZE, pad_token_id=vocab.pad_id, **ref.TINY_ENCODER
    )
    torch.manual_seed(0)
    model = model_class(config)
    model.save_pretrained(directory)
    ElectraTokenizer(str(vocab_file), do_lower_case=do_lower_case).save_pretrained(directory)
    shutil.copyfile(vocab_file, directory / "vocab.txt")  # transformers 5 saves only tokenizer.json
    return model


def torch_encoder_weights(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """A few TF1-named weights read from the torch model, kernels transposed."""
    state = {name.removeprefix("electra."): value.detach().numpy() for name, value in model.state_dict().items()}
    return {
        "electra/embeddings/word_embeddings": state["embeddings.word_embeddings.weight"],
        "electra/embeddings/LayerNorm/gamma": state["embeddings.LayerNorm.weight"],
        "electra/embeddings_project/kernel": state["embeddings_project.weight"].T,
        "electra/encoder/layer_1/attention/self/query/kernel": state["encoder.layer.1.attention.self.query.weight"].T,
        "electra/encoder/layer_1/output/LayerNorm/beta": state["encoder.layer.1.output.LayerNorm.bias"],
    }


@pytest.mark.parametrize("model_class", [ElectraForPreTraining, ElectraModel])
def test_a_transformers_model_reads_its_casing_from_tokenizer_config(tmp_path, cased_vocab_file, model_class):
    model = save_transformers_model(model_class, tmp_path, cased_vocab_file, do_lower_case=False)
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["do_lower_case"] is False
    point = load_starting_point(tmp_path)
    assert (point.do_lower_case, point.strip_accents) == (False, False)
    assert point.encoder.num_attention_heads == 4 and point.encoder.vocab_size == len(Vocab.load(cased_vocab_file))
    for name, value in torch_encoder_weights(model).items():
        np.testing.assert_array_equal(point.weights[name], value, err_msg=name)
    assert set(point.weights) == set(encoder_variable_shapes(point.encoder))


def test_an_uncased_transformers_model_is_lower_cased(tmp_path):
    save_transformers_model(ElectraForPreTraining, tmp_path, DEFAULT_VOCAB_FILE, do_lower_case=True)
    point = load_starting_point(tmp_path)
    assert (point.do_lower_case, point.strip_accents) == (True, True)


def test_a_transformers_model_without_vocab_txt_takes_the_vocab_file(tmp_path, cased_vocab_file):
    save_transformers_model(ElectraForPreTraining, tmp_path, cased_vocab_file, do_lower_case=False)
    (tmp_path / "vocab.txt").unlink()
    with pytest.raises(UserError, match="--vocab-file"):
        load_starting_point(tmp_path)
    assert load_starting_point(tmp_path, vocab_file=cased_vocab_file).vocab_file == cased_vocab_file


def test_a_transformers_generator_is_refused(tmp_path):
    save_transformers_model(ElectraForMaskedLM, tmp_path, DEFAULT_VOCAB_FILE, do_lower_case=True)
    with pytest.raises(UserError, match="holds a generator"):
        load_starting_point(tmp_path)


def test_a_directory_with_only_pytorch_model_bin_is_refused(tmp_path):
    save_transformers_model(ElectraForPreTraining, tmp_path, DEFAULT_VOCAB_FILE, do_lower_case=True)
    (tmp_path / "model.safetensors").rename(tmp_path / "pytorch_model.bin")
    with pytest.raises(UserError, match=r"has no model\.safetensors"):
        load_starting_point(tmp_path)


def test_tokenizer_files_that_do_not_state_the_casing_are_refused(tmp_path):
    save_transformers_model(ElectraForPreTraining, tmp_path, DEFAULT_VOCAB_FILE, do_lower_case=True)
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "tokenizer_config.json").write_text('{"tokenizer_class": "ElectraTokenizer"}', encoding="utf-8")
    with pytest.raises(UserError, match="does not state whether its vocab is lower-cased"):
        load_starting_point(tmp_path)


# ------------------------------------------------------------------------------------------------
# Random init and paths that are no starting point.
# ------------------------------------------------------------------------------------------------


def test_random_init_has_the_presets_architecture_for_the_vocab(cased_vocab_file):
    point = load_starting_point(
        None,
        vocab_file=cased_vocab_file,
        model_size="small",
        hparams={"model_hparam_overrides": {"num_hidden_layers": 3}, "learning_rate": 1e-4},
        do_lower_case=False,
    )
    assert point.weights is None
    assert point.encoder.vocab_size == len(Vocab.load(cased_vocab_file))
    assert (point.encoder.hidden_size, point.encoder.num_hidden_layers, point.encoder.num_attention_heads) == (
        256,
        3,
        4,
    )
    assert (point.do_lower_case, point.strip_accents) == (False, False)
    with pytest.raises(UserError, match="needs a vocab file and a model size"):
        load_starting_point(None, model_size="small", do_lower_case=True)


def test_without_weights_keeps_architecture_vocab_and_casing(cased_run):
    point = load_starting_point(cased_run.model_dir)
    fresh = point.without_weights()
    assert fresh.weights is None
    assert (fresh.encoder, fresh.vocab_file, fresh.do_lower_case, fresh.strip_accents) == (
        point.encoder,
        point.vocab_file,
        point.do_lower_case,
        point.strip_accents,
    )
    assert point.description in fresh.description


def test_paths_that_are_no_starting_point_are_refused(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_starting_point(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    with pytest.raises(UserError, match="neither an electra_tf model directory"):
        load_starting_point(tmp_path)
    with pytest.raises(UserError, match="not found"):
        load_starting_point(tmp_path / "notes.txt")
    (tmp_path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    with pytest.raises(UserError, match="not an ELECTRA model"):
        load_starting_point(tmp_path)


def test_a_corrupt_tf_checkpoint_is_refused(google_checkpoint, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(google_checkpoint, broken)
    data = next(broken.glob("*.data-*"))
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(UserError, match="corrupt"):
        load_starting_point(broken, hparams=HEADS, do_lower_case=True)
