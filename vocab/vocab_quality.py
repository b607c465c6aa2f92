#!/usr/bin/env python3
"""Vocab quality on held-out Spanish text: WordPiece pieces per word and the share of words that become [UNK].

A "word" is what the BERT pre-tokenizer yields (split on spaces and punctuation, after normalisation);
an unknown word becomes exactly one [UNK]. Ids come from Hugging Face's ``BertWordPieceTokenizer``,
which the project's tokenizer matches (tests/test_tokenization.py). Held-out text, absent from the
training corpora: UD Spanish AnCora dev+test sentences (general news) and the CANTEMIST test
clinical cases (kept out of the shared biomedical corpus).

    python vocab/vocab_quality.py --labeled-dir DIR   # the default vocab
    python vocab/vocab_quality.py --labeled-dir DIR --vocab vocab/vocab.txt:lower+strip --vocab BETO.txt:cased

The held-out sets are not in the repository (their licences keep them out): pass ``--labeled-dir``, a
folder with ``ud_es_ancora/*.conllu`` (UD Spanish AnCora) and ``cantemist_ner/test/*.txt`` (CANTEMIST),
and any other vocab to compare with ``--vocab`` (for example BETO's cased ``vocab.txt``).
"""

from __future__ import annotations

from pathlib import Path

from absl import flags
from tokenizers import BertWordPieceTokenizer

from electra_tf import DEFAULT_VOCAB_FILE
from electra_tf.cli.common import flag, run_main
from electra_tf.errors import UserError
from electra_tf.tokenization import Vocab

SETTINGS = {"lower+strip": (True, True), "lower-keep": (True, False), "cased": (False, False)}

flags.DEFINE_multi_string(
    "vocab",
    [f"{DEFAULT_VOCAB_FILE}:lower+strip"],
    f"VOCAB_FILE:SETTING, repeatable; SETTING is one of {', '.join(SETTINGS)}.",
)
flags.DEFINE_string(
    "labeled-dir",
    None,
    "Required. Folder with the held-out text: ud_es_ancora/*.conllu and cantemist_ner/test/*.txt.",
)


def held_out_texts(labeled: Path) -> dict[str, list[str]]:
    """Held-out general (AnCora sentences) and biomedical (CANTEMIST test cases) lines under ``labeled``."""
    ancora = [
        line.removeprefix("# text = ").strip()
        for path in sorted((labeled / "ud_es_ancora").glob("*.conllu"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.startswith("# text = ")
    ]
    cantemist = [
        line
        for path in sorted((labeled / "cantemist_ner" / "test").glob("*.txt"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    texts = {"general (AnCora dev+test)": ancora, "biomedical (CANTEMIST test)": cantemist}
    empty = [name for name, lines in texts.items() if not lines]
    if empty:
        raise UserError(
            f"no held-out text for {' and '.join(empty)} in {labeled}; pass --labeled-dir with "
            "ud_es_ancora/*.conllu and cantemist_ner/test/*.txt."
        )
    return texts


def quality(tokenizer: BertWordPieceTokenizer, unk_id: int, lines: list[str]) -> tuple[int, float, float]:
    """(words, pieces per word, share of words that are [UNK]) over ``lines``."""
    words = pieces = unknown = 0
    for encoding in tokenizer.encode_batch(lines, add_special_tokens=False):
        word_ids = [word for word in encoding.word_ids if word is not None]
        words += len(set(word_ids))
        pieces += len(encoding.ids)
        unknown += encoding.ids.count(unk_id)
    return words, pieces / words, unknown / words


def main() -> None:
    if flag("labeled-dir") is None:
        raise UserError("--labeled-dir is required (a folder with ud_es_ancora/*.conllu and cantemist_ner/test/*.txt).")
    texts = held_out_texts(Path(flag("labeled-dir")))
    print("| vocab | setting | entries | text | words | pieces/word | [UNK] words |")
    print("|---|---|---:|---|---:|---:|---:|")
    for spec in flag("vocab"):
        path, _, setting = spec.rpartition(":")
        if setting not in SETTINGS:
            raise UserError(f"--vocab {spec}: the setting must be one of {', '.join(SETTINGS)}.")
        vocab = Vocab.load(path)
        do_lower_case, strip_accents = SETTINGS[setting]
        tokenizer = BertWordPieceTokenizer(path, lowercase=do_lower_case, strip_accents=strip_accents)
        for name, lines in texts.items():
            words, per_word, unk_share = quality(tokenizer, vocab.unk_id, lines)
            print(
                f"| {Path(path).name} | {setting} | {len(vocab)} | {name} | {words} | {per_word:.3f} | "
                f"{100 * unk_share:.3f}% |"
            )


if __name__ == "__main__":
    run_main(main)
