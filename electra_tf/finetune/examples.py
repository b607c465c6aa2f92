"""The plain examples every fine-tuning reader returns: tagged sentences and (pairs of) texts.

Each example keeps where it came from (file and line) so that a later check, such as a label that
the training data never shows, can point at the line to fix.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Location:
    """A line of an input file (1-based), for messages."""

    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}, line {self.line}"


@dataclasses.dataclass(frozen=True)
class TaggedSentence:
    """One sentence of a tagging task: a label per word; ``location`` is its first word's line."""

    words: list[str]
    labels: list[str]
    location: Location


@dataclasses.dataclass(frozen=True)
class CharSpan:
    """An entity over characters ``[start, end)`` of a document's text."""

    type: str
    start: int
    end: int


@dataclasses.dataclass(frozen=True)
class BratSentence(TaggedSentence):
    """A sentence of a brat standoff document, labelled in word-level BIO.

    ``text`` is the sentence's characters, from its first word's start to its last word's end;
    ``offsets`` are each word's ``[start, end)`` in the document's text; ``spans`` are the gold
    entities that start in this sentence, all of them, including the nested ones that word-level
    BIO cannot represent, because entity F1 is computed against these original spans.
    """

    document: str
    text: str
    offsets: list[tuple[int, int]]
    spans: list[CharSpan]

    def span_text(self, span: CharSpan) -> str:
        """The characters of a span that lies within this sentence."""
        start = self.offsets[0][0]
        return self.text[span.start - start : span.end - start]


@dataclasses.dataclass(frozen=True)
class ClassificationExample:
    """One text (``text_b`` None) or text pair with its label."""

    text_a: str
    text_b: str | None
    label: str
    location: Location
