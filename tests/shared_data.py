"""The one place the tests look for data that is not in the repository, and how they skip without it.

The project's CI checks the repository out with a ``shared/`` folder beside it (the large Spanish
corpora and BETO's vocab, whose licences keep them out of the repository); a user's clone has none.
A test that needs such a file is marked with :func:`requires_shared_data` and skips with a one-line
reason when the file is absent; every other test uses data in the repository (``sample_corpus/``,
``vocab/vocab.txt``) or files it writes itself. Nothing here reads a file, so collecting the tests
never needs the shared data.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
"""``../shared/data`` beside the checkout."""

_REASON = "needs ../shared/data/{} (the project's CI has it)"
_REASON_PATTERN = re.compile(r"needs \.\./shared/data/\S+ \(the project's CI has it\)")


def shared_file(relative: str) -> Path:
    """The path of ``../shared/data/<relative>`` (it may not exist: mark the test that reads it)."""
    return SHARED_DATA / relative


def requires_shared_data(*relative: str) -> pytest.MarkDecorator:
    """Skip the test (or parameter) unless every ``../shared/data/<relative>`` file exists."""
    missing = [name for name in relative if not shared_file(name).exists()]
    return pytest.mark.skipif(bool(missing), reason=_REASON.format(missing[0]) if missing else "")


def is_shared_data_skip(reason: str) -> bool:
    """Whether a skip reason is :func:`requires_shared_data`'s (the stand-alone CI check allows only those)."""
    return _REASON_PATTERN.fullmatch(reason.strip()) is not None
