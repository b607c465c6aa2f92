"""Build a pretraining dataset: corpus folder → sharded TFRecords + ``dataset_info.json``.

The steps, each in its own module:

1. find the corpus files and cut them into units of a few MB (:mod:`electra_tf.data.corpus`);
2. build the units in worker processes (:mod:`electra_tf.data.unit_worker`): tokenize, hold out
   documents for evaluation, pack examples (:mod:`electra_tf.data.packing`), write records
   (:mod:`electra_tf.data.tfrecord`);
3. concatenate the units' records into the train and eval shards, copy the vocab, write
   ``dataset_info.json`` (:mod:`electra_tf.data.dataset_info`).

Safety: everything is written in a staging folder beside the output folder
(``.<name>.building``) and renamed into place at the end, so the output folder only ever holds a
complete dataset. A finished unit is kept in the staging folder, so rerunning an interrupted build
with the same arguments resumes it; its units and records are rewritten whole, never appended to.
An existing output folder is replaced only with ``--overwrite`` (and never when it holds the
corpus); one holding a build with the same arguments is left as it is.

Output is a function of the corpus, the flags and the seed only: units and every random number in
them do not depend on ``--num-processes``, and shards are assembled in unit order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import multiprocessing
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from absl import logging

from electra_tf.atomic_io import atomic_file, replace_directory, write_text_atomically
from electra_tf.data.corpus import CorpusFile, Unit, plan_units, readable_text_files
from electra_tf.data.dataset_info import DATASET_INFO_FILE, VOCAB_COPY, DatasetInfo
from electra_tf.data.input_pipeline import Shard
from electra_tf.data.packing import CARRY_PACKING, GOOGLE_PACKING, PACKING_MODES
from electra_tf.data.unit_worker import EVAL, SPLITS, TRAIN, UnitSettings, UnitWorker, new_summary, unit_file
from electra_tf.errors import UserError
from electra_tf.path_checks import os_error_line, require_file, require_writable_folder

if TYPE_CHECKING:
    from electra_tf.tokenization import Vocab

BUILD_FORMAT = 1
"""Part of every build signature: bump it when the same flags would give different records."""
MIB = 1 << 20
MIN_UNIT_BYTES = 2 * MIB
MAX_UNIT_BYTES = 32 * MIB
UNITS_PER_CORPUS = 64
"""Units grow from 2 MB with the corpus so that a large corpus does not make thousands of units."""
CHUNK_BYTES = MIB
MAX_LINE_BYTES = 16 * MIB
SHARD_INPUT_BYTES = 64 * MIB
"""Default shard size: one shard per this much input text ..."""
MIN_DEFAULT_SHARDS = 8
"""... but at least this many (if there are that many units), so reading interleaves 8 files."""
PROGRESS_SECONDS = 5.0
BUILD_FILE = "build.json"
DROPPED_WARNING_SHARE = 0.05
"""A build that drops more than this share of the corpus tokens says so with a warning."""
UNITS_FOLDER = "units"


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """The builder's inputs (the CLI flags)."""

    corpus_dir: Path
    output_dir: Path
    vocab_file: Path
    max_seq_length: int = 128
    num_processes: int = 1
    num_shards: int | None = None
    do_lower_case: bool = True
    strip_accents: bool | None = None
    blanks_separate_docs: bool = True
    file_patterns: tuple[str, ...] = ("*.txt", "*.txt.gz", "*.txt.bz2")
    seed: int = 12345
    eval_fraction: float = 0.01
    overwrite: bool = False
    strict: bool = False
    packing: str = CARRY_PACKING

    def validate(self) -> None:
        if self.max_seq_length < 5:
            raise UserError(f"--max-seq-length must be at least 5, got {self.max_seq_length}")
        if self.num_processes < 1:
            raise UserError(f"--num-processes must be at least 1, got {self.num_processes}")
        if self.num_shards is not None and self.num_shards < 1:
            raise UserError(f"--num-shards must be at least 1, got {self.num_shards}")
        if not 0 <= self.eval_fraction < 1:
            raise UserError(f"--eval-fraction must be in [0, 1), got {self.eval_fraction}")
        if not 0 <= self.seed < 2**63:
            raise UserError(f"--seed must be in [0, 2**63), got {self.seed}")
        if not self.file_patterns:
            raise UserError("--file-pattern is empty")
        if self.packing not in PACKING_MODES:
            raise UserError(f"--packing must be one of {', '.join(PACKING_MODES)}, got {self.packing!r}")
        require_file(self.vocab_file, "vocab file")


def build_dataset(options: BuildOptions) -> DatasetInfo:
    """Build (or resume, or find already built) the dataset described by ``options``.

    A write that fails (a full disk, a file size limit, a folder made read-only), here or in a worker
    process, ends in one :class:`UserError` naming the path and the OS's reason. Finished units stay
    in the staging folder, so the same command resumes once the cause is fixed.
    """
    staging = _staging_folder(options.output_dir.resolve())
    try:
        return _build_dataset(options)
    except OSError as error:
        raise UserError(
            f"cannot write {os_error_line(error, staging)}; rerun the same command once that is fixed "
            "(the finished part of the build is kept)"
        ) from None


def _staging_folder(output_dir: Path) -> Path:
    """Where the dataset is built before it is renamed to ``output_dir``."""
    return output_dir.parent / f".{output_dir.name}.building"


def _build_dataset(options: BuildOptions) -> DatasetInfo:
    """:func:`build_dataset` without the translation of OS errors."""
    started = time.perf_counter()
    options.validate()
    output_dir = options.output_dir.resolve()
    corpus_dir = options.corpus_dir.resolve()
    staging = _staging_folder(output_dir)
    if corpus_dir == output_dir or output_dir in corpus_dir.parents:
        raise UserError(f"--output-dir {output_dir} must not contain the corpus folder {corpus_dir}")
    files, skipped = readable_text_files(corpus_dir, options.file_patterns, exclude=(output_dir, staging))
    require_writable_folder(output_dir.parent, "--output-dir")
    units = plan_units(files, _unit_bytes(files), options.blanks_separate_docs)
    settings = UnitSettings(
        vocab_file=str(options.vocab_file.resolve()),
        do_lower_case=options.do_lower_case,
        strip_accents=options.strip_accents,
        max_seq_length=options.max_seq_length,
        blanks_separate_docs=options.blanks_separate_docs,
        eval_fraction=options.eval_fraction,
        seed=options.seed,
        strict=options.strict,
        units_dir=str(staging / UNITS_FOLDER),
        chunk_bytes=CHUNK_BYTES,
        max_line_bytes=MAX_LINE_BYTES,
        packing=options.packing,
    )
    # Workers start now: loading TensorFlow and the tokenizer takes them seconds, which the checks
    # below overlap.
    with _WorkerPool(min(options.num_processes, len(units)), settings) as pool:
        from electra_tf.tokenization import Vocab, resolve_strip_accents

        vocab = Vocab.load(options.vocab_file)
        strip_accents = resolve_strip_accents(options.do_lower_case, options.strip_accents)
        signature = _signature(options, strip_accents, vocab.sha256, files, units)
        existing = _existing_build(output_dir, signature, options.overwrite)
        if existing is not None:
            logging.info("%s already holds this dataset (same corpus, flags and seed); nothing to do.", output_dir)
            return existing
        if not _staged_dataset_ready(staging, signature):
            _prepare_staging(staging, signature)
            _build_units(units, settings, pool)
            summaries = [_load_summary(settings.units_dir, unit.index) for unit in units]
            info = _assemble(staging, options, strip_accents, vocab, summaries, files, skipped, signature)
            info.stats["seconds"] = round(time.perf_counter() - started, 3)
            info.save()
            shutil.rmtree(staging / UNITS_FOLDER)
    _move_into_place(staging, output_dir)
    info = DatasetInfo.load(output_dir)
    _log_summary(info, time.perf_counter() - started)
    return info


def _unit_bytes(files: Sequence[CorpusFile]) -> int:
    total = sum(file.size for file in files)
    return min(MAX_UNIT_BYTES, max(MIN_UNIT_BYTES, total // UNITS_PER_CORPUS // MIB * MIB))


def _signature(
    options: BuildOptions, strip_accents: bool, vocab_sha256: str, files: Sequence[CorpusFile], units: Sequence[Unit]
) -> str:
    """A hash of everything the records depend on (not of --num-processes, which they do not)."""
    described = {
        "format": BUILD_FORMAT,
        "vocab_sha256": vocab_sha256,
        "do_lower_case": options.do_lower_case,
        "strip_accents": strip_accents,
        "max_seq_length": options.max_seq_length,
        "num_shards": options.num_shards,
        "blanks_separate_docs": options.blanks_separate_docs,
        "seed": options.seed,
        "eval_fraction": options.eval_fraction,
        "packing": options.packing,
        "files": [[file.relative, file.size, file.mtime_ns] for file in files],
        "units": [[[piece.relative, piece.start, piece.end] for piece in unit.pieces] for unit in units],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _existing_build(output_dir: Path, signature: str, overwrite: bool) -> DatasetInfo | None:
    """The dataset already in ``output_dir`` if it is this build (and ``overwrite`` does not ask for a
    rebuild); refuses any other content, a damaged dataset included, unless ``overwrite``."""
    if not output_dir.exists():
        return None
    if not output_dir.is_dir():
        raise UserError(f"--output-dir {output_dir} is a file, not a folder")
    if (output_dir / DATASET_INFO_FILE).is_file():
        try:
            info = DatasetInfo.load(output_dir)
        except UserError as problem:
            if not overwrite:
                raise UserError(
                    f"--output-dir {output_dir} holds an unusable dataset (pass --overwrite to rebuild it): {problem}"
                ) from None
            info = None
        if info is not None and info.stats.get("build_signature") == signature and not overwrite:
            return info
    if any(output_dir.iterdir()) and not overwrite:
        raise UserError(
            f"--output-dir {output_dir} is not empty and does not hold this dataset; choose another folder "
            "or pass --overwrite to replace it"
        )
    return None


def _staged_dataset_ready(staging: Path, signature: str) -> bool:
    """True if an earlier run of this build finished the staging folder but did not move it."""
    return _staged_signature(staging) == signature and (staging / DATASET_INFO_FILE).is_file()


def _staged_signature(staging: Path) -> str | None:
    try:
        return json.loads((staging / BUILD_FILE).read_text())["signature"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _prepare_staging(staging: Path, signature: str) -> None:
    """Reuse the staging folder of an interrupted run of this build, or start a fresh one."""
    if staging.exists():
        if _staged_signature(staging) == signature:
            logging.info("resuming the interrupted build in %s", staging)
            return
        if not (staging / BUILD_FILE).is_file():
            raise UserError(f"{staging} exists but was not made by this builder; move it away and rerun")
        logging.warning("removing %s, left by an interrupted build with other arguments", staging)
        shutil.rmtree(staging)
    (staging / UNITS_FOLDER).mkdir(parents=True)
    write_text_atomically(staging / BUILD_FILE, json.dumps({"signature": signature}) + "\n")


# ----------------------------------------------------------------------------------------------
# Worker processes.
# ----------------------------------------------------------------------------------------------

_WORKER: UnitWorker | None = None
_WORKER_ERROR: BaseException | None = None


def _start_worker(settings: UnitSettings) -> None:
    """Pool initializer. An error is kept for the first task (a raising initializer respawns forever)."""
    global _WORKER, _WORKER_ERROR
    try:
        import tensorflow as tf

        # One process per core: TensorFlow's own thread pools would only compete with the others.
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        _WORKER = UnitWorker(settings)
    except BaseException as error:
        _WORKER_ERROR = error


def _build_in_worker(unit: Unit) -> dict[str, Any]:
    if _WORKER is None:
        raise _WORKER_ERROR or RuntimeError("worker not started")
    return _WORKER.build(unit)


class _InProcessPool:
    """The one-process case: units built in this process, in order."""

    def __init__(self, settings: UnitSettings) -> None:
        self._settings = settings
        self._worker: UnitWorker | None = None

    def imap_unordered(self, function: Any, units: Sequence[Unit]) -> Iterator[dict[str, Any]]:
        del function  # always the unit builder
        if self._worker is None:
            self._worker = UnitWorker(self._settings)
        return (self._worker.build(unit) for unit in units)


class _WorkerPool:
    """Spawned worker processes (fork is unsafe once TensorFlow runs), or the in-process stand-in."""

    def __init__(self, processes: int, settings: UnitSettings) -> None:
        self._processes = processes
        self._settings = settings
        self._pool: Any = None

    def __enter__(self) -> Any:
        if self._processes <= 1:
            return _InProcessPool(self._settings)
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(self._processes, initializer=_start_worker, initargs=(self._settings,))
        return self._pool

    def __exit__(self, *exc_info: object) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()


def _build_units(units: Sequence[Unit], settings: UnitSettings, pool: Any) -> None:
    """Build every unit that has no summary yet, logging progress."""
    todo = [unit for unit in units if not unit_file(settings.units_dir, unit.index, "json").is_file()]
    if len(todo) < len(units):
        logging.info("%d of %d units were finished by an earlier run", len(units) - len(todo), len(units))
    progress = _Progress(sum(unit.planned_bytes for unit in todo), len(todo))
    planned = {unit.index: unit.planned_bytes for unit in todo}
    for summary in pool.imap_unordered(_build_in_worker, todo):
        progress.update(summary, planned[summary["index"]])
    progress.log(final=True)


class _Progress:
    """Periodic progress lines: share done, MB/s of text, examples/s, ETA."""

    def __init__(self, planned_bytes: int, units: int) -> None:
        self._planned = max(1, planned_bytes)
        self._units = units
        self._started = time.perf_counter()
        self._last_log = self._started
        self._done_planned = self._done_units = self._bytes = self._examples = 0

    def update(self, summary: dict[str, Any], planned_bytes: int) -> None:
        self._done_planned += planned_bytes
        self._done_units += 1
        self._bytes += summary["bytes"]
        self._examples += summary["examples_train"] + summary["examples_eval"]
        if time.perf_counter() - self._last_log >= PROGRESS_SECONDS:
            self.log()

    def log(self, final: bool = False) -> None:
        now = time.perf_counter()
        self._last_log = now
        elapsed = max(now - self._started, 1e-9)
        share = self._done_planned / self._planned
        eta = elapsed * (1 - share) / share if share > 0 else float("nan")
        logging.info(
            "%s%d/%d units, %.1f MB of text (%.0f%%), %.1f MB/s, %d examples (%.0f/s)%s",
            "done: " if final else "",
            self._done_units,
            self._units,
            self._bytes / 1e6,
            100 * share,
            self._bytes / 1e6 / elapsed,
            self._examples,
            self._examples / elapsed,
            "" if final else f", ETA {eta:.0f}s",
        )


def _load_summary(units_dir: str, index: int) -> dict[str, Any]:
    return json.loads(unit_file(units_dir, index, "json").read_text())


# ----------------------------------------------------------------------------------------------
# Shards and dataset_info.json.
# ----------------------------------------------------------------------------------------------


def shard_count(requested: int | None, nonempty_units: int, input_bytes: float, minimum: int) -> int:
    """How many shards a split gets: ``requested`` or about one per 64 MB of input (at least
    ``minimum``), never more than the units holding examples (a shard is whole units)."""
    if nonempty_units == 0:
        return 0
    wanted = requested if requested is not None else max(minimum, math.ceil(input_bytes / SHARD_INPUT_BYTES))
    return min(wanted, nonempty_units)


def _assemble(
    staging: Path,
    options: BuildOptions,
    strip_accents: bool,
    vocab: Vocab,
    summaries: Sequence[dict[str, Any]],
    files: Sequence[CorpusFile],
    skipped: Sequence[str],
    signature: str,
) -> DatasetInfo:
    """Concatenate unit records into shards, copy the vocab, and describe the dataset."""
    totals = new_summary(-1)
    del totals["index"]
    for summary in summaries:
        for key in totals:
            totals[key] += summary[key]
    if totals["examples_train"] == 0:
        raise UserError(
            f"the corpus under {options.corpus_dir} gave no training examples "
            f"({totals['tokens']} tokens in {totals['lines']} lines)"
        )
    shards = {}
    for split in SPLITS:
        nonempty = [summary["index"] for summary in summaries if summary[f"examples_{split}"] > 0]
        examples = {summary["index"]: summary[f"examples_{split}"] for summary in summaries}
        share = totals[f"examples_{split}"] / (totals["examples_train"] + totals["examples_eval"])
        count = shard_count(
            options.num_shards if split == TRAIN else None,
            len(nonempty),
            totals["bytes"] * share,
            MIN_DEFAULT_SHARDS if split == TRAIN else 1,
        )
        if split == TRAIN and options.num_shards is not None and count < options.num_shards:
            logging.warning(
                "writing %d training shards instead of %d: only %d blocks of input hold examples",
                count,
                options.num_shards,
                len(nonempty),
            )
        shards[split] = _write_shards(staging, split, nonempty, count, examples, options)
    if not shards[EVAL] and options.eval_fraction > 0:
        logging.warning("no document was held out for evaluation (the corpus has too few documents)")
    shutil.copyfile(options.vocab_file, staging / VOCAB_COPY)
    dropped = totals["dropped_tokens_train"] + totals["dropped_tokens_eval"]
    stats = {
        "files": len(files),
        "files_skipped_binary": list(skipped),
        **totals,
        "dropped_tokens": dropped,
        "dropped_token_share": round(dropped / max(1, totals["tokens"]), 6),
        "build_signature": signature,
        "corpus_dir": str(options.corpus_dir.resolve()),
        "file_patterns": list(options.file_patterns),
        "blanks_separate_docs": options.blanks_separate_docs,
        "eval_fraction": options.eval_fraction,
        "units": len(summaries),
    }
    return DatasetInfo(
        data_dir=staging,
        **DatasetInfo.vocab_fields(vocab),
        do_lower_case=options.do_lower_case,
        strip_accents=strip_accents,
        max_seq_length=options.max_seq_length,
        seed=options.seed,
        packing=options.packing,
        train_shards=tuple(shards[TRAIN]),
        eval_shards=tuple(shards[EVAL]),
        stats=stats,
    )


def _write_shards(
    staging: Path, split: str, units: Sequence[int], count: int, examples: dict[int, int], options: BuildOptions
) -> list[Shard]:
    """Shard ``j`` is the concatenation of units ``j, j + count, j + 2 count, ...`` (records are
    self-delimiting, so concatenated TFRecord files are one valid file)."""
    folder = staging / split
    if folder.exists():
        shutil.rmtree(folder)  # left by an interrupted run of this build: rewritten whole
    folder.mkdir()
    shards = []
    for shard in range(count):
        members = units[shard::count]
        path = folder / f"{split}-{shard:05d}-of-{count:05d}.tfrecord"
        with atomic_file(path, binary=True) as out:
            for index in members:
                with open(unit_file(staging / UNITS_FOLDER, index, split), "rb") as source:
                    shutil.copyfileobj(source, out, 8 * MIB)
        shards.append(Shard(str(path), sum(examples[index] for index in members), path.stat().st_size))
    return shards


def _move_into_place(staging: Path, output_dir: Path) -> None:
    """Rename the finished staging folder to ``output_dir``, replacing what was there (checked before)."""
    replace_directory(staging, output_dir)
    (output_dir / BUILD_FILE).unlink()


def _log_summary(info: DatasetInfo, seconds: float) -> None:
    stats = info.stats
    logging.info(
        "wrote %d training examples in %d shard(s) and %d held-out examples in %d shard(s) to %s",
        info.num_train_examples,
        len(info.train_shards),
        info.num_eval_examples,
        len(info.eval_shards),
        info.data_dir,
    )
    logging.info(
        "read %d file(s), %.1f MB, %d documents (%d held out), %d tokens; %.1f s (%.1f MB/s)",
        stats["files"],
        stats["bytes"] / 1e6,
        stats["documents_train"] + stats["documents_eval"],
        stats["documents_eval"],
        stats["tokens"],
        seconds,
        stats["bytes"] / 1e6 / max(seconds, 1e-9),
    )
    if stats["invalid_utf8"]:
        logging.warning("replaced %d invalid UTF-8 sequence(s) with U+FFFD", stats["invalid_utf8"])
    if stats["long_lines_cut"] and info.packing == GOOGLE_PACKING:
        logging.warning("cut %d line(s) longer than %d MB", stats["long_lines_cut"], MAX_LINE_BYTES // MIB)
    elif stats["long_lines_cut"]:
        logging.info("read %d line(s) longer than %d MB in pieces", stats["long_lines_cut"], MAX_LINE_BYTES // MIB)
    _log_dropped_tokens(info)


def _log_dropped_tokens(info: DatasetInfo) -> None:
    """The corpus tokens that no example holds (only Google's packing drops any); a warning above 5%."""
    stats = info.stats
    summary = (
        f"packing ({info.packing}) dropped {stats['dropped_tokens']:,} of {stats['tokens']:,} corpus tokens "
        f"({100 * stats['dropped_token_share']:.2f}%)"
    )
    if stats["dropped_token_share"] > DROPPED_WARNING_SHARE:
        logging.warning(
            "%s: no example holds them. --packing %s keeps every token (it splits a line that does not fit "
            "its example and carries the rest into the next one)",
            summary,
            CARRY_PACKING,
        )
    else:
        logging.info("%s", summary)
