"""WordPiece vocab loading and an in-graph, batched tokenizer built on tensorflow-text.

The contract is parity with Hugging Face's ``BertTokenizer``/``ElectraTokenizerFast`` given the same
``vocab.txt`` and flags, because exported models are used with that tokenizer. Normalisation follows
Google's semantics: accents are stripped only when lower-casing unless explicitly requested, and
words longer than 100 characters become ``[UNK]`` (Hugging Face's limit; Google's is 200).

How parity is reached at tensorflow-text speed:

* The character rules (what cleaning, lower-casing, accent stripping and punctuation splitting do to
  each code point) are read once from Hugging Face's own ``BertNormalizer`` and ``BertPreTokenizer``
  for every Unicode scalar value, so they agree with it by construction, including its Unicode
  tables (which are older than Python's or ICU's).
* The same rules are read from tensorflow-text's ``FastBertNormalizer`` + ``FastWordpieceTokenizer``.
  Lines made only of characters on which both agree, with no run of more than 100 non-space
  characters, take the fast path (tensorflow-text end to end). The other lines (a few per thousand
  in Spanish text: ``º``, ``ª``, ``´``, ``…``, soft hyphens, symbols...) take the exact path: each
  code point is replaced in-graph by Hugging Face's rendering of it, then words are split on spaces
  and WordPiece runs per word with the 100-character rule.

Special-token ids are read from the vocab, never assumed: BETO's vocab has ``[MASK]=0``, ``[PAD]=1``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer

from electra_tf.atomic_io import atomic_file
from electra_tf.errors import UserError
from electra_tf.path_checks import require_file

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS_PER_WORD = 100
WORDPIECE_PREFIX = "##"

_NUM_CODE_POINTS = 0x110000
_SURROGATES = range(0xD800, 0xE000)
# Joins the code points probed in one call: a symbol that every setting leaves unchanged, that no
# other character normalises into, and a barrier to canonical reordering, so the normalisers see
# each code point on its own.
_PROBE_SEPARATOR = "\U0001f600"
_LONG_RUN = rf"(?s).*[^ \t\n\r]{{{MAX_CHARS_PER_WORD + 1}}}.*"
"""Matches a line with a run of more than 100 characters that may all belong to one word."""


@dataclasses.dataclass(frozen=True)
class Vocab:
    """A WordPiece vocabulary: token strings in id order plus the ids of the special tokens."""

    tokens: tuple[str, ...]
    sha256: str
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a BERT-format ``vocab.txt`` (one token per line, id = line number).

        Lines end at ``\\n`` only, as in Google's and Hugging Face's readers, and each token is
        ``strip()``-ed (so CRLF files load). Raises :class:`UserError` for a missing or empty file, a
        folder, an empty line, duplicate tokens, or a missing special token.
        """
        path = Path(path)
        require_file(path, "vocab file")
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise UserError(f"cannot read vocab file {path}: {error.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"vocab file {path} is not UTF-8 (byte {error.start}).") from None
        tokens = [line.strip() for line in text.split("\n")]
        while tokens and not tokens[-1]:
            tokens.pop()
        if not tokens:
            raise UserError(f"vocab file {path} is empty.")
        first_seen: dict[str, int] = {}
        for index, token in enumerate(tokens):
            if not token:
                raise UserError(f"vocab file {path} has an empty line at line {index + 1}.")
            if token in first_seen:
                raise UserError(
                    f"vocab file {path} has the duplicate token {token!r} at lines {first_seen[token] + 1} "
                    f"and {index + 1}."
                )
            first_seen[token] = index
        missing = [token for token in SPECIAL_TOKENS if token not in first_seen]
        if missing:
            raise UserError(f"vocab file {path} lacks the special token(s) {', '.join(missing)}.")
        return cls(
            tokens=tuple(tokens),
            sha256=hashlib.sha256(raw).hexdigest(),
            pad_id=first_seen["[PAD]"],
            unk_id=first_seen["[UNK]"],
            cls_id=first_seen["[CLS]"],
            sep_id=first_seen["[SEP]"],
            mask_id=first_seen["[MASK]"],
        )

    def __len__(self) -> int:
        return len(self.tokens)

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [self.tokens[i] for i in ids]


def resolve_strip_accents(do_lower_case: bool, strip_accents: bool | None) -> bool:
    """Google's rule: ``None`` means "strip when lower-casing"; stripping a cased vocab is refused.

    Hugging Face strips accents with ``strip_accents: true`` even when not lower-casing, but Google
    never does; the combination cannot be exported faithfully, so it is an error here.
    """
    if strip_accents is None:
        return do_lower_case
    if strip_accents and not do_lower_case:
        raise UserError(
            "strip_accents without do_lower_case is not supported: Google's tokenizer never strips accents "
            "from cased text, and Hugging Face would disagree with it. Use --nostrip-accents or --do-lower-case."
        )
    return strip_accents


def hf_normalizer(do_lower_case: bool, strip_accents: bool) -> BertNormalizer:
    """Hugging Face's normaliser for these flags (what ``BertTokenizer`` builds from its config)."""
    return BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=strip_accents, lowercase=do_lower_case
    )


# ----------------------------------------------------------------------------------------------
# Character rules: what each code point becomes before WordPiece, per Hugging Face and tf-text.
# A "rendering" is the text a code point turns into, with a space wherever a word ends: whitespace
# renders as " ", a character split off as its own word (punctuation, CJK) as " c ", a deleted
# control character as "", a letter as itself (lower-cased and/or without accents, per the flags).
# ----------------------------------------------------------------------------------------------


# Normalised one at a time rather than inside the probe: the separator itself, and NUL, at which
# tf.strings.lower stops reading (the rest of a lower-cased line would be lost; see char_rules).
_PROBED_ALONE = (_PROBE_SEPARATOR, "\x00")


def _normalize_each(normalize: Callable[[str], str]) -> list[str]:
    """``normalize`` applied to every code point on its own (index = code point; "" for surrogates).

    One call on all code points joined by the separator, which is much faster than a call each.
    """
    chars = [chr(c) for c in range(_NUM_CODE_POINTS) if c not in _SURROGATES and chr(c) not in _PROBED_ALONE]
    pieces = normalize(_PROBE_SEPARATOR.join(chars)).split(_PROBE_SEPARATOR)
    if len(pieces) != len(chars):
        raise AssertionError("a normaliser changed the probe separator")
    out = [""] * _NUM_CODE_POINTS
    for char, piece in zip(chars, pieces, strict=True):
        out[ord(char)] = piece
    for char in _PROBED_ALONE:
        out[ord(char)] = normalize(char)
    return out


def _word_boundaries(probe: str, words: list[tuple[int, int]]) -> tuple[bytearray, bytearray]:
    """Per code point: is it a word on its own (1) / a word break (1), given the words of ``probe``.

    ``probe`` is every character separated by "a"; ``words`` are (start, end) character offsets.
    """
    isolated = bytearray(_NUM_CODE_POINTS)
    covered = np.zeros(len(probe) + 1, np.int32)
    for start, end in words:
        covered[start] += 1
        covered[end] -= 1
        if end - start == 1 and probe[start] != "a":
            isolated[ord(probe[start])] = 1
    space = bytearray(_NUM_CODE_POINTS)
    for index in np.flatnonzero(np.cumsum(covered)[:-1] == 0):
        space[ord(probe[index])] = 1
    return isolated, space


def _probe_text() -> str:
    return "a" + "a".join(chr(c) for c in range(_NUM_CODE_POINTS) if c not in _SURROGATES and c != 0x61) + "a"


@functools.cache
def _hf_word_boundaries() -> tuple[bytearray, bytearray]:
    """Which characters Hugging Face's ``BertPreTokenizer`` splits off, and which it drops."""
    probe = _probe_text()
    return _word_boundaries(probe, [offsets for _, offsets in BertPreTokenizer().pre_tokenize_str(probe)])


@functools.cache
def _tf_text_word_boundaries() -> tuple[bytearray, bytearray]:
    """The same for tensorflow-text's end-to-end ``FastWordpieceTokenizer`` (one [UNK] per word)."""
    probe = _probe_text()
    words = tf_text.FastWordpieceTokenizer(
        vocab=["[UNK]", "a"], unknown_token="[UNK]", no_pretokenization=False, max_bytes_per_word=1
    )
    _, starts, ends = words.tokenize_with_offsets(tf.constant([probe]))
    # Offsets are in bytes; convert to character positions.
    code_points = np.frombuffer(probe.encode("utf-32-le"), dtype=np.uint32)
    utf8_lengths = 1 + (code_points >= 0x80) + (code_points >= 0x800) + (code_points >= 0x10000)
    char_byte_starts = np.concatenate([[0], np.cumsum(utf8_lengths)])
    byte_to_char = np.zeros(char_byte_starts[-1] + 1, np.int64)
    byte_to_char[char_byte_starts] = np.arange(len(char_byte_starts))
    return _word_boundaries(
        probe, list(zip(byte_to_char[starts[0].numpy()], byte_to_char[ends[0].numpy()], strict=True))
    )


def _render(normalized: list[str], isolated: bytearray, space: bytearray) -> list[str]:
    def render_char(char: str) -> str:
        code = ord(char)
        return " " if space[code] else f" {char} " if isolated[code] else char

    return [render_char(s) if len(s) == 1 else "".join(map(render_char, s)) for s in normalized]


@functools.cache
def _hf_renderings(do_lower_case: bool, strip_accents: bool) -> list[str]:
    """Hugging Face's rendering of every code point (index = code point)."""
    normalized = _normalize_each(hf_normalizer(do_lower_case, strip_accents).normalize_str)
    return _render(normalized, *_hf_word_boundaries())


class _TfTextNormalizer:
    """tensorflow-text's normalisation for one setting: the fast path's first step."""

    def __init__(self, do_lower_case: bool, strip_accents: bool) -> None:
        self._lower_case_first = do_lower_case and not strip_accents
        self._normalizer = tf_text.FastBertNormalizer(lower_case_nfd_strip_accents=do_lower_case and strip_accents)

    def __call__(self, texts: tf.Tensor) -> tf.Tensor:
        if self._lower_case_first:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return self._normalizer.normalize(texts)


@functools.cache
def _tf_text_renderings(do_lower_case: bool, strip_accents: bool) -> list[str]:
    """tensorflow-text's rendering of every code point, per code point on its own."""
    normalizer = _TfTextNormalizer(do_lower_case, strip_accents)
    normalized = _normalize_each(lambda text: normalizer(tf.constant([text]))[0].numpy().decode("utf-8"))
    return _render(normalized, *_tf_text_word_boundaries())


def _re2_class(code_points: np.ndarray) -> str:
    """An RE2 character class (without brackets) matching exactly the given sorted code points."""
    if code_points.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(code_points) != 1)
    starts = np.concatenate([code_points[:1], code_points[breaks + 1]])
    ends = np.concatenate([code_points[breaks], code_points[-1:]])
    return "".join(
        f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}" for a, b in zip(starts, ends, strict=True)
    )


@dataclasses.dataclass(frozen=True)
class CharRules:
    """The character rules of one setting, derived once per process.

    ``rendering_code_points`` / ``rendering_lengths``: Hugging Face's rendering of every code point
    (index = code point), concatenated. ``fast_path_pattern``: an RE2 pattern that fully matches a
    line iff tensorflow-text renders each of its characters exactly so and none grows a word by more
    than one character. ``output_chars``: every character normalisation can produce (spaces aside);
    ``isolated_chars``: those always split off as a word of their own (punctuation, CJK).
    """

    rendering_code_points: np.ndarray
    rendering_lengths: np.ndarray
    fast_path_pattern: str
    output_chars: frozenset[str]
    isolated_chars: frozenset[str]


# What a probe of one character cannot see, in the settings that lower-case with ICU
# (tf.strings.lower): it turns a word-final capital sigma into "ς" where Hugging Face always writes
# "σ", and it stops at NUL. Lines with these characters always take the exact path.
_CONTEXT_DEPENDENT = {(True, False): "\u03a3\x00"}


@functools.cache
def char_rules(do_lower_case: bool, strip_accents: bool) -> CharRules:
    """The character rules for one setting: from the disk cache, or derived (about 6 s) and cached.

    The cache (``$ELECTRA_TF_CACHE``, default ``~/.cache/electra_tf``) is keyed by this module's
    source and the versions of the libraries whose behaviour the rules record, so it can never serve
    rules derived by other code; every process that builds a tokenizer (each dataset-builder worker,
    each test) skips the derivation after the first.
    """
    path = _cache_dir() / f"char_rules-{_rules_cache_key(do_lower_case, strip_accents)}.npz"
    rules = _load_rules(path)
    if rules is None:
        rules = _derive_char_rules(do_lower_case, strip_accents)
        _store_rules(path, rules)
    return rules


def _load_rules(path: Path) -> CharRules | None:
    """Rules stored by :func:`_store_rules`, or None if the file is missing or unreadable."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return CharRules(
                rendering_code_points=stored["rendering_code_points"],
                rendering_lengths=stored["rendering_lengths"],
                fast_path_pattern=str(stored["fast_path_pattern"]),
                output_chars=frozenset(str(stored["output_chars"])),
                isolated_chars=frozenset(str(stored["isolated_chars"])),
            )
    except (OSError, KeyError, ValueError):
        return None


def _cache_dir() -> Path:
    return Path(os.environ.get("ELECTRA_TF_CACHE") or Path.home() / ".cache" / "electra_tf")


def _rules_cache_key(do_lower_case: bool, strip_accents: bool) -> str:
    parts = [
        Path(__file__).read_bytes().hex(),
        tf.__version__,
        importlib.metadata.version("tensorflow-text"),
        importlib.metadata.version("tokenizers"),
        f"{do_lower_case}-{strip_accents}",
    ]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def _store_rules(path: Path, rules: CharRules) -> None:
    """Write the rules atomically; a cache that cannot be written (read-only home) is skipped."""
    with contextlib.suppress(OSError), atomic_file(path, binary=True) as out:
        np.savez(
            out,
            rendering_code_points=rules.rendering_code_points,
            rendering_lengths=rules.rendering_lengths,
            fast_path_pattern=np.str_(rules.fast_path_pattern),
            output_chars=np.str_("".join(sorted(rules.output_chars))),
            isolated_chars=np.str_("".join(sorted(rules.isolated_chars))),
        )


def _derive_char_rules(do_lower_case: bool, strip_accents: bool) -> CharRules:
    """Compare Hugging Face's and tensorflow-text's rendering of every code point (a few seconds)."""
    hf = _hf_renderings(do_lower_case, strip_accents)
    fast = _tf_text_renderings(do_lower_case, strip_accents)
    unsafe = [
        code
        for code in range(_NUM_CODE_POINTS)
        if code not in _SURROGATES and (hf[code] != fast[code] or len(hf[code].replace(" ", "")) > 1)
    ]
    unsafe += [ord(c) for c in _CONTEXT_DEPENDENT.get((do_lower_case, strip_accents), "")]
    isolated, _ = _hf_word_boundaries()
    output_chars = frozenset("".join(hf)) - {" "}
    return CharRules(
        rendering_code_points=np.frombuffer("".join(hf).encode("utf-32-le"), dtype=np.uint32).astype(np.int32),
        rendering_lengths=np.fromiter(map(len, hf), dtype=np.int32, count=len(hf)),
        fast_path_pattern=f"[^{_re2_class(np.unique(np.array(unsafe, np.int64)))}]*",
        output_chars=output_chars,
        isolated_chars=frozenset(char for char in output_chars if isolated[ord(char)]),
    )


# ----------------------------------------------------------------------------------------------
# The tokenizer.
# ----------------------------------------------------------------------------------------------


def _reachable_tokens(tokens: tuple[str, ...], rules: CharRules) -> list[str]:
    """The vocab with tokens no text can produce replaced by unique never-matching placeholders.

    A token is reachable if normalisation can produce each of its characters and, unless it is a
    single character starting a word, none of them is split off on its own. The others (control
    characters, spaces, a bare "##", "##.") are unreachable for Hugging Face too, and
    tensorflow-text's trie builder rejects some of them; ids are unchanged.
    """
    out = []
    for index, token in enumerate(tokens):
        continuation = token.startswith(WORDPIECE_PREFIX)
        body = token[len(WORDPIECE_PREFIX) :] if continuation else token
        reachable = (
            bool(body)
            and all(char in rules.output_chars for char in body)
            and ((len(body) == 1 and not continuation) or not any(char in rules.isolated_chars for char in body))
        )
        out.append(token if reachable or token in SPECIAL_TOKENS else f"[unreachable-{index}]")
    return out


class Tokenizer:
    """Text to WordPiece ids, in TensorFlow ops (usable inside ``tf.data`` and ``tf.function``).

    ``tokenize`` takes a batch of strings and returns a ``tf.RaggedTensor`` of int32 ids
    ``[batch, (tokens)]`` with no special tokens added; the ids are those of Hugging Face's
    ``BertTokenizer`` with the same vocab and flags. Building one takes a few seconds the first time
    a setting is used in a process (the character rules are derived then cached).
    """

    def __init__(self, vocab: Vocab, do_lower_case: bool = True, strip_accents: bool | None = None) -> None:
        self.vocab = vocab
        self.do_lower_case = do_lower_case
        self.strip_accents = resolve_strip_accents(do_lower_case, strip_accents)
        rules = char_rules(self.do_lower_case, self.strip_accents)
        self._fast_path_pattern = rules.fast_path_pattern
        wordpiece_vocab = _reachable_tokens(vocab.tokens, rules)
        common = {
            "vocab": wordpiece_vocab,
            "suffix_indicator": WORDPIECE_PREFIX,
            "token_out_type": tf.int32,
            "unknown_token": vocab.tokens[vocab.unk_id],
            "max_bytes_per_word": 4 * MAX_CHARS_PER_WORD,  # never binding: words are checked in characters
        }
        self._fast_normalizer = _TfTextNormalizer(self.do_lower_case, self.strip_accents)
        self._fast_words = tf_text.FastWordpieceTokenizer(no_pretokenization=False, **common)
        self._exact_words = tf_text.FastWordpieceTokenizer(no_pretokenization=True, **common)
        # Flat tables (index = code point) rather than one RaggedTensor: a ragged gather from 1.1M rows
        # costs about a millisecond per call whatever the input size.
        self._rendering_code_points = tf.constant(rules.rendering_code_points)
        self._rendering_lengths = tf.constant(rules.rendering_lengths)
        self._rendering_starts = tf.constant(
            np.cumsum(rules.rendering_lengths, dtype=np.int32) - rules.rendering_lengths
        )

    def tokenize(self, texts: tf.Tensor | list[str] | str) -> tf.RaggedTensor | tf.Tensor:
        """Token ids for each string of the 1-D batch ``texts`` (for one string: a 1-D tensor)."""
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if texts.shape.rank == 0:
            return self.tokenize(tf.expand_dims(texts, 0))[0]
        fast = self.fast_path_lines(texts)
        fast_rows = tf.reshape(tf.where(fast), [-1])
        exact_rows = tf.reshape(tf.where(~fast), [-1])
        ids = tf.concat(
            [self._tokenize_fast(tf.gather(texts, fast_rows)), self._tokenize_exact(tf.gather(texts, exact_rows))],
            axis=0,
        )
        return tf.gather(ids, tf.math.invert_permutation(tf.concat([fast_rows, exact_rows], axis=0)))

    def fast_path_lines(self, texts: tf.Tensor | list[str]) -> tf.Tensor:
        """Which lines of the batch tensorflow-text tokenizes end to end (the others: the exact path).

        A line qualifies when tensorflow-text renders each of its characters as Hugging Face does and
        no run of more than 100 non-space characters could form a word over the length limit.
        """
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        return tf.strings.regex_full_match(texts, self._fast_path_pattern) & ~tf.strings.regex_full_match(
            texts, _LONG_RUN
        )

    def _tokenize_fast(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """tensorflow-text end to end, for lines where it renders every character like Hugging Face."""
        normalized = self._fast_normalizer(texts)
        return self._fast_words.tokenize(normalized).with_row_splits_dtype(tf.int64)

    def _tokenize_exact(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """Hugging Face's rendering per code point, a split on spaces, then WordPiece per word."""
        code_points = tf.strings.unicode_decode(texts, "UTF-8", errors="replace")
        starts = tf.gather(self._rendering_starts, code_points.flat_values)
        lengths = tf.gather(self._rendering_lengths, code_points.flat_values)
        positions = tf.ragged.range(starts, starts + lengths)
        rendered = code_points.with_flat_values(
            positions.with_flat_values(tf.gather(self._rendering_code_points, positions.flat_values))
        )
        words = tf.strings.split(tf.strings.unicode_encode(rendered.merge_dims(1, 2), "UTF-8"))
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        # The unknown token, as a word, is exactly one [UNK] piece.
        word_texts = tf.where(too_long, self.vocab.tokens[self.vocab.unk_id], words.flat_values)
        return words.with_flat_values(self._exact_words.tokenize(word_texts)).merge_dims(1, 2)

    def tokenize_to_strings(self, text: str) -> list[str]:
        """The WordPiece strings of one text (for inspection and messages)."""
        return self.vocab.convert_ids_to_tokens(self.tokenize([text])[0].numpy().tolist())
