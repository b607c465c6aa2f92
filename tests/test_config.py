"""Size presets, derived generator sizes, overrides and error messages (docs/algorithm.md#sizes)."""

import json
import re

import pytest

from electra_tf import REPO_ROOT
from electra_tf.config import _GOOGLE_UNSUPPORTED, PretrainingConfig, parse_hparams
from electra_tf.errors import UserError

# (size, disc hidden/layers/heads/FFN, embedding, generator hidden/layers/heads/FFN, mask, N, lr, batch, seq, steps)
PRESETS = [
    ("small", (256, 12, 4, 1024), 128, (64, 12, 1, 256), 0.15, 19, 5e-4, 128, 128, 1_000_000),
    ("base", (768, 12, 12, 3072), 768, (256, 12, 4, 1024), 0.15, 79, 2e-4, 256, 512, 766_000),
    ("large", (1024, 24, 16, 4096), 1024, (256, 24, 4, 1024), 0.25, 130, 2e-4, 2048, 512, 400_000),
]


def _shape(model_config):
    return (
        model_config.hidden_size,
        model_config.num_hidden_layers,
        model_config.num_attention_heads,
        model_config.intermediate_size,
    )


@pytest.mark.parametrize(
    ("size", "disc", "embedding", "gen", "mask_prob", "max_predictions", "lr", "batch", "seq", "steps"),
    PRESETS,
)
def test_preset_matches_spec_table(size, disc, embedding, gen, mask_prob, max_predictions, lr, batch, seq, steps):
    config = PretrainingConfig.from_size(size)
    assert _shape(config.discriminator_config()) == disc
    assert _shape(config.generator_config()) == gen
    assert config.embedding_size == embedding
    assert config.generator_config().embedding_size == embedding  # the generator reads the shared embeddings
    assert config.mask_prob == mask_prob
    assert config.max_predictions_per_seq == max_predictions
    assert (config.learning_rate, config.train_batch_size, config.max_seq_length) == (lr, batch, seq)
    assert config.num_train_steps == steps
    # Shared by every preset (docs/algorithm.md#sizes, docs/algorithm.md#optimizer).
    assert (config.num_warmup_steps, config.weight_decay_rate, config.lr_decay_power) == (10_000, 0.01, 1.0)
    assert (config.gen_weight, config.disc_weight, config.temperature) == (1.0, 50.0, 1.0)
    encoder = config.discriminator_config()
    assert (encoder.hidden_act, encoder.layer_norm_eps, encoder.initializer_range) == ("gelu", 1e-12, 0.02)
    assert (encoder.hidden_dropout_prob, encoder.attention_probs_dropout_prob) == (0.1, 0.1)
    assert (encoder.max_position_embeddings, encoder.type_vocab_size) == (512, 2)


def test_small_plus_plus_generator_is_full_size():
    config = PretrainingConfig.from_size("small", {"generator_hidden_size": 1.0})
    assert _shape(config.generator_config()) == (256, 12, 4, 1024)


def test_model_overrides_rederive_heads_and_ffn_then_win():
    config = PretrainingConfig.from_size("small", {"model_hparam_overrides": {"hidden_size": 512}})
    assert _shape(config.discriminator_config()) == (512, 12, 8, 2048)
    explicit = PretrainingConfig.from_size(
        "small",
        {"model_hparam_overrides": {"hidden_size": 512, "num_attention_heads": 4, "intermediate_size": 100}},
    )
    assert _shape(explicit.discriminator_config()) == (512, 12, 4, 100)
    # FFN and head overrides are not propagated to the generator (Google's get_generator_config).
    assert _shape(explicit.generator_config()) == (128, 12, 2, 512)


def test_max_predictions_follows_overridden_length_unless_set():
    assert PretrainingConfig.from_size("small", {"max_seq_length": 512}).max_predictions_per_seq == 79
    assert PretrainingConfig.from_size("small", {"max_predictions_per_seq": 20}).max_predictions_per_seq == 20


def test_google_alias_and_int_for_float():
    config = PretrainingConfig.from_size("base", {"iterations_per_loop": 50, "learning_rate": 1})
    assert config.steps_per_execution == 50
    assert config.learning_rate == 1.0 and isinstance(config.learning_rate, float)


def test_json_round_trip_keeps_every_resolved_value():
    config = PretrainingConfig.from_size(
        "base",
        {"mask_prob": 0.2, "model_hparam_overrides": {"num_hidden_layers": 4}, "precision": "mixed_bfloat16"},
    )
    restored = PretrainingConfig.from_json(config.to_json())
    assert restored == config
    assert restored.discriminator_config() == config.discriminator_config()
    assert restored.generator_config() == config.generator_config()
    # The stored value is used as is, not re-derived from the preset.
    stored = json.loads(config.to_json())
    assert stored["max_predictions_per_seq"] == int((0.2 + 0.005) * 512)
    assert stored["embedding_size"] == 768


def test_replace_validates():
    config = PretrainingConfig.from_size("small")
    assert config.replace(vocab_size=31002).discriminator_config().vocab_size == 31002
    with pytest.raises(UserError, match="mask_prob"):
        config.replace(mask_prob=1.5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"model_hparam_overrides": {"hidden_size": 100, "num_attention_heads": 3}},
            "divisible by num_attention_heads",
        ),
        ({"mask_prob": 0.0}, r"mask_prob must be in \(0, 1\)"),
        ({"mask_prob": 1.0}, r"mask_prob must be in \(0, 1\)"),
        ({"learing_rate": 1e-3}, "unknown hparam 'learing_rate'. Did you mean 'learning_rate'"),
        ({"use_tpu": True}, "--strategy tpu"),
        ({"train_batch_size": "big"}, "train_batch_size' must be of type int"),
        ({"train_batch_size": 0}, "train_batch_size must be a positive integer"),
        ({"precision": "fp16"}, "precision must be one of"),
        ({"max_seq_length": 1024}, "exceeds max_position_embeddings"),
        (
            {"model_hparam_overrides": {"hidden_dropout_prob": 1.0}},
            r"hidden_dropout_prob must be in \[0, 1\)",
        ),
        ({"model_hparam_overrides": {"hidden_size": "wide"}}, "hidden_size' must be of type int"),
        ({"model_hparam_overrides": {"vocab_size": 10}}, "model_hparam_overrides has unknown keys"),
        ({"generator_hidden_size": 0.001}, "give a generator of hidden 0"),
        (
            {"train_batch_size": 100, "gradient_accumulation_steps": 3},
            "divisible by gradient_accumulation_steps",
        ),
        ({"gen_weight": 0.0, "disc_weight": 0.0}, "cannot both be 0"),
        ({"model_size": "base"}, "pass one of them only"),
    ],
)
def test_bad_values_end_with_one_clear_error(overrides, message):
    with pytest.raises(UserError, match=message):
        PretrainingConfig.from_size("small", overrides)


def test_unknown_size():
    with pytest.raises(UserError, match="--model-size must be one of"):
        PretrainingConfig.from_size("huge")


def test_parse_hparams_json_string_and_file(tmp_path):
    assert parse_hparams('{"mask_prob": 0.25}') == {"mask_prob": 0.25}
    assert parse_hparams("") == {}
    path = tmp_path / "hparams.json"
    path.write_text('{"train_batch_size": 64}')
    assert parse_hparams(str(path)) == {"train_batch_size": 64}
    with pytest.raises(UserError, match="neither a JSON object nor an existing file"):
        parse_hparams(str(tmp_path / "missing.json"))
    with pytest.raises(UserError, match="not valid JSON"):
        parse_hparams('{"mask_prob": }')
    with pytest.raises(UserError, match="must be a JSON object"):
        path.write_text("[1, 2]")
        parse_hparams(str(path))


def test_advice_for_googles_unused_hparams_names_real_flags():
    """Each message that says "use --flag" names a flag one of the project's commands defines."""
    sources = [*(REPO_ROOT / "electra_tf" / "cli").glob("*.py")]
    defined = {name for path in sources for name in re.findall(r'DEFINE_\w+\(\s*"([\w-]+)"', path.read_text())}
    assert {"data-dir", "model-dir", "tfrecords"} <= defined
    for key in _GOOGLE_UNSUPPORTED:
        with pytest.raises(UserError) as raised:
            PretrainingConfig.from_size("small", {key: 1})
        named = re.findall(r"--([a-z][\w-]*)", str(raised.value))
        assert set(named) <= defined, (key, str(raised.value))
    with pytest.raises(UserError, match=r"index_tfrecords --tfrecords GLOB .* run_pretraining\.py --data-dir DIR"):
        PretrainingConfig.from_size("small", {"pretrain_tfrecords": "gs://bucket/pretrain_data.tfrecord*"})
