"""The tokenizer as the encoders see it: plain callables from text to word-piece ids.

The encoders take callables rather than a tokenizer object so that they run (and are tested)
without TensorFlow. :func:`batch_tokenize` adapts :class:`electra_tf.tokenization.Tokenizer` (or
anything with its ``tokenize`` method); :func:`word_piece_lookup` tokenizes each distinct word of a
data set once, in batches, because one call per word through TensorFlow would take minutes on a
corpus the size of CoNLL-2002. Lower-casing and accent stripping are whatever the tokenizer was
built with, so a cased vocab keeps its case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

BatchTokenize = Callable[[Sequence[str]], list[list[int]]]
"""Texts to their piece ids (no special tokens), one list per text."""

WordPieces = Callable[[str], list[int]]
"""One word to its piece ids."""


def batch_tokenize(tokenizer: Any) -> BatchTokenize:
    """The batch callable of a tokenizer whose ``tokenize(list[str])`` returns a ragged tensor."""
    return lambda texts: tokenizer.tokenize(list(texts)).to_list() if texts else []


def word_piece_lookup(tokenize: BatchTokenize, words: Iterable[str], batch_size: int = 4096) -> WordPieces:
    """A word-to-pieces callable covering ``words``, each distinct word tokenized once."""
    distinct = list(dict.fromkeys(words))
    table: dict[str, list[int]] = {}
    for start in range(0, len(distinct), batch_size):
        batch = distinct[start : start + batch_size]
        table.update(zip(batch, tokenize(batch), strict=True))
    return table.__getitem__
