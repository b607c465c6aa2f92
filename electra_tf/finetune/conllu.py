"""CoNLL-U files for part-of-speech tagging (the ``ud_pos`` task): words and their UPOS tags.

CoNLL-U lists *syntactic words*, one per line with an integer id, and may add two other kinds of
line: a multi-word token range (``13-14  al``: the surface token "al" that the words 13 "a" and 14
"el" make up) and an empty node (``8.1``, a word elided in the text, used in enhanced
dependencies). Only syntactic words carry a UPOS tag, and UD's own evaluation and the published
Spanish results (AnCora in EvalES) score them, so the reader keeps the integer-id lines and skips
range lines, empty nodes and comments. The model thus reads "a el" where the text has "al": the
tokenisation the treebank's tags belong to.
"""

from __future__ import annotations

from pathlib import Path

from electra_tf.errors import UserError
from electra_tf.finetune.examples import Location, TaggedSentence
from electra_tf.finetune.text_files import numbered_lines, read_text

FIELDS = 10
_ID, _FORM, _UPOS = 0, 1, 3


def read_conllu(path: Path) -> list[TaggedSentence]:
    """The sentences of a CoNLL-U file as (form, UPOS) per syntactic word.

    Raises :class:`UserError` naming file and line for a line without 10 tab-separated fields, an
    id that is not an integer, a range or an empty node, ids out of sequence, or a word without UPOS.
    """
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    labels: list[str] = []
    first_line = 0
    for number, line in numbered_lines(read_text(path)):
        if not line.strip():
            if words:
                sentences.append(TaggedSentence(words, labels, Location(path, first_line)))
                words, labels = [], []
            continue
        if line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != FIELDS:
            raise UserError(f"{path}, line {number}: {len(fields)} tab-separated fields where CoNLL-U has {FIELDS}.")
        word_id = fields[_ID]
        if _is_range_or_empty_node(word_id):
            continue
        if not _is_number(word_id):
            raise UserError(f"{path}, line {number}: bad word id {word_id!r}.")
        if int(word_id) != len(words) + 1:
            raise UserError(f"{path}, line {number}: word id {word_id} where {len(words) + 1} was expected.")
        if fields[_UPOS] in ("", "_"):
            raise UserError(f"{path}, line {number}: the word {fields[_FORM]!r} has no UPOS tag.")
        if not words:
            first_line = number
        words.append(fields[_FORM])
        labels.append(fields[_UPOS])
    if words:
        sentences.append(TaggedSentence(words, labels, Location(path, first_line)))
    if not sentences:
        raise UserError(f"{path}: no sentences (only comments, ranges or empty nodes).")
    return sentences


def _is_range_or_empty_node(word_id: str) -> bool:
    """``1-2`` (a multi-word token) or ``1.1`` (an empty node), both made of digits."""
    for separator in "-.":
        first, found, second = word_id.partition(separator)
        if found and _is_number(first) and _is_number(second):
            return True
    return False


def _is_number(text: str) -> bool:
    """ASCII digits only (``str.isdigit`` also accepts "²", which ``int`` rejects)."""
    return text.isascii() and text.isdigit()
