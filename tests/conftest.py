"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from electra_tf import SAMPLE_CORPUS_DIR
from electra_tf.tokenization import SPECIAL_TOKENS
from electra_tf.vocab_training import find_corpus_files, train_vocab

BETO_LAYOUT = ("[MASK]", "[PAD]", "[EOS]", "[UNK]", "[CLS]", "[SEP]")
"""The first ids of BETO's cased vocab: [MASK] = 0 and [PAD] = 1, not BERT's [PAD] = 0."""


@pytest.fixture(scope="session")
def cased_vocab_file(tmp_path_factory) -> Path:
    """A cased Spanish WordPiece vocab (3,000 entries, learnt from the sample corpus in about a second)
    with BETO's special-token ids, so tests of case, accents and unusual special ids need no
    outside vocab. Its accented and capitalised pieces ("##ción", "El") are ones the default vocab
    lacks."""
    folder = tmp_path_factory.mktemp("cased_vocab")
    trained = train_vocab(
        find_corpus_files(SAMPLE_CORPUS_DIR), folder / "trained.txt", vocab_size=3000, do_lower_case=False
    ).output
    pieces = [token for token in trained.read_text(encoding="utf-8").split("\n") if token]
    assert set(SPECIAL_TOKENS) <= set(pieces)
    path = folder / "vocab.txt"
    rest = [token for token in pieces if token not in BETO_LAYOUT]
    path.write_text("".join(f"{token}\n" for token in [*BETO_LAYOUT, *rest]), encoding="utf-8")
    return path
