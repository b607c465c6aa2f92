"""Finding corpus files, cutting them into work units, and streaming their lines in bounded chunks.

A *unit* is the builder's piece of parallel work: a few MB of input made of whole small files or
of one slice of a large file. Slices of a plain-text file start and end right after a blank line
(a document boundary), so with ``--blanks-separate-docs`` cutting a file into units changes no
document. Units depend only on the files and the unit size, never on the number of processes, which
is what makes the output independent of ``--num-processes``. Compressed files (``.gz``, ``.bz2``)
cannot be sliced and are one piece each.

Reading is streamed: a chunk holds at most about ``chunk_bytes`` of complete lines, and a line
longer than ``max_line_bytes`` is cut there so memory stays bounded whatever the input. The rest of
the line is skipped with Google's packing (only its first ``max_seq_length`` tokens can reach an
example) and read as further lines with carry packing (which uses every token).
"""

from __future__ import annotations

import bz2
import dataclasses
import fnmatch
import gzip
import itertools
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from absl import logging

from electra_tf.errors import UserError

COMPRESSED_SUFFIXES = (".gz", ".bz2")
BINARY_SNIFF_BYTES = 8192
COMPRESSION_RATIO_GUESS = 3
"""Compressed files are planned as if they held this many times their size in text."""

_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]*\n")
"""A blank line (ASCII whitespace only) between two newlines: where a unit may start."""
_SCAN_BLOCK = 1 << 16


@dataclasses.dataclass(frozen=True)
class CorpusFile:
    """One input file; ``relative`` is its path under the corpus folder (POSIX form)."""

    path: str
    relative: str
    size: int
    mtime_ns: int

    @property
    def compressed(self) -> bool:
        return self.path.endswith(COMPRESSED_SUFFIXES)


@dataclasses.dataclass(frozen=True)
class Piece:
    """Bytes ``[start, end)`` of a file (``end`` None: to the end; compressed files are read whole)."""

    path: str
    relative: str
    start: int = 0
    end: int | None = None


@dataclasses.dataclass(frozen=True)
class Unit:
    """A unit of work: pieces read in order; ``planned_bytes`` is its size on disk."""

    index: int
    pieces: tuple[Piece, ...]
    planned_bytes: int


@dataclasses.dataclass(frozen=True)
class Chunk:
    """Complete lines joined by ``\\n`` (no final newline) and what reading them took."""

    text: bytes
    offset: int
    """Where the text starts in the (decompressed) file, for messages."""
    long_line_cut: bool = False
    """True if the chunk is the head of a line longer than the limit (the rest was skipped)."""


def find_corpus_files(corpus_dir: Path, patterns: Sequence[str], exclude: Sequence[Path] = ()) -> list[CorpusFile]:
    """Files under ``corpus_dir`` (recursively) whose name matches a pattern, sorted by relative path.

    Hidden files and folders and the ``exclude`` folders (the output and staging folders) are skipped.
    """
    if not corpus_dir.exists():
        raise UserError(f"corpus folder not found: {corpus_dir}")
    if not corpus_dir.is_dir():
        raise UserError(f"--corpus-dir must be a folder, got the file {corpus_dir}")
    excluded = {path.resolve() for path in exclude}
    found = []

    def walk_error(error: OSError) -> None:
        raise UserError(f"cannot list {error.filename}: {error.strerror}")

    for folder, subfolders, names in os.walk(corpus_dir, onerror=walk_error):
        subfolders[:] = sorted(
            name for name in subfolders if not name.startswith(".") and (Path(folder) / name).resolve() not in excluded
        )
        for name in names:
            if name.startswith(".") or not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
                continue
            path = Path(folder) / name
            try:
                status = path.stat()
            except OSError as error:
                raise UserError(f"cannot read corpus file {path}: {error.strerror}") from None
            found.append(
                CorpusFile(str(path), path.relative_to(corpus_dir).as_posix(), status.st_size, status.st_mtime_ns)
            )
    if not found:
        raise UserError(f"no corpus files matching {','.join(patterns)} under {corpus_dir}")
    return sorted(found, key=lambda file: file.relative)


def open_binary(path: str) -> BinaryIO:
    """Open a corpus file for reading bytes, decompressing ``.gz``/``.bz2``."""
    if path.endswith(".gz"):
        return gzip.open(path, "rb")
    if path.endswith(".bz2"):
        return bz2.open(path, "rb")
    return open(path, "rb")


def readable_text_files(
    corpus_dir: Path, patterns: Sequence[str], exclude: Sequence[Path] = ()
) -> tuple[list[CorpusFile], list[str]]:
    """The corpus files to read, and the relative paths of binary ones skipped (with a warning each).

    Empty files are left out. Both the dataset builder and the vocab trainer read a corpus this way,
    so a stray image or archive among the text files is skipped by both, never tokenized as text.
    """
    files, skipped = [], []
    for file in find_corpus_files(corpus_dir, patterns, exclude):
        if file.size == 0:
            continue
        if looks_binary(file):
            logging.warning("skipping %s: it looks binary (it has NUL bytes), not UTF-8 text", file.path)
            skipped.append(file.relative)
            continue
        files.append(file)
    if not files:
        raise UserError(f"the corpus under {corpus_dir} is empty: no matching file holds text")
    return files, skipped


def looks_binary(file: CorpusFile) -> bool:
    """True if the file's first bytes hold a NUL byte (text files never do)."""
    try:
        with open_binary(file.path) as handle:
            return b"\0" in handle.read(BINARY_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error) as error:
        raise UserError(f"cannot read corpus file {file.path}: {error}") from None


def plan_units(files: Sequence[CorpusFile], unit_bytes: int, blanks_separate_docs: bool) -> list[Unit]:
    """Cut the corpus into units of about ``unit_bytes``: small files grouped, large ones sliced."""
    units: list[Unit] = []
    group: list[Piece] = []
    group_bytes = 0

    def close_group() -> None:
        nonlocal group, group_bytes
        if group:
            units.append(Unit(len(units), tuple(group), group_bytes))
        group, group_bytes = [], 0

    for file in files:
        planned = file.size * (COMPRESSION_RATIO_GUESS if file.compressed else 1)
        if file.compressed or file.size <= unit_bytes:
            group.append(Piece(file.path, file.relative))
            group_bytes += planned
            if group_bytes >= unit_bytes:
                close_group()
            continue
        close_group()
        cuts = [0, *_slice_points(file, unit_bytes, blanks_separate_docs), file.size]
        for start, end in itertools.pairwise(cuts):
            if end > start:
                units.append(Unit(len(units), (Piece(file.path, file.relative, start, end),), end - start))
    close_group()
    return units


def _slice_points(file: CorpusFile, unit_bytes: int, blanks_separate_docs: bool) -> list[int]:
    """Where a large plain file is cut: near each multiple of ``unit_bytes``, just after a blank line
    (any line start without ``blanks_separate_docs``). A window without such a place gives no cut."""
    points = []
    try:
        with open(file.path, "rb") as handle:
            for offset in range(unit_bytes, file.size, unit_bytes):
                point = _next_line_start(handle, offset, unit_bytes, blanks_separate_docs)
                if point is not None and point < file.size:
                    points.append(point)
    except OSError as error:
        raise UserError(f"cannot read corpus file {file.path}: {error.strerror}") from None
    return points


def _next_line_start(handle: BinaryIO, offset: int, limit: int, after_blank_line: bool) -> int | None:
    """The first line start at or after ``offset`` (that follows a blank line, if asked), searching
    at most ``limit`` bytes; None if there is none."""
    handle.seek(offset - 1)
    buffer = b""
    search_from = 0
    while len(buffer) < limit + 1:
        block = handle.read(_SCAN_BLOCK)
        if not block:
            return None
        buffer += block
        if after_blank_line:
            match = _BLANK_LINE.search(buffer, search_from)
            if match:
                return offset - 1 + match.end()
            # A blank line straddling the next block starts at the last newline seen.
            search_from = max(search_from, buffer.rfind(b"\n"))
        else:
            newline = buffer.find(b"\n")
            if newline >= 0:
                return offset + newline
    return None


def read_chunks(piece: Piece, chunk_bytes: int, max_line_bytes: int, split_long_lines: bool = False) -> Iterator[Chunk]:
    """Stream a piece as chunks of complete lines (about ``chunk_bytes`` each).

    A line longer than ``max_line_bytes`` is cut at the last space before that length; its head
    comes as a chunk of its own marked ``long_line_cut``. The rest of the line is skipped, or with
    ``split_long_lines`` read on as the next line (cut again if it is still too long).
    """
    try:
        with open_binary(piece.path) as handle:
            handle.seek(piece.start)
            yield from _chunks_of(handle, piece, chunk_bytes, max_line_bytes, split_long_lines)
    except EOFError as error:
        raise UserError(f"cannot read corpus file {piece.path}: it is truncated ({error})") from None
    except (OSError, zlib.error) as error:
        raise UserError(f"cannot read corpus file {piece.path}: {error}") from None


def _chunks_of(
    handle: BinaryIO, piece: Piece, chunk_bytes: int, max_line_bytes: int, split_long_lines: bool
) -> Iterator[Chunk]:
    remaining = None if piece.end is None else piece.end - piece.start
    offset = piece.start  # file offset of the first byte of ``partial``
    partial = b""
    skipping = False  # inside the rest of a line that was cut
    while remaining is None or remaining > 0:
        block = handle.read(chunk_bytes if remaining is None else min(chunk_bytes, remaining))
        if not block:
            break
        if remaining is not None:
            remaining -= len(block)
        if skipping:
            newline = block.find(b"\n")
            offset += len(block) if newline < 0 else newline + 1
            if newline < 0:
                continue
            block, skipping = block[newline + 1 :], False
        buffer = partial + block
        last_newline = buffer.rfind(b"\n")
        if last_newline < 0:
            if len(buffer) <= max_line_bytes:
                partial = buffer
                continue
            # One line longer than the limit: its head, then the rest of it read on or skipped.
            head = _cut_at_space(buffer[:max_line_bytes])
            if split_long_lines:
                head = head or buffer[:max_line_bytes]  # (no character boundary: cut anyway, to move on)
                yield Chunk(head, offset, long_line_cut=True)
                offset += len(head)
                partial = buffer[len(head) :]
                continue
            yield Chunk(head, offset, long_line_cut=True)
            offset += len(buffer)
            partial, skipping = b"", True
            continue
        yield Chunk(buffer[:last_newline], offset)
        offset += last_newline + 1
        partial = buffer[last_newline + 1 :]
    if partial:
        yield Chunk(partial, offset)


def _cut_at_space(text: bytes) -> bytes:
    """``text`` up to its last ASCII space or tab; without one, minus its last (maybe partial) character."""
    space = max(text.rfind(b" "), text.rfind(b"\t"))
    if space > 0:
        return text[:space]
    end = len(text)
    while end > 0 and (text[end - 1] & 0xC0) == 0x80:  # UTF-8 continuation bytes
        end -= 1
    return text[: max(0, end - 1)]
