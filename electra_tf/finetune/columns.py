"""Column files for tagging: one word per line, blank lines between sentences.

The format of CoNLL-2002 (``word POS tag``, whitespace-separated), of the PharmaCoNER BIO files
(``token<TAB>tag``) and of the generic ``tagging`` kind: the user names the word column, the label
column and the delimiter. ``-DOCSTART-`` lines (article boundaries in CoNLL files) are skipped and
end the sentence. Every line of a file must have the same number of columns: a line with another
count is almost always a broken file (a lost tab, a space inside a word of a whitespace file), and
reading on would shift words and labels silently.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from electra_tf.errors import UserError
from electra_tf.finetune.examples import Location, TaggedSentence
from electra_tf.finetune.text_files import numbered_lines, read_text

DOCSTART = "-DOCSTART-"


@dataclasses.dataclass(frozen=True)
class ColumnFormat:
    """How to read a column file.

    ``word_column`` and ``label_column`` are 0-based; negative counts from the end (-1: the last
    column). ``delimiter`` None splits on any run of whitespace, "\\t" on each tab (words may then
    hold spaces). ``columns`` fixes the number of columns; None lets the first word line decide.
    """

    word_column: int = 0
    label_column: int = -1
    delimiter: str | None = None
    columns: int | None = None


CONLL2002 = ColumnFormat()
"""``word [POS] tag``: whitespace-separated, the tag last (2 or 3 columns, the same in the whole file)."""

PHARMACONER = ColumnFormat(word_column=0, label_column=1, delimiter="\t", columns=2)
"""``token<TAB>tag``."""


def read_column_file(path: Path, column_format: ColumnFormat = CONLL2002) -> list[TaggedSentence]:
    """The sentences of a column file; :class:`UserError` naming file and line for a bad line."""
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    labels: list[str] = []
    first_line = 0
    columns = column_format.columns

    def end_sentence() -> None:
        if words:
            sentences.append(TaggedSentence(list(words), list(labels), Location(path, first_line)))
            words.clear()
            labels.clear()

    for number, line in numbered_lines(read_text(path)):
        if not line.strip():
            end_sentence()
            continue
        fields = line.split(column_format.delimiter)
        if columns is None:
            columns = len(fields)
        if len(fields) != columns:
            raise UserError(f"{path}, line {number}: {len(fields)} columns where the file has {columns}: {line!r}")
        word, label = _pick(fields, column_format, path, number)
        if word == DOCSTART:
            end_sentence()
            continue
        if not word.strip() or not label.strip():
            raise UserError(f"{path}, line {number}: empty word or label: {line!r}")
        if not words:
            first_line = number
        words.append(word)
        labels.append(label.strip())
    end_sentence()
    if not sentences:
        raise UserError(f"{path}: no sentences (only blank or {DOCSTART} lines).")
    return sentences


def _pick(fields: list[str], column_format: ColumnFormat, path: Path, number: int) -> tuple[str, str]:
    """The word and label fields of one line."""
    try:
        return fields[column_format.word_column], fields[column_format.label_column]
    except IndexError:
        raise UserError(
            f"{path}, line {number}: no column {column_format.word_column} (word) or "
            f"{column_format.label_column} (label) in a line of {len(fields)} columns (columns count from 0)."
        ) from None
