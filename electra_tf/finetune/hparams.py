"""Fine-tuning hyperparameters: the recipe by model size, then ``--hparams`` with Google's names, then flags.

The recipe and the settings it fills are :mod:`electra_tf.finetune.recipe`'s. A value in
``--hparams`` (a JSON object or file, Google's names) replaces the recipe's, and a flag that is
given replaces both. The architecture names
(``model_hparam_overrides``, ``embedding_size``, ``vocab_size``) go to the starting point.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any

from electra_tf.errors import UserError
from electra_tf.finetune.recipe import RECIPES, FinetuningHparams
from electra_tf.finetune.starting_point import ARCHITECTURE_HPARAMS

_FIELDS = {field.name: field for field in dataclasses.fields(FinetuningHparams)}


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
