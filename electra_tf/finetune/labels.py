"""The label set a model is trained on, and the check that dev and test use no other label.

A dev or test label that training never shows cannot be predicted and usually means a mismatched
file (another tag set, a typo, a shifted column), so it is reported, with its line, before training
rather than found later as a silently lower score.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from electra_tf.errors import UserError
from electra_tf.finetune.chunks import OUTSIDE
from electra_tf.finetune.examples import ClassificationExample, TaggedSentence

Example = TaggedSentence | ClassificationExample


def example_labels(example: Example) -> list[str]:
    """The labels of one example: one per word of a sentence, one for a classification example."""
    return example.labels if isinstance(example, TaggedSentence) else [example.label]


def label_list(examples: Iterable[Example]) -> list[str]:
    """The labels of ``examples`` in a fixed order: ``O`` first if present, then sorted (the label ids)."""
    labels = {label for example in examples for label in example_labels(example)}
    return sorted(labels, key=lambda label: (label != OUTSIDE, label))


def check_known_labels(examples: Sequence[Example], known: Iterable[str], split: str) -> None:
    """:class:`UserError` at the first example of ``split`` whose label is not in ``known``."""
    known_set = set(known)
    for example in examples:
        for position, label in enumerate(example_labels(example)):
            if label not in known_set:
                where = (
                    f"the sentence starting at {example.location}, word {position + 1} ({example.words[position]!r})"
                    if isinstance(example, TaggedSentence)
                    else str(example.location)
                )
                raise UserError(
                    f"{where}: the {split} label {label!r} never occurs in the training data "
                    f"(its labels: {', '.join(sorted(known_set))})."
                )
