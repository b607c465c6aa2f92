#!/usr/bin/env python3
"""Layer-wise linear probes of exported discriminators: which layers carry part-of-speech information.

The downstream benchmark's frozen probe (``run_finetuning.py --freeze-encoder``) trains a softmax layer
on the discriminator's *last* hidden state with a learning rate and a step count. When it scores a
pretrained checkpoint below random init, two explanations compete: the pretrained features hold less
of what the task needs, or they are harder for a short gradient descent to use (a few dimensions with
much larger values than the rest). This script separates them. For every model and every layer
(0: the embeddings' output, then each Transformer layer) it fits a closed-form ridge probe: least
squares from the hidden state at each word's first piece, standardised on the training words, onto the
one-hot UPOS tag. It has no learning rate and no step count, so a difference between models or layers
is in the features, not in the optimisation. It also prints how uneven the last layer is: the mean
absolute value of its three largest dimensions against its median dimension.

Models are Hugging Face directories (``export_to_hf.py`` output, its root or ``discriminator/``), run
with ``transformers`` in PyTorch; ``--random-init DIR`` adds the architecture of DIR with fresh weights.

    python bench/probe_layers.py --data-dir ../shared/data/labeled/ud_es_ancora \\
        --random-init EXPORT_FINAL --model step625=EXPORT_625 --model step2500=EXPORT_FINAL
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from hf_finetuning import discriminator_dir
from transformers import AutoTokenizer, ElectraConfig, ElectraModel

from electra_tf.finetune.conllu import read_conllu
from electra_tf.finetune.examples import TaggedSentence

TRAIN_FILE, TEST_FILE = "es_ancora-ud-dev.conllu", "es_ancora-ud-test.conllu"
"""AnCora as the shared data ships it (dev and test only): the probe trains on dev, as the benchmark does."""


def load_encoder(model_dir: Path, random_init: bool, seed: int) -> ElectraModel:
    """The discriminator's encoder, or (``random_init``) its architecture with weights drawn from ``seed``."""
    torch.manual_seed(seed)
    if random_init:
        return ElectraModel(ElectraConfig.from_pretrained(str(model_dir))).eval()
    return ElectraModel.from_pretrained(str(model_dir)).eval()


def first_piece_states(
    encoder: ElectraModel, tokenizer, sentences: list[TaggedSentence], tags: dict[str, int], max_length: int
) -> tuple[list[np.ndarray], np.ndarray]:
    """Every layer's hidden states at each word's first piece, and the words' tag ids (words cut off by
    ``max_length`` are left out)."""
    per_layer: list[list[np.ndarray]] = []
    labels: list[int] = []
    for sentence in sentences:
        encoded = tokenizer(
            sentence.words, is_split_into_words=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        word_ids = encoded.word_ids()
        firsts = [i for i, word in enumerate(word_ids) if word is not None and word != word_ids[i - 1]]
        with torch.no_grad():
            states = encoder(**encoded, output_hidden_states=True).hidden_states
        per_layer = per_layer or [[] for _ in states]
        for layer, state in zip(per_layer, states, strict=True):
            layer.append(state[0, firsts].numpy())
        labels += [tags[sentence.labels[word_ids[i]]] for i in firsts]
    return [np.concatenate(layer) for layer in per_layer], np.array(labels)


def ridge_accuracy(
    train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray, ridge: float
) -> float:
    """Test accuracy of the least-squares map (with ``ridge`` on the weights) from standardised features
    to one-hot labels."""
    mean, scale = train.mean(0), train.std(0) + 1e-6

    def design(x: np.ndarray) -> np.ndarray:
        return np.hstack([(x - mean) / scale, np.ones((len(x), 1))])

    a = design(train)
    targets = np.eye(int(max(train_labels.max(), test_labels.max())) + 1)[train_labels]
    weights = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ targets)
    return float(((design(test) @ weights).argmax(1) == test_labels).mean())


def unevenness(last_layer: np.ndarray) -> dict[str, float]:
    """Mean |value| of the last layer's three largest dimensions and of its median dimension."""
    by_dimension = np.sort(np.abs(last_layer).mean(0))[::-1]
    return {"top3_dims_mean_abs": float(by_dimension[:3].mean()), "median_dim_mean_abs": float(np.median(by_dimension))}


def probe_model(encoder: ElectraModel, tokenizer, data: dict, ridge: float, max_length: int) -> dict:
    """Per-layer ridge accuracies and the last layer's unevenness of one model."""
    train, train_labels = first_piece_states(encoder, tokenizer, data["train"], data["tags"], max_length)
    test, test_labels = first_piece_states(encoder, tokenizer, data["test"], data["tags"], max_length)
    return {
        "layer_accuracy": [
            ridge_accuracy(x, train_labels, y, test_labels, ridge) for x, y in zip(train, test, strict=True)
        ],
        "train_words": len(train_labels),
        "test_words": len(test_labels),
        **unevenness(train[-1]),
    }


def markdown(results: dict[str, dict]) -> str:
    """Models as rows, layers as columns (test accuracy in percent), then the last layer's unevenness."""
    layers = len(next(iter(results.values()))["layer_accuracy"])
    lines = [
        "| model | " + " | ".join(["emb", *(str(i) for i in range(1, layers))]) + " | last layer: top-3 / median dim |",
        "|---|" + "---:|" * (layers + 1),
    ]
    for name, result in results.items():
        cells = [f"{100 * accuracy:.1f}" for accuracy in result["layer_accuracy"]]
        spread = f"{result['top3_dims_mean_abs']:.2f} / {result['median_dim_mean_abs']:.2f}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {spread} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, required=True, help=f"Folder with {TRAIN_FILE} and {TEST_FILE}.")
    parser.add_argument("--model", action="append", default=[], help="NAME=DIR, repeatable: an exported model.")
    parser.add_argument("--random-init", type=Path, help="Add random init of this export's architecture.")
    parser.add_argument("--train-sentences", type=int, default=1000, help="First N sentences of the dev file.")
    parser.add_argument("--test-sentences", type=int, default=600, help="First N sentences of the test file.")
    parser.add_argument("--ridge", type=float, default=1.0, help="L2 penalty of the least-squares probe.")
    parser.add_argument("--max-length", type=int, default=128, help="Pieces per sentence, [CLS] and [SEP] included.")
    parser.add_argument("--seed", type=int, default=1, help="Seed of the random-init weights.")
    parser.add_argument("--output", type=Path, help="Also write the results as JSON here.")
    args = parser.parse_args(argv)
    if not args.model and not args.random_init:
        parser.error("name at least one --model NAME=DIR or --random-init DIR")
    if any("=" not in spec for spec in args.model):
        parser.error("--model takes NAME=DIR")
    return args


def main(argv: list[str] | None = None) -> dict[str, dict]:
    args = parse_args(argv)
    train = read_conllu(args.data_dir / TRAIN_FILE)[: args.train_sentences]
    test = read_conllu(args.data_dir / TEST_FILE)[: args.test_sentences]
    data = {
        "train": train,
        "test": test,
        "tags": {tag: i for i, tag in enumerate(sorted({t for s in train + test for t in s.labels}))},
    }
    models = [("random init", discriminator_dir(args.random_init), True)] if args.random_init else []
    models += [(name, discriminator_dir(Path(path)), False) for name, path in (s.split("=", 1) for s in args.model)]
    results = {}
    for name, model_dir, random_init in models:
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        results[name] = probe_model(
            load_encoder(model_dir, random_init, args.seed), tokenizer, data, args.ridge, args.max_length
        )
        print(f"{name}: {' '.join(f'{100 * a:.1f}' for a in results[name]['layer_accuracy'])}", flush=True)
    print(f"\nRidge probe, UPOS test accuracy (%) by layer ({len(train)} dev sentences train, {len(test)} test):\n")
    print(markdown(results))
    if args.output:
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return results


if __name__ == "__main__":
    main()
