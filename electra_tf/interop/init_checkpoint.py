"""Initialising a pretrainer from existing weights, for continued pretraining (``--init-checkpoint``).

The source is a Hugging Face export (``discriminator/`` + ``generator/``, or one discriminator
directory) or a Google TF1 checkpoint (a directory or a prefix). Only model weights are taken: the
optimizer starts fresh (a new warmup) and the step counter stays at 0. The source must have been
trained with the same vocab as the new run's data, and every shape must match the model; anything
else is refused with one message naming the problem, before any variable is changed.
"""

from __future__ import annotations

from pathlib import Path

from absl import logging

from electra_tf.errors import UserError
from electra_tf.interop.google_import import read_google_checkpoint
from electra_tf.interop.hf_import import is_hf_export, read_hf_export
from electra_tf.interop.hf_names import check_weights
from electra_tf.model.networks import NETWORKS, SHARED_EMBEDDINGS_SCOPE, ImportedWeights, encoder_config
from electra_tf.model.networks import tf1_variable_shapes as expected_shapes
from electra_tf.model.pretrainer import ElectraPretrainer
from electra_tf.model.tf1_names import assign_tf1_weights
from electra_tf.tokenization import Vocab


def read_init_source(path: Path) -> ImportedWeights:
    """The TF1-named weights at ``path``: a Hugging Face export or a Google TF1 checkpoint."""
    if is_hf_export(path):
        return read_hf_export(path)
    if path.is_dir() and not any(path.glob("*.index")):
        raise UserError(
            f"{path} is neither a Hugging Face export (no config.json or discriminator/) nor a TF checkpoint "
            "directory (no *.index file)."
        )
    if not path.is_dir() and not Path(f"{path}.index").is_file():
        raise UserError(
            f"--init-checkpoint {path} not found: give a Hugging Face export directory, a discriminator directory, "
            "or a TF checkpoint (directory or prefix such as DIR/model.ckpt-1000000)."
        )
    return read_google_checkpoint(path)


def check_same_vocab(source: ImportedWeights, vocab: Vocab) -> None:
    """Refuse a source trained with another vocab: its embedding rows would mean other tokens."""
    if source.vocab_file is None:
        logging.warning(
            "%s comes without a vocab.txt, so it cannot be checked that it was trained with the same vocab as the "
            "data (only the vocab size is checked).",
            source.description,
        )
        return
    theirs = Vocab.load(source.vocab_file)
    if theirs.tokens == vocab.tokens:
        return
    if len(theirs) != len(vocab):
        difference = f"it has {len(theirs)} tokens, the training data's vocab has {len(vocab)}"
    else:
        index = next(i for i, (a, b) in enumerate(zip(theirs.tokens, vocab.tokens, strict=True)) if a != b)
        difference = f"id {index} is {theirs.tokens[index]!r} there and {vocab.tokens[index]!r} in the training data"
    raise UserError(
        f"{source.vocab_file} is not the vocab the training data was built with ({difference}). Rebuild the dataset "
        f"with build_pretraining_dataset.py --vocab-file {source.vocab_file}."
    )


def check_fits_model(source: ImportedWeights, model: ElectraPretrainer) -> None:
    """Refuse a source whose networks are shaped differently from the model's (name, both shapes).

    Variables the model lacks (a deeper source model) are refused too: dropping layers silently
    would not be continued pretraining of the same model.
    """
    for network in source.networks:
        expected = expected_shapes(network, encoder_config(model.config, network))
        check_weights(source.weights, expected, source.description)
        scopes = (f"{network.encoder_scope}/", f"{network.head_scope}/")
        extra = [name for name in source.weights if name.startswith(scopes) and name not in expected]
        extra = [name for name in extra if not name.startswith(SHARED_EMBEDDINGS_SCOPE + "/")]
        if extra:
            raise UserError(
                f"{source.description} has {len(extra)} {network.name} variable(s) the model lacks, e.g. {extra[0]}: "
                "it is a bigger model (check --model-size and --hparams against the source model)."
            )


def initialise_from(model: ElectraPretrainer, path: Path, vocab: Vocab) -> ImportedWeights:
    """Assign the weights at ``path`` to ``model`` (see the module docstring); returns what was read.

    ``vocab`` is the vocab of the run's training data. Networks the source lacks (the generator of a
    single discriminator directory) keep their fresh initialisation and use the loaded embeddings.
    """
    path = Path(path)
    source = read_init_source(path)
    check_same_vocab(source, vocab)
    check_fits_model(source, model)
    count = assign_tf1_weights(model, source.weights, source.networks)
    fresh = [network.name for network in NETWORKS if network not in source.networks]
    logging.info(
        "Initialised %d variables from %s. Starting fresh: %s.",
        count,
        source.description,
        ", ".join([*(f"the {name} (encoder and head)" for name in fresh), "optimizer state (new warmup), step 0"]),
    )
    return source
