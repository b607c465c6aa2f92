"""A task's train, dev and test examples from its data folder, with every substitution stated.

Published copies of some benchmarks lack a split: the AnCora UD copy and XNLI's Spanish files have
no training set. Rather than fail or guess silently, the loader trains on the dev split when the
task allows it, slices a seeded dev set off the training data when there is no dev split, and
returns one plain sentence per substitution for the output to show.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import Counter
from collections.abc import Hashable, Sequence
from pathlib import Path

from electra_tf.errors import UserError
from electra_tf.finetune.chunks import check_chunk_tags
from electra_tf.finetune.labels import Example, check_known_labels, label_list
from electra_tf.finetune.tasks import CHAR_SPAN_F1, ENTITY_F1, Grouping, Task, resolve_metric

DEFAULT_DEV_FRACTION = 0.1


@dataclasses.dataclass(frozen=True)
class Splits:
    """The examples of each split, the training label list, the metric and what was done."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    """Empty when the data has no test split (then only dev scores exist)."""
    labels: list[str]
    """Every label of the training files (before any dev slice), in id order."""
    metric: str
    notes: list[str]


def load_splits(task: Task, data_dir: Path, *, dev_fraction: float = DEFAULT_DEV_FRACTION, seed: int = 0) -> Splits:
    """Read ``task``'s splits from ``data_dir``; :class:`UserError` for missing or inconsistent data."""
    if not data_dir.is_dir():
        raise UserError(f"--data-dir {data_dir}: folder not found.")
    notes = []
    train_paths = _present(data_dir, task.train)
    dev_paths = _present(data_dir, task.dev)
    if train_paths is None:
        if not (task.train_on_dev and dev_paths):
            expected = " + ".join(task.train or task.dev)
            raise UserError(f"{data_dir}: no training data for {task.name} (expected {expected}).")
        missing = f"no {' + '.join(task.train)}" if task.train else f"no training split for {task.name}"
        notes.append(
            f"{missing} in {data_dir}: training on the dev split ({' + '.join(task.dev)}) instead; dev "
            "scores come from a slice of it, and only test scores compare with published ones."
        )
        train_paths, dev_paths = dev_paths, None
    train = _read(task, train_paths)
    labels = label_list(train)
    metric = resolve_metric(task, labels)
    if metric in (ENTITY_F1, CHAR_SPAN_F1):
        check_chunk_tags(labels, where=" + ".join(map(str, train_paths)))
    if dev_paths is None:
        train, dev, note = dev_slice(train, dev_fraction, seed, task.grouping)
        notes.append(note)
    else:
        dev = _read(task, dev_paths)
        check_known_labels(dev, labels, "dev")
    test_paths = _present(data_dir, task.test)
    if test_paths is None:
        test = []
        notes.append(f"no test split ({' + '.join(task.test)}) in {data_dir}: only dev scores are reported.")
    else:
        test = _read(task, test_paths)
        check_known_labels(test, labels, "test")
    return Splits(train, dev, test, labels, metric, notes)


def dev_slice(
    examples: Sequence[Example], fraction: float, seed: int, grouping: Grouping | None = None
) -> tuple[list[Example], list[Example], str]:
    """``(train, dev, note)``: a seeded random ``fraction`` of ``examples`` as dev, the rest as train.

    Whole groups (a document's sentences, the pairs built on one premise) go to one side, so the
    dev set holds no near-copy of a training example; both keep the input order. ``note`` says what
    was done, for the output.
    """
    if not 0 < fraction < 1:
        raise UserError(f"the dev fraction must be between 0 and 1, not {fraction}.")
    keys: list[Hashable] = [grouping.key(example) if grouping else index for index, example in enumerate(examples)]
    groups = list(dict.fromkeys(keys))
    if len(groups) < 2:
        raise UserError(f"{len(examples)} training example(s) cannot be split into a training and a dev set.")
    sizes = Counter(keys)
    random.Random(seed).shuffle(groups)
    target = math.ceil(fraction * len(examples))
    dev_groups = set()
    dev_size = 0
    for group in groups[:-1]:
        if dev_size >= target:
            break
        dev_groups.add(group)
        dev_size += sizes[group]
    train = [example for example, key in zip(examples, keys, strict=True) if key not in dev_groups]
    dev = [example for example, key in zip(examples, keys, strict=True) if key in dev_groups]
    kept_together = f", whole {grouping.name} kept on one side" if grouping else ""
    note = (
        f"no dev split: the dev set is a seeded slice of the training data, {len(dev)} of {len(examples)} "
        f"examples ({fraction:.0%}, seed {seed}{kept_together}); training uses the other {len(train)}."
    )
    return train, dev, note


def _present(data_dir: Path, parts: tuple[str, ...]) -> list[Path] | None:
    """The paths of a split if all its parts exist, None if none does; :class:`UserError` if only some."""
    paths = [data_dir / part for part in parts]
    existing = [path.exists() for path in paths]
    if not any(existing):
        return None
    if not all(existing):
        missing = paths[existing.index(False)]
        raise UserError(f"{missing}: not found, though the rest of its split is ({' + '.join(parts)}).")
    return paths


def _read(task: Task, paths: list[Path]) -> list[Example]:
    return [example for path in paths for example in task.read(path)]
