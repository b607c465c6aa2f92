"""Reading a Hugging Face ELECTRA export back into TF1-named weights (for continued pretraining).

Accepted: an export directory holding ``discriminator/`` and ``generator/`` (what the exporter
writes), or a single discriminator directory (e.g. one downloaded from the Hub), in which case only
the shared embeddings and the discriminator are read. Which network a directory holds is read from
its ``config.json`` ``architectures``, never guessed from its name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import logging

from electra_tf.errors import UserError
from electra_tf.interop.hf_config import model_config_from_hf, network_of, read_hf_config
from electra_tf.interop.hf_names import from_hf_tensors
from electra_tf.interop.safetensors_io import read_weights
from electra_tf.interop.tokenizer_files import VOCAB_FILE
from electra_tf.model.networks import DISCRIMINATOR, GENERATOR, SHARED_EMBEDDINGS_SCOPE, ImportedWeights, Network


def is_hf_export(path: Path) -> bool:
    """Whether ``path`` looks like a Hugging Face export (pair directory or single model directory)."""
    return path.is_dir() and ((path / DISCRIMINATOR.name).is_dir() or (path / "config.json").is_file())


def read_hf_export(path: Path) -> ImportedWeights:
    """The TF1-named weights of the export at ``path`` (see the module docstring for the layouts)."""
    if (path / DISCRIMINATOR.name).is_dir():
        discriminator_dir, generator_dir = path / DISCRIMINATOR.name, path / GENERATOR.name
        if not generator_dir.is_dir():
            raise UserError(f"{path} has a {DISCRIMINATOR.name}/ but no {GENERATOR.name}/ directory.")
        weights = read_network(discriminator_dir, DISCRIMINATOR)
        generator = read_network(generator_dir, GENERATOR)
        _merge_shared_embeddings(weights, generator, path)
        return ImportedWeights(
            weights=weights | generator,
            networks=(DISCRIMINATOR, GENERATOR),
            description=f"Hugging Face export {path} (discriminator + generator)",
            vocab_file=_vocab_file(discriminator_dir),
        )
    return ImportedWeights(
        weights=read_network(path, DISCRIMINATOR),
        networks=(DISCRIMINATOR,),
        description=(
            f"Hugging Face discriminator {path} (the generator starts from fresh weights and shares the loaded "
            "embeddings)"
        ),
        vocab_file=_vocab_file(path),
    )


def read_network(directory: Path, expected: Network) -> dict[str, np.ndarray]:
    """The TF1-named weights of one Hugging Face model directory, which must hold ``expected``."""
    values = read_hf_config(directory)
    network = network_of(values, directory)
    if network is not expected:
        raise UserError(
            f"{directory} holds a {network.name} ({network.architecture}) where a {expected.name} "
            f"({expected.architecture}) is expected"
            + (
                "; pass the discriminator directory, or the export directory holding both."
                if expected is DISCRIMINATOR
                else "."
            )
        )
    return from_hf_tensors(
        read_weights(directory), network, model_config_from_hf(values, directory), f"{directory}/model.safetensors"
    )


def _merge_shared_embeddings(
    discriminator: dict[str, np.ndarray], generator: dict[str, np.ndarray], path: Path
) -> None:
    """Keep one copy of the shared embeddings; the two copies of a pair must at least have equal shapes.

    An export of this project holds identical copies. Different values mean the two models were
    changed separately after export; the discriminator's copy is used and a warning says so.
    """
    for name in [name for name in generator if name.startswith(SHARED_EMBEDDINGS_SCOPE + "/")]:
        ours, theirs = discriminator[name], generator.pop(name)
        if ours.shape != theirs.shape:
            raise UserError(
                f"the discriminator and generator in {path} cannot share {name}: shapes {list(ours.shape)} and "
                f"{list(theirs.shape)}."
            )
        if not np.array_equal(ours, theirs):
            logging.warning(
                "%s differs between the discriminator and generator in %s; using the discriminator's.", name, path
            )


def _vocab_file(directory: Path) -> Path | None:
    path = directory / VOCAB_FILE
    return path if path.is_file() else None
