"""Google-schema ``tf.train.Example`` records, serialised with numpy, and atomic TFRecord files.

Each record is a ``tf.train.Example`` with three ``Int64List`` features of ``max_seq_length``
values: ``input_ids``, ``input_mask``, ``segment_ids`` (docs/data_format.md#records). Building a protobuf
object per example in Python costs tens of microseconds; here the protobuf wire format is written
directly: the varints of all ids at once with numpy, and per example only three byte strings are
joined. Parsing with ``tf.io.parse_single_example`` or ``tf.train.Example.FromString`` gives the same
values as a protobuf-built record (tests check both).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_LENGTH_DELIMITED = 2
_MAX_VARINT_BYTES = 4  # ids below 2**28, far above any vocab size


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _feature_entry(name: str, packed_values: bytes) -> bytes:
    """One ``Features.feature`` map entry: key ``name``, value ``Feature{int64_list{value: packed}}``."""
    int64_list = _field(1, packed_values)
    feature = _field(3, int64_list)
    return _field(1, _field(1, name.encode()) + _field(2, feature))


class ExampleSerializer:
    """Serialises rows of ``input_ids``/``input_mask``/``segment_ids`` of one fixed length."""

    def __init__(self, max_seq_length: int) -> None:
        self._length = max_seq_length
        zeros = bytes(max_seq_length)
        # input_mask and segment_ids hold 0/1, whose varints are the single bytes 0/1: their entries
        # are a fixed header followed by the row itself.
        self._mask_header = _feature_entry("input_mask", zeros)[:-max_seq_length]
        self._segment_header = _feature_entry("segment_ids", zeros)[:-max_seq_length]
        self._prefixes: dict[int, bytes] = {}

    def _prefix(self, ids_bytes: int) -> bytes:
        """Everything before the packed ids, for ids taking ``ids_bytes`` bytes."""
        prefix = self._prefixes.get(ids_bytes)
        if prefix is None:
            entry = _feature_entry("input_ids", bytes(ids_bytes))
            rest = len(self._mask_header) + len(self._segment_header) + 2 * self._length
            features_length = len(entry) + rest
            prefix = _varint(1 << 3 | _LENGTH_DELIMITED) + _varint(features_length) + entry[:-ids_bytes]
            self._prefixes[ids_bytes] = prefix
        return prefix

    def serialize(self, input_ids: np.ndarray, input_mask: np.ndarray, segment_ids: np.ndarray) -> list[bytes]:
        """The serialised ``tf.train.Example`` of each row."""
        count, length = input_ids.shape
        if length != self._length:
            raise ValueError(f"rows have {length} values, expected {self._length}")
        if count == 0:
            return []
        ids = input_ids.astype(np.uint32).ravel()
        if input_ids.min() < 0 or ids.max() >= 1 << (7 * _MAX_VARINT_BYTES):
            raise ValueError("token ids must be in [0, 2**28)")
        # The varint of every id as the little-endian bytes of a uint32; an id uses its first ``sizes``.
        words = np.zeros_like(ids)
        sizes = np.ones(len(ids), dtype=np.uint8)
        for k in range(_MAX_VARINT_BYTES):
            words |= ((ids >> (7 * k)) & 0x7F) << (8 * k)
            if k:
                longer = ids >= 1 << (7 * k)
                words |= longer.astype(np.uint32) << (8 * k - 1)  # continuation bit of the byte before
                sizes += longer
        groups = words.astype("<u4").view(np.uint8).reshape(-1, _MAX_VARINT_BYTES)
        packed = groups[np.arange(_MAX_VARINT_BYTES, dtype=np.uint8) < sizes[:, None]]
        ends = np.cumsum(sizes, dtype=np.int64)
        packed_bytes = packed.tobytes()
        row_ends = ends[length - 1 :: length].tolist()
        row_starts = [0, *row_ends[:-1]]

        mask_header = np.frombuffer(self._mask_header, dtype=np.uint8)
        segment_header = np.frombuffer(self._segment_header, dtype=np.uint8)
        tail_width = len(mask_header) + len(segment_header) + 2 * length
        tails = np.empty((count, tail_width), dtype=np.uint8)
        column = 0
        for part in (mask_header, input_mask, segment_header, segment_ids):
            width = part.shape[-1]
            tails[:, column : column + width] = part
            column += width
        tail_bytes = tails.tobytes()
        return [
            self._prefix(end - start) + packed_bytes[start:end] + tail_bytes[row * tail_width : (row + 1) * tail_width]
            for row, (start, end) in enumerate(zip(row_starts, row_ends, strict=True))
        ]


class AtomicRecordWriter:
    """A TFRecord file written under a temporary name and renamed into place by :meth:`commit`.

    A failed write (a full disk, a file size limit) raises :class:`OSError` naming the file, as
    Python's own writes do, rather than TensorFlow's error types.
    """

    def __init__(self, path: Path) -> None:
        import tensorflow as tf

        self.path = path
        self._temporary = path.with_name(f".{path.name}.tmp")
        with self._os_errors():
            self._writer = tf.io.TFRecordWriter(str(self._temporary))
        self.count = 0

    def write(self, records: list[bytes]) -> None:
        with self._os_errors():
            for record in records:
                self._writer.write(record)
        self.count += len(records)

    def commit(self) -> None:
        """Flush, close and rename into place (a file with no records is removed instead)."""
        with self._os_errors():
            self._writer.close()
        if self.count:
            os.replace(self._temporary, self.path)
        else:
            self._temporary.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _os_errors(self) -> Iterator[None]:
        """TensorFlow's ``OpError`` ("PATH; File too large") as an ``OSError`` with the path and reason."""
        import tensorflow as tf

        try:
            yield
        except tf.errors.OpError as error:
            reason = error.message.rpartition("; ")[2].strip() or type(error).__name__
            raise OSError(None, reason, str(self._temporary)) from None
