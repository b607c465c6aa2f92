"""Write a directory all at once: into a hidden sibling first, then renamed into place.

An interrupted export leaves the previous contents (or nothing) behind, never a half-written model.
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from electra_tf.errors import UserError


@contextlib.contextmanager
def atomic_directory(target: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty staging directory that replaces ``target`` when the block succeeds.

    Refuses (before any work) a ``target`` that is a file, or a non-empty directory unless
    ``overwrite``. On failure the staging directory is removed and ``target`` is untouched.
    """
    if target.exists() and not target.is_dir():
        raise UserError(f"output directory {target} exists and is a file.")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise UserError(f"output directory {target} exists and is not empty; pass --overwrite to replace it.")
    staging = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        staging.mkdir(parents=True)
    except OSError as error:
        raise UserError(f"cannot create {staging}: {error.strerror}") from None
    try:
        yield staging
        if target.exists():
            retired = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(retired)
            staging.rename(target)
            shutil.rmtree(retired)
        else:
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
