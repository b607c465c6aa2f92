"""What an import source yields: TF1-named weights plus what they cover."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from electra_tf.model.networks import Network


@dataclasses.dataclass(frozen=True)
class ImportedWeights:
    """Weights read from an existing model, by Google TF1 name, ready to initialise a pretrainer.

    ``networks`` are the networks whose own variables (projection, encoder layers, head) are in
    ``weights``; the shared embeddings are always there. ``vocab_file`` is the vocab that came with
    the weights, if any, so a caller can check it is the one it trains with.
    """

    weights: dict[str, np.ndarray]
    networks: tuple[Network, ...]
    description: str
    vocab_file: Path | None
