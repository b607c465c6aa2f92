"""Vocab loading and the tf-text tokenizer: one clear error per bad vocab, ids equal to Hugging Face's.

Parity is checked against ``tokenizers.BertWordPieceTokenizer`` (what ``ElectraTokenizerFast`` runs)
with the same vocab and flags, on tricky strings and on real Spanish text. Vocab per setting:

* lower-case + strip accents: the project's default vocab (trained in that setting);
* lower-case keeping accents: BETO's cased vocab; no lower-case-with-accents Spanish vocab is at
  hand, and BETO's has the lower-case accented pieces ("##ción", "niño") that this setting must
  reach, while its capitalised pieces are simply never produced;
* cased: BETO's cased vocab, its own setting (and special tokens at unusual ids).

BETO's vocab and the large corpora are shared data outside the repository: tests that need them
skip without it; the default setting is also checked on the repository's sample corpus.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf
from shared_data import requires_shared_data, shared_file
from tokenizers import BertWordPieceTokenizer

from electra_tf import DEFAULT_VOCAB_FILE, SAMPLE_CORPUS_DIR
from electra_tf.errors import UserError
from electra_tf.tokenization import MAX_CHARS_PER_WORD, Tokenizer, Vocab, resolve_strip_accents

BETO = "vocab/beto_cased_vocab.txt"
BETO_VOCAB = shared_file(BETO)
PARITY_CORPORA = ("corpus/es_general_100mb.txt", "fixtures/es_biomed_fixture_1mb.txt")
PARITY_GENERAL_LINES = 20_000
PARITY_REQUIRED = 0.9999

# name: (vocab file, do_lower_case, strip_accents)
SETTINGS = {
    "lower+strip": (DEFAULT_VOCAB_FILE, True, True),
    "lower-keep-accents": (BETO_VOCAB, True, False),
    "cased": (BETO_VOCAB, False, False),
}
# The settings as test parameters: those on BETO's vocab skip without the shared data.
SETTING_PARAMS = [
    pytest.param(name, marks=[] if vocab == DEFAULT_VOCAB_FILE else [requires_shared_data(BETO)])
    for name, (vocab, _, _) in SETTINGS.items()
]

TRICKY = [
    "El niño comió ñandú en Logroño; ÁÉÍÓÚ áéíóú Üü.",
    "Ñoño, ¿qué tal? ¡Olé!",
    "acento agudo suelto: a´b ´ ´´",  # U+00B4: a piece in Hugging Face, dropped by tf-text's normaliser
    "1º 2ª 3.º Nº nº",
    "Y entonces… fin…",
    "pala\u00adbra con guion blando",
    "中文字符 混合 texto 日本語のテキスト 한국어",
    "emoji 😀👍🏽 y bandera 🇪🇸",
    "control\x07chars\x1b y \x00 nul \ufffd reemplazo",
    "tab\tnueva\nlínea\rretorno\u00a0nbsp\u2003em",
    "cero\u200banchura\u200d y \ufeffBOM",
    "ligaduras ﬁ ﬂ ß ẞ İstanbul ǅ",
    "ΟΔΟΣ ΣΑΣ λόγος ΛΌΓΟΣ Σ",  # Greek final sigma: Hugging Face writes σ; Python's str.lower() writes ς
    "combinante e\u0301 y \u0301 solo; Å Å",
    "símbolos © ® ™ € £ ° ± × ÷ µ ½ ² ³ § ¶ « » „ “ ” ‘ ’ — – ‐",
    "ancho completo ＡＢＣ１２３ y ㎏ ㌀",
    "a" * MAX_CHARS_PER_WORD,
    "a" * (MAX_CHARS_PER_WORD + 1),
    "á" * (MAX_CHARS_PER_WORD + 1),
    "x" * 150 + " corta " + "é" * 100,
    "b" * 60 + "." + "c" * 60,  # a run of 121 characters that is two words
    "",
    "   ",
]


@functools.cache
def tokenizers_for(setting: str) -> tuple[Tokenizer, BertWordPieceTokenizer]:
    """Ours and Hugging Face's tokenizer for a setting, built once per module run (seconds each)."""
    vocab_file, do_lower_case, strip_accents = SETTINGS[setting]
    ours = Tokenizer(Vocab.load(vocab_file), do_lower_case, strip_accents)
    theirs = BertWordPieceTokenizer(str(vocab_file), lowercase=do_lower_case, strip_accents=strip_accents)
    return ours, theirs


def hf_ids(hf: BertWordPieceTokenizer, lines: list[str]) -> list[list[int]]:
    return [encoding.ids for encoding in hf.encode_batch(lines, add_special_tokens=False)]


def read_nonblank_lines(path, limit: int | None = None) -> list[str]:
    lines = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.strip():
                lines.append(line)
                if limit is not None and len(lines) == limit:
                    break
    return lines


def write_vocab(path, tokens: list[str], newline: str = "\n"):
    path.write_bytes("".join(token + newline for token in tokens).encode("utf-8"))
    return path


BASE_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hola", "##s"]


# ------------------------------------------------------------------------------------------ vocab


@requires_shared_data(BETO)
def test_vocab_reads_special_ids_from_beto_file():
    vocab = Vocab.load(BETO_VOCAB)
    assert (vocab.mask_id, vocab.pad_id, vocab.unk_id, vocab.cls_id, vocab.sep_id) == (0, 1, 3, 4, 5)
    assert len(vocab) == 31002


def test_vocab_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        Vocab.load(tmp_path / "nope.txt")


def test_vocab_empty_file(tmp_path):
    with pytest.raises(UserError, match="empty"):
        Vocab.load(write_vocab(tmp_path / "v.txt", []))
    with pytest.raises(UserError, match="empty"):
        Vocab.load(write_vocab(tmp_path / "blank.txt", ["", "  "]))


def test_vocab_duplicate_token_names_both_lines(tmp_path):
    with pytest.raises(UserError, match=r"duplicate token 'hola' at lines 6 and 8"):
        Vocab.load(write_vocab(tmp_path / "v.txt", [*BASE_TOKENS, "hola"]))


def test_vocab_missing_special_token(tmp_path):
    tokens = [token for token in BASE_TOKENS if token not in ("[MASK]", "[SEP]")]
    with pytest.raises(UserError, match=r"lacks the special token\(s\) \[SEP\], \[MASK\]"):
        Vocab.load(write_vocab(tmp_path / "v.txt", tokens))


def test_vocab_empty_line_inside(tmp_path):
    with pytest.raises(UserError, match="empty line at line 6"):
        Vocab.load(write_vocab(tmp_path / "v.txt", [*BASE_TOKENS[:5], "", "hola"]))


def test_vocab_not_utf8(tmp_path):
    path = tmp_path / "v.txt"
    path.write_bytes("\n".join(BASE_TOKENS).encode("utf-8") + b"\nca\xf1a\n")
    with pytest.raises(UserError, match="not UTF-8"):
        Vocab.load(path)


def test_vocab_crlf_loads_like_lf(tmp_path):
    lf = Vocab.load(write_vocab(tmp_path / "lf.txt", BASE_TOKENS))
    crlf = Vocab.load(write_vocab(tmp_path / "crlf.txt", BASE_TOKENS, newline="\r\n"))
    assert crlf.tokens == lf.tokens == tuple(BASE_TOKENS)
    assert Tokenizer(crlf).tokenize(["holas"])[0].numpy().tolist() == [5, 6]


# ------------------------------------------------------------------------------------- settings


def test_strip_accents_follows_lower_case_unless_given():
    assert resolve_strip_accents(True, None) is True
    assert resolve_strip_accents(False, None) is False
    assert resolve_strip_accents(True, False) is False


def test_strip_accents_on_cased_text_is_refused():
    with pytest.raises(UserError, match="strip_accents without do_lower_case"):
        Tokenizer(Vocab.load(DEFAULT_VOCAB_FILE), do_lower_case=False, strip_accents=True)


@requires_shared_data(BETO)
def test_beto_unknown_word_is_its_own_unk_id():
    ours, _ = tokenizers_for("cased")
    ids = ours.tokenize(["☃"]).to_list()[0]
    assert ids == [3]  # BETO's [UNK]; not id 1 as in BERT's layout


# ------------------------------------------------------------------------------------ tokenizing


@pytest.mark.parametrize("setting", SETTING_PARAMS)
def test_tricky_strings_equal_hugging_face(setting):
    ours, theirs = tokenizers_for(setting)
    got = ours.tokenize(TRICKY).to_list()
    expected = hf_ids(theirs, TRICKY)
    for text, ids, want in zip(TRICKY, got, expected, strict=True):
        assert ids == want, (
            f"{text!r}: {ours.vocab.convert_ids_to_tokens(ids)} != {ours.vocab.convert_ids_to_tokens(want)}"
        )
    # Both paths are exercised by these strings.
    fast = ours.fast_path_lines(TRICKY).numpy()
    assert fast.any() and not fast.all()


def test_word_length_limit_is_100_characters():
    ours, _ = tokenizers_for("lower+strip")
    unk = ours.vocab.unk_id
    at_limit, over_limit = ours.tokenize(["a" * MAX_CHARS_PER_WORD, "a" * (MAX_CHARS_PER_WORD + 1)]).to_list()
    assert unk not in at_limit and len(at_limit) > 1
    assert over_limit == [unk]


def test_single_string_and_in_graph_use():
    ours, theirs = tokenizers_for("lower+strip")
    text = "Los pacientes presentaron fiebre y tos."
    expected = hf_ids(theirs, [text])[0]
    assert ours.tokenize(text).numpy().tolist() == expected

    dataset = tf.data.Dataset.from_tensor_slices([text, "1º"]).batch(2).map(ours.tokenize)
    batch = next(iter(dataset))
    assert batch.to_list() == hf_ids(theirs, [text, "1º"])


def test_unreachable_vocab_entries_do_not_break_the_tokenizer(tmp_path):
    """Entries no text can produce (bare ##, split-off punctuation as a continuation, controls)."""
    tokens = [*BASE_TOKENS, "##", "##.", "a.b", "\x07", "a", "##b", ".", "b"]
    path = write_vocab(tmp_path / "v.txt", tokens)
    ours = Tokenizer(Vocab.load(path))
    theirs = BertWordPieceTokenizer(str(path), lowercase=True, strip_accents=True)
    lines = ["holas a.b ab", "a\x07b .", "## b"]
    assert ours.tokenize(lines).to_list() == hf_ids(theirs, lines)


def assert_parity(setting: str, lines: list[str], required: float) -> None:
    """At least ``required`` of ``lines`` give Hugging Face's ids in ``setting``."""
    ours, theirs = tokenizers_for(setting)
    got = ours.tokenize(lines).to_list()
    expected = hf_ids(theirs, lines)
    different = [line for line, ids, want in zip(lines, got, expected, strict=True) if ids != want]
    share = 1 - len(different) / len(lines)
    assert share >= required, f"{share:.4%} of {len(lines)} lines identical; first: {different[:5]}"


@functools.cache
def parity_lines() -> list[str]:
    general = read_nonblank_lines(shared_file(PARITY_CORPORA[0]), PARITY_GENERAL_LINES)
    biomedical = read_nonblank_lines(shared_file(PARITY_CORPORA[1]))
    assert len(general) == PARITY_GENERAL_LINES and len(biomedical) > 4000
    return general + biomedical


@requires_shared_data(*PARITY_CORPORA)
@pytest.mark.parametrize("setting", SETTING_PARAMS)
def test_real_spanish_text_parity(setting):
    """At least 99.99% of lines give Hugging Face's ids (no exclusions: Greek sigma agrees too)."""
    assert_parity(setting, parity_lines(), PARITY_REQUIRED)


def test_sample_corpus_parity():
    """Every line of the repository's sample corpus (varied Spanish, ~73k pieces) gives Hugging Face's ids."""
    lines = [line for path in sorted(SAMPLE_CORPUS_DIR.glob("*.txt")) for line in read_nonblank_lines(path)]
    assert len(lines) > 1500
    assert_parity("lower+strip", lines, 1.0)


def test_character_rules_survive_the_disk_cache_unchanged(tmp_path):
    from electra_tf.tokenization import _derive_char_rules, _load_rules, _store_rules

    derived = _derive_char_rules(True, False)
    _store_rules(tmp_path / "rules.npz", derived)
    loaded = _load_rules(tmp_path / "rules.npz")
    np.testing.assert_array_equal(loaded.rendering_code_points, derived.rendering_code_points)
    np.testing.assert_array_equal(loaded.rendering_lengths, derived.rendering_lengths)
    assert loaded.fast_path_pattern == derived.fast_path_pattern
    assert loaded.output_chars == derived.output_chars and loaded.isolated_chars == derived.isolated_chars
    assert _load_rules(tmp_path / "missing.npz") is None
