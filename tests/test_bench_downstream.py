"""The downstream benchmark (bench/downstream.py): its bookkeeping, and every stage end to end.

The default tests check what the fine-tuning stages record, skip, run again and report, with the
sub-process calls counted and answered by a stand-in that writes what ``run_finetuning.py`` and
``bench/hf_finetuning.py`` write (seconds). The slow tests run the real benchmark: a tiny ELECTRA
(2 layers, hidden 32) pretrained for a few steps on one file of the repository's sample corpus,
exported, probed and fine-tuned on small labelled fixtures written here in the layouts of the real
tasks (CoNLL-2002's ``esp.*`` columns, AnCora's CoNLL-U dev and test files), and the peer; each stage
as the benchmark runs it (sub-processes, the results file). They take about 5 minutes on two loaded
cores (each fine-tuning run starts TensorFlow).
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

import pytest
from finetune_fixtures import tagged_sentences, write_column_file, write_conllu

from electra_tf import REPO_ROOT, SAMPLE_CORPUS_DIR
from electra_tf.finetune.throughput import throughput_summary

sys.path.insert(0, str(REPO_ROOT / "bench"))
import downstream
import downstream_finetuning
from downstream_report import NOT_RUN

TINY = {
    "embedding_size": 32,
    "model_hparam_overrides": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    },
}


def write_labeled(root: Path) -> Path:
    """The real tasks' folders and file names, with small learnable contents."""
    conll = root / "conll2002_es"
    conll.mkdir(parents=True)
    for seed, (name, count) in enumerate((("esp.train", 96), ("esp.testa", 24), ("esp.testb", 24))):
        write_column_file(conll / name, tagged_sentences(count, seed))
    ud = root / "ud_es_ancora"
    ud.mkdir()
    write_conllu(ud / "es_ancora-ud-dev.conllu", 96, 10)
    write_conllu(ud / "es_ancora-ud-test.conllu", 24, 11)
    return root


def benchmark_args(root: Path, *extra: str) -> list[str]:
    return [
        f"--work-dir={root / 'work'}",
        f"--results={root / 'results.json'}",
        f"--table={root / 'table.md'}",
        f"--picture={root / 'downstream.svg'}",
        f"--corpus={SAMPLE_CORPUS_DIR / 'ciencia_y_tecnologia.txt'}",
        "--eval-fraction=0.2",
        f"--hparams={json.dumps(TINY)}",
        "--pretrain-steps=6",
        "--train-batch-size=8",
        "--precision=float32",
        f"--labeled-dir={root / 'labeled'}",
        "--tasks=conll2002_ner",
        "--seeds=2",
        "--num-trials=2",
        "--num-train-epochs=2",
        "--probe-learning-rate=1e-2",
        "--log-every-steps=2",
        *extra,
    ]


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory) -> tuple[Path, list[str]]:
    """Every stage once: checkpoints at steps 3 and 6, probe on ud_pos, conll2002_ner fine-tuned, the peer."""
    root = tmp_path_factory.mktemp("downstream")
    write_labeled(root / "labeled")
    argv = benchmark_args(root, "--keep-fractions=0.5,1.0")
    downstream.main(argv)
    return root, argv


def load(root: Path) -> dict:
    return json.loads((root / "results.json").read_text(encoding="utf-8"))


def run_outputs(root: Path) -> dict[str, float]:
    """The modification time of every fine-tuning run's results, by run folder."""
    work = root / "work"
    found = [*work.glob("probe/*/*/results.json"), *work.glob("finetune/*/*/results.json"), *work.glob("peer/*/*.json")]
    return {str(path.relative_to(work)): path.stat().st_mtime_ns for path in found}


@pytest.mark.slow
def test_every_stage_records_medians_spreads_and_notes(benchmark):
    root, _ = benchmark
    results = load(root)
    assert results["data"]["train_examples"] > 0
    assert results["pretrain"]["steps"] == 6 and set(results["pretrain"]["held_out"]) == {"3", "6"}
    for stage, task in (("probe", "ud_pos"), ("finetune", "conll2002_ner")):
        entries = results[stage][task]
        assert set(entries) == {"random_init", "step3", "step6"}
        for name, entry in entries.items():
            assert entry["pretraining_step"] == (0 if name == "random_init" else int(name[4:]))
            assert entry["settings"]["seeds"] == [1, 2] and len(entry["scores"]) == 2
            assert entry["min"] <= entry["median"] <= entry["max"] and entry["min"] >= 0 and entry["max"] <= 1
            assert entry["hparams"]["freeze_encoder"] is (stage == "probe")
            assert entry["hparams"]["num_train_epochs"] == 2
    assert all(entry["hparams"]["learning_rate"] == 1e-2 for entry in results["probe"]["ud_pos"].values())
    assert any("dev" in note for note in results["probe"]["ud_pos"]["step6"]["notes"])  # trains on the dev file
    peer = results["peer"]["conll2002_ner"]["step6"]
    ours = results["finetune"]["conll2002_ner"]["step6"]
    assert peer["settings"]["seeds"] == ours["settings"]["seeds"] and peer["recipe"] == ours["hparams"]
    for code in ("electra_tf", "hugging_face"):
        assert all(rate > 0 for rate in peer["train_examples_per_second"][code].values())
    assert peer["agrees_within_spread"] == (
        abs(peer["median"] - ours["median"]) <= max(peer["max"] - peer["min"], ours["max"] - ours["min"])
    )


@pytest.mark.slow
def test_the_report_table_and_picture(benchmark):
    root, _ = benchmark
    results = load(root)
    table = (root / "table.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines() if line.startswith("| ")}
    step6 = results["finetune"]["conll2002_ner"]["step6"]
    assert f"{100 * step6['median']:.1f} ({100 * step6['min']:.1f}–{100 * step6['max']:.1f})" in rows["step 6"]
    assert NOT_RUN not in rows["random init"] and NOT_RUN not in rows["step 3"]
    assert rows["step 6, Hugging Face fine-tuning (PyTorch)"].count(NOT_RUN) == 1  # the probe column
    assert "| BETO-cased | 87.59 | 99.00 | — |" in table and "| bsc-bio-ehr-es | — | — | 89.13 |" in table
    assert table.index("published figures".capitalize()) > table.index("| step 6, Hugging Face")
    recipe = "seeds [1, 2], 2 epochs, all training examples, learning rate of the recipe"
    assert f"- finetune conll2002_ner ran: random init, step 3, step 6 ({recipe})." in table
    assert f"- peer conll2002_ner ran: step 6 ({recipe})." in table
    assert "- finetune: not run on ud_pos, pharmaconer, cantemist, xnli." in table
    svg = (root / "downstream.svg").read_text(encoding="utf-8")
    assert svg.startswith("<svg") and svg.count("<polyline") == 2  # the probe, conll2002_ner
    assert list((root / "work" / "tensorboard" / "probe_ud_pos").glob("events.*"))


@pytest.mark.slow
def test_a_rerun_skips_finished_runs_and_reruns_an_interrupted_one(benchmark):
    root, argv = benchmark
    before = run_outputs(root)
    downstream.main(argv)
    assert run_outputs(root) == before  # nothing ran again
    results = load(root)
    del results["probe"]["ud_pos"]["step3"]  # as if interrupted before its entry was written
    (root / "results.json").write_text(json.dumps(results), encoding="utf-8")
    downstream.main([*argv, "--stages=probe"])
    after = run_outputs(root)
    changed = {path for path in after if after[path] != before[path]}
    assert changed == {"probe/ud_pos/step3/results.json"}
    assert "median" in load(root)["probe"]["ud_pos"]["step3"]


@pytest.mark.slow
def test_a_missing_result_is_reported_as_not_run(benchmark, tmp_path):
    root, argv = benchmark
    results = load(root)
    del results["finetune"]["conll2002_ner"]["step3"]
    del results["peer"]
    (tmp_path / "results.json").write_text(json.dumps(results), encoding="utf-8")
    report = [f"--results={tmp_path / 'results.json'}", f"--table={tmp_path / 't.md'}", "--stages=report"]
    downstream.main([*argv, *report])
    rows = [line.split(" | ") for line in (tmp_path / "t.md").read_text(encoding="utf-8").splitlines()]
    by_label = {row[0].strip("| "): row for row in rows if len(row) > 3}
    assert by_label["step 3"][3] == NOT_RUN  # conll2002_ner column
    assert by_label["step 6, Hugging Face fine-tuning (PyTorch)"][3] == NOT_RUN
    assert by_label["step 6"][3] != NOT_RUN


@pytest.mark.slow
def test_other_settings_for_a_kept_result_are_refused(benchmark):
    _, argv = benchmark
    with pytest.raises(SystemExit, match=r"made with .*pass the same flags"):
        downstream.main([*argv, "--stages=probe", "--seeds=3"])


# ------------------------------------------------------------------------------------------------
# The bookkeeping, with the fine-tuning sub-processes answered by a stand-in (fast).
# ------------------------------------------------------------------------------------------------
RECIPE = {
    "learning_rate": 3e-4,
    "layerwise_lr_decay": 0.8,
    "num_train_epochs": 2,
    "train_batch_size": 32,
    "max_seq_length": 128,
    "warmup_proportion": 0.1,
    "weight_decay_rate": 0.01,
}


class FakeRuns:
    """Counts the sub-process calls and writes each one's output file as the real scripts would: one
    trial per seed, with a test score that grows with the pretraining step and the seed."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: list[str], log_file: Path) -> float:
        self.commands.append(command)
        flags = dict(part[2:].split("=", 1) for part in command[2:] if "=" in part)
        step = (
            0
            if "--random-init" in command
            else int(Path(flags.get("init-checkpoint", flags.get("model-dir"))).parent.name[4:])
        )
        if command[1].endswith("run_finetuning.py"):
            seeds = range(int(flags["seed"]), int(flags["seed"]) + int(flags["num-trials"]))
            hparams = {**RECIPE, "freeze_encoder": "--freeze-encoder" in command}
            hparams["learning_rate"] = float(flags.get("learning-rate", RECIPE["learning_rate"]))
            output = Path(flags["output-dir"]) / "results.json"
            extra = {"hparams": hparams}
        else:
            seeds = [int(seed) for seed in flags["seeds"].split(",")]
            output = Path(flags["output"])
            extra = {}
        rate = 20.0 if command[1].endswith("run_finetuning.py") else 30.0
        trials = [
            {
                "seed": s,
                "dev": {"score": 0.4 + step / 100},
                "test": {"score": 0.3 + step / 100 + s / 500},
                "training_throughput": throughput_summary(100, [100 / (rate + s), 100 / (rate + 2 * s)]),
            }
            for s in seeds
        ]
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(
            json.dumps({"metric": "f1", "notes": [f"a note of {flags['task']}"], "trials": trials, **extra})
        )
        return 1.0


@pytest.fixture
def fake(tmp_path, monkeypatch) -> tuple[FakeRuns, list[str]]:
    """Exports of the checkpoints of steps 10 and 20 (their config files), the pretraining entry, and
    the stand-in in place of the sub-processes."""
    for step in (10, 20):
        (tmp_path / "work" / "exports" / f"step{step}" / "discriminator").mkdir(parents=True)
        (tmp_path / "work" / "exports" / f"step{step}" / "discriminator" / "config.json").write_text("{}")
    held_out = {"10": {"disc_auc": 0.61}, "20": {"disc_auc": 0.72}}
    (tmp_path / "results.json").write_text(json.dumps({"pretrain": {"wall_s": 1.0, "held_out": held_out}}))
    runs = FakeRuns()
    monkeypatch.setattr(downstream_finetuning, "run_command", runs)
    argv = [
        *benchmark_args(tmp_path),
        "--pretrain-steps=20",
        "--keep-fractions=0.5,1.0",
        "--stages=probe,finetune,peer,report",
        "--tasks=conll2002_ner,ud_pos",
    ]
    return runs, argv


def test_each_run_once_with_the_same_recipe_for_the_peer_then_nothing_again(fake, tmp_path):
    runs, argv = fake
    downstream.main(argv)
    results = load(tmp_path)
    assert len(runs.commands) == 3 + 2 * 3 + 1  # probe, two tasks fine-tuned, peer; each from 3 models
    for stage, task in (("probe", "ud_pos"), ("finetune", "conll2002_ner"), ("finetune", "ud_pos")):
        assert set(results[stage][task]) == {"random_init", "step10", "step20"}
    step20 = results["finetune"]["conll2002_ner"]["step20"]
    assert step20["scores"] == pytest.approx([0.502, 0.504]) and step20["median"] == pytest.approx(0.503)
    assert (step20["min"], step20["max"]) == pytest.approx((0.502, 0.504)) and step20["pretraining_step"] == 20
    assert results["probe"]["ud_pos"]["random_init"]["settings"]["seeds"] == [1, 2]
    assert results["probe"]["ud_pos"]["step10"]["notes"] == ["a note of ud_pos"]
    peer_command = runs.commands[-1]
    assert peer_command[1].endswith("hf_finetuning.py")
    for flag, value in (("learning-rate", 3e-4), ("layerwise-lr-decay", 0.8), ("epochs", 2), ("seeds", "1,2")):
        assert f"--{flag}={value}" in peer_command
    peer = results["peer"]["conll2002_ner"]["step20"]
    assert peer["median_gap_to_electra_tf"] == pytest.approx(0) and peer["agrees_within_spread"] is True
    # Both codes' rates the same way: median over seeds 1, 2 of all epochs and of the epochs after the first.
    speeds = peer["train_examples_per_second"]
    overall = [2 / (1 / 21 + 1 / 22), 2 / (1 / 22 + 1 / 24)]  # seed s: epochs at 20 + s and 20 + 2s examples/s
    assert speeds["electra_tf"]["examples_per_second"] == pytest.approx(statistics.median(overall))
    assert speeds["electra_tf"]["examples_per_second_after_first_epoch"] == pytest.approx(23.0)
    assert speeds["hugging_face"]["examples_per_second_after_first_epoch"] == pytest.approx(33.0)
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    ours = statistics.median(overall)
    assert f"(all epochs / after the first): electra_tf {ours:.1f} / 23.0, Hugging Face 32.2 / 33.0." in table
    downstream.main(argv)
    assert len(runs.commands) == 10 and load(tmp_path) == results


def test_an_interrupted_run_and_only_it_runs_again(fake, tmp_path):
    runs, argv = fake
    downstream.main(argv)
    results = load(tmp_path)
    del results["finetune"]["ud_pos"]["step10"]
    results["probe"]["ud_pos"]["step20"] = {"settings": {}}  # started, never finished
    (tmp_path / "results.json").write_text(json.dumps(results))
    downstream.main(argv)
    again = runs.commands[10:]
    assert len(again) == 2
    assert {Path(command[4].split("=")[1]).relative_to(tmp_path / "work").as_posix() for command in again} == {
        "finetune/ud_pos/step10",
        "probe/ud_pos/step20",
    }
    assert "median" in load(tmp_path)["probe"]["ud_pos"]["step20"]


def test_the_report_says_not_run_for_every_missing_result(fake, tmp_path):
    _, argv = fake
    downstream.main([*argv, "--stages=probe,report", "--skip-steps=10"])
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines() if line.startswith("| ")}
    assert rows["step 20"][2:] == ["0.720", NOT_RUN, NOT_RUN, "50.3 (50.2–50.4) |"]
    assert rows["random init"][2:] == ["—", NOT_RUN, NOT_RUN, "30.3 (30.2–30.4) |"]
    assert "step 10" not in rows  # skipped
    assert rows["step 20, Hugging Face fine-tuning (PyTorch)"][2:] == ["—", NOT_RUN, NOT_RUN, f"{NOT_RUN} |"]
    assert (
        "- probe ud_pos ran: random init, step 20 (seeds [1, 2], 2 epochs, all training examples, learning rate 0.01)."
        in table
    )
    assert "- finetune: not run on conll2002_ner, ud_pos, pharmaconer, cantemist, xnli." in table
    svg = (tmp_path / "downstream.svg").read_text(encoding="utf-8")
    assert svg.count("<polyline") == 1 and "Full fine-tuning: no data" in svg


def test_the_report_says_what_ran_in_every_sitting_with_its_settings(fake, tmp_path):
    _, argv = fake
    downstream.main([*argv, "--stages=finetune", "--tasks=conll2002_ner", "--skip-steps=10"])
    downstream.main([*argv, "--stages=finetune", "--tasks=ud_pos", "--num-train-epochs=3"])
    downstream.main([*argv, "--stages=report"])
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines() if line.startswith("| ")}
    assert rows["step 10"][3:5] == [NOT_RUN, "40.3 (40.2–40.4)"]
    settings = "seeds [1, 2], {} epochs, all training examples, learning rate of the recipe"
    assert f"- finetune conll2002_ner ran: random init, step 20 ({settings.format(2)})." in table
    assert f"- finetune ud_pos ran: random init, step 10, step 20 ({settings.format(3)})." in table
    assert "- finetune: not run on pharmaconer, cantemist, xnli." in table


def test_the_peer_waits_for_electra_tfs_run_and_other_settings_are_refused(fake, tmp_path):
    runs, argv = fake
    downstream.main([*argv, "--stages=peer"])
    assert runs.commands == [] and "peer" not in load(tmp_path)
    downstream.main([*argv, "--stages=probe"])
    with pytest.raises(SystemExit, match=r"probe ud_pos random_init made with .*pass the same flags"):
        downstream.main([*argv, "--stages=probe", "--max-train-examples=5"])
    downstream.main([*argv, "--stages=finetune", "--tasks=conll2002_ner"])
    with pytest.raises(SystemExit, match=r"finetune conll2002_ner step20 made with .*pass the same flags"):
        downstream.main([*argv, "--stages=peer", "--num-trials=3"])  # the peer's seeds must be electra_tf's
    assert not any(command[1].endswith("hf_finetuning.py") for command in runs.commands)


def test_auto_precision_follows_the_cpus_bfloat16_instructions():
    from machine import fastest_cpu_precision

    assert fastest_cpu_precision(frozenset({"avx512f", "avx512_bf16"}))[0] == "mixed_bfloat16"
    assert fastest_cpu_precision(frozenset({"amx_bf16"}))[0] == "mixed_bfloat16"
    assert fastest_cpu_precision(frozenset({"avx512f", "avx512_vnni"}))[0] == "float32"


def test_pretraining_settings_are_chosen_once_and_kept(monkeypatch):
    monkeypatch.setattr(downstream, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    stage: dict = {}
    first = downstream.parse_args([])
    assert downstream.training_settings(first, stage) == ("mixed_bfloat16", False)
    assert "avx512_bf16" in stage["precision_choice"]
    # A later sitting on a CPU without bfloat16 keeps what the run started with.
    monkeypatch.setattr(downstream, "cpu_flags", lambda: frozenset())
    assert downstream.training_settings(downstream.parse_args([]), stage) == ("mixed_bfloat16", False)
    with pytest.raises(SystemExit, match="--precision float32 differs from the mixed_bfloat16"):
        downstream.training_settings(downstream.parse_args(["--precision=float32"]), stage)
    explicit: dict = {}
    assert downstream.training_settings(downstream.parse_args(["--precision=float32"]), explicit) == ("float32", False)
    assert "precision_choice" not in explicit


def test_an_interrupted_sitting_counts_up_to_its_last_checkpoint(tmp_path, monkeypatch):
    import os

    import stages

    checkpoint = tmp_path / "ckpt-500.index"
    checkpoint.write_text("")
    clock = iter([1000.0, 5000.0, 5100.0])
    monkeypatch.setattr(stages.time, "time", lambda: next(clock))
    record: dict = {}
    assert stages.start_sitting(record, []) == 1  # starts at 1000, then is killed
    os.utime(checkpoint, (1300.0, 1300.0))  # its last checkpoint was written at 1300
    assert stages.start_sitting(record, [checkpoint]) == 2  # starts at 5000
    assert record["sittings"][0] == {"start": 1000.0, "end": 1300.0}
    assert stages.end_sitting(record) == 300.0 + 100.0  # the steps after 1300 were trained again


def test_pretraining_checkpoints_divide_the_kept_steps_and_never_exceed_the_asked_interval():
    assert downstream.checkpoint_interval(1500, 250) == 250
    assert downstream.checkpoint_interval(1500, 400) == 375
    assert downstream.checkpoint_interval(4, 250) == 4
    assert downstream.checkpoint_interval(7, 5) == 1


def requirement_lines(tmp_path: Path) -> dict[str, str]:
    """The report's requirement lines, by their first words."""
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    verdict = re.compile(r": (?:met|NOT met|not measured)\b")
    return {verdict.split(line)[0][2:]: line for line in table.splitlines() if verdict.search(line)}


def test_the_report_checks_each_requirement_with_its_figures(fake, tmp_path):
    _, argv = fake
    downstream.main(argv)
    lines = requirement_lines(tmp_path)
    assert len(lines) == 4 and all(": met: " in line for line in lines.values())
    probe = lines["frozen probe beats random init by more than the spread and rises with steps"]
    assert "step 10 +10.0 points over random init (larger spread 0.2)" in probe and "step 10 → step 20 +10.0" in probe
    results = load(tmp_path)
    results["finetune"]["ud_pos"]["step20"] |= {"median": 0.35, "min": 0.34, "max": 0.36}  # falls below step 10
    results["peer"]["conll2002_ner"]["step20"]["agrees_within_spread"] = False
    (tmp_path / "results.json").write_text(json.dumps(results))
    downstream.main([*argv, "--stages=report"])
    lines = requirement_lines(tmp_path)
    assert ": NOT met: " in lines["the score does not fall as pretraining steps grow (within spread)"]
    assert (
        "finetune ud_pos: step 10 → step 20 -5.3"
        in lines["the score does not fall as pretraining steps grow (within spread)"]
    )
    assert (
        ": NOT met: " in lines["electra_tf's and Hugging Face's fine-tuning of the last checkpoint agree within spread"]
    )
    assert ": met: " in lines["full fine-tuning: the last checkpoint beats random init by more than the spread"]


def test_a_requirement_whose_runs_are_missing_is_not_measured(fake, tmp_path):
    _, argv = fake
    downstream.main([*argv, "--stages=probe,report"])
    lines = requirement_lines(tmp_path)
    assert ": met: " in lines["frozen probe beats random init by more than the spread and rises with steps"]
    for name, missing in (
        (
            "full fine-tuning: the last checkpoint beats random init by more than the spread",
            "conll2002_ner random init",
        ),
        ("the score does not fall as pretraining steps grow (within spread)", "finetune ud_pos (fewer than 2 points)"),
        (
            "electra_tf's and Hugging Face's fine-tuning of the last checkpoint agree within spread",
            "peer conll2002_ner",
        ),
    ):
        assert ": not measured (no result: " in lines[name] and missing in lines[name]
