"""The learning-parity benchmark's bookkeeping (bench/parity_with_google.py), fast.

The real measurement trains both codes for hours; here every sub-process (the record builder, each
code's training, the export, the evaluator) is answered by a stand-in that writes the files the real
one writes, so what is run, skipped, resumed, recorded and summarised can be checked in seconds.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from electra_tf import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "bench"))
import parity_with_google


def flags_of(command: list[str]) -> dict[str, str]:
    return dict(part[2:].split("=", 1) for part in command if part.startswith("--") and "=" in part)


def trainings(commands: list[list[str]]) -> list[str]:
    """The runs trained by ``commands`` (``config/code/seedN``), in order."""
    names = []
    for command in commands:
        if Path(command[1]).name == "google_launcher.py":
            names.append(Path(flags_of(command)["data-dir"]))
        elif Path(command[1]).name == "run_pretraining.py" and "--do-eval" not in command:
            names.append(Path(flags_of(command)["model-dir"]))
    return ["/".join(path.parts[-3:]) for path in names]


class FakeCommands:
    """Writes what each sub-process would; a scored model's disc AUC is 0.6 + seed/100 for Google's
    runs, 0.5 + seed/100 for electra_tf's and 0.7 + seed/100 for an ablation's; ``fail_training`` names
    a run killed after its first checkpoint."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self.fail_training: str | None = None

    def __call__(self, command: list[str], log_file: Path) -> float:
        self.commands.append(command)
        flags = flags_of(command)
        script = Path(command[1]).name
        if script == "build_pretraining_dataset.py":
            output = Path(flags["output-dir"])
            output.mkdir(parents=True)
            (output / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhola\n")
            stats = {"examples_train": 300, "examples_eval": 40}
            (output / "dataset_info.json").write_text(json.dumps({"stats": stats, "do_lower_case": False}))
        elif script == "google_launcher.py":
            hparams = json.loads(flags["hparams"])
            self.write_checkpoints(
                Path(flags["data-dir"]) / "models" / "google",
                "model.ckpt-{}.index",
                hparams["num_train_steps"],
                hparams["save_checkpoints_steps"],
            )
        elif script == "export_to_hf.py":
            (Path(flags["output-dir"]) / "discriminator").mkdir(parents=True)
            (Path(flags["output-dir"]) / "discriminator" / "config.json").write_text("{}")
        elif "--do-eval" in command:
            code, seed = re.search(r"/(google|electra_tf\w*)/seed(\d+)/", flags["init-checkpoint"]).groups()
            auc = {"google": 0.6, "electra_tf": 0.5}.get(code, 0.7) + int(seed) / 100
            metrics = {key: auc for key, _ in parity_with_google.METRICS}
            Path(flags["model-dir"]).mkdir(parents=True, exist_ok=True)
            (Path(flags["model-dir"]) / "eval_results.json").write_text(json.dumps(metrics))
        else:
            self.write_checkpoints(
                Path(flags["model-dir"]) / "checkpoints",
                "ckpt-{}.index",
                int(flags["num-train-steps"]),
                int(flags["save-checkpoints-steps"]),
            )
        return 1.0

    def write_checkpoints(self, folder: Path, pattern: str, steps: int, every: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for step in range(every, steps + 1, every):
            (folder / pattern.format(step)).write_text("")
            if self.fail_training and self.fail_training in str(folder):
                self.fail_training = None
                raise SystemExit("killed")


@pytest.fixture
def fake(tmp_path, monkeypatch) -> tuple[FakeCommands, list[str]]:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("uno\n\ndos\n\ntres\n", encoding="utf-8")
    commands = FakeCommands()
    monkeypatch.setattr(parity_with_google, "run_command", commands)
    argv = [
        f"--google-code-dir={tmp_path / 'electra'}",
        f"--google-python={sys.executable}",
        f"--work-dir={tmp_path / 'work'}",
        f"--results={tmp_path / 'results.json'}",
        f"--corpus={corpus}",
        "--num-train-steps=4",
        "--save-every=2",
        "--seeds=3",
    ]
    return commands, argv


def load(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "results.json").read_text())


def test_the_slice_keeps_every_nth_document(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a1\na2\n\nb1\n\n\nc1\n\nd1\nd2\n\ne1\n", encoding="utf-8")
    parity_with_google.slice_corpus(corpus, tmp_path / "slice.txt", keep_every=2)
    documents = (tmp_path / "slice.txt").read_text(encoding="utf-8").split("\n\n")
    assert [document.strip("\n") for document in documents if document.strip()] == ["a1\na2", "c1", "e1"]


def test_every_run_trained_and_scored_once_then_nothing_again(fake, tmp_path, capsys):
    commands, argv = fake
    parity_with_google.main(argv)
    results = load(tmp_path)
    assert set(results["runs"]) == {
        f"{c}/{code}/seed{s}" for c in ("aggressive", "stable") for code in parity_with_google.CODES for s in (1, 2, 3)
    }
    builds = [command for command in commands.commands if command[1].endswith("build_pretraining_dataset.py")]
    assert len(builds) == 1 and sorted(trainings(commands.commands)) == sorted(results["runs"])
    google_hparams = json.loads(flags_of(commands.commands[1])["hparams"])
    assert (google_hparams["learning_rate"], google_hparams["num_warmup_steps"], google_hparams["vocab_size"]) == (
        1e-3,
        100,
        6,
    )
    assert google_hparams["do_lower_case"] is False
    for record in results["runs"].values():
        assert set(record["eval"]) == {"2", "4"} and record["steps"] == 4 and len(record["sittings"]) == 1
    table = capsys.readouterr().out
    assert "| google | 3 | 0.620 ± 0.010 (0.610–0.630) |" in table
    assert "| electra_tf | 3 | 0.520 ± 0.010 (0.510–0.530) |" in table
    assert "| 0.620 / 0.620 (2/4) | 0.620 / 0.620 |" in table.split("| stable/google/seed2 |")[1].splitlines()[0]

    done = len(commands.commands)
    parity_with_google.main(argv)
    assert len(commands.commands) == done and load(tmp_path)["runs"] == results["runs"]


def test_an_interrupted_run_resumes_in_a_second_sitting_and_only_it_trains_again(fake, tmp_path):
    commands, argv = fake
    commands.fail_training = "stable/electra_tf/seed2"
    with pytest.raises(SystemExit, match="killed"):
        parity_with_google.main(argv)
    record = load(tmp_path)["runs"]["stable/electra_tf/seed2"]
    assert "train_wall_s" not in record and "eval" not in record and len(record["sittings"]) == 1
    before = len(commands.commands)
    parity_with_google.main(argv)
    assert trainings(commands.commands[before:]) == [
        "stable/electra_tf/seed2",
        *(f"{config}/{code}/seed3" for config in ("aggressive", "stable") for code in ("google", "electra_tf")),
    ]
    record = load(tmp_path)["runs"]["stable/electra_tf/seed2"]
    assert len(record["sittings"]) == 2 and set(record["eval"]) == {"2", "4"}


def test_a_missing_score_is_computed_again_and_a_code_without_runs_says_not_run(fake, tmp_path, capsys):
    commands, argv = fake
    parity_with_google.main([*argv, "--seeds=1", "--codes=google"])
    results = load(tmp_path)
    del results["runs"]["aggressive/google/seed1"]["eval"]["4"]
    (tmp_path / "results.json").write_text(json.dumps(results))
    before = len(commands.commands)
    parity_with_google.main([*argv, "--seeds=1", "--codes=google"])
    again = commands.commands[before:]
    assert len(again) == 1 and "--do-eval" in again[0] and "model.ckpt-4" in flags_of(again[0])["init-checkpoint"]
    assert "| electra_tf | 0 | not run |" in capsys.readouterr().out


def test_an_ablation_trains_electra_tf_with_its_one_switch_and_gets_its_own_row(fake, tmp_path, capsys):
    commands, argv = fake
    parity_with_google.main([*argv, "--seeds=1", "--codes=electra_tf"])
    assert "electra_tf_google_masking" not in capsys.readouterr().out  # no row before it has runs
    before = len(commands.commands)
    parity_with_google.main([*argv, "--seeds=1", "--codes=electra_tf_google_masking"])
    trained = [command for command in commands.commands[before:] if "--do-eval" not in command]
    assert trainings(trained) == [f"{config}/electra_tf_google_masking/seed1" for config in ("aggressive", "stable")]
    plain = next(command for command in commands.commands[:before] if trainings([command]))
    ablated = trained[0]
    assert [part for part in ablated if part not in plain and "model-dir" not in part] == ["--masking=google"]
    table = capsys.readouterr().out
    assert "| electra_tf | 1 | 0.510 |" in table
    assert "| electra_tf_google_masking | 1 | 0.710 |" in table
    with pytest.raises(SystemExit):
        parity_with_google.main([*argv, "--codes=electra_tf,nonsense"])
    assert "--codes: unknown nonsense" in capsys.readouterr().err
