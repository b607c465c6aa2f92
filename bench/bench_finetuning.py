#!/usr/bin/env python3
"""Fine-tuning throughput: electra_tf's ``run_finetuning.py`` next to Hugging Face PyTorch, in one run.

On one exported checkpoint (an ``export_to_hf.py`` output directory, which both sides load), one
task and its data, the same first ``--max-train-examples`` training examples, batch size,
``--max-seq-length``, epochs, learning rate, layer-wise decay and seed, it runs one after another,
each in its own process:

- electra_tf ``run_finetuning.py`` in float32, float32 with ``--jit-compile`` (XLA) and
  ``mixed_bfloat16`` (``--configs``);
- ``bench/hf_finetuning.py`` (PyTorch, float32) on 1 thread and on all the CPUs (``--torch-threads``).

Both sides train on the same batches in the same order (``finetune/buckets.py``'s plan from
``(seed, epoch)``, padded to the same bucket lengths) and report the training throughput the same
way (``finetune/throughput.py``): model inputs (tagging windows) per second of the training steps
alone, over all epochs and over the epochs after the first (the first traces and compiles). The
table also shows each run's dev and test score, its wall time (start-up, data preparation and
evaluation included) and the load average before and after it, because other jobs may share the
machine.

    python bench/bench_finetuning.py --model-dir EXPORT --task conll2002_ner --data-dir DATA \\
        --max-train-examples 1024 --epochs 2 --output bench_finetuning.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from machine import cpu_model
from stages import REPO_ROOT, hf_finetuning_command

from electra_tf.atomic_io import write_json_atomically

ELECTRA_TF_CONFIGS = {
    "float32": ("--precision=float32", "--nojit-compile"),
    "float32+xla": ("--precision=float32", "--jit-compile"),
    "mixed_bfloat16": ("--precision=mixed_bfloat16", "--nojit-compile"),
    "mixed_bfloat16+xla": ("--precision=mixed_bfloat16", "--jit-compile"),
}


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every run shares."""

    model_dir: Path
    task: str
    data_dir: Path
    max_train_examples: int
    batch_size: int
    max_seq_length: int
    epochs: int
    learning_rate: float
    layerwise_lr_decay: float
    seed: int


@dataclasses.dataclass(frozen=True)
class Run:
    """One row of the table: a name and the command that writes its results JSON to ``results``."""

    name: str
    command: list[str]
    results: Path


def electra_tf_run(settings: Settings, config: str, work: Path) -> Run:
    """``run_finetuning.py`` in ``config`` (a key of :data:`ELECTRA_TF_CONFIGS`), one trial."""
    out = work / f"electra_tf_{config}"
    command = [
        sys.executable,
        str(REPO_ROOT / "run_finetuning.py"),
        f"--task={settings.task}",
        f"--data-dir={settings.data_dir}",
        f"--init-checkpoint={settings.model_dir}",
        f"--output-dir={out}",
        f"--max-train-examples={settings.max_train_examples}",
        f"--train-batch-size={settings.batch_size}",
        f"--max-seq-length={settings.max_seq_length}",
        f"--num-train-epochs={settings.epochs}",
        f"--learning-rate={settings.learning_rate}",
        f"--layerwise-lr-decay={settings.layerwise_lr_decay}",
        f"--seed={settings.seed}",
        *ELECTRA_TF_CONFIGS[config],
    ]
    return Run(f"electra_tf {config}", command, out / "results.json")


def hf_run(settings: Settings, threads: int, work: Path) -> Run:
    """``bench/hf_finetuning.py`` on ``threads`` torch threads, one seed."""
    out = work / f"hf_{threads}_threads.json"
    command = hf_finetuning_command(
        settings.model_dir,
        settings.task,
        settings.data_dir,
        out,
        f"--max-train-examples={settings.max_train_examples}",
        f"--batch-size={settings.batch_size}",
        f"--max-seq-length={settings.max_seq_length}",
        f"--epochs={settings.epochs}",
        f"--learning-rate={settings.learning_rate}",
        f"--layerwise-lr-decay={settings.layerwise_lr_decay}",
        f"--seeds={settings.seed}",
        f"--split-seed={settings.seed}",
        f"--threads={threads}",
    )
    return Run(f"HF PyTorch float32, {threads} thread{'s' if threads > 1 else ''}", command, out)


def measure(run: Run) -> dict[str, Any]:
    """Run ``run`` to its end; its throughput, scores, wall time and the load average around it."""
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    finished = subprocess.run(run.command, capture_output=True, text=True, cwd=REPO_ROOT)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()[0]
    if finished.returncode != 0:
        sys.exit(f"error: {run.name} failed (exit {finished.returncode}):\n{finished.stderr[-3000:]}")
    results = json.loads(run.results.read_text(encoding="utf-8"))
    trial = results["trials"][0]
    return {
        "name": run.name,
        "command": run.command,
        "throughput": trial["training_throughput"],
        "dev": results["median"]["dev"],
        "test": results["median"]["test"],
        "metric": results["metric"],
        "wall_seconds": wall,
        "load_average": [load_before, load_after],
    }


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a markdown table (throughput in training examples per second)."""
    metric = rows[0]["metric"]
    lines = [
        f"| Run | inputs/epoch | examples/s, all epochs | examples/s, after the first | dev {metric} | test {metric} "
        "| wall s | load avg before → after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        speed = row["throughput"]
        later = speed["examples_per_second_after_first_epoch"]
        later_text = "–" if later is None else f"{later:.1f}"
        test = "–" if row["test"] is None else f"{row['test']:.4f}"
        lines.append(
            f"| {row['name']} | {speed['examples_per_epoch']} | {speed['examples_per_second']:.1f} | {later_text} "
            f"| {row['dev']:.4f} | {test} | {row['wall_seconds']:.0f} "
            f"| {row['load_average'][0]:.2f} → {row['load_average'][1]:.2f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, required=True, help="an export_to_hf.py output directory")
    parser.add_argument("--task", default="conll2002_ner", help="an electra_tf.finetune.tasks name")
    parser.add_argument("--data-dir", type=Path, required=True, help="the folder of the task's split files")
    parser.add_argument("--max-train-examples", type=int, default=1024, help="train on the first N examples")
    parser.add_argument("--batch-size", type=int, default=32, help="training batch size")
    parser.add_argument("--max-seq-length", type=int, default=128, help="longest input in word pieces")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs")
    parser.add_argument("--learning-rate", type=float, default=3e-4, help="peak learning rate (ELECTRA-small's)")
    parser.add_argument("--layerwise-lr-decay", type=float, default=0.8, help="layer-wise learning-rate decay")
    parser.add_argument("--seed", type=int, default=1, help="the one seed (head, dropout, data order)")
    parser.add_argument(
        "--configs",
        default="float32,float32+xla,mixed_bfloat16",
        help=f"electra_tf runs: {', '.join(ELECTRA_TF_CONFIGS)}",
    )
    parser.add_argument(
        "--torch-threads", default=f"1,{len(os.sched_getaffinity(0))}", help="HF runs: torch thread counts"
    )
    parser.add_argument("--output", type=Path, help="also write every row (and its command) to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    configs = [name for name in args.configs.split(",") if name]
    unknown = [name for name in configs if name not in ELECTRA_TF_CONFIGS]
    if unknown:
        sys.exit(f"error: --configs: unknown {', '.join(unknown)}; known: {', '.join(ELECTRA_TF_CONFIGS)}.")
    threads = sorted({int(count) for count in args.torch_threads.split(",") if count})
    settings = Settings(
        model_dir=args.model_dir.resolve(),
        task=args.task,
        data_dir=args.data_dir.resolve(),
        max_train_examples=args.max_train_examples,
        batch_size=args.batch_size,
        max_seq_length=args.max_seq_length,
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        layerwise_lr_decay=args.layerwise_lr_decay,
        seed=args.seed,
    )
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench_finetuning_") as folder:
        work = Path(folder)
        runs = [electra_tf_run(settings, config, work) for config in configs]
        runs += [hf_run(settings, count, work) for count in threads]
        rows = []
        for run in runs:
            print(f"running {run.name} ...", file=sys.stderr, flush=True)
            rows.append(measure(run))
            print(markdown_table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    load_end = os.getloadavg()
    machine = f"{cpu_model()}, {len(os.sched_getaffinity(0))} CPUs"
    print(
        f"{settings.task}, first {settings.max_train_examples} training examples, batch {settings.batch_size}, "
        f"max_seq_length {settings.max_seq_length}, {settings.epochs} epochs, seed {settings.seed}; {machine}; "
        f"load average (1/5/15 min) at start {'/'.join(f'{v:.2f}' for v in load_start)}, "
        f"at end {'/'.join(f'{v:.2f}' for v in load_end)}.\n"
    )
    print(markdown_table(rows))
    if args.output:
        report = {
            "settings": {key: str(value) for key, value in dataclasses.asdict(settings).items()},
            "machine": machine,
            "load_average": {"start": load_start, "end": load_end},
            "rows": rows,
        }
        write_json_atomically(args.output, report)


if __name__ == "__main__":
    main()
