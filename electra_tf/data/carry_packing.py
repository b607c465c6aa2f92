"""Carry packing: Google's example shapes, but no token of the corpus is dropped.

Google's builder closes an example with the line that makes it reach its target and cuts what does
not fit; on a corpus of paragraphs that is about a quarter of the tokens at ``max_seq_length`` 128,
and all but the first 126 tokens of a line of any length. Here an example is filled up to its
*budget* of corpus tokens (its target minus the 3 places of ``[CLS] A [SEP] B [SEP]``): the line
that crosses the budget is split and its rest begins the next example of the same document. The
targets, the single-segment coin and the segment rule are Google's (:class:`ExampleShapes`), with
each piece of a split line counting as a line; a document end still closes an example.

Where a line is split, within the tokens that fit:

* after the last sentence end (a piece ``.``, ``!``, ``?`` or ``…`` followed by a whole word) if it
  leaves at most :data:`SENTENCE_SLACK` of the budget empty;
* else before the last whole word (a piece that does not start with ``##``), so no word is cut;
* else, when the line's first word does not fit: the whole line starts the next example if this one
  already holds tokens, and otherwise (a "word" longer than the budget) it is cut inside the word.

So the only room left unused is a few tokens before a word or sentence that does not fit, and one
place in examples whose second segment is empty. Deciding the cuts is a loop over examples (a
short backward scan of the split line's tokens); the example arrays are built by
:func:`assemble_examples` over the pieces, vectorised over tokens.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence

import numpy as np

from electra_tf.data.packing import (
    ExampleShapes,
    Packed,
    PackedExamples,
    PackingIds,
    PackPlan,
    UniformStream,
    assemble_examples,
)

SENTENCE_ENDS = frozenset({".", "!", "?", "…"})
SENTENCE_SLACK = 0.1
"""Share of an example's budget that may stay empty so that a split falls after a sentence end."""
EXAMPLE_OVERHEAD = 3
"""``[CLS]`` and two ``[SEP]``."""


@dataclasses.dataclass(frozen=True)
class SplitTokens:
    """The vocab ids of pieces that continue a word (``##``) and of pieces that end a sentence."""

    continuation: frozenset[int]
    sentence_end: frozenset[int]

    @classmethod
    def from_tokens(cls, tokens: Sequence[str]) -> SplitTokens:
        return cls(
            frozenset(index for index, token in enumerate(tokens) if token.startswith("##")),
            frozenset(index for index, token in enumerate(tokens) if token in SENTENCE_ENDS),
        )


class CarryPacker:
    """The carry-mode packer of one output stream; :meth:`pack` has :class:`ExamplePacker`'s contract."""

    def __init__(self, max_seq_length: int, uniforms: UniformStream, split_tokens: SplitTokens) -> None:
        self.max_seq_length = max_seq_length
        self._shapes = ExampleShapes(max_seq_length, uniforms)
        self._split_tokens = split_tokens

    def pack(
        self,
        lengths: np.ndarray,
        boundaries: np.ndarray,
        token_starts: np.ndarray,
        token_ids: np.ndarray,
        special: PackingIds,
    ) -> Packed:
        """Examples from lines with these token counts (``boundaries`` marks document ends; line
        ``j``'s tokens start at ``token_starts[j]``). Tokens after the last boundary that do not fill
        an example yet are pending: the caller passes them again, from the returned line and offset."""
        cumulative = [0, *np.cumsum(lengths, dtype=np.int64).tolist()]
        line_lengths = lengths.tolist()
        pieces: list[tuple[int, int, int]] = []  # (line, first token, end token)
        starts: list[int] = []
        second: list[int] = []
        line, offset = 0, 0  # the next token to pack

        def make(end_line: int, end_offset: int) -> None:
            """One example of the tokens from (line, offset) to (end_line, end_offset)."""
            first_piece = len(pieces)
            piece_lengths = []
            for member in range(line, end_line + 1):
                begin = offset if member == line else 0
                end = end_offset if member == end_line else line_lengths[member]
                if end > begin:
                    pieces.append((member, begin, end))
                    piece_lengths.append(end - begin)
            starts.append(first_piece)
            for index in self._shapes.close(piece_lengths):
                second.append(first_piece + index)

        count = len(lengths)
        # Document ends, then None: the end of the run, where tokens may stay pending.
        for stop in [*np.flatnonzero(boundaries).tolist(), None]:
            limit = count if stop is None else stop
            while cumulative[line] + offset < cumulative[limit]:
                goal = cumulative[line] + offset + self._shapes.target - EXAMPLE_OVERHEAD
                if goal >= cumulative[limit]:
                    if stop is None and goal > cumulative[limit]:
                        break  # the run ends before the example is full: pending
                    make(limit, 0)
                    line, offset = limit, 0
                    break
                end_line = bisect.bisect_right(cumulative, goal, lo=line) - 1
                end_offset = goal - cumulative[end_line]
                if end_offset > 0:
                    begin = offset if end_line == line else 0
                    end_offset = self._split(
                        token_ids, int(token_starts[end_line]), begin, end_offset, may_defer=end_line > line
                    )
                make(end_line, end_offset)
                line, offset = end_line, end_offset
            if stop is not None:
                line, offset = stop + 1, 0
        return Packed(self._assemble(pieces, starts, second, token_starts, token_ids, special), line, offset)

    def _split(self, token_ids: np.ndarray, line_start: int, begin: int, fits: int, may_defer: bool) -> int:
        """How many tokens of a line (its tokens from ``begin`` on are free) stay in this example,
        when its first ``fits`` tokens fit: see the module docstring. Searches back from ``fits``."""
        continuation, sentence_end = self._split_tokens.continuation, self._split_tokens.sentence_end
        window = token_ids[line_start + begin : line_start + fits + 1].tolist()
        sentence_from = fits - int(SENTENCE_SLACK * (self._shapes.target - EXAMPLE_OVERHEAD)) - begin
        word = None  # the last whole word that fits
        # ``index`` tokens of the window stay: a split before window[index].
        for index in range(len(window) - 1, 0, -1):
            if window[index] in continuation:
                continue
            if index < sentence_from:
                return begin + (index if word is None else word)
            if window[index - 1] in sentence_end:
                return begin + index
            if word is None:
                word = index
        if word is not None:
            return begin + word
        return begin if may_defer else fits

    def _assemble(
        self,
        pieces: list[tuple[int, int, int]],
        starts: list[int],
        second: list[int],
        token_starts: np.ndarray,
        token_ids: np.ndarray,
        special: PackingIds,
    ) -> PackedExamples:
        """The example arrays: each piece is a line of :func:`assemble_examples`."""
        piece_array = np.array(pieces, dtype=np.int64).reshape(-1, 3)
        in_second = np.zeros(len(pieces), dtype=bool)
        in_second[second] = True
        plan = PackPlan(
            np.array(starts, dtype=np.int64),
            np.array([*starts[1:], len(pieces)], dtype=np.int64),
            in_second,
            len(pieces),
        )
        lengths = piece_array[:, 2] - piece_array[:, 1]
        piece_starts = token_starts[piece_array[:, 0]] + piece_array[:, 1]
        return assemble_examples(plan, lengths, piece_starts, token_ids, self.max_seq_length, special)
