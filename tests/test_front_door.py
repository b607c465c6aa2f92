"""The README's set-up commands are the ones CI runs, and the CLIs document their flags."""

import re
import subprocess
import sys
from pathlib import Path

from shared_data import is_shared_data_skip, requires_shared_data

from electra_tf import REPO_ROOT


def _readme_commands() -> list[str]:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    return [line for line in re.findall(r"^(python3 -m venv .*)$", setup, flags=re.MULTILINE)]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    quickstart, tests = commands
    assert "electra_tf.cli.quickstart" in quickstart
    assert "pytest" in tests
    ci_script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert f"'{tests}'" in ci_script


def test_cli_help_documents_every_flag():
    for script, expected in [
        ("run_pretraining.py", ["--model-size", "--data-dir", "--model-dir", "--hparams", "--precision"]),
        ("run_finetuning.py", ["--task", "--init-checkpoint", "random-init", "--layerwise-lr-decay", "--num-trials"]),
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


def test_ci_runs_the_suite_from_a_clone_without_the_shared_data():
    ci_script = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ".venv/bin/python .ci/check_standalone.py || exit 1" in ci_script
    assert (REPO_ROOT / ".ci" / "check_standalone.py").is_file()


def test_only_shared_data_py_knows_where_the_shared_data_is():
    """Every test finds ../shared through tests/shared_data.py, so every such test can skip without it."""
    others = [path for path in sorted((REPO_ROOT / "tests").glob("*.py")) if path.name != "shared_data.py"]
    readers = [path.name for path in others if re.search(r"""/\s*["']shared["']""", path.read_text())]
    assert readers == []


def test_a_test_without_the_shared_data_skips_with_the_reason_ci_accepts():
    marker = requires_shared_data("no/such/file.txt", "no/such/other.txt")
    assert marker.args == (True,)
    assert marker.kwargs["reason"] == "needs ../shared/data/no/such/file.txt (the project's CI has it)"
    assert is_shared_data_skip(marker.kwargs["reason"])
    assert not is_shared_data_skip("needs a GPU")
    assert requires_shared_data().args == (False,)  # nothing needed: the test runs


def _project_text_files() -> list[Path]:
    """The repository's code and documentation (not the sample corpus or the vocab)."""
    files = [*REPO_ROOT.glob("*.py"), *REPO_ROOT.glob("*.md"), REPO_ROOT / ".ci" / "run"]
    for folder in ("electra_tf", "tests", "bench", "vocab", "docs", ".ci"):
        files += [*(REPO_ROOT / folder).rglob("*.py"), *(REPO_ROOT / folder).rglob("*.md")]
    return sorted(set(files))


def test_nothing_points_at_documents_outside_the_repository():
    """The design notes the project grew from are not shipped; its own pages live in docs/."""
    outside = re.compile(r"ELECTRA_SPEC|DESIGN\.md|FINETUNING\.md|shared/docs|\bspec §|pitfall §")
    found = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in _project_text_files()
        if path.name != "test_front_door.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert found == []


def _anchors(markdown: Path) -> set[str]:
    """GitHub's anchors of the headings of ``markdown``."""
    headings = re.findall(r"^#+ (.+)$", markdown.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


def test_references_to_the_docs_pages_and_their_sections_resolve():
    checked = 0
    for path in _project_text_files():
        text = path.read_text(encoding="utf-8")
        # Markdown links are relative to the page; code and docstrings name paths from the repository root.
        base = path.parent if path.suffix == ".md" else REPO_ROOT
        for target, anchor in re.findall(r"((?:\.\./)*(?:[\w-]+/)*[\w-]+\.md)(?:#([\w-]+))?", text):
            resolved = (base / target).resolve()
            if not ("/" in target or anchor or path.parent.name == "docs"):
                continue  # a file name in prose (a model card's README.md, ...)
            assert resolved.is_file(), f"{path.relative_to(REPO_ROOT)} points at {target}, which does not exist"
            assert not anchor or anchor in _anchors(resolved), f"{path.relative_to(REPO_ROOT)}: no {target}#{anchor}"
            checked += 1
    assert checked > 30
