"""What the long, resumable benchmarks share: a durable results file and logged sub-commands.

``bench/parity_with_google.py`` and ``bench/downstream.py`` run for hours in several sittings. Each
finished stage is written to a JSON results file at once (atomically), and skipped when the benchmark
is run again, so an interruption costs at most the stage that was running. Every sub-command's output
goes to its own log file; a failed sub-command stops the benchmark with the log's tail, never with a
default number standing in for the missing result.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from electra_tf.atomic_io import write_json_atomically  # noqa: E402


class Results:
    """A JSON object on disk that grows by finished stages, each write atomic."""

    def __init__(self, path: Path, empty: dict[str, Any]) -> None:
        self.path = path
        self.values: dict[str, Any] = json.loads(path.read_text()) if path.exists() else empty

    def section(self, *keys: str) -> dict[str, Any]:
        """The nested object at ``keys``, created empty where missing."""
        node = self.values
        for key in keys:
            node = node.setdefault(key, {})
        return node

    def save(self) -> None:
        write_json_atomically(self.path, self.values)


def start_sitting(record: dict[str, Any], checkpoint_files: Iterable[Path]) -> int:
    """Open a sitting of a resumable training run in ``record["sittings"]``; returns its number (1, 2, ...).

    A sitting left open by an interruption ends at its last checkpoint among ``checkpoint_files``: the
    steps after it are trained again, so only the time up to it counts towards the run's wall time.
    """
    sittings = record.setdefault("sittings", [])
    if sittings and "end" not in sittings[-1]:
        written = [path.stat().st_mtime for path in checkpoint_files]
        sittings[-1]["end"] = max([sittings[-1]["start"], *written])
    sittings.append({"start": time.time()})
    return len(sittings)


def end_sitting(record: dict[str, Any]) -> float:
    """Close the open sitting; returns the wall time of all the run's sittings, in seconds."""
    sittings = record["sittings"]
    sittings[-1]["end"] = time.time()
    return round(sum(sitting["end"] - sitting["start"] for sitting in sittings), 1)


def logger(prefix: str):
    """A ``log(message)`` that prints ``[prefix HH:MM:SS] message`` at once."""

    def log(message: str) -> None:
        print(f"[{prefix} {time.strftime('%H:%M:%S')}] {message}", flush=True)

    return log


def run_command(command: list[str], log_file: Path, env: dict[str, str] | None = None) -> float:
    """Run ``command`` with its output in ``log_file``; returns the wall time; stops on failure."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_file, "w", encoding="utf-8") as output:
        status = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, env=env, check=False).returncode
    if status != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace")[-3000:]
        sys.exit(f"error: {' '.join(command[:3])} ... failed (status {status}); see {log_file}:\n{tail}")
    return time.perf_counter() - start


def hf_finetuning_command(model_dir: Path, task: str, data_dir: Path, output: Path, *flags: str) -> list[str]:
    """The command line of ``bench/hf_finetuning.py`` (the PyTorch peer) in this Python: fine-tune the
    ``model_dir`` export on ``task``'s data in ``data_dir``, results to ``output``, then ``flags``."""
    return [
        sys.executable,
        str(REPO_ROOT / "bench" / "hf_finetuning.py"),
        f"--model-dir={model_dir}",
        f"--task={task}",
        f"--data-dir={data_dir}",
        f"--output={output}",
        *flags,
    ]
