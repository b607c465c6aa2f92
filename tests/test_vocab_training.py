"""The WordPiece vocab trainer: BERT layout, byte-identical reruns, pieces the tokenizer can produce, errors, CLI."""

import bz2
import gzip
import subprocess
import sys

import pytest
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

from electra_tf import REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.errors import UserError
from electra_tf.tokenization import SPECIAL_TOKENS, WORDPIECE_PREFIX, Tokenizer, Vocab, hf_normalizer
from electra_tf.vocab_training import find_corpus_files, train_vocab

SAMPLE_FILE = "salud_y_clinica.txt"  # 81 documents of the repository's sample corpus (100 KB)
SAMPLE_TEXT = (SAMPLE_CORPUS_DIR / SAMPLE_FILE).read_text(encoding="utf-8")
VOCAB_SIZE = 1000
NUM_UNUSED = 3


def train_sample(output, corpus_dir=None, **kwargs):
    """Train on ``corpus_dir``, by default on the sample file alone."""
    files = find_corpus_files(corpus_dir) if corpus_dir else [SAMPLE_CORPUS_DIR / SAMPLE_FILE]
    return train_vocab(files, output, **{"vocab_size": VOCAB_SIZE, "num_unused": NUM_UNUSED, **kwargs})


@pytest.fixture(scope="module")
def sample_vocab_file(tmp_path_factory):
    return train_sample(tmp_path_factory.mktemp("vocab") / "vocab.txt").output


def test_bert_layout(sample_vocab_file):
    tokens = sample_vocab_file.read_text(encoding="utf-8").split("\n")
    assert tokens[-1] == "", "the file ends with a newline"
    tokens = tokens[:-1]
    assert len(tokens) == VOCAB_SIZE
    reserved = [*SPECIAL_TOKENS, *(f"[unused{i}]" for i in range(NUM_UNUSED))]
    assert tokens[: len(reserved)] == reserved
    assert tokens[0] == "[PAD]" and tokens[1:5] == ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    learnt = tokens[len(reserved) :]
    first_continuation = next(i for i, token in enumerate(learnt) if token.startswith(WORDPIECE_PREFIX))
    initial, continuation = learnt[:first_continuation], learnt[first_continuation:]
    assert initial == sorted(initial) and continuation == sorted(continuation)
    assert all(token.startswith(WORDPIECE_PREFIX) for token in continuation)
    assert len(continuation) > 100 and "##cion" in continuation  # accents stripped: "-ción" -> "##cion"
    vocab = Vocab.load(sample_vocab_file)
    assert (vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id, vocab.mask_id) == (0, 1, 2, 3, 4)


def test_two_runs_are_byte_identical(sample_vocab_file, tmp_path):
    """Tied merges and equally rare characters would otherwise be picked in hash-map order."""
    again = train_sample(tmp_path / "again.txt").output
    assert again.read_bytes() == sample_vocab_file.read_bytes()
    small_alphabet = [train_sample(tmp_path / f"small{run}.txt", limit_alphabet=25).output for run in range(2)]
    assert small_alphabet[0].read_bytes() == small_alphabet[1].read_bytes()
    single_chars = [token for token in Vocab.load(small_alphabet[0]).tokens if len(token) == 1]
    assert len(single_chars) == 25 and {"a", "e", "o"} <= set(single_chars)


def test_pieces_are_in_the_tokenizers_normal_form(sample_vocab_file):
    """Every learnt piece is text the tokenizer's normalisation produces, as one word (or one split-off char)."""
    normalizer: BertNormalizer = hf_normalizer(do_lower_case=True, strip_accents=True)
    vocab = Vocab.load(sample_vocab_file)
    for token in vocab.tokens[len(SPECIAL_TOKENS) + NUM_UNUSED :]:
        body = token.removeprefix(WORDPIECE_PREFIX)
        assert normalizer.normalize_str(body) == body, token
        assert [word for word, _ in BertPreTokenizer().pre_tokenize_str(body)] == [body], token


def test_word_initial_pieces_tokenize_to_themselves(sample_vocab_file):
    vocab = Vocab.load(sample_vocab_file)
    learnt = [token for token in vocab.tokens[len(SPECIAL_TOKENS) + NUM_UNUSED :] if not token.startswith("##")]
    ids = Tokenizer(vocab).tokenize(learnt).to_list()
    assert ids == [[vocab.tokens.index(token)] for token in learnt]


def test_training_text_round_trips_with_few_unknowns(sample_vocab_file):
    vocab = Vocab.load(sample_vocab_file)
    ids = Tokenizer(vocab).tokenize(SAMPLE_TEXT.splitlines()).flat_values.numpy()
    assert len(ids) > 10_000
    assert (ids == vocab.unk_id).mean() < 0.001
    # A 1k vocab already merges: fewer pieces than characters by a wide margin.
    assert len(ids) < 0.5 * len(SAMPLE_TEXT)


@pytest.mark.parametrize(("suffix", "compress"), [(".txt.gz", gzip.compress), (".txt.bz2", bz2.compress)])
def test_compressed_corpus_gives_the_same_vocab(sample_vocab_file, tmp_path, suffix, compress):
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "sub" / f"sample{suffix}").write_bytes(compress(SAMPLE_TEXT.encode("utf-8")))
    (corpus / "notes.md").write_text("not part of the corpus: no matching pattern\n", encoding="utf-8")
    assert find_corpus_files(corpus) == [corpus / "sub" / f"sample{suffix}"]
    result = train_sample(tmp_path / "vocab.txt", corpus_dir=corpus)
    assert result.num_lines == len([line for line in SAMPLE_TEXT.splitlines() if line.strip()])
    assert result.output.read_bytes() == sample_vocab_file.read_bytes()


def test_existing_output_is_kept_without_overwrite(tmp_path):
    output = tmp_path / "vocab.txt"
    output.write_text("mine\n", encoding="utf-8")
    with pytest.raises(UserError, match="already exists; pass --overwrite"):
        train_sample(output)
    assert output.read_text(encoding="utf-8") == "mine\n"
    train_sample(output, overwrite=True)
    assert output.read_text(encoding="utf-8").startswith("[PAD]\n")
    assert [path.name for path in tmp_path.iterdir()] == ["vocab.txt"], "no temporary file left behind"


def test_empty_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "blank.txt").write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(UserError, match="the corpus has no text"):
        train_sample(tmp_path / "vocab.txt", corpus_dir=corpus)
    assert not (tmp_path / "vocab.txt").exists()


def test_missing_or_unmatched_corpus(tmp_path):
    with pytest.raises(UserError, match="corpus folder not found"):
        find_corpus_files(tmp_path / "nope")
    with pytest.raises(UserError, match=r"no corpus files matching \*\.txt.* under "):
        find_corpus_files(tmp_path)


def test_vocab_too_small_for_the_alphabet(tmp_path):
    with pytest.raises(UserError, match=r"--vocab-size 60 is too small: .* need 9\d\."):
        train_sample(tmp_path / "vocab.txt", vocab_size=60, num_unused=0)
    with pytest.raises(UserError, match="leaves no room"):
        train_sample(tmp_path / "vocab.txt", vocab_size=8, num_unused=3)
    assert not (tmp_path / "vocab.txt").exists()


def test_cased_vocab_keeps_case_and_accents_and_refuses_stripping(tmp_path):
    tokens = Vocab.load(train_sample(tmp_path / "cased.txt", do_lower_case=False).output).tokens
    assert "A" in tokens and "##ción" in tokens
    with pytest.raises(UserError, match="strip_accents without do_lower_case"):
        train_sample(tmp_path / "bad.txt", do_lower_case=False, strip_accents=True)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "vocab" / "build_vocab.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_trains_then_refuses_to_overwrite(sample_vocab_file, tmp_path):
    output = tmp_path / "cli_vocab.txt"
    args = ["--corpus-dir", str(SAMPLE_CORPUS_DIR), "--file-pattern", SAMPLE_FILE, "--output", str(output)]
    done = run_cli(*args, "--vocab-size", str(VOCAB_SIZE), "--num-unused", str(NUM_UNUSED), "--num-threads", "1")
    assert done.returncode == 0, done.stderr
    assert output.read_bytes() == sample_vocab_file.read_bytes()
    assert "wrote" in done.stderr

    refused = run_cli(*args)
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1] == f"error: {output} already exists; pass --overwrite to replace it."
    assert "Traceback" not in refused.stderr
