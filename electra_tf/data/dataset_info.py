"""``dataset_info.json``: what a built dataset holds, so training can check it before using it.

The builder writes it beside the shards; training loads it to find the shards (with their example
counts, which the resumable input pipeline needs) and to refuse data built with another vocab,
other normalisation flags or another sequence length. Shard paths are stored relative to the
dataset directory, so a dataset can be moved or copied as a whole.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from electra_tf.atomic_io import write_text_atomically
from electra_tf.config import DATASET_SETTINGS, DatasetSettings
from electra_tf.data.input_pipeline import Shard
from electra_tf.errors import UserError

if TYPE_CHECKING:  # the tokenizer's libraries are not needed to read a dataset
    from electra_tf.tokenization import Vocab

DATASET_INFO_FILE = "dataset_info.json"
VOCAB_COPY = "vocab.txt"
"""The builder copies the vocab it used into ``OUTPUT_DIR/vocab.txt``."""

FORMAT_VERSION = 1
PACKING_BEFORE_THE_FIELD = "google"
"""The packing of datasets whose ``dataset_info.json`` predates its ``packing`` field."""
UNKNOWN_PACKING = "unknown"
"""The packing of records made by another tool (see :mod:`electra_tf.data.index_records`)."""
REBUILD_HINT = "rebuild the dataset (build_pretraining_dataset.py with --overwrite)"
"""What to do about a damaged shard (the same command with --overwrite rebuilds it)."""


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A built pretraining dataset: its shards, the tokenization that produced them, and counts."""

    data_dir: Path
    vocab_sha256: str
    vocab_size: int
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    do_lower_case: bool
    strip_accents: bool
    max_seq_length: int
    seed: int
    packing: str
    """How lines were packed into examples: a mode of ``--packing``, or :data:`UNKNOWN_PACKING`."""
    train_shards: tuple[Shard, ...]
    eval_shards: tuple[Shard, ...]
    stats: dict[str, Any]

    def model_settings(self) -> DatasetSettings:
        """The settings its records fix in a model's config (vocab size, normalisation, length)."""
        return DatasetSettings(self.data_dir, {name: getattr(self, name) for name in DATASET_SETTINGS})

    @staticmethod
    def vocab_fields(vocab: Vocab) -> dict[str, Any]:
        """The fields that describe ``vocab`` (its hash, size and special-token ids)."""
        return {
            "vocab_sha256": vocab.sha256,
            "vocab_size": len(vocab),
            "pad_id": vocab.pad_id,
            "unk_id": vocab.unk_id,
            "cls_id": vocab.cls_id,
            "sep_id": vocab.sep_id,
            "mask_id": vocab.mask_id,
        }

    @classmethod
    def load(cls, data_dir: str | Path) -> DatasetInfo:
        """Read ``data_dir/dataset_info.json``; :class:`UserError` if it is missing, unreadable, of
        another format version, or lists a shard that is not there or whose size changed (a cheap
        check that catches a truncated shard before training starts)."""
        data_dir = Path(data_dir).resolve()
        path = data_dir / DATASET_INFO_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(
                f"{data_dir} is not a pretraining dataset (no {DATASET_INFO_FILE}); build one with "
                "build_pretraining_dataset.py."
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise UserError(f"cannot read {path}: {error}") from None
        if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
            found = raw.get("format_version") if isinstance(raw, dict) else None
            raise UserError(
                f"{path} has format version {found!r}, this electra_tf reads version {FORMAT_VERSION}; "
                "rebuild the dataset with this version's build_pretraining_dataset.py."
            )
        try:
            info = cls(
                data_dir=data_dir,
                vocab_sha256=str(raw["vocab_sha256"]),
                vocab_size=int(raw["vocab_size"]),
                pad_id=int(raw["pad_id"]),
                unk_id=int(raw["unk_id"]),
                cls_id=int(raw["cls_id"]),
                sep_id=int(raw["sep_id"]),
                mask_id=int(raw["mask_id"]),
                do_lower_case=bool(raw["do_lower_case"]),
                strip_accents=bool(raw["strip_accents"]),
                max_seq_length=int(raw["max_seq_length"]),
                seed=int(raw["seed"]),
                packing=str(raw.get("packing", PACKING_BEFORE_THE_FIELD)),
                train_shards=_shards_from_json(data_dir, raw["train_shards"]),
                eval_shards=_shards_from_json(data_dir, raw["eval_shards"]),
                stats=dict(raw["stats"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise UserError(f"{path} is malformed ({type(error).__name__}: {error}); rebuild the dataset.") from None
        missing = [shard.path for shard in info.train_shards + info.eval_shards if not Path(shard.path).is_file()]
        if missing:
            raise UserError(f"{path} lists {len(missing)} shard(s) that are missing, e.g. {missing[0]}.")
        for shard in info.train_shards + info.eval_shards:
            size = os.path.getsize(shard.path)
            if shard.num_bytes is not None and size != shard.num_bytes:
                raise UserError(
                    f"shard {shard.path} has {size} bytes, but {shard.num_bytes} were written: it was truncated or "
                    f"changed since; {REBUILD_HINT}."
                )
        return info

    def save(self) -> None:
        """Write ``data_dir/dataset_info.json`` atomically (temp file + rename), shard paths relative."""
        payload = {
            "format_version": FORMAT_VERSION,
            **{
                field.name: getattr(self, field.name)
                for field in dataclasses.fields(self)
                if field.name not in ("data_dir", "train_shards", "eval_shards")
            },
            "train_shards": _shards_to_json(self.data_dir, self.train_shards),
            "eval_shards": _shards_to_json(self.data_dir, self.eval_shards),
        }
        write_text_atomically(Path(self.data_dir) / DATASET_INFO_FILE, json.dumps(payload, indent=2) + "\n")

    @property
    def vocab_file(self) -> Path:
        return Path(self.data_dir) / VOCAB_COPY

    @property
    def num_train_examples(self) -> int:
        return sum(shard.num_examples for shard in self.train_shards)

    @property
    def num_eval_examples(self) -> int:
        return sum(shard.num_examples for shard in self.eval_shards)


def _shards_from_json(data_dir: Path, entries: list[dict[str, Any]]) -> tuple[Shard, ...]:
    """Shards from their JSON entries (``num_bytes`` is absent from datasets written before it was)."""
    return tuple(
        Shard(
            os.path.normpath(data_dir / entry["path"]),
            int(entry["num_examples"]),
            None if entry.get("num_bytes") is None else int(entry["num_bytes"]),
        )
        for entry in entries
    )


def _shards_to_json(data_dir: Path, shards: tuple[Shard, ...]) -> list[dict[str, Any]]:
    return [
        {
            "path": Path(os.path.relpath(shard.path, Path(data_dir).resolve())).as_posix(),
            "num_examples": shard.num_examples,
            **({} if shard.num_bytes is None else {"num_bytes": shard.num_bytes}),
        }
        for shard in shards
    ]
