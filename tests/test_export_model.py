"""Export of a trained model directory to Hugging Face, and import back for continued pretraining.

A tiny ``ElectraPretrainer`` (embedding width 24, hidden sizes 32 and 16, so both projections
exist) gets random weights and is checkpointed into a model directory as training does (two
checkpoints, config.json, vocab.txt, eval and data summaries), for the default lower-cased vocab
and for a cased vocab with BETO's special-token ids ([PAD] = 1). The exported models must load in
``transformers`` with every weight in place and compute the Keras model's logits; the exported
tokenizer must give the project tokenizer's ids on real Spanish text (the sample corpus); the model
cards' usage snippets must run as printed; and an export, or a Google TF1 checkpoint of the same
weights, must import back exactly.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import export_reference as ref
import keras
import numpy as np
import pytest
import tensorflow as tf
import torch
from conftest import EARLIER_STEP, NEWEST_STEP, PLANNED_STEPS, TrainedRun, build_model
from transformers import AutoTokenizer, ElectraForMaskedLM, ElectraForPreTraining, ElectraTokenizerFast

from electra_tf import REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.errors import UserError
from electra_tf.interop.google_import import read_google_checkpoint
from electra_tf.interop.hf_export import export_model_dir
from electra_tf.interop.hf_import import read_hf_export
from electra_tf.interop.init_checkpoint import initialise_from
from electra_tf.interop.model_card import FAKE_SENTENCE
from electra_tf.interop.trained_checkpoint import checkpoint_to_export
from electra_tf.model.networks import NETWORKS
from electra_tf.model.tf1_names import tf1_weights
from electra_tf.model_dir import ModelDirectory
from electra_tf.tokenization import Tokenizer, Vocab

TOLERANCE = 1e-5
"""Absolute and relative: TensorFlow's and PyTorch's float32 kernels sum in different orders, and how they
differ depends on the CPU (on an AMD EPYC the generator's largest logits differed by 1.3e-5)."""


@pytest.fixture(scope="module", params=["default_run", "cased_run"])
def run(request) -> TrainedRun:
    return request.getfixturevalue(request.param)


def padded_batch(run: TrainedRun) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two segments and right padding (pads carry the vocab's [PAD] id)."""
    ids, mask, segments = ref.batch(run.config.vocab_size)
    return np.where(mask == 1, ids, run.vocab.pad_id), mask, segments


def hf_logits(model, ids, mask, segments) -> np.ndarray:
    with torch.no_grad():
        return model(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(segments)
        ).logits.numpy()


# ------------------------------------------------------------------------------------------------
# Loading in transformers, logits, tying.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model_class, network", [(ElectraForPreTraining, "discriminator"), (ElectraForMaskedLM, "generator")]
)
def test_every_weight_loads_with_nothing_missing_or_unexpected(run, model_class, network):
    _, info = model_class.from_pretrained(run.export_dir / network, output_loading_info=True)
    assert not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]


def test_discriminator_logits_match_the_keras_model(run):
    ids, mask, segments = padded_batch(run)
    expected = run.model.discriminator_logits(ids, mask, segments).numpy()
    actual = hf_logits(
        ElectraForPreTraining.from_pretrained(run.export_dir / "discriminator").eval(), ids, mask, segments
    )
    real = mask == 1
    assert np.abs(expected[real]).max() > 1.0  # far from trivial weights
    np.testing.assert_allclose(actual[real], expected[real], atol=TOLERANCE, rtol=TOLERANCE)


def test_generator_logits_match_the_keras_model(run):
    ids, mask, segments = padded_batch(run)
    expected = run.model.generator_logits(ids, mask, segments).numpy()
    actual = hf_logits(ElectraForMaskedLM.from_pretrained(run.export_dir / "generator").eval(), ids, mask, segments)
    real = mask == 1
    np.testing.assert_allclose(actual[real], expected[real], atol=TOLERANCE, rtol=TOLERANCE)


def test_generator_output_layer_is_tied_to_the_word_embeddings(run):
    generator = ElectraForMaskedLM.from_pretrained(run.export_dir / "generator")
    embeddings = generator.electra.embeddings.word_embeddings.weight
    assert generator.generator_lm_head.weight.data_ptr() == embeddings.data_ptr()
    np.testing.assert_array_equal(embeddings.detach().numpy(), run.weights["electra/embeddings/word_embeddings"])


# ------------------------------------------------------------------------------------------------
# Tokenizer.
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spanish_lines() -> list[str]:
    lines = [
        line
        for path in sorted(SAMPLE_CORPUS_DIR.glob("*.txt"))
        for line in path.read_text(encoding="utf-8").split("\n")
        if line.strip()
    ]
    assert len(lines) > 1500
    return lines


def test_exported_tokenizer_gives_the_project_tokenizers_ids_on_spanish_text(run, spanish_lines):
    exported = AutoTokenizer.from_pretrained(run.export_dir / "discriminator")
    ours = Tokenizer(run.vocab, do_lower_case=run.config.do_lower_case, strip_accents=run.config.strip_accents)
    expected = ours.tokenize(spanish_lines).to_list()
    actual = exported(spanish_lines, add_special_tokens=False)["input_ids"]
    differing = [index for index, (a, b) in enumerate(zip(actual, expected, strict=True)) if a != b]
    assert not differing, (
        f"{len(differing)} of {len(spanish_lines)} lines differ, first: {spanish_lines[differing[0]]!r}"
    )
    assert sum(map(len, expected)) > 50_000  # real text, not a handful of tokens


def test_special_token_ids_carry_through_config_and_tokenizer(run):
    vocab = run.vocab
    config = json.loads((run.export_dir / "discriminator" / "config.json").read_text(encoding="utf-8"))
    assert config["pad_token_id"] == vocab.pad_id
    tokenizer = ElectraTokenizerFast.from_pretrained(run.export_dir / "discriminator")
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.cls_token_id) == (
        vocab.pad_id,
        vocab.unk_id,
        vocab.cls_id,
    )
    assert (tokenizer.sep_token_id, tokenizer.mask_token_id) == (vocab.sep_id, vocab.mask_id)
    pair = tokenizer("El perro", "come pan")
    first, second = (tokenizer("El perro", add_special_tokens=False)["input_ids"], tokenizer("come pan")["input_ids"])
    assert pair["input_ids"] == [vocab.cls_id, *first, vocab.sep_id, *second[1:]]
    assert pair["token_type_ids"] == [0] * (len(first) + 2) + [1] * (len(second) - 1)


def test_cased_export_keeps_case_and_accents(cased_run):
    tokenizer = AutoTokenizer.from_pretrained(cased_run.export_dir / "discriminator")
    config = json.loads((cased_run.export_dir / "discriminator" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert (config["do_lower_case"], config["strip_accents"]) == (False, False)
    assert tokenizer.tokenize("Canción") != tokenizer.tokenize("cancion")


# ------------------------------------------------------------------------------------------------
# Model cards.
# ------------------------------------------------------------------------------------------------


def card_snippet(directory: Path) -> str:
    card = (directory / "README.md").read_text(encoding="utf-8")
    return re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1)


def run_snippet(code: str) -> str:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "model_card_snippet", "exec"), {})
    return printed.getvalue()


def test_discriminator_card_usage_snippet_runs_unchanged_and_prints_per_token_predictions(run):
    directory = run.export_dir / "discriminator"
    code = card_snippet(directory)
    assert "ElectraForPreTraining.from_pretrained" in code and FAKE_SENTENCE in code
    lines = run_snippet(code).splitlines()
    tokens = ElectraTokenizerFast.from_pretrained(directory).tokenize(FAKE_SENTENCE)
    assert [line.split()[0] for line in lines] == tokens
    assert {line.split()[1] for line in lines} <= {"0", "1"}


def test_generator_card_usage_snippet_runs_unchanged(default_run):
    lines = run_snippet(card_snippet(default_run.export_dir / "generator")).splitlines()
    assert len(lines) == 5
    assert all(0.0 <= float(line.split()[-1]) <= 1.0 for line in lines)


def test_card_states_the_evaluation_steps_and_training_data(default_run):
    card = (default_run.export_dir / "discriminator" / "README.md").read_text(encoding="utf-8")
    assert "| Accuracy | 0.9312 |" in card and "| AUC | 0.9034 |" in card
    assert f"{NEWEST_STEP} (of {PLANNED_STEPS} planned)" in card
    assert "`es_general` (num documents: 1,234)" in card


# ------------------------------------------------------------------------------------------------
# The command line.
# ------------------------------------------------------------------------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "export_to_hf.py"), *args], capture_output=True, text=True, timeout=300
    )


def test_cli_exports_the_chosen_checkpoint_for_a_hub_repo(default_run, tmp_path):
    checkpoint = default_run.model_dir / "checkpoints" / f"ckpt-{EARLIER_STEP}"
    result = run_cli(
        f"--model-dir={default_run.model_dir}",
        f"--output-dir={tmp_path / 'out'}",
        f"--checkpoint={checkpoint}",
        "--hub-repo-prefix=my-org/electricidad-tiny",
    )
    assert result.returncode == 0, result.stderr
    imported = read_hf_export(tmp_path / "out")
    for name, value in default_run.earlier_weights.items():
        np.testing.assert_array_equal(imported.weights[name], value, err_msg=name)
    card = (tmp_path / "out" / "discriminator" / "README.md").read_text(encoding="utf-8")
    assert 'from_pretrained("my-org/electricidad-tiny-discriminator")' in card
    assert f"{EARLIER_STEP} (of {PLANNED_STEPS} planned)" in card


def test_cli_reports_a_user_mistake_in_one_line(tmp_path):
    result = run_cli(f"--model-dir={tmp_path / 'nothing'}", f"--output-dir={tmp_path / 'out'}")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == f"error: model directory {tmp_path / 'nothing'} not found."
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------
# Import for continued pretraining.
# ------------------------------------------------------------------------------------------------


def test_export_then_import_gives_identical_weights_and_outputs(default_run):
    fresh = build_model(default_run.config, default_run.vocab)
    initialise_from(fresh, default_run.export_dir, default_run.vocab)
    imported = tf1_weights(fresh)
    assert imported.keys() == default_run.weights.keys()
    for name, value in default_run.weights.items():
        np.testing.assert_array_equal(imported[name], value, err_msg=name)
    ids, mask, segments = padded_batch(default_run)
    np.testing.assert_array_equal(
        fresh.discriminator_logits(ids, mask, segments).numpy(),
        default_run.model.discriminator_logits(ids, mask, segments).numpy(),
    )


def test_a_single_discriminator_directory_leaves_the_generator_fresh(default_run):
    fresh = build_model(default_run.config, default_run.vocab)
    before = tf1_weights(fresh)
    initialise_from(fresh, default_run.export_dir / "discriminator", default_run.vocab)
    after = tf1_weights(fresh)
    for name, value in after.items():
        expected = (
            before[name] if name.startswith(("generator/", "generator_predictions/")) else default_run.weights[name]
        )
        np.testing.assert_array_equal(value, expected, err_msg=name)


def test_google_checkpoint_reads_as_the_hf_export_of_the_same_weights(default_run, google_checkpoint):
    names = set(tf.train.load_checkpoint(str(google_checkpoint / "model.ckpt-1000")).get_variable_to_shape_map())
    assert "global_step" in names and "electra/embeddings/word_embeddings/adam_m" in names
    from_google = read_google_checkpoint(google_checkpoint)
    from_hf = read_hf_export(default_run.export_dir)
    assert from_google.networks == from_hf.networks == NETWORKS
    assert from_google.weights.keys() == from_hf.weights.keys()
    for name, value in from_hf.weights.items():
        np.testing.assert_array_equal(from_google.weights[name], value, err_msg=name)


def test_google_checkpoint_initialises_the_model(default_run, google_checkpoint):
    fresh = build_model(default_run.config, default_run.vocab)
    initialise_from(fresh, google_checkpoint / "model.ckpt-1000", default_run.vocab)
    imported = tf1_weights(fresh)
    for name, value in default_run.weights.items():
        np.testing.assert_array_equal(imported[name], value, err_msg=name)


# ------------------------------------------------------------------------------------------------
# Mistakes a user can make.
# ------------------------------------------------------------------------------------------------


def test_import_refuses_a_source_trained_with_another_vocab(default_run, tmp_path):
    tokens = list(default_run.vocab.tokens)
    tokens[100], tokens[101] = tokens[101], tokens[100]
    (tmp_path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    other = Vocab.load(tmp_path / "vocab.txt")
    with pytest.raises(UserError, match=r"id 100 is .* there and .* in the training data"):
        initialise_from(build_model(default_run.config, other), default_run.export_dir, other)


def test_import_refuses_a_missing_source(default_run, tmp_path):
    with pytest.raises(UserError, match="not found"):
        initialise_from(build_model(default_run.config, default_run.vocab), tmp_path / "nothing", default_run.vocab)


def test_import_refuses_a_generator_where_a_discriminator_is_expected(default_run):
    model = build_model(default_run.config, default_run.vocab)
    with pytest.raises(UserError, match=r"holds a generator .* where a discriminator"):
        initialise_from(model, default_run.export_dir / "generator", default_run.vocab)


def test_import_names_the_variable_and_both_shapes_on_a_size_mismatch(default_run):
    wider = ref.tiny_config(
        default_run.config.vocab_size, model_hparam_overrides={**ref.TINY_ENCODER, "hidden_size": 48}
    )
    model = build_model(wider, default_run.vocab)
    before = tf1_weights(model)
    with pytest.raises(
        UserError,
        match=r"size mismatch for electra/embeddings_project/kernel: .* \[24, 32\], the model expects \[24, 48\]",
    ):
        initialise_from(model, default_run.export_dir, default_run.vocab)
    after = tf1_weights(model)
    assert all(np.array_equal(after[name], before[name]) for name in before)  # nothing assigned


def test_import_refuses_a_deeper_source_model(default_run):
    shallower = ref.tiny_config(
        default_run.config.vocab_size, model_hparam_overrides={**ref.TINY_ENCODER, "num_hidden_layers": 1}
    )
    with pytest.raises(UserError, match=r"variable\(s\) the model lacks, e.g. electra/encoder/layer_1"):
        initialise_from(build_model(shallower, default_run.vocab), default_run.export_dir, default_run.vocab)


def copy_model_dir(run: TrainedRun, target: Path) -> ModelDirectory:
    shutil.copytree(run.model_dir, target)
    return ModelDirectory(target)


def test_export_refuses_a_directory_without_checkpoints(default_run, tmp_path):
    directory = copy_model_dir(default_run, tmp_path / "model")
    shutil.rmtree(directory.checkpoints)
    with pytest.raises(UserError, match="has no checkpoint"):
        export_model_dir(directory.path, tmp_path / "out")


def test_export_finds_the_newest_checkpoint_without_the_state_file(default_run, tmp_path):
    directory = copy_model_dir(default_run, tmp_path / "model")
    (directory.checkpoints / "checkpoint").unlink()
    assert checkpoint_to_export(directory, None) == str(directory.checkpoints / f"ckpt-{NEWEST_STEP}")


def test_export_refuses_a_missing_checkpoint_prefix(default_run, tmp_path):
    with pytest.raises(UserError, match="ckpt-999 not found"):
        export_model_dir(
            default_run.model_dir, tmp_path / "out", checkpoint=default_run.model_dir / "checkpoints" / "ckpt-999"
        )


def test_export_refuses_a_corrupt_checkpoint(default_run, tmp_path):
    directory = copy_model_dir(default_run, tmp_path / "model")
    for data in directory.checkpoints.glob(f"ckpt-{NEWEST_STEP}.data-*"):
        data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(UserError, match=f"cannot restore .*ckpt-{NEWEST_STEP}"):
        export_model_dir(directory.path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_export_refuses_a_checkpoint_of_another_architecture(default_run, tmp_path):
    directory = copy_model_dir(default_run, tmp_path / "model")
    config = default_run.config
    directory.save_config(
        config.replace(model_hparam_overrides={**config.model_hparam_overrides, "num_hidden_layers": 3})
    )
    with pytest.raises(UserError, match="belongs to another model"):
        export_model_dir(directory.path, tmp_path / "out")


def test_export_refuses_a_directory_that_is_not_a_model_directory(tmp_path):
    (tmp_path / "model").mkdir()
    with pytest.raises(UserError, match="is not a model directory"):
        export_model_dir(tmp_path / "model", tmp_path / "out")


def test_import_refuses_a_corrupt_google_checkpoint(default_run, google_checkpoint, tmp_path):
    corrupt = tmp_path / "google"
    shutil.copytree(google_checkpoint, corrupt)
    for data in corrupt.glob("model.ckpt-1000.data-*"):
        data.write_bytes(data.read_bytes()[:1000])
    model = build_model(default_run.config, default_run.vocab)
    with pytest.raises(UserError, match="it may be corrupt"):
        initialise_from(model, corrupt, default_run.vocab)


def test_export_under_a_mixed_precision_policy_writes_float32_weights_and_keeps_the_policy(default_run, tmp_path):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        export_model_dir(default_run.model_dir, tmp_path / "out")
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    finally:
        keras.config.set_dtype_policy("float32")
    imported = read_hf_export(tmp_path / "out")
    for name, value in default_run.weights.items():
        np.testing.assert_array_equal(imported.weights[name], value, err_msg=name)
