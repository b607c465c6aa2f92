"""Brat standoff folders (the ``cantemist`` task): ``.txt`` documents, ``.ann`` entities, to word-level BIO.

Each document's text is cut into sentences and words by a small deterministic tokenizer that keeps
every word's character offsets:

* sentences: each line, cut further after ``.``, ``!`` or ``?`` followed by whitespace and an
  upper-case letter or an opening mark, unless the period ends a word of one or two letters (an
  abbreviation such as "Dr." or "Ca.", where cutting could split an entity);
* words: runs of letters, digits and underscores, and each other non-space character on its own.

Only ``T`` lines (text-bound entities: ``T1<TAB>TYPE start end<TAB>text``) are read; the other
annotation kinds (relations, events, notes) carry no entity and are skipped. A discontinuous entity
(``start end;start end``) is taken as its whole extent, from its first start to its last end.

Words get BIO labels: a word that an entity overlaps, even in part (an entity starting or ending
inside a word), belongs to it. Entities that overlap one another cannot all be BIO-labelled: the
longest is labelled, the others stay in the sentence's gold ``spans`` (so F1 over character spans
still counts them, as the official evaluation does);
:func:`electra_tf.finetune.char_spans.spans_bio_cannot_represent` lists what labelling loses.
"""

from __future__ import annotations

import bisect
import re
from pathlib import Path

from electra_tf.errors import UserError
from electra_tf.finetune.examples import BratSentence, CharSpan, Location
from electra_tf.finetune.text_files import numbered_lines, read_text

_WORD = re.compile(r"\w+|[^\w\s]")
_SENTENCE_END = re.compile(r"[.!?]\s+")
_OPENING_MARKS = "¿¡(«“\"'"
_LINE = re.compile(r"[^\n]+")


def read_brat_folder(folder: Path) -> list[BratSentence]:
    """The sentences of every ``.txt`` document of ``folder`` (sorted by name) with its ``.ann``."""
    if not folder.is_dir():
        raise UserError(f"{folder}: folder not found.")
    texts = sorted(folder.glob("*.txt"))
    if not texts:
        raise UserError(f"{folder}: no .txt documents.")
    orphans = sorted({path.stem for path in folder.glob("*.ann")} - {path.stem for path in texts})
    if orphans:
        raise UserError(f"{folder}: {orphans[0]}.ann has no {orphans[0]}.txt ({len(orphans)} such file(s)).")
    sentences: list[BratSentence] = []
    for text_path in texts:
        sentences.extend(read_brat_document(text_path, text_path.with_suffix(".ann")))
    return sentences


def read_brat_document(text_path: Path, ann_path: Path) -> list[BratSentence]:
    """One document's sentences, BIO-labelled from its entities."""
    text = read_text(text_path)
    spans = read_entities(ann_path, text)
    sentence_ranges = split_sentences(text)
    starts = [start for start, _ in sentence_ranges]
    spans_of: list[list[CharSpan]] = [[] for _ in sentence_ranges]
    for span in spans:
        spans_of[max(bisect.bisect_right(starts, span.start) - 1, 0)].append(span)
    line_starts = [0, *(match.end() for match in re.finditer("\n", text))]
    sentences = []
    for (start, end), sentence_spans in zip(sentence_ranges, spans_of, strict=True):
        offsets = split_words(text, start, end)
        sentences.append(
            BratSentence(
                words=[text[word_start:word_end] for word_start, word_end in offsets],
                labels=bio_labels(offsets, sentence_spans),
                location=Location(text_path, bisect.bisect_right(line_starts, start)),
                document=str(text_path),
                text=text[start:end],
                offsets=offsets,
                spans=sentence_spans,
            )
        )
    return sentences


def read_entities(ann_path: Path, text: str) -> list[CharSpan]:
    """The ``T`` lines of an ``.ann`` file, checked against the document's text.

    Raises :class:`UserError` naming file and line for a malformed T line, offsets outside the text,
    or a text field that differs from the characters at the offsets (a sign of offsets counted on
    another version of the text, or in bytes rather than characters).
    """
    spans = []
    for number, line in numbered_lines(read_text(ann_path, allow_empty=True)):
        if not line.startswith("T"):
            continue
        fields = line.split("\t")
        where = f"{ann_path}, line {number}"
        if len(fields) != 3:
            raise UserError(f"{where}: a T line has 3 tab-separated fields (id, 'TYPE start end', text): {line!r}")
        entity_type, _, offsets = fields[1].partition(" ")
        fragments = [_fragment(fragment, where) for fragment in offsets.split(";")]
        for start, end in fragments:
            if not 0 <= start < end <= len(text):
                raise UserError(f"{where}: offsets {start} {end} outside the text's {len(text)} characters.")
        found = " ".join(text[start:end] for start, end in fragments)
        if found != fields[2]:
            raise UserError(f"{where}: the entity text {fields[2]!r} differs from the document's {found!r}.")
        spans.append(CharSpan(entity_type, fragments[0][0], fragments[-1][1]))
    return spans


def _fragment(fragment: str, where: str) -> tuple[int, int]:
    bounds = fragment.split(" ")
    if len(bounds) != 2 or not all(bound.isascii() and bound.isdigit() for bound in bounds):
        raise UserError(f"{where}: bad offsets {fragment!r} (expected 'start end').")
    return int(bounds[0]), int(bounds[1])


def split_sentences(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of each sentence of ``text``, spaces trimmed, empty ones left out."""
    ranges = []
    for line in _LINE.finditer(text):
        start = line.start()
        for gap in _SENTENCE_END.finditer(text, line.start(), line.end()):
            if gap.end() < line.end() and _is_sentence_end(text, gap.start(), text[gap.end()]):
                ranges.append((start, gap.start() + 1))
                start = gap.end()
        ranges.append((start, line.end()))
    return [trimmed for start, end in ranges if (trimmed := _trim(text, start, end))]


def _is_sentence_end(text: str, mark: int, following: str) -> bool:
    """Whether the mark at ``text[mark]`` ends a sentence, given the character after the spaces."""
    if not (following.isupper() or following in _OPENING_MARKS):
        return False
    if text[mark] != ".":
        return True
    letters = mark
    while letters > 0 and text[letters - 1].isalpha():
        letters -= 1
    short_word = 1 <= mark - letters <= 2 and (letters == 0 or not text[letters - 1].isalnum())
    return not short_word


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def split_words(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each word in ``text[start:end]``, as offsets into ``text``."""
    return [match.span() for match in _WORD.finditer(text, start, end)]


def bio_labels(offsets: list[tuple[int, int]], spans: list[CharSpan]) -> list[str]:
    """BIO labels of words at ``offsets``: each span labels every word it overlaps, longest span first."""
    labels = ["O"] * len(offsets)
    word_starts = [start for start, _ in offsets]
    word_ends = [end for _, end in offsets]
    for span in sorted(spans, key=lambda span: (span.start - span.end, span.start)):
        first = bisect.bisect_right(word_ends, span.start)
        last = bisect.bisect_left(word_starts, span.end)
        if first < last and all(label == "O" for label in labels[first:last]):
            labels[first:last] = [f"B-{span.type}"] + [f"I-{span.type}"] * (last - first - 1)
    return labels
