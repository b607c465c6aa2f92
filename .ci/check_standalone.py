"""The default test suite must pass on a user's clone, which has no ``../shared`` beside it.

Clones this checkout's commit into a fresh temporary folder (so nothing is beside it), runs the
default suite there with the Python that runs this script (the CI venv), and fails unless every
test passed or skipped for lack of the shared data (``tests/shared_data.py``'s one-line reason).

    .venv/bin/python .ci/check_standalone.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent


def main() -> int:
    commit = _git("rev-parse", "HEAD", cwd=CHECKOUT)
    with tempfile.TemporaryDirectory(prefix="electra_tf_standalone_") as scratch:
        clone = Path(scratch) / "electra_tf"
        _git("clone", "--quiet", "--no-hardlinks", str(CHECKOUT), str(clone), cwd=Path(scratch))
        _git("checkout", "--quiet", commit, cwd=clone)
        if (clone.parent / "shared").exists():
            return _fail(f"{clone.parent / 'shared'} exists; the check needs a clone with nothing beside it")
        imported = _run_in(clone, "-c", "import electra_tf; print(electra_tf.__file__)").stdout.strip()
        if not Path(imported).resolve().is_relative_to(clone.resolve()):
            return _fail(f"the clone's tests would import electra_tf from {imported}, not from {clone}")
        report = clone / "standalone-report.xml"
        print(f"running the default suite in {clone} (commit {commit[:12]}), no ../shared beside it", flush=True)
        pytest = subprocess.run([sys.executable, "-m", "pytest", "-q", f"--junitxml={report}"], cwd=clone)
        return _judge(pytest.returncode, report, clone)


def _judge(returncode: int, report: Path, clone: Path) -> int:
    """0 when pytest passed and every skip was for the shared data; else 1 with the reasons."""
    sys.path.insert(0, str(clone / "tests"))
    from shared_data import is_shared_data_skip

    if returncode != 0 or not report.is_file():
        return _fail(f"pytest exited with status {returncode} in the clone")
    cases = list(ElementTree.parse(report).getroot().iter("testcase"))
    skipped = [(case, element) for case in cases for element in case.iter("skipped")]
    unexpected = [
        f"{case.get('classname')}::{case.get('name')}: {element.get('message')}"
        for case, element in skipped
        if not is_shared_data_skip(element.get("message") or "")
    ]
    if unexpected:
        return _fail("tests skipped for another reason than the shared data:\n  " + "\n  ".join(unexpected))
    print(f"stand-alone suite passed: {len(cases) - len(skipped)} tests ran, {len(skipped)} skipped (shared data)")
    return 0


def _run_in(clone: Path, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *arguments], cwd=clone, capture_output=True, text=True, check=True)


def _git(*arguments: str, cwd: Path) -> str:
    return subprocess.run(["git", *arguments], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def _fail(message: str) -> int:
    print(f"stand-alone check failed: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
