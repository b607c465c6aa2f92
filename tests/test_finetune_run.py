"""A fine-tuning run end to end: output layout, results of every trial and their median, CLI error lines."""

import dataclasses
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from finetune_fixtures import (
    TINY_ARCHITECTURE,
    write_classification_task,
    write_column_file,
    write_pretrained_model,
    write_tagging_task,
    write_vocab,
)
from shared_data import requires_shared_data, shared_file

from electra_tf import REPO_ROOT
from electra_tf.finetune.batches import Batches
from electra_tf.finetune.evaluation import EncodedSplit, predict_labels
from electra_tf.finetune.model import assign_weights, build_finetuning_model, network_weights
from electra_tf.finetune.run import FinetuningOptions, run_finetuning
from electra_tf.finetune.starting_point import load_starting_point
from electra_tf.finetune.tasks import get_task
from electra_tf.finetune.trainer import FinetuningTrainer
from electra_tf.interop.safetensors_io import read_weights
from electra_tf.optimization import create_finetuning_optimizer
from electra_tf.tokenization import Vocab

QUICK = {"num_train_epochs": 1, "train_batch_size": 16, "max_seq_length": 32, "log_every_steps": 2}


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory) -> Path:
    return write_vocab(tmp_path_factory.mktemp("vocab") / "vocab.txt")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, vocab_file) -> Path:
    """A tiny pretrained model as ``run_pretraining.py`` leaves one."""
    return write_pretrained_model(tmp_path_factory.mktemp("pretrained"), vocab_file)


@pytest.fixture(scope="module")
def hf_export(tmp_path_factory, vocab_file) -> Path:
    """The Hugging Face export (export_to_hf.py) of a tiny pretrained model."""
    return write_pretrained_model(tmp_path_factory.mktemp("exported"), vocab_file, export=True)


def tagging_options(root: Path, hf_export: Path, num_trials: int, seed: int) -> FinetuningOptions:
    """Trials of one epoch on the generic tagging task, from the Hugging Face export of a tiny model."""
    return FinetuningOptions(
        task=get_task("tagging"),
        data_dir=write_tagging_task(root / "data"),
        output_dir=root / "out",
        init_checkpoint=hf_export,
        hparams={**QUICK, "learning_rate": 3e-3},
        num_trials=num_trials,
        seed=seed,
    )


@pytest.fixture(scope="module")
def tagging_run(tmp_path_factory, hf_export) -> Path:
    """Two trials (seeds 3 and 4)."""
    root = tmp_path_factory.mktemp("tagging_run")
    run_finetuning(tagging_options(root, hf_export, num_trials=2, seed=3))
    return root / "out"


def test_results_hold_every_trial_and_the_median(tagging_run):
    results = json.loads((tagging_run / "results.json").read_text(encoding="utf-8"))
    assert results["task"] == "tagging" and results["metric"] == "entity_f1"
    assert [trial["seed"] for trial in results["trials"]] == [3, 4]
    for trial in results["trials"]:
        for split in ("dev", "test"):
            scores = trial[split]
            assert {"score", "precision", "recall", "f1", "per_type", "loss"} <= set(scores)
            assert scores["score"] == scores["f1"]
            assert set(scores["per_type"]) <= {"PER", "LOC"}
        assert [epoch["epoch"] for epoch in trial["epochs"]] == [1]
        assert trial["best_epoch"] == 1
        speed = trial["training_throughput"]  # tagging: one example per window, at least one per sentence
        assert speed["examples_per_epoch"] >= 120 and speed["examples_per_second"] > 0
    for split in ("dev", "test"):
        assert results["median"][split] == statistics.median(t[split]["score"] for t in results["trials"])
    dev_scores = [trial["dev"]["score"] for trial in results["trials"]]
    assert results["exported_trial"] == int(np.argmax(dev_scores))


def test_a_later_trial_is_the_run_its_seed_alone_would_make(tagging_run, hf_export, tmp_path):
    """Trials share one compiled step; each starts from fresh weights, optimizer state and dropout seed."""
    alone = run_finetuning(tagging_options(tmp_path, hf_export, num_trials=1, seed=4))["trials"][0]
    second = json.loads((tagging_run / "results.json").read_text(encoding="utf-8"))["trials"][1]
    assert second["seed"] == alone["seed"] == 4
    for ours, theirs in zip(second["epochs"], alone["epochs"], strict=True):
        assert ours["train_loss_last_window"] == pytest.approx(theirs["train_loss_last_window"], rel=1e-5)
        assert ours["dev"]["loss"] == pytest.approx(theirs["dev"]["loss"], rel=1e-5)
    assert second["test"]["score"] == alone["test"]["score"]


def test_output_layout_and_what_export_reads(tagging_run, vocab_file):
    record = json.loads((tagging_run / "finetuning.json").read_text(encoding="utf-8"))
    assert record["labels"] == ["O", "B-LOC", "B-PER"] and record["kind"] == "tagging"
    assert record["do_lower_case"] is True and record["encoder"]["hidden_size"] == 32
    assert (tagging_run / record["weights"]).is_file()
    assert Vocab.load(tagging_run / record["vocab_file"]).tokens == Vocab.load(vocab_file).tokens
    for trial in ("trial_0", "trial_1"):
        assert {"model.safetensors", "epochs.json", "dev_predictions.txt", "test_predictions.txt"} <= {
            path.name for path in (tagging_run / trial).iterdir()
        }
    assert list((tagging_run / "logs" / "trial_0" / "train").glob("events.out.tfevents.*"))
    assert list((tagging_run / "logs" / "trial_0" / "dev").glob("events.out.tfevents.*"))
    assert not list(tagging_run.parent.glob(".out.tmp-*"))  # the staging folder became the output


def test_saved_weights_reproduce_the_written_test_predictions(tagging_run):
    """The exported trial's weights, loaded into a fresh network, predict what its test file says."""
    record = json.loads((tagging_run / "finetuning.json").read_text(encoding="utf-8"))
    trial = tagging_run / Path(record["weights"]).parent
    rows = [line.split("\t") for line in (trial / "test_predictions.txt").read_text(encoding="utf-8").splitlines()]
    written = [row[2] for row in rows if row != [""]]

    from electra_tf.config import ModelConfig
    from electra_tf.finetune.run import _encode
    from electra_tf.finetune.splits import load_splits
    from electra_tf.tokenization import Tokenizer

    encoder = ModelConfig(**record["encoder"])
    network = build_finetuning_model(encoder, record["kind"], len(record["labels"]))
    assign_weights(network, read_weights(trial))
    splits = load_splits(get_task("tagging"), tagging_run.parent / "data")
    vocab = Vocab.load(tagging_run / "vocab.txt")
    label_ids = {label: index for index, label in enumerate(record["labels"])}
    encoded = _encode("tagging", splits, Tokenizer(vocab, True), vocab, label_ids, record["hparams"]["max_seq_length"])
    trainer = FinetuningTrainer(network, max_seq_length=record["hparams"]["max_seq_length"], seed=0)
    trainer.compile(optimizer=keras.optimizers.SGD())
    batches = Batches(encoded["test"].inputs, 8, record["hparams"]["max_seq_length"])
    predicted, _ = predict_labels(trainer, batches, EncodedSplit(splits.test, encoded["test"].inputs), record["labels"])
    assert [label for sentence in predicted for label in sentence] == written


def test_the_exported_run_predicts_in_transformers_what_the_run_wrote(tagging_run, tmp_path):
    """run_finetuning.py's output → export_to_hf → ElectraForTokenClassification: the same word labels."""
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from electra_tf.interop.hf_finetuned_export import export_finetuning_dir

    exported = export_finetuning_dir(tagging_run, tmp_path / "hf")
    record = json.loads((tagging_run / "finetuning.json").read_text(encoding="utf-8"))
    written = (tagging_run / Path(record["weights"]).parent / "test_predictions.txt").read_text(encoding="utf-8")
    sentences = [[row.split("\t") for row in block.splitlines()] for block in written.strip().split("\n\n")][:8]
    assert {row[2] for rows in sentences for row in rows} > {"O"}  # entities among the compared labels
    tokenizer = transformers.AutoTokenizer.from_pretrained(exported)
    model = transformers.AutoModelForTokenClassification.from_pretrained(exported).eval()
    for rows in sentences:
        encoding = tokenizer([row[0] for row in rows], is_split_into_words=True, return_tensors="pt")
        with torch.no_grad():
            best = model(**encoding).logits[0].argmax(-1).tolist()
        first_pieces = [encoding.word_ids().index(word) for word in range(len(rows))]
        assert [model.config.id2label[best[piece]] for piece in first_pieces] == [row[2] for row in rows]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "run_finetuning.py"), *args], capture_output=True, text=True, timeout=600
    )


def test_cli_fine_tunes_a_classifier_from_random_init_and_states_the_dev_slice(tmp_path, vocab_file):
    data = write_classification_task(tmp_path / "data")
    (data / "dev.tsv").unlink()  # no dev split: a seeded slice of train, said in the output
    out = tmp_path / "out"
    start = time.perf_counter()
    result = run_cli(
        "--task=classification",
        f"--data-dir={data}",
        f"--output-dir={out}",
        "--random-init",
        "--model-size=small",
        f"--vocab-file={vocab_file}",
        "--do-lower-case",
        f"--hparams={json.dumps({**TINY_ARCHITECTURE, **QUICK})}",
        "--learning-rate=0.003",
        "--max-train-examples=100",
    )
    wall_seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stderr[-3000:]
    assert "no dev split: the dev set is a seeded slice of the training data, 12 of 120 examples" in result.stderr
    assert "training on the first 100 of 108 training examples" in result.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["metric"] == "accuracy" and results["hparams"]["learning_rate"] == 0.003
    assert {"accuracy", "macro_f1", "per_label"} <= set(results["trials"][0]["test"])
    # Throughput: one classification example per input, one epoch timed, within the run's wall time.
    speed = results["trials"][0]["training_throughput"]
    assert speed["examples_per_epoch"] == 100 and len(speed["train_seconds_by_epoch"]) == 1
    assert 0 < speed["train_seconds_by_epoch"][0] < wall_seconds
    assert speed["examples_per_second"] == pytest.approx(100 / speed["train_seconds_by_epoch"][0])
    assert speed["examples_per_second_after_first_epoch"] is None
    predictions = (out / "trial_0" / "test_predictions.tsv").read_text(encoding="utf-8").splitlines()
    assert predictions[0] == "text_a\tgold\tpredicted" and len(predictions) == 31


def _bad_data(tmp_path: Path, problem: str, vocab_file: Path, model_dir: Path) -> list[str]:
    """The CLI arguments of a run with one user mistake."""
    data = write_tagging_task(tmp_path / "data", sizes=(20, 5, 5))
    out = tmp_path / "out"
    init = [f"--init-checkpoint={model_dir}"]
    if problem == "empty file":
        (data / "train.txt").write_text("", encoding="utf-8")
    elif problem == "unknown label in dev":
        write_column_file(data / "dev.txt", [[("Juan", "B-PER"), ("Acme", "B-ORG")]])
    elif problem == "mismatched columns":
        (data / "test.txt").write_text("Juan B-PER\nvive O\nen Lima B-LOC\n\n", encoding="utf-8")
    elif problem == "output dir exists":
        out.mkdir()
        (out / "results.json").write_text("{}", encoding="utf-8")
    elif problem == "vocab differs":
        other = tmp_path / "other_vocab.txt"
        other.write_text(vocab_file.read_text(encoding="utf-8").replace("madrid\n", "barcelona\n"), encoding="utf-8")
        init.append(f"--vocab-file={other}")
    return ["--task=tagging", f"--data-dir={data}", f"--output-dir={out}", *init, f"--hparams={json.dumps(QUICK)}"]


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("empty file", "train.txt"),
        ("unknown label in dev", "the dev label 'B-ORG' never occurs in the training data"),
        ("mismatched columns", "test.txt, line 3"),
        ("output dir exists", "exists and is not empty; pass --overwrite"),
        ("vocab differs", "differs from"),
    ],
)
def test_cli_reports_a_user_mistake_in_one_line(tmp_path, vocab_file, model_dir, problem, message):
    result = run_cli(*_bad_data(tmp_path, problem, vocab_file, model_dir))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "trial_0").exists()


def test_overwrite_replaces_an_earlier_run_only_when_the_new_one_succeeds(tmp_path, vocab_file, model_dir):
    arguments = _bad_data(tmp_path, "output dir exists", vocab_file, model_dir)
    (tmp_path / "data" / "train.txt").write_text("", encoding="utf-8")
    assert run_cli(*arguments, "--overwrite").returncode == 1  # fails: the earlier output stays as it was
    assert (tmp_path / "out" / "results.json").read_text(encoding="utf-8") == "{}"


@pytest.mark.slow
@requires_shared_data("labeled/conll2002_es/esp.train", "vocab/beto_cased_vocab.txt")
def test_cli_on_a_slice_of_conll2002(tmp_path):
    data = tmp_path / "conll"
    data.mkdir()
    for name in ("esp.train", "esp.testa", "esp.testb"):
        shutil.copy(shared_file(f"labeled/conll2002_es/{name}"), data / name)
    out = tmp_path / "out"
    result = run_cli(
        "--task=conll2002_ner",
        f"--data-dir={data}",
        f"--output-dir={out}",
        "--random-init",
        "--model-size=small",
        f"--vocab-file={shared_file('vocab/beto_cased_vocab.txt')}",
        "--nodo-lower-case",
        f"--hparams={json.dumps({**TINY_ARCHITECTURE, **QUICK, 'eval_batch_size': 128})}",
        "--max-train-examples=64",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "training on the first 64 of 8323 training examples" in result.stderr
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert set(results["trials"][0]["dev"]["per_type"]) <= {"PER", "LOC", "ORG", "MISC"}
    rows = (out / "trial_0" / "test_predictions.txt").read_text(encoding="utf-8").split("\n\n")
    assert len([row for row in rows if row.strip()]) == 1517  # every test sentence, every word predicted


def test_format_flags_of_the_generic_tasks_are_refused_for_a_built_in_one(tmp_path):
    result = run_cli(
        "--task=conll2002_ner",
        f"--data-dir={tmp_path}",
        f"--output-dir={tmp_path / 'out'}",
        "--random-init",
        "--tag-column=1",
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --tag-column describe the files of --task tagging, not of --task conll2002_ner."
    )


def test_a_frozen_encoder_probe_trains_the_head_alone(tmp_path, hf_export):
    """--freeze-encoder: every encoder weight ends as the starting point's, the head moves, the loss falls."""
    options = dataclasses.replace(
        tagging_options(tmp_path, hf_export, num_trials=1, seed=5),
        hparams={**QUICK, "num_train_epochs": 3, "learning_rate": 1e-2, "freeze_encoder": True},
    )
    results = run_finetuning(options)
    assert results["hparams"]["freeze_encoder"] is True
    trained = read_weights(tmp_path / "out" / "trial_0")
    point = load_starting_point(hf_export)
    encoder_names = set(point.weights)
    assert encoder_names and encoder_names < set(trained)
    for name in encoder_names:
        np.testing.assert_array_equal(trained[name], point.weights[name], err_msg=name)
    keras.utils.set_random_seed(5)
    fresh = network_weights(build_finetuning_model(point.encoder, "tagging", 3))
    head_names = set(trained) - encoder_names
    assert head_names == {"classifier/kernel", "classifier/bias"}
    assert not np.allclose(trained["classifier/kernel"], fresh["classifier/kernel"])
    dev_losses = [epoch["dev"]["loss"] for epoch in results["trials"][0]["epochs"]]
    assert dev_losses[-1] < dev_losses[0]


@pytest.mark.parametrize("freeze", [True, False])
def test_a_frozen_encoder_gets_no_slots_and_no_dropout(freeze, vocab_file):
    point = load_starting_point(
        None, vocab_file=vocab_file, model_size="small", hparams=TINY_ARCHITECTURE, do_lower_case=True
    )
    network = build_finetuning_model(point.encoder, "tagging", 3, freeze_encoder=freeze)
    trainer = FinetuningTrainer(network, max_seq_length=16, seed=0)
    trainer.compile(create_finetuning_optimizer(network, learning_rate=1e-3, num_train_steps=10))
    head = {id(variable) for variable in network.head.trainable_variables}
    trained = {id(variable) for variable in trainer.trainable_variables}
    assert (trained == head) == freeze and head <= trained
    slots = [variable for variable in trainer.optimizer.variables if "adam_m" in variable.path]
    assert len(slots) == len(trained)
    network.head.dropout.rate = 0.0  # what is left of dropout is the encoder's
    features = {
        "input_ids": tf.constant([[2, 5, 6, 7, 3]]),
        "input_mask": tf.ones((1, 5), tf.int32),
        "segment_ids": tf.zeros((1, 5), tf.int32),
    }
    keys = tf.constant([7], tf.uint32)
    training = network(features, training=True, dropout_keys=keys).numpy()
    inference = network(features, training=False).numpy()
    assert np.array_equal(training, inference) == freeze
