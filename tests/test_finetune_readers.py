"""Fine-tuning readers: each format on tiny fixtures written here and on slices of the real files.

The real files live in ../shared/data/labeled; tests that need them skip when it is absent. Slices
are the first few hundred lines (cut at a sentence boundary) or a few documents, so the file runs
in seconds.
"""

import re
import shutil
from pathlib import Path

import pytest
from shared_data import requires_shared_data, shared_file

from electra_tf.errors import UserError
from electra_tf.finetune.brat import read_brat_document, read_brat_folder, split_sentences
from electra_tf.finetune.char_spans import char_span_scores, spans_bio_cannot_represent
from electra_tf.finetune.classification_files import XNLI, TextColumns, read_classification_file
from electra_tf.finetune.columns import CONLL2002, PHARMACONER, ColumnFormat, read_column_file
from electra_tf.finetune.conllu import read_conllu
from electra_tf.finetune.examples import CharSpan
from electra_tf.finetune.labels import check_known_labels, label_list

LABELED = shared_file("labeled")
needs_labeled = requires_shared_data("labeled")


def _write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("utf-8"))
    return path


def _head(source: Path, target: Path, lines: int) -> Path:
    """The first ``lines`` lines of ``source``, extended to the next blank line (a sentence end)."""
    kept = []
    with source.open(encoding="utf-8", newline="") as handle:
        for line in handle:
            kept.append(line)
            if len(kept) >= lines and not line.strip():
                break
    target.write_text("".join(kept), encoding="utf-8", newline="")
    return target


# ---------------------------------------------------------------------------------------------
# Column files: CoNLL-2002, PharmaCoNER, generic tagging.
# ---------------------------------------------------------------------------------------------

CONLL_FIXTURE = """-DOCSTART- -X- O

El DA O
Abogado NC B-PER
General AQ I-PER

Madrid NC B-LOC
( Fpa O
EFE NC B-ORG
"""


def test_conll2002_sentences_skip_docstart_and_keep_the_last_column(tmp_path):
    sentences = read_column_file(_write(tmp_path / "esp.train", CONLL_FIXTURE), CONLL2002)
    assert [s.words for s in sentences] == [["El", "Abogado", "General"], ["Madrid", "(", "EFE"]]
    assert [s.labels for s in sentences] == [["O", "B-PER", "I-PER"], ["B-LOC", "O", "B-ORG"]]
    assert [s.location.line for s in sentences] == [3, 7]


def test_conll2002_two_column_files_and_crlf_line_ends(tmp_path):
    sentences = read_column_file(_write(tmp_path / "two", "Juan B-PER\r\nvino O\r\n\r\n"), CONLL2002)
    assert sentences[0].words == ["Juan", "vino"] and sentences[0].labels == ["B-PER", "O"]


def test_generic_tagging_picks_the_named_columns_of_a_tab_file(tmp_path):
    text = "1\tNueva York\tPROPN\tB-LOC\n2\tes\tAUX\tO\n\n1\tsí\tADV\tO\n"
    column_format = ColumnFormat(word_column=1, label_column=2, delimiter="\t")
    sentences = read_column_file(_write(tmp_path / "train.txt", text), column_format)
    assert [s.words for s in sentences] == [["Nueva York", "es"], ["sí"]]
    assert [s.labels for s in sentences] == [["PROPN", "AUX"], ["ADV"]]


def test_pharmaconer_reads_token_tab_tag(tmp_path):
    text = "creatinina\tB-NORMALIZABLES\n1\tO\n\nLos\tO\n"
    sentences = read_column_file(_write(tmp_path / "train.txt", text), PHARMACONER)
    assert [s.labels for s in sentences] == [["B-NORMALIZABLES", "O"], ["O"]]


@pytest.mark.parametrize(
    ("text", "column_format", "message"),
    [
        ("El DA O\nAbogado B-PER\n", CONLL2002, r"x, line 2: 2 columns where the file has 3"),
        ("creatinina\tB-X\tO\n", PHARMACONER, r"x, line 1: 3 columns where the file has 2"),
        ("a O\nb\tO\n", PHARMACONER, r"x, line 1: 1 columns where the file has 2"),
        ("El O\n", ColumnFormat(label_column=4), r"x, line 1: no column 0 \(word\) or 4 \(label\)"),
        ("\tO\n", ColumnFormat(delimiter="\t", columns=2), r"x, line 1: empty word or label"),
        ("-DOCSTART- O\n\n", CONLL2002, r"x: no sentences"),
        (" \n\n", CONLL2002, r"x: the file is empty"),
    ],
)
def test_column_file_errors_name_file_and_line(tmp_path, text, column_format, message):
    with pytest.raises(UserError, match=message):
        read_column_file(_write(tmp_path / "x", text), column_format)


def test_missing_file_and_a_folder_for_a_file(tmp_path):
    with pytest.raises(UserError, match=r"esp.train: file not found"):
        read_column_file(tmp_path / "esp.train")
    with pytest.raises(UserError, match=r"is a folder, not a file"):
        read_column_file(tmp_path)


def test_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("El DA O\nniño NC O\n".encode() + "año NC O\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin1.txt, line 3: not valid UTF-8"):
        read_column_file(path)


def test_unknown_dev_label_names_file_line_and_word(tmp_path):
    train = read_column_file(_write(tmp_path / "esp.train", CONLL_FIXTURE))
    dev = read_column_file(_write(tmp_path / "esp.testa", "Juan B-PER\nen O\nLyon B-LOK\n"))
    known = label_list(train)
    assert known == ["O", "B-LOC", "B-ORG", "B-PER", "I-PER"]
    with pytest.raises(UserError, match=r"esp.testa, line 1, word 3 \('Lyon'\): the dev label 'B-LOK' never occurs"):
        check_known_labels(dev, known, "dev")
    check_known_labels(train, known, "train")  # no error


@needs_labeled
def test_conll2002_real_slice(tmp_path):
    sentences = read_column_file(_head(LABELED / "conll2002_es" / "esp.train", tmp_path / "esp.train", 300))
    lines = (tmp_path / "esp.train").read_text(encoding="utf-8").splitlines()
    token_lines = [line.split() for line in lines if line.strip()]
    assert sum(len(s.words) for s in sentences) == len(token_lines)
    assert [w for s in sentences for w in s.words] == [fields[0] for fields in token_lines]
    assert [t for s in sentences for t in s.labels] == [fields[-1] for fields in token_lines]
    assert sentences[0].words[:3] == ["Melbourne", "(", "Australia"] and sentences[0].labels[0] == "B-LOC"
    assert len(sentences) == lines.count("") and set(label_list(sentences)) <= {
        "O",
        *(f"{p}-{t}" for p in "BI" for t in ("PER", "LOC", "ORG", "MISC")),
    }


@needs_labeled
def test_pharmaconer_real_slice(tmp_path):
    sentences = read_column_file(_head(LABELED / "pharmaconer_bio" / "train.txt", tmp_path / "t.txt", 300), PHARMACONER)
    labels = (LABELED / "pharmaconer_bio" / "labels.txt").read_text(encoding="utf-8").split()
    assert set(label_list(sentences)) <= set(labels) and "B-NORMALIZABLES" in label_list(sentences)
    assert sentences[0].words[:3] == ["Los", "hallazgos", "analíticos"]


# ---------------------------------------------------------------------------------------------
# CoNLL-U.
# ---------------------------------------------------------------------------------------------

CONLLU_FIXTURE = """# sent_id = 1
# text = Llegó al poder.
1\tLlegó\tllegar\tVERB\t_\t_\t0\troot\t_\t_
2-3\tal\t_\t_\t_\t_\t_\t_\t_\t_
2\ta\ta\tADP\t_\t_\t4\tcase\t_\t_
3\tel\tel\tDET\t_\t_\t4\tdet\t_\t_
4\tpoder\tpoder\tNOUN\t_\t_\t1\tobl\t_\tSpaceAfter=No
4.1\tha\thaber\tAUX\t_\t_\t_\t_\t1:aux\t_
5\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_

# sent_id = 2
1\tSí\tsí\tINTJ\t_\t_\t0\troot\t_\t_
"""


def test_conllu_keeps_syntactic_words_and_skips_ranges_and_empty_nodes(tmp_path):
    sentences = read_conllu(_write(tmp_path / "ud.conllu", CONLLU_FIXTURE))
    assert sentences[0].words == ["Llegó", "a", "el", "poder", "."]  # "al" is the range line: skipped
    assert sentences[0].labels == ["VERB", "ADP", "DET", "NOUN", "PUNCT"]  # the empty node 4.1 is skipped
    assert sentences[1].words == ["Sí"] and sentences[1].location.line == 12


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1\tSí\tsí\tINTJ\t_\t_\t0\troot\t_", r"line 2: 9 tab-separated fields"),
        ("2\tSí\tsí\tINTJ\t_\t_\t0\troot\t_\t_", r"line 2: word id 2 where 1 was expected"),
        ("1\tSí\tsí\t_\t_\t_\t0\troot\t_\t_", r"line 2: the word 'Sí' has no UPOS tag"),
        ("uno\tSí\tsí\tINTJ\t_\t_\t0\troot\t_\t_", r"line 2: bad word id 'uno'"),
    ],
)
def test_conllu_errors_name_file_and_line(tmp_path, line, message):
    with pytest.raises(UserError, match=message):
        read_conllu(_write(tmp_path / "bad.conllu", f"# c\n{line}\n"))


@needs_labeled
def test_conllu_real_slice_has_multiword_tokens(tmp_path):
    path = _head(LABELED / "ud_es_ancora" / "es_ancora-ud-dev.conllu", tmp_path / "dev.conllu", 300)
    sentences = read_conllu(path)
    text = path.read_text(encoding="utf-8")
    assert sum(len(s.words) for s in sentences) == len(re.findall(r"^\d+\t", text, flags=re.MULTILINE))
    assert re.search(r"^13-14\tal\t", text, flags=re.MULTILINE)  # the slice holds a multi-word token...
    assert sentences[0].words[12:14] == ["a", "el"] and sentences[0].labels[12:14] == ["ADP", "DET"]  # ...read as words
    assert len(sentences) == len(re.findall(r"^# sent_id", text, flags=re.MULTILINE))


# ---------------------------------------------------------------------------------------------
# Brat standoff.
# ---------------------------------------------------------------------------------------------

BRAT_TEXT = (
    "Paciente con carcinoma microcítico de pulmón. Se ve un neoadenocarcinoma.\n"
    "\n"
    "Revisión: tumor maligno de células pequeñas con alto índice. Dr. Pérez lo vio.\n"
)


def _span_line(number: int, fragment: str) -> str:
    start = BRAT_TEXT.index(fragment)
    return f"T{number}\tMORF {start} {start + len(fragment)}\t{fragment}\n"


BRAT_ANN = (
    _span_line(1, "carcinoma microcítico")  # several words
    + _span_line(2, "adenocarcinoma")  # starts inside the word "neoadenocarcinoma"
    + _span_line(3, "tumor maligno de células pequeñas")
    + _span_line(4, "tumor maligno")  # nested in T3
    + "R1\tRelacion Arg1:T1 Arg2:T2\n#1\tAnnotatorNotes T1\tuna nota\n"
)


@pytest.fixture
def brat_document(tmp_path):
    return _write(tmp_path / "doc.txt", BRAT_TEXT), _write(tmp_path / "doc.ann", BRAT_ANN)


def test_brat_words_sentences_and_bio(brat_document):
    sentences = read_brat_document(*brat_document)
    assert [s.words for s in sentences] == [
        ["Paciente", "con", "carcinoma", "microcítico", "de", "pulmón", "."],
        ["Se", "ve", "un", "neoadenocarcinoma", "."],
        ["Revisión", ":", "tumor", "maligno", "de", "células", "pequeñas", "con", "alto", "índice", "."],
        ["Dr", ".", "Pérez", "lo", "vio", "."],  # no cut after the abbreviation "Dr."
    ]
    assert sentences[0].labels == ["O", "O", "B-MORF", "I-MORF", "O", "O", "O"]
    assert sentences[1].labels == ["O", "O", "O", "B-MORF", "O"]  # the entity inside a word labels the word
    assert sentences[2].labels[2:7] == ["B-MORF"] + ["I-MORF"] * 4  # the longer of the nested entities
    for sentence in sentences:
        assert [BRAT_TEXT[start:end] for start, end in sentence.offsets] == sentence.words
    assert [s.location.line for s in sentences] == [1, 1, 3, 3]
    assert [len(s.spans) for s in sentences] == [1, 1, 2, 0]  # every gold span is kept, nested ones too


def test_brat_gold_labels_score_against_the_original_spans(brat_document):
    sentences = read_brat_document(*brat_document)
    lost = {span for _, span in spans_bio_cannot_represent(sentences)}
    start = BRAT_TEXT.index("adenocarcinoma")
    tumor = BRAT_TEXT.index("tumor maligno")
    assert lost == {CharSpan("MORF", start, start + len("adenocarcinoma")), CharSpan("MORF", tumor, tumor + 13)}
    scores = char_span_scores(sentences, [s.labels for s in sentences]).overall
    # 4 gold spans; the BIO gives back T1, T3 and the whole word "neoadenocarcinoma" (not T2's span).
    assert (scores.correct, scores.predicted, scores.gold) == (2, 3, 4)


def test_brat_discontinuous_entity_takes_its_extent(tmp_path):
    text = "cáncer de mama y ovario\n"
    ann = "T1\tMORF 0 14;17 23\tcáncer de mama ovario\n"
    sentences = read_brat_document(_write(tmp_path / "d.txt", text), _write(tmp_path / "d.ann", ann))
    assert sentences[0].spans == [CharSpan("MORF", 0, 23)]
    assert sentences[0].labels == ["B-MORF"] + ["I-MORF"] * 4


@pytest.mark.parametrize(
    ("ann", "message"),
    [
        ("T1\tMORF 13 22\tcarcinomX\n", r"d.ann, line 1: the entity text 'carcinomX' differs from the document's"),
        ("T1\tMORF 13 9999\tx\n", r"d.ann, line 1: offsets 13 9999 outside the text"),
        ("T1\tMORF 13 22\n", r"d.ann, line 1: a T line has 3 tab-separated fields"),
        ("T1\tMORF 13-22\tx\n", r"d.ann, line 1: bad offsets"),
    ],
)
def test_brat_annotation_errors(tmp_path, ann, message):
    with pytest.raises(UserError, match=message):
        read_brat_document(_write(tmp_path / "d.txt", BRAT_TEXT), _write(tmp_path / "d.ann", ann))


def test_brat_folder_errors(tmp_path):
    with pytest.raises(UserError, match=r"train: folder not found"):
        read_brat_folder(tmp_path / "train")
    (tmp_path / "train").mkdir()
    with pytest.raises(UserError, match=r"no .txt documents"):
        read_brat_folder(tmp_path / "train")
    _write(tmp_path / "train" / "a.txt", "Texto.\n")
    with pytest.raises(UserError, match=r"a.ann: file not found"):
        read_brat_folder(tmp_path / "train")
    _write(tmp_path / "train" / "a.ann", "")  # a document without entities is fine
    _write(tmp_path / "train" / "b.ann", "")
    with pytest.raises(UserError, match=r"b.ann has no b.txt"):
        read_brat_folder(tmp_path / "train")
    (tmp_path / "train" / "b.ann").unlink()
    assert read_brat_folder(tmp_path / "train")[0].labels == ["O", "O"]


def test_sentence_cuts():
    text = "Uno. dos. Tres? ¿Cuatro! Ca. Microcítico. Luego 12.5 mg. Otro. 3 más  \n  \nFinal"
    assert [text[start:end] for start, end in split_sentences(text)] == [
        "Uno. dos.",  # a lower-case word follows
        "Tres?",
        "¿Cuatro!",
        "Ca. Microcítico.",  # a word of two letters before the period: an abbreviation
        "Luego 12.5 mg. Otro. 3 más",  # a digit follows
        "Final",
    ]


@needs_labeled
def test_brat_real_documents(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    # cc_onco968: an entity ending inside a word; cc_onco1084: nested entities.
    documents = (("train", "cc_onco968"), ("test", "cc_onco1084"), ("train", "cc_onco1"))
    for split, name in documents:
        for suffix in (".txt", ".ann"):
            shutil.copy(LABELED / "cantemist_ner" / split / f"{name}{suffix}", folder / f"{name}{suffix}")
    sentences = read_brat_folder(folder)
    ann_texts = [(folder / f"{name}.ann").read_text(encoding="utf-8") for _, name in documents]
    gold_lines = sum(len(re.findall(r"^T", text, flags=re.MULTILINE)) for text in ann_texts)
    assert sum(len(s.spans) for s in sentences) == gold_lines
    for sentence in sentences:
        text = Path(sentence.document).read_text(encoding="utf-8")
        assert [text[start:end] for start, end in sentence.offsets] == sentence.words
    lost = spans_bio_cannot_represent(sentences)
    assert {Path(document).stem for document, _ in lost} == {"cc_onco968", "cc_onco1084"}
    scores = char_span_scores(sentences, [s.labels for s in sentences]).overall
    assert scores.correct == gold_lines - len(lost) and scores.recall < 1


# ---------------------------------------------------------------------------------------------
# Classification files.
# ---------------------------------------------------------------------------------------------


def test_tsv_pairs_by_column_name_keep_quotes(tmp_path):
    text = 'id\tgold_label\tsentence1\tsentence2\n1\tneutral\tDijo "hola".\tSe fue.\n\n2\tentailment\tA\tB\n'
    examples = read_classification_file(_write(tmp_path / "x.tsv", text), XNLI)
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [
        ('Dijo "hola".', "Se fue.", "neutral"),
        ("A", "B", "entailment"),
    ]
    assert [e.location.line for e in examples] == [2, 4]


def test_jsonl_single_texts_with_numeric_labels(tmp_path):
    text = '{"text": "muy bueno", "label": 1}\n\n{"text": "malo", "label": "0"}\n'
    examples = read_classification_file(_write(tmp_path / "train.jsonl", text), TextColumns())
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [("muy bueno", None, "1"), ("malo", None, "0")]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("x.tsv", "text\tclase\nhola\tA\n", r"x.tsv, line 1: no column 'label' in the header \(columns: text, clase\)"),
        ("x.tsv", "text\tlabel\nhola\tA\textra\n", r"x.tsv, line 2: 3 tab-separated fields where the header has 2"),
        ("x.tsv", "text\tlabel\nhola\t \n", r"x.tsv, line 2: empty 'label' or 'text'"),
        ("x.tsv", "text\tlabel\n", r"x.tsv: no examples"),
        ("x.jsonl", '{"text": "a", "label": "b"}\n{"text": "a"\n', r"x.jsonl, line 2: not valid JSON"),
        ("x.jsonl", '{"text": "a"}\n', r"x.jsonl, line 1: the key 'label' is missing"),
        ("x.jsonl", '["a", "b"]\n', r"x.jsonl, line 1: a JSON object was expected"),
    ],
)
def test_classification_file_errors(tmp_path, name, text, message):
    with pytest.raises(UserError, match=message):
        read_classification_file(_write(tmp_path / name, text), TextColumns())


@needs_labeled
def test_xnli_real_slice(tmp_path):
    lines = (LABELED / "xnli_es" / "xnli.dev.es.tsv").read_text(encoding="utf-8").splitlines()[:31]
    examples = read_classification_file(_write(tmp_path / "dev.tsv", "\n".join(lines) + "\n"), XNLI)
    assert len(examples) == 30 and set(label_list(examples)) == {"contradiction", "entailment", "neutral"}
    assert examples[0].text_a == "Y él dijo: Mamá, estoy en casa." and examples[0].label == "neutral"
    assert examples[0].text_b == "Llamó a su madre tan pronto como el autobús escolar lo dejó."
