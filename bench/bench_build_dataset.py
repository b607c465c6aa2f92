#!/usr/bin/env python3
"""Throughput and memory of ``build_pretraining_dataset.py`` on a slice of the shared Spanish corpus.

Each run builds a dataset from the first ``--megabytes`` of the corpus (cut at a line end, copied to
a temporary folder) with the real command line, as a user would, and reports from its
``dataset_info.json`` and the clock:

* end to end: input MB/s, tokens/s and examples/s over the whole command (process start-up,
  TensorFlow import and tokenizer set-up included, a fixed cost of several seconds per build);
* steady state: the same rates for the extra work of the large slice over a ``--baseline-megabytes``
  slice built the same way (start-up cancels out), which is the rate a large corpus sees; once from
  the wall clock, and once from the CPU time of all processes divided by ``--num-processes`` (the
  wall time on that many idle cores, since units run in parallel; on a shared machine the wall
  clock mostly measures the other jobs);
* peak RSS: the largest sum of resident memory over the command's process tree (sampled every
  50 ms), and the largest single process.

Figures are medians of ``--runs`` runs. The machine (CPU model, cores, load average) is printed with
them, because builds on a shared machine are slower.

    python bench/bench_build_dataset.py                     # 20 MB, 2 processes, 3 runs
    python bench/bench_build_dataset.py --megabytes 100 --num-processes 2 --runs 3
    python bench/bench_build_dataset.py --corpus MY_TEXT.txt

The default corpus is the project's shared 100 MB Spanish text in ``../shared/data`` beside the
checkout (its CI has it); elsewhere pass ``--corpus``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from machine import cpu_model

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "corpus" / "es_general_100mb.txt"


def write_slice(source: Path, megabytes: float, folder: Path) -> Path:
    """The first ``megabytes`` of ``source`` (whole lines) as ``folder/corpus/slice.txt``."""
    corpus = folder / "corpus"
    corpus.mkdir()
    with open(source, "rb") as handle:
        data = handle.read(int(megabytes * 1e6)) if megabytes else handle.read()
    if megabytes and len(data) == int(megabytes * 1e6):
        data = data[: data.rfind(b"\n") + 1]
    (corpus / "slice.txt").write_bytes(data)
    return corpus


def tree_rss_bytes(root: int) -> tuple[int, int]:
    """Sum and maximum of the resident memory of ``root`` and its descendants (from /proc)."""
    parents: dict[int, int] = {}
    resident: dict[int, int] = {}
    page = os.sysconf("SC_PAGE_SIZE")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as handle:
                resident[int(entry)] = int(handle.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
        parents[int(entry)] = int(fields[1])
    members = {root}
    changed = True
    while changed:
        new = {pid for pid, parent in parents.items() if parent in members and pid not in members}
        members |= new
        changed = bool(new)
    sizes = [resident.get(pid, 0) for pid in members]
    return sum(sizes), max(sizes, default=0)


def run_build(corpus: Path, output: Path, args: argparse.Namespace) -> dict[str, float]:
    """One build through the command line; its wall time, counts and peak memory."""
    command = [
        sys.executable,
        str(REPO_ROOT / "build_pretraining_dataset.py"),
        f"--corpus-dir={corpus}",
        f"--output-dir={output}",
        f"--num-processes={args.num_processes}",
        f"--vocab-file={args.vocab}",
        f"--max-seq-length={args.max_seq_length}",
    ]
    peak = {"sum": 0, "max": 0}
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            total, largest = tree_rss_bytes(process.pid)
            peak["sum"], peak["max"] = max(peak["sum"], total), max(peak["max"], largest)
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"build failed ({process.returncode}):\n{stderr[-3000:]}")
    stats = json.loads((output / "dataset_info.json").read_text())["stats"]
    return {
        "seconds": seconds,
        "cpu_seconds": (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime),
        "bytes": stats["bytes"],
        "tokens": stats["tokens"],
        "examples": stats["examples_train"] + stats["examples_eval"],
        "peak_tree_rss": peak["sum"],
        "peak_process_rss": peak["max"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="Text file to slice.")
    parser.add_argument("--megabytes", type=float, default=20, help="Slice size in MB (0: the whole file).")
    parser.add_argument(
        "--baseline-megabytes",
        type=float,
        default=6,
        help="Small slice for the steady-state rate; large enough to give every process a unit (units are 2 MB).",
    )
    parser.add_argument("--num-processes", type=int, default=2, help="--num-processes of the builds.")
    parser.add_argument("--runs", type=int, default=3, help="Runs per slice; medians are reported.")
    parser.add_argument("--vocab", type=Path, default=REPO_ROOT / "vocab" / "vocab.txt", help="vocab.txt to use.")
    parser.add_argument("--max-seq-length", type=int, default=128)
    args = parser.parse_args()
    if not args.corpus.is_file():
        parser.error(f"--corpus {args.corpus} not found; pass --corpus with a UTF-8 text file to slice.")

    print(f"machine: {cpu_model()}, {os.cpu_count()} logical cores, {platform.platform()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / "large").mkdir()
        (folder / "small").mkdir()
        large = write_slice(args.corpus, args.megabytes, folder / "large")
        small = write_slice(args.corpus, args.baseline_megabytes, folder / "small")
        runs: dict[str, list[dict[str, float]]] = {"large": [], "small": []}
        for run in range(args.runs):
            for name, corpus in (("small", small), ("large", large)):
                result = run_build(corpus, folder / f"out-{name}-{run}", args)
                runs[name].append(result)
                print(
                    f"run {run + 1} {name}: {result['bytes'] / 1e6:.1f} MB in {result['seconds']:.2f} s, "
                    f"peak RSS {result['peak_tree_rss'] / 2**20:.0f} MiB",
                    flush=True,
                )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    def median(name: str, key: str) -> float:
        return statistics.median(result[key] for result in runs[name])

    amounts = {key: median("large", key) for key in ("bytes", "tokens", "examples")}
    extra = {key: median("large", key) - median("small", key) for key in ("bytes", "tokens", "examples")}
    extra_seconds = max(median("large", "seconds") - median("small", "seconds"), 1e-9)
    extra_cpu = max(median("large", "cpu_seconds") - median("small", "cpu_seconds"), 1e-9)
    processes = args.num_processes
    rows = [
        ("end to end (wall clock)", median("large", "seconds"), amounts),
        ("steady state (wall clock)", extra_seconds, extra),
        (f"steady state from CPU time, {processes} idle cores", extra_cpu / processes, extra),
    ]
    print()
    print(f"{args.megabytes:g} MB slice of {args.corpus.name}, {processes} processes, median of {args.runs}")
    print("| measure | seconds | input MB/s | tokens/s | examples/s |")
    print("|---|---:|---:|---:|---:|")
    for label, seconds, counts in rows:
        print(
            f"| {label} | {seconds:.2f} | {counts['bytes'] / 1e6 / seconds:.1f} | "
            f"{counts['tokens'] / seconds:,.0f} | {counts['examples'] / seconds:,.0f} |"
        )
    print(
        f"CPU time: {median('large', 'cpu_seconds'):.1f} s for the large slice, "
        f"{median('small', 'cpu_seconds'):.1f} s for the baseline slice (all processes)"
    )
    print(
        f"peak RSS: {median('large', 'peak_tree_rss') / 2**20:.0f} MiB for the whole process tree, "
        f"{median('large', 'peak_process_rss') / 2**20:.0f} MiB for the largest process "
        f"(baseline slice: {median('small', 'peak_tree_rss') / 2**20:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
