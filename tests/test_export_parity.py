"""An export loads in Hugging Face transformers with every weight in place and computes ELECTRA's logits.

TF1-named random weights for a tiny config (embedding width 24, hidden sizes 32 and 16, so both
``embeddings_project`` layers exist) are exported; the loaded PyTorch models are compared with an
independent numpy re-statement of the forward pass (tests/export_reference.py) on a batch with two
segments and padding.
"""

import export_reference as ref
import numpy as np
import pytest
import torch
from transformers import ElectraForMaskedLM, ElectraForPreTraining

from electra_tf.interop.hf_export import export_weights
from electra_tf.interop.model_card import parameter_count
from electra_tf.model.networks import DISCRIMINATOR, GENERATOR

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    vocab = ref.default_vocab()
    config = ref.tiny_config(len(vocab))
    weights = ref.random_tf1_weights(config)
    out = export_weights(weights, config, vocab, tmp_path_factory.mktemp("export") / "out")
    return out, config, weights


def _load(model_class, directory):
    model, info = model_class.from_pretrained(directory, output_loading_info=True)
    return model.eval(), info


@pytest.mark.parametrize(
    "model_class, network", [(ElectraForPreTraining, "discriminator"), (ElectraForMaskedLM, "generator")]
)
def test_every_weight_loads_with_nothing_missing_or_unexpected(exported, model_class, network):
    out, _, _ = exported
    _, info = _load(model_class, out / network)
    assert info["missing_keys"] == set() or not info["missing_keys"]
    assert not info["unexpected_keys"]
    assert not info["mismatched_keys"]
    assert not info["error_msgs"]


def test_generator_output_layer_is_tied_to_the_shared_word_embeddings(exported):
    out, _, weights = exported
    generator, _ = _load(ElectraForMaskedLM, out / "generator")
    word_embeddings = generator.electra.embeddings.word_embeddings.weight
    assert generator.generator_lm_head.weight.data_ptr() == word_embeddings.data_ptr()
    np.testing.assert_array_equal(word_embeddings.detach().numpy(), weights["electra/embeddings/word_embeddings"])


@pytest.mark.parametrize(
    "model_class, network, reference",
    [
        (ElectraForPreTraining, "discriminator", ref.discriminator_logits),
        (ElectraForMaskedLM, "generator", ref.generator_logits),
    ],
)
def test_logits_match_the_reference_forward_pass(exported, model_class, network, reference):
    out, config, weights = exported
    ids, mask, segments = ref.batch(config.vocab_size)
    model, _ = _load(model_class, out / network)
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), token_type_ids=torch.tensor(segments)
        ).logits.numpy()
    expected = reference(weights, config, ids, mask, segments)
    real = mask == 1
    assert np.abs(expected[real]).max() > 1.0  # the weights are far from trivial
    np.testing.assert_allclose(logits[real], expected[real], atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(
    "model_class, network", [(ElectraForPreTraining, DISCRIMINATOR), (ElectraForMaskedLM, GENERATOR)]
)
def test_card_parameter_count_is_what_transformers_counts(exported, model_class, network):
    out, config, _ = exported
    model, _ = _load(model_class, out / network.name)
    encoder = config.discriminator_config() if network is DISCRIMINATOR else config.generator_config()
    assert parameter_count(network, encoder) == model.num_parameters()
