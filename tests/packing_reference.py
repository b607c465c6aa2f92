"""An independent, line-at-a-time restatement of Google's ExampleBuilder (docs/data_format.md#packing).

Written for the tests from those rules, in the shape of Google's algorithm (one line at a time, lists of
token ids, per-token Python), so that the vectorised packer in ``electra_tf.data.packing`` can be
checked against it. It draws its random numbers from the same kind of stream, in Google's order:
per example the single-segment coin, the "first line that does not fit" coins, then the next
target; a stream starts by drawing a target, as if an example had just been made.
"""

from __future__ import annotations

from electra_tf.data.packing import UniformStream


class ReferenceBuilder:
    """Google's ``ExampleBuilder`` over already tokenized lines."""

    def __init__(self, max_length: int, uniforms: UniformStream, cls_id: int, sep_id: int, pad_id: int) -> None:
        self.max_length = max_length
        self.uniforms = uniforms
        self.cls_id, self.sep_id, self.pad_id = cls_id, sep_id, pad_id
        self.sentences: list[list[int]] = []
        self.length = 0
        self.target = self._new_target()
        self.examples: list[tuple[list[int], list[int], list[int]]] = []

    def _new_target(self) -> int:
        if self.uniforms.next() < 0.05:
            return 5 + int(self.uniforms.next() * (self.max_length - 4))  # randint(5, max_length)
        return self.max_length

    def add_line(self, ids: list[int] | None) -> None:
        """A tokenized line, or None for a blank line / end of file (a document boundary)."""
        if ids is None:
            if self.length != 0:
                self._create_example()
            return
        self.sentences.append(ids)
        self.length += len(ids)
        if self.length >= self.target:
            self._create_example()

    def _create_example(self) -> None:
        first_target = 100000 if self.uniforms.next() < 0.1 else (self.target - 3) // 2
        first: list[int] = []
        second: list[int] = []
        for sentence in self.sentences:
            if (
                len(first) == 0
                or len(first) + len(sentence) < first_target
                or (len(second) == 0 and len(first) < first_target and self.uniforms.next() < 0.5)
            ):
                first += sentence
            else:
                second += sentence
        first = first[: self.max_length - 2]
        second = second[: max(0, self.max_length - len(first) - 3)]
        self.sentences, self.length = [], 0
        self.target = self._new_target()

        ids = [self.cls_id, *first, self.sep_id]
        segments = [0] * len(ids)
        if second:
            ids += [*second, self.sep_id]
            segments += [1] * (len(second) + 1)
        mask = [1] * len(ids)
        padding = self.max_length - len(ids)
        self.examples.append((ids + [self.pad_id] * padding, mask + [0] * padding, segments + [0] * padding))
