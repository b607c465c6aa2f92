"""Google's initialisers (docs/algorithm.md#initialisation): truncated normal at 2σ, with two glorot exceptions."""

from __future__ import annotations

import keras


def truncated_normal(stddev: float) -> keras.initializers.Initializer:
    """Google's ``create_initializer``: a normal truncated at 2σ (the same as Keras' TruncatedNormal)."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


def tf1_default() -> keras.initializers.Initializer:
    """The TF1 default for a dense kernel (``kernel_initializer=None``): glorot uniform.

    Google's ``embeddings_project`` and ``discriminator_predictions/dense_1`` use it.
    """
    return keras.initializers.GlorotUniform()
