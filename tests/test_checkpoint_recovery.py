"""Choosing the checkpoint to resume from the files on disk: lost state file, damaged checkpoints, partial writes.

The same cases through the real command line, with ``kill -9``, are in ``test_training.py``.
"""

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from electra_tf.checkpoint_recovery import CORRUPT_SUBDIR, STATE_FILE, resume_point
from electra_tf.errors import UserError

DATA = "ckpt-{}.data-00000-of-00001"


def _saved(directory: Path, steps=(5, 10, 15)) -> tf.train.Checkpoint:
    """A checkpoint directory as training leaves it: ``ckpt-N`` saved at each step by a manager."""
    step = tf.Variable(0, dtype=tf.int64)
    weights = tf.Variable(np.zeros([64, 64], np.float32))
    checkpoint = tf.train.Checkpoint(step=step, weights=weights)
    manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=10)
    for number in steps:
        step.assign(number)
        weights.assign(np.full([64, 64], number, np.float32))
        manager.save(checkpoint_number=number)
    return checkpoint


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _state(directory: Path) -> tf.train.CheckpointManager:
    """What a manager built now (as training builds it next) believes the directory holds."""
    return tf.train.CheckpointManager(tf.train.Checkpoint(), str(directory), max_to_keep=10)


def _names(paths) -> list[str]:
    return [Path(path).name for path in paths]


def test_a_lost_state_file_is_rebuilt_from_the_checkpoints_on_disk(tmp_path):
    _saved(tmp_path)
    (tmp_path / STATE_FILE).unlink()
    (tmp_path / DATA.format(3)).write_bytes(b"an older save that never finished: no index")
    assert tf.train.latest_checkpoint(str(tmp_path)) is None  # what made runs start again at step 0

    assert resume_point(tmp_path, tidy=True) == str(tmp_path / "ckpt-15")
    manager = _state(tmp_path)
    assert Path(manager.latest_checkpoint).name == "ckpt-15"
    assert _names(manager.checkpoints) == ["ckpt-5", "ckpt-10", "ckpt-15"]  # rotated as before


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda d: _truncate(d / "ckpt-15.index"), id="truncated-index"),
        pytest.param(lambda d: _truncate(d / DATA.format(15)), id="truncated-data"),
        pytest.param(lambda d: _flip_middle_byte(d / DATA.format(15)), id="flipped-data-byte"),
        pytest.param(lambda d: (d / "ckpt-15.index").unlink(), id="missing-index"),
    ],
)
def test_a_damaged_newest_checkpoint_is_set_aside_and_the_previous_one_resumed(tmp_path, caplog, damage):
    _saved(tmp_path)
    damage(tmp_path)
    damaged_files = sorted(path.name for path in tmp_path.glob("ckpt-15.*"))
    with caplog.at_level(logging.WARNING):
        assert resume_point(tmp_path, tidy=True) == str(tmp_path / "ckpt-10")
    # Set aside, not deleted, and named in the log.
    assert sorted(path.name for path in (tmp_path / CORRUPT_SUBDIR).iterdir()) == damaged_files
    assert not list(tmp_path.glob("ckpt-15.*"))
    assert all(name in caplog.text for name in damaged_files) and "ckpt-10" in caplog.text
    manager = _state(tmp_path)
    assert Path(manager.latest_checkpoint).name == "ckpt-10"
    assert _names(manager.checkpoints) == ["ckpt-5", "ckpt-10"]
    # The chosen checkpoint restores, with its own values.
    restored = _saved(tmp_path / "other", steps=())
    restored.restore(resume_point(tmp_path, tidy=True)).assert_consumed()
    assert int(restored.step.numpy()) == 10


def test_set_aside_files_never_replace_earlier_ones(tmp_path):
    _saved(tmp_path)
    (tmp_path / CORRUPT_SUBDIR).mkdir()
    (tmp_path / CORRUPT_SUBDIR / "ckpt-15.index").write_text("from an earlier incident")
    _truncate(tmp_path / "ckpt-15.index")
    resume_point(tmp_path, tidy=True)
    assert (tmp_path / CORRUPT_SUBDIR / "ckpt-15.index").read_text() == "from an earlier incident"
    assert (tmp_path / CORRUPT_SUBDIR / "ckpt-15.index.1").is_file()


def test_no_readable_checkpoint_is_a_user_error_that_moves_nothing(tmp_path):
    _saved(tmp_path, steps=(5, 10))
    for number in (5, 10):
        _truncate(tmp_path / DATA.format(number))
    before = sorted(path.name for path in tmp_path.iterdir())
    with pytest.raises(UserError, match=r"none of the 2 checkpoint\(s\) .*\(ckpt-10: .*; ckpt-5: "):
        resume_point(tmp_path, tidy=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_a_checkpoint_written_after_the_state_file_was_last_updated_is_resumed(tmp_path):
    """A kill between a save's files and its state-file update: the complete newer files win."""
    _saved(tmp_path, steps=(5, 10))
    state = (tmp_path / STATE_FILE).read_text()
    _saved(tmp_path, steps=(15,))
    (tmp_path / STATE_FILE).write_text(state)
    assert resume_point(tmp_path, tidy=True) == str(tmp_path / "ckpt-15")
    assert _names(_state(tmp_path).checkpoints) == ["ckpt-5", "ckpt-10", "ckpt-15"]


def test_checkpoints_the_state_file_does_not_list_are_never_given_to_rotation(tmp_path):
    """Older files a readable state file does not list (kept by the user) stay out of the manager's list."""
    _saved(tmp_path, steps=(5,))
    (tmp_path / STATE_FILE).unlink()
    _saved(tmp_path, steps=(10, 15))
    assert resume_point(tmp_path, tidy=True) == str(tmp_path / "ckpt-15")
    assert _names(_state(tmp_path).checkpoints) == ["ckpt-10", "ckpt-15"]


def test_partial_writes_are_removed_by_the_chief_only(tmp_path):
    _saved(tmp_path, steps=(5,))
    partial = tmp_path / "ckpt-10_temp"
    partial.mkdir()
    (partial / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(b"\0" * 100)
    state_temporary = tmp_path / "checkpoint.tmp0123abcd"
    state_temporary.write_text("half")
    assert resume_point(tmp_path, tidy=False) == str(tmp_path / "ckpt-5")
    assert partial.exists() and state_temporary.exists()
    assert resume_point(tmp_path, tidy=True) == str(tmp_path / "ckpt-5")
    assert not partial.exists() and not state_temporary.exists()


def test_other_workers_choose_the_same_checkpoint_and_change_nothing(tmp_path):
    _saved(tmp_path)
    _truncate(tmp_path / DATA.format(15))
    (tmp_path / STATE_FILE).unlink()
    before = sorted(path.name for path in tmp_path.iterdir())
    assert resume_point(tmp_path, tidy=False) == str(tmp_path / "ckpt-10")
    assert sorted(path.name for path in tmp_path.iterdir()) == before


def test_an_empty_directory_has_no_resume_point(tmp_path):
    assert resume_point(tmp_path / "checkpoints", tidy=True) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / STATE_FILE).write_text("")  # a state file the manager cannot parse
    assert resume_point(tmp_path / "checkpoints", tidy=True) is None
    _state(tmp_path / "checkpoints")  # builds without error
