"""Word-piece alignment, windows over long sentences, pair encoding and length buckets.

A stand-in tokenizer (pieces of three characters, ids handed out on first sight) keeps these tests
free of TensorFlow; the special ids are BETO's ([UNK]=3, [CLS]=4, [SEP]=5), not BERT's, so an id
assumed anywhere shows up. The central property: over random sentences and over the real files,
feeding each window's gold label ids back as "predictions" rebuilds every sentence's labels, which
holds only if every word is scored exactly once.
"""

import dataclasses
import random
import shutil

import pytest
from shared_data import requires_shared_data, shared_file

from electra_tf import REPO_ROOT
from electra_tf.errors import UserError
from electra_tf.finetune.brat import read_brat_folder
from electra_tf.finetune.buckets import bucket_lengths, padded_length
from electra_tf.finetune.columns import CONLL2002, PHARMACONER, read_column_file
from electra_tf.finetune.conllu import read_conllu
from electra_tf.finetune.examples import ClassificationExample, Location, TaggedSentence
from electra_tf.finetune.labels import label_list
from electra_tf.finetune.pair_encoding import encode_classification, truncate_longest_first
from electra_tf.finetune.windows import IGNORE, encode_tagging, plan_windows, word_predictions
from electra_tf.finetune.word_pieces import batch_tokenize, word_piece_lookup

LABELED = shared_file("labeled")


@dataclasses.dataclass(frozen=True)
class BetoIds:
    unk_id: int = 3
    cls_id: int = 4
    sep_id: int = 5


SPECIAL = BetoIds()
HERE = Location(REPO_ROOT, 1)


class ThreeCharPieces:
    """word -> one id per three characters, ids from 100 on; the empty word and "\u200b" give no piece."""

    def __init__(self):
        self.ids = {}

    def __call__(self, word):
        word = word.replace("\u200b", "")
        return [self.ids.setdefault(word[k : k + 3], 100 + len(self.ids)) for k in range(0, len(word), 3)]


def _sentence(words, labels):
    return TaggedSentence(list(words), list(labels), HERE)


def _assert_every_word_once(sentences, encoding, pieces, max_seq_length):
    """Gold label ids fed back as predictions rebuild every sentence; inputs match the words' pieces."""
    label_to_id = {label: i for i, label in enumerate(label_list(sentences))}
    rebuilt = word_predictions(
        encoding.windows, [w.label_ids for w in encoding.windows], [len(s.words) for s in sentences]
    )
    assert rebuilt == [[label_to_id[label] for label in s.labels] for s in sentences]
    for window in encoding.windows:
        assert len(window.input_ids) <= max_seq_length
        assert window.input_ids[0] == SPECIAL.cls_id and window.input_ids[-1] == SPECIAL.sep_id
        assert window.segment_ids == [0] * len(window.input_ids)
        words = sentences[window.sentence].words
        for position, word in enumerate(window.word_ids):
            if word != IGNORE:
                assert window.input_ids[position] == (pieces(words[word]) or [SPECIAL.unk_id])[0]
            assert (word == IGNORE) == (window.label_ids[position] == IGNORE)


def test_a_short_sentence_is_one_window_labelled_at_first_pieces():
    pieces = ThreeCharPieces()
    sentence = _sentence(["Abogado", "del", "\u200b", "Estado"], ["B-PER", "I-PER", "O", "I-PER"])
    label_to_id = {"O": 0, "B-PER": 1, "I-PER": 2}
    encoding = encode_tagging([sentence], label_to_id, pieces, SPECIAL, max_seq_length=32)
    (window,) = encoding.windows
    abogado, del_, estado = pieces("Abogado"), pieces("del"), pieces("Estado")
    assert window.input_ids == [4, *abogado, *del_, SPECIAL.unk_id, *estado, 5]  # a word of no piece is [UNK]
    assert window.label_ids == [IGNORE, 1, IGNORE, IGNORE, 2, 0, 2, IGNORE, IGNORE]
    assert window.word_ids == [IGNORE, 0, IGNORE, IGNORE, 1, 2, 3, IGNORE, IGNORE]
    assert window.segment_ids == [0] * 9 and encoding.truncated_words == 0


def test_window_plans_partition_the_words_on_random_lengths():
    rng = random.Random(5)
    for _ in range(3000):
        budget = rng.randint(1, 40)
        context = rng.randint(0, budget - 1)
        counts = [rng.randint(1, budget) for _ in range(rng.randint(0, 60))]
        plans = plan_windows(counts, budget, context)
        bounds = [0, *(p.scored_end for p in plans)]
        assert [p.scored_start for p in plans] == bounds[:-1] and bounds[-1] == len(counts)
        for plan in plans:
            assert plan.start <= plan.scored_start < plan.scored_end <= plan.end
            assert sum(counts[plan.start : plan.end]) <= budget
            assert sum(counts[plan.start : plan.scored_start]) <= context


def test_random_sentences_every_word_scored_exactly_once():
    rng = random.Random(11)
    pieces = ThreeCharPieces()
    labels = ["O", "B-X", "I-X"]
    for max_seq_length in (3, 5, 8, 16, 64):
        sentences = [
            _sentence(
                ["".join(rng.choice("abcdef") for _ in range(rng.randint(1, 14))) for _ in range(length)],
                [rng.choice(labels) for _ in range(length)],
            )
            for length in [rng.randint(1, 80) for _ in range(40)]
        ]
        label_to_id = {label: i for i, label in enumerate(label_list(sentences))}
        encoding = encode_tagging(sentences, label_to_id, pieces, SPECIAL, max_seq_length)
        _assert_every_word_once(sentences, encoding, pieces, max_seq_length)
        assert len(encoding.windows) > len(sentences)  # the long ones were cut into windows


def test_windows_carry_context_around_the_scored_words():
    words = [f"w{i:02d}" for i in range(30)]  # one piece each
    encoding = encode_tagging([_sentence(words, ["O"] * 30)], {"O": 0}, ThreeCharPieces(), SPECIAL, 12, context=2)
    spans = [[w for w in window.word_ids if w != IGNORE] for window in encoding.windows]
    assert spans[0] == list(range(8)) and spans[1] == list(range(8, 14))  # 10 slots: 8 then 2 + 6 + 2
    assert len(encoding.windows[1].input_ids) == 12
    assert encoding.windows[1].input_ids[1:3] == encoding.windows[0].input_ids[7:9]  # left context: words 6, 7


def test_a_word_longer_than_a_window_is_cut_but_scored():
    pieces = ThreeCharPieces()
    sentence = _sentence(["corto", "x" * 60, "fin"], ["O", "B-X", "O"])
    encoding = encode_tagging([sentence], {"O": 0, "B-X": 1}, pieces, SPECIAL, max_seq_length=8)
    assert encoding.truncated_words == 1
    _assert_every_word_once([sentence], encoding, pieces, 8)


def test_lost_or_doubled_words_are_caught():
    sentence = _sentence([f"w{i}" for i in range(10)], ["O"] * 10)
    encoding = encode_tagging([sentence], {"O": 0}, ThreeCharPieces(), SPECIAL, max_seq_length=6)
    predictions = [w.label_ids for w in encoding.windows]
    with pytest.raises(ValueError, match="never predicted"):
        word_predictions(encoding.windows[:-1], predictions[:-1], [10])
    with pytest.raises(ValueError, match="predicted twice"):
        word_predictions(encoding.windows + encoding.windows[:1], predictions + predictions[:1], [10])


@pytest.mark.parametrize(
    ("max_seq_length", "context", "message"), [(2, None, "at least 3"), (10, 8, "between 0 and 7")]
)
def test_impossible_window_settings(max_seq_length, context, message):
    with pytest.raises(UserError, match=message):
        encode_tagging([_sentence(["a"], ["O"])], {"O": 0}, ThreeCharPieces(), SPECIAL, max_seq_length, context)


def _real_tagging_slices(tmp_path):
    """A few hundred lines of each real tagging file, and three CANTEMIST documents."""

    def head(path, lines):
        kept = path.read_text(encoding="utf-8").split("\n")[:lines]
        target = tmp_path / path.name
        target.write_text("\n".join(kept[: len(kept) - kept[::-1].index("")]), encoding="utf-8")
        return target

    brat = tmp_path / "brat"
    brat.mkdir()
    for name in ("cc_onco1", "cc_onco10", "cc_onco968"):
        for suffix in (".txt", ".ann"):
            shutil.copy(LABELED / "cantemist_ner" / "train" / f"{name}{suffix}", brat)
    return {
        "conll2002": read_column_file(head(LABELED / "conll2002_es" / "esp.testb", 400), CONLL2002),
        "ud": read_conllu(head(LABELED / "ud_es_ancora" / "es_ancora-ud-test.conllu", 400)),
        "pharmaconer": read_column_file(head(LABELED / "pharmaconer_bio" / "dev.txt", 400), PHARMACONER),
        "cantemist": read_brat_folder(brat),
    }


@requires_shared_data("labeled")
def test_real_files_every_word_scored_exactly_once(tmp_path):
    pieces = ThreeCharPieces()
    for name, sentences in _real_tagging_slices(tmp_path).items():
        label_to_id = {label: i for i, label in enumerate(label_list(sentences))}
        for max_seq_length in (16, 128):
            encoding = encode_tagging(sentences, label_to_id, pieces, SPECIAL, max_seq_length)
            _assert_every_word_once(sentences, encoding, pieces, max_seq_length)
            if max_seq_length == 16:
                assert len(encoding.windows) > len(sentences), name


# ---------------------------------------------------------------------------------------------
# Classification inputs.
# ---------------------------------------------------------------------------------------------


def test_longest_first_truncation():
    assert truncate_longest_first(list(range(10)), [1, 2, 3, 4], 8) == ([0, 1, 2, 3], [1, 2, 3, 4])
    assert truncate_longest_first([1] * 5, [2] * 5, 7) == ([1] * 4, [2] * 3)  # a tie cuts the second
    assert truncate_longest_first([1, 2], [3], 5) == ([1, 2], [3])


def test_pair_and_single_encoding():
    def tokenize(texts):
        return [[100 + len(word) for word in text.split()] for text in texts]

    pair = ClassificationExample("uno dos tres cuatro cinco", "seis", "neutral", HERE)
    (encoded,) = encode_classification([pair], {"neutral": 2}, tokenize, SPECIAL, max_seq_length=7)
    assert encoded.input_ids == [4, 103, 103, 104, 5, 104, 5]  # the premise cut to 3 words, longest first
    assert encoded.segment_ids == [0, 0, 0, 0, 0, 1, 1]
    assert (encoded.label_id, encoded.truncated) == (2, True)
    single = ClassificationExample("muy bueno", None, "pos", HERE)
    (encoded,) = encode_classification([single], {"pos": 0}, tokenize, SPECIAL, max_seq_length=16)
    assert (encoded.input_ids, encoded.segment_ids, encoded.truncated) == ([4, 103, 105, 5], [0, 0, 0, 0], False)
    with pytest.raises(UserError, match="leaves no room"):
        encode_classification([pair], {"neutral": 2}, tokenize, SPECIAL, max_seq_length=4)


# ---------------------------------------------------------------------------------------------
# Buckets and the tokenizer adapter.
# ---------------------------------------------------------------------------------------------


def test_buckets():
    assert bucket_lengths(128) == (32, 64, 128)
    assert bucket_lengths(200) == (32, 64, 128, 200)
    assert bucket_lengths(16) == (16,)
    assert bucket_lengths(512, smallest=64) == (64, 128, 256, 512)
    buckets = bucket_lengths(128)
    assert [padded_length(batch, buckets) for batch in ([5, 12], [5, 33], [64], [65, 2], [128])] == [
        32,
        64,
        64,
        128,
        128,
    ]
    with pytest.raises(ValueError, match="longer than the largest bucket"):
        padded_length([129], buckets)


def test_word_piece_lookup_tokenizes_each_distinct_word_once_in_batches():
    calls = []

    def tokenize(texts):
        calls.append(list(texts))
        return [[len(text)] for text in texts]

    lookup = word_piece_lookup(tokenize, ["el", "niño", "el", "come", "niño", "y"], batch_size=2)
    assert calls == [["el", "niño"], ["come", "y"]]
    assert (lookup("niño"), lookup("y")) == ([4], [1])


def test_batch_tokenize_adapts_a_ragged_tokenizer():
    class Ragged(list):
        def to_list(self):
            return [list(row) for row in self]

    class FakeTokenizer:
        def tokenize(self, texts):
            assert isinstance(texts, list)
            return Ragged([[7] * len(text) for text in texts])

    tokenize = batch_tokenize(FakeTokenizer())
    assert tokenize(("ab", "c")) == [[7, 7], [7]] and tokenize([]) == []
