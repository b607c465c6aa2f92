"""Fine-tuning scores: CoNLL entity F1 against an independent re-statement, accuracy and macro-F1.

The library extracts entities with a start-rule state machine; the reference here cuts each run of
same-type tags with a regular expression over the prefixes (``[BI]I*E?|[ES]``: a chunk opens at any
tag and only B or I can be continued, by I's and at most one closing E). The two must agree on
hand-made tricky sequences, on random sequences and on a real file, where a perturbed copy gives a
score computed by hand from the perturbation.
"""

import itertools
import random
import re

import pytest
from shared_data import requires_shared_data, shared_file

from electra_tf.errors import UserError
from electra_tf.finetune.chunks import check_chunk_tags, chunks, is_chunk_tag_set
from electra_tf.finetune.columns import read_column_file
from electra_tf.finetune.metrics import Prf, entity_scores, label_scores, word_label_scores

LABELED = shared_file("labeled")


def reference_chunks(tags):
    """Entities as (type, start, end): runs of one type, cut by a regex over their prefixes."""
    found = []
    position = 0
    for chunk_type, run in itertools.groupby(tags, key=lambda tag: None if tag == "O" else tag.split("-", 1)[1]):
        prefixes = "".join(tag[0] for tag in run)
        if chunk_type is not None:
            found += [
                (chunk_type, position + m.start(), position + m.end()) for m in re.finditer("[BI]I*E?|[ES]", prefixes)
            ]
        position += len(prefixes)
    return found


def reference_scores(gold, predicted):
    """(correct, predicted, gold) entity counts from the reference chunks."""
    gold_set = {(i, *chunk) for i, tags in enumerate(gold) for chunk in reference_chunks(tags)}
    predicted_set = {(i, *chunk) for i, tags in enumerate(predicted) for chunk in reference_chunks(tags)}
    return len(gold_set & predicted_set), len(predicted_set), len(gold_set)


TRICKY = [
    (["O", "I-PER", "I-PER", "O"], [("PER", 1, 3)]),  # an I after O starts an entity
    (["B-PER", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),  # a type change starts another
    (["B-PER", "B-PER"], [("PER", 0, 1), ("PER", 1, 2)]),
    (["I-PER", "B-PER", "I-PER"], [("PER", 0, 1), ("PER", 1, 3)]),  # IOB1-style
    (["B-MISC", "O", "I-MISC"], [("MISC", 0, 1), ("MISC", 2, 3)]),
    (["O", "B-LOC", "I-LOC"], [("LOC", 1, 3)]),  # open at the end of the sentence
    (["B-NOT-NORM", "I-NOT-NORM"], [("NOT-NORM", 0, 2)]),  # the type is all after the first hyphen
    (
        ["S-LOC", "B-ORG", "I-ORG", "E-ORG", "E-ORG", "S-PER", "I-PER"],  # BIOES, including ill-formed parts
        [("LOC", 0, 1), ("ORG", 1, 4), ("ORG", 4, 5), ("PER", 5, 6), ("PER", 6, 7)],
    ),
    (["E-PER", "I-PER", "S-PER", "S-PER"], [("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 3), ("PER", 3, 4)]),
    (["B-X", "E-X", "O", "O"], [("X", 0, 2)]),
    (["O", "O"], []),
    ([], []),
]


@pytest.mark.parametrize(("tags", "expected"), TRICKY)
def test_chunks_on_tricky_sequences(tags, expected):
    assert chunks(tags) == expected
    assert reference_chunks(tags) == expected


def test_chunks_agree_with_the_reference_on_random_sequences():
    rng = random.Random(13)
    tags = ["O", *(f"{p}-{t}" for p in "BIES" for t in ("PER", "LOC"))]
    for _ in range(2000):
        sequence = [rng.choice(tags) for _ in range(rng.randint(0, 12))]
        assert chunks(sequence) == reference_chunks(sequence), sequence


def test_entity_scores_by_hand():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]  # right, wrong type, wrong extent
    scores = entity_scores(gold, predicted)
    assert scores.overall == Prf.from_counts(correct=1, predicted=3, gold=3)
    assert scores.overall.f1 == pytest.approx(1 / 3)
    assert scores.per_type["PER"].f1 == 1.0
    assert (scores.per_type["LOC"].recall, scores.per_type["LOC"].predicted) == (0.0, 0)
    assert (scores.per_type["ORG"].correct, scores.per_type["ORG"].predicted, scores.per_type["ORG"].gold) == (0, 2, 1)
    assert entity_scores([["O"]], [["O"]]).overall.f1 == 0.0  # nothing to find, nothing found: 0 as conlleval


def test_entity_scores_agree_with_the_reference_on_random_pairs():
    rng = random.Random(7)
    tags = ["O", "O", "O", *(f"{p}-{t}" for p in "BIES" for t in ("A", "B"))]
    for _ in range(300):
        lengths = [rng.randint(1, 10) for _ in range(rng.randint(1, 5))]
        gold = [[rng.choice(tags) for _ in range(n)] for n in lengths]
        predicted = [[tag if rng.random() < 0.7 else rng.choice(tags) for tag in sentence] for sentence in gold]
        overall = entity_scores(gold, predicted).overall
        assert (overall.correct, overall.predicted, overall.gold) == reference_scores(gold, predicted)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        entity_scores([["O", "O"]], [["O"]])
    with pytest.raises(ValueError, match="1 gold sentences but 2 predicted"):
        word_label_scores([["O"]], [["O"], ["O"]])


def test_chunk_tag_check():
    assert is_chunk_tag_set(["O", "B-PER", "E-LOC", "S-X"]) and not is_chunk_tag_set(["O", "PROPN"])
    with pytest.raises(UserError, match=r"train.txt: the tag 'PROPN' is not O or B-/I-/E-/S- followed by a type"):
        check_chunk_tags(["O", "PROPN"], "train.txt")
    for bad in ("B", "B-", "X-PER", "o"):
        assert not is_chunk_tag_set([bad])


def test_accuracy_macro_f1_and_per_label():
    scores = label_scores(["a", "a", "b", "c"], ["a", "b", "b", "b"])
    assert scores.accuracy == 0.5
    assert scores.per_label["a"].f1 == pytest.approx(2 / 3)  # P 1/1, R 1/2
    assert scores.per_label["b"].f1 == pytest.approx(0.5)  # P 1/3, R 1/1
    assert scores.per_label["c"].f1 == 0.0
    assert scores.macro_f1 == pytest.approx((2 / 3 + 0.5 + 0) / 3)


def test_word_accuracy_for_pos():
    scores = word_label_scores([["NOUN", "VERB"], ["DET"]], [["NOUN", "NOUN"], ["DET"]])
    assert scores.accuracy == pytest.approx(2 / 3)
    assert scores.per_label["VERB"].recall == 0.0 and scores.per_label["NOUN"].precision == 0.5


@requires_shared_data("labeled")
def test_real_file_gold_against_gold_and_a_perturbed_copy(tmp_path):
    lines = (LABELED / "conll2002_es" / "esp.testa").read_text(encoding="utf-8").split("\n")[:600]
    (tmp_path / "slice").write_text("\n".join(lines[: len(lines) - lines[::-1].index("")]), encoding="utf-8")
    gold = [sentence.labels for sentence in read_column_file(tmp_path / "slice")]
    count = sum(tag.startswith("B-") for sentence in gold for tag in sentence)  # IOB2: one B- per entity
    assert count > 20 and entity_scores(gold, gold).overall.f1 == 1.0

    predicted = [list(sentence) for sentence in gold]
    entities = [(i, *chunk) for i, sentence in enumerate(gold) for chunk in reference_chunks(sentence)]
    used = set()

    def take(condition):
        entity = next(e for e in entities if e not in used and condition(*e))
        used.add(entity)
        return entity

    i, chunk_type, start, end = take(lambda i, t, s, e: e - s >= 2)  # split in two: +1 found, -1 correct
    predicted[i][start + 1] = f"B-{chunk_type}"
    i, chunk_type, start, end = take(lambda i, t, s, e: True)  # another type: -1 correct
    other = "ORG" if chunk_type != "ORG" else "LOC"
    predicted[i][start:end] = [f"{tag[0]}-{other}" for tag in gold[i][start:end]]
    i, chunk_type, start, end = take(lambda i, t, s, e: True)  # deleted: -1 found, -1 correct
    predicted[i][start:end] = ["O"] * (end - start)
    i, chunk_type, start, end = take(lambda i, t, s, e: s == 0 or gold[i][s - 1] == "O")  # B- to I- after O: same
    predicted[i][start] = f"I-{chunk_type}"

    overall = entity_scores(gold, predicted).overall
    assert (overall.correct, overall.predicted, overall.gold) == (count - 3, count, count)
    assert overall.f1 == pytest.approx((count - 3) / count)
    assert (overall.correct, overall.predicted, overall.gold) == reference_scores(gold, predicted)
