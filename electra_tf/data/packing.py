"""Packing tokenized lines into examples with the rules of Google's ``ExampleBuilder``.

The rules (docs/data_format.md#packing), restated over line lengths:

* each line is one sentence; lines accumulate until their token count reaches the *target*
  (``max_seq_length``, or with probability 0.05 after each example a random length in
  ``[5, max_seq_length]``), and a document boundary also closes the accumulated lines;
* the first segment's target is ``(target - 3) // 2``, or, with probability 0.1, unlimited (a
  single-segment example); a line goes to the first segment if the segment is empty, if it fits
  under the segment's target, or (with probability 0.5) if it is the first line that does not fit
  while the second segment is still empty; otherwise it goes to the second segment. A later short
  line can still go back to the first segment (Google's quirk, kept);
* the first segment is truncated to ``max_seq_length - 2`` tokens and the second to what is left
  after ``[CLS] A [SEP] ... [SEP]``; overflow tokens are dropped;
* ``[CLS] A [SEP] B [SEP]`` (``B [SEP]`` only if B is not empty), segment ids 0 then 1, mask 1 on
  real tokens, padded with the vocab's ``[PAD]`` id.

Lines with no tokens change nothing in Google's builder (they add an empty sentence), so callers
leave them out; every line given to :meth:`ExamplePacker.plan` outside a boundary has tokens.

Deciding where examples end and which segment each line joins is a loop over examples (a bisection
per example, a short loop over its lines); building the token arrays is vectorised numpy over the
tokens, so no Python runs per token. Random numbers come from :class:`UniformStream`, one stream
per packer, in the same order as Google draws them, so a seed fixes the output.

The ``carry`` packing mode (:mod:`electra_tf.data.carry_packing`) draws the same shapes from
:class:`ExampleShapes` but splits the line that crosses an example's end instead of truncating it.
"""

from __future__ import annotations

import bisect
import dataclasses
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from electra_tf.tokenization import Vocab

SINGLE_SEGMENT_PROBABILITY = 0.1
SHORT_TARGET_PROBABILITY = 0.05
MIN_TARGET_LENGTH = 5
UNLIMITED_FIRST_SEGMENT = 100_000
SECOND_SEGMENT_COIN = 0.5

GOOGLE_PACKING = "google"
"""Google's builder exactly: the tokens of a line beyond its example's end are dropped."""
CARRY_PACKING = "carry"
"""The line that crosses an example's end is split and its rest starts the next example
(:mod:`electra_tf.data.carry_packing`)."""
PACKING_MODES = (CARRY_PACKING, GOOGLE_PACKING)


class UniformStream:
    """Uniform numbers in [0, 1) from a seeded generator, drawn in blocks so one at a time is cheap."""

    def __init__(self, generator: np.random.Generator, block: int = 4096) -> None:
        self._generator = generator
        self._block = block
        self._values: list[float] = []
        self._position = 0

    def next(self) -> float:
        if self._position == len(self._values):
            self._values = self._generator.random(self._block).tolist()
            self._position = 0
        value = self._values[self._position]
        self._position += 1
        return value

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` numbers (the same ones ``count`` calls of :meth:`next` would give)."""
        return np.fromiter((self.next() for _ in range(count)), dtype=np.float64, count=count)


@dataclasses.dataclass(frozen=True)
class PackPlan:
    """Examples over a run of lines: example ``i`` is lines ``[starts[i], ends[i])``.

    ``second[j]`` tells whether line ``j`` joined its example's second segment; lines from
    ``pending_start`` on are not in an example yet (they continue in the next call).
    """

    starts: np.ndarray
    ends: np.ndarray
    second: np.ndarray
    pending_start: int


class ExampleShapes:
    """Google's random example shapes: each example's target length and its segment rule.

    Both packing modes draw from it in the same order (per example: the single-segment coin, the
    coins for lines that do not fit the first segment, then the next example's target).
    """

    def __init__(self, max_seq_length: int, uniforms: UniformStream) -> None:
        if max_seq_length < MIN_TARGET_LENGTH:
            raise ValueError(f"max_seq_length must be at least {MIN_TARGET_LENGTH}")
        self.max_seq_length = max_seq_length
        self._uniforms = uniforms
        # A stream starts as if an example had just been made.
        self.target = self._next_target()

    def close(self, lengths: list[int]) -> list[int]:
        """Close an example made of lines with these token counts: the indices of the lines that
        join its second segment (Google's rule); then draw the next example's target."""
        if self._uniforms.next() < SINGLE_SEGMENT_PROBABILITY:
            first_target = UNLIMITED_FIRST_SEGMENT
        else:
            first_target = (self.target - 3) // 2
        second = []
        if sum(lengths) >= first_target:
            # The first line always starts the first segment (it is never empty).
            first_length, second_length = lengths[0], 0
            for line in range(1, len(lengths)):
                length = lengths[line]
                if first_length + length < first_target or (
                    second_length == 0 and first_length < first_target and self._uniforms.next() < SECOND_SEGMENT_COIN
                ):
                    first_length += length
                else:
                    second_length += length
                    second.append(line)
        self.target = self._next_target()
        return second

    def _next_target(self) -> int:
        if self._uniforms.next() < SHORT_TARGET_PROBABILITY:
            return MIN_TARGET_LENGTH + int(self._uniforms.next() * (self.max_seq_length - MIN_TARGET_LENGTH + 1))
        return self.max_seq_length


class ExamplePacker:
    """Google's example-building state machine over line lengths (one per output stream)."""

    def __init__(self, max_seq_length: int, uniforms: UniformStream) -> None:
        self.max_seq_length = max_seq_length
        self._shapes = ExampleShapes(max_seq_length, uniforms)

    def plan(self, lengths: np.ndarray, boundaries: np.ndarray) -> PackPlan:
        """Cut examples from lines with these token counts; ``boundaries`` marks document ends.

        Boundary lines hold no tokens and join no example. Lines after the last boundary that do
        not reach the target yet stay pending: the caller passes them again with the next lines.
        """
        count = len(lengths)
        cumulative = [0, *np.cumsum(lengths, dtype=np.int64).tolist()]
        line_lengths = lengths.tolist()
        second = np.zeros(count, dtype=bool)
        starts: list[int] = []
        ends: list[int] = []

        def make(start: int, end: int) -> None:
            for line in self._shapes.close(line_lengths[start:end]):
                second[start + line] = True
            starts.append(start)
            ends.append(end)

        start = 0
        # Document ends, then None: the end of the run, where lines may stay pending.
        for stop in [*np.flatnonzero(boundaries).tolist(), None]:
            limit = count if stop is None else stop
            while True:
                # The line at which the running count reaches the target ends an example.
                end = bisect.bisect_left(cumulative, cumulative[start] + self._shapes.target, lo=start + 1)
                if end > limit:
                    break
                make(start, end)
                start = end
            if stop is None:
                break
            if cumulative[stop] > cumulative[start]:
                make(start, stop)
            start = stop + 1
        return PackPlan(
            np.array(starts, dtype=np.int64),
            np.array(ends, dtype=np.int64),
            second,
            start,
        )

    def pack(
        self,
        lengths: np.ndarray,
        boundaries: np.ndarray,
        token_starts: np.ndarray,
        token_ids: np.ndarray,
        special: PackingIds,
    ) -> Packed:
        """:meth:`plan`, then the example arrays (line ``j``'s tokens start at ``token_starts[j]``)."""
        plan = self.plan(lengths, boundaries)
        examples = assemble_examples(plan, lengths, token_starts, token_ids, self.max_seq_length, special)
        return Packed(examples, plan.pending_start, 0)


@dataclasses.dataclass(frozen=True)
class PackingIds:
    """The vocab ids packing writes: [CLS] and [SEP] around the segments, [PAD] after them."""

    cls_id: int
    sep_id: int
    pad_id: int

    @classmethod
    def from_vocab(cls, vocab: Vocab) -> PackingIds:
        return cls(cls_id=vocab.cls_id, sep_id=vocab.sep_id, pad_id=vocab.pad_id)


@dataclasses.dataclass(frozen=True)
class PackedExamples:
    """``[examples, max_seq_length]`` arrays in Google's layout, and the tokens truncation dropped."""

    input_ids: np.ndarray
    input_mask: np.ndarray
    segment_ids: np.ndarray
    dropped_tokens: int

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclasses.dataclass(frozen=True)
class Packed:
    """A packer's output for a run of lines: the examples, and where the lines not yet in an
    example begin (line ``pending_line``, after its first ``pending_offset`` tokens)."""

    examples: PackedExamples
    pending_line: int
    pending_offset: int


def assemble_examples(
    plan: PackPlan,
    lengths: np.ndarray,
    token_starts: np.ndarray,
    token_ids: np.ndarray,
    max_seq_length: int,
    special: PackingIds,
) -> PackedExamples:
    """The example arrays of ``plan``: line ``j`` has ``lengths[j]`` tokens at
    ``token_ids[token_starts[j]:]``. Vectorised over tokens."""
    count = len(plan.starts)
    if count == 0:
        empty = np.zeros((0, max_seq_length), dtype=np.int32)
        return PackedExamples(empty, empty.copy(), empty.copy(), 0)
    # The lines inside examples, in order; examples are contiguous runs of them.
    depth = np.zeros(len(lengths) + 1, dtype=np.int32)
    depth[plan.starts] += 1
    depth[plan.ends] -= 1
    lines = np.flatnonzero(np.cumsum(depth[:-1]))
    example = np.searchsorted(plan.starts, lines, side="right") - 1
    first_line = np.searchsorted(lines, plan.starts)
    line_lengths = lengths[lines].astype(np.int64)
    in_second = plan.second[lines]
    length_first = np.where(in_second, 0, line_lengths)
    length_second = line_lengths - length_first
    # Where each line's tokens start within its segment.
    before_first = np.cumsum(length_first) - length_first
    before_second = np.cumsum(length_second) - length_second
    offset = np.where(
        in_second,
        before_second - before_second[first_line][example],
        before_first - before_first[first_line][example],
    )
    first_total = np.add.reduceat(length_first, first_line)
    second_total = np.add.reduceat(length_second, first_line)
    first_kept = np.minimum(first_total, max_seq_length - 2)
    second_kept = np.minimum(second_total, np.maximum(0, max_seq_length - first_kept - 3))

    # Per token: its line, its position in the line and in its segment, its column in the example.
    token_line = np.repeat(np.arange(len(lines)), line_lengths)
    in_line = np.arange(len(token_line)) - np.repeat(np.cumsum(line_lengths) - line_lengths, line_lengths)
    token_example = example[token_line]
    token_second = in_second[token_line]
    in_segment = offset[token_line] + in_line
    keep = in_segment < np.where(token_second, second_kept[token_example], first_kept[token_example])
    column = np.where(token_second, first_kept[token_example] + 2, 1) + in_segment
    input_ids = np.full((count, max_seq_length), special.pad_id, dtype=np.int32)
    input_ids[token_example[keep], column[keep]] = token_ids[token_starts[lines][token_line[keep]] + in_line[keep]]

    rows = np.arange(count)
    has_second = second_kept > 0
    input_ids[:, 0] = special.cls_id
    input_ids[rows, first_kept + 1] = special.sep_id
    input_ids[rows[has_second], (first_kept + second_kept + 2)[has_second]] = special.sep_id
    used = first_kept + 2 + np.where(has_second, second_kept + 1, 0)
    positions = np.arange(max_seq_length)
    input_mask = (positions < used[:, None]).astype(np.int32)
    segment_ids = ((positions >= (first_kept + 2)[:, None]) & (positions < used[:, None])).astype(np.int32)
    dropped = int(first_total.sum() + second_total.sum() - first_kept.sum() - second_kept.sum())
    return PackedExamples(input_ids, input_mask, segment_ids, dropped)
