#!/usr/bin/env python3
"""Learning parity with Google's ELECTRA code: same records, same config, several seeds, one evaluator.

Both codes train the same reduced ELECTRA (4 layers, hidden 128, embeddings 128, generator 1/4) on the
very TFRecords that ``build_pretraining_dataset.py`` writes from a slice of a Spanish corpus, for
``--num-train-steps`` steps of batch 32 x 128 tokens, in two configurations:

- ``aggressive``: learning rate 1e-3, 100 warmup steps (the configuration of the first side-by-side run);
- ``stable``: learning rate 3e-4, 500 warmup steps.

Every kept checkpoint of both codes (every ``--save-every`` steps) is then scored by electra_tf's own
evaluator on the same held-out shards with the same evaluation seed, so masking of the held-out text is
identical for every model: Google's checkpoints are read through ``--init-checkpoint`` (its TF1 names),
electra_tf's through a Hugging Face export of the checkpoint and the same flag.

Google's code sets no random seed, so its "seeds" are repeated runs; electra_tf's runs use ``--seed N``.
An ablation is electra_tf with one switch turned to Google's way (``electra_tf_google_masking``:
``--masking google``); name it in ``--codes`` (``--codes electra_tf_google_masking --seeds 1``) to measure
what that one difference does to learning, with the same seeds as electra_tf's own runs.

Set-up of Google's side, once (its code is not part of this project and is never committed)::

    git clone https://github.com/google-research/electra ~/src/electra
    python3 -m venv ~/venvs/electra-google
    ~/venvs/electra-google/bin/pip install "tensorflow-cpu==2.15.1" "numpy<2" tf-slim six

(TensorFlow 2.15 is the last release with the estimator API its code needs; ``tf-slim`` provides the
``tensorflow.contrib.layers.layer_norm`` it imports, through a shim made by this script, so none of its
files are edited.) Then::

    python bench/parity_with_google.py --google-code-dir ~/src/electra \\
        --google-python ~/venvs/electra-google/bin/python --work-dir runs/parity

Every stage is resumable: a finished run or score is recorded in ``--results`` (default
``bench/parity_results.json``) and skipped when the command is run again, so a long measurement can be
continued after an interruption, or in several sittings; an interrupted training run resumes from its last
checkpoint, and its wall time adds up the sittings, each counted up to its last checkpoint. ``--report``
prints the summary tables from the results file without running anything.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from stages import REPO_ROOT, Results, end_sitting, logger, run_command, start_sitting

DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "corpus" / "es_general_100mb.txt"
DEFAULT_RESULTS = REPO_ROOT / "bench" / "parity_results.json"
CODES = ("google", "electra_tf")
# electra_tf with one switch turned to Google's way, to measure what that difference does to learning
# (runs only when named in ``--codes``; the tables show them only once they have runs).
ABLATIONS = {"electra_tf_google_masking": ["--masking=google"]}
CONFIGS = {
    "aggressive": {"learning_rate": 1e-3, "num_warmup_steps": 100},
    "stable": {"learning_rate": 3e-4, "num_warmup_steps": 500},
}
ARCHITECTURE = {"model_hparam_overrides": {"hidden_size": 128, "num_hidden_layers": 4}, "embedding_size": 128}
BATCH_SIZE = 32
EVAL_SEED = 4321
METRICS = (
    ("disc_auc", "disc AUC"),
    ("disc_accuracy", "disc accuracy"),
    ("disc_precision", "precision"),
    ("disc_recall", "recall"),
    ("masked_lm_accuracy", "MLM accuracy"),
    ("sampled_masked_lm_accuracy", "sampled-token accuracy"),
)
# Makes Google's ``from tensorflow.contrib import layers`` resolve to tf-slim's layers (the same
# layer_norm with the same variable names), then runs its run_pretraining.py unchanged.
GOOGLE_LAUNCHER = """\
import runpy, sys, types
import tf_slim
contrib = types.ModuleType("tensorflow.contrib")
contrib.layers = tf_slim.layers
sys.modules["tensorflow.contrib"] = contrib
sys.modules["tensorflow.contrib.layers"] = tf_slim.layers
code_dir = sys.argv.pop(1)
sys.path.insert(0, code_dir)
sys.argv[0] = code_dir + "/run_pretraining.py"
runpy.run_path(sys.argv[0], run_name="__main__")
"""


log = logger("parity")


def slice_corpus(corpus: Path, output: Path, keep_every: int) -> None:
    """Keep every ``keep_every``-th document of ``corpus`` (blank-line separated), spread over the whole file."""
    if output.exists():
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_suffix(".partial")
    document_index, blank = 0, False
    with open(corpus, encoding="utf-8") as source, open(temporary, "w", encoding="utf-8") as sink:
        for line in source:
            if not line.strip():
                if not blank:
                    document_index += 1
                blank = True
                if document_index % keep_every == 0:
                    sink.write("\n")
                continue
            blank = False
            if document_index % keep_every == 0:
                sink.write(line)
    temporary.rename(output)


def build_records(args: argparse.Namespace, results: Results) -> Path:
    """The records both codes train on, and the held-out shards every model is scored on."""
    data_dir = args.work_dir / "data"
    if not (data_dir / "dataset_info.json").exists():
        corpus = args.work_dir / "corpus" / "slice.txt"
        slice_corpus(args.corpus, corpus, args.keep_every)
        log(f"building records from {corpus} ({corpus.stat().st_size / 1e6:.1f} MB)")
        run_command(
            [
                sys.executable,
                str(REPO_ROOT / "build_pretraining_dataset.py"),
                f"--corpus-dir={corpus.parent}",
                f"--output-dir={data_dir}",
                "--eval-fraction=0.02",
                "--max-seq-length=128",
                "--packing=google",  # Google's records, the same whichever version of electra_tf builds them
                "--seed=0",
            ],
            args.work_dir / "logs" / "build.log",
        )
    info = json.loads((data_dir / "dataset_info.json").read_text())
    results.values["data"] = {
        "corpus": args.corpus.name,
        "keep_every_nth_document": args.keep_every,
        "train_examples": info["stats"]["examples_train"],
        "eval_examples": info["stats"]["examples_eval"],
    }
    results.save()
    return data_dir


def google_hparams(data_dir: Path, config: str, steps: int, save_every: int) -> dict[str, Any]:
    vocab = data_dir / "vocab.txt"
    info = json.loads((data_dir / "dataset_info.json").read_text())
    return {
        **ARCHITECTURE,
        **CONFIGS[config],
        "model_size": "small",
        "pretrain_tfrecords": str(data_dir / "train" / "*.tfrecord"),
        "vocab_file": str(vocab),
        "vocab_size": sum(1 for _ in open(vocab, encoding="utf-8")),
        "do_lower_case": bool(info.get("do_lower_case", True)),
        "max_seq_length": 128,
        "train_batch_size": BATCH_SIZE,
        "num_train_steps": steps,
        "save_checkpoints_steps": save_every,
        "iterations_per_loop": save_every,
        "keep_checkpoint_max": 0,
    }


def train(args: argparse.Namespace, results: Results, data_dir: Path, code: str, config: str, seed: int) -> Path:
    """Train one run (skipped when already finished); returns its checkpoint directory."""
    name = f"{config}/{code}/seed{seed}"
    run_dir = args.work_dir / "runs" / config / code / f"seed{seed}"
    record = results.section("runs", name)
    checkpoints = run_dir / "models" / "google" if code == "google" else run_dir / "checkpoints"
    if "train_wall_s" in record:
        return checkpoints
    log(f"training {name}")
    if code == "google":
        launcher = args.work_dir / "google_launcher.py"
        launcher.write_text(GOOGLE_LAUNCHER)
        hparams = google_hparams(data_dir, config, args.num_train_steps, args.save_every)
        command = [
            str(args.google_python),
            str(launcher),
            str(args.google_code_dir),
            f"--data-dir={run_dir}",
            "--model-name=google",
            f"--hparams={json.dumps(hparams)}",
        ]
    else:
        command = [
            sys.executable,
            str(REPO_ROOT / "run_pretraining.py"),
            "--model-size=small",
            f"--hparams={json.dumps(ARCHITECTURE)}",
            f"--data-dir={data_dir}",
            f"--model-dir={run_dir}",
            f"--num-train-steps={args.num_train_steps}",
            f"--train-batch-size={BATCH_SIZE}",
            f"--learning-rate={CONFIGS[config]['learning_rate']}",
            f"--num-warmup-steps={CONFIGS[config]['num_warmup_steps']}",
            f"--save-checkpoints-steps={args.save_every}",
            f"--keep-checkpoint-max={args.num_train_steps // args.save_every + 1}",
            f"--seed={seed}",
            *ABLATIONS.get(code, []),
        ]
    pattern = "model.ckpt-*.index" if code == "google" else "ckpt-*.index"
    sitting = start_sitting(record, checkpoints.glob(pattern))
    results.save()
    run_command(command, args.work_dir / "logs" / f"train_{config}_{code}_seed{seed}_sitting{sitting}.log")
    # The wall time adds up the sittings (an interrupted one up to its last checkpoint); the load average
    # says whether it was measured on a quiet machine.
    wall = end_sitting(record)
    record |= {"train_wall_s": wall, "steps": args.num_train_steps, "load_average_1min": os.getloadavg()[0]}
    results.save()
    return checkpoints


def score(args: argparse.Namespace, results: Results, data_dir: Path, code: str, config: str, seed: int) -> None:
    """Score every kept checkpoint of one run with electra_tf's evaluator (each step once)."""
    name = f"{config}/{code}/seed{seed}"
    checkpoints = train(args, results, data_dir, code, config, seed)
    record = results.section("runs", name)
    scores = record.setdefault("eval", {})
    for step in range(args.save_every, args.num_train_steps + 1, args.save_every):
        if str(step) in scores:
            continue
        log(f"scoring {name} at step {step}")
        score_dir = args.work_dir / "scores" / config / code / f"seed{seed}" / f"step{step}"
        logs = args.work_dir / "logs" / f"score_{config}_{code}_seed{seed}_step{step}"
        if code == "google":
            init = checkpoints / f"model.ckpt-{step}"
        else:
            init = score_dir / "hf"
            if not (init / "discriminator" / "config.json").exists():
                run_command(
                    [
                        sys.executable,
                        str(REPO_ROOT / "export_to_hf.py"),
                        f"--model-dir={checkpoints.parent}",
                        f"--checkpoint={checkpoints / f'ckpt-{step}'}",
                        f"--output-dir={init}",
                        "--overwrite",
                    ],
                    logs.with_suffix(".export.log"),
                )
        eval_dir = score_dir / "eval"
        run_command(
            [
                sys.executable,
                str(REPO_ROOT / "run_pretraining.py"),
                "--model-size=small",
                f"--hparams={json.dumps(ARCHITECTURE)}",
                f"--data-dir={data_dir}",
                f"--model-dir={eval_dir}",
                f"--init-checkpoint={init}",
                "--nodo-train",
                "--do-eval",
                f"--eval-batch-size={BATCH_SIZE}",
                "--num-eval-steps=100000",
                f"--seed={EVAL_SEED}",
            ],
            logs.with_suffix(".eval.log"),
        )
        scores[str(step)] = json.loads((eval_dir / "eval_results.json").read_text())
        results.save()


def mean_and_spread(values: list[float]) -> str:
    """``mean ± sample sd (min–max)``; one run has no spread, so it is shown alone."""
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def summary(results: Results, step: int) -> str:
    """Markdown: mean ± sample standard deviation (and min-max) per config and code at ``step``."""
    lines = []
    for config, settings in CONFIGS.items():
        lines.append(
            f"\n**{config}** (learning rate {settings['learning_rate']:g}, {settings['num_warmup_steps']} warmup "
            f"steps), held-out scores at step {step}:\n"
        )
        lines.append("| code | runs | " + " | ".join(label for _, label in METRICS) + " | train wall time |")
        lines.append("|---|---:|" + "---:|" * (len(METRICS) + 1))
        for code in (*CODES, *ABLATIONS):
            runs = [
                record
                for name, record in sorted(results.values["runs"].items())
                if name.startswith(f"{config}/{code}/") and str(step) in record.get("eval", {})
            ]
            if not runs and code in ABLATIONS:
                continue
            if not runs:
                lines.append(f"| {code} | 0 | " + " | ".join("not run" for _ in METRICS) + " | |")
                continue
            cells = []
            for key, _ in METRICS:
                cells.append(mean_and_spread([run["eval"][str(step)][key] for run in runs]))
            walls = [run["train_wall_s"] for run in runs]
            lines.append(
                f"| {code} | {len(runs)} | " + " | ".join(cells) + f" | {statistics.mean(walls) / 60:.1f} min |"
            )
    return "\n".join(lines)


def run_table(results: Results) -> str:
    """Markdown: every finished run's wall time and its held-out disc AUC and MLM accuracy at each scored step."""
    lines = ["| run | train wall time | load average at the end | disc AUC by step | MLM accuracy by step |"]
    lines.append("|---|---:|---:|---|---|")
    for name, record in sorted(results.values["runs"].items()):
        if "train_wall_s" not in record:
            continue
        steps = sorted(record.get("eval", {}), key=int)
        auc, mlm = (
            " / ".join(f"{record['eval'][step][key]:.3f}" for step in steps)
            for key in ("disc_auc", "masked_lm_accuracy")
        )
        lines.append(
            f"| {name} | {record['train_wall_s'] / 60:.0f} min | {record['load_average_1min']:.1f} "
            f"| {auc} ({'/'.join(steps)}) | {mlm} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--google-code-dir", type=Path, help="A checkout of google-research/electra.")
    parser.add_argument("--google-python", type=Path, help="Python of a venv with tensorflow-cpu 2.15 and tf-slim.")
    parser.add_argument("--work-dir", type=Path, default=Path("runs/parity"), help="Records, checkpoints, logs.")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="The durable results file.")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="Plain-text corpus to slice.")
    parser.add_argument("--keep-every", type=int, default=4, help="Keep every Nth document of the corpus.")
    parser.add_argument("--num-train-steps", type=int, default=2000)
    parser.add_argument("--save-every", type=int, default=500, help="Checkpoint (and score) every N steps.")
    parser.add_argument("--seeds", type=int, default=3, help="Runs per code and config.")
    parser.add_argument("--configs", default="aggressive,stable", help="Comma-separated: aggressive, stable.")
    parser.add_argument(
        "--codes",
        default="google,electra_tf",
        help=f"Comma-separated: google, electra_tf, or an ablation of electra_tf ({', '.join(ABLATIONS)}).",
    )
    parser.add_argument("--report", action="store_true", help="Only print the summary tables.")
    args = parser.parse_args(argv)
    unknown = set(args.codes.split(",")) - {*CODES, *ABLATIONS}
    if unknown:
        parser.error(f"--codes: unknown {', '.join(sorted(unknown))} (known: {', '.join((*CODES, *ABLATIONS))})")
    if not args.report and "google" in args.codes.split(",") and not (args.google_code_dir and args.google_python):
        parser.error("--google-code-dir and --google-python are needed to run Google's code (see --help)")
    if not args.report and not args.corpus.is_file():
        parser.error(f"--corpus {args.corpus} not found (pass a Spanish plain-text corpus)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = Results(args.results, {"runs": {}})
    if not args.report:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        data_dir = build_records(args, results)
        # Seed-major order: after an interruption, every config and code has the same number of runs.
        for seed in range(1, args.seeds + 1):
            for config in args.configs.split(","):
                for code in args.codes.split(","):
                    score(args, results, data_dir, code, config, seed)
    print(summary(results, args.num_train_steps))
    print("\nEvery finished run:\n\n" + run_table(results))
    scored = {name: sorted(record.get("eval", {}), key=int) for name, record in results.values["runs"].items()}
    print("\nScored steps: " + json.dumps(scored))


if __name__ == "__main__":
    main()
