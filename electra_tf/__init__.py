"""electra_tf: ELECTRA pretraining (replaced token detection) in TensorFlow 2 / Keras 3.

Build TFRecords from a plain-text corpus, pretrain a generator and discriminator jointly, and
export both to Hugging Face ``transformers``. See README.md for the tour.
"""

import os
from pathlib import Path

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines, oneDNN notices) hides the
# messages users need; keep warnings and errors only unless the user asked for more.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The checkout this package runs from (the project is installed editable, see README)."""

DEFAULT_VOCAB_FILE = REPO_ROOT / "vocab" / "vocab.txt"
"""The default Spanish WordPiece vocab (uncased, accents stripped) shipped in vocab/."""

SAMPLE_CORPUS_DIR = REPO_ROOT / "sample_corpus"
"""The small Spanish sample corpus the quickstart and tests use."""
