#!/usr/bin/env python3
"""Spanish downstream benchmark: is what electra_tf pretrains useful?

Stages, each kept in ``--results`` when it finishes and skipped when the command is run again (so
the benchmark can be continued after an interruption, in several sittings):

1. ``data``: pretraining records from ``--corpus`` with the default vocab (``build_pretraining_dataset.py``).
2. ``pretrain``: ELECTRA-small's architecture (or ``--hparams``) for ``--pretrain-steps`` steps of
   ``--train-batch-size`` x 128 tokens, a checkpoint and a held-out evaluation at each of
   ``--keep-fractions`` of the run (``run_pretraining.py`` resumes by itself when interrupted; the wall
   time adds up the sittings, each counted up to its last checkpoint).
3. ``export``: each kept checkpoint as a Hugging Face directory (``export_to_hf.py``).

The budget actually spent (steps, examples seen, wall time) and the held-out pretraining metrics at
each kept checkpoint are recorded with the stage. A stage that has not run has no entry: the report
says "not run", never a default number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from stages import REPO_ROOT, Results, logger, run_command

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "corpus" / "es_general_100mb.txt"
DEFAULT_RESULTS = REPO_ROOT / "bench" / "downstream_results.json"
SEQUENCE_LENGTH = 128
EVAL_BATCH_SIZE = 32
EVAL_BATCHES = 16
PRETRAINING_METRICS = (
    "disc_auc",
    "disc_accuracy",
    "disc_precision",
    "disc_recall",
    "masked_lm_accuracy",
    "sampled_masked_lm_accuracy",
)

log = logger("downstream")


def build_records(args: argparse.Namespace, results: Results) -> Path:
    """Stage 1: the pretraining records (the corpus file alone in a folder, as the builder reads folders)."""
    data_dir = args.work_dir / "data"
    stage = results.section("data")
    if "train_examples" in stage:
        return data_dir
    corpus_dir = args.work_dir / "corpus"
    corpus_dir.mkdir(parents=True, exist_ok=True)
    link = corpus_dir / args.corpus.name
    if not link.exists():
        link.symlink_to(args.corpus.resolve())
    log(f"building records from {args.corpus} ({args.corpus.stat().st_size / 1e6:.1f} MB)")
    wall = run_command(
        [
            sys.executable,
            str(REPO_ROOT / "build_pretraining_dataset.py"),
            f"--corpus-dir={corpus_dir}",
            f"--output-dir={data_dir}",
            f"--max-seq-length={SEQUENCE_LENGTH}",
            f"--eval-fraction={args.eval_fraction}",
            "--overwrite",
        ],
        args.work_dir / "logs" / "build.log",
    )
    info = json.loads((data_dir / "dataset_info.json").read_text())
    stage |= {
        "corpus": args.corpus.name,
        "corpus_megabytes": round(args.corpus.stat().st_size / 1e6, 1),
        "train_examples": info["stats"]["examples_train"],
        "eval_examples": info["stats"]["examples_eval"],
        "build_wall_s": round(wall, 1),
    }
    results.save()
    return data_dir


def kept_steps(args: argparse.Namespace) -> list[int]:
    """The steps whose checkpoints are kept, scored and fine-tuned."""
    steps = sorted({max(1, round(fraction * args.pretrain_steps)) for fraction in args.keep_fractions})
    if steps[-1] != args.pretrain_steps:
        raise SystemExit("error: --keep-fractions must include 1.0 (the end of the run)")
    return steps


def pretrain(args: argparse.Namespace, results: Results, data_dir: Path) -> Path:
    """Stage 2: the pretraining run, with a held-out evaluation at each kept step."""
    model_dir = args.work_dir / "pretrain"
    stage = results.section("pretrain")
    if "wall_s" in stage:
        return model_dir
    steps = kept_steps(args)
    every = steps[0] if all(step % steps[0] == 0 for step in steps) else 0
    if not every:
        raise SystemExit(f"error: the kept steps {steps} must be multiples of the first one")
    log(f"pretraining for {args.pretrain_steps} steps, keeping steps {steps}")
    command = [
        sys.executable,
        str(REPO_ROOT / "run_pretraining.py"),
        f"--model-size={args.model_size}",
        f"--hparams={json.dumps(args.hparams)}",
        f"--data-dir={data_dir}",
        f"--model-dir={model_dir}",
        f"--num-train-steps={args.pretrain_steps}",
        f"--num-warmup-steps={round(args.warmup_fraction * args.pretrain_steps)}",
        f"--learning-rate={args.learning_rate}",
        f"--train-batch-size={args.train_batch_size}",
        f"--precision={args.precision}",
        f"--jit-compile={str(args.jit_compile).lower()}",
        f"--save-checkpoints-steps={every}",
        f"--keep-checkpoint-max={len(range(every, args.pretrain_steps + 1, every)) + 1}",
        f"--eval-every-steps={every}",
        f"--num-eval-steps={EVAL_BATCHES}",
        f"--eval-batch-size={EVAL_BATCH_SIZE}",
        f"--seed={args.seed}",
    ]
    sittings = stage.setdefault("sittings", [])
    close_interrupted_sitting(sittings, model_dir)
    sittings.append({"start": time.time()})
    results.save()
    run_command(command, args.work_dir / "logs" / f"pretrain_sitting{len(sittings)}.log")
    sittings[-1]["end"] = time.time()
    history = [json.loads(line) for line in (model_dir / "eval_history.jsonl").read_text().splitlines() if line]
    by_step = {int(record["global_step"]): record for record in history}
    stage |= {
        "model_size": args.model_size,
        "hparams": args.hparams,
        "steps": args.pretrain_steps,
        "train_batch_size": args.train_batch_size,
        "examples_seen": args.pretrain_steps * args.train_batch_size,
        "precision": args.precision,
        "jit_compile": args.jit_compile,
        "learning_rate": args.learning_rate,
        "wall_s": round(sum(sitting["end"] - sitting["start"] for sitting in sittings), 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "held_out": {
            str(step): {key: by_step[step][key] for key in PRETRAINING_METRICS} for step in steps if step in by_step
        },
    }
    results.save()
    return model_dir


def close_interrupted_sitting(sittings: list[dict[str, float]], model_dir: Path) -> None:
    """End an interrupted sitting at its last checkpoint: the steps after it are trained again, so only
    the time up to it counts towards the run's wall time."""
    if not sittings or "end" in sittings[-1]:
        return
    written = [path.stat().st_mtime for path in (model_dir / "checkpoints").glob("ckpt-*.index")]
    sittings[-1]["end"] = max([sittings[-1]["start"], *written])


def export_checkpoints(args: argparse.Namespace, results: Results, model_dir: Path) -> dict[int, Path]:
    """Stage 3: a Hugging Face directory per kept checkpoint."""
    exports = {}
    for step in kept_steps(args):
        output = args.work_dir / "exports" / f"step{step}"
        if not (output / "discriminator" / "config.json").exists():
            log(f"exporting the checkpoint of step {step}")
            run_command(
                [
                    sys.executable,
                    str(REPO_ROOT / "export_to_hf.py"),
                    f"--model-dir={model_dir}",
                    f"--checkpoint={model_dir / 'checkpoints' / f'ckpt-{step}'}",
                    f"--output-dir={output}",
                    "--overwrite",
                ],
                args.work_dir / "logs" / f"export_step{step}.log",
            )
        exports[step] = output / "discriminator"
    return exports


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/downstream"), help="Records, models, logs.")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="The durable results file.")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="Plain-text Spanish corpus file.")
    parser.add_argument("--eval-fraction", type=float, default=0.01, help="Documents held out for evaluation.")
    parser.add_argument("--model-size", default="small", help="Architecture preset of the pretrained model.")
    parser.add_argument("--hparams", type=json.loads, default={}, help="JSON overrides of the preset.")
    parser.add_argument("--pretrain-steps", type=int, default=6000)
    parser.add_argument("--train-batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    parser.add_argument("--precision", default="mixed_bfloat16", help="The fastest on this project's CPU.")
    parser.add_argument("--jit-compile", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument(
        "--keep-fractions",
        type=lambda text: [float(part) for part in text.split(",")],
        default=[0.25, 0.5, 1.0],
        help="Fractions of the run whose checkpoints are scored and fine-tuned.",
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not args.corpus.is_file():
        parser.error(f"--corpus {args.corpus} not found (pass a Spanish plain-text corpus file)")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = Results(args.results, {})
    data_dir = build_records(args, results)
    model_dir = pretrain(args, results, data_dir)
    export_checkpoints(args, results, model_dir)
    return results.values


if __name__ == "__main__":
    main()
