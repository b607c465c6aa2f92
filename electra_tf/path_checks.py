"""Checks of the paths a user gives, made before long work starts, and OS errors told as one line.

A vocab that is a folder, an output folder under a regular file or on a read-only disk should stop a
tool at once with a :class:`UserError` that names the path, not after an hour of training or
tokenizing, and not as a traceback. The writability check really creates a file (and removes it),
so it answers for permissions, read-only mounts and the superuser alike.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from electra_tf.errors import UserError


def require_file(path: Path, what: str) -> None:
    """:class:`UserError` unless ``path`` is a regular file; ``what`` names it (e.g. "vocab file")."""
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")


def require_writable_folder(folder: Path, what: str) -> None:
    """:class:`UserError` unless files can be created in ``folder`` (created, with its parents, if missing).

    ``what`` says what will be written there, for the message (e.g. "--output-dir").
    """
    blocking = next((parent for parent in (folder, *folder.parents) if parent.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise UserError(f"cannot write {what} under {folder}: {blocking} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"cannot write {what} in {folder}: {error.strerror or error}") from None


def os_error_line(error: OSError, fallback: Path) -> str:
    """``PATH: REASON`` for an :class:`OSError` met while writing: the file the OS names (the
    destination of a copy), else ``fallback``, the folder being written."""
    path = error.filename2 or error.filename or fallback
    return f"{path}: {error.strerror or error}"
