"""Where fine-tuning starts: the discriminator's encoder config, its weights, its vocab and casing.

:func:`load_starting_point` accepts (``--init-checkpoint``):

- an electra_tf model directory (``run_pretraining.py --model-dir``: ``config.json`` and
  ``checkpoints/``), or one of its checkpoint prefixes: that checkpoint's discriminator (the newest
  by default), with the run's vocab and casing;
- a Hugging Face directory: this project's export (the folder holding ``discriminator/``, or that
  folder itself) or any ELECTRA model saved by ``transformers`` (``ElectraForPreTraining``,
  ``ElectraModel``, a fine-tuned ``ElectraFor*``) with ``model.safetensors``, ``vocab.txt`` and
  ``tokenizer_config.json``; the casing is what ``tokenizer_config.json`` states;
- a Google TF1 checkpoint (a directory or a prefix): the architecture is read from the variable
  shapes (vocab, embedding and hidden sizes, layers, feed-forward width, positions, token types),
  the rest (heads, dropout, activation) from ``model_size`` and ``hparams``; the vocab is the
  ``vocab.txt`` beside it or ``vocab_file``; the casing comes from the caller, since such a
  checkpoint does not record it;
- ``None``: fresh weights for the ``model_size``/``hparams`` architecture and ``vocab_file``.

Only the embeddings and the discriminator's encoder are taken: the pretraining heads are dropped and
the task head starts fresh. Every mismatch (vocab size, a casing flag that contradicts the source,
a generator where a discriminator is expected) is a :class:`UserError`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from electra_tf.config import ModelConfig, PretrainingConfig
from electra_tf.errors import UserError
from electra_tf.interop.google_import import read_google_checkpoint
from electra_tf.interop.hf_config import model_config_from_hf, read_hf_config, read_json_object
from electra_tf.interop.hf_names import named_from_hf
from electra_tf.interop.safetensors_io import read_weights
from electra_tf.interop.tokenizer_files import TOKENIZER_CONFIG_FILE, TOKENIZER_FILE, VOCAB_FILE
from electra_tf.interop.trained_checkpoint import checkpoint_step, checkpoint_to_export, restored_weights
from electra_tf.model.networks import DISCRIMINATOR, GENERATOR, SHARED_EMBEDDINGS_SCOPE, encoder_variable_shapes
from electra_tf.model_dir import CHECKPOINT_SUBDIR, CONFIG_FILE, ModelDirectory
from electra_tf.path_checks import require_file
from electra_tf.tokenization import Vocab, resolve_strip_accents

ARCHITECTURE_HPARAMS = ("model_hparam_overrides", "embedding_size", "vocab_size")
"""The ``--hparams`` keys (Google's names) that describe the architecture; the others are the run's."""
_HF_PREFIX = "electra."
_LAYER = re.compile(rf"^{DISCRIMINATOR.encoder_scope}/encoder/layer_(\d+)/")


@dataclasses.dataclass(frozen=True)
class StartingPoint:
    """The encoder fine-tuning starts from, and the tokenizer settings it was pretrained with."""

    encoder: ModelConfig
    """The discriminator's encoder config."""
    weights: dict[str, np.ndarray] | None
    """TF1-named embedding and encoder weights (``electra/embeddings/*``, ``electra/...``); None = random init."""
    vocab_file: Path
    do_lower_case: bool
    strip_accents: bool
    """The effective setting (never true without lower-casing)."""
    description: str

    def without_weights(self) -> StartingPoint:
        """The same architecture, vocab and casing with fresh weights (``--random-init``)."""
        return dataclasses.replace(self, weights=None, description=f"random init shaped like {self.description}")


def load_starting_point(
    path: Path | None,
    *,
    vocab_file: Path | None = None,
    model_size: str | None = None,
    hparams: Mapping[str, Any] | None = None,
    do_lower_case: bool | None = None,
    strip_accents: bool | None = None,
) -> StartingPoint:
    """The starting point at ``path`` (see the module docstring for the sources).

    ``vocab_file`` replaces a missing ``vocab.txt`` (it must equal one that is there).
    ``model_size`` and the :data:`ARCHITECTURE_HPARAMS` of ``hparams`` shape a Google checkpoint's
    unrecorded settings and a random init. ``do_lower_case``/``strip_accents`` (None: not given) are
    required where the source does not record the casing, and must agree with it where it does;
    ``strip_accents=None`` follows ``do_lower_case``.
    """
    architecture = {key: value for key, value in (hparams or {}).items() if key in ARCHITECTURE_HPARAMS}
    casing = _Casing(do_lower_case, strip_accents)
    point = _load(path, vocab_file, model_size, architecture, casing)
    size = len(Vocab.load(point.vocab_file))
    if size != point.encoder.vocab_size:
        raise UserError(
            f"{point.vocab_file} has {size} tokens but {point.description} has {point.encoder.vocab_size} "
            "embedding rows; use the vocab it was pretrained with."
        )
    return point


def _load(
    path: Path | None, vocab_file: Path | None, model_size: str | None, architecture: dict[str, Any], casing: _Casing
) -> StartingPoint:
    if path is None:
        return _random_init(vocab_file, model_size, architecture, casing)
    path = Path(path)
    if _model_directory_of(path) is not None:
        return _from_model_directory(path, vocab_file, casing)
    if path.is_dir() and ((path / DISCRIMINATOR.name).is_dir() or (path / CONFIG_FILE).is_file()):
        return _from_hugging_face(path, vocab_file, casing)
    if path.is_dir() and not any(path.glob("*.index")):
        raise UserError(
            f"{path} is neither an electra_tf model directory (no {CHECKPOINT_SUBDIR}/), a Hugging Face model "
            f"(no {CONFIG_FILE}) nor a TF checkpoint directory (no *.index file)."
        )
    if not path.exists() and not Path(f"{path}.index").is_file():
        raise UserError(
            f"starting point {path} not found: give an electra_tf model directory, a Hugging Face model directory "
            "or a TF checkpoint (directory or prefix such as DIR/model.ckpt-1000000)."
        )
    return _from_google_checkpoint(path, vocab_file, model_size, architecture, casing)


@dataclasses.dataclass(frozen=True)
class _Casing:
    """The casing flags the caller gave (None: not given)."""

    do_lower_case: bool | None
    strip_accents: bool | None

    def given(self, source: str) -> tuple[bool, bool]:
        """The flags, required because ``source`` does not record the casing."""
        if self.do_lower_case is None:
            raise UserError(
                f"{source} does not record whether its vocab is lower-cased: pass --do-lower-case (uncased vocab) "
                "or --nodo-lower-case (cased vocab)."
            )
        return self.do_lower_case, resolve_strip_accents(self.do_lower_case, self.strip_accents)

    def recorded(self, do_lower_case: bool, strip_accents: bool | None, source: str) -> tuple[bool, bool]:
        """The casing ``source`` records; flags that were given must agree with it."""
        strip = resolve_strip_accents(do_lower_case, strip_accents)
        for name, flag, value in (
            ("do_lower_case", self.do_lower_case, do_lower_case),
            ("strip_accents", self.strip_accents, strip),
        ):
            if flag is not None and flag != value:
                raise UserError(
                    f"{name}={flag} contradicts {source}, which was pretrained with {name}={value}; drop the flag "
                    "(the starting point's casing is used)."
                )
        return do_lower_case, strip


def _model_directory_of(path: Path) -> Path | None:
    """The electra_tf model directory ``path`` is, or holds a checkpoint prefix of; else None."""
    if path.is_dir() and (path / CHECKPOINT_SUBDIR).is_dir():
        return path
    if Path(f"{path}.index").is_file() and path.parent.name == CHECKPOINT_SUBDIR:
        root = path.parent.parent
        return root if (root / CONFIG_FILE).is_file() else None
    return None


def _from_model_directory(path: Path, vocab_file: Path | None, casing: _Casing) -> StartingPoint:
    root = _model_directory_of(path)
    directory = ModelDirectory(root)
    config = directory.require_config()
    vocab_path = _vocab(directory.vocab_file if directory.vocab_file.is_file() else None, vocab_file, root)
    prefix = checkpoint_to_export(directory, None if path == root else path)
    weights = restored_weights(config, Vocab.load(vocab_path), prefix)
    encoder = config.discriminator_config()
    step = checkpoint_step(prefix)
    source = f"electra_tf model {root} ({Path(prefix).name}{'' if step is None else f', step {step:,}'})"
    lower, strip = casing.recorded(config.do_lower_case, config.do_lower_case and config.strip_accents, source)
    return StartingPoint(encoder, _encoder_only(weights, encoder), vocab_path, lower, strip, source)


def _from_hugging_face(path: Path, vocab_file: Path | None, casing: _Casing) -> StartingPoint:
    directory = path / DISCRIMINATOR.name if (path / DISCRIMINATOR.name).is_dir() else path
    values = read_hf_config(directory)
    architectures = values.get("architectures") or []
    if GENERATOR.architecture in architectures:
        raise UserError(
            f"{directory} holds a generator ({GENERATOR.architecture}); fine-tune the discriminator "
            f"({DISCRIMINATOR.architecture}, e.g. the export's {DISCRIMINATOR.name}/ folder)."
        )
    encoder = model_config_from_hf(values, directory)
    tensors = read_weights(directory)
    if not any(name.startswith(_HF_PREFIX) for name in tensors):  # ElectraModel keeps no "electra." prefix
        tensors = {_HF_PREFIX + name: value for name, value in tensors.items()}
    weights = named_from_hf(tensors, encoder_variable_shapes(encoder), DISCRIMINATOR, f"{directory}/model.safetensors")
    vocab_path = _vocab(_file_or_none(directory / VOCAB_FILE), vocab_file, directory)
    source = f"Hugging Face model {directory} ({', '.join(architectures) or 'no architectures listed'})"
    lower, strip = casing.recorded(*_hf_casing(directory), source)
    return StartingPoint(encoder, weights, vocab_path, lower, strip, source)


def _hf_casing(directory: Path) -> tuple[bool, bool | None]:
    """``(do_lower_case, strip_accents)`` as the directory's tokenizer files state them.

    ``tokenizer_config.json`` first (what ``transformers`` rebuilds its tokenizer from), else the
    normaliser of ``tokenizer.json``; ``strip_accents`` None means "as do_lower_case".
    """
    config = _json_object(directory / TOKENIZER_CONFIG_FILE)
    if isinstance(config.get("do_lower_case"), bool):
        return config["do_lower_case"], config.get("strip_accents")
    normalizer = _json_object(directory / TOKENIZER_FILE).get("normalizer") or {}
    if isinstance(normalizer.get("lowercase"), bool):
        return normalizer["lowercase"], normalizer.get("strip_accents")
    raise UserError(
        f"{directory} does not state whether its vocab is lower-cased (no do_lower_case in {TOKENIZER_CONFIG_FILE} "
        f'and no BERT normaliser in {TOKENIZER_FILE}); add "do_lower_case": true or false to its '
        f"{TOKENIZER_CONFIG_FILE}."
    )


def _json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path``, ``{}`` if there is no such file."""
    return read_json_object(path) if path.is_file() else {}


def _from_google_checkpoint(
    path: Path, vocab_file: Path | None, model_size: str | None, architecture: dict[str, Any], casing: _Casing
) -> StartingPoint:
    imported = read_google_checkpoint(path)
    if DISCRIMINATOR not in imported.networks:
        raise UserError(
            f"{imported.description} has no discriminator encoder ({DISCRIMINATOR.encoder_scope}/encoder/)."
        )
    inferred = _shapes_architecture(imported.weights, imported.description)
    overrides = dict(architecture.get("model_hparam_overrides") or {})
    stated = {
        **overrides,
        **{key: architecture[key] for key in ("embedding_size", "vocab_size") if key in architecture},
    }
    for name, value in inferred.items():
        if name in stated and stated[name] != value:
            raise UserError(f"hparams set {name}={stated[name]!r}, but {imported.description} has {name}={value}.")
    top = {name: inferred[name] for name in ("vocab_size", "embedding_size")}
    encoder = _preset_encoder(model_size or "small", architecture | top, overrides | _without(inferred, top))
    vocab_path = _vocab(imported.vocab_file, vocab_file, Path(path))
    lower, strip = casing.given(imported.description)
    return StartingPoint(
        encoder, _encoder_only(imported.weights, encoder), vocab_path, lower, strip, imported.description
    )


def _shapes_architecture(weights: Mapping[str, np.ndarray], source: str) -> dict[str, int]:
    """What the variable shapes of a TF1 checkpoint say about its discriminator's architecture."""
    layer = f"{DISCRIMINATOR.encoder_scope}/encoder/layer_0"
    needed = {
        "word": f"{SHARED_EMBEDDINGS_SCOPE}/word_embeddings",
        "positions": f"{SHARED_EMBEDDINGS_SCOPE}/position_embeddings",
        "types": f"{SHARED_EMBEDDINGS_SCOPE}/token_type_embeddings",
        "query": f"{layer}/attention/self/query/kernel",
        "intermediate": f"{layer}/intermediate/dense/kernel",
    }
    missing = [name for name in needed.values() if name not in weights]
    if missing:
        raise UserError(f"{source} lacks {missing[0]}; it is not an ELECTRA discriminator checkpoint.")
    shape = {key: np.shape(weights[name]) for key, name in needed.items()}
    layers = {int(match.group(1)) for name in weights if (match := _LAYER.match(name))}
    return {
        "vocab_size": shape["word"][0],
        "embedding_size": shape["word"][1],
        "max_position_embeddings": shape["positions"][0],
        "type_vocab_size": shape["types"][0],
        "hidden_size": shape["query"][1],
        "intermediate_size": shape["intermediate"][1],
        "num_hidden_layers": max(layers) + 1,
    }


def _random_init(
    vocab_file: Path | None, model_size: str | None, architecture: dict[str, Any], casing: _Casing
) -> StartingPoint:
    if vocab_file is None or model_size is None:
        raise UserError("a random init (no starting checkpoint) needs a vocab file and a model size.")
    require_file(Path(vocab_file), "vocab file")
    size = len(Vocab.load(Path(vocab_file)))
    if architecture.get("vocab_size", size) != size:
        raise UserError(f"hparams set vocab_size={architecture['vocab_size']}, but {vocab_file} has {size} tokens.")
    overrides = dict(architecture.get("model_hparam_overrides") or {})
    encoder = _preset_encoder(model_size, architecture | {"vocab_size": size}, overrides)
    source = f"random init ({model_size} ELECTRA, {encoder.num_hidden_layers} layers, hidden {encoder.hidden_size})"
    lower, strip = casing.given("a random init")
    return StartingPoint(encoder, None, Path(vocab_file), lower, strip, source)


def _preset_encoder(model_size: str, top: dict[str, Any], overrides: dict[str, Any]) -> ModelConfig:
    """The discriminator encoder of the ``model_size`` preset with ``top``-level hparams and ``overrides``.

    Heads and feed-forward width derive from the hidden size as in pretraining (Google's
    ``get_bert_config``) unless overridden.
    """
    positions = overrides.get("max_position_embeddings", ModelConfig.max_position_embeddings)
    # max_seq_length only has to fit the positions here: it belongs to the pretraining run, not the encoder.
    values = {**top, "model_hparam_overrides": overrides, "max_seq_length": min(positions, 128)}
    return PretrainingConfig.from_size(model_size, values).discriminator_config()


def _without(values: dict[str, Any], keys: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in values.items() if name not in keys}


def _encoder_only(weights: Mapping[str, np.ndarray], encoder: ModelConfig) -> dict[str, np.ndarray]:
    """The embedding and encoder weights of the discriminator (its pretraining head is dropped)."""
    return {name: weights[name] for name in encoder_variable_shapes(encoder) if name in weights}


def _file_or_none(path: Path) -> Path | None:
    return path if path.is_file() else None


def _vocab(beside: Path | None, given: Path | None, source: Path) -> Path:
    """The vocab to fine-tune with: ``given`` (which must equal ``beside`` if both exist), else ``beside``."""
    if given is None:
        if beside is None:
            raise UserError(
                f"{source} comes without a {VOCAB_FILE}; pass the vocab it was pretrained with (--vocab-file)."
            )
        return beside
    given = Path(given)
    require_file(given, "vocab file")
    if beside is not None and Vocab.load(beside).tokens != Vocab.load(given).tokens:
        raise UserError(f"{given} differs from {beside}, the vocab the starting point was pretrained with.")
    return given
