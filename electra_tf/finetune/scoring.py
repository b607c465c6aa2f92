"""A split's predicted labels scored by the task's metric, as the plain dict ``results.json`` stores.

One function per kind of prediction: :func:`score_tagging` (words of sentences; entity F1 over
words or over brat character spans, or word accuracy) and :func:`score_classification`. Each
returns ``{"score": the task's number, ...}`` with precision/recall/F1 or accuracy/macro-F1 and the
per-type or per-label scores with their counts, so a results file shows where the errors are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from electra_tf.finetune.char_spans import char_span_scores
from electra_tf.finetune.examples import BratSentence, ClassificationExample, TaggedSentence
from electra_tf.finetune.metrics import EntityScores, LabelScores, Prf, entity_scores, label_scores, word_label_scores
from electra_tf.finetune.tasks import ACCURACY, CHAR_SPAN_F1, ENTITY_F1, WORD_ACCURACY


def score_tagging(
    metric: str, sentences: Sequence[TaggedSentence], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Scores of each sentence's predicted word labels, by ``metric`` (a tagging metric of ``tasks``)."""
    gold = [sentence.labels for sentence in sentences]
    if metric == ENTITY_F1:
        return _entity_dict(entity_scores(gold, predicted))
    if metric == CHAR_SPAN_F1:
        brat = [sentence for sentence in sentences if isinstance(sentence, BratSentence)]
        if len(brat) != len(sentences):
            raise ValueError("character-span F1 needs brat sentences")
        spans = _entity_dict(char_span_scores(brat, predicted))
        words = entity_scores(gold, predicted).overall
        return {**spans, "word_level_entity_f1": words.f1}
    if metric == WORD_ACCURACY:
        return _label_dict(word_label_scores(gold, predicted))
    raise ValueError(f"{metric!r} is not a tagging metric")


def score_classification(
    metric: str, examples: Sequence[ClassificationExample], predicted: Sequence[str]
) -> dict[str, Any]:
    """Accuracy (the score), macro-F1 and per-label scores of one predicted label per example."""
    if metric != ACCURACY:
        raise ValueError(f"{metric!r} is not a classification metric")
    return _label_dict(label_scores([example.label for example in examples], predicted))


def _entity_dict(scores: EntityScores) -> dict[str, Any]:
    overall = dataclasses.asdict(scores.overall)
    return {"score": scores.overall.f1, **overall, "per_type": _per_key(scores.per_type)}


def _label_dict(scores: LabelScores) -> dict[str, Any]:
    return {
        "score": scores.accuracy,
        "accuracy": scores.accuracy,
        "macro_f1": scores.macro_f1,
        "per_label": _per_key(scores.per_label),
    }


def _per_key(scores: dict[str, Prf]) -> dict[str, dict[str, float]]:
    return {key: dataclasses.asdict(prf) for key, prf in scores.items()}
