"""``build_pretraining_dataset.py``: turn a folder of plain-text files into sharded TFRecords.

Input format: UTF-8 text, one sentence or paragraph per line, a blank line between documents.
Output: ``OUTPUT_DIR/train/*.tfrecord``, ``OUTPUT_DIR/eval/*.tfrecord`` (Google's schema), a copy of
the vocab as ``OUTPUT_DIR/vocab.txt`` and ``OUTPUT_DIR/dataset_info.json``, which training reads to
check the vocab and sequence length. An interrupted build resumes when rerun with the same flags.
``--verify --output-dir DIR`` instead reads every record of a built dataset and names the first
damaged shard.
"""

from __future__ import annotations

import os
from pathlib import Path

from absl import flags

from electra_tf import DEFAULT_VOCAB_FILE
from electra_tf.cli.common import flag, run_main
from electra_tf.data.packing import CARRY_PACKING, PACKING_MODES
from electra_tf.errors import UserError

flags.DEFINE_string("corpus-dir", None, "Folder of corpus files (searched recursively for --file-pattern).")
flags.DEFINE_string("output-dir", "pretraining_data", "Where the shards and dataset_info.json are written.")
flags.DEFINE_string("vocab-file", str(DEFAULT_VOCAB_FILE), "WordPiece vocab.txt. Default: the Spanish vocab in vocab/.")
flags.DEFINE_integer("max-seq-length", 128, "Tokens per example, including [CLS] and [SEP].")
flags.DEFINE_integer("num-processes", os.cpu_count() or 1, "Worker processes (default: all cores).")
flags.DEFINE_integer(
    "num-shards",
    None,
    "Training shards to write. Default: one per 64 MB of input text, at least 8. A shard holds whole blocks "
    "of input (2-32 MB each), so a small corpus may get fewer shards than this (with a warning).",
)
flags.DEFINE_boolean("do-lower-case", True, "Lower-case the text (use --nodo-lower-case for a cased vocab).")
flags.DEFINE_boolean(
    "strip-accents",
    None,
    "Strip accents. Default: the same as --do-lower-case (Google's behaviour: accents are stripped only "
    "when lower-casing). --strip-accents with --nodo-lower-case is refused (Hugging Face cannot reproduce it).",
)
flags.DEFINE_boolean(
    "blanks-separate-docs",
    True,
    "Blank lines end a document. --noblanks-separate-docs makes each file one document (blank lines skipped).",
)
flags.DEFINE_string("file-pattern", "*.txt,*.txt.gz,*.txt.bz2", "Comma-separated glob(s) of corpus file names.")
flags.DEFINE_integer("seed", 12345, "Random seed: the same corpus, flags and seed give byte-identical shards.")
flags.DEFINE_float(
    "eval-fraction",
    0.01,
    "Share of documents held out for evaluation, written to OUTPUT_DIR/eval (0: none). With "
    "--noblanks-separate-docs a document is a file, or a 2-32 MB slice of a large file.",
)
flags.DEFINE_boolean(
    "overwrite",
    False,
    "Replace whatever is in a non-empty --output-dir, even this very build (rebuilds a damaged dataset). Without "
    "it a non-empty --output-dir is refused, unless it holds this very build (then there is nothing to do).",
)
flags.DEFINE_boolean("strict", False, "Fail on invalid UTF-8 instead of replacing and counting it.")
flags.DEFINE_enum(
    "packing",
    CARRY_PACKING,
    list(PACKING_MODES),
    "How lines become examples. Both fill examples line by line with Google's shapes (random short targets, "
    "10% single-segment, sentence pairs). carry (default): the line that does not fit an example is split "
    "(after a sentence end near the end of the example, else before a whole word) and its rest starts the next "
    "example, so no token is dropped. google: exactly Google's builder (its records, byte for byte): the part "
    "of that line beyond the example is dropped, about a quarter of a corpus of paragraphs at 128 tokens. "
    "Every build reports the share it dropped.",
)
flags.DEFINE_boolean(
    "verify",
    False,
    "Build nothing: read every record of the dataset in --output-dir (checksums and counts against "
    "dataset_info.json) and name the first damaged shard and byte offset.",
)


def main() -> None:
    if flag("verify"):
        from electra_tf.data.shard_check import verify_dataset

        verify_dataset(Path(flag("output-dir")))
        return
    if not flag("corpus-dir"):
        raise UserError("--corpus-dir is required to build a dataset (see --help).")
    from electra_tf.data.builder import BuildOptions, build_dataset

    build_dataset(
        BuildOptions(
            corpus_dir=Path(flag("corpus-dir")),
            output_dir=Path(flag("output-dir")),
            vocab_file=Path(flag("vocab-file")),
            max_seq_length=flag("max-seq-length"),
            num_processes=flag("num-processes"),
            num_shards=flag("num-shards"),
            do_lower_case=flag("do-lower-case"),
            strip_accents=flag("strip-accents"),
            blanks_separate_docs=flag("blanks-separate-docs"),
            file_patterns=tuple(p.strip() for p in flag("file-pattern").split(",") if p.strip()),
            seed=flag("seed"),
            eval_fraction=flag("eval-fraction"),
            overwrite=flag("overwrite"),
            strict=flag("strict"),
            packing=flag("packing"),
        )
    )


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
