"""Test-set predictions written in the input's own kind of format, for the official scorers.

Tagging: CoNLL columns ``word<TAB>gold<TAB>predicted``, a blank line between sentences (the input
of ``conlleval``, which splits on any whitespace, and of the UD and PharmaCoNER scripts after a cut).
Brat documents: one ``.ann`` per document with the predicted entities as ``T`` lines (what the
CANTEMIST evaluation compares). Classification: TSV with a header, the text(s), the gold and the
predicted label; tabs and line breaks inside a text become spaces so that each example stays one
row. Files are written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from electra_tf.atomic_io import write_text_atomically
from electra_tf.finetune.char_spans import spans_from_labels
from electra_tf.finetune.examples import BratSentence, ClassificationExample, TaggedSentence


def write_tagging_predictions(
    path: Path, sentences: Sequence[TaggedSentence], predicted: Sequence[Sequence[str]]
) -> None:
    """``word<TAB>gold<TAB>predicted`` per word, a blank line after each sentence."""
    if len(sentences) != len(predicted):
        raise ValueError(f"{len(sentences)} sentences but {len(predicted)} predictions")
    blocks = []
    for sentence, labels in zip(sentences, predicted, strict=True):
        rows = zip(sentence.words, sentence.labels, labels, strict=True)
        blocks.append("".join(f"{_one_field(word)}\t{gold}\t{guess}\n" for word, gold, guess in rows))
    write_text_atomically(path, "".join(block + "\n" for block in blocks))


def write_brat_predictions(folder: Path, sentences: Sequence[BratSentence], predicted: Sequence[Sequence[str]]) -> None:
    """One ``.ann`` per document (named after its ``.txt``) with the predicted entities as T lines.

    Documents without a predicted entity get an empty ``.ann``, so the folder matches the gold one.
    """
    if len(sentences) != len(predicted):
        raise ValueError(f"{len(sentences)} sentences but {len(predicted)} predictions")
    lines: dict[str, list[str]] = {}
    for sentence, labels in zip(sentences, predicted, strict=True):
        entities = lines.setdefault(sentence.document, [])
        for span in spans_from_labels(sentence, labels):
            entities.append(f"T{len(entities) + 1}\t{span.type} {span.start} {span.end}\t{sentence.span_text(span)}\n")
    for document, entities in lines.items():
        write_text_atomically(folder / f"{Path(document).stem}.ann", "".join(entities))


def write_classification_predictions(
    path: Path, examples: Sequence[ClassificationExample], predicted: Sequence[str]
) -> None:
    """TSV: ``text_a``, ``text_b`` (for pairs), ``gold`` and ``predicted`` columns, one row per example."""
    if len(examples) != len(predicted):
        raise ValueError(f"{len(examples)} examples but {len(predicted)} predictions")
    pairs = any(example.text_b is not None for example in examples)
    header = ["text_a", "text_b", "gold", "predicted"] if pairs else ["text_a", "gold", "predicted"]
    rows = ["\t".join(header)]
    for example, label in zip(examples, predicted, strict=True):
        texts = [example.text_a, example.text_b or ""] if pairs else [example.text_a]
        rows.append("\t".join([*map(_one_field, texts), example.label, label]))
    write_text_atomically(path, "\n".join(rows) + "\n")


def _one_field(text: str) -> str:
    """``text`` with tabs and line breaks turned into spaces, so it stays one TSV field."""
    return text.replace("\t", " ").replace("\r", " ").replace("\n", " ")
