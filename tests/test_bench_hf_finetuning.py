"""The Hugging Face PyTorch fine-tuning peer (bench/hf_finetuning.py) follows electra_tf's recipe.

A tiny ``ElectraForPreTraining`` (3 layers, embedding width 16 < hidden 32, so the embedding
projection exists) is saved with this project's tokenizer files for a cased vocab with BETO's
special ids. The peer's pieces are checked against independent references: the learning-rate
multipliers against the modules each parameter belongs to, the optimizer step against a numpy
statement of Google's update, the schedule against ``ElectraLearningRate``, clipping against
``tf.clip_by_global_norm``, and its tokenizer's ids against electra_tf's tokenizer on real Spanish
words; then it trains on a small NER fixture end to end, and, on exports of three shapes, takes the
recipe ``run_finetuning`` takes for the same export.
"""

from __future__ import annotations

import json
import random
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import torch
from shared_data import requires_shared_data, shared_file
from transformers import ElectraConfig, ElectraForPreTraining, ElectraForSequenceClassification

from electra_tf import REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.errors import UserError
from electra_tf.finetune.buckets import batch_plan
from electra_tf.finetune.recipe import FinetuningHparams
from electra_tf.finetune.run import FinetuningOptions, run_finetuning
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING, get_task
from electra_tf.interop.tokenizer_files import write_tokenizer_files
from electra_tf.optimization import ElectraLearningRate
from electra_tf.tokenization import Tokenizer, Vocab

sys.path.insert(0, str(REPO_ROOT / "bench"))
import hf_finetuning as hf

LABELS = ["O", "B-LOC", "B-PER", "I-PER"]
PLACES = ["Madrid", "Sevilla", "Logroño", "Barcelona"]
PEOPLE = [["Juan"], ["María", "López"], ["Ana"]]
FILLER = ["el", "de", "la", "niño", "visitó", "ciudad", "con", "llegó", "a", "ayer", "y", "también"]


def write_model(folder: Path, vocab_file: Path, **overrides) -> Path:
    """A random tiny ELECTRA discriminator with the project's cased tokenizer files for ``vocab_file``."""
    vocab = Vocab.load(vocab_file)
    settings = dict(
        vocab_size=len(vocab.tokens),
        embedding_size=16,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    torch.manual_seed(0)
    ElectraForPreTraining(ElectraConfig(**{**settings, **overrides})).save_pretrained(str(folder))
    write_tokenizer_files(folder, vocab, do_lower_case=False, strip_accents=False, model_max_length=64)
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, cased_vocab_file) -> Path:
    return write_model(tmp_path_factory.mktemp("hf_model"), cased_vocab_file)


def ner_sentences(count: int, seed: int) -> str:
    """CoNLL-2002 text: filler words tagged O, places B-LOC, people B-PER (I-PER)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        words = []
        for _ in range(rng.randint(3, 9)):
            kind = rng.random()
            if kind < 0.15:
                words.append((rng.choice(PLACES), "B-LOC"))
            elif kind < 0.3:
                name = rng.choice(PEOPLE)
                words += [(name[0], "B-PER"), *((part, "I-PER") for part in name[1:])]
            else:
                words.append((rng.choice(FILLER), "O"))
        lines += [f"{word} X {tag}" for word, tag in words] + [""]
    return "\n".join(lines) + "\n"


def write_ner_files(folder: Path, sizes: tuple[int, int, int]) -> Path:
    """``esp.train``, ``esp.testa`` (dev) and ``esp.testb`` (test) of ``sizes`` sentences."""
    for name, count, seed in zip(("esp.train", "esp.testa", "esp.testb"), sizes, (1, 2, 3), strict=True):
        (folder / name).write_text(ner_sentences(count, seed), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def ner_dir(tmp_path_factory) -> Path:
    return write_ner_files(tmp_path_factory.mktemp("conll2002"), (96, 24, 24))


@pytest.fixture(scope="module")
def classification_dir(tmp_path_factory) -> Path:
    """A ``classification`` task: texts of place names are "lugar", texts of other words "otro"."""
    folder = tmp_path_factory.mktemp("classification")
    rng = random.Random(4)
    for name, count in (("train.tsv", 64), ("dev.tsv", 16), ("test.tsv", 16)):
        rows = []
        for _ in range(count):
            place = rng.random() < 0.5
            words = [rng.choice(PLACES if place else FILLER) for _ in range(rng.randint(2, 6))]
            rows.append(f"{' '.join(words)}\t{'lugar' if place else 'otro'}")
        (folder / name).write_text("text\tlabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return folder


# ------------------------------------------------------------------------------------------------
# Recipe pieces against independent references.
# ------------------------------------------------------------------------------------------------
def test_layerwise_learning_rates_and_weight_decay_per_parameter(model_dir):
    for model_class in (hf.ElectraForTokenClassification, ElectraForSequenceClassification):
        model = model_class.from_pretrained(str(model_dir), num_labels=3)
        groups = hf.parameter_groups(model, decay=0.8, weight_decay_rate=0.01)
        got = {id(p): (group["lr_multiplier"], group["weight_decay"]) for group in groups for p in group["params"]}
        n = model.config.num_hidden_layers
        expected_rate = {}
        for index, layer in enumerate(model.electra.encoder.layer):  # layer k = index + 1 of n: 0.8^(n-k+1)
            expected_rate.update({id(p): 0.8 ** (n - index) for p in layer.parameters()})
        for module in (model.electra.embeddings, model.electra.embeddings_project):
            expected_rate.update({id(p): 0.8 ** (n + 1) for p in module.parameters()})
        expected_rate.update({id(p): 1.0 for p in model.classifier.parameters()})
        undecayed = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
        undecayed |= {id(p) for name, p in model.named_parameters() if name.endswith(".bias")}
        assert got.keys() == expected_rate.keys() == {id(p) for p in model.parameters()}
        for key, (rate, decay) in got.items():
            assert rate == pytest.approx(expected_rate[key])
            assert decay == (0.0 if key in undecayed else 0.01)
        top = model.electra.encoder.layer[n - 1].attention.self.query.weight
        assert got[id(top)][0] == pytest.approx(0.8)  # Google's code would give 0.8² here


def numpy_adamw(theta, g, m, v, lr, decay, beta_1=0.9, beta_2=0.999, eps=1e-6):
    m = beta_1 * m + (1 - beta_1) * g
    v = beta_2 * v + (1 - beta_2) * g * g
    return theta - lr * (m / (np.sqrt(v) + eps) + decay * theta), m, v


def test_optimizer_steps_match_google_update_without_bias_correction():
    rng = np.random.default_rng(0)
    kernel, bias = (torch.nn.Parameter(torch.tensor(rng.normal(size=s), dtype=torch.float64)) for s in ((3, 4), (4,)))
    optimizer = hf.AdamWeightDecay(
        [{"params": [kernel], "weight_decay": 0.01, "lr": 0.1}, {"params": [bias], "weight_decay": 0.0, "lr": 0.05}]
    )
    state = {"kernel": (kernel.detach().numpy().copy(), 0.0, 0.0), "bias": (bias.detach().numpy().copy(), 0.0, 0.0)}
    for _ in range(3):
        for name, parameter, lr, decay in (("kernel", kernel, 0.1, 0.01), ("bias", bias, 0.05, 0.0)):
            gradient = rng.normal(size=parameter.shape)
            parameter.grad = torch.tensor(gradient)
            state[name] = numpy_adamw(*state[name][:1], gradient, *state[name][1:], lr=lr, decay=decay)
        optimizer.step()
        np.testing.assert_allclose(kernel.detach().numpy(), state["kernel"][0], rtol=1e-12)
        np.testing.assert_allclose(bias.detach().numpy(), state["bias"][0], rtol=1e-12)
    # Without bias correction the first update of a fresh slot is 0.1·g/(√0.001·|g|) ≈ 3.16·lr per entry.
    fresh = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    fresh.grad = torch.full((5,), 2.0, dtype=torch.float64)
    hf.AdamWeightDecay([fresh], lr=1.0).step()
    np.testing.assert_allclose(fresh.detach().numpy(), -0.1 * 2 / (np.sqrt(0.001 * 4) + 1e-6))


def test_schedule_is_electra_learning_rate():
    reference = ElectraLearningRate(3e-4, num_train_steps=40, num_warmup_steps=4)
    for step in range(0, 45):
        assert hf.learning_rate(step, 3e-4, 40, 4) == pytest.approx(float(reference(step)), rel=1e-6, abs=1e-12)
    assert hf.learning_rate(7, 3e-4, 40, 0) == pytest.approx(float(ElectraLearningRate(3e-4, 40, 0)(7)))


@pytest.mark.parametrize("scale", [0.1, 7.0])
def test_clipping_is_tf_clip_by_global_norm(scale):
    rng = np.random.default_rng(1)
    values = [rng.normal(size=s) * scale for s in ((4, 3), (5,))]
    parameters = [torch.nn.Parameter(torch.zeros(v.shape, dtype=torch.float64)) for v in values]
    for parameter, value in zip(parameters, values, strict=True):
        parameter.grad = torch.tensor(value)
    hf.clip_global_norm(parameters)
    expected, _ = tf.clip_by_global_norm([tf.constant(v) for v in values], 1.0)
    for parameter, reference in zip(parameters, expected, strict=True):
        np.testing.assert_allclose(parameter.grad.numpy(), reference.numpy(), rtol=1e-12)


# ------------------------------------------------------------------------------------------------
# Tokenizer: the export's Hugging Face tokenizer gives electra_tf's ids.
# ------------------------------------------------------------------------------------------------
TRICKY = ["El", "EL", "niño", "¿Qué", "Logroño", "1º", "\u200b", "x" * 150, "electroencefalograma", "Ñandú", "«Hola»"]


def spanish_words(limit: int = 3000) -> list[str]:
    words = []
    for path in sorted(SAMPLE_CORPUS_DIR.glob("*.txt")):
        words += path.read_text(encoding="utf-8").split()
    return [*TRICKY, *list(dict.fromkeys(words))[:limit]]


def assert_same_ids_as_electra_tf(model_dir: Path, vocab_file: Path) -> None:
    vocab = Vocab.load(vocab_file)
    tokenize, special = hf.hf_tokenizer(model_dir)
    assert (special.cls_id, special.sep_id, special.unk_id, special.pad_id) == (
        vocab.cls_id,
        vocab.sep_id,
        vocab.unk_id,
        vocab.pad_id,
    )
    words = spanish_words()
    expected = Tokenizer(vocab, do_lower_case=False).tokenize(words).to_list()
    got = tokenize(words)
    assert got == expected
    assert tokenize(["Madrid"]) != tokenize(["madrid"])  # the vocab is cased and so is the tokenizer
    assert tokenize([]) == []


def test_tokenizer_gives_electra_tf_ids_on_a_cased_vocab(model_dir, cased_vocab_file):
    assert_same_ids_as_electra_tf(model_dir, cased_vocab_file)


@requires_shared_data("vocab/beto_cased_vocab.txt")
def test_tokenizer_gives_electra_tf_ids_on_betos_vocab(tmp_path):
    beto = shared_file("vocab/beto_cased_vocab.txt")
    write_tokenizer_files(tmp_path, Vocab.load(beto), do_lower_case=False, strip_accents=False, model_max_length=512)
    assert_same_ids_as_electra_tf(tmp_path, beto)


# ------------------------------------------------------------------------------------------------
# Training.
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["conll2002_ner", "classification"])
def test_a_few_steps_lower_the_loss(model_dir, ner_dir, classification_dir, task):
    kind, folder = (TAGGING, ner_dir) if task == "conll2002_ner" else (CLASSIFICATION, classification_dir)
    data, _ = hf.prepare(model_dir, task, folder, max_seq_length=32)
    recipe = FinetuningHparams(learning_rate=1e-3, layerwise_lr_decay=0.8, train_batch_size=16, max_seq_length=32)
    batches = [tensors for _, tensors in hf.split_batches(data.train.inputs, recipe, data.pad_id)]
    torch.manual_seed(0)
    model = hf.load_model(data.model_dir, kind, data.labels)
    assert isinstance(model, hf.ElectraForTokenClassification if kind == TAGGING else ElectraForSequenceClassification)
    optimizer = hf.AdamWeightDecay(hf.parameter_groups(model, 0.8, 0.01))
    losses = list(hf.train_steps(model, optimizer, [batches[0]] * 12, lambda step: 1e-3, first_step=0))
    assert losses[-1] < 0.5 * losses[0], losses


def test_batches_are_padded_to_their_bucket(model_dir, ner_dir):
    data, _ = hf.prepare(model_dir, "conll2002_ner", ner_dir, max_seq_length=64)
    plan = batch_plan([len(window.input_ids) for window in data.train.inputs], 10, seed=3)
    for batch_indices, tensors in hf.make_batches(data.train.inputs, plan, 64, data.pad_id):
        longest = max(len(data.train.inputs[index].input_ids) for index in batch_indices)
        width = 32 if longest <= 32 else 64
        assert tensors["input_ids"].shape[1] == width
        for row, index in enumerate(batch_indices):
            window = data.train.inputs[index]
            padding = width - len(window.input_ids)
            assert tensors["input_ids"][row].tolist() == window.input_ids + [data.pad_id] * padding
            assert tensors["token_type_ids"][row].tolist() == window.segment_ids + [0] * padding
            assert tensors["labels"][row].tolist() == window.label_ids + [hf.IGNORE] * padding
            assert tensors["attention_mask"][row].tolist() == [1] * len(window.input_ids) + [0] * padding


def test_end_to_end_on_a_tagging_fixture_writes_the_results(model_dir, ner_dir, tmp_path):
    export_root = tmp_path / "export"
    export_root.mkdir()
    (export_root / "discriminator").symlink_to(model_dir)  # this project's export layout
    output = tmp_path / "results.json"
    hf.main(
        [
            *("--model-dir", str(export_root), "--task", "conll2002_ner", "--data-dir", str(ner_dir)),
            *("--output", str(output), "--seeds", "1,2", "--epochs", "2", "--batch-size", "8"),
            *("--max-seq-length", "32", "--learning-rate", "2e-3", "--threads", "1"),
        ]
    )
    results = json.loads(output.read_text(encoding="utf-8"))
    assert results["metric"] == "entity_f1"
    assert set(results["recipe"]) == {
        *("learning_rate", "layerwise_lr_decay", "num_train_epochs", "train_batch_size", "max_seq_length"),
        *("warmup_proportion", "weight_decay_rate"),
    }
    assert results["recipe"]["layerwise_lr_decay"] == 0.8  # hidden 32, 3 layers: no preset, so small's
    assert any("matches no preset; using the small recipe" in note for note in results["notes"])
    assert [trial["seed"] for trial in results["trials"]] == [1, 2]
    assert results["examples"] == {"train": 96, "train_inputs": 96, "dev": 24, "test": 24}
    for trial in results["trials"]:
        assert len(trial["dev_by_epoch"]) == 2
        assert trial["dev"]["score"] == max(trial["dev_by_epoch"])
        assert trial["test"]["score"] > 0.5  # a trivially learnable task: the model did learn it
        speed = trial["training_throughput"]
        assert speed["examples_per_epoch"] == results["examples"]["train_inputs"] and speed["examples_per_second"] > 0
    assert results["median"]["test"] == statistics.median(trial["test"]["score"] for trial in results["trials"])
    assert results["torch_threads"] == 1


def test_user_mistakes_are_one_line_errors(tmp_path, model_dir, ner_dir):
    with pytest.raises(UserError, match=r"no config\.json"):
        hf.discriminator_dir(tmp_path)
    with pytest.raises(UserError, match="comma-separated"):
        hf.parse_seeds("1;2")
    with pytest.raises(UserError, match="repeated"):
        hf.parse_seeds("1,1")
    with pytest.raises(UserError, match="no training or no dev examples"):
        hf.prepare(model_dir, "conll2002_ner", ner_dir, max_seq_length=32, max_train_examples=0)
    with pytest.raises(SystemExit, match=r"^error: learning_rate must be > 0, got 0\.0\.$"):
        hf.main(
            [
                *("--model-dir", str(model_dir), "--task", "conll2002_ner", "--data-dir", str(ner_dir)),
                *("--output", str(tmp_path / "x.json"), "--max-seq-length", "32", "--learning-rate", "0"),
            ]
        )
    with pytest.raises(SystemExit, match=r"^error: unknown task"):
        hf.main(["--model-dir", str(model_dir), "--task", "nope", "--data-dir", str(ner_dir), "--output", "x.json"])


def test_classification_uses_the_sequence_head_and_scores_accuracy_and_macro_f1(model_dir, classification_dir):
    data, _ = hf.prepare(model_dir, "classification", classification_dir, max_seq_length=16)
    assert data.labels == ["lugar", "otro"]
    gold = [example.label for example in data.test.examples]
    predicted = [index % 2 for index in range(len(gold))]
    correct = sum(data.labels[p] == g for p, g in zip(predicted, gold, strict=True))
    scores = hf.score("accuracy", CLASSIFICATION, data.test, predicted, data.labels)
    assert scores["score"] == correct / len(gold)
    recipe = FinetuningHparams(learning_rate=1e-3, layerwise_lr_decay=0.8, num_train_epochs=1, train_batch_size=8)
    trial = hf.run_trial(data, recipe, seed=1, log=lambda line: None)
    assert set(trial["test"]) == {"score", "macro_f1"} and trial["best_epoch"] == 1


# ------------------------------------------------------------------------------------------------
# The recipe: the peer picks electra_tf's for the same model.
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("width", "depth", "model_size", "expected"),
    [
        (256, 12, None, (3e-4, 0.8, False)),
        (768, 12, None, (1e-4, 0.8, False)),
        (1024, 24, None, (5e-5, 0.9, False)),
        (768, 2, None, (3e-4, 0.8, True)),  # base's width alone is no preset: small, with a note
        (768, 2, "large", (5e-5, 0.9, False)),
    ],
)
def test_the_default_recipe_is_the_preset_of_the_models_width_and_depth(width, depth, model_size, expected):
    config = ElectraConfig(hidden_size=width, num_hidden_layers=depth)
    given = ["--model-dir=m", "--task=conll2002_ner", "--data-dir=d", "--output=o.json"]
    args = hf.build_parser().parse_args([*given, *([f"--model-size={model_size}"] if model_size else [])])
    recipe, note = hf.resolve_recipe(config, args)
    assert (recipe.learning_rate, recipe.layerwise_lr_decay, note is not None) == expected  # paper, Table 7
    args = hf.build_parser().parse_args([*given, "--learning-rate=2e-4", "--layerwise-lr-decay=0.7"])
    recipe, _ = hf.resolve_recipe(config, args)
    assert (recipe.learning_rate, recipe.layerwise_lr_decay) == (2e-4, 0.7)  # the flags beat the recipe


SHAPES = [
    pytest.param({}, True, id="tiny, no preset"),
    pytest.param(
        {"hidden_size": 768, "num_hidden_layers": 2, "num_attention_heads": 12}, True, id="base's width, not its depth"
    ),
    pytest.param(  # 12 layers: TensorFlow traces the training step for most of a minute
        {"hidden_size": 256, "num_hidden_layers": 12, "num_attention_heads": 4},
        False,
        id="small's width and depth",
        marks=pytest.mark.slow,
    ),
]
"""Shapes of an export, and whether it matches no preset (so the small recipe is taken with a note)."""


def size_notes(notes: list[str]) -> list[str]:
    return [note for note in notes if "matches no preset" in note]


@pytest.mark.parametrize(("overrides", "noted"), SHAPES)
def test_the_peer_and_run_finetuning_choose_the_same_recipe(tmp_path, cased_vocab_file, overrides, noted):
    model = write_model(tmp_path / "model", cased_vocab_file, **overrides)
    data = write_ner_files(tmp_path, (8, 4, 4))  # a step of training and a batch of each evaluation
    ours = run_finetuning(
        FinetuningOptions(
            task=get_task("conll2002_ner"),
            data_dir=data,
            output_dir=tmp_path / "ours",
            init_checkpoint=model,
            hparam_flags={"num_train_epochs": 1, "train_batch_size": 8, "max_seq_length": 32},
        )
    )
    hf.main(
        [
            *("--model-dir", str(model), "--task", "conll2002_ner", "--data-dir", str(data), "--threads", "1"),
            *("--output", str(tmp_path / "peer.json"), "--seeds", "1", "--epochs", "1", "--batch-size", "8"),
            *("--max-seq-length", "32"),
        ]
    )
    peer = json.loads((tmp_path / "peer.json").read_text(encoding="utf-8"))
    assert peer["recipe"] == {name: ours["hparams"][name] for name in peer["recipe"]}
    assert (peer["recipe"]["learning_rate"], peer["recipe"]["layerwise_lr_decay"]) == (3e-4, 0.8)  # paper: small
    assert size_notes(peer["notes"]) == size_notes(ours["notes"])
    assert len(size_notes(peer["notes"])) == noted
