"""Classification examples as word pieces: ``[CLS] a [SEP]`` or ``[CLS] a [SEP] b [SEP]``.

Segment ids are 0 up to the first ``[SEP]`` and 1 after it. A pair too long for the sequence is
cut longest-first: one piece at a time from the end of whichever text is longer (the second on a
tie), as BERT's and ELECTRA's classification code do, so a short hypothesis is not lost to a long
premise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from electra_tf.errors import UserError
from electra_tf.finetune.examples import ClassificationExample
from electra_tf.finetune.windows import SpecialTokenIds
from electra_tf.finetune.word_pieces import BatchTokenize


@dataclasses.dataclass(frozen=True)
class ClassificationInput:
    """One model input without padding, and whether a text had to be cut."""

    input_ids: list[int]
    segment_ids: list[int]
    label_id: int
    truncated: bool


def truncate_longest_first(first: list[int], second: list[int], room: int) -> tuple[list[int], list[int]]:
    """Both piece lists cut to ``room`` pieces in all, taking from the end of the longer one."""
    keep_first, keep_second = len(first), len(second)
    while keep_first + keep_second > room:
        if keep_first > keep_second:
            keep_first -= 1
        else:
            keep_second -= 1
    return first[:keep_first], second[:keep_second]


def encode_classification(
    examples: Sequence[ClassificationExample],
    label_to_id: Mapping[str, int],
    tokenize: BatchTokenize,
    special: SpecialTokenIds,
    max_seq_length: int,
) -> list[ClassificationInput]:
    """The inputs of ``examples`` for sequences of at most ``max_seq_length`` ids."""
    pairs = any(example.text_b is not None for example in examples)
    room = max_seq_length - (3 if pairs else 2)
    if room < (2 if pairs else 1):
        raise UserError(f"max_seq_length {max_seq_length} leaves no room for the text(s).")
    firsts = tokenize([example.text_a for example in examples])
    seconds = tokenize([example.text_b or "" for example in examples]) if pairs else [[] for _ in examples]
    inputs = []
    for example, first, second in zip(examples, firsts, seconds, strict=True):
        kept_first, kept_second = truncate_longest_first(first, second, room)
        input_ids = [special.cls_id, *kept_first, special.sep_id]
        segment_ids = [0] * len(input_ids)
        if pairs:
            input_ids += [*kept_second, special.sep_id]
            segment_ids += [1] * (len(kept_second) + 1)
        truncated = len(kept_first) + len(kept_second) < len(first) + len(second)
        inputs.append(ClassificationInput(input_ids, segment_ids, label_to_id[example.label], truncated))
    return inputs
