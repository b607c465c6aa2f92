"""WordPiece vocab loading and an in-graph, batched tokenizer built on tensorflow-text.

The contract is parity with Hugging Face's ``BertTokenizer``/``ElectraTokenizerFast`` given the same
``vocab.txt`` and flags, because exported models are used with that tokenizer. Normalisation follows
Google's semantics: accents are stripped only when lower-casing unless explicitly requested, and
words longer than 100 characters become ``[UNK]`` (Hugging Face's limit; Google's is 200).

Special-token ids are read from the vocab, never assumed: BETO's vocab has ``[MASK]=0``, ``[PAD]=1``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text

from electra_tf.errors import UserError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MAX_CHARS_PER_WORD = 100


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

        Raises :class:`UserError` for a missing or empty file, duplicate tokens, or a missing
        special token.
        """
        path = Path(path)
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise UserError(f"vocab file not found: {path}") from None
        except OSError as error:
            raise UserError(f"cannot read vocab file {path}: {error.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise UserError(f"vocab file {path} is not UTF-8 (byte {error.start}).") from None
        # One token per line; surrounding whitespace (including a CR of CRLF files) is not part of it.
        tokens = tuple(line.strip() for line in text.splitlines())
        while tokens and not tokens[-1]:
            tokens = tokens[:-1]
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
            tokens=tokens,
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


class Tokenizer:
    """Text to WordPiece ids, in TensorFlow ops (usable inside ``tf.data`` and ``tf.function``).

    ``tokenize`` takes a batch of strings and returns a ``tf.RaggedTensor`` of int32 ids
    ``[batch, (tokens)]`` with no special tokens added.
    """

    def __init__(self, vocab: Vocab, do_lower_case: bool = True, strip_accents: bool | None = None) -> None:
        self.vocab = vocab
        self.do_lower_case = do_lower_case
        self.strip_accents = resolve_strip_accents(do_lower_case, strip_accents)
        self._wordpiece = tf_text.FastBertTokenizer(
            vocab=list(vocab.tokens),
            token_out_type=tf.int32,
            unknown_token="[UNK]",
            max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
            lower_case_nfd_strip_accents=self.do_lower_case and self.strip_accents,
        )

    def tokenize(self, texts: tf.Tensor | list[str]) -> tf.RaggedTensor:
        """Token ids for each string of the 1-D batch ``texts``."""
        texts = tf.convert_to_tensor(texts, dtype=tf.string)
        if self.do_lower_case and not self.strip_accents:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return self._wordpiece.tokenize(texts)

    def tokenize_to_strings(self, text: str) -> list[str]:
        """The WordPiece strings of one text (for inspection and messages)."""
        ids = self.tokenize([text])[0].numpy().tolist()
        return self.vocab.convert_ids_to_tokens(ids)
