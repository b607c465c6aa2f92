"""Small fine-tuning data sets, vocabs and pretrained models that tests write themselves (seconds on a CPU).

The tagging set is learnable from the word alone (names are PER, cities LOC), the classification
set from one cue word, so a few steps of training visibly lower the loss.
"""

from __future__ import annotations

import random
from pathlib import Path

import tensorflow as tf
from conftest import BETO_LAYOUT

from electra_tf.config import PretrainingConfig
from electra_tf.interop.hf_export import export_model_dir
from electra_tf.model.masking import SpecialIds
from electra_tf.model.pretrainer import ElectraPretrainer
from electra_tf.model_dir import ModelDirectory
from electra_tf.optimization import create_optimizer
from electra_tf.tokenization import Vocab

NAMES = ["juan", "maría", "pedro", "ana", "lucía", "carlos"]
CITIES = ["madrid", "lima", "quito", "sevilla", "bogotá", "caracas"]
FILLER = ["el", "la", "de", "en", "vive", "trabaja", "con", "y", "casa", "ciudad", "muy", "grande"]
CUES = {"positivo": ["bueno", "excelente", "feliz"], "negativo": ["malo", "terrible", "triste"]}

TINY_ARCHITECTURE = {
    "embedding_size": 16,
    "model_hparam_overrides": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 128,
    },
}
"""``--hparams`` architecture names for a random-init tiny encoder (2 layers, hidden 32)."""


def write_vocab(path: Path) -> Path:
    """A vocab with BETO's special-token layout ([MASK] = 0, [PAD] = 1) and every fixture word."""
    words = sorted({*NAMES, *CITIES, *FILLER, *(word for cue in CUES.values() for word in cue)})
    path.write_text("".join(f"{token}\n" for token in [*BETO_LAYOUT, *words, "##s"]), encoding="utf-8")
    return path


def tagged_sentences(count: int, seed: int, length: tuple[int, int] = (3, 12)) -> list[list[tuple[str, str]]]:
    """Sentences of ``(word, tag)``: names B-PER, cities B-LOC, the rest O."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(count):
        sentence = []
        for _ in range(rng.randint(*length)):
            draw = rng.random()
            if draw < 0.15:
                sentence.append((rng.choice(NAMES).capitalize(), "B-PER"))
            elif draw < 0.3:
                sentence.append((rng.choice(CITIES).capitalize(), "B-LOC"))
            else:
                sentence.append((rng.choice(FILLER), "O"))
        sentences.append(sentence)
    return sentences


def write_column_file(path: Path, sentences: list[list[tuple[str, str]]]) -> Path:
    """CoNLL-style ``word tag`` lines, a blank line after each sentence."""
    path.write_text("".join("".join(f"{w} {t}\n" for w, t in s) + "\n" for s in sentences), encoding="utf-8")
    return path


def write_tagging_task(folder: Path, sizes: tuple[int, int, int] = (120, 30, 30)) -> Path:
    """``train.txt``, ``dev.txt``, ``test.txt`` of the generic ``tagging`` task."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, count) in enumerate(zip(("train.txt", "dev.txt", "test.txt"), sizes, strict=True)):
        write_column_file(folder / name, tagged_sentences(count, seed))
    return folder


def write_classification_task(folder: Path, sizes: tuple[int, int, int] = (120, 30, 30)) -> Path:
    """``train.tsv``, ``dev.tsv``, ``test.tsv`` (``text``, ``label``): the cue word decides the label."""
    folder.mkdir(parents=True, exist_ok=True)
    for seed, (name, count) in enumerate(zip(("train.tsv", "dev.tsv", "test.tsv"), sizes, strict=True)):
        rng = random.Random(seed)
        rows = ["text\tlabel"]
        for _ in range(count):
            label = rng.choice(sorted(CUES))
            words = [rng.choice(FILLER) for _ in range(rng.randint(2, 8))]
            words.insert(rng.randint(0, len(words)), rng.choice(CUES[label]))
            rows.append(f"{' '.join(words)}\t{label}")
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def write_pretrained_model(root: Path, vocab_file: Path, export: bool = False) -> Path:
    """A tiny electra_tf model directory (config, vocab, one checkpoint of freshly initialised weights), as
    ``run_pretraining.py`` leaves one; with ``export``, its Hugging Face export (``root/hf``) instead."""
    vocab = Vocab.load(vocab_file)
    config = PretrainingConfig.from_size(
        "small",
        {
            **TINY_ARCHITECTURE,
            "vocab_size": len(vocab),
            "generator_hidden_size": 0.5,
            "max_seq_length": 64,
            "do_lower_case": True,
            "num_train_steps": 100,
        },
    )
    model = ElectraPretrainer(config, SpecialIds.from_vocab(vocab))
    optimizer = create_optimizer(config)
    optimizer.build(model.trainable_variables)
    directory = ModelDirectory(root / "model")
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=model, optimizer=optimizer), str(directory.checkpoints), max_to_keep=1
    )
    optimizer.iterations.assign(100)
    manager.save(checkpoint_number=100)
    directory.save_config(config)
    directory.save_vocab(vocab_file)
    return export_model_dir(directory.path, root / "hf") if export else directory.path


UPOS = {"el": "DET", "la": "DET", "de": "ADP", "en": "ADP", "con": "ADP", "vive": "VERB", "trabaja": "VERB"}
UPOS |= {"y": "CCONJ", "casa": "NOUN", "ciudad": "NOUN", "muy": "ADV", "grande": "ADJ"}


def write_conllu(path: Path, count: int, seed: int) -> None:
    """A CoNLL-U file: names and cities PROPN, the other words their part of speech."""
    lines = []
    for sentence in tagged_sentences(count, seed):
        for index, (word, tag) in enumerate(sentence, start=1):
            upos = "PROPN" if tag != "O" else UPOS[word]
            lines.append("\t".join([str(index), word, word.lower(), upos, "_", "_", "0", "root", "_", "_"]))
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
