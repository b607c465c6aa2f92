"""Scores of fine-tuned predictions: entity precision/recall/F1, word accuracy, accuracy and macro-F1.

Entity scores follow the CoNLL evaluation script: micro-averaged over all entities, an entity counts
as correct only when both its type and its exact extent match, and a score whose denominator is zero
(no prediction, no gold entity) is 0. Per-type and per-label scores come with their counts, so a
report can show where the errors are.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

from electra_tf.finetune.chunks import chunks


@dataclasses.dataclass(frozen=True)
class Prf:
    """Precision, recall and F1 with the counts they come from."""

    precision: float
    recall: float
    f1: float
    correct: int
    predicted: int
    gold: int

    @classmethod
    def from_counts(cls, correct: int, predicted: int, gold: int) -> Prf:
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(precision, recall, f1, correct, predicted, gold)


@dataclasses.dataclass(frozen=True)
class EntityScores:
    """Micro-averaged entity scores and the same per entity type."""

    overall: Prf
    per_type: dict[str, Prf]


@dataclasses.dataclass(frozen=True)
class LabelScores:
    """Accuracy, macro-F1 (the mean F1 over labels seen in gold or predictions) and per-label scores."""

    accuracy: float
    macro_f1: float
    per_label: dict[str, Prf]


def typed_item_scores(gold: Iterable[tuple[str, Hashable]], predicted: Iterable[tuple[str, Hashable]]) -> EntityScores:
    """Scores of predicted against gold items, each ``(type, key)`` with a unique key per item.

    The building block of both word-level entity F1 (key: sentence and word span) and character
    span F1 (key: document and character span).
    """
    gold_set, predicted_set = set(gold), set(predicted)
    correct_set = gold_set & predicted_set
    gold_count, predicted_count, correct_count = (
        Counter(item_type for item_type, _ in items) for items in (gold_set, predicted_set, correct_set)
    )
    per_type = {
        item_type: Prf.from_counts(correct_count[item_type], predicted_count[item_type], gold_count[item_type])
        for item_type in sorted(gold_count.keys() | predicted_count.keys())
    }
    return EntityScores(Prf.from_counts(len(correct_set), len(predicted_set), len(gold_set)), per_type)


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> EntityScores:
    """Entity P/R/F1 over sentences of BIO/BIOES tags (``conlleval``'s numbers)."""
    _check_same_shape(gold, predicted)
    return typed_item_scores(_sentence_chunks(gold), _sentence_chunks(predicted))


def word_label_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> LabelScores:
    """Word accuracy (POS tagging's score) and per-label scores over sentences of tags."""
    _check_same_shape(gold, predicted)
    return label_scores(_flatten(gold), _flatten(predicted))


def label_scores(gold: Sequence[str], predicted: Sequence[str]) -> LabelScores:
    """Accuracy, macro-F1 and per-label P/R/F1 of one label per item (classification, POS words)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no labels to score")
    scores = typed_item_scores(
        ((label, index) for index, label in enumerate(gold)), ((label, index) for index, label in enumerate(predicted))
    )
    macro_f1 = sum(prf.f1 for prf in scores.per_type.values()) / len(scores.per_type)
    return LabelScores(scores.overall.correct / len(gold), macro_f1, scores.per_type)


def _sentence_chunks(sentences: Sequence[Sequence[str]]) -> list[tuple[str, tuple[int, int, int]]]:
    return [
        (chunk_type, (index, start, end))
        for index, tags in enumerate(sentences)
        for chunk_type, start, end in chunks(tags)
    ]


def _flatten(sentences: Sequence[Sequence[str]]) -> list[str]:
    return [tag for tags in sentences for tag in tags]


def _check_same_shape(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    for index, (gold_tags, predicted_tags) in enumerate(zip(gold, predicted, strict=True)):
        if len(gold_tags) != len(predicted_tags):
            raise ValueError(f"sentence {index}: {len(gold_tags)} gold tags but {len(predicted_tags)} predicted")
