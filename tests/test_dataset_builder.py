"""The dataset builder: Google's packing rules, records, held-out split, determinism, safety, bad input.

Packing is checked against ``tests/packing_reference.py``, a line-at-a-time restatement of Google's
ExampleBuilder, on synthetic token streams (every rule is exercised and counted) and on real Spanish
text through the whole unit pipeline (reading, tokenizing, chunk carry-over, records).
"""

from __future__ import annotations

import bz2
import functools
import gzip
import itertools
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from packing_reference import ReferenceBuilder
from shared_data import requires_shared_data, shared_file

from electra_tf import DEFAULT_VOCAB_FILE, REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.data import builder
from electra_tf.data.builder import BuildOptions, build_dataset
from electra_tf.data.carry_packing import CarryPacker, SplitTokens
from electra_tf.data.corpus import Piece, Unit, find_corpus_files, plan_units, read_chunks
from electra_tf.data.dataset_info import DATASET_INFO_FILE, DatasetInfo
from electra_tf.data.input_pipeline import FEATURES, training_dataset
from electra_tf.data.packing import (
    CARRY_PACKING,
    GOOGLE_PACKING,
    ExamplePacker,
    PackingIds,
    UniformStream,
    assemble_examples,
)
from electra_tf.data.tfrecord import ExampleSerializer
from electra_tf.data.unit_worker import PYTHON_WHITESPACE, UnitSettings, UnitWorker, unit_file
from electra_tf.errors import UserError
from electra_tf.tokenization import Vocab

SAMPLE_CLINICAL = SAMPLE_CORPUS_DIR / "salud_y_clinica.txt"  # 100 KB: clinical cases, health texts
SAMPLE_GENERAL = [path for path in sorted(SAMPLE_CORPUS_DIR.glob("*.txt")) if path != SAMPLE_CLINICAL]
"""The other four files of the sample corpus (255 KB): science, culture, history, nature."""
CLINICAL_CORPUS = "corpus/es_biomed_clinical.txt"
SPECIAL = PackingIds(cls_id=2, sep_id=3, pad_id=0)
GOOGLE_SPEC = {name: tf.io.FixedLenFeature([128], tf.int64) for name in FEATURES}


# ----------------------------------------------------------------------------------------------
# Helpers.
# ----------------------------------------------------------------------------------------------


def uniforms(*key: int) -> UniformStream:
    return UniformStream(np.random.default_rng(list(key)))


def read_records(path: str | Path, length: int = 128) -> list[tuple[tuple[int, ...], ...]]:
    """Every record of a TFRecord file as (input_ids, input_mask, segment_ids) tuples, via Google's spec."""
    spec = {name: tf.io.FixedLenFeature([length], tf.int64) for name in FEATURES}
    out = []
    for record in tf.data.TFRecordDataset(str(path)):
        parsed = tf.io.parse_single_example(record, spec)
        out.append(tuple(tuple(parsed[name].numpy().tolist()) for name in FEATURES))
    return out


def settings_for(tmp_path: Path, **changes) -> UnitSettings:
    values = {
        "vocab_file": str(DEFAULT_VOCAB_FILE),
        "do_lower_case": True,
        "strip_accents": None,
        "max_seq_length": 128,
        "blanks_separate_docs": True,
        "eval_fraction": 0.0,
        "seed": 7,
        "strict": False,
        "units_dir": str(tmp_path),
        "chunk_bytes": 1 << 20,
        "max_line_bytes": 16 << 20,
        "packing": GOOGLE_PACKING,
    }
    values.update(changes)
    return UnitSettings(**values)


@functools.cache
def cached_worker(settings: UnitSettings) -> UnitWorker:
    return UnitWorker(settings)


def worker_for(tmp_path: Path, **changes) -> UnitWorker:
    """A unit worker (tokenizer built once per setting) writing into ``tmp_path``."""
    worker = cached_worker(settings_for(Path("/nonexistent"), **changes))
    worker.settings = settings_for(tmp_path, **changes)
    return worker


def reference_examples(worker: UnitWorker, path: Path, unit_index: int, blanks_separate_docs: bool) -> list:
    """Google's builder (restated) on one whole file, with the unit's training packing stream."""
    text = path.read_bytes().decode("utf-8")
    lines = text.split("\n")
    if text.endswith("\n"):
        lines.pop()
    row_splits, ids, _ = worker.tokenize("\n".join(lines).encode())
    vocab_ids = worker.special
    reference = ReferenceBuilder(
        worker.settings.max_seq_length,
        uniforms(worker.settings.seed, unit_index, 0),
        vocab_ids.cls_id,
        vocab_ids.sep_id,
        vocab_ids.pad_id,
    )
    for number, line in enumerate(lines):
        if not line.strip():
            if blanks_separate_docs:
                reference.add_line(None)
            continue
        reference.add_line(ids[row_splits[number] : row_splits[number + 1]].tolist())
    reference.add_line(None)  # end of file
    return [tuple(tuple(part) for part in example) for example in reference.examples]


def joined_text(paths: list[Path]) -> bytes:
    """The files as one text; a blank line separates them (each ends with a newline)."""
    return b"\n".join(path.read_bytes() for path in paths)


@pytest.fixture
def general_file(tmp_path) -> Path:
    """The general part of the sample corpus as one file."""
    path = tmp_path / "general.txt"
    path.write_bytes(joined_text(SAMPLE_GENERAL))
    return path


def write_corpus(folder: Path, files: dict[str, str | bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return folder


def options(corpus: Path, output: Path, **changes) -> BuildOptions:
    values = {"corpus_dir": corpus, "output_dir": output, "vocab_file": DEFAULT_VOCAB_FILE, "num_processes": 1}
    values.update(changes)
    return BuildOptions(**values)


def shard_bytes(info: DatasetInfo) -> list[bytes]:
    return [Path(shard.path).read_bytes() for shard in info.train_shards + info.eval_shards]


# ----------------------------------------------------------------------------------------------
# Packing rules.
# ----------------------------------------------------------------------------------------------


def synthetic_stream(seed: int, max_length: int) -> list[list[int] | None]:
    """Documents of token lines (None ends a document): short, long (over max_length) and empty lines."""
    rng = np.random.default_rng(seed)
    stream: list[list[int] | None] = []
    for _ in range(60):
        for _ in range(int(rng.integers(1, 12))):
            kind = rng.random()
            length = 0 if kind < 0.05 else int(rng.integers(max_length, 3 * max_length)) if kind < 0.1 else None
            if length is None:
                length = int(rng.integers(1, max_length // 2))
            stream.append(rng.integers(10, 1000, length).tolist())
        stream.append(None)
        if rng.random() < 0.2:
            stream.append(None)  # consecutive blank lines
    return stream


def pack_in_pieces(stream: list[list[int] | None], pieces: int, pack: Callable) -> list:
    """``pack`` over ``stream`` cut into ``pieces`` calls, carrying pending lines like the worker.

    ``pack(lines, lengths, boundaries, flat)`` packs one call's lines (``flat``: their tokens) and
    returns ``(examples, pending lines)``; the pending lines start the next call's.
    """
    # Zero-token lines are left out, as the worker does; boundaries stay.
    events = [line for line in stream if line is None or line]
    cuts = np.linspace(0, len(events), pieces + 1).astype(int).tolist()
    out, pending = [], []
    for start, end in itertools.pairwise(cuts):
        lines = pending + events[start:end]
        lengths = np.array([0 if line is None else len(line) for line in lines], dtype=np.int64)
        boundaries = np.array([line is None for line in lines])
        flat = np.array([token for line in lines if line for token in line], dtype=np.int32)
        examples, pending = pack(lines, lengths, boundaries, flat)
        out += examples
    assert not pending
    return out


def pack_with_packer(stream: list[list[int] | None], max_length: int, seed: int, pieces: int) -> list:
    """The packer over ``stream`` cut into ``pieces`` calls, carrying pending lines like the worker."""
    packer = ExamplePacker(max_length, uniforms(seed))

    def pack(lines, lengths, boundaries, flat):
        plan = packer.plan(lengths, boundaries)
        packed = assemble_examples(plan, lengths, np.cumsum(lengths) - lengths, flat, max_length, SPECIAL)
        examples = [
            (tuple(ids), tuple(mask), tuple(segments))
            for ids, mask, segments in zip(
                packed.input_ids.tolist(), packed.input_mask.tolist(), packed.segment_ids.tolist(), strict=True
            )
        ]
        return examples, lines[plan.pending_start :]

    return pack_in_pieces(stream, pieces, pack)


@pytest.mark.parametrize("max_length", [16, 128])
@pytest.mark.parametrize("pieces", [1, 7])
def test_packer_matches_googles_rules(max_length, pieces):
    """Same examples as the line-at-a-time restatement, and every rule actually occurs."""
    seen = {"single_segment": 0, "two_segments": 0, "truncated": 0, "short": 0}
    for seed in range(8):
        stream = synthetic_stream(seed, max_length)
        reference = ReferenceBuilder(max_length, uniforms(seed), SPECIAL.cls_id, SPECIAL.sep_id, SPECIAL.pad_id)
        for line in stream:
            reference.add_line(line)
        expected = [tuple(tuple(part) for part in example) for example in reference.examples]
        assert pack_with_packer(stream, max_length, seed, pieces) == expected
        for _ids, mask, segments in expected:
            seen["two_segments" if 1 in segments else "single_segment"] += 1
            seen["truncated"] += sum(mask) == max_length
            seen["short"] += sum(mask) < max_length // 2
    assert all(count > 10 for count in seen.values()), seen


def test_packer_worked_example():
    """A hand-worked case: three lines of 4 tokens with max length 16 (target 16, first target 6)."""
    stream = [[11, 12, 13, 14], [21, 22, 23, 24], [31, 32, 33, 34], [41, 42, 43, 44, 45], None]
    # Find a seed whose first draws give: target 16 (u >= 0.05), two segments (u >= 0.1), and the
    # coin for line 2 (the first that does not fit under 6) sending it to the second segment (>= 0.5).
    for seed in range(100):
        values = np.random.default_rng([seed]).random(4)
        if values[0] >= 0.05 and values[1] >= 0.1 and values[2] >= 0.5:
            break
    (ids, mask, segments), *rest = pack_with_packer(stream, 16, seed, 1)
    # 4 + 4 + 4 + 5 = 17 >= 16: the fourth line closes the example. Line 1 starts segment A (4 < 6);
    # line 2 does not fit (8 >= 6), the coin sends it to B; line 3 neither fits A (8) nor may join A
    # (B is not empty) -> B; line 4 -> B. B is truncated to 16 - 4 - 3 = 9 tokens.
    assert ids == (2, 11, 12, 13, 14, 3, 21, 22, 23, 24, 31, 32, 33, 34, 41, 3)
    assert segments == (0,) * 6 + (1,) * 10
    assert mask == (1,) * 16
    assert rest == []


def test_document_boundary_closes_a_short_example():
    """A document end flushes what has accumulated, even far below the target."""
    stream = [[5, 6, 7], None, [8, 9], None]
    examples = pack_with_packer(stream, 128, 0, 1)
    assert [tuple(t for t in ids if t) for ids, _, _ in examples] == [(2, 5, 6, 7, 3), (2, 8, 9, 3)]


def test_serializer_matches_protobuf():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 2**21 + 10, (50, 128))
    ids[0] = 0
    mask = (rng.random((50, 128)) < 0.5).astype(np.int32)
    segments = (rng.random((50, 128)) < 0.5).astype(np.int32)
    records = ExampleSerializer(128).serialize(ids, mask, segments)
    for row, record in enumerate(records):
        example = tf.train.Example.FromString(record)
        assert list(example.features.feature["input_ids"].int64_list.value) == ids[row].tolist()
        parsed = tf.io.parse_single_example(record, GOOGLE_SPEC)
        assert parsed["input_mask"].numpy().tolist() == mask[row].tolist()
        assert parsed["segment_ids"].numpy().tolist() == segments[row].tolist()


def test_blank_line_characters_are_pythons_whitespace():
    assert set(PYTHON_WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()} - {"\n"}


# ----------------------------------------------------------------------------------------------
# Units on real text: reading, tokenizing, carry-over between chunks, records.
# ----------------------------------------------------------------------------------------------


def build_in_two_chunkings(tmp_path: Path, unit: Unit, **changes) -> tuple[UnitWorker, list, dict]:
    """``unit`` built in one chunk and in chunks of 2,000 bytes (each into its own folder): both give the
    same records and summary (timing aside), returned with the last worker."""
    results = []
    for chunk_bytes in (1 << 20, 2000):
        folder = tmp_path / str(chunk_bytes)
        folder.mkdir()
        worker = worker_for(folder, chunk_bytes=chunk_bytes, **changes)
        summary = worker.build(unit)
        records = sorted(read_records(unit_file(folder, unit.index, "train")))
        results.append((records, {k: v for k, v in summary.items() if k != "seconds"}))
    assert results[0] == results[1]
    return worker, *results[0]


@pytest.mark.parametrize("blanks_separate_docs", [True, False])
def test_unit_reproduces_google_on_real_text(tmp_path, general_file, blanks_separate_docs):
    """Records of a whole unit = the restated Google builder on the file's lines, whatever the chunking."""
    unit = Unit(3, (Piece(str(general_file), "general.txt"),), 0)
    worker, records, summary = build_in_two_chunkings(tmp_path, unit, blanks_separate_docs=blanks_separate_docs)
    assert len(records) == summary["examples_train"] > 100
    assert records == sorted(reference_examples(worker, general_file, 3, blanks_separate_docs))


def test_examples_decode_to_the_source_text(tmp_path):
    """[CLS] A [SEP] B [SEP] with segment ids 0/1; A and B each start with a whole source line."""
    worker = worker_for(tmp_path)
    worker.build(Unit(0, (Piece(str(SAMPLE_CLINICAL), "biomed.txt"),), 0))
    lines = [line for line in SAMPLE_CLINICAL.read_text(encoding="utf-8").split("\n") if line.strip()]
    row_splits, ids, _ = worker.tokenize("\n".join(lines).encode())
    by_first_token: dict[int, list[tuple[int, ...]]] = {}
    for start, end in itertools.pairwise(row_splits):
        if end > start:
            by_first_token.setdefault(int(ids[start]), []).append(tuple(ids[start:end].tolist()))

    def starts_with_a_line(segment: tuple[int, ...]) -> bool:
        candidates = by_first_token.get(segment[0], [])
        return any(segment[: len(line)] == line or line[: len(segment)] == segment for line in candidates)

    two_segments = 0
    for input_ids, mask, segments in read_records(unit_file(tmp_path, 0, "train")):
        used = sum(mask)
        assert input_ids[0] == SPECIAL.cls_id and input_ids[used - 1] == SPECIAL.sep_id
        assert input_ids[used:] == (SPECIAL.pad_id,) * (128 - used)
        assert mask == (1,) * used + (0,) * (128 - used)
        first_end = input_ids.index(SPECIAL.sep_id)
        assert segments[: first_end + 1] == (0,) * (first_end + 1) and set(segments[used:]) <= {0}
        assert starts_with_a_line(input_ids[1:first_end])
        if first_end + 1 < used:
            two_segments += 1
            assert segments[first_end + 1 : used] == (1,) * (used - first_end - 1)
            assert starts_with_a_line(input_ids[first_end + 1 : used - 1])
    assert two_segments > 100


def test_cased_beto_layout_vocab_pads_with_its_pad_id(tmp_path, general_file, cased_vocab_file):
    worker = worker_for(tmp_path, vocab_file=str(cased_vocab_file), do_lower_case=False)
    worker.build(Unit(0, (Piece(str(general_file), "general.txt"),), 0))
    beto = Vocab.load(cased_vocab_file)
    assert (beto.pad_id, beto.mask_id) == (1, 0)
    records = read_records(unit_file(tmp_path, 0, "train"))
    padded = [(ids, sum(mask)) for ids, mask, _ in records if sum(mask) < 128]
    assert padded
    for ids, used in padded:
        assert ids[0] == beto.cls_id and ids[used - 1] == beto.sep_id
        assert ids[used:] == (beto.pad_id,) * (128 - used)
    assert not any(beto.mask_id in ids for ids, _, _ in records)  # [MASK] is id 0 in BETO's layout


# ----------------------------------------------------------------------------------------------
# Carry packing: no token dropped.
# ----------------------------------------------------------------------------------------------

# A toy vocab for the carry packer: ids 0-3 special, "." ends sentences, "##a"/"##b" continue words,
# then 20 words for each of 40 documents.
TOY_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", ".", "##a", "##b", *(f"w{i}" for i in range(800))]
TOY_SPLITS = SplitTokens.from_tokens(TOY_TOKENS)
PERIOD, PIECE_A, PIECE_B, WORD = 4, 5, 6, 7


class _Constant:
    """A stand-in generator whose every draw is 0.99: full-length targets, two segments, coins to B."""

    def random(self, count: int) -> np.ndarray:
        return np.full(count, 0.99)


def carry_pack(stream: list[list[int] | None], max_length: int, pieces: int, draws: UniformStream) -> list:
    """The carry packer over ``stream`` cut into ``pieces`` calls, carrying the pending tokens like the worker."""
    packer = CarryPacker(max_length, draws, TOY_SPLITS)

    def pack(lines, lengths, boundaries, flat):
        packed = packer.pack(lengths, boundaries, np.cumsum(lengths) - lengths, flat, SPECIAL)
        assert packed.examples.dropped_tokens == 0
        pending = lines[packed.pending_line :]
        if pending:
            pending[0] = pending[0][packed.pending_offset :]
        examples = packed.examples
        return list(zip(examples.input_ids.tolist(), examples.segment_ids.tolist(), strict=True)), pending

    return pack_in_pieces(stream, pieces, pack)


def segments_of(input_ids, segment_ids) -> tuple[list[int], list[int]]:
    """Segments A and B of an example, from its segment ids and padding (not from [SEP] values)."""
    used = sum(1 for token in input_ids if token != SPECIAL.pad_id)
    first_end = segment_ids.index(1) - 1 if 1 in segment_ids else used - 1
    return list(input_ids[1:first_end]), list(input_ids[first_end + 1 : used - 1])


def body_of(example: tuple[list[int], list[int]]) -> list[int]:
    """Segment A then segment B of an (input_ids, segment_ids) example."""
    first, second = segments_of(*example)
    return first + second


def toy_stream(seed: int, max_length: int) -> list[list[int] | None]:
    """40 documents of lines made of words (a piece and 0-2 "##" pieces; document d uses words
    ``WORD + 20 d ...``) and sentences ending in "."; lines from one token to several examples long,
    and one word longer than an example."""
    rng = np.random.default_rng(seed)
    stream: list[list[int] | None] = []
    for document in range(40):
        for _ in range(int(rng.integers(1, 8))):
            line: list[int] = []
            for _ in range(int(rng.integers(1, 4 * max_length if rng.random() < 0.3 else max_length // 4))):
                line += [WORD + 20 * document + int(rng.integers(0, 20)), *[PIECE_A] * int(rng.integers(0, 3))]
                if rng.random() < 0.1:
                    line.append(PERIOD)
            stream.append(line)
        stream.append(None)
    stream[3:3] = [[WORD, *[PIECE_B] * (2 * max_length)], None]
    return stream


@pytest.mark.parametrize("max_length", [16, 128])
def test_carry_packer_keeps_every_token_whatever_the_calls(max_length):
    """Every token is in exactly one example (nothing truncated), examples never mix documents, and
    cutting the input into several calls changes nothing."""
    for seed in range(4):
        stream = toy_stream(seed, max_length)
        examples = carry_pack(stream, max_length, 1, uniforms(seed))
        assert carry_pack(stream, max_length, 7, uniforms(seed)) == examples
        kept = [token for ids, segments in examples for part in segments_of(ids, segments) for token in part]
        assert sorted(kept) == sorted(token for line in stream if line for token in line)
        for ids, segments in examples:
            words = [token for part in segments_of(ids, segments) for token in part if token >= WORD]
            assert len({(token - WORD) // 20 for token in words}) <= 1


def test_carry_splits_after_sentence_ends_and_between_words():
    """A long line of 12-token sentences is split after a "." (every example starts a sentence); a
    line of 3-piece words without sentence ends is split before a word; a word longer than an example
    is cut inside; a first word that does not fit leaves the example short instead of being cut."""
    sentence = [WORD, PIECE_A, PIECE_B, *[WORD + 1] * 8, PERIOD]
    examples = carry_pack([sentence * 40, None], 128, 1, UniformStream(_Constant()))
    bodies = [body_of(example) for example in examples]
    assert all(body[0] == WORD and body[-1] == PERIOD for body in bodies)
    assert all(len(body) == 120 for body in bodies[:-1])  # 10 sentences: within 12 of the 125 places

    word = [WORD, PIECE_A, PIECE_B]
    examples = carry_pack([word * 100, None], 128, 1, UniformStream(_Constant()))
    bodies = [body_of(example) for example in examples]
    assert [len(body) for body in bodies] == [123, 123, 54]  # 41 words, not 125 tokens ending mid-word
    assert all(body[:3] == word for body in bodies)

    long_word = [WORD, *[PIECE_A] * 299]
    examples = carry_pack([long_word, None], 128, 1, UniformStream(_Constant()))
    assert [len(body_of(example)) for example in examples] == [125, 125, 50]

    examples = carry_pack([[WORD + 2] * 100, long_word[:40], None], 128, 1, UniformStream(_Constant()))
    assert [segments_of(*example) for example in examples] == [([WORD + 2] * 100, []), (long_word[:40], [])]


def paragraphs(path: Path) -> str:
    """The text of ``path`` with the lines of each document joined into one (long) line."""
    documents = path.read_text(encoding="utf-8").split("\n\n")
    return "\n\n".join(" ".join(document.split("\n")) for document in documents)


def record_segments(records: list) -> list[tuple[list[int], list[int]]]:
    return [segments_of(list(ids), list(segments)) for ids, _, segments in records]


def test_carry_unit_keeps_every_token_of_real_text(tmp_path):
    """Paragraph lines longer than an example: every token reaches a record, each segment starts with
    a whole word, and where chunks end changes nothing (a split line's rest is carried over)."""
    corpus = tmp_path / "paragraphs.txt"
    corpus.write_text(paragraphs(SAMPLE_CORPUS_DIR / "salud_y_clinica.txt"), encoding="utf-8")
    unit = Unit(0, (Piece(str(corpus), "paragraphs.txt"),), 0)
    worker, records, summary = build_in_two_chunkings(tmp_path, unit, packing=CARRY_PACKING)
    _, token_ids, _ = worker.tokenize(corpus.read_bytes())
    segments = record_segments(records)
    assert sorted(token for pair in segments for part in pair for token in part) == sorted(token_ids.tolist())
    assert summary["tokens"] == len(token_ids) and summary["dropped_tokens_train"] == 0
    continuation = SplitTokens.from_tokens(Vocab.load(DEFAULT_VOCAB_FILE).tokens).continuation
    assert not any(part[0] in continuation for pair in segments for part in pair if part)
    assert len(records) == summary["examples_train"] > 150


def record_arrays(path: str | Path, length: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """input_ids, input_mask and segment_ids of every record, parsed in batches with Google's spec."""
    spec = {name: tf.io.FixedLenFeature([length], tf.int64) for name in FEATURES}
    batches = [tf.io.parse_example(batch, spec) for batch in tf.data.TFRecordDataset(str(path)).batch(4096)]
    return tuple(np.concatenate([batch[name].numpy() for batch in batches]) for name in FEATURES)


def test_a_5_mb_line_becomes_many_full_examples_with_carry(tmp_path):
    """The issue's case: with Google's packing a 5 MB line is one example (126 of its ~1.1 M tokens);
    with carry packing every token is in an example, all but the last one full."""
    line = " ".join(paragraphs(SAMPLE_CORPUS_DIR / "cultura_y_ocio.txt").split()) + " "
    corpus = tmp_path / "a.txt"
    corpus.write_text((line * (5_000_000 // len(line) + 1))[:5_000_000].strip() + "\n", encoding="utf-8")
    worker = worker_for(tmp_path, packing=CARRY_PACKING)
    summary = worker.build(Unit(0, (Piece(str(corpus), "a.txt"),), 0))
    input_ids, input_mask, segment_ids = record_arrays(unit_file(tmp_path, 0, "train"))
    corpus_tokens = input_mask.sum(axis=1) - 2 - segment_ids.any(axis=1)  # less [CLS] and the [SEP]s
    assert corpus_tokens.sum() == summary["tokens"] > 1_000_000 and summary["dropped_tokens_train"] == 0
    assert len(input_ids) == summary["examples_train"] > summary["tokens"] / 125
    # Full examples (a target of 128 holds 125 corpus tokens), short of the next whole word at most.
    assert np.median(corpus_tokens) >= 120


def test_google_packing_warns_when_it_drops_more_than_5_percent(tmp_path, caplog):
    """The build ends with the share of tokens packing dropped: a warning naming --packing carry above
    5% (Google's packing of paragraph lines), an info line otherwise (carry packing drops none)."""
    caplog.set_level(logging.INFO, logger="absl")
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": paragraphs(SAMPLE_CORPUS_DIR / "salud_y_clinica.txt")})
    google = build_dataset(options(corpus, tmp_path / "google", packing=GOOGLE_PACKING))
    share = google.stats["dropped_token_share"]
    assert share > 0.05 and google.stats["dropped_tokens"] == round(share * google.stats["tokens"])
    warnings = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any(f"({100 * share:.2f}%)" in message and "--packing carry" in message for message in warnings)
    stored = json.loads((tmp_path / "google" / DATASET_INFO_FILE).read_text())
    assert stored["packing"] == GOOGLE_PACKING and stored["stats"]["dropped_token_share"] == share


# ----------------------------------------------------------------------------------------------
# Whole builds.
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def small_units(monkeypatch):
    """Units of 32 KB so that the sample corpus makes many units (and several shards)."""
    monkeypatch.setattr(builder, "MIN_UNIT_BYTES", 1 << 15)


def vocabulary_documents(count: int, seed: int) -> tuple[str, list[set[int]]]:
    """A corpus whose document ``i`` uses only its own whole-word vocab tokens; their id sets."""
    vocab = Vocab.load(DEFAULT_VOCAB_FILE)
    words = [(i, t) for i, t in enumerate(vocab.tokens) if t.isascii() and t.isalpha() and t.islower() and len(t) > 3]
    rng = np.random.default_rng(seed)
    documents, id_sets = [], []
    for number in range(count):
        own = words[number * 6 : number * 6 + 6]
        id_sets.append({i for i, _ in own})
        lines = [
            " ".join(own[k][1] for k in rng.integers(0, 6, rng.integers(3, 40))) for _ in range(rng.integers(2, 9))
        ]
        documents.append("\n".join(lines))
    return "\n\n".join(documents) + "\n", id_sets


def test_held_out_documents_are_disjoint_and_examples_stay_in_documents(tmp_path, small_units):
    text, id_sets = vocabulary_documents(300, 0)
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": text})
    info = build_dataset(options(corpus, tmp_path / "out", eval_fraction=0.3))
    owner = {token: number for number, ids in enumerate(id_sets) for token in ids}

    def documents_of(shards) -> set[int]:
        found = set()
        for shard in shards:
            for ids, mask, _ in read_records(shard.path):
                body = {ids[i] for i in range(1, sum(mask)) if ids[i] != SPECIAL.sep_id}
                documents = {owner[token] for token in body}
                assert len(documents) == 1  # an example never spans two documents
                found |= documents
        return found

    train, held_out = documents_of(info.train_shards), documents_of(info.eval_shards)
    assert train and held_out and not train & held_out
    assert 0.2 < len(held_out) / 300 < 0.4
    assert info.stats["documents_eval"] == len(held_out) and info.stats["documents_train"] == len(train)


def test_build_is_deterministic_and_independent_of_processes(tmp_path, small_units):
    files = {"general.txt": joined_text(SAMPLE_GENERAL), "sub/clinical.txt": SAMPLE_CLINICAL.read_bytes()}
    corpus = write_corpus(tmp_path / "corpus", files)
    one = build_dataset(options(corpus, tmp_path / "one", num_processes=1))
    again = build_dataset(options(corpus, tmp_path / "again", num_processes=1))
    two = build_dataset(options(corpus, tmp_path / "two", num_processes=2))
    assert len(one.train_shards) == builder.MIN_DEFAULT_SHARDS and one.stats["units"] > 8
    assert shard_bytes(one) == shard_bytes(again) == shard_bytes(two)
    other_seed = build_dataset(options(corpus, tmp_path / "seed", seed=99))
    assert shard_bytes(other_seed) != shard_bytes(one)


def test_carry_build_is_independent_of_processes(tmp_path, monkeypatch):
    """Carry packing on paragraph lines, in units of 16 KB: the same shards from 1 and 2 processes
    (a split line's rest is carried across chunks, never across units)."""
    monkeypatch.setattr(builder, "MIN_UNIT_BYTES", 1 << 14)
    corpus = write_corpus(
        tmp_path / "corpus", {path.name: paragraphs(path) for path in sorted(SAMPLE_CORPUS_DIR.glob("*.txt"))}
    )
    one = build_dataset(options(corpus, tmp_path / "one", num_processes=1, packing=CARRY_PACKING))
    two = build_dataset(options(corpus, tmp_path / "two", num_processes=2, packing=CARRY_PACKING))
    assert one.stats["units"] > 10 and shard_bytes(one) == shard_bytes(two)
    assert one.stats["dropped_tokens"] == 0 and one.packing == CARRY_PACKING


def test_records_parse_with_the_project_pipeline(tmp_path):
    info = build_dataset(options(SAMPLE_CORPUS_DIR, tmp_path / "out"))
    assert DatasetInfo.load(tmp_path / "out") == info
    assert all(shard.num_examples > 0 for shard in info.train_shards + info.eval_shards)
    assert sum(len(read_records(shard.path)) for shard in info.train_shards) == info.num_train_examples
    batch = next(iter(training_dataset(info.train_shards, batch_size=4, seq_length=128, seed=0)))
    assert batch["input_ids"].shape == (4, 128) and batch["input_ids"].dtype == tf.int32
    assert (batch["input_ids"].numpy()[:, 0] == info.cls_id).all()
    assert info.vocab_file.read_bytes() == DEFAULT_VOCAB_FILE.read_bytes()
    assert info.vocab_sha256 == Vocab.load(DEFAULT_VOCAB_FILE).sha256


def test_compressed_files_give_the_same_examples(tmp_path):
    text = joined_text(SAMPLE_GENERAL)
    plain = build_dataset(options(write_corpus(tmp_path / "plain", {"a.txt": text}), tmp_path / "o1"))
    packed = build_dataset(
        options(
            write_corpus(tmp_path / "packed", {"a.txt.gz": gzip.compress(text)}),
            tmp_path / "o2",
        )
    )
    bzipped = build_dataset(options(write_corpus(tmp_path / "bz", {"a.txt.bz2": bz2.compress(text)}), tmp_path / "o3"))
    assert shard_bytes(plain) == shard_bytes(packed) == shard_bytes(bzipped)


def test_rerun_with_same_arguments_is_a_no_op_and_other_content_is_refused(tmp_path):
    out = tmp_path / "out"
    first = build_dataset(options(SAMPLE_CORPUS_DIR, out))
    stamp = (out / DATASET_INFO_FILE).stat().st_mtime_ns
    assert build_dataset(options(SAMPLE_CORPUS_DIR, out)) == first
    assert (out / DATASET_INFO_FILE).stat().st_mtime_ns == stamp
    with pytest.raises(UserError, match="--overwrite"):
        build_dataset(options(SAMPLE_CORPUS_DIR, out, seed=1))
    unrelated = tmp_path / "mine"
    write_corpus(unrelated, {"notes.md": "keep me"})
    with pytest.raises(UserError, match="not empty"):
        build_dataset(options(SAMPLE_CORPUS_DIR, unrelated))
    assert (unrelated / "notes.md").read_text() == "keep me"
    replaced = build_dataset(options(SAMPLE_CORPUS_DIR, out, seed=1, overwrite=True))
    assert replaced.seed == 1 and not list(tmp_path.glob(".*"))  # no staging or replaced folder left
    with pytest.raises(UserError, match="must not contain the corpus"):
        build_dataset(options(tmp_path / "mine", tmp_path, overwrite=True))


def test_interrupted_build_resumes_without_duplicates(tmp_path, small_units, monkeypatch):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": joined_text([*SAMPLE_GENERAL, SAMPLE_CLINICAL])})
    clean = build_dataset(options(corpus, tmp_path / "clean"))
    built = []
    original = UnitWorker.build

    def crash_after_three(self, unit):
        if len(built) == 3:
            # Die like kill -9 would: a half-written temporary record file, no summary.
            Path(unit_file(self.settings.units_dir, unit.index, "train")).with_name("partial.tmp").write_bytes(b"xx")
            raise KeyboardInterrupt
        built.append(unit.index)
        return original(self, unit)

    monkeypatch.setattr(UnitWorker, "build", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(options(corpus, tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(UnitWorker, "build", original)
    resumed = build_dataset(options(corpus, tmp_path / "out"))
    assert shard_bytes(resumed) == shard_bytes(clean)
    assert resumed.num_train_examples == clean.num_train_examples


@pytest.mark.slow
@requires_shared_data(CLINICAL_CORPUS)
def test_kill_9_then_rerun_gives_the_clean_result(tmp_path):
    """A real SIGKILL in the middle of a multi-process build, then the same command again."""
    import signal
    import time

    corpus = write_corpus(tmp_path / "corpus", {"a.txt": shared_file(CLINICAL_CORPUS).read_bytes()})
    command = [sys.executable, str(REPO_ROOT / "build_pretraining_dataset.py"), f"--corpus-dir={corpus}"]
    clean = subprocess.run([*command, f"--output-dir={tmp_path / 'clean'}"], capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr
    process = subprocess.Popen([*command, f"--output-dir={tmp_path / 'out'}"], start_new_session=True)
    units = tmp_path / ".out.building" / "units"
    deadline = time.time() + 300
    while len(list(units.glob("*.json"))) < 2 and time.time() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-build, not finished
    assert not (tmp_path / "out").exists() and units.is_dir()
    rerun = subprocess.run([*command, f"--output-dir={tmp_path / 'out'}"], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert shard_bytes(DatasetInfo.load(tmp_path / "out")) == shard_bytes(DatasetInfo.load(tmp_path / "clean"))


# ----------------------------------------------------------------------------------------------
# Bad input.
# ----------------------------------------------------------------------------------------------


def test_missing_or_empty_inputs_are_clear_errors(tmp_path):
    with pytest.raises(UserError, match="corpus folder not found"):
        build_dataset(options(tmp_path / "nowhere", tmp_path / "out"))
    with pytest.raises(UserError, match="no corpus files matching"):
        build_dataset(options(write_corpus(tmp_path / "other", {"a.csv": "x"}), tmp_path / "out"))
    with pytest.raises(UserError, match="is empty"):
        build_dataset(options(write_corpus(tmp_path / "empty", {"a.txt": ""}), tmp_path / "out"))
    with pytest.raises(UserError, match="no training examples"):
        build_dataset(options(write_corpus(tmp_path / "blank", {"a.txt": "\n \n\t\n"}), tmp_path / "out"))
    with pytest.raises(UserError, match="vocab file not found"):
        build_dataset(options(SAMPLE_CORPUS_DIR, tmp_path / "out", vocab_file=tmp_path / "vocab.txt"))
    assert not (tmp_path / "out").exists()


def test_invalid_utf8_is_replaced_and_counted_or_refused(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": b"Hola \xff\xfe mundo.\nOtra l\xc3nea.\n\nFin del texto.\n"})
    info = build_dataset(options(corpus, tmp_path / "out", eval_fraction=0))
    assert info.stats["invalid_utf8"] == 3  # \xff, \xfe, and \xc3 before an ASCII letter
    with pytest.raises(UserError, match=r"invalid UTF-8 in .*a\.txt at byte offset 5"):
        build_dataset(options(corpus, tmp_path / "strict", strict=True))


def test_binary_files_are_skipped(tmp_path):
    corpus = write_corpus(
        tmp_path / "corpus", {"text.txt": SAMPLE_CLINICAL.read_bytes(), "image.txt": b"\x89PNG\r\n\x00\x00\x01"}
    )
    info = build_dataset(options(corpus, tmp_path / "out"))
    assert info.stats["files_skipped_binary"] == ["image.txt"] and info.stats["files"] == 1


def test_unreadable_file_is_named(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": "hola\n", "broken.txt.gz": b"not gzip at all"})
    with pytest.raises(UserError, match=r"cannot read corpus file .*broken\.txt\.gz"):
        build_dataset(options(corpus, tmp_path / "out"))


def test_a_10_mb_line_is_packed_like_any_line(tmp_path):
    line = ("palabra " * 1_300_000).strip()
    corpus = write_corpus(tmp_path / "corpus", {"a.txt": "Primera frase.\n" + line + "\nOtra frase.\n"})
    info = build_dataset(options(corpus, tmp_path / "out", eval_fraction=0))
    assert info.stats["tokens"] > 1_300_000 and info.num_train_examples >= 2


def test_overlong_lines_are_cut_at_a_space(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"corta\n" + b"abc " * 1000 + b"\nfinal\n")
    chunks = list(read_chunks(Piece(str(path), "a.txt"), chunk_bytes=256, max_line_bytes=1000))
    lines = b"\n".join(chunk.text for chunk in chunks).split(b"\n")
    assert lines == [b"corta", b"abc " * 249 + b"abc", b"final"]
    assert sum(chunk.long_line_cut for chunk in chunks) == 1


def test_overlong_lines_are_read_in_pieces_for_carry_packing(tmp_path):
    """For carry packing the rest of a line over the limit is read on (cut at spaces), not skipped."""
    path = tmp_path / "a.txt"
    path.write_bytes(b"corta\n" + b"abc " * 1000 + b"\nfinal\n")
    chunks = list(read_chunks(Piece(str(path), "a.txt"), chunk_bytes=256, max_line_bytes=1000, split_long_lines=True))
    lines = b"\n".join(chunk.text for chunk in chunks).split(b"\n")
    assert lines[0] == b"corta" and lines[-1] == b"final" and b"".join(lines[1:-1]) == b"abc " * 1000
    # (a line is cut once it passes the limit without a newline: at most a read of 256 bytes beyond it)
    assert max(map(len, lines)) < 1000 + 256 and sum(chunk.long_line_cut for chunk in chunks) >= 3


def test_large_files_are_cut_after_blank_lines(tmp_path):
    text, _ = vocabulary_documents(200, 1)
    path = write_corpus(tmp_path, {"a.txt": text}) / "a.txt"
    files = find_corpus_files(tmp_path, ["*.txt"])
    units = plan_units(files, 4096, blanks_separate_docs=True)
    assert len(units) > 5
    data = path.read_bytes()
    ends = [unit.pieces[0].end for unit in units[:-1]]
    assert all(data[end - 2 : end] == b"\n\n" for end in ends)
    assert b"".join(data[u.pieces[0].start : u.pieces[0].end] for u in units) == data


def test_dataset_info_errors(tmp_path):
    with pytest.raises(UserError, match="not a pretraining dataset"):
        DatasetInfo.load(tmp_path)
    info = build_dataset(options(SAMPLE_CORPUS_DIR, tmp_path / "out"))
    raw = json.loads((tmp_path / "out" / DATASET_INFO_FILE).read_text())
    assert raw["train_shards"][0]["path"].startswith("train/")
    (tmp_path / "out" / DATASET_INFO_FILE).write_text(json.dumps({**raw, "format_version": 99}))
    with pytest.raises(UserError, match="format version 99"):
        DatasetInfo.load(tmp_path / "out")
    (tmp_path / "out" / DATASET_INFO_FILE).write_text(
        json.dumps({key: v for key, v in raw.items() if key != "packing"})
    )
    assert info.packing == CARRY_PACKING and DatasetInfo.load(tmp_path / "out").packing == GOOGLE_PACKING  # older files
    (tmp_path / "out" / DATASET_INFO_FILE).write_text(json.dumps(raw))
    Path(info.train_shards[0].path).unlink()
    with pytest.raises(UserError, match="missing"):
        DatasetInfo.load(tmp_path / "out")


# ----------------------------------------------------------------------------------------------
# The command line.
# ----------------------------------------------------------------------------------------------


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "build_pretraining_dataset.py"), *arguments],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=600,
    )


def test_cli_builds_the_sample_corpus(tmp_path):
    result = run_cli(f"--corpus-dir={SAMPLE_CORPUS_DIR}", f"--output-dir={tmp_path / 'out'}", "--num-processes=2")
    assert result.returncode == 0, result.stderr
    assert "training examples" in result.stderr
    assert "packing (carry) dropped 0 of" in result.stderr  # every build says how many tokens it dropped
    info = DatasetInfo.load(tmp_path / "out")
    assert info.num_train_examples > 100 and info.strip_accents and info.do_lower_case
    again = run_cli(f"--corpus-dir={tmp_path / 'nowhere'}", f"--output-dir={tmp_path / 'o2'}")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].startswith("error: corpus folder not found")
