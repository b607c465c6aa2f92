"""Entities (chunks) in a BIO or BIOES tag sequence, with the CoNLL evaluation script's semantics.

A tag is ``O`` or ``P-TYPE`` with the prefix P one of B (begin), I (inside), E (end), S (single);
the type is everything after the first hyphen. As in ``conlleval``, a chunk is a maximal run of
non-O tags of one type, and a new chunk starts at a B or S, at an I or E that follows O, E or S,
and wherever the type changes. So ``O I-PER`` is one PER entity (an I after O starts a chunk),
``B-PER I-LOC`` is two entities, and IOB1 files (where I starts entities) are read correctly too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from electra_tf.errors import UserError

OUTSIDE = "O"
PREFIXES = ("B", "I", "E", "S")


def parse_tag(tag: str) -> tuple[str, str]:
    """``(prefix, type)``: ``("O", "")`` for O, ``("B", "PER")`` for B-PER; ValueError otherwise."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, hyphen, chunk_type = tag.partition("-")
    if prefix not in PREFIXES or not hyphen or not chunk_type:
        raise ValueError(f"{tag!r} is not a BIO/BIOES tag")
    return prefix, chunk_type


def is_chunk_tag_set(tags: Iterable[str]) -> bool:
    """Whether every tag is O or PREFIX-TYPE with a BIOES prefix (so entity scoring applies)."""
    try:
        for tag in tags:
            parse_tag(tag)
    except ValueError:
        return False
    return True


def check_chunk_tags(tags: Iterable[str], where: str) -> None:
    """:class:`UserError` naming ``where`` if a tag is neither O nor B-/I-/E-/S-TYPE."""
    for tag in tags:
        try:
            parse_tag(tag)
        except ValueError:
            raise UserError(
                f"{where}: the tag {tag!r} is not O or B-/I-/E-/S- followed by a type, so entities cannot be "
                "scored; use a tagging task scored by accuracy for other tag sets."
            ) from None


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """The entities of one sentence as ``(type, start, end)`` word positions, ``end`` exclusive.

    ``conlleval`` ends a chunk before a tag that is O or that starts a chunk (for a non-O tag after
    a non-O tag, its end-of-chunk rule holds exactly when its start-of-chunk rule does), so only the
    start rule is spelled out.
    """
    found: list[tuple[str, int, int]] = []
    start: int | None = None
    open_type = ""
    previous_prefix, previous_type = OUTSIDE, ""
    for position, tag in enumerate(tags):
        prefix, chunk_type = parse_tag(tag)
        starts = prefix != OUTSIDE and (
            prefix in ("B", "S") or previous_prefix in (OUTSIDE, "E", "S") or chunk_type != previous_type
        )
        if start is not None and (prefix == OUTSIDE or starts):
            found.append((open_type, start, position))
            start = None
        if starts:
            start, open_type = position, chunk_type
        previous_prefix, previous_type = prefix, chunk_type
    if start is not None:
        found.append((open_type, start, len(tags)))
    return found
