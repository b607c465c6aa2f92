"""Tagging examples as word pieces: labels at each word's first piece, long sentences in windows.

Each word is labelled at its first piece (Google's scheme); its other pieces, ``[CLS]``,
``[SEP]`` and context words carry :data:`IGNORE`, so the loss and the scores skip them. A word the
tokenizer turns into no piece (a lone control or zero-width character) becomes ``[UNK]``, so that
every word still has a position to be predicted at.

Sentences longer than the sequence length are cut into windows whose *scored* ranges partition the
sentence: every word is predicted and scored exactly once (Google's code drops the words past the
cut). Around its scored words a window carries up to ``context`` pieces of the words before and
fills the rest with the words after, so a word near a cut still sees its neighbours. A word with
more pieces than a window holds is cut to its first pieces; it is still scored, at its first piece.

All segment ids are 0: a tagged sentence is one segment (Google's tagging code sets them all to 1,
a segment the model only saw as the second text of a pair).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Protocol

from electra_tf.errors import UserError
from electra_tf.finetune.examples import TaggedSentence
from electra_tf.finetune.word_pieces import WordPieces

IGNORE = -1
"""The label id of positions that are not scored (and the word id of positions with no word)."""


class SpecialTokenIds(Protocol):
    """The special ids the encoders need, read from the vocab (``electra_tf.tokenization.Vocab`` has them)."""

    @property
    def cls_id(self) -> int: ...

    @property
    def sep_id(self) -> int: ...

    @property
    def unk_id(self) -> int: ...


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """One window over a sentence's words: context ``[start, scored_start)``, scored words
    ``[scored_start, scored_end)``, context ``[scored_end, end)``."""

    start: int
    scored_start: int
    scored_end: int
    end: int


@dataclasses.dataclass(frozen=True)
class TaggingWindow:
    """One model input: ids without padding, and per position the label id and word index (or IGNORE)."""

    sentence: int
    input_ids: list[int]
    segment_ids: list[int]
    label_ids: list[int]
    word_ids: list[int]


@dataclasses.dataclass(frozen=True)
class TaggingEncoding:
    """The windows of a list of sentences and how many words had to be cut to fit a window."""

    windows: list[TaggingWindow]
    truncated_words: int


def plan_windows(piece_counts: Sequence[int], budget: int, context: int) -> list[WindowPlan]:
    """Windows of at most ``budget`` pieces whose scored ranges partition the words, in order.

    ``piece_counts`` are the words' piece counts, each between 1 and ``budget``. A window scores
    as many words as fit once ``context`` pieces are kept free after them and, except in the first
    window, before them (at least one word); the last window scores all the remaining words when
    they fit.
    """
    windows: list[WindowPlan] = []
    count = len(piece_counts)
    scored_start = 0
    while scored_start < count:
        left_room = context if scored_start > 0 else 0
        if sum(piece_counts[scored_start:]) + left_room <= budget:
            scored_end = count
        else:
            limit = budget - left_room - context
            scored_end, used = scored_start + 1, piece_counts[scored_start]
            while scored_end < count and used + piece_counts[scored_end] <= limit:
                used += piece_counts[scored_end]
                scored_end += 1
        used = sum(piece_counts[scored_start:scored_end])
        start, room = scored_start, min(context, budget - used)
        while start > 0 and piece_counts[start - 1] <= room:
            start -= 1
            room -= piece_counts[start]
        room = budget - sum(piece_counts[start:scored_end])
        end = scored_end
        while end < count and piece_counts[end] <= room:
            room -= piece_counts[end]
            end += 1
        windows.append(WindowPlan(start, scored_start, scored_end, end))
        scored_start = scored_end
    return windows


def encode_tagging(
    sentences: Sequence[TaggedSentence],
    label_to_id: Mapping[str, int],
    word_pieces: WordPieces,
    special: SpecialTokenIds,
    max_seq_length: int,
    context: int | None = None,
) -> TaggingEncoding:
    """The windows of ``sentences`` for sequences of at most ``max_seq_length`` ids.

    ``context`` (pieces of left context per window) defaults to a quarter of the room for words.
    """
    budget = max_seq_length - 2  # [CLS] and [SEP]
    if budget < 1:
        raise UserError(f"max_seq_length must be at least 3 for tagging, not {max_seq_length}.")
    context = budget // 4 if context is None else context
    if not 0 <= context < budget:
        raise UserError(f"the window context must be between 0 and {budget - 1} pieces, not {context}.")
    windows = []
    truncated = 0
    for index, sentence in enumerate(sentences):
        pieces = [word_pieces(word) or [special.unk_id] for word in sentence.words]
        truncated += sum(len(word) > budget for word in pieces)
        pieces = [word[:budget] for word in pieces]
        labels = [label_to_id[label] for label in sentence.labels]
        for plan in plan_windows([len(word) for word in pieces], budget, context):
            windows.append(_window(index, plan, pieces, labels, special))
    return TaggingEncoding(windows, truncated)


def _window(
    sentence: int, plan: WindowPlan, pieces: list[list[int]], labels: list[int], special: SpecialTokenIds
) -> TaggingWindow:
    input_ids, label_ids, word_ids = [special.cls_id], [IGNORE], [IGNORE]
    for word in range(plan.start, plan.end):
        scored = plan.scored_start <= word < plan.scored_end
        input_ids.extend(pieces[word])
        label_ids.extend([labels[word] if scored else IGNORE] + [IGNORE] * (len(pieces[word]) - 1))
        word_ids.extend([word if scored else IGNORE] + [IGNORE] * (len(pieces[word]) - 1))
    input_ids.append(special.sep_id)
    label_ids.append(IGNORE)
    word_ids.append(IGNORE)
    return TaggingWindow(sentence, input_ids, [0] * len(input_ids), label_ids, word_ids)


def word_predictions(
    windows: Sequence[TaggingWindow], predictions: Sequence[Sequence[int]], sentence_lengths: Sequence[int]
) -> list[list[int]]:
    """Each sentence's predicted label id per word, from per-position predictions of each window.

    ``predictions[k]`` holds window ``k``'s prediction at each position (padding after its ids is
    ignored). Raises ValueError unless every word gets exactly one prediction.
    """
    if len(windows) != len(predictions):
        raise ValueError(f"{len(windows)} windows but {len(predictions)} predictions")
    words: list[list[int | None]] = [[None] * length for length in sentence_lengths]
    for window, predicted in zip(windows, predictions, strict=True):
        for position, word in enumerate(window.word_ids):
            if word == IGNORE:
                continue
            if words[window.sentence][word] is not None:
                raise ValueError(f"sentence {window.sentence}, word {word}: predicted twice")
            words[window.sentence][word] = int(predicted[position])
    for index, sentence in enumerate(words):
        if None in sentence:
            raise ValueError(f"sentence {index}, word {sentence.index(None)}: never predicted")
    return words  # type: ignore[return-value]
