"""The model directory: its stored config, the vocab it was trained with, and eval results.

``MODEL_DIR/config.json`` is written when a run starts and read by every later run and by export,
so resume and export need no flags repeated. A later run may change only the settings in
:data:`electra_tf.config.CHANGEABLE_ON_RESUME`; anything that changes the model or its data is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from electra_tf.atomic_io import copy_file_atomically, write_json_atomically, write_text_atomically
from electra_tf.config import PretrainingConfig
from electra_tf.errors import UserError

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"
EVAL_RESULTS_FILE = "eval_results.json"
TRAINING_DATA_FILE = "training_data.json"
CHECKPOINT_SUBDIR = "checkpoints"


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path} not found: {what}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}); it may be corrupt.") from None


class ModelDirectory:
    """Paths and stored files of one model directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"--model-dir {self.path} exists and is not a directory.")

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_SUBDIR

    @property
    def vocab_file(self) -> Path:
        return self.path / VOCAB_FILE

    @property
    def eval_results_file(self) -> Path:
        return self.path / EVAL_RESULTS_FILE

    def stored_config(self) -> PretrainingConfig | None:
        """The config saved by an earlier run, or ``None`` for a new directory."""
        path = self.path / CONFIG_FILE
        if not path.is_file():
            return None
        return PretrainingConfig.from_dict(read_json(path, "the model's config"))

    def require_config(self) -> PretrainingConfig:
        config = self.stored_config()
        if config is None:
            raise UserError(f"{self.path} is not a model directory: it has no {CONFIG_FILE}.")
        return config

    def save_config(self, config: PretrainingConfig) -> None:
        write_text_atomically(self.path / CONFIG_FILE, config.to_json())

    def save_vocab(self, vocab_file: Path) -> None:
        """Keep a copy of the training vocab beside the model (export writes it into the HF dirs)."""
        copy_file_atomically(vocab_file, self.vocab_file)

    def eval_results(self) -> dict[str, Any] | None:
        if not self.eval_results_file.is_file():
            return None
        return read_json(self.eval_results_file, "the evaluation results")

    def training_data(self) -> dict[str, Any] | None:
        path = self.path / TRAINING_DATA_FILE
        return read_json(path, "the training data summary") if path.is_file() else None

    def save_training_data(self, summary: dict[str, Any]) -> None:
        write_json_atomically(self.path / TRAINING_DATA_FILE, summary)
