"""Which checkpoint a run resumes from, decided by the files on disk, and what interrupted runs left.

``tf.train.CheckpointManager`` knows only the checkpoints listed in its state file
(``checkpoints/checkpoint``) and trusts them: with the state file gone a run would start again at step 0
and its saves would overwrite the old checkpoints of the same steps, and a checkpoint truncated by a
``kill -9`` or a full disk would stop every later run. So before a run builds its manager,
:func:`resume_point` reads the directory itself:

- every ``ckpt-N`` on disk is a candidate, newest first, listed or not; the first whose index and every
  tensor read back (TensorFlow checks each tensor's CRC32C) is the one to resume from;
- newer checkpoints that do not read are moved to ``checkpoints/corrupt/`` with a warning naming the
  files. Moving, not deleting: they are the user's files, and left in place a later save of the same
  step would replace them silently while every start re-read and re-reported them;
- partial writes (``ckpt-N_temp/`` folders of a save that failed or was killed, state-file temporaries)
  are removed;
- the state file is rewritten when it is missing, unreadable or behind the disk, so that the manager
  rotates the checkpoints as usual and ``tf.train.latest_checkpoint`` (export) finds the same one; with
  no checkpoint left on disk it is removed.

Only the chief tidies (``tidy=True``); other workers just read, and reach the same choice.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from pathlib import Path

import tensorflow as tf
from absl import logging

from electra_tf.atomic_io import write_text_atomically
from electra_tf.errors import UserError

STATE_FILE = "checkpoint"
CORRUPT_SUBDIR = "corrupt"
_CHECKPOINT_FILE = re.compile(r"ckpt-(\d+)\.(?:index|data-\d+-of-\d+)")
_PARTIAL_WRITE = re.compile(r"ckpt-\d+_temp|checkpoint\.tmp[0-9a-f]+")
# What a damaged checkpoint raises when read: a short read surfaces as IndexError ("Read less bytes than
# requested"), a bad index or checksum as an OpError, other reader failures as RuntimeError.
_READ_ERRORS = (tf.errors.OpError, IndexError, RuntimeError, ValueError)


@dataclasses.dataclass(frozen=True)
class StoredCheckpoint:
    """The files of one ``ckpt-N`` in a checkpoint directory (``N`` is the step it was saved at)."""

    number: int
    files: tuple[Path, ...]

    @property
    def name(self) -> str:
        return f"ckpt-{self.number}"

    @property
    def prefix(self) -> Path:
        return self.files[0].parent / self.name

    @property
    def index(self) -> Path:
        return self.prefix.with_name(f"{self.name}.index")


def stored_checkpoints(directory: Path) -> list[StoredCheckpoint]:
    """Every ``ckpt-N`` with a file in ``directory``, newest first (complete or not)."""
    grouped: dict[int, list[Path]] = {}
    for path in directory.iterdir() if directory.is_dir() else ():
        match = _CHECKPOINT_FILE.fullmatch(path.name)
        if match and path.is_file():
            grouped.setdefault(int(match.group(1)), []).append(path)
    return [StoredCheckpoint(number, tuple(sorted(grouped[number]))) for number in sorted(grouped, reverse=True)]


def unreadable_reason(checkpoint: StoredCheckpoint) -> str | None:
    """``None`` when the checkpoint's index and every tensor read back intact, else why not."""
    if not checkpoint.index.is_file():
        return "no .index file (its write never finished)"
    try:
        reader = tf.train.load_checkpoint(str(checkpoint.prefix))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except tf.errors.PermissionDeniedError as error:  # intact maybe, but not ours to judge or move
        raise UserError(f"cannot read checkpoint {checkpoint.prefix}: {error}") from None
    except _READ_ERRORS as error:
        lines = str(error).strip().splitlines()
        return lines[0] if lines else type(error).__name__
    return None


def resume_point(directory: Path, tidy: bool) -> str | None:
    """The prefix of the newest intact checkpoint in ``directory``, or ``None`` when it holds none.

    With ``tidy`` (the chief) the directory is also repaired as the module docstring says. Raises
    :class:`UserError` when checkpoints exist but none of them reads (nothing is moved then), or when
    the directory cannot be tidied.
    """
    try:
        if tidy:
            _remove_partial_writes(directory)
        candidates = stored_checkpoints(directory)
        skipped: list[tuple[StoredCheckpoint, str]] = []
        chosen = None
        for candidate in candidates:
            reason = unreadable_reason(candidate)
            if reason is None:
                chosen = candidate
                break
            skipped.append((candidate, reason))
        if chosen is None and skipped:
            details = "; ".join(f"{checkpoint.name}: {reason}" for checkpoint, reason in skipped)
            raise UserError(
                f"none of the {len(skipped)} checkpoint(s) in {directory} can be read ({details}). Restore them "
                "from a backup, or train in a new --model-dir to start afresh."
            )
        if chosen is None:
            if tidy:
                _remove_stale_state(directory)
            return None
        if skipped:
            _set_aside(skipped, chosen, directory, tidy)
        if tidy:
            _update_state(directory, candidates[len(skipped) :])
        return str(chosen.prefix)
    except OSError as error:
        raise UserError(f"cannot tidy the checkpoint directory {directory}: {error}") from None


def _remove_partial_writes(directory: Path) -> None:
    for path in sorted(directory.iterdir()) if directory.is_dir() else ():
        if _PARTIAL_WRITE.fullmatch(path.name):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
            logging.warning("Removed %s, the partial write of an interrupted or failed checkpoint save.", path)


def _set_aside(
    skipped: list[tuple[StoredCheckpoint, str]], chosen: StoredCheckpoint, directory: Path, tidy: bool
) -> None:
    """Warn about each unreadable checkpoint, naming its files; the chief moves them to ``corrupt/``."""
    for checkpoint, reason in skipped:
        files = ", ".join(path.name for path in checkpoint.files)
        if tidy:
            corrupt = directory / CORRUPT_SUBDIR
            corrupt.mkdir(exist_ok=True)
            for path in checkpoint.files:
                path.rename(_free_name(corrupt / path.name))
            where = f"moved its files ({files}) to {corrupt}"
        else:
            where = f"skipped its files ({files})"
        logging.warning("Checkpoint %s cannot be read (%s); %s.", checkpoint.prefix, reason, where)
    logging.warning(
        "Resuming from %s, the newest readable checkpoint: the steps after it are trained again.", chosen.prefix
    )


def _free_name(path: Path) -> Path:
    """``path``, or ``path.1``, ``path.2``, … if taken (an earlier set-aside file is never replaced)."""
    candidate, count = path, 0
    while candidate.exists():
        count += 1
        candidate = path.with_name(f"{path.name}.{count}")
    return candidate


def _listed_names(directory: Path) -> list[str] | None:
    """The checkpoint names in the state file, oldest first; ``None`` if it is missing or unreadable."""
    try:
        state = tf.train.get_checkpoint_state(str(directory))
    except ValueError:  # a state file naming no checkpoint
        return None
    if state is None:
        return None
    return [Path(path).name for path in state.all_model_checkpoint_paths] or [Path(state.model_checkpoint_path).name]


def _update_state(directory: Path, chosen_and_older: list[StoredCheckpoint]) -> None:
    """List the resumed checkpoint as the newest in the state file, with the older ones it should rotate.

    With a readable state file, older checkpoints it does not list stay unlisted (and so are never
    rotated away); without one, every complete checkpoint on disk is listed, as the lost file would have.
    """
    chosen = chosen_and_older[0]
    older = [checkpoint for checkpoint in chosen_and_older[1:] if checkpoint.index.is_file()]
    listed = _listed_names(directory)
    if listed is None:
        kept = [chosen, *older]
        if (directory / STATE_FILE).exists():
            logging.warning("The checkpoint state file %s is unreadable; rebuilding it.", directory / STATE_FILE)
        else:
            logging.warning(
                "The checkpoint state file %s is missing; rebuilt it from the %d checkpoint(s) on disk.",
                directory / STATE_FILE,
                len(kept),
            )
    else:
        kept = [chosen] + [checkpoint for checkpoint in older if checkpoint.name in listed]
    oldest_first = list(reversed(kept))
    if [checkpoint.name for checkpoint in oldest_first] == listed:
        return
    # The manager's CheckpointState text format, with paths relative to the directory as it writes them.
    lines = [f'model_checkpoint_path: "{chosen.name}"']
    lines += [f'all_model_checkpoint_paths: "{checkpoint.name}"' for checkpoint in oldest_first]
    lines += [f"all_model_checkpoint_timestamps: {checkpoint.index.stat().st_mtime}" for checkpoint in oldest_first]
    write_text_atomically(directory / STATE_FILE, "\n".join(lines) + "\n")


def _remove_stale_state(directory: Path) -> None:
    """With no checkpoint on disk, a state file indexes nothing (and the manager may fail to parse it)."""
    state = directory / STATE_FILE
    if state.is_file():
        logging.warning("Removed %s: no checkpoint it could list is on disk.", state)
        state.unlink()
