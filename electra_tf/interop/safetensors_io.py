"""Reading and writing ``model.safetensors`` with numpy only (no torch needed)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from electra_tf.atomic_io import ordinary_file_mode
from electra_tf.errors import UserError

WEIGHTS_FILE = "model.safetensors"


def write_weights(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Write a float32 Hugging Face state dict; ``format: pt`` tells ``transformers`` it is a torch layout.

    ``save_file`` writes through a private temporary file, so the result gets the ordinary mode after.
    """
    save_file(
        {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in tensors.items()}, path, {"format": "pt"}
    )
    os.chmod(path, ordinary_file_mode())


def read_weights(directory: Path) -> dict[str, np.ndarray]:
    """The tensors of ``directory/model.safetensors`` (:class:`UserError` if missing or unreadable)."""
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        found = sorted(p.name for p in directory.glob("*.bin")) if directory.is_dir() else []
        hint = f" (it has {', '.join(found)}; re-save it with safe_serialization=True)" if found else ""
        raise UserError(f"{directory} has no {WEIGHTS_FILE}{hint}.")
    return read_weights_file(path)


def read_weights_file(path: Path) -> dict[str, np.ndarray]:
    """The tensors of the safetensors file ``path`` (:class:`UserError` if missing or unreadable)."""
    if not path.is_file():
        raise UserError(f"weights file {path} not found.")
    try:
        return load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise UserError(f"{path} is not a readable safetensors file: {error}") from None
