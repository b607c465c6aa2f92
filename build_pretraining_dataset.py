#!/usr/bin/env python3
"""Build pretraining TFRecords from a text corpus. Flags: python build_pretraining_dataset.py --help."""

from electra_tf.cli.build_pretraining_dataset import run

if __name__ == "__main__":
    run()
