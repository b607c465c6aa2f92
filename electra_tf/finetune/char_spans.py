"""Entity F1 over the original character spans of brat documents (the ``cantemist`` score).

Word-level BIO predictions are turned back into character spans (an entity runs from its first
word's start to its last word's end) and compared with the gold spans of the ``.ann`` files, exact
type and offsets, as the CANTEMIST evaluation does. Gold entities that word-level BIO cannot
reproduce (nested or overlapping entities, boundaries inside a word, an entity cut by a sentence
break) therefore count as misses: the score is the honest one, not one against a simplified gold.
"""

from __future__ import annotations

from collections.abc import Sequence

from electra_tf.finetune.chunks import chunks
from electra_tf.finetune.examples import BratSentence, CharSpan
from electra_tf.finetune.metrics import EntityScores, typed_item_scores


def spans_from_labels(sentence: BratSentence, labels: Sequence[str]) -> list[CharSpan]:
    """The character spans of the entities in one sentence's word-level BIO/BIOES ``labels``."""
    if len(labels) != len(sentence.words):
        raise ValueError(f"{len(labels)} labels for a sentence of {len(sentence.words)} words")
    return [
        CharSpan(chunk_type, sentence.offsets[first][0], sentence.offsets[end - 1][1])
        for chunk_type, first, end in chunks(labels)
    ]


def char_span_scores(sentences: Sequence[BratSentence], predicted: Sequence[Sequence[str]]) -> EntityScores:
    """Entity P/R/F1 of predicted word labels against the gold character spans of ``sentences``."""
    if len(sentences) != len(predicted):
        raise ValueError(f"{len(sentences)} sentences but {len(predicted)} predictions")
    gold = [(span.type, (sentence.document, span.start, span.end)) for sentence in sentences for span in sentence.spans]
    found = [
        (span.type, (sentence.document, span.start, span.end))
        for sentence, labels in zip(sentences, predicted, strict=True)
        for span in spans_from_labels(sentence, labels)
    ]
    return typed_item_scores(gold, found)


def spans_bio_cannot_represent(sentences: Sequence[BratSentence]) -> list[tuple[str, CharSpan]]:
    """``(document, span)`` of each gold entity that the sentences' own BIO labels do not give back.

    Their count bounds what any word-level tagger can reach; the fine-tuning output states it.
    """
    lost = []
    for sentence in sentences:
        recovered = set(spans_from_labels(sentence, sentence.labels))
        lost.extend((sentence.document, span) for span in sentence.spans if span not in recovered)
    return lost
