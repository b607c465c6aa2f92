"""The fine-tuning tasks: for each name, its kind, its metric, its split files and its reader.

Built in: the Spanish benchmarks (``conll2002_ner``, ``ud_pos``, ``pharmaconer``, ``cantemist``,
``xnli``) with their files' usual names in ``--data-dir``, and two generic kinds for the user's own
data (``tagging`` over a column file, ``classification`` over TSV or JSON Lines), whose formats
:func:`tagging_task` and :func:`classification_task` configure.

A split is one or more files (or brat folders) read and concatenated; CANTEMIST's two development
folders make one dev split.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable, Hashable
from pathlib import Path

from electra_tf.errors import UserError
from electra_tf.finetune.brat import read_brat_folder
from electra_tf.finetune.chunks import is_chunk_tag_set
from electra_tf.finetune.classification_files import DEFAULT_COLUMNS, XNLI, TextColumns, read_classification_file
from electra_tf.finetune.columns import CONLL2002, PHARMACONER, ColumnFormat, read_column_file
from electra_tf.finetune.conllu import read_conllu
from electra_tf.finetune.labels import Example

TAGGING = "tagging"
CLASSIFICATION = "classification"

ENTITY_F1 = "entity_f1"
"""Entity-level micro F1 over word-level BIO/BIOES tags (CoNLL evaluation)."""
CHAR_SPAN_F1 = "char_span_f1"
"""Entity-level micro F1 over the original character spans (brat documents)."""
WORD_ACCURACY = "word_accuracy"
"""The fraction of words tagged right (part of speech)."""
ACCURACY = "accuracy"
"""The fraction of examples classified right; macro-F1 is reported next to it."""


@dataclasses.dataclass(frozen=True)
class Grouping:
    """Examples that must stay on one side when a dev set is sliced off the training data."""

    name: str
    """What a group is, in the plural ("documents"), for the stated slice."""
    key: Callable[[Example], Hashable]


@dataclasses.dataclass(frozen=True)
class Task:
    """One fine-tuning task. Split tuples name files or folders in the data folder, read and joined."""

    name: str
    kind: str
    metric: str | None
    """None: entity F1 if the training tags are BIO/BIOES, else word accuracy (generic tagging)."""
    train: tuple[str, ...]
    dev: tuple[str, ...]
    test: tuple[str, ...]
    read: Callable[[Path], list[Example]]
    train_on_dev: bool = False
    """With no training split, train on the dev split (and slice the dev set off it)."""
    grouping: Grouping | None = None


_SAME_FIRST_TEXT = Grouping("pairs sharing a first text", operator.attrgetter("text_a"))
_SAME_DOCUMENT = Grouping("documents", operator.attrgetter("document"))


def tagging_task(column_format: ColumnFormat = CONLL2002) -> Task:
    """The generic ``tagging`` kind: ``train.txt``, ``dev.txt``, ``test.txt`` in ``column_format``."""
    return Task(
        name=TAGGING,
        kind=TAGGING,
        metric=None,
        train=("train.txt",),
        dev=("dev.txt",),
        test=("test.txt",),
        read=functools.partial(read_column_file, column_format=column_format),
    )


def classification_task(columns: TextColumns = DEFAULT_COLUMNS, suffix: str = ".tsv") -> Task:
    """The generic ``classification`` kind: ``train``, ``dev``, ``test`` + ``suffix`` (.tsv or .jsonl)."""
    if suffix not in (".tsv", ".jsonl"):
        raise UserError(f"classification files are .tsv or .jsonl, not {suffix!r}.")
    return Task(
        name=CLASSIFICATION,
        kind=CLASSIFICATION,
        metric=ACCURACY,
        train=(f"train{suffix}",),
        dev=(f"dev{suffix}",),
        test=(f"test{suffix}",),
        read=functools.partial(read_classification_file, columns=columns),
        grouping=_SAME_FIRST_TEXT,
    )


TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        Task(
            name="conll2002_ner",
            kind=TAGGING,
            metric=ENTITY_F1,
            train=("esp.train",),
            dev=("esp.testa",),
            test=("esp.testb",),
            read=functools.partial(read_column_file, column_format=CONLL2002),
        ),
        Task(
            name="ud_pos",
            kind=TAGGING,
            metric=WORD_ACCURACY,
            train=("es_ancora-ud-train.conllu",),
            dev=("es_ancora-ud-dev.conllu",),
            test=("es_ancora-ud-test.conllu",),
            read=read_conllu,
            train_on_dev=True,
        ),
        Task(
            name="pharmaconer",
            kind=TAGGING,
            metric=ENTITY_F1,
            train=("train.txt",),
            dev=("dev.txt",),
            test=("test.txt",),
            read=functools.partial(read_column_file, column_format=PHARMACONER),
        ),
        Task(
            name="cantemist",
            kind=TAGGING,
            metric=CHAR_SPAN_F1,
            train=("train",),
            dev=("dev1", "dev2"),
            test=("test",),
            read=read_brat_folder,
            grouping=_SAME_DOCUMENT,
        ),
        Task(
            name="xnli",
            kind=CLASSIFICATION,
            metric=ACCURACY,
            train=(),
            dev=("xnli.dev.es.tsv",),
            test=("xnli.test.es.tsv",),
            read=functools.partial(read_classification_file, columns=XNLI),
            train_on_dev=True,
            grouping=_SAME_FIRST_TEXT,
        ),
        tagging_task(),
        classification_task(),
    )
}


def get_task(name: str) -> Task:
    """The registered task called ``name``; :class:`UserError` listing the names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}; the tasks are: {', '.join(TASKS)}.") from None


def resolve_metric(task: Task, labels: list[str]) -> str:
    """The task's metric; for generic tagging, entity F1 when the tags are BIO/BIOES, else word accuracy."""
    if task.metric is not None:
        return task.metric
    return ENTITY_F1 if is_chunk_tag_set(labels) else WORD_ACCURACY
