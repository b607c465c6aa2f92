"""Train a BERT-format WordPiece ``vocab.txt`` from a plain-text corpus.

The pieces are learnt by Hugging Face's ``WordPieceTrainer`` (``tokenizers``) over words produced by
the very normaliser and pre-tokenizer that :class:`electra_tf.tokenization.Tokenizer` reproduces
(``BertNormalizer`` + ``BertPreTokenizer``), so every piece is one the tokenizer can produce: the
same cleaning, lower-casing, accent stripping, punctuation and CJK splitting.

The corpus is found and streamed by the dataset builder's reader (:mod:`electra_tf.data.corpus`),
twice (memory grows with the number of distinct words, not with the corpus size), with progress
logged as it is read: the same files are read (binary ones skipped with a warning), a damaged
compressed file ends in one error naming it, and an over-long line is cut the same way. The same
corpus and flags give a byte-identical file. Left alone, the trainer is not deterministic: it
numbers the ``##`` forms of characters, and picks which equally rare characters to drop at
``limit_alphabet``, in hash-map order, and it breaks ties between equally frequent merges by those
numbers. So a first, cheap pass counts the characters, the alphabet is chosen here (most frequent
first, then by code point), and the ``##`` form of every alphabet character that can continue a word
is numbered up front (handed to the trainer with the special tokens). The output is written
atomically in a canonical order (special tokens, ``[unusedN]`` slots, then word-initial pieces and
``##`` pieces, each sorted).
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from absl import logging
from tokenizers import Tokenizer as HfTokenizer
from tokenizers import models, pre_tokenizers, trainers
from tokenizers.normalizers import BertNormalizer

from electra_tf.atomic_io import write_text_atomically
from electra_tf.data.builder import CHUNK_BYTES, MAX_LINE_BYTES
from electra_tf.data.corpus import (
    COMPRESSED_SUFFIXES,
    COMPRESSION_RATIO_GUESS,
    Piece,
    read_chunks,
    readable_text_files,
)
from electra_tf.errors import UserError
from electra_tf.path_checks import require_writable_folder
from electra_tf.tokenization import SPECIAL_TOKENS, WORDPIECE_PREFIX, hf_normalizer, resolve_strip_accents

DEFAULT_FILE_PATTERNS = ("*.txt", "*.txt.gz", "*.txt.bz2")
_PROGRESS_EVERY_S = 10.0


@dataclasses.dataclass(frozen=True)
class VocabTrainingResult:
    """What a training run produced, for logs and benchmarks."""

    output: Path
    vocab_size: int
    num_files: int
    num_lines: int
    num_bytes: int
    seconds: float


def find_corpus_files(corpus_dir: str | Path, file_patterns: Sequence[str] = DEFAULT_FILE_PATTERNS) -> list[Path]:
    """The non-empty text files under ``corpus_dir`` (recursively) matching any of ``file_patterns``,
    sorted, exactly as the dataset builder finds them (hidden and binary files are skipped)."""
    files, _ = readable_text_files(Path(corpus_dir), file_patterns)
    return [Path(file.path) for file in files]


class _CorpusReader:
    """Streams the non-blank lines of the corpus files, logging progress by bytes of text read.

    Invalid UTF-8 is replaced (U+FFFD, which the normaliser then drops), as the dataset builder does.
    """

    def __init__(self, files: Sequence[Path], task: str) -> None:
        self.files = list(files)
        self.task = task
        self.total_bytes = sum(path.stat().st_size for path in self.files)
        self.planned_text_bytes = sum(
            path.stat().st_size * (COMPRESSION_RATIO_GUESS if str(path).endswith(COMPRESSED_SUFFIXES) else 1)
            for path in self.files
        )
        self.bytes_read = 0
        self.num_lines = 0
        self._start = time.monotonic()
        self._last_report = self._start

    def __iter__(self) -> Iterator[str]:
        for path in self.files:
            for chunk in read_chunks(Piece(str(path), path.name), CHUNK_BYTES, MAX_LINE_BYTES):
                for line in chunk.text.decode("utf-8", errors="replace").split("\n"):
                    text = line.rstrip("\r")
                    if text.strip():
                        self.num_lines += 1
                        yield text
                self.bytes_read += len(chunk.text) + 1
                self._maybe_report()

    def _maybe_report(self) -> None:
        now = time.monotonic()
        if now - self._last_report < _PROGRESS_EVERY_S:
            return
        self._last_report = now
        elapsed = now - self._start
        rate = self.bytes_read / elapsed
        eta = max(0, self.planned_text_bytes - self.bytes_read) / rate if rate else float("inf")
        logging.info(
            "%s: read %.1f of about %.1f MB of text (%.0f%%), %d lines, %.1f MB/s, about %.0f s left to read",
            self.task,
            self.bytes_read / 1e6,
            self.planned_text_bytes / 1e6,
            100 * min(1.0, self.bytes_read / max(self.planned_text_bytes, 1)),
            self.num_lines,
            rate / 1e6,
            eta,
        )


def canonical_order(pieces: Sequence[str], num_unused: int) -> list[str]:
    """Special tokens, ``[unused0..N-1]``, word-initial pieces sorted, then ``##`` pieces sorted."""
    learnt = [piece for piece in pieces if piece not in SPECIAL_TOKENS]
    initial = sorted(piece for piece in learnt if not piece.startswith(WORDPIECE_PREFIX))
    continuation = sorted(piece for piece in learnt if piece.startswith(WORDPIECE_PREFIX))
    return [*SPECIAL_TOKENS, *(f"[unused{i}]" for i in range(num_unused)), *initial, *continuation]


def train_vocab(
    files: Sequence[Path],
    output: str | Path,
    *,
    vocab_size: int = 32000,
    do_lower_case: bool = True,
    strip_accents: bool | None = None,
    min_frequency: int = 2,
    num_unused: int = 0,
    limit_alphabet: int = 1000,
    overwrite: bool = False,
) -> VocabTrainingResult:
    """Train a WordPiece vocab of ``vocab_size`` entries (special tokens and unused slots included).

    ``min_frequency``: a pair of pieces seen fewer times is never merged. ``limit_alphabet``: at
    most this many distinct characters are kept (the rarest others end up as [UNK]). Raises
    :class:`UserError` for an existing output (unless ``overwrite``), an output that is a folder or
    cannot be written (checked before the work starts), impossible sizes, an empty corpus, or a vocab
    size too small for the alphabet.
    """
    output = Path(output)
    strip_accents = resolve_strip_accents(do_lower_case, strip_accents)
    if output.is_dir():
        raise UserError(f"--output {output} is a folder; give the vocab file to write, e.g. {output / 'vocab.txt'}")
    if output.exists() and not overwrite:
        raise UserError(f"{output} already exists; pass --overwrite to replace it.")
    require_writable_folder(output.parent, "the vocab")
    reserved = len(SPECIAL_TOKENS) + num_unused
    if num_unused < 0 or min_frequency < 1 or limit_alphabet < 1:
        raise UserError("--num-unused must be >= 0, --min-frequency and --limit-alphabet >= 1.")
    if vocab_size <= reserved:
        raise UserError(
            f"--vocab-size {vocab_size} leaves no room for pieces after the {len(SPECIAL_TOKENS)} special tokens "
            f"and {num_unused} unused slots."
        )

    normalizer = hf_normalizer(do_lower_case, strip_accents)
    start = time.monotonic()
    logging.info(
        "training a %d-entry vocab (lower-case=%s, strip accents=%s) on %d file(s), %.1f MB",
        vocab_size,
        do_lower_case,
        strip_accents,
        len(files),
        sum(path.stat().st_size for path in files) / 1e6,
    )
    alphabet = choose_alphabet(_CorpusReader(files, "counting characters"), normalizer, limit_alphabet)
    if not alphabet:
        raise UserError(f"the corpus has no text: {len(files)} file(s), no character left after normalisation.")
    continuations = [WORDPIECE_PREFIX + char for char in alphabet if _can_continue_a_word(char, normalizer)]
    needed = reserved + len(alphabet) + len(continuations)
    if needed > vocab_size:
        raise UserError(
            f"--vocab-size {vocab_size} is too small: the {len(SPECIAL_TOKENS)} special tokens, {num_unused} unused "
            f"slots and the alphabet ({len(alphabet)} characters, {len(continuations)} of them also as ## pieces) "
            f"need {needed}. Raise --vocab-size or lower --limit-alphabet."
        )

    trainer_model = HfTokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=WORDPIECE_PREFIX))
    trainer_model.normalizer = normalizer
    trainer_model.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size - num_unused,
        min_frequency=min_frequency,
        limit_alphabet=len(alphabet),
        initial_alphabet=alphabet,
        special_tokens=[*SPECIAL_TOKENS, *continuations],
        continuing_subword_prefix=WORDPIECE_PREFIX,
        show_progress=False,
    )
    reader = _CorpusReader(files, "counting words")
    trainer_model.train_from_iterator(_log_when_read(reader, start), trainer=trainer)
    pieces = list(trainer_model.get_vocab())
    if len(pieces) < vocab_size - num_unused:
        logging.warning(
            "the corpus only supports %d entries (asked for %d): no pair left with --min-frequency %d.",
            len(pieces) + num_unused,
            vocab_size,
            min_frequency,
        )
    vocab = canonical_order(pieces, num_unused)
    if output.exists() and not overwrite:
        raise UserError(f"{output} appeared while training; pass --overwrite to replace it.")
    try:
        write_text_atomically(output, "".join(f"{token}\n" for token in vocab))
    except OSError as error:
        raise UserError(f"cannot write {output}: {error.strerror or error}") from None
    seconds = time.monotonic() - start
    logging.info("wrote %s: %d entries in %.0f s", output, len(vocab), seconds)
    return VocabTrainingResult(
        output=output,
        vocab_size=len(vocab),
        num_files=len(reader.files),
        num_lines=reader.num_lines,
        num_bytes=reader.total_bytes,
        seconds=seconds,
    )


def choose_alphabet(lines: Iterable[str], normalizer: BertNormalizer, limit_alphabet: int) -> list[str]:
    """The ``limit_alphabet`` most frequent characters of the normalised text, ties by code point, sorted.

    Characters are counted as written, then each distinct one is normalised on its own (the
    normaliser works character by character), so this is the trainer's own count, at C speed.
    """
    raw_counts: collections.Counter[str] = collections.Counter()
    for line in lines:
        raw_counts.update(line)
    counts: collections.Counter[str] = collections.Counter()
    for raw_char, count in raw_counts.items():
        for char in normalizer.normalize_str(raw_char):
            if not char.isspace():
                counts[char] += count
    ranked = sorted(counts, key=lambda char: (-counts[char], ord(char)))
    return sorted(ranked[:limit_alphabet])


def _can_continue_a_word(char: str, normalizer: BertNormalizer) -> bool:
    """False for the characters the pre-tokenizer always splits off (punctuation, CJK)."""
    words = pre_tokenizers.BertPreTokenizer().pre_tokenize_str(normalizer.normalize_str(f"a{char}a"))
    return len(words) == 1


def _log_when_read(lines: _CorpusReader, start: float) -> Iterator[str]:
    """Pass the lines through, then say that the merge phase (silent in the trainer) has begun."""
    yield from lines
    logging.info(
        "read %d lines (%.1f MB) in %.0f s; computing WordPiece merges",
        lines.num_lines,
        lines.total_bytes / 1e6,
        time.monotonic() - start,
    )
