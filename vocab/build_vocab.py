#!/usr/bin/env python3
"""Train a WordPiece vocab.txt from a corpus folder. Flags: python vocab/build_vocab.py --helpfull."""

import sys
from pathlib import Path

# Python puts this script's folder (vocab/) on the path, not the checkout: add the checkout, so the
# script runs from a clone without `pip install -e .`, like the top-level scripts.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from electra_tf.cli.build_vocab import run

if __name__ == "__main__":
    run()
