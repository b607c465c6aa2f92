"""Reading a Google ELECTRA TF1 checkpoint (name-based, e.g. the released ``electra_small``).

TensorFlow 2 still reads these with ``tf.train.load_checkpoint``. Only model variables are kept
(docs/checkpoint_names.md#google-checkpoints): ``global_step``, Adam slots (``*/adam_m``, ``*/adam_v``; released
checkpoints have none) and variables of other objectives (Electric's ``generator_ltr/`` …) are
skipped, so the result uses the same TF1 names as every other weight source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf
from absl import logging

from electra_tf.errors import UserError
from electra_tf.interop.tokenizer_files import VOCAB_FILE
from electra_tf.model.networks import DISCRIMINATOR, GENERATOR, NETWORKS, ImportedWeights, Network

_OPTIMIZER_SLOT_SUFFIXES = ("/adam_m", "/adam_v")
_MODEL_SCOPES = (
    f"{DISCRIMINATOR.encoder_scope}/",
    f"{GENERATOR.encoder_scope}/",
    f"{DISCRIMINATOR.head_scope}/",
    f"{GENERATOR.head_scope}/",
)


def checkpoint_prefix(path: Path) -> str:
    """The checkpoint prefix ``path`` designates: a prefix itself, or a directory's newest checkpoint."""
    if path.is_dir():
        newest = tf.train.latest_checkpoint(str(path))
        if newest is None:
            indexes = sorted(path.glob("*.index"))
            if len(indexes) != 1:
                found = "no" if not indexes else f"{len(indexes)}"
                raise UserError(
                    f"{path} holds {found} TF checkpoint(s) and no 'checkpoint' file naming the newest; "
                    "pass the checkpoint prefix (e.g. DIR/model.ckpt-1000000)."
                )
            return str(indexes[0].with_suffix(""))
        # A copied or moved directory's 'checkpoint' file may still name the original location.
        here = path / Path(newest).name
        return str(here) if Path(f"{here}.index").is_file() else newest
    if Path(f"{path}.index").is_file():
        return str(path)
    raise UserError(f"checkpoint not found: {path} (neither a directory nor a prefix with a .index file).")


def is_model_variable(name: str) -> bool:
    """Whether a checkpoint variable is an ELECTRA model weight (not a step counter or optimizer slot)."""
    return name.startswith(_MODEL_SCOPES) and not name.endswith(_OPTIMIZER_SLOT_SUFFIXES)


def read_google_checkpoint(path: Path) -> ImportedWeights:
    """The model variables of the TF1 checkpoint at ``path`` (a prefix or a directory)."""
    prefix = checkpoint_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        kept = [name for name in names if is_model_variable(name)]
        weights = {name: np.asarray(reader.get_tensor(name), dtype=np.float32) for name in kept}
    except (tf.errors.OpError, IndexError) as error:  # a truncated data file raises IndexError
        raise UserError(f"cannot read the TF checkpoint {prefix} ({error}); it may be corrupt.") from None
    if not weights:
        raise UserError(
            f"{prefix} holds no ELECTRA variables with Google's TF1 names (e.g. electra/embeddings/word_embeddings)."
        )
    logging.info(
        "Read %d model variables from %s (skipped %d: step counter, optimizer slots, other objectives).",
        len(kept),
        prefix,
        len(names) - len(kept),
    )
    networks = tuple(network for network in NETWORKS if _has_encoder(weights, network))
    vocab_file = Path(prefix).parent / VOCAB_FILE
    return ImportedWeights(
        weights=weights,
        networks=networks,
        description=f"Google TF1 checkpoint {prefix} ({' + '.join(network.name for network in networks)})",
        vocab_file=vocab_file if vocab_file.is_file() else None,
    )


def _has_encoder(weights: dict[str, np.ndarray], network: Network) -> bool:
    """Whether the network's own encoder is in the checkpoint (Google's may lack a separate generator)."""
    return any(name.startswith(f"{network.encoder_scope}/encoder/") for name in weights)
