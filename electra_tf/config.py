"""Model and pretraining configurations, the small/base/large presets, and `--hparams` overrides.

The field names follow Google's ``configure_pretraining.PretrainingConfig`` and ``BertConfig`` so a
Google ``--hparams`` JSON works here unchanged. The presets are ELECTRA's published settings (paper
Table 6 and Google's code; see docs/algorithm.md#sizes). Every derived value (embedding
size, generator size, ``max_predictions_per_seq``) is resolved when the config is built, and the
resolved config is what a model directory stores, so resume and export never re-derive anything.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from electra_tf.errors import UserError

MODEL_SIZES = ("small", "base", "large")
DEFAULT_MODEL_SIZE = "small"
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("adamw", "lamb")
MASKING_MODES = ("distinct", "google")
"""Masked positions: distinct candidates (default), or Google's draws with replacement, duplicates averaged."""
ACTIVATIONS = ("gelu", "relu", "tanh")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture of one transformer encoder (the generator or the discriminator).

    Field names match Hugging Face ``ElectraConfig`` so export writes them verbatim.
    """

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12

    def __post_init__(self) -> None:
        _check_positive_ints(
            self,
            "vocab_size",
            "embedding_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        )
        if self.hidden_size % self.num_attention_heads:
            raise UserError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})."
            )
        if self.hidden_act not in ACTIVATIONS:
            raise UserError(f"hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}.")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        if not self.initializer_range > 0:
            raise UserError(f"initializer_range must be > 0, got {self.initializer_range}.")
        if not 0 < self.layer_norm_eps < 1:
            raise UserError(f"layer_norm_eps must be in (0, 1), got {self.layer_norm_eps}.")

    @property
    def head_size(self) -> int:
        """Width of one attention head."""
        return self.hidden_size // self.num_attention_heads

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Discriminator size per preset (Google's training_utils.get_bert_config); heads and FFN derive.
_ENCODER_SIZES = {
    "small": {"hidden_size": 256, "num_hidden_layers": 12},
    "base": {"hidden_size": 768, "num_hidden_layers": 12},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24},
}

# Pretraining settings that differ between presets (docs/algorithm.md#sizes); everything else is shared.
_SIZE_PRESETS: dict[str, dict[str, Any]] = {
    "small": {
        "embedding_size": 128,
        "generator_hidden_size": 0.25,
        "mask_prob": 0.15,
        "learning_rate": 5e-4,
        "train_batch_size": 128,
        "max_seq_length": 128,
        "num_train_steps": 1_000_000,
    },
    "base": {
        "embedding_size": 768,
        "generator_hidden_size": 0.33333,
        "mask_prob": 0.15,
        "learning_rate": 2e-4,
        "train_batch_size": 256,
        "max_seq_length": 512,
        "num_train_steps": 766_000,
    },
    "large": {
        "embedding_size": 1024,
        "generator_hidden_size": 0.25,
        "mask_prob": 0.25,
        "learning_rate": 2e-4,
        "train_batch_size": 2048,
        "max_seq_length": 512,
        "num_train_steps": 400_000,
    },
}

# Google hparams this project reads under another name.
_GOOGLE_ALIASES = {"iterations_per_loop": "steps_per_execution"}

# Google hparams that have no meaning here, with what to do instead.
_GOOGLE_UNSUPPORTED = {
    "use_tpu": "use run_pretraining.py --strategy tpu --tpu ADDRESS",
    "num_tpu_cores": "the TPU strategy discovers the cores itself",
    "tpu_name": "use run_pretraining.py --tpu",
    "tpu_zone": "use run_pretraining.py --tpu",
    "gcp_project": "use run_pretraining.py --tpu",
    "tpu_job_name": "use run_pretraining.py --tpu",
    "model_name": "use run_pretraining.py --model-dir",
    "model_dir": "use run_pretraining.py --model-dir",
    "data_dir": "use run_pretraining.py --data-dir",
    "pretrain_tfrecords": (
        "index the records with python -m electra_tf.cli.index_tfrecords --tfrecords GLOB --output-dir DIR, "
        "then use run_pretraining.py --data-dir DIR"
    ),
    "vocab_file": "the vocab is the one the dataset was built with (dataset_info.json)",
    "do_train": "use run_pretraining.py --do-train",
    "do_eval": "use run_pretraining.py --do-eval",
    "results_txt": "eval results are written to MODEL_DIR/eval_results.json",
    "results_pkl": "eval results are written to MODEL_DIR/eval_results.json",
    "debug": "use a small --hparams override instead",
    "electra_objective": "only the ELECTRA objective is implemented",
    "electric_objective": "only the ELECTRA objective is implemented",
    "two_tower_generator": "only the ELECTRA objective is implemented",
    "uniform_generator": "only a learned generator is implemented",
    "untied_generator": "the generator always has its own encoder (Google's default)",
    "untied_generator_embeddings": "the embeddings are always shared (Google's default)",
}


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    """Everything a pretraining run needs, resolved to concrete values.

    Build it with :meth:`from_size` (a preset plus overrides) or :meth:`from_dict` (a stored,
    already resolved config). Fields left ``None`` by the caller are derived:
    ``embedding_size`` from the preset and ``max_predictions_per_seq`` as Google does,
    ``int((mask_prob + 0.005) * max_seq_length)``.
    """

    model_size: str = "small"
    model_hparam_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    vocab_size: int = 30522
    embedding_size: int | None = None
    do_lower_case: bool = True
    strip_accents: bool = True
    # Masking and the two losses.
    mask_prob: float = 0.15
    max_predictions_per_seq: int | None = None
    masking: str = "distinct"
    """How masked positions are drawn: "distinct" candidates, or "google" (with replacement, duplicates averaged)."""
    gen_weight: float = 1.0
    disc_weight: float = 50.0
    generator_hidden_size: float = 0.25
    generator_layers: float = 1.0
    temperature: float = 1.0
    disallow_correct: bool = False
    # Optimisation.
    optimizer: str = "adamw"
    learning_rate: float = 5e-4
    lr_decay_power: float = 1.0
    weight_decay_rate: float = 0.01
    num_warmup_steps: int = 10_000
    gradient_accumulation_steps: int = 1
    # Batches and lengths (train_batch_size is the global batch per optimizer step).
    train_batch_size: int = 128
    eval_batch_size: int = 128
    max_seq_length: int = 128
    # Schedule of the run.
    num_train_steps: int = 1_000_000
    num_eval_steps: int = 100
    eval_every_steps: int = 0
    """Evaluate on the held-out shards every this many steps while training (0: only with --do-eval)."""
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    log_every_steps: int = 100
    steps_per_execution: int = 1
    # Execution.
    precision: str = "float32"
    jit_compile: bool = True
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.model_size not in MODEL_SIZES:
            raise UserError(f"model_size must be one of {MODEL_SIZES}, got {self.model_size!r}.")
        if self.precision not in PRECISIONS:
            raise UserError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}.")
        if self.masking not in MASKING_MODES:
            raise UserError(f"masking must be one of {MASKING_MODES}, got {self.masking!r}.")
        if not 0.0 < self.mask_prob < 1.0:
            raise UserError(f"mask_prob must be in (0, 1), got {self.mask_prob}.")
        for name in ("generator_hidden_size", "generator_layers", "temperature", "learning_rate"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be > 0, got {getattr(self, name)}.")
        for name in ("gen_weight", "disc_weight", "weight_decay_rate", "lr_decay_power"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if self.gen_weight == 0 and self.disc_weight == 0:
            raise UserError("gen_weight and disc_weight cannot both be 0: nothing would be trained.")
        _check_positive_ints(
            self,
            "vocab_size",
            "train_batch_size",
            "eval_batch_size",
            "max_seq_length",
            "num_train_steps",
            "num_eval_steps",
            "save_checkpoints_steps",
            "keep_checkpoint_max",
            "log_every_steps",
            "steps_per_execution",
            "gradient_accumulation_steps",
        )
        if self.eval_every_steps < 0:
            raise UserError(f"eval_every_steps must be >= 0, got {self.eval_every_steps}.")
        if self.num_warmup_steps < 0:
            raise UserError(f"num_warmup_steps must be >= 0, got {self.num_warmup_steps}.")
        if self.max_seq_length < 3:
            raise UserError(f"max_seq_length must be at least 3, got {self.max_seq_length}.")
        if self.train_batch_size % self.gradient_accumulation_steps:
            raise UserError(
                f"train_batch_size ({self.train_batch_size}) must be divisible by "
                f"gradient_accumulation_steps ({self.gradient_accumulation_steps})."
            )
        if self.max_predictions_per_seq is not None and not (1 <= self.max_predictions_per_seq <= self.max_seq_length):
            raise UserError(
                f"max_predictions_per_seq must be in [1, max_seq_length={self.max_seq_length}], "
                f"got {self.max_predictions_per_seq}."
            )
        unknown = set(self.model_hparam_overrides) - _ENCODER_OVERRIDABLE
        if unknown:
            raise UserError(
                f"model_hparam_overrides has unknown keys {sorted(unknown)}; allowed: {sorted(_ENCODER_OVERRIDABLE)}."
            )
        # Building the encoder configs validates hidden/heads and the other architecture values.
        if self.embedding_size is not None:
            discriminator = self.discriminator_config()
            self.generator_config()
            if self.max_seq_length > discriminator.max_position_embeddings:
                raise UserError(
                    f"max_seq_length ({self.max_seq_length}) exceeds max_position_embeddings "
                    f"({discriminator.max_position_embeddings})."
                )

    # ----------------------------------------------------------------------------------------
    # Construction
    # ----------------------------------------------------------------------------------------
    @classmethod
    def from_size(cls, model_size: str, overrides: dict[str, Any] | None = None) -> PretrainingConfig:
        """The preset for ``model_size`` with ``overrides`` (Google hparam names) applied."""
        if model_size not in MODEL_SIZES:
            raise UserError(f"--model-size must be one of {MODEL_SIZES}, got {model_size!r}.")
        overrides = normalize_hparams(overrides or {})
        if overrides.get("model_size", model_size) != model_size:
            raise UserError(
                f"hparams set model_size={overrides['model_size']!r} but the model size is "
                f"{model_size!r}; pass one of them only."
            )
        values: dict[str, Any] = {"model_size": model_size, **_SIZE_PRESETS[model_size]}
        values.update(overrides)
        return cls._resolved(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PretrainingConfig:
        """A config from a stored dict (e.g. a model directory's config.json)."""
        return cls._resolved(normalize_hparams(values))

    @classmethod
    def _resolved(cls, values: dict[str, Any]) -> PretrainingConfig:
        unresolved = cls(**values)
        embedding_size = unresolved.embedding_size or _SIZE_PRESETS[unresolved.model_size]["embedding_size"]
        max_predictions = unresolved.max_predictions_per_seq or int(
            (unresolved.mask_prob + 0.005) * unresolved.max_seq_length
        )
        return dataclasses.replace(
            unresolved, embedding_size=embedding_size, max_predictions_per_seq=max(1, max_predictions)
        )

    def replace(self, **changes: Any) -> PretrainingConfig:
        """A copy with ``changes`` applied and validated (derived values are kept unless changed)."""
        return self._resolved({**self.to_dict(), **normalize_hparams(changes)})

    # ----------------------------------------------------------------------------------------
    # Encoder configs
    # ----------------------------------------------------------------------------------------
    def discriminator_config(self) -> ModelConfig:
        """The discriminator encoder, as Google's ``get_bert_config`` builds it.

        Overrides are applied, heads (H//64) and FFN (4H) derived from the resulting hidden size,
        and the overrides applied again, so an explicit head count or FFN width wins.
        """
        args: dict[str, Any] = dict(_ENCODER_SIZES[self.model_size])
        args.update(self.model_hparam_overrides)
        args["num_attention_heads"] = max(1, args["hidden_size"] // 64)
        args["intermediate_size"] = 4 * args["hidden_size"]
        args.update(self.model_hparam_overrides)
        return ModelConfig(vocab_size=self.vocab_size, embedding_size=self.embedding_size, **args)

    def generator_config(self) -> ModelConfig:
        """The generator encoder, as Google's ``get_generator_config`` derives it.

        Hidden size and layer count are scaled; heads and FFN are re-derived from the scaled hidden
        size (FFN or head overrides are not propagated); everything else is the discriminator's.
        """
        discriminator = self.discriminator_config()
        hidden = round(discriminator.hidden_size * self.generator_hidden_size)
        layers = round(discriminator.num_hidden_layers * self.generator_layers)
        if hidden < 1 or layers < 1:
            raise UserError(
                f"generator_hidden_size={self.generator_hidden_size} and generator_layers="
                f"{self.generator_layers} give a generator of hidden {hidden} and {layers} layers."
            )
        return dataclasses.replace(
            discriminator,
            hidden_size=hidden,
            num_hidden_layers=layers,
            intermediate_size=4 * hidden,
            num_attention_heads=max(1, hidden // 64),
        )

    # ----------------------------------------------------------------------------------------
    # Derived run quantities
    # ----------------------------------------------------------------------------------------
    @property
    def micro_batch_size(self) -> int:
        """Examples per forward/backward pass (the global batch split over accumulation steps)."""
        return self.train_batch_size // self.gradient_accumulation_steps

    @property
    def effective_warmup_steps(self) -> int:
        """Warmup length in optimizer steps (never more than the whole run)."""
        return min(self.num_warmup_steps, self.num_train_steps)

    # ----------------------------------------------------------------------------------------
    # JSON
    # ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PretrainingConfig:
        return cls.from_dict(_hparams_object(text, "config"))


_ENCODER_OVERRIDABLE = frozenset(
    field.name for field in dataclasses.fields(ModelConfig) if field.name not in ("vocab_size", "embedding_size")
)
_PRETRAINING_FIELDS = {field.name: field for field in dataclasses.fields(PretrainingConfig)}
_ENCODER_FIELD_TYPES = {field.name: field.type for field in dataclasses.fields(ModelConfig)}


def normalize_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """Map Google aliases to this project's names and reject unknown or unsupported keys."""
    normalized: dict[str, Any] = {}
    for key, value in hparams.items():
        key = _GOOGLE_ALIASES.get(key, key)
        if key in _GOOGLE_UNSUPPORTED:
            raise UserError(f"hparam {key!r} is not used by electra_tf: {_GOOGLE_UNSUPPORTED[key]}.")
        if key not in _PRETRAINING_FIELDS:
            close = difflib.get_close_matches(key, _PRETRAINING_FIELDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UserError(f"unknown hparam {key!r}.{hint} Known: {', '.join(sorted(_PRETRAINING_FIELDS))}.")
        value = _coerce(key, value, _PRETRAINING_FIELDS[key].type)
        if key == "model_hparam_overrides":
            value = {name: _coerce(name, item, _ENCODER_FIELD_TYPES.get(name, "")) for name, item in value.items()}
        normalized[key] = value
    return normalized


def _coerce(key: str, value: Any, expected: str) -> Any:
    """Check a JSON value against a field's annotated type; ints are accepted for floats.

    Unknown fields (empty ``expected``) pass through so the config's own checks can name them.
    """
    if not expected:
        return value
    if value is None and "None" in expected:
        return None
    if expected.startswith("int"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        if not ok and isinstance(value, float) and value.is_integer():
            value, ok = int(value), True
    elif expected == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        value = float(value) if ok else value
    elif expected == "bool":
        ok = isinstance(value, bool)
    elif expected == "str":
        ok = isinstance(value, str)
    else:  # dict[str, Any]
        ok = isinstance(value, dict)
    if not ok:
        raise UserError(f"hparam {key!r} must be of type {expected}, got {value!r}.")
    return value


def parse_hparams(text: str) -> dict[str, Any]:
    """Parse ``--hparams``: a JSON object, or the path of a file holding one (Google's format)."""
    text = text.strip()
    if not text:
        return {}
    source = "--hparams"
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise UserError(f"--hparams is neither a JSON object nor an existing file: {text!r}.")
        source, text = str(path), path.read_text(encoding="utf-8")
    return _hparams_object(text, source)


def _hparams_object(text: str, source: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object of hyperparameters; a :class:`UserError` naming ``source`` if not."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{source} is not valid JSON: {error}") from None
    if not isinstance(values, dict):
        raise UserError(f"{source} must be a JSON object of hyperparameter names to values.")
    return values


def _check_positive_ints(config: object, *names: str) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{name} must be a positive integer, got {value!r}.")


# ------------------------------------------------------------------------------------------------
# The one path of a run's config: preset → --hparams → flags → dataset → stored run.
# ------------------------------------------------------------------------------------------------
DATASET_SETTINGS = ("vocab_size", "do_lower_case", "strip_accents", "max_seq_length")
"""Settings that come from the dataset (its records were made with them)."""

CHANGEABLE_ON_RESUME = frozenset(
    {
        "num_train_steps",
        "learning_rate",
        "num_eval_steps",
        "eval_every_steps",
        "eval_batch_size",
        "save_checkpoints_steps",
        "keep_checkpoint_max",
        "log_every_steps",
        "steps_per_execution",
        "jit_compile",
        "precision",
    }
)
"""Settings a resumed run may change (the schedule of the run, not the model or the data)."""


@dataclasses.dataclass(frozen=True)
class DatasetSettings:
    """What a built dataset fixes in the config (:data:`DATASET_SETTINGS`), and where it is (for messages)."""

    location: Path
    values: dict[str, Any]


def resolve_run_config(
    model_size: str | None,
    hparams: Mapping[str, Any],
    flag_values: Mapping[str, Any],
    dataset: DatasetSettings | None = None,
    stored: PretrainingConfig | None = None,
) -> PretrainingConfig:
    """The config of a run, from every source in one order; each later source wins or refuses.

    ``model_size`` is ``None`` when ``--model-size`` was not given; ``flag_values`` holds only the
    config flags that were given. Without ``dataset`` and ``stored`` this only checks the user's
    settings (the CLI does so before TensorFlow starts).
    """
    # 1. Preset, 2. --hparams, 3. the flags given: the settings the user asked for.
    requested = normalize_hparams({**hparams, **flag_values})
    if dataset is None and stored is None:
        return PretrainingConfig.from_size(model_size or DEFAULT_MODEL_SIZE, requested)
    # 4. The dataset: its vocab size, normalisation and sequence length; a contradiction is refused.
    data_values = dataset.values if dataset is not None else {}
    for name, value in data_values.items():
        if name in requested and requested[name] != value:
            raise UserError(
                f"{name}={requested[name]!r} contradicts the dataset in {dataset.location}, which was built with "
                f"{name}={value!r}; rebuild the dataset or drop the override."
            )
    if stored is None:
        config = PretrainingConfig.from_size(model_size or DEFAULT_MODEL_SIZE, {**requested, **data_values})
    else:
        # 5. A stored run (resume): its own config, with only the settings it may change.
        config = _resumed(stored, requested, model_size)
        differing = {name: value for name, value in data_values.items() if getattr(config, name) != value}
        if differing:
            raise UserError(
                f"the dataset in {dataset.location} differs from the one the model was trained on "
                f"({', '.join(f'{k}={v!r} vs {getattr(config, k)!r}' for k, v in differing.items())})."
            )
    limit = config.discriminator_config().max_position_embeddings
    if config.max_seq_length > limit:
        raise UserError(
            f"the dataset's sequences have {config.max_seq_length} tokens but the model allows {limit} positions."
        )
    return config


def _resumed(stored: PretrainingConfig, requested: dict[str, Any], model_size: str | None) -> PretrainingConfig:
    """``stored``, with the requested settings it may change (:data:`CHANGEABLE_ON_RESUME`).

    Settings the user did not give come from the stored run, so resuming needs no flags repeated.
    A given setting that differs from the stored run and may not change is refused with the
    reason, since a checkpoint cannot be resumed into a different model or data handling.
    """
    old = stored.to_dict()
    conflicts = {
        name: value for name, value in requested.items() if value != old[name] and name not in CHANGEABLE_ON_RESUME
    }
    if model_size is not None and model_size != stored.model_size:
        conflicts["model_size"] = model_size
    if conflicts:
        details = "; ".join(f"{name}: stored {old[name]!r}, requested {value!r}" for name, value in conflicts.items())
        raise UserError(
            f"the model directory holds a run with other settings ({details}). Drop those flags to resume it "
            "(its settings are kept in config.json), or use a new --model-dir."
        )
    return stored.replace(**{name: value for name, value in requested.items() if name in CHANGEABLE_ON_RESUME})
