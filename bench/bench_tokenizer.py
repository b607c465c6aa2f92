#!/usr/bin/env python3
"""Tokenizer parity with Hugging Face and throughput, per normalisation setting.

For each setting (lower-case + strip accents, lower-case keeping accents, cased) and each text
file it prints: the share of lines whose ids equal those of Hugging Face's
``BertWordPieceTokenizer`` (same vocab and flags), our throughput in a ``tf.data`` pipeline, the
throughput of tensorflow-text's ``FastBertTokenizer`` used directly (the speed we keep; it is not
exact), Hugging Face's ``encode_batch`` throughput, and the share of lines our tokenizer sends down
its exact path. Throughput is the median of ``--runs`` runs, in MB of UTF-8 text per second, using
every core of the machine.

    python bench/bench_tokenizer.py                       # default vocab, 20 MB + the biomedical fixture
    python bench/bench_tokenizer.py --vocab ../shared/data/vocab/beto_cased_vocab.txt --megabytes 0
    python bench/bench_tokenizer.py --corpus MY_TEXT.txt --fixture sample_corpus/salud_y_clinica.txt

The default texts are the project's shared Spanish corpora in ``../shared/data`` beside the
checkout (its CI has them); elsewhere pass ``--corpus`` and ``--fixture``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text
from tokenizers import BertWordPieceTokenizer

from electra_tf import DEFAULT_VOCAB_FILE, REPO_ROOT
from electra_tf.tokenization import MAX_CHARS_PER_WORD, Tokenizer, Vocab

DATA = REPO_ROOT.parent / "shared" / "data"
SETTINGS = {"lower+strip": (True, True), "lower-keep": (True, False), "cased": (False, False)}


def read_lines(path: Path, megabytes: float) -> list[str]:
    """Non-blank lines from the start of ``path``, up to ``megabytes`` of UTF-8 (0: the whole file)."""
    lines, size = [], 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.strip():
                lines.append(line)
                size += len(line.encode("utf-8"))
                if megabytes and size >= megabytes * 1e6:
                    break
    return lines


def tf_text_as_is(vocab: Vocab, do_lower_case: bool, strip_accents: bool):
    """tensorflow-text's FastBertTokenizer on its own (the baseline we measured 99.6% parity for)."""
    tokenizer = tf_text.FastBertTokenizer(
        vocab=list(vocab.tokens),
        token_out_type=tf.int32,
        max_bytes_per_word=4 * MAX_CHARS_PER_WORD,
        lower_case_nfd_strip_accents=do_lower_case and strip_accents,
    )

    def tokenize(texts: tf.Tensor) -> tf.RaggedTensor:
        if do_lower_case and not strip_accents:
            texts = tf.strings.lower(texts, encoding="utf-8")
        return tokenizer.tokenize(texts)

    return tokenize


def tf_data_seconds(tokenize, lines: list[str], batch_size: int) -> float:
    """Seconds to tokenize ``lines`` in a parallel tf.data pipeline (ids counted in-graph)."""
    dataset = (
        tf.data.Dataset.from_tensor_slices(lines)
        .batch(batch_size)
        .map(lambda texts: tf.size(tokenize(texts).flat_values), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
    start = time.perf_counter()
    total = dataset.reduce(tf.constant(0), lambda count, n: count + n)
    total.numpy()
    return time.perf_counter() - start


def hf_seconds(hf: BertWordPieceTokenizer, lines: list[str], batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(lines), batch_size):
        hf.encode_batch(lines[i : i + batch_size], add_special_tokens=False)
    return time.perf_counter() - start


def median_rate(megabytes: float, runs: int, seconds, *args) -> float:
    """MB/s from the median of ``runs`` calls of ``seconds(*args)``, after one warm-up call."""
    seconds(*args)  # tracing, thread pools
    return megabytes / statistics.median(seconds(*args) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", default=str(DEFAULT_VOCAB_FILE), help="vocab.txt to use")
    parser.add_argument("--corpus", default=str(DATA / "corpus" / "es_general_100mb.txt"), help="general text")
    parser.add_argument("--megabytes", type=float, default=20, help="MB read from --corpus (0: all of it)")
    parser.add_argument("--fixture", default=str(DATA / "fixtures" / "es_biomed_fixture_1mb.txt"), help="2nd text")
    parser.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated: " + ",".join(SETTINGS))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    for flag, path in (("--corpus", args.corpus), ("--fixture", args.fixture)):
        if not Path(path).is_file():
            parser.error(f"{flag} {path} not found; pass {flag} with a UTF-8 text file (one line per paragraph).")

    vocab = Vocab.load(args.vocab)
    texts = {Path(args.corpus).name: read_lines(Path(args.corpus), args.megabytes)}
    texts[Path(args.fixture).name] = read_lines(Path(args.fixture), 0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.2f} at start; tensorflow {tf.__version__}"
    )
    print(f"vocab: {args.vocab} ({len(vocab)} entries); batch {args.batch_size}; median of {args.runs} runs")
    header = (
        f"{'setting':12} {'text':28} {'lines':>8} {'MB':>6} {'identical':>10} {'exact path':>10} "
        f"{'ours MB/s':>10} {'tf-text MB/s':>12} {'HF MB/s':>8}"
    )
    print(header)
    print("-" * len(header))
    for name in args.settings.split(","):
        do_lower_case, strip_accents = SETTINGS[name]
        ours = Tokenizer(vocab, do_lower_case, strip_accents)
        baseline = tf_text_as_is(vocab, do_lower_case, strip_accents)
        hf = BertWordPieceTokenizer(args.vocab, lowercase=do_lower_case, strip_accents=strip_accents)
        for text_name, lines in texts.items():
            megabytes = sum(len(line.encode("utf-8")) for line in lines) / 1e6
            expected = [encoding.ids for encoding in hf.encode_batch(lines, add_special_tokens=False)]
            got = ours.tokenize(lines).to_list()
            identical = sum(a == b for a, b in zip(got, expected, strict=True)) / len(lines)
            exact_path = 1 - ours.fast_path_lines(lines).numpy().mean()
            ours_rate = median_rate(megabytes, args.runs, tf_data_seconds, ours.tokenize, lines, args.batch_size)
            base_rate = median_rate(megabytes, args.runs, tf_data_seconds, baseline, lines, args.batch_size)
            hf_rate = median_rate(megabytes, args.runs, hf_seconds, hf, lines, args.batch_size)
            print(
                f"{name:12} {text_name:28} {len(lines):8d} {megabytes:6.1f} {100 * identical:9.3f}% "
                f"{100 * exact_path:9.2f}% {ours_rate:10.1f} {base_rate:12.1f} {hf_rate:8.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
