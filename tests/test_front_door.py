"""The README's set-up commands are the ones CI runs, and the CLIs document their flags."""

import re
import subprocess
import sys

from electra_tf import REPO_ROOT


def _readme_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    return [line for line in re.findall(r"^(python3 -m venv .*)$", setup, flags=re.MULTILINE)]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    quickstart, tests = commands
    assert "electra_tf.quickstart" in quickstart
    assert "pytest" in tests
    ci_script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"'{tests}'" in ci_script


def test_cli_help_documents_every_flag():
    for script, expected in [
        ("run_pretraining.py", ["--model-size", "--data-dir", "--model-dir", "--hparams", "--precision"]),
        ("build_pretraining_dataset.py", ["--corpus-dir", "--vocab-file", "--max-seq-length", "--num-shards"]),
        ("export_to_hf.py", ["--model-dir", "--output-dir", "--checkpoint", "--hub-repo-prefix", "overwrite"]),
        ("vocab/build_vocab.py", ["--corpus-dir", "--output", "--vocab-size", "do-lower-case"]),
        ("electra_tf/cli/index_tfrecords.py", ["--tfrecords", "--eval-tfrecords", "--vocab-file", "--output-dir"]),
    ]:
        # absl exits with status 1 after printing help, so the status is not checked.
        result = subprocess.run([sys.executable, str(REPO_ROOT / script), "--help"], capture_output=True, text=True)
        for name in expected:
            assert name in result.stdout, (script, name)
        # Every flag of the tool has help text (absl prints "--name: text").
        assert not re.search(r"^\s+--[\w\[\]-]+:\s*$", result.stdout, flags=re.MULTILINE), result.stdout
