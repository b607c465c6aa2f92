"""Export of a fine-tuned model: transformers' pipelines load it, name its labels and compute its logits.

A fine-tuning output directory is made here as ``run_finetuning.py`` leaves it (``finetuning.json``,
``vocab.txt``, ``results.json``, the chosen trial's TF1-named weights), from a network with random
weights and a cased vocab with BETO's special ids ([PAD] = 1). The export must load as
``ElectraForTokenClassification`` / ``ElectraForSequenceClassification`` with the label names, give
the Keras network's logits within 1e-5 on Spanish sentences (pairs too), tokenize as the project's
tokenizer does with the starting point's casing, and its card's usage snippet must run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import export_reference as ref
import numpy as np
import pytest
import torch
from test_finetune_model import random_weights
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer, pipeline

from electra_tf import REPO_ROOT
from electra_tf.config import ModelConfig
from electra_tf.errors import UserError
from electra_tf.finetune.model import FinetuningNetwork, assign_weights, build_finetuning_model
from electra_tf.finetune.record import FINETUNING_FILE, FinetuningRecord
from electra_tf.finetune.starting_point import load_starting_point
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING
from electra_tf.interop.hf_finetuned_export import export_finetuning_dir
from electra_tf.interop.safetensors_io import write_weights
from electra_tf.tokenization import Tokenizer, Vocab

TOLERANCE = 1e-5
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
NLI = ("entailment", "neutral", "contradiction")
SENTENCES = [
    "Gabriel García Márquez nació en Aracataca.",
    "El Museo del Prado está en Madrid, la capital de España.",
    "Ayer llovió.",
]
PAIRS = [
    ("La niña lee un libro en la biblioteca.", "Alguien está leyendo."),
    ("El tren salió de Sevilla a las ocho.", "El tren nunca salió."),
]
RESULTS = {
    "task": "xx",
    "metric": "entity_f1",
    "num_trials": 3,
    "median": {"dev": 0.8123, "test": 0.7987},
    "exported_trial": 1,
    "trials": [
        {"dev": {"score": 0.80}, "test": {"score": 0.79}},
        {"dev": {"score": 0.8456}, "test": {"score": 0.8012}},
        {"dev": {"score": 0.8123}, "test": {"score": 0.7987}},
    ],
}


@dataclasses.dataclass(frozen=True)
class FinetunedRun:
    directory: Path
    export: Path
    network: FinetuningNetwork
    record: FinetuningRecord
    weights: dict[str, np.ndarray]


def make_finetuning_output(root: Path, kind: str, labels: tuple[str, ...], vocab_file: Path) -> FinetunedRun:
    """A fine-tuning output directory laid out as run_finetuning.py writes it, and its export."""
    vocab = Vocab.load(vocab_file)
    encoder = ModelConfig(vocab_size=len(vocab), embedding_size=ref.EMBEDDING_SIZE, **ref.TINY_ENCODER)
    weights = random_weights(encoder, kind, num_labels=len(labels), seed=len(labels))
    network = build_finetuning_model(encoder, kind, len(labels))
    assign_weights(network, weights)
    directory = root / "finetuned"
    (directory / "trial_1").mkdir(parents=True)
    write_weights(directory / "trial_1" / "model.safetensors", weights)
    (directory / "vocab.txt").write_bytes(vocab_file.read_bytes())
    (directory / "results.json").write_text(json.dumps({**RESULTS, "task": f"my_{kind}"}), encoding="utf-8")
    record = FinetuningRecord(
        task=f"my_{kind}",
        kind=kind,
        labels=labels,
        encoder=encoder,
        vocab_file="vocab.txt",
        do_lower_case=False,
        strip_accents=False,
        starting_point="a test network",
        weights="trial_1/model.safetensors",
        metric="entity_f1" if kind == TAGGING else "accuracy",
        hparams={"learning_rate": 1e-4, "layerwise_lr_decay": 0.8, "num_train_epochs": 3},
        results="results.json",
    )
    (directory / FINETUNING_FILE).write_text(record.to_json(), encoding="utf-8")
    export = export_finetuning_dir(directory, root / "hf")
    return FinetunedRun(directory, export, network, record, weights)


@pytest.fixture(scope="module")
def tagger(tmp_path_factory, cased_vocab_file) -> FinetunedRun:
    return make_finetuning_output(tmp_path_factory.mktemp("tagging"), TAGGING, TAGS, cased_vocab_file)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory, cased_vocab_file) -> FinetunedRun:
    return make_finetuning_output(tmp_path_factory.mktemp("classification"), CLASSIFICATION, NLI, cased_vocab_file)


def keras_logits(run: FinetunedRun, encoded) -> np.ndarray:
    return run.network(
        {
            "input_ids": np.asarray(encoded["input_ids"], np.int32),
            "input_mask": np.asarray(encoded["attention_mask"], np.int32),
            "segment_ids": np.asarray(encoded["token_type_ids"], np.int32),
        }
    ).numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


# ------------------------------------------------------------------------------------------------
# Tagging.
# ------------------------------------------------------------------------------------------------


def test_tagging_export_gives_the_keras_logits(tagger):
    tokenizer = AutoTokenizer.from_pretrained(tagger.export)
    model = AutoModelForTokenClassification.from_pretrained(tagger.export).eval()
    assert type(model).__name__ == "ElectraForTokenClassification"
    assert [model.config.id2label[index] for index in range(len(TAGS))] == list(TAGS)
    assert model.config.label2id == {label: index for index, label in enumerate(TAGS)}
    encoded = tokenizer(SENTENCES, padding=True, return_tensors="np")
    assert (encoded["input_ids"] == 1).any()  # BETO's [PAD] id pads the short sentences
    with torch.no_grad():
        logits = model(**{name: torch.tensor(value) for name, value in encoded.items()}).logits.numpy()
    expected = keras_logits(tagger, encoded)
    real = encoded["attention_mask"] == 1
    assert np.abs(expected[real]).max() > 0.5
    np.testing.assert_allclose(logits[real], expected[real], atol=TOLERANCE, rtol=0)


def test_token_classification_pipeline_names_the_labels_the_keras_network_predicts(tagger):
    tokenizer = AutoTokenizer.from_pretrained(tagger.export)
    per_token = pipeline("token-classification", model=str(tagger.export))
    grouped = pipeline("token-classification", model=str(tagger.export), aggregation_strategy="first")
    found = 0
    for sentence in SENTENCES:
        encoded = tokenizer([sentence], return_tensors="np")
        probabilities = softmax(keras_logits(tagger, encoded))[0]
        for entity in per_token(sentence):
            index = entity["index"]
            assert entity["entity"] == TAGS[int(probabilities[index].argmax())]
            assert float(entity["score"]) == pytest.approx(float(probabilities[index].max()), abs=TOLERANCE)
            found += 1
        groups = grouped(sentence)
        assert {group["entity_group"] for group in groups} <= {"PER", "LOC"}
        assert all(sentence[group["start"] : group["end"]] == group["word"] for group in groups)
    assert found > 0  # the random network tags some tokens, so the comparison was not vacuous


def test_export_tokenizes_with_the_starting_points_casing(tagger):
    tokenizer = AutoTokenizer.from_pretrained(tagger.export)
    config = json.loads((tagger.export / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert (config["do_lower_case"], config["strip_accents"]) == (False, False)
    ours = Tokenizer(Vocab.load(tagger.directory / "vocab.txt"), do_lower_case=False, strip_accents=False)
    vocab = Vocab.load(tagger.directory / "vocab.txt")
    for sentence, ids in zip(SENTENCES, ours.tokenize(SENTENCES).to_list(), strict=True):
        assert tokenizer(sentence)["input_ids"] == [vocab.cls_id, *ids, vocab.sep_id]
    assert "García" in tokenizer.decode(tokenizer(SENTENCES[0])["input_ids"])


# ------------------------------------------------------------------------------------------------
# Classification.
# ------------------------------------------------------------------------------------------------


def test_classification_export_gives_the_keras_logits_for_sentences_and_pairs(classifier):
    tokenizer = AutoTokenizer.from_pretrained(classifier.export)
    model = AutoModelForSequenceClassification.from_pretrained(classifier.export).eval()
    assert type(model).__name__ == "ElectraForSequenceClassification"
    assert [model.config.id2label[index] for index in range(len(NLI))] == list(NLI)
    for encoded in (
        tokenizer(SENTENCES, padding=True, return_tensors="np"),
        tokenizer([p for p, _ in PAIRS], [h for _, h in PAIRS], padding=True, return_tensors="np"),
    ):
        with torch.no_grad():
            logits = model(**{name: torch.tensor(value) for name, value in encoded.items()}).logits.numpy()
        expected = keras_logits(classifier, encoded)
        assert logits.shape == (len(encoded["input_ids"]), len(NLI))
        assert np.abs(expected).max() > 0.5
        np.testing.assert_allclose(logits, expected, atol=TOLERANCE, rtol=0)
    assert (encoded["token_type_ids"] == 1).any()


def test_text_classification_pipeline_names_the_label_the_keras_network_predicts(classifier):
    tokenizer = AutoTokenizer.from_pretrained(classifier.export)
    classify = pipeline("text-classification", model=str(classifier.export))
    inputs = [*SENTENCES, *({"text": premise, "text_pair": hypothesis} for premise, hypothesis in PAIRS)]
    for item in inputs:
        encoded = (
            tokenizer([item], return_tensors="np")
            if isinstance(item, str)
            else tokenizer([item["text"]], [item["text_pair"]], return_tensors="np")
        )
        probabilities = softmax(keras_logits(classifier, encoded))[0]
        prediction = classify(item)
        prediction = prediction[0] if isinstance(prediction, list) else prediction  # a string gives a list of one
        assert prediction["label"] == NLI[int(probabilities.argmax())]
        assert prediction["score"] == pytest.approx(float(probabilities.max()), abs=TOLERANCE)


# ------------------------------------------------------------------------------------------------
# Card, CLI, reuse and mistakes.
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("run_name", ["tagger", "classifier"])
def test_card_states_labels_and_scores_and_its_snippet_runs(request, run_name):
    run = request.getfixturevalue(run_name)
    card = (run.export / "README.md").read_text(encoding="utf-8")
    assert "pipeline_tag: " + ("token-classification" if run.record.kind == TAGGING else "text-classification") in card
    assert all(f"`{label}`" in card for label in run.record.labels)
    for row in ("| dev, median of 3 trials | 0.8123 |", "| test, median of 3 trials | 0.7987 |"):
        assert row in card
    assert "| dev, this model (trial 1, chosen by dev score) | 0.8456 |" in card
    assert "a test network" in card
    snippet = re.search(r"```python\n(.*?)```", card, re.DOTALL).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, "card", "exec"), {})
    assert printed.getvalue().strip()


def test_a_fine_tuned_export_is_itself_a_starting_point(tagger):
    point = load_starting_point(tagger.export)
    assert point.encoder == tagger.record.encoder
    assert (point.do_lower_case, point.strip_accents) == (False, False)
    for name, value in point.weights.items():
        np.testing.assert_array_equal(value, tagger.weights[name], err_msg=name)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "export_to_hf.py"), *args], capture_output=True, text=True, timeout=300
    )


def test_cli_detects_a_fine_tuning_directory_and_refuses_checkpoint(classifier, tmp_path):
    done = run_cli("--model-dir", str(classifier.directory), "--output-dir", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "Exported the fine-tuned model" in done.stdout
    config = json.loads((tmp_path / "out" / "config.json").read_text(encoding="utf-8"))
    assert config["architectures"] == ["ElectraForSequenceClassification"]
    refused = run_cli(
        "--model-dir", str(classifier.directory), "--output-dir", str(tmp_path / "x"), "--checkpoint", "ckpt-1"
    )
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("error: --checkpoint does not apply")


def copy_of(run: FinetunedRun, tmp_path: Path) -> Path:
    directory = tmp_path / "copy"
    directory.mkdir()
    for path in run.directory.rglob("*"):
        if path.is_file():
            target = directory / path.relative_to(run.directory)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    return directory


def rewrite_record(directory: Path, **changes) -> None:
    values = json.loads((directory / FINETUNING_FILE).read_text(encoding="utf-8"))
    (directory / FINETUNING_FILE).write_text(json.dumps({**values, **changes}), encoding="utf-8")


def test_an_unfinished_or_broken_fine_tuning_directory_is_refused(tagger, tmp_path):
    directory = copy_of(tagger, tmp_path)
    rewrite_record(directory, weights=None)
    with pytest.raises(UserError, match="names no weights yet"):
        export_finetuning_dir(directory, tmp_path / "a")
    rewrite_record(directory, weights="trial_7/model.safetensors")
    with pytest.raises(UserError, match="not found"):
        export_finetuning_dir(directory, tmp_path / "b")
    rewrite_record(directory, weights="trial_1/model.safetensors", labels=["O", "B-PER"])
    with pytest.raises(UserError, match="size mismatch for classifier/kernel"):
        export_finetuning_dir(directory, tmp_path / "c")
    rewrite_record(directory, labels=list(TAGS), kind="parsing")
    with pytest.raises(UserError, match="kind must be"):
        export_finetuning_dir(directory, tmp_path / "d")
    (directory / FINETUNING_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="not valid JSON"):
        export_finetuning_dir(directory, tmp_path / "e")
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_the_record_round_trips_through_json(tagger):
    assert FinetuningRecord.from_json(tagger.record.to_json()) == tagger.record
