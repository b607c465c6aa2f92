"""The downstream benchmark's fine-tuning stages: frozen probe, full fine-tuning, the Hugging Face peer.

Each run is one ``(stage, task, model)`` entry of the results file, written when the run ends and
skipped when the benchmark runs again with the same settings; an interrupted run has no entry and
runs again from the start (its output folder is replaced). A model is ``random_init`` (the kept
checkpoints' architecture from fresh weights) or ``stepN`` (the export of the checkpoint of step N).
Every entry holds the seeds, the median and spread (min, max) of the test scores, the notes the run
printed (``ud_pos`` trains on the AnCora dev file and says so) and its wall time; nothing that was not
measured is ever written as a number.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from stages import REPO_ROOT, Results, hf_finetuning_command, logger, run_command

RANDOM_INIT = "random_init"
TASK_FOLDERS = {
    "conll2002_ner": "conll2002_es",
    "ud_pos": "ud_es_ancora",
    "pharmaconer": "pharmaconer_bio",
    "cantemist": "cantemist_ner",
    "xnli": "xnli_es",
}
"""Each task's folder under ``--labeled-dir`` (the shared data's layout)."""
SETTINGS = ("seeds", "num_train_epochs", "max_train_examples", "learning_rate")
"""What must match for a kept entry to stand for a new run; anything else is another benchmark."""

log = logger("downstream")


def model_name(step: int | None) -> str:
    """The results key of the checkpoint of ``step`` (None: random init)."""
    return RANDOM_INIT if step is None else f"step{step}"


def spread(scores: list[float]) -> dict[str, Any]:
    """Median and range of ``scores`` (one per seed)."""
    return {"scores": scores, "median": statistics.median(scores), "min": min(scores), "max": max(scores)}


def width(entry: dict[str, Any]) -> float:
    """The range (max − min) of a run's scores over its seeds."""
    return entry["max"] - entry["min"]


def check_settings(entry: dict[str, Any], settings: dict[str, Any], where: str) -> bool:
    """Whether ``entry`` is a finished run with ``settings``; stops if it was made with others."""
    if "median" not in entry:
        return False
    kept = {key: entry["settings"].get(key) for key in SETTINGS}
    if kept != settings:
        sys.exit(
            f"error: the results file holds {where} made with {kept}, not {settings}; pass the same flags, or "
            "another --results and --work-dir for a benchmark with other settings."
        )
    return True


def finetuning_run(
    args: argparse.Namespace,
    results: Results,
    stage: str,
    task: str,
    step: int | None,
    exports: dict[int, Path],
    settings: dict[str, Any],
    extra_flags: list[str],
) -> None:
    """One ``run_finetuning.py`` run of ``task`` from the model of ``step`` with every seed of ``settings``."""
    name = model_name(step)
    entry = results.section(stage, task, name)
    if check_settings(entry, settings, f"{stage} {task} {name}"):
        return
    output = args.work_dir / stage / task / name
    init = exports[step if step is not None else max(exports)]
    seeds = settings["seeds"]
    log(f"{stage}: {task} from {name}, seeds {seeds}")
    hparams = {"log_every_steps": args.log_every_steps}
    command = [
        sys.executable,
        str(REPO_ROOT / "run_finetuning.py"),
        f"--task={task}",
        f"--data-dir={args.labeled_dir / TASK_FOLDERS[task]}",
        f"--output-dir={output}",
        f"--init-checkpoint={init}",
        f"--seed={seeds[0]}",
        f"--num-trials={len(seeds)}",
        f"--num-train-epochs={settings['num_train_epochs']}",
        f"--hparams={json.dumps(hparams)}",
        "--overwrite",
        *([f"--learning-rate={settings['learning_rate']}"] if settings["learning_rate"] is not None else []),
        *([f"--max-train-examples={settings['max_train_examples']}"] if settings["max_train_examples"] else []),
        *(["--random-init"] if step is None else []),
        *extra_flags,
    ]
    wall = run_command(command, args.work_dir / "logs" / f"{stage}_{task}_{name}.log")
    run = json.loads((output / "results.json").read_text(encoding="utf-8"))
    entry.clear()
    entry |= {
        "settings": settings,
        "pretraining_step": 0 if step is None else step,
        "metric": run["metric"],
        **spread([trial["test"]["score"] for trial in run["trials"]]),
        "dev": spread([trial["dev"]["score"] for trial in run["trials"]]),
        "hparams": run["hparams"],
        "notes": run["notes"],
        "output_dir": str(output),
        "wall_s": round(wall, 1),
    }
    results.save()


def models(exports: dict[int, Path]) -> list[int | None]:
    """Random init first, then each kept checkpoint by step."""
    return [None, *sorted(exports)]


def probe(args: argparse.Namespace, results: Results, exports: dict[int, Path]) -> None:
    """Stage ``probe``: the frozen-encoder probe on ``--probe-task`` for random init and every checkpoint."""
    settings = {
        "seeds": list(range(args.first_seed, args.first_seed + args.seeds)),
        "num_train_epochs": args.num_train_epochs,
        "max_train_examples": args.max_train_examples,
        "learning_rate": args.probe_learning_rate,
    }
    for step in models(exports):
        finetuning_run(args, results, "probe", args.probe_task, step, exports, settings, ["--freeze-encoder"])


def finetune_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The full fine-tuning runs' settings (the recipe's learning rate unless ``--learning-rate``)."""
    return {
        "seeds": list(range(args.first_seed, args.first_seed + args.num_trials)),
        "num_train_epochs": args.num_train_epochs,
        "max_train_examples": args.max_train_examples,
        "learning_rate": args.finetune_learning_rate,
    }


def finetune(args: argparse.Namespace, results: Results, exports: dict[int, Path]) -> None:
    """Stage ``finetune``: every ``--tasks`` task from random init and from every kept checkpoint."""
    settings = finetune_settings(args)
    for task in args.tasks:
        for step in models(exports):
            finetuning_run(args, results, "finetune", task, step, exports, settings, [])


def peer(args: argparse.Namespace, results: Results, exports: dict[int, Path]) -> None:
    """Stage ``peer``: ``bench/hf_finetuning.py`` on the last checkpoint's export, with the recipe and seeds
    of electra_tf's run of the same checkpoint on ``--peer-task`` (which must have finished)."""
    task, step = args.peer_task, max(exports)
    name = model_name(step)
    ours = results.section("finetune", task, name)
    settings = finetune_settings(args)
    if not check_settings(ours, settings, f"finetune {task} {name}"):
        log(f"peer: skipped, it needs the finetune stage's {task} result of {name} (run that stage first)")
        return
    entry = results.section("peer", task, name)
    if check_settings(entry, settings, f"peer {task} {name}"):
        return
    recipe = ours["hparams"]
    output = args.work_dir / "peer" / task / f"{name}.json"
    log(f"peer: Hugging Face fine-tuning of {name} on {task}, seeds {settings['seeds']}")
    command = hf_finetuning_command(
        exports[step],
        task,
        args.labeled_dir / TASK_FOLDERS[task],
        output,
        f"--seeds={','.join(str(seed) for seed in settings['seeds'])}",
        f"--split-seed={settings['seeds'][0]}",
        f"--learning-rate={recipe['learning_rate']}",
        f"--layerwise-lr-decay={recipe['layerwise_lr_decay']}",
        f"--epochs={recipe['num_train_epochs']}",
        f"--batch-size={recipe['train_batch_size']}",
        f"--max-seq-length={recipe['max_seq_length']}",
        f"--warmup-proportion={recipe['warmup_proportion']}",
        f"--weight-decay={recipe['weight_decay_rate']}",
        *([f"--max-train-examples={settings['max_train_examples']}"] if settings["max_train_examples"] else []),
    )
    wall = run_command(command, args.work_dir / "logs" / f"peer_{task}_{name}.log")
    theirs = json.loads(output.read_text(encoding="utf-8"))
    ours_run = json.loads((Path(ours["output_dir"]) / "results.json").read_text(encoding="utf-8"))
    scores = spread([trial["test"]["score"] for trial in theirs["trials"]])
    gap = abs(scores["median"] - ours["median"])
    larger_spread = max(width(scores), width(ours))
    entry.clear()
    entry |= {
        "settings": settings,
        "pretraining_step": step,
        "metric": theirs["metric"],
        **scores,
        "dev": spread([trial["dev"]["score"] for trial in theirs["trials"]]),
        "recipe": recipe,
        "median_gap_to_electra_tf": gap,
        "larger_spread": larger_spread,
        "agrees_within_spread": gap <= larger_spread,
        "train_examples_per_second": {
            "electra_tf": median_throughput(ours_run),
            "hugging_face": median_throughput(theirs),
            "what": (
                "training inputs (tagging windows) per second of the training steps alone, over all epochs and "
                "over the epochs after the first (which traces the step); both codes time their steps the same "
                "way (electra_tf.finetune.throughput), median over seeds"
            ),
        },
        "notes": theirs["notes"],
        "output": str(output),
        "wall_s": round(wall, 1),
    }
    results.save()


def median_throughput(run: dict[str, Any]) -> dict[str, float | None]:
    """A fine-tuning run's training throughput, median over its seeds' trials: examples/s over all
    epochs and over the epochs after the first (None with one epoch). Both ``run_finetuning.py`` and
    ``bench/hf_finetuning.py`` record it per trial with the same ``throughput_summary``."""
    rates = [trial["training_throughput"] for trial in run["trials"]]
    return {
        key: statistics.median(rate[key] for rate in rates) if all(rate[key] is not None for rate in rates) else None
        for key in ("examples_per_second", "examples_per_second_after_first_epoch")
    }
