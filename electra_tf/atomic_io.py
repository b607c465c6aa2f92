"""Atomic writes of files and folders: a reader (or a crash) sees the old one or the new one, never half of one.

Everything the project writes also gets the permissions an ordinary ``open()`` would give it
(``0666`` less the user's umask, so ``-rw-r--r--`` under the usual umask 022 and ``-rw-rw-r--``
under a group-sharing 002), not the private ``0600`` of a temporary file: on a shared cluster,
colleagues must be able to read a dataset, a model directory or an export.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from electra_tf.errors import UserError


def ordinary_file_mode() -> int:
    """The permission bits ``open()`` gives a new file now: ``0o666`` without the process umask.

    Use it on files written through a private temporary file (``mkstemp`` makes them ``0600``, and
    so does ``safetensors``' ``save_file``).
    """
    return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (changing it, even briefly,
    would affect files other threads create meanwhile)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


@contextlib.contextmanager
def atomic_file(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing (text: UTF-8 with ``\\n`` line ends).

    When the block succeeds the file is flushed, fsynced, given :func:`ordinary_file_mode` and
    renamed to ``path``; when it fails the temporary file is removed and ``path`` is untouched.
    The folder is created if needed.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        handle = os.fdopen(descriptor, "wb") if binary else os.fdopen(descriptor, "w", encoding="utf-8", newline="\n")
        with handle:
            os.fchmod(handle.fileno(), ordinary_file_mode())
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as handle:
        handle.write(text)


def write_json_atomically(path: Path, values: Any) -> None:
    """``values`` as indented, key-sorted JSON, written atomically."""
    write_text_atomically(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def copy_file_atomically(source: Path, target: Path) -> None:
    """Copy ``source``'s bytes to ``target`` atomically (see :func:`atomic_file`)."""
    with open(source, "rb") as reading, atomic_file(target, binary=True) as writing:
        shutil.copyfileobj(reading, writing)


def replace_directory(staging: Path, target: Path) -> None:
    """Rename the finished folder ``staging`` to ``target``. An existing ``target`` is renamed aside
    first and removed only once the new folder is in place, so a crash leaves one of the two whole."""
    retired = None
    if target.exists():
        retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        target.rename(retired)
    staging.rename(target)
    if retired is not None:
        shutil.rmtree(retired)


def check_output_directory(target: Path, overwrite: bool) -> None:
    """Refuse an output ``target`` that is a file, or a non-empty folder unless ``overwrite``."""
    if target.exists() and not target.is_dir():
        raise UserError(f"output directory {target} exists and is a file.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise UserError(f"output directory {target} exists and is not empty; pass --overwrite to replace it.")


@contextlib.contextmanager
def atomic_directory(target: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging folder (a hidden sibling of ``target``) that replaces ``target`` when
    the block succeeds.

    Refuses (before any work) a ``target`` that is a file, or a non-empty folder unless
    ``overwrite``. On failure the staging folder is removed and ``target`` is untouched.
    """
    check_output_directory(target, overwrite)
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
    except OSError as error:
        raise UserError(f"cannot create {staging}: {error.strerror}") from None
    try:
        yield staging
        replace_directory(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
