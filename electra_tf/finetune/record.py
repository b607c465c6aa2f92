"""``finetuning.json``: what a fine-tuning output directory records for export.

The run writes it next to ``results.json`` and ``vocab.txt``; ``export_to_hf.py`` rebuilds the
network, its tokenizer and its model card from it. Paths in it are relative to the directory, so
the directory can be moved or copied whole.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from electra_tf.config import ModelConfig
from electra_tf.errors import UserError
from electra_tf.finetune.tasks import CLASSIFICATION, TAGGING

FINETUNING_FILE = "finetuning.json"
WEIGHTS_FORMAT = "TF1 variable names (electra/..., classifier/...), float32, safetensors"


@dataclasses.dataclass(frozen=True)
class FinetuningRecord:
    """The contents of ``finetuning.json``."""

    task: str
    kind: str
    """``tasks.TAGGING`` or ``tasks.CLASSIFICATION``."""
    labels: tuple[str, ...]
    """The label names in id order (logit ``i`` is ``labels[i]``)."""
    encoder: ModelConfig
    vocab_file: str
    """The vocab, relative to the directory."""
    do_lower_case: bool
    strip_accents: bool
    starting_point: str
    """A description of where fine-tuning started (``StartingPoint.description``)."""
    weights: str | None
    """The chosen weights (safetensors of TF1-named float32 arrays), relative to the directory; None while training."""
    metric: str | None = None
    init_checkpoint: str | None = None
    random_init: bool = False
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    results: str | None = None
    """``results.json``, relative to the directory, if written."""
    weights_format: str = WEIGHTS_FORMAT

    def __post_init__(self) -> None:
        if self.kind not in (TAGGING, CLASSIFICATION):
            raise UserError(f"{FINETUNING_FILE}: kind must be {TAGGING!r} or {CLASSIFICATION!r}, got {self.kind!r}.")
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise UserError(f"{FINETUNING_FILE}: labels must be distinct and not empty, got {list(self.labels)}.")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["labels"] = list(self.labels)
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = FINETUNING_FILE) -> FinetuningRecord:
        """The record in ``values`` (parsed ``finetuning.json``); ``source`` names it in messages."""
        known = {field.name for field in dataclasses.fields(cls)}
        try:
            fields = {name: value for name, value in values.items() if name in known}
            fields["labels"] = tuple(str(label) for label in fields["labels"])
            fields["encoder"] = ModelConfig(**fields["encoder"])
            return cls(**fields)
        except KeyError as error:
            raise UserError(f"{source} lacks {error.args[0]!r}; it was not written by run_finetuning.py.") from None
        except (TypeError, ValueError) as error:
            raise UserError(f"{source} is malformed: {error}") from None

    @classmethod
    def from_json(cls, text: str, source: str = FINETUNING_FILE) -> FinetuningRecord:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{source} is not valid JSON: {error}") from None
        if not isinstance(values, dict):
            raise UserError(f"{source} must hold a JSON object.")
        return cls.from_dict(values, source)

    @classmethod
    def read(cls, directory: Path) -> FinetuningRecord:
        """The record of the fine-tuning output ``directory``."""
        path = Path(directory) / FINETUNING_FILE
        if not path.is_file():
            raise UserError(f"{directory} is not a fine-tuning output directory: it has no {FINETUNING_FILE}.")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read {path}: {error}") from None
        return cls.from_json(text, str(path))
