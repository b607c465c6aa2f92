"""Fine-tuning tasks: the registry, split resolution with stated substitutions, dev slices, prediction files.

Also checks that the whole data and scoring layer, and every electra_tf module the PyTorch peer
(bench/hf_finetuning.py) imports, import without TensorFlow.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from shared_data import requires_shared_data, shared_file

from electra_tf import REPO_ROOT
from electra_tf.errors import UserError
from electra_tf.finetune.brat import read_brat_folder, read_entities
from electra_tf.finetune.char_spans import spans_from_labels
from electra_tf.finetune.columns import ColumnFormat, read_column_file
from electra_tf.finetune.examples import ClassificationExample, Location, TaggedSentence
from electra_tf.finetune.predictions import (
    write_brat_predictions,
    write_classification_predictions,
    write_tagging_predictions,
)
from electra_tf.finetune.splits import dev_slice, load_splits
from electra_tf.finetune.tasks import (
    ACCURACY,
    CHAR_SPAN_F1,
    ENTITY_F1,
    TASKS,
    WORD_ACCURACY,
    Grouping,
    get_task,
    tagging_task,
)

LABELED = shared_file("labeled")
needs_labeled = requires_shared_data("labeled")

XNLI_HEADER = "pairID\tpromptID\tgenre\tgold_label\tsentence1\tsentence2\tmetaphor_subset\n"


def _files(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def _conll(*sentences: str) -> str:
    """Sentences given as 'word/TAG word/TAG', as a CoNLL-2002 file with a POS column."""
    return "\n".join("".join(f"{w} X {t}\n" for w, t in (p.split("/") for p in s.split())) for s in sentences)


def _conllu(count: int, tag: str = "NOUN") -> str:
    return "".join(f"# sent_id = {i}\n1\tw{i}\tw\t{tag}\t_\t_\t0\troot\t_\t_\n\n" for i in range(count))


def _xnli(premises: int, first_row: int = 0) -> str:
    labels = ("neutral", "entailment", "contradiction")
    rows = [
        f"{first_row + 3 * p + k}\t{p}\tg\t{label}\tpremisa {p}\thipótesis {k}\tno_met\n"
        for p in range(premises)
        for k, label in enumerate(labels)
    ]
    return XNLI_HEADER + "".join(rows)


def test_registry():
    assert set(TASKS) == {"conll2002_ner", "ud_pos", "pharmaconer", "cantemist", "xnli", "tagging", "classification"}
    kinds = {name: (task.kind, task.metric) for name, task in TASKS.items()}
    assert kinds["conll2002_ner"] == kinds["pharmaconer"] == ("tagging", ENTITY_F1)
    assert kinds["ud_pos"] == ("tagging", WORD_ACCURACY) and kinds["cantemist"] == ("tagging", CHAR_SPAN_F1)
    assert kinds["xnli"] == kinds["classification"] == ("classification", ACCURACY)
    assert (TASKS["conll2002_ner"].train, TASKS["conll2002_ner"].dev, TASKS["conll2002_ner"].test) == (
        ("esp.train",),
        ("esp.testa",),
        ("esp.testb",),
    )
    with pytest.raises(UserError, match=r"unknown task 'ner'; the tasks are: conll2002_ner, ud_pos"):
        get_task("ner")


def test_all_splits_present_no_notes(tmp_path):
    _files(tmp_path, {"esp.train": _conll("Juan/B-PER vino/O", "a/O Lyon/B-LOC"), "esp.testa": _conll("Ana/B-PER")})
    _files(tmp_path, {"esp.testb": _conll("Lyon/B-LOC")})
    splits = load_splits(get_task("conll2002_ner"), tmp_path)
    assert (len(splits.train), len(splits.dev), len(splits.test), splits.notes) == (2, 1, 1, [])
    assert splits.labels == ["O", "B-LOC", "B-PER"] and splits.metric == ENTITY_F1


def test_ud_without_train_trains_on_dev_and_says_so(tmp_path):
    _files(tmp_path, {"es_ancora-ud-dev.conllu": _conllu(20), "es_ancora-ud-test.conllu": _conllu(5)})
    splits = load_splits(get_task("ud_pos"), tmp_path, seed=3)
    assert len(splits.train) + len(splits.dev) == 20 and len(splits.dev) == 2 and len(splits.test) == 5
    assert not {s.words[0] for s in splits.train} & {s.words[0] for s in splits.dev}
    assert splits.notes[0].startswith(f"no es_ancora-ud-train.conllu in {tmp_path}: training on the dev split")
    assert "2 of 20 examples (10%, seed 3)" in splits.notes[1]
    _files(tmp_path, {"es_ancora-ud-train.conllu": _conllu(7)})  # with a training file, it is used
    splits = load_splits(get_task("ud_pos"), tmp_path)
    assert (len(splits.train), len(splits.dev), splits.notes) == (7, 20, [])


def test_xnli_trains_on_dev_and_keeps_premises_on_one_side(tmp_path):
    _files(tmp_path, {"xnli.dev.es.tsv": _xnli(30), "xnli.test.es.tsv": _xnli(4)})
    splits = load_splits(get_task("xnli"), tmp_path, dev_fraction=0.2)
    assert "no training split for xnli" in splits.notes[0]
    assert "whole pairs sharing a first text kept on one side" in splits.notes[1]
    assert len(splits.dev) == 18 and len(splits.train) == 72 and len(splits.test) == 12
    assert not {e.text_a for e in splits.train} & {e.text_a for e in splits.dev}
    assert splits.labels == ["contradiction", "entailment", "neutral"] and splits.metric == ACCURACY


@pytest.mark.parametrize(
    ("task", "files", "message"),
    [
        ("conll2002_ner", {"esp.testa": _conll("a/O")}, r"no training data for conll2002_ner \(expected esp.train\)"),
        ("xnli", {"xnli.test.es.tsv": _xnli(1)}, r"no training data for xnli \(expected xnli.dev.es.tsv\)"),
        (
            "cantemist",
            {"train/a.txt": "Texto.", "train/a.ann": "", "dev1/b.txt": "Otro.", "dev1/b.ann": ""},
            r"dev2: not found, though the rest of its split is \(dev1 \+ dev2\)",
        ),
        (
            "conll2002_ner",
            {"esp.train": _conll("Juan/B-PER"), "esp.testa": _conll("Juan/B-PER"), "esp.testb": _conll("Lyon/B-LOC")},
            r"esp.testb, line 1, word 1 \('Lyon'\): the test label 'B-LOC' never occurs in the training data",
        ),
        ("pharmaconer", {"train.txt": "Los\tDET\n"}, r"train.txt: the tag 'DET' is not O or B-/I-/E-/S-"),
    ],
)
def test_split_errors(tmp_path, task, files, message):
    with pytest.raises(UserError, match=message):
        load_splits(get_task(task), _files(tmp_path, files))


def test_missing_data_dir(tmp_path):
    with pytest.raises(UserError, match=r"--data-dir .*nowhere: folder not found"):
        load_splits(get_task("xnli"), tmp_path / "nowhere")


def test_generic_tagging_metric_follows_the_tags_and_a_missing_test_is_stated(tmp_path):
    _files(tmp_path / "pos", {"train.txt": "El\tDET\nsol\tNOUN\n", "dev.txt": "sol\tNOUN\n"})
    splits = load_splits(tagging_task(ColumnFormat(delimiter="\t")), tmp_path / "pos")
    assert splits.metric == WORD_ACCURACY and splits.test == []
    assert splits.notes == [f"no test split (test.txt) in {tmp_path / 'pos'}: only dev scores are reported."]
    _files(tmp_path / "ner", {"train.txt": "Ana S-PER\n", "dev.txt": "Ana S-PER\n", "test.txt": "Ana S-PER\n"})
    assert load_splits(get_task("tagging"), tmp_path / "ner").metric == ENTITY_F1


def _numbered(count):
    return [TaggedSentence([f"w{i}"], ["O"], Location(Path("x"), i + 1)) for i in range(count)]


def test_dev_slice_is_seeded_ordered_and_stated():
    examples = _numbered(95)
    train, dev, note = dev_slice(examples, 0.1, seed=1)
    assert len(dev) == 10 and len(train) == 85 and sorted(train + dev, key=examples.index) == examples
    assert dev == sorted(dev, key=examples.index) and train == sorted(train, key=examples.index)
    assert dev_slice(examples, 0.1, seed=1) == (train, dev, note)
    assert dev_slice(examples, 0.1, seed=2)[1] != dev
    assert note == (
        "no dev split: the dev set is a seeded slice of the training data, 10 of 95 examples (10%, seed 1); "
        "training uses the other 85."
    )


def test_dev_slice_keeps_groups_together():
    examples = _numbered(40)
    by_tens = Grouping("blocks", lambda example: int(example.words[0][1:]) // 10)
    train, dev, note = dev_slice(examples, 0.25, seed=0, grouping=by_tens)
    assert len(dev) == 10 and len({int(e.words[0][1:]) // 10 for e in dev}) == 1
    assert "whole blocks kept on one side" in note
    train, dev, _ = dev_slice(examples[:12], 0.9, seed=0, grouping=by_tens)  # never the whole training set
    assert train and dev


@pytest.mark.parametrize(("count", "fraction", "message"), [(10, 0.0, "between 0 and 1"), (1, 0.1, "cannot be split")])
def test_dev_slice_errors(count, fraction, message):
    with pytest.raises(UserError, match=message):
        dev_slice(_numbered(count), fraction, seed=0)


@needs_labeled
def test_real_slices_of_the_ud_and_xnli_copies(tmp_path):
    for name in ("es_ancora-ud-dev.conllu", "es_ancora-ud-test.conllu"):
        lines = (LABELED / "ud_es_ancora" / name).read_text(encoding="utf-8").split("\n")[:400]
        (tmp_path / "ud" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "ud" / name).write_text("\n".join(lines[: len(lines) - lines[::-1].index("")]), encoding="utf-8")
    splits = load_splits(get_task("ud_pos"), tmp_path / "ud")
    assert len(splits.notes) == 2 and "training on the dev split (es_ancora-ud-dev.conllu)" in splits.notes[0]
    assert {"NOUN", "ADP", "DET", "PUNCT"} <= set(splits.labels) and splits.metric == WORD_ACCURACY
    for name in ("xnli.dev.es.tsv", "xnli.test.es.tsv"):
        lines = (LABELED / "xnli_es" / name).read_text(encoding="utf-8").split("\n")[:121]
        _files(tmp_path / "xnli", {name: "\n".join(lines) + "\n"})
    splits = load_splits(get_task("xnli"), tmp_path / "xnli")
    assert len(splits.train) + len(splits.dev) == 120 and len(splits.test) == 120
    assert not {e.text_a for e in splits.train} & {e.text_a for e in splits.dev}


# ---------------------------------------------------------------------------------------------
# Prediction files.
# ---------------------------------------------------------------------------------------------


def test_tagging_predictions_read_back_as_columns(tmp_path):
    sentences = [
        TaggedSentence(["Nueva York", "es"], ["B-LOC", "O"], Location(tmp_path, 1)),
        TaggedSentence(["Ana"], ["B-PER"], Location(tmp_path, 4)),
    ]
    predicted = [["B-LOC", "B-LOC"], ["O"]]
    write_tagging_predictions(tmp_path / "test.tsv", sentences, predicted)
    text = (tmp_path / "test.tsv").read_text(encoding="utf-8")
    assert text == "Nueva York\tB-LOC\tB-LOC\nes\tO\tB-LOC\n\nAna\tB-PER\tO\n\n"  # a blank line ends each sentence
    gold_back = read_column_file(tmp_path / "test.tsv", ColumnFormat(label_column=1, delimiter="\t"))
    predicted_back = read_column_file(tmp_path / "test.tsv", ColumnFormat(label_column=2, delimiter="\t"))
    assert [s.words for s in gold_back] == [s.words for s in sentences]
    assert [s.labels for s in gold_back] == [s.labels for s in sentences]
    assert [s.labels for s in predicted_back] == predicted


def test_classification_predictions_tsv(tmp_path):
    examples = [
        ClassificationExample('Dijo\t"hola"', "Se fue.\n", "neutral", Location(tmp_path, 2)),
        ClassificationExample("A", "B", "entailment", Location(tmp_path, 3)),
    ]
    write_classification_predictions(tmp_path / "p.tsv", examples, ["neutral", "contradiction"])
    assert (tmp_path / "p.tsv").read_text(encoding="utf-8") == (
        'text_a\ttext_b\tgold\tpredicted\nDijo "hola"\tSe fue. \tneutral\tneutral\nA\tB\tentailment\tcontradiction\n'
    )


def test_brat_predictions_are_ann_files_of_the_predicted_spans(tmp_path):
    text = "Un carcinoma microcítico y un tumor.\nNada más.\n"
    _files(tmp_path / "gold", {"a.txt": text, "a.ann": "T1\tMORF 3 24\tcarcinoma microcítico\n"})
    _files(tmp_path / "gold", {"b.txt": "Sin hallazgos.\n", "b.ann": ""})
    sentences = read_brat_folder(tmp_path / "gold")
    predicted = [["O", "B-MORF", "O", "O", "O", "B-MORF", "O"], ["O", "O", "O"], ["O", "O", "O"]]
    write_brat_predictions(tmp_path / "out", sentences, predicted)
    assert (tmp_path / "out" / "a.ann").read_text(
        encoding="utf-8"
    ) == "T1\tMORF 3 12\tcarcinoma\nT2\tMORF 30 35\ttumor\n"
    assert (tmp_path / "out" / "b.ann").read_text(encoding="utf-8") == ""
    assert read_entities(tmp_path / "out" / "a.ann", text) == spans_from_labels(sentences[0], predicted[0])


NETWORK_SIDE = {"__init__", "model", "starting_point", "batches", "trainer", "hparams", "evaluation", "run"}
"""The fine-tuning modules that build, load or train the TensorFlow network; every other one is the data layer."""


def electra_tf_imports(path: Path) -> set[str]:
    """The electra_tf modules a source file imports from (``from electra_tf... import ...``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "electra_tf"
    }


def test_the_data_layer_and_what_the_pytorch_peer_imports_load_without_tensorflow():
    stems = [
        path.stem for path in (REPO_ROOT / "electra_tf" / "finetune").glob("*.py") if path.stem not in NETWORK_SIDE
    ]
    assert {"record", "windows", "scoring", "buckets", "throughput", "recipe"} <= set(stems)
    peer = electra_tf_imports(REPO_ROOT / "bench" / "hf_finetuning.py")
    assert {"electra_tf.finetune.recipe", "electra_tf.finetune.windows", "electra_tf.atomic_io"} <= peer
    modules = sorted({*(f"electra_tf.finetune.{stem}" for stem in stems), *peer})
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
