#!/usr/bin/env python3
"""Spanish downstream benchmark: is what electra_tf pretrains useful?

Stages, each kept in ``--results`` when it finishes and skipped when the command is run again (so
the benchmark can be continued after an interruption, in several sittings):

1. ``data``: pretraining records from ``--corpus`` with the default vocab (``build_pretraining_dataset.py``).
2. ``pretrain``: ELECTRA-small's architecture (or ``--hparams``) for ``--pretrain-steps`` steps of
   ``--train-batch-size`` x 128 tokens, a checkpoint and a held-out evaluation at each of
   ``--keep-fractions`` of the run (``run_pretraining.py`` resumes by itself when interrupted; the wall
   time adds up the sittings, each counted up to its last checkpoint; a checkpoint every
   ``--checkpoint-every-steps`` bounds what a sitting cut short loses).
3. ``export``: each kept checkpoint as a Hugging Face directory (``export_to_hf.py``).
4. ``probe``: the frozen-encoder probe (``run_finetuning.py --freeze-encoder``) on ``--probe-task``
   (``ud_pos``) for every kept checkpoint and for random init of the same architecture, ``--seeds`` seeds.
5. ``finetune``: full fine-tuning on each of ``--tasks`` from random init and from every kept
   checkpoint, ``--num-trials`` seeds (``ud_pos`` trains on the AnCora dev file: the run says so and
   the note is kept).
6. ``peer``: ``bench/hf_finetuning.py`` (Hugging Face, PyTorch) on the last checkpoint's export on
   ``--peer-task``, with the recipe and seeds of electra_tf's run of it; both training speeds.
7. ``report``: ``--table`` (markdown), ``--picture`` (SVG: score against pretraining step, random init at
   step 0) and TensorBoard scalars under ``WORK_DIR/tensorboard``, from the results file alone.

Stages 4–6 keep one entry per (task, model) run with its seeds, median and spread (min–max); a run
with an entry is skipped, one without (never finished, or interrupted) runs again. The budget
actually spent (steps, examples seen, wall time) and the held-out pretraining metrics at each kept
checkpoint are recorded with the pretraining stage; the report reads what ran, and with which
settings, from the finished entries of every sitting. A run that has not finished has no entry: the
report says "not run", never a default number. ``--stages`` runs a subset (the earlier stages must have run).

    python bench/downstream.py                                        # everything, or continue
    python bench/downstream.py --stages probe,report --seeds 5        # one stage again, sized
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

import downstream_finetuning
from machine import cpu_flags, cpu_model, fastest_cpu_precision
from stages import REPO_ROOT, Results, end_sitting, logger, run_command, start_sitting

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "corpus" / "es_general_100mb.txt"
DEFAULT_RESULTS = REPO_ROOT / "bench" / "downstream_results.json"
DEFAULT_LABELED = REPO_ROOT.parent / "shared" / "data" / "labeled"
STAGES = ("data", "pretrain", "export", "probe", "finetune", "peer", "report")
DEFAULT_TASKS = ("conll2002_ner", "ud_pos", "pharmaconer")
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
    if not args.corpus.is_file():
        raise SystemExit(f"error: --corpus {args.corpus} not found (pass a Spanish plain-text corpus file)")
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


def checkpoint_interval(first_kept_step: int, at_most: int) -> int:
    """The largest divisor of ``first_kept_step`` not above ``at_most``: every kept step is a checkpoint,
    and a sitting killed between checkpoints loses fewer than ``at_most`` steps."""
    return max(step for step in range(1, min(first_kept_step, at_most) + 1) if first_kept_step % step == 0)


def kept_steps(args: argparse.Namespace) -> list[int]:
    """The steps whose checkpoints are kept, scored and fine-tuned."""
    steps = sorted({max(1, round(fraction * args.pretrain_steps)) for fraction in args.keep_fractions})
    if steps[-1] != args.pretrain_steps:
        raise SystemExit("error: --keep-fractions must include 1.0 (the end of the run)")
    return steps


def training_settings(args: argparse.Namespace, stage: dict[str, Any]) -> tuple[str, bool]:
    """``(precision, jit_compile)`` of the pretraining run, chosen once and kept for every later sitting.

    ``--precision auto`` takes the fastest precision measured on a CPU like this one
    (``bench/machine.py``); XLA is off unless asked for. The first sitting records the choice and the
    CPU, so a run continued on another machine keeps its settings, and a flag that contradicts them
    is refused.
    """
    if "precision" not in stage:
        precision, why = fastest_cpu_precision(cpu_flags()) if args.precision == "auto" else (args.precision, "")
        stage |= {"precision": precision, "jit_compile": bool(args.jit_compile), "first_sitting_cpu": cpu_model()}
        if why:
            stage["precision_choice"] = f"{precision}: {why}"
            log(f"--precision auto: {stage['precision_choice']}")
    asked = {"precision": None if args.precision == "auto" else args.precision, "jit_compile": args.jit_compile}
    for key, wanted in asked.items():
        if wanted is not None and wanted != stage[key]:
            raise SystemExit(
                f"error: --{key.replace('_', '-')} {wanted} differs from the {stage[key]} this pretraining run "
                "started with; continue it as it began, or use another --work-dir and --results"
            )
    return stage["precision"], stage["jit_compile"]


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
    checkpoint_every = checkpoint_interval(every, args.checkpoint_every_steps)
    log(f"pretraining for {args.pretrain_steps} steps, keeping steps {steps}")
    precision, jit_compile = training_settings(args, stage)
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
        f"--precision={precision}",
        f"--jit-compile={str(jit_compile).lower()}",
        f"--save-checkpoints-steps={checkpoint_every}",
        f"--keep-checkpoint-max={args.pretrain_steps // checkpoint_every + 1}",
        f"--eval-every-steps={every}",
        f"--num-eval-steps={EVAL_BATCHES}",
        f"--eval-batch-size={EVAL_BATCH_SIZE}",
        f"--seed={args.seed}",
    ]
    sitting = start_sitting(stage, (model_dir / "checkpoints").glob("ckpt-*.index"))
    results.save()
    run_command(command, args.work_dir / "logs" / f"pretrain_sitting{sitting}.log")
    wall = end_sitting(stage)
    history = [json.loads(line) for line in (model_dir / "eval_history.jsonl").read_text().splitlines() if line]
    by_step = {int(record["global_step"]): record for record in history}
    stage |= {
        "model_size": args.model_size,
        "hparams": args.hparams,
        "steps": args.pretrain_steps,
        "train_batch_size": args.train_batch_size,
        "examples_seen": args.pretrain_steps * args.train_batch_size,
        "learning_rate": args.learning_rate,
        "wall_s": wall,
        "load_average_1min": round(os.getloadavg()[0], 2),
        "held_out": {
            str(step): {key: by_step[step][key] for key in PRETRAINING_METRICS} for step in steps if step in by_step
        },
    }
    results.save()
    return model_dir


def export_checkpoints(args: argparse.Namespace, model_dir: Path, run: bool) -> dict[int, Path]:
    """Stage 3: a Hugging Face directory per kept checkpoint (``run`` False: only those already written)."""
    exports = {}
    for step in kept_steps(args):
        output = args.work_dir / "exports" / f"step{step}"
        if not (output / "discriminator" / "config.json").exists():
            if not run:
                continue
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


def comma_list(text: str) -> list[str]:
    return [part for part in text.split(",") if part]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/downstream"), help="Records, models, logs.")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="The durable results file.")
    parser.add_argument("--stages", type=comma_list, default=list(STAGES), help=f"Subset of {','.join(STAGES)}.")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="Plain-text Spanish corpus file.")
    parser.add_argument("--eval-fraction", type=float, default=0.01, help="Documents held out for evaluation.")
    parser.add_argument("--model-size", default="small", help="Architecture preset of the pretrained model.")
    parser.add_argument("--hparams", type=json.loads, default={}, help="JSON overrides of the preset.")
    parser.add_argument("--pretrain-steps", type=int, default=6000)
    parser.add_argument("--train-batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    parser.add_argument(
        "--precision",
        default="auto",
        help="Pretraining precision; auto: mixed_bfloat16 on a CPU with bfloat16 matmul instructions, else float32.",
    )
    parser.add_argument(
        "--jit-compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="XLA for pretraining (default: off, or as the run began).",
    )
    parser.add_argument(
        "--keep-fractions",
        type=lambda text: [float(part) for part in text.split(",")],
        default=[0.25, 0.5, 1.0],
        help="Fractions of the run whose checkpoints are scored and fine-tuned.",
    )
    parser.add_argument(
        "--checkpoint-every-steps",
        type=int,
        default=250,
        help="Pretraining checkpoint interval, at most (the largest divisor of the first kept step not above "
        "it), so that a sitting cut short loses at most this many steps; every checkpoint is kept.",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--labeled-dir",
        type=Path,
        default=DEFAULT_LABELED,
        help=f"Folder of the labelled sets, one subfolder per task ({downstream_finetuning.TASK_FOLDERS}).",
    )
    parser.add_argument("--tasks", type=comma_list, default=list(DEFAULT_TASKS), help="Fully fine-tuned tasks.")
    parser.add_argument("--probe-task", default="ud_pos", help="The frozen-encoder probe's task.")
    parser.add_argument("--peer-task", default="conll2002_ner", help="The Hugging Face peer's task.")
    parser.add_argument("--seeds", type=int, default=3, help="Seeds of the probe.")
    parser.add_argument("--num-trials", type=int, default=3, help="Seeds of full fine-tuning and of the peer.")
    parser.add_argument("--first-seed", type=int, default=1, help="Seeds are first-seed, first-seed+1, ...")
    parser.add_argument(
        "--skip-steps",
        type=lambda text: {int(part) for part in comma_list(text)},
        default=set(),
        help="Kept checkpoints (by step) left out of probe, fine-tuning and peer.",
    )
    parser.add_argument("--max-train-examples", type=int, help="Train every run on its first N examples only.")
    parser.add_argument("--num-train-epochs", type=int, default=3, help="Epochs of every fine-tuning run.")
    parser.add_argument("--probe-learning-rate", type=float, default=5e-3, help="Peak rate of the probe's head.")
    parser.add_argument(
        "--finetune-learning-rate", type=float, help="Peak rate of full fine-tuning (default: the recipe's)."
    )
    parser.add_argument("--log-every-steps", type=int, default=50, help="Fine-tuning logging (and speed) window.")
    parser.add_argument(
        "--table", type=Path, default=REPO_ROOT / "bench" / "downstream_table.md", help="The report's markdown."
    )
    parser.add_argument(
        "--picture", type=Path, default=REPO_ROOT / "docs" / "downstream.svg", help="Score against pretraining step."
    )
    args = parser.parse_args(argv)
    unknown = [stage for stage in args.stages if stage not in STAGES]
    if unknown:
        parser.error(f"--stages {unknown[0]!r}: the stages are {', '.join(STAGES)}")
    for task in {*args.tasks, args.probe_task, args.peer_task}:
        if task not in downstream_finetuning.TASK_FOLDERS:
            parser.error(f"task {task!r}: the tasks are {', '.join(downstream_finetuning.TASK_FOLDERS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    results = Results(args.results, {})
    data_dir = args.work_dir / "data"
    model_dir = args.work_dir / "pretrain"
    if "data" in args.stages:
        data_dir = build_records(args, results)
    if "pretrain" in args.stages:
        model_dir = pretrain(args, results, data_dir)
    exports = export_checkpoints(args, model_dir, run="export" in args.stages)
    exports = {step: path for step, path in exports.items() if step not in args.skip_steps}
    downstream = [stage for stage in ("probe", "finetune", "peer") if stage in args.stages]
    if downstream and not exports:
        raise SystemExit("error: no exported checkpoint to fine-tune: run the data, pretrain and export stages first")
    for stage in downstream:
        getattr(downstream_finetuning, stage)(args, results, exports)
    if "report" in args.stages:
        import downstream_report  # it loads TensorFlow (for the event files)

        steps = [step for step in kept_steps(args) if step not in args.skip_steps]
        outputs = {"table": args.table, "picture": args.picture, "tensorboard": args.work_dir / "tensorboard"}
        print(downstream_report.report(results.values, steps, args.tasks, args.probe_task, args.peer_task, outputs))
    return results.values


if __name__ == "__main__":
    main()
