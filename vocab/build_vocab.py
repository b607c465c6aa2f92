#!/usr/bin/env python3
"""Train a WordPiece vocab.txt from a corpus folder. Flags: python vocab/build_vocab.py --helpfull."""

from electra_tf.cli.build_vocab import run

if __name__ == "__main__":
    run()
