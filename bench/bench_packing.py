#!/usr/bin/env python3
"""How many corpus tokens each ``--packing`` mode drops, and how full its examples are.

A counting run, not a timed one: for every corpus, sequence length and packing mode it builds the
dataset with the real command line (one after the other, ``--num-processes 1`` by default) and
reads the counts from ``dataset_info.json``:

* dropped: corpus tokens that no example holds (Google's packing cuts the part of a line beyond
  its example; carry packing splits it and carries it into the next example);
* fill: real tokens (``[CLS]``/``[SEP]`` included) per example position, the share of the
  compute that is not padding;
* examples: how many examples the corpus gives (training and held out together).

    python bench/bench_packing.py --corpus ../shared/data/corpus/es_general_100mb.txt \\
        --corpus ../shared/data/corpus/es_biomed_clinical.txt --max-seq-length 128 --max-seq-length 512
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODES = ("google", "carry")


def build(corpus: Path, max_seq_length: int, packing: str, processes: int, folder: Path) -> dict:
    """Build ``corpus`` (a single file) with the command line; its ``dataset_info.json``."""
    output = folder / f"{corpus.stem}-{max_seq_length}-{packing}"
    command = [
        sys.executable,
        str(REPO_ROOT / "build_pretraining_dataset.py"),
        f"--corpus-dir={corpus.parent}",
        f"--file-pattern={corpus.name}",
        f"--output-dir={output}",
        f"--max-seq-length={max_seq_length}",
        f"--packing={packing}",
        f"--num-processes={processes}",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"build failed: {' '.join(command)}\n{result.stderr[-3000:]}")
    info = json.loads((output / "dataset_info.json").read_text())
    shutil.rmtree(output)
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, action="append", required=True, help="A corpus file (repeatable).")
    parser.add_argument("--max-seq-length", type=int, action="append", help="Repeatable; default 128 and 512.")
    parser.add_argument("--num-processes", type=int, default=1)
    args = parser.parse_args()
    print("| corpus | max_seq_length | packing | corpus tokens | dropped | dropped share | examples | fill |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for corpus in args.corpus:
            for length in args.max_seq_length or [128, 512]:
                for packing in MODES:
                    info = build(corpus.resolve(), length, packing, args.num_processes, Path(folder))
                    stats = info["stats"]
                    examples = stats["examples_train"] + stats["examples_eval"]
                    fill = (stats["example_tokens_train"] + stats["example_tokens_eval"]) / (examples * length)
                    print(
                        f"| {corpus.name} | {length} | {packing} | {stats['tokens']:,} | {stats['dropped_tokens']:,} "
                        f"| {100 * stats['dropped_token_share']:.2f}% | {examples:,} | {100 * fill:.1f}% |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
