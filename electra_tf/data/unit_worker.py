"""One unit of work: read a few MB of corpus, tokenize, split off held-out documents, pack, write.

Runs in the builder's worker processes (or in the main process with ``--num-processes 1``). Text is
tokenized a chunk (about 1 MB of whole lines) at a time in one in-graph call that also splits the
lines and finds the blank ones, so Python never loops over tokens or characters. Lines that do not
yet make a full example at the end of a chunk are carried (as text) into the next chunk, which makes
the output independent of where chunks end; with carry packing the first of them may be the rest of
a split line, carried whole with the count of its tokens already in examples.

Everything random in a unit comes from generators seeded by ``(seed, unit index, purpose)``: the
packing of training and of held-out examples, the choice of held-out documents, and the shuffle of
each chunk's examples (so that neighbouring records in a shard are not consecutive pieces of one
document). A unit's records and its summary are written under temporary names and renamed when
complete; a unit whose summary exists is finished, which is what lets an interrupted build resume.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from electra_tf.atomic_io import write_text_atomically
from electra_tf.data.carry_packing import CarryPacker, SplitTokens
from electra_tf.data.corpus import Chunk, Piece, Unit, read_chunks
from electra_tf.data.packing import (
    CARRY_PACKING,
    ExamplePacker,
    PackedExamples,
    PackingIds,
    UniformStream,
)
from electra_tf.data.tfrecord import AtomicRecordWriter, ExampleSerializer
from electra_tf.errors import UserError

# Every character Python's str.strip() removes (a line made of them is blank, as in Google's
# builder), except "\n", which ends lines. Checked against str.isspace() by the tests.
PYTHON_WHITESPACE = (
    "\t\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + "\u2028\u2029\u202f\u205f\u3000"
)
BLANK_LINE_PATTERN = "[" + "".join(f"\\x{{{ord(char):x}}}" for char in PYTHON_WHITESPACE) + "]*"
"""RE2: a line of whitespace only (or empty)."""

TRAIN, EVAL = "train", "eval"
SPLITS = (TRAIN, EVAL)
_STREAM_IDS = {"pack-train": 0, "pack-eval": 1, "documents": 2, "shuffle": 3}
_REPLACEMENT_CHARACTER = "\ufffd".encode()


@dataclasses.dataclass(frozen=True)
class UnitSettings:
    """What every unit of one build shares (sent once to each worker process)."""

    vocab_file: str
    do_lower_case: bool
    strip_accents: bool
    max_seq_length: int
    blanks_separate_docs: bool
    eval_fraction: float
    seed: int
    strict: bool
    units_dir: str
    chunk_bytes: int
    max_line_bytes: int
    packing: str
    """``CARRY_PACKING`` or ``GOOGLE_PACKING``."""


def unit_file(units_dir: str | Path, index: int, kind: str) -> Path:
    """Where unit ``index`` writes ``kind``: "train"/"eval" records or its "json" summary."""
    suffix = "json" if kind == "json" else f"{kind}.tfrecord"
    return Path(units_dir) / f"unit-{index:06d}.{suffix}"


def new_summary(index: int) -> dict[str, Any]:
    """A unit summary with every count at zero."""
    counts = ("bytes", "lines", "tokens", "invalid_utf8", "long_lines_cut")
    per_split = ("documents", "examples", "example_tokens", "dropped_tokens")
    return {
        "index": index,
        **dict.fromkeys(counts, 0),
        **{f"{name}_{split}": 0 for name in per_split for split in SPLITS},
    }


class UnitWorker:
    """Builds units; holds the tokenizer (seconds to build, so one per process)."""

    def __init__(self, settings: UnitSettings) -> None:
        import tensorflow as tf

        from electra_tf.tokenization import Tokenizer, Vocab

        self.settings = settings
        vocab = Vocab.load(settings.vocab_file)
        tokenizer = Tokenizer(vocab, settings.do_lower_case, settings.strip_accents)
        self.special = PackingIds.from_vocab(vocab)
        self.split_tokens = SplitTokens.from_tokens(vocab.tokens) if settings.packing == CARRY_PACKING else None
        self.serializer = ExampleSerializer(settings.max_seq_length)

        @tf.function(input_signature=[tf.TensorSpec([], tf.string)])
        def tokenize_lines(text: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
            lines = tf.strings.split(text, sep="\n")
            ids = tokenizer.tokenize(lines)
            blank = tf.strings.regex_full_match(lines, BLANK_LINE_PATTERN)
            return ids.row_splits, ids.flat_values, blank

        self._tokenize_lines = tokenize_lines

    def tokenize(self, text: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row splits, flat token ids and blank-line flags of the ``\\n``-separated lines of ``text``."""
        row_splits, ids, blank = self._tokenize_lines(text)
        return row_splits.numpy(), ids.numpy(), blank.numpy()

    def build(self, unit: Unit) -> dict[str, Any]:
        """Build one unit's record files and summary; returns the summary."""
        started = time.perf_counter()
        settings = self.settings
        summary = new_summary(unit.index)
        writers = {split: AtomicRecordWriter(unit_file(settings.units_dir, unit.index, split)) for split in SPLITS}
        state = _UnitState(self, unit.index, summary, writers)
        for piece in unit.pieces:
            chunks = read_chunks(
                piece, settings.chunk_bytes, settings.max_line_bytes, split_long_lines=settings.packing == CARRY_PACKING
            )
            for chunk in chunks:
                summary["bytes"] += len(chunk.text) + 1
                summary["long_lines_cut"] += chunk.long_line_cut
                state.add_text(self._valid_utf8(chunk, piece, summary))
            state.end_piece()
        for writer in writers.values():
            writer.commit()
        summary["seconds"] = time.perf_counter() - started
        write_text_atomically(unit_file(settings.units_dir, unit.index, "json"), json.dumps(summary))
        return summary

    def _valid_utf8(self, chunk: Chunk, piece: Piece, summary: dict[str, Any]) -> bytes:
        """The chunk's text, with invalid UTF-8 replaced by U+FFFD and counted (or refused if strict)."""
        try:
            chunk.text.decode("utf-8")
            return chunk.text
        except UnicodeDecodeError as error:
            if self.settings.strict:
                raise UserError(
                    f"invalid UTF-8 in {piece.path} at byte offset {chunk.offset + error.start} "
                    "(drop --strict to replace invalid bytes and count them)"
                ) from None
        repaired = chunk.text.decode("utf-8", errors="replace").encode("utf-8")
        summary["invalid_utf8"] += repaired.count(_REPLACEMENT_CHARACTER) - chunk.text.count(_REPLACEMENT_CHARACTER)
        return repaired


class _UnitState:
    """The running state of one unit: open document, pending lines, packers, random streams."""

    def __init__(
        self, worker: UnitWorker, index: int, summary: dict[str, Any], writers: dict[str, AtomicRecordWriter]
    ) -> None:
        settings = worker.settings

        def generator(purpose: str) -> np.random.Generator:
            return np.random.default_rng([settings.seed, index, _STREAM_IDS[purpose]])

        self._worker = worker
        self._summary = summary
        self._writers = writers
        self._packers = {split: self._packer(UniformStream(generator(f"pack-{split}"))) for split in SPLITS}
        self._document_draws = UniformStream(generator("documents"))
        self._shuffle = generator("shuffle")
        self._open_document = self._draw_documents(1)[0]  # True: held out
        self._open_document_has_tokens = False
        self._carry = b""  # pending lines of the open document, re-read with the next chunk
        self._carry_lines = 0
        self._carry_skip = 0  # tokens of the first pending line already in examples (carry packing)

    def _packer(self, uniforms: UniformStream) -> ExamplePacker | CarryPacker:
        settings, split_tokens = self._worker.settings, self._worker.split_tokens
        if split_tokens is None:
            return ExamplePacker(settings.max_seq_length, uniforms)
        return CarryPacker(settings.max_seq_length, uniforms, split_tokens)

    def add_text(self, text: bytes) -> None:
        """Process a chunk of whole lines."""
        self._step(self._carry + b"\n" + text if self._carry else text, self._carry_lines, end_of_piece=False)

    def end_piece(self) -> None:
        """The end of a file or file slice ends the open document (Google flushes at file end)."""
        self._step(self._carry if self._carry else None, self._carry_lines, end_of_piece=True)

    def _draw_documents(self, count: int) -> np.ndarray:
        """Whether each of ``count`` new documents is held out."""
        if self._worker.settings.eval_fraction <= 0:
            return np.zeros(count, dtype=bool)
        return self._document_draws.take(count) < self._worker.settings.eval_fraction

    def _step(self, text: bytes | None, carried_lines: int, end_of_piece: bool) -> None:
        settings = self._worker.settings
        if text is None:
            row_splits, token_ids, blank = np.zeros(1, np.int64), np.zeros(0, np.int32), np.zeros(0, bool)
        else:
            row_splits, token_ids, blank = self._worker.tokenize(text)
        lengths = np.diff(row_splits)
        self._summary["lines"] += len(lengths) - carried_lines
        self._summary["tokens"] += int(lengths[carried_lines:].sum())
        # The first carried line continues where the last example took its tokens.
        skip, self._carry_skip = self._carry_skip, 0
        line_starts = row_splits.copy()  # (one past the last line: where the end-of-piece boundary starts)
        if skip:
            line_starts[0] += skip
            lengths[0] -= skip

        # Events: document boundaries and lines with tokens (others change nothing in the packing).
        boundary = blank if settings.blanks_separate_docs else np.zeros_like(blank)
        events = np.flatnonzero(boundary | (lengths > 0))
        event_lengths = lengths[events]
        event_boundary = boundary[events]
        if end_of_piece:  # a boundary after the last line
            events = np.append(events, len(lengths))
            event_lengths = np.append(event_lengths, 0)
            event_boundary = np.append(event_boundary, True)

        # Documents: 0 is the open one; a boundary closes one and opens the next.
        document = np.cumsum(event_boundary) - event_boundary
        new_documents = int(event_boundary.sum())
        held_out = np.concatenate([[self._open_document], self._draw_documents(new_documents)])
        document_tokens = np.bincount(document, weights=event_lengths, minlength=new_documents + 1) > 0
        document_tokens[0] |= self._open_document_has_tokens
        for split, is_eval in zip(SPLITS, (False, True), strict=True):
            self._summary[f"documents_{split}"] += int((document_tokens[:-1] & (held_out[:-1] == is_eval)).sum())
        self._open_document = bool(held_out[-1])
        self._open_document_has_tokens = bool(document_tokens[-1])

        self._carry, self._carry_lines = b"", 0
        event_held_out = held_out[document]
        for split, is_eval in zip(SPLITS, (False, True), strict=True):
            mine = event_held_out == is_eval
            packed = self._packers[split].pack(
                event_lengths[mine], event_boundary[mine], line_starts[events[mine]], token_ids, self._worker.special
            )
            if packed.pending_line < int(mine.sum()):
                first_pending = int(events[mine][packed.pending_line])
                self._carry = text[_line_start(text, first_pending) :]
                self._carry_lines = len(lengths) - first_pending
                self._carry_skip = packed.pending_offset + (skip if first_pending == 0 else 0)
            self._write(split, packed.examples)

    def _write(self, split: str, examples: PackedExamples) -> None:
        """Shuffle a chunk's examples, serialise and write them, and count them."""
        if not len(examples):
            return
        order = self._shuffle.permutation(len(examples))
        records = self._worker.serializer.serialize(
            examples.input_ids[order], examples.input_mask[order], examples.segment_ids[order]
        )
        self._writers[split].write(records)
        self._summary[f"examples_{split}"] += len(examples)
        self._summary[f"example_tokens_{split}"] += int(examples.input_mask.sum())
        self._summary[f"dropped_tokens_{split}"] += examples.dropped_tokens


def _line_start(text: bytes, line: int) -> int:
    """Byte offset where line number ``line`` of ``text`` starts."""
    if line == 0:
        return 0
    newlines = np.flatnonzero(np.frombuffer(text, dtype=np.uint8) == ord("\n"))
    return int(newlines[line - 1]) + 1
