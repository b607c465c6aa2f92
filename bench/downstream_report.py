"""The downstream benchmark's report: a markdown table, an SVG picture and TensorBoard scalars, all
made from the results file alone.

Rows: random init, each kept checkpoint by step, the Hugging Face fine-tuning of the last one; columns:
the held-out discriminator AUC of pretraining, each task's test score and the frozen probe's, as
median (min–max) over seeds in percent. A cell whose run has no entry says "not run": a missing
result is never shown as a number. Below it, clearly apart, the published EvalES figures of
full-size Spanish models, for context only.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path
from typing import Any

from downstream_finetuning import RANDOM_INIT, TASK_FOLDERS, model_name, width
from plot_curves import WIDTH, panel, write_svg

NOT_RUN = "not run"
PUBLISHED_NOTE = (
    "Published figures (EvalES) of full-size models pretrained for days on large corpora, for context only: "
    "they are not comparable with the rows above, which come from a small model pretrained for hours on a CPU."
)
PUBLISHED = (
    ("BETO-cased", {"conll2002_ner": 87.59, "ud_pos": 99.00}),
    ("Electricidad-base", {"conll2002_ner": 79.54, "ud_pos": 98.18}),
    ("RoBERTa-BNE", {"conll2002_ner": 88.51, "ud_pos": 99.07}),
    ("bsc-bio-ehr-es", {"pharmaconer": 89.13}),
)
PUBLISHED_TASKS = {"conll2002_ner": "CoNLL-NERC F1", "ud_pos": "UD-POS accuracy", "pharmaconer": "PharmaCoNER F1"}


def cell(entry: dict[str, Any] | None) -> str:
    """``median (min–max)`` in percent, or "not run" when the run has no finished entry."""
    if not entry or "median" not in entry:
        return NOT_RUN
    return f"{100 * entry['median']:.1f} ({100 * entry['min']:.1f}–{100 * entry['max']:.1f})"


def model_label(step: int | None) -> str:
    """How the report names the model of ``step`` (None: random init)."""
    return "random init" if step is None else f"step {step}"


def entry_of(results: dict[str, Any], stage: str, task: str, name: str) -> dict[str, Any] | None:
    return results.get(stage, {}).get(task, {}).get(name)


def table(results: dict[str, Any], steps: list[int], tasks: list[str], probe_task: str, peer_task: str) -> str:
    """The markdown report: our rows, then the published reference rows apart."""
    held_out = results.get("pretrain", {}).get("held_out", {})
    header = ["model", "pretraining step", "held-out disc AUC", *tasks, f"probe: {probe_task} (frozen encoder)"]
    rows = []
    for step in [None, *steps]:
        name = model_name(step)
        auc = held_out.get(str(step), {}).get("disc_auc") if step is not None else None
        label = model_label(step)
        rows.append(
            [
                label,
                "0" if step is None else str(step),
                f"{auc:.3f}" if auc is not None else ("—" if step is None else NOT_RUN),
                *(cell(entry_of(results, "finetune", task, name)) for task in tasks),
                cell(entry_of(results, "probe", probe_task, name)),
            ]
        )
    if steps:
        last = steps[-1]
        peer = entry_of(results, "peer", peer_task, model_name(last))
        rows.append(
            [
                f"step {last}, Hugging Face fine-tuning (PyTorch)",
                str(last),
                "—",
                *(cell(peer) if task == peer_task else NOT_RUN for task in tasks),
                NOT_RUN,
            ]
        )
    lines = [
        "Test scores in percent, median (min–max) over seeds; "
        f"{', '.join(f'{task}: {metric_of(results, task)}' for task in tasks)}.",
        "",
        markdown(header, rows),
        "",
        *notes(results, tasks, probe_task, peer_task, steps),
        "",
        "Requirements, checked on the runs above (one whose runs are missing is not measured, never met):",
        "",
        *requirements(results, steps, tasks, probe_task, peer_task),
        "",
        PUBLISHED_NOTE,
        "",
        markdown(
            ["published model", *PUBLISHED_TASKS.values()],
            [
                [model, *(f"{scores[t]:.2f}" if t in scores else "—" for t in PUBLISHED_TASKS)]
                for model, scores in PUBLISHED
            ],
        ),
    ]
    return "\n".join(lines) + "\n"


def metric_of(results: dict[str, Any], task: str) -> str:
    """The task's metric as its runs recorded it, or "not run"."""
    for entry in results.get("finetune", {}).get(task, {}).values():
        if "metric" in entry:
            return entry["metric"]
    return NOT_RUN


def notes(results: dict[str, Any], tasks: list[str], probe_task: str, peer_task: str, steps: list[int]) -> list[str]:
    """The notes under the table: what the runs said about their data, the peer's agreement and speeds."""
    lines = []
    for stage, stage_tasks in (("finetune", tasks), ("probe", [probe_task])):
        for task in stage_tasks:
            said = {note for entry in results.get(stage, {}).get(task, {}).values() for note in entry.get("notes", [])}
            lines += [f"- {stage} {task}: {note}" for note in sorted(said)]
    peer = entry_of(results, "peer", peer_task, model_name(steps[-1])) if steps else None
    if peer and "median" in peer:
        speeds = peer["train_examples_per_second"]
        gap = 100 * peer["median_gap_to_electra_tf"]
        lines.append(
            f"- peer ({peer_task}, step {steps[-1]}): median gap to electra_tf {gap:.1f} points, "
            f"larger spread {100 * peer['larger_spread']:.1f}: "
            f"{'agree' if peer['agrees_within_spread'] else 'DISAGREE'} within spread; training examples/s "
            f"(all epochs / after the first): electra_tf {rates(speeds['electra_tf'])}, "
            f"Hugging Face {rates(speeds['hugging_face'])}."
        )
    return lines + coverage(results)


def rates(speed: dict[str, float | None]) -> str:
    """A run's median training rates, all epochs / after the first ("—" where there is no later epoch)."""
    keys = ("examples_per_second", "examples_per_second_after_first_epoch")
    return " / ".join("—" if speed[key] is None else f"{speed[key]:.1f}" for key in keys)


def settings_text(settings: dict[str, Any]) -> str:
    """A run's settings in words (a learning rate of None is the recipe's)."""
    rate = settings["learning_rate"]
    examples = settings["max_train_examples"]
    return (
        f"seeds {settings['seeds']}, {settings['num_train_epochs']} epochs, "
        f"{f'first {examples} training examples' if examples else 'all training examples'}, "
        f"learning rate {rate if rate is not None else 'of the recipe'}"
    )


def coverage(results: dict[str, Any]) -> list[str]:
    """What each stage ran (models per task) and with which settings, read from its finished entries
    over every sitting, and the tasks that no fine-tuning run covered."""
    lines = []
    for stage in ("probe", "finetune", "peer"):
        for task, entries in sorted(results.get(stage, {}).items()):
            finished = {name: entry for name, entry in entries.items() if "median" in entry}
            by_settings: dict[str, list[str]] = {}
            for name, entry in sorted(finished.items(), key=lambda item: item[1]["pretraining_step"]):
                label = model_label(None if name == RANDOM_INIT else entry["pretraining_step"])
                by_settings.setdefault(settings_text(entry["settings"]), []).append(label)
            lines += [f"- {stage} {task} ran: {', '.join(labels)} ({text})." for text, labels in by_settings.items()]
    tuned = {
        task for task, entries in results.get("finetune", {}).items() if any("median" in e for e in entries.values())
    }
    untouched = [task for task in TASK_FOLDERS if task not in tuned]
    if untouched:
        lines.append(f"- finetune: not run on {', '.join(untouched)}.")
    return lines


Point = tuple[str, dict[str, Any] | None]
"""A model's label ("random init", "step N") and its run's entry (None: no entry)."""


def points(results: dict[str, Any], stage: str, task: str, steps: list[int]) -> list[Point]:
    """Random init, then each step, for one stage and task."""
    return [(model_label(step), entry_of(results, stage, task, model_name(step))) for step in [None, *steps]]


def unfinished(name: str, series: list[Point]) -> list[str]:
    """The labels of the points of ``series`` whose run has not finished."""
    return [f"{name} {label}" for label, entry in series if not entry or "median" not in entry]


def verdict(checks: list[tuple[bool, str]], missing: list[str]) -> str:
    """Says "met" when every check holds (with each check's figures), "not measured" when a run is missing."""
    if missing:
        return f"not measured (no result: {', '.join(missing)})"
    return f"{'met' if all(holds for holds, _ in checks) else 'NOT met'}: {'; '.join(text for _, text in checks)}"


def beats(better: Point, worse: Point) -> tuple[bool, str]:
    """Whether ``better``'s median exceeds ``worse``'s by more than the larger of their spreads."""
    margin, larger = better[1]["median"] - worse[1]["median"], max(width(better[1]), width(worse[1]))
    return margin > larger, f"{better[0]} {100 * margin:+.1f} points over {worse[0]} (larger spread {100 * larger:.1f})"


def changes(series: list[Point], within_spread: bool) -> list[tuple[bool, str]]:
    """Each point's median against the previous one's: it must rise, or (``within_spread``) fall by no
    more than the larger of the two spreads."""
    checks = []
    for before, after in itertools.pairwise(series):
        change, larger = after[1]["median"] - before[1]["median"], max(width(before[1]), width(after[1]))
        holds = change >= -larger if within_spread else change > 0
        checks.append((holds, f"{before[0]} → {after[0]} {100 * change:+.1f}"))
    return checks


def named(name: str, check: tuple[bool, str]) -> tuple[bool, str]:
    """``check`` with its figures prefixed by what was checked."""
    return check[0], f"{name}: {check[1]}"


def probe_requirement(probe: list[Point]) -> str:
    """Every checkpoint's probe beats random init's by more than the spread, and rises with steps."""
    missing = unfinished("probe", probe)
    checks = [] if missing else [*(beats(point, probe[0]) for point in probe[1:]), *changes(probe[1:], False)]
    return f"- frozen probe beats random init by more than the spread and rises with steps: {verdict(checks, missing)}"


def finetune_requirement(finetuned: dict[str, list[Point]]) -> str:
    """The last checkpoint's median beats random init's by more than the larger spread on every task."""
    ends = {task: [series[0], series[-1]] for task, series in finetuned.items()}
    missing = [label for task, pair in ends.items() for label in unfinished(task, pair)]
    checks = [] if missing else [named(task, beats(last, first)) for task, (first, last) in ends.items()]
    return (
        f"- full fine-tuning: the last checkpoint beats random init by more than the spread: {verdict(checks, missing)}"
    )


def monotone_requirement(curves_by_name: dict[str, list[Point]]) -> str:
    """No score falls from one measured pretraining step to the next by more than the spread."""
    measured = {name: [p for p in series if p[1] and "median" in p[1]] for name, series in curves_by_name.items()}
    missing = [f"{name} (fewer than 2 points)" for name, series in measured.items() if len(series) < 2]
    checks = [] if missing else [named(name, c) for name, series in measured.items() for c in changes(series, True)]
    return f"- the score does not fall as pretraining steps grow (within spread): {verdict(checks, missing)}"


def peer_requirement(peer: dict[str, Any] | None, peer_task: str) -> str:
    """electra_tf's and Hugging Face's medians on the same checkpoint differ by no more than the larger spread."""
    if peer and "median" in peer:
        gap, larger = 100 * peer["median_gap_to_electra_tf"], 100 * peer["larger_spread"]
        check = verdict(
            [(peer["agrees_within_spread"], f"median gap {gap:.1f} points, larger spread {larger:.1f}")], []
        )
    else:
        check = verdict([], [f"peer {peer_task}"])
    return f"- electra_tf's and Hugging Face's fine-tuning of the last checkpoint agree within spread: {check}"


def requirements(
    results: dict[str, Any], steps: list[int], tasks: list[str], probe_task: str, peer_task: str
) -> list[str]:
    """The benchmark's four requirements on the outcome, each met, NOT met or not measured, with its figures."""
    probe = points(results, "probe", probe_task, steps)
    finetuned = {task: points(results, "finetune", task, steps) for task in tasks}
    peer = entry_of(results, "peer", peer_task, model_name(steps[-1])) if steps else None
    return [
        probe_requirement(probe),
        finetune_requirement(finetuned),
        monotone_requirement({f"probe {probe_task}": probe, **{f"finetune {t}": s for t, s in finetuned.items()}}),
        peer_requirement(peer, peer_task),
    ]


def markdown(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(
        ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(row) + " |" for row in rows)]
    )


def curves(results: dict[str, Any], stage: str, tasks: list[str]) -> dict[str, list[tuple[int, float]]]:
    """``{task: [(pretraining step, median test score in percent), ...]}`` of the finished runs."""
    series = {}
    for task in tasks:
        entries = results.get(stage, {}).get(task, {})
        points = sorted(
            (entry["pretraining_step"], 100 * entry["median"]) for entry in entries.values() if "median" in entry
        )
        if points:
            series[task] = points
    return series


def write_picture(results: dict[str, Any], output: Path, tasks: list[str], probe_task: str) -> None:
    """Two panels of median test score against pretraining step (random init at step 0)."""
    elements = panel(0, f"Frozen-encoder probe ({probe_task})", curves(results, "probe", [probe_task]))
    elements += panel(WIDTH, "Full fine-tuning", curves(results, "finetune", tasks))
    write_svg(output, elements, 2)


def write_tensorboard(results: dict[str, Any], log_dir: Path, tasks: list[str], probe_task: str) -> None:
    """The same curves as TensorBoard scalars (step = pretraining step), one run folder per stage and task."""
    import tensorflow as tf

    shutil.rmtree(log_dir, ignore_errors=True)
    for stage, stage_tasks in (("probe", [probe_task]), ("finetune", tasks)):
        for task, points in curves(results, stage, stage_tasks).items():
            writer = tf.summary.create_file_writer(str(log_dir / f"{stage}_{task}"))
            with writer.as_default():
                for step, score in points:
                    tf.summary.scalar("test_score_median", score, step=step)
            writer.close()


def report(
    results: dict[str, Any],
    steps: list[int],
    tasks: list[str],
    probe_task: str,
    peer_task: str,
    outputs: dict[str, Path],
) -> str:
    """Write the table, the picture and the TensorBoard scalars; returns the table."""
    text = table(results, steps, tasks, probe_task, peer_task)
    outputs["table"].parent.mkdir(parents=True, exist_ok=True)
    outputs["table"].write_text(text, encoding="utf-8")
    write_picture(results, outputs["picture"], tasks, probe_task)
    write_tensorboard(results, outputs["tensorboard"], tasks, probe_task)
    return text
