"""Files of texts (or text pairs) with a label: TSV with a header row, or JSON Lines.

The format of XNLI (columns ``sentence1``, ``sentence2``, ``gold_label`` among others) and of the
generic ``classification`` kind, where the user names the columns. TSV fields are split on tabs
with no quoting, as XNLI's files are written (their texts contain quote characters that a CSV
reader would treat as quoting). A ``.jsonl`` file holds one JSON object per line; its label may be
a string or a number (read as text).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from electra_tf.errors import UserError
from electra_tf.finetune.examples import ClassificationExample, Location
from electra_tf.finetune.text_files import numbered_lines, read_text


@dataclasses.dataclass(frozen=True)
class TextColumns:
    """The names of the first text, the optional second text, and the label columns (or JSON keys)."""

    text_a: str = "text"
    text_b: str | None = None
    label: str = "label"

    @property
    def names(self) -> list[str]:
        return [name for name in (self.text_a, self.text_b, self.label) if name is not None]


DEFAULT_COLUMNS = TextColumns()
"""``text`` and ``label``, single texts."""

XNLI = TextColumns(text_a="sentence1", text_b="sentence2", label="gold_label")


def read_classification_file(path: Path, columns: TextColumns) -> list[ClassificationExample]:
    """The examples of a ``.jsonl`` file, or else of a TSV file with a header row."""
    reader = _read_jsonl if path.suffix == ".jsonl" else _read_tsv
    examples = reader(path, columns)
    if not examples:
        raise UserError(f"{path}: no examples.")
    return examples


def _read_tsv(path: Path, columns: TextColumns) -> list[ClassificationExample]:
    lines = numbered_lines(read_text(path))
    _, header_line = next(lines)
    header = header_line.split("\t")
    missing = [name for name in columns.names if name not in header]
    if missing:
        raise UserError(f"{path}, line 1: no column {missing[0]!r} in the header (columns: {', '.join(header)}).")
    index = {name: header.index(name) for name in columns.names}
    examples = []
    for number, line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise UserError(
                f"{path}, line {number}: {len(fields)} tab-separated fields where the header has {len(header)}."
            )
        examples.append(_example({name: fields[position] for name, position in index.items()}, columns, path, number))
    return examples


def _read_jsonl(path: Path, columns: TextColumns) -> list[ClassificationExample]:
    examples = []
    for number, line in numbered_lines(read_text(path)):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise UserError(f"{path}, line {number}: not valid JSON ({error.msg}).") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}, line {number}: a JSON object was expected.")
        values = {}
        for name in columns.names:
            value = record.get(name)
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise UserError(f"{path}, line {number}: the key {name!r} is missing or not a string or number.")
            values[name] = str(value)
        examples.append(_example(values, columns, path, number))
    return examples


def _example(values: dict[str, str], columns: TextColumns, path: Path, number: int) -> ClassificationExample:
    label = values[columns.label].strip()
    if not label or not values[columns.text_a].strip():
        raise UserError(f"{path}, line {number}: empty {columns.label!r} or {columns.text_a!r}.")
    text_b = values[columns.text_b] if columns.text_b is not None else None
    return ClassificationExample(values[columns.text_a], text_b, label, Location(path, number))
