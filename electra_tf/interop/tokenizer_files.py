"""The tokenizer files of an exported model, consistent with each other and with pretraining.

Four files, so every reader finds what it looks for: ``vocab.txt`` and ``tokenizer_config.json``
(what ``transformers`` 5 builds its ``BertTokenizer`` from, and what v4 slow tokenizers read),
``special_tokens_map.json`` (v4) and ``tokenizer.json`` (the ``tokenizers`` library on its own, and
v5's post-processor). All state the normalisation the pretraining data was tokenized with
(docs/data_format.md#tokenization, docs/checkpoint_names.md#tokenizer-files): accents are stripped
only when lower-casing, so ``strip_accents: true`` is never written with ``do_lower_case: false``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, pre_tokenizers, processors
from tokenizers.models import WordPiece

from electra_tf.tokenization import MAX_CHARS_PER_WORD, SPECIAL_TOKENS, WORDPIECE_PREFIX, Vocab, hf_normalizer

VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_FILES = (VOCAB_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, TOKENIZER_FILE)

# transformers' keyword for each special token of the vocab.
_SPECIAL_TOKEN_KEYS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}


def write_tokenizer_files(
    directory: Path, vocab: Vocab, do_lower_case: bool, strip_accents: bool, model_max_length: int
) -> None:
    """Write the four tokenizer files for ``vocab`` and the pretraining normalisation into ``directory``.

    ``strip_accents`` is the effective setting (already resolved; never true without lower-casing).
    """
    if strip_accents and not do_lower_case:
        raise ValueError("strip_accents without do_lower_case cannot be exported faithfully")
    (directory / VOCAB_FILE).write_text("".join(token + "\n" for token in vocab.tokens), encoding="utf-8")
    _write_json(directory / TOKENIZER_CONFIG_FILE, tokenizer_config(do_lower_case, strip_accents, model_max_length))
    _write_json(directory / SPECIAL_TOKENS_MAP_FILE, dict(_SPECIAL_TOKEN_KEYS))
    build_tokenizer_json(vocab, do_lower_case, strip_accents).save(str(directory / TOKENIZER_FILE))


def tokenizer_config(do_lower_case: bool, strip_accents: bool, model_max_length: int) -> dict[str, Any]:
    """``tokenizer_config.json``: the settings ``transformers`` rebuilds the normaliser from."""
    return {
        "tokenizer_class": "ElectraTokenizer",
        "do_lower_case": do_lower_case,
        "strip_accents": strip_accents,
        "tokenize_chinese_chars": True,
        "model_max_length": model_max_length,
        **_SPECIAL_TOKEN_KEYS,
    }


def build_tokenizer_json(vocab: Vocab, do_lower_case: bool, strip_accents: bool) -> Tokenizer:
    """A ``tokenizers`` pipeline equal to ``transformers``' ``BertTokenizer`` with these settings.

    Pairs are encoded as ``[CLS] A [SEP] B [SEP]`` with segment ids 0…0 1…1, as in pretraining; the
    special tokens keep their ids in the vocab wherever they are.
    """
    tokenizer = Tokenizer(
        WordPiece(
            {token: index for index, token in enumerate(vocab.tokens)},
            unk_token="[UNK]",
            continuing_subword_prefix=WORDPIECE_PREFIX,
            max_input_chars_per_word=MAX_CHARS_PER_WORD,
        )
    )
    tokenizer.normalizer = hf_normalizer(do_lower_case, strip_accents)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS]:0 $A:0 [SEP]:0",
        pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab.cls_id), ("[SEP]", vocab.sep_id)],
    )
    tokenizer.decoder = decoders.WordPiece(prefix=WORDPIECE_PREFIX)
    tokenizer.add_special_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS])
    return tokenizer


def _write_json(path: Path, values: dict[str, Any]) -> None:
    path.write_text(json.dumps(values, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
