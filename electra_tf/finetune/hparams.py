"""Fine-tuning hyperparameters: the recipe by model size, ``--hparams`` with Google's names, flags.

The recipe is ELECTRA's published fine-tuning one (paper Table 7 and Google's
``configure_finetuning.py``): learning rate 3e-4 (small), 1e-4 (base), 5e-5 (large); layer-wise
decay 0.8 (0.9 for large); 3 epochs; batch 32; 128 ids; warmup over the first 10% of the steps;
weight decay 0.01; the whole network trains (``freeze_encoder`` trains the head alone). A value
in ``--hparams`` (a JSON object or file, Google's names) replaces the recipe's, and a flag that is
given replaces both. The architecture names
(``model_hparam_overrides``, ``embedding_size``, ``vocab_size``) go to the starting point.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from electra_tf.config import DEFAULT_MODEL_SIZE, MODEL_SIZES, ModelConfig, PretrainingConfig
from electra_tf.errors import UserError
from electra_tf.finetune.starting_point import ARCHITECTURE_HPARAMS

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


_FIELDS = {field.name: field for field in dataclasses.fields(FinetuningHparams)}


def size_of(encoder: ModelConfig) -> str | None:
    """The preset whose discriminator has ``encoder``'s width and depth, or None."""
    for size in MODEL_SIZES:
        preset = PretrainingConfig.from_size(size).discriminator_config()
        if (preset.hidden_size, preset.num_hidden_layers) == (encoder.hidden_size, encoder.num_hidden_layers):
            return size
    return None


def recipe_size(model_size: str | None, encoder: ModelConfig) -> tuple[str, str | None]:
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


def split_hparams(hparams: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(fine-tuning settings, architecture hparams)`` of a ``--hparams`` object; unknown names are refused.

    The architecture hparams (:data:`~electra_tf.finetune.starting_point.ARCHITECTURE_HPARAMS`) shape
    the starting point; the settings are :class:`FinetuningHparams` fields.
    """
    settings = {key: value for key, value in hparams.items() if key not in ARCHITECTURE_HPARAMS}
    unknown = [key for key in settings if key not in _FIELDS]
    if unknown:
        names = [*_FIELDS, *ARCHITECTURE_HPARAMS]
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"unknown fine-tuning hparam {unknown[0]!r}{hint}; the names are: {', '.join(names)}.")
    return settings, {key: value for key, value in hparams.items() if key in ARCHITECTURE_HPARAMS}


def resolve_hparams(size: str, hparams: Mapping[str, Any], flags: Mapping[str, Any]) -> FinetuningHparams:
    """The recipe of ``size``, then ``hparams`` (fine-tuning settings only), then the given ``flags``."""
    values: dict[str, Any] = {**RECIPES[size], **hparams, **flags}
    for name, value in values.items():
        expected = _FIELDS[name].type
        if expected == "bool":
            if not isinstance(value, bool):
                raise UserError(f"{name} must be true or false, got {value!r}.")
        elif expected == "int":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise UserError(f"{name} must be an integer, got {value!r}.")
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{name} must be a number, got {value!r}.")
        values[name] = value
    return FinetuningHparams(**values)
