"""``python -m electra_tf.cli.index_tfrecords``: train on TFRecords made by Google's builder.

Writes a ``dataset_info.json`` describing existing records (Google's schema) so that
``run_pretraining.py --data-dir OUTPUT_DIR`` can train on them where they are.
"""

from __future__ import annotations

from pathlib import Path

from absl import flags

from electra_tf import DEFAULT_VOCAB_FILE
from electra_tf.cli.common import flag, run_main

flags.DEFINE_string("tfrecords", None, "Comma-separated glob(s) of the training TFRecords.", required=True)
flags.DEFINE_string("eval-tfrecords", None, "Comma-separated glob(s) of held-out TFRecords (optional).")
flags.DEFINE_string("vocab-file", str(DEFAULT_VOCAB_FILE), "The vocab.txt the records were built with.")
flags.DEFINE_string("output-dir", None, "Where dataset_info.json and a copy of the vocab are written.", required=True)
flags.DEFINE_boolean("do-lower-case", True, "Whether the records were built lower-cased.")
flags.DEFINE_boolean("strip-accents", None, "Whether accents were stripped. Default: the same as --do-lower-case.")


def main() -> None:
    from electra_tf.data.index_records import index_records

    index_records(
        flag("tfrecords"),
        flag("eval-tfrecords"),
        Path(flag("vocab-file")),
        Path(flag("output-dir")),
        flag("do-lower-case"),
        flag("strip-accents"),
    )


def run() -> None:
    """Console-script entry point."""
    run_main(main)


if __name__ == "__main__":
    run()
