"""Fine-tuning hyperparameters: the recipe by size, then --hparams (Google's names), then flags."""

import pytest

from electra_tf.config import ModelConfig, PretrainingConfig
from electra_tf.errors import UserError
from electra_tf.finetune.hparams import resolve_hparams, split_hparams
from electra_tf.finetune.recipe import recipe_size


@pytest.mark.parametrize(("size", "rate", "decay"), [("small", 3e-4, 0.8), ("base", 1e-4, 0.8), ("large", 5e-5, 0.9)])
def test_the_recipe_follows_the_model_size(size, rate, decay):
    hparams = resolve_hparams(size, {}, {})
    assert (hparams.learning_rate, hparams.layerwise_lr_decay) == (rate, decay)
    assert (hparams.num_train_epochs, hparams.train_batch_size, hparams.max_seq_length) == (3, 32, 128)
    assert (hparams.warmup_proportion, hparams.weight_decay_rate) == (0.1, 0.01)


def test_a_flag_beats_hparams_which_beat_the_recipe():
    hparams = resolve_hparams("base", {"learning_rate": 2e-5, "num_train_epochs": 5.0}, {"num_train_epochs": 2})
    assert hparams.learning_rate == 2e-5 and hparams.num_train_epochs == 2
    assert resolve_hparams("base", {"num_train_epochs": 5.0}, {}).num_train_epochs == 5


def test_the_size_is_the_starting_points_unless_given():
    base = PretrainingConfig.from_size("base").discriminator_config()
    assert recipe_size(None, base) == ("base", None)
    assert recipe_size("large", base) == ("large", None)
    odd = ModelConfig(hidden_size=64, num_hidden_layers=3, num_attention_heads=2)
    size, note = recipe_size(None, odd)
    assert size == "small" and "matches no preset" in note


def test_architecture_names_go_to_the_starting_point_and_unknown_names_are_refused():
    overrides = {"model_hparam_overrides": {"hidden_dropout_prob": 0}}
    settings, architecture = split_hparams({"learning_rate": 1e-4, **overrides})
    assert settings == {"learning_rate": 1e-4} and architecture == overrides
    with pytest.raises(UserError, match=r"unknown fine-tuning hparam 'learning_rat'.*did you mean 'learning_rate'"):
        split_hparams({"learning_rat": 1e-4})
    with pytest.raises(UserError, match="num_train_epochs must be an integer"):
        resolve_hparams("small", {"num_train_epochs": 2.5}, {})
    with pytest.raises(UserError, match="layerwise_lr_decay must be in"):
        resolve_hparams("small", {"layerwise_lr_decay": 0}, {})


def test_freeze_encoder_is_off_by_default_and_must_be_a_boolean():
    assert resolve_hparams("small", {}, {}).freeze_encoder is False
    assert resolve_hparams("small", {"freeze_encoder": False}, {"freeze_encoder": True}).freeze_encoder is True
    with pytest.raises(UserError, match="freeze_encoder must be true or false"):
        resolve_hparams("small", {"freeze_encoder": 1}, {})
