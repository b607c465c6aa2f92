"""The fine-tuning recipe by model size, and the settings of a run, in plain Python (no TensorFlow).

The recipe is ELECTRA's published fine-tuning one (paper Table 7 and Google's
``configure_finetuning.py``): learning rate 3e-4 (small), 1e-4 (base), 5e-5 (large); layer-wise
decay 0.8 (0.9 for large); 3 epochs; batch 32; 128 ids; warmup over the first 10% of the steps;
weight decay 0.01; the whole network trains (``freeze_encoder`` trains the head alone).

Both ``run_finetuning.py`` and its PyTorch peer ``bench/hf_finetuning.py`` take their settings and
the size rule from here, so they pick the same recipe for the same model; the peer must not load
TensorFlow, hence this module imports nothing but :mod:`electra_tf.config` and :mod:`electra_tf.errors`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from electra_tf.config import DEFAULT_MODEL_SIZE, MODEL_SIZES, PretrainingConfig
from electra_tf.errors import UserError

RECIPES: dict[str, dict[str, float]] = {
    "small": {"learning_rate": 3e-4, "layerwise_lr_decay": 0.8},
    "base": {"learning_rate": 1e-4, "layerwise_lr_decay": 0.8},
    "large": {"learning_rate": 5e-5, "layerwise_lr_decay": 0.9},
}


@dataclasses.dataclass(frozen=True)
class FinetuningHparams:
    """The settings of a fine-tuning run (Google's names), the recipe's unless overridden."""

    learning_rate: float
    layerwise_lr_decay: float
    num_train_epochs: int = 3
    train_batch_size: int = 32
    eval_batch_size: int = 32
    max_seq_length: int = 128
    warmup_proportion: float = 0.1
    weight_decay_rate: float = 0.01
    dev_fraction: float = 0.1
    """The share of the training data sliced off as dev when a task has no dev split."""
    log_every_steps: int = 50
    freeze_encoder: bool = False
    """Train only the head (a linear probe): the encoder runs in inference mode, without gradients or
    optimizer state, so the score measures what pretraining put into its last hidden states."""

    def __post_init__(self) -> None:
        for name in ("num_train_epochs", "train_batch_size", "eval_batch_size", "max_seq_length", "log_every_steps"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not self.learning_rate > 0:
            raise UserError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if not 0 < self.layerwise_lr_decay <= 1:
            raise UserError(f"layerwise_lr_decay must be in (0, 1], got {self.layerwise_lr_decay}.")
        if not 0 <= self.warmup_proportion < 1:
            raise UserError(f"warmup_proportion must be in [0, 1), got {self.warmup_proportion}.")
        if not 0 <= self.weight_decay_rate < 1:
            raise UserError(f"weight_decay_rate must be in [0, 1), got {self.weight_decay_rate}.")
        if not 0 < self.dev_fraction < 1:
            raise UserError(f"dev_fraction must be in (0, 1), got {self.dev_fraction}.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class EncoderShape(Protocol):
    """What the recipe's size depends on: ``ModelConfig`` and ``transformers``' ``ElectraConfig`` both have it."""

    @property
    def hidden_size(self) -> int: ...

    @property
    def num_hidden_layers(self) -> int: ...


def size_of(encoder: EncoderShape) -> str | None:
    """The preset whose discriminator has ``encoder``'s width and depth, or None."""
    for size in MODEL_SIZES:
        preset = PretrainingConfig.from_size(size).discriminator_config()
        if (preset.hidden_size, preset.num_hidden_layers) == (encoder.hidden_size, encoder.num_hidden_layers):
            return size
    return None


def recipe_size(model_size: str | None, encoder: EncoderShape) -> tuple[str, str | None]:
    """``(size, note)``: the recipe to use, ``--model-size`` if given, else the encoder's preset.

    ``note`` says when neither applies and the small recipe is taken.
    """
    if model_size is not None:
        return model_size, None
    size = size_of(encoder)
    if size is not None:
        return size, None
    return DEFAULT_MODEL_SIZE, (
        f"the starting point (hidden size {encoder.hidden_size}, {encoder.num_hidden_layers} layers) matches no "
        f"preset; using the {DEFAULT_MODEL_SIZE} recipe (pass --model-size to choose another)."
    )
