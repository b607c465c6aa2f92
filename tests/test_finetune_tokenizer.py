"""The fine-tuning encoders driven by the project's real tokenizer (this file imports TensorFlow).

The adapter must give, for each word, exactly the ids the tokenizer gives that word, and the
encoders must take the special ids from the vocab: with BETO's vocab [CLS] is 4 and [SEP] 5.
"""

from shared_data import requires_shared_data, shared_file

from electra_tf import DEFAULT_VOCAB_FILE
from electra_tf.finetune.columns import read_column_file
from electra_tf.finetune.labels import label_list
from electra_tf.finetune.windows import IGNORE, encode_tagging, word_predictions
from electra_tf.finetune.word_pieces import batch_tokenize, word_piece_lookup
from electra_tf.tokenization import Tokenizer, Vocab

BETO_VOCAB = shared_file("vocab/beto_cased_vocab.txt")

WORDS = ["El", "niño", "¿Qué", "Logroño", "1º", "\u200b", "x" * 150, "electroencefalograma", ".", "EFE"]


def test_word_lookup_equals_the_tokenizer_word_by_word():
    tokenizer = Tokenizer(Vocab.load(DEFAULT_VOCAB_FILE), do_lower_case=True)
    lookup = word_piece_lookup(batch_tokenize(tokenizer), WORDS, batch_size=3)
    for word in WORDS:
        assert lookup(word) == tokenizer.tokenize([word])[0].numpy().tolist(), word
    assert lookup("\u200b") == []  # a word of no piece: the encoder makes it [UNK]
    assert lookup("x" * 150) == [tokenizer.vocab.unk_id]


@requires_shared_data("vocab/beto_cased_vocab.txt")
def test_cased_beto_vocab_keeps_case_and_its_special_ids(tmp_path):
    vocab = Vocab.load(BETO_VOCAB)
    assert (vocab.cls_id, vocab.sep_id, vocab.unk_id) == (4, 5, 3)
    tokenizer = Tokenizer(vocab, do_lower_case=False)
    (tmp_path / "esp.testb").write_text(
        "La DA O\nAgencia NC B-ORG\nEFE NC I-ORG\ninformó VMI O\nen SP O\nMadrid NC B-LOC\n\n" * 3, encoding="utf-8"
    )
    sentences = read_column_file(tmp_path / "esp.testb")
    lookup = word_piece_lookup(batch_tokenize(tokenizer), [w for s in sentences for w in s.words] + ["madrid"])
    assert lookup("Madrid") != lookup("madrid")  # the casing comes from the tokenizer's settings
    label_to_id = {label: i for i, label in enumerate(label_list(sentences))}
    encoding = encode_tagging(sentences, label_to_id, lookup, vocab, max_seq_length=6)
    for window in encoding.windows:
        assert window.input_ids[0] == 4 and window.input_ids[-1] == 5
    first_pieces = [
        window.input_ids[p] for window in encoding.windows for p, w in enumerate(window.word_ids) if w != IGNORE
    ]
    assert first_pieces == [lookup(w)[0] for s in sentences for w in s.words]
    rebuilt = word_predictions(encoding.windows, [w.label_ids for w in encoding.windows], [6, 6, 6])
    assert rebuilt == [[label_to_id[label] for label in s.labels] for s in sentences]
