"""The weights and step of a training checkpoint (``MODEL_DIR/checkpoints/ckpt-N``), for export.

The model is rebuilt from its config in float32 (whatever precision it was trained in:
mixed-precision variables are float32 anyway) and its weights restored from the checkpoint the user
names, or the newest on disk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from electra_tf.checkpoint_recovery import stored_checkpoints
from electra_tf.config import PretrainingConfig
from electra_tf.errors import UserError
from electra_tf.model.masking import SpecialIds
from electra_tf.model.pretrainer import ElectraPretrainer
from electra_tf.model.tf1_names import tf1_variables, tf1_weights
from electra_tf.model_dir import ModelDirectory
from electra_tf.tokenization import Vocab

# Where the optimizer's step counter is in a training checkpoint: inside the loss-scale wrapper
# (mixed_float16) or on the optimizer itself.
_STEP_KEYS = (
    "optimizer/inner_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE",
    "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE",
)
_NUMBERED_CHECKPOINT = re.compile(r"-(\d+)$")


def checkpoint_to_export(directory: ModelDirectory, checkpoint: str | Path | None) -> str:
    """The checkpoint prefix to export: ``checkpoint`` if given (it must exist), else the newest.

    ``checkpoint`` may also be a directory of checkpoints, meaning its newest.
    """
    if checkpoint is not None and Path(checkpoint).is_dir():
        newest = _newest_on_disk(Path(checkpoint))
        if newest is None:
            raise UserError(f"{checkpoint} holds no checkpoint.")
        return newest
    if checkpoint is not None:
        prefix = str(checkpoint).removesuffix(".index")
        if not Path(f"{prefix}.index").is_file():
            raise UserError(f"checkpoint {prefix} not found (no {prefix}.index).")
        return prefix
    newest = _newest_on_disk(directory.checkpoints)
    if newest is None:
        raise UserError(f"{directory.path} has no checkpoint in {directory.checkpoints}; train the model first.")
    return newest


def _newest_on_disk(folder: Path) -> str | None:
    """The prefix of the newest ``ckpt-N`` with an index in ``folder``, found from the files themselves.

    The ``checkpoint`` state file is not needed (it may be lost after a crash). A damaged newest
    checkpoint is not skipped here, unlike when training resumes: restoring it then fails with a message
    naming it, so an export never silently holds older weights than the user asked for.
    """
    complete = [stored for stored in stored_checkpoints(folder) if stored.index.is_file()]
    return str(complete[0].prefix) if complete else None


def restored_weights(config: PretrainingConfig, vocab: Vocab, prefix: str) -> dict[str, np.ndarray]:
    """The TF1-named float32 weights of the pretrainer described by ``config``, restored from ``prefix``."""
    with _float32_policy():
        model = ElectraPretrainer(config, SpecialIds.from_vocab(vocab))
    _check_checkpoint_reaches_every_variable(model)
    try:
        status = tf.train.Checkpoint(model=model).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    # A truncated data file surfaces as IndexError ("Read less bytes than requested").
    except (tf.errors.OpError, AssertionError, ValueError, IndexError) as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"cannot restore {prefix} into the model described by its config.json ({detail}); the checkpoint is "
            "corrupt or belongs to another model."
        ) from None
    return tf1_weights(model)


def _check_checkpoint_reaches_every_variable(model: ElectraPretrainer) -> None:
    """Fail loudly if some weights are not in the model's checkpoint object graph.

    A restore of ``Checkpoint(model=model)`` silently leaves such variables at their random
    initialisation (Keras 3 does not track layers kept in a Python list), and the export would be
    garbage. This is a bug in the model code, not a user mistake.
    """
    reachable = {id(trackable) for trackable in tf.train.TrackableView(model).descendants()}
    missing = [name for name, variable in tf1_variables(model).items() if id(variable) not in reachable]
    if missing:
        raise RuntimeError(
            f"{len(missing)} model variables (e.g. {missing[0]}) are not tracked by tf.train.Checkpoint(model=...); "
            "a model-only restore would leave them at random values."
        )


def checkpoint_step(prefix: str) -> int | None:
    """The training step of a checkpoint: its optimizer's step counter, else the number in its name."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in _STEP_KEYS:
            if reader.has_tensor(key):
                return int(reader.get_tensor(key))
    except (tf.errors.OpError, IndexError) as error:
        raise UserError(f"cannot read the checkpoint {prefix}: {error}; it may be corrupt.") from None
    numbered = _NUMBERED_CHECKPOINT.search(prefix)
    return int(numbered.group(1)) if numbered else None


@contextmanager
def _float32_policy() -> Iterator[None]:
    """Build layers in float32 whatever global policy the process has, and put the policy back."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
