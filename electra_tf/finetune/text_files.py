"""Reading a labelled-data file as text, with one clear error per thing that can go wrong.

Every reader goes through :func:`read_text`, so a missing file, a folder given for a file, an empty
file and bytes that are not UTF-8 (with the line they are on) are reported the same way for every
format.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from electra_tf.errors import UserError

_BOM = "\ufeff"


def read_text(path: Path, *, allow_empty: bool = False) -> str:
    """The whole file decoded as UTF-8, without a leading byte-order mark.

    Raises :class:`UserError` when the file is missing, is a folder, cannot be read, is not UTF-8
    (naming the line of the first bad byte), or holds only whitespace (unless ``allow_empty``).
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path}: file not found.") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a file.") from None
    except OSError as error:
        raise UserError(f"{path}: cannot be read ({error.strerror}).") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise UserError(f"{path}, line {line}: not valid UTF-8 (byte {error.start} of the file).") from None
    text = text.removeprefix(_BOM)
    if not allow_empty and not text.strip():
        raise UserError(f"{path}: the file is empty.")
    return text


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for each line (1-based), without its ``\\n`` or ``\\r\\n`` ending."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line.removesuffix("\r")
