"""``vocab/build_vocab.py``: train a WordPiece ``vocab.txt`` from a folder of plain-text files.

Example::

    python vocab/build_vocab.py --corpus-dir my_corpus --vocab-size 32000 \\
        --output vocab/mine.txt --do-lower-case --strip-accents

vocab/README.md gives the command and the corpora that made the default Spanish vocab.
"""

from __future__ import annotations

import os

from absl import flags

from electra_tf.cli.common import flag, run_main
from electra_tf.vocab_training import DEFAULT_FILE_PATTERNS

flags.DEFINE_string(
    "corpus-dir", None, "Folder of corpus files (searched recursively for --file-pattern).", required=True
)
flags.DEFINE_string("file-pattern", ",".join(DEFAULT_FILE_PATTERNS), "Comma-separated glob(s) of corpus file names.")
flags.DEFINE_string("output", None, "Where to write the vocab.txt.", required=True)
flags.DEFINE_integer("vocab-size", 32000, "Entries in the vocab, special tokens and [unusedN] slots included.")
flags.DEFINE_boolean("do-lower-case", True, "Lower-case the text (use --nodo-lower-case for a cased vocab).")
flags.DEFINE_boolean(
    "strip-accents",
    None,
    "Strip accents. Default: the same as --do-lower-case (Google's behaviour). --strip-accents with "
    "--nodo-lower-case is refused (Hugging Face cannot reproduce it).",
)
flags.DEFINE_integer("min-frequency", 2, "Never merge a pair of pieces seen fewer times than this.")
flags.DEFINE_integer(
    "num-unused",
    0,
    "[unusedN] slots reserved after the special tokens, e.g. for domain tokens added after pretraining.",
)
flags.DEFINE_integer(
    "limit-alphabet", 1000, "Keep at most this many distinct characters; rarer ones are left to [UNK]."
)
flags.DEFINE_integer("num-threads", os.cpu_count() or 1, "Threads that normalise and count words (default: all cores).")
flags.DEFINE_boolean("overwrite", False, "Replace --output if it exists.")


def main() -> None:
    # Read by the tokenizers library's thread pool, which starts on first use (after this).
    os.environ["RAYON_NUM_THREADS"] = str(max(1, flag("num-threads")))
    from electra_tf.vocab_training import find_corpus_files, train_vocab

    files = find_corpus_files(flag("corpus-dir"), [p.strip() for p in flag("file-pattern").split(",") if p.strip()])
    train_vocab(
        files,
        flag("output"),
        vocab_size=flag("vocab-size"),
        do_lower_case=flag("do-lower-case"),
        strip_accents=flag("strip-accents"),
        min_frequency=flag("min-frequency"),
        num_unused=flag("num-unused"),
        limit_alphabet=flag("limit-alphabet"),
        overwrite=flag("overwrite"),
    )


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
