"""Shared parts of the training benchmarks (``bench_training.py``, ``bench_torch_reference.py``).

* :func:`write_real_batch`: one batch of real pretraining examples, built by our dataset builder
  from Spanish text, saved as ``.npz`` so that every framework trains on the same token ids
  (realistic padding and masking candidates).
* :func:`run_child`: one measured configuration in a fresh Python process (mixed-precision
  policies, thread pools and XLA caches are process-wide), answering with one JSON line.
* :class:`Measurement` and :func:`print_table`: step times to sequences/s, model TFLOP/s and MFU.
* :func:`measure_in_child`: the above put together for one configuration of either framework.
* :func:`print_setup`: the CPU, core count, load, library versions and the measured matmul peaks.

A step's FLOPs are counted as Google's ``flops_computation`` counts them
(:func:`electra_tf.flops.training_flops_per_example`); MFU is taken against the measured matmul
peak of the dtype the matmuls run in (:func:`electra_tf.flops.measured_matmul_peak`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from machine import cpu_model

from electra_tf import DEFAULT_VOCAB_FILE, REPO_ROOT, SAMPLE_CORPUS_DIR

SHARED_FIXTURE = REPO_ROOT.parent / "shared" / "data" / "fixtures" / "es_general_fixture_2mb.txt"
"""The text of the published figures (the project's shared data, beside its CI checkout)."""
FEATURES = ("input_ids", "input_mask", "segment_ids")
MATMUL_DTYPE = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}
"""The dtype the matmuls of each Keras precision policy (and the matching PyTorch setting) run in."""
CHILD_FLAG = "--child"


def write_real_batch(seq_length: int, batch_size: int, folder: Path) -> Path:
    """``folder/batch_{seq}_{batch}.npz``: the first ``batch_size`` training examples of Spanish text.

    The text is the shared 2 MB fixture where it exists, else the repository's sample corpus (token
    ids differ, step times hardly). The arrays are int32 ``[batch_size, seq_length]``
    ``input_ids``/``input_mask``/``segment_ids``, plus the vocab size and the [CLS]/[SEP]/[MASK] ids.
    The dataset is built (once per sequence length) under ``folder`` with the default vocab, as
    ``build_pretraining_dataset.py`` would.
    """
    from electra_tf.data.builder import BuildOptions, build_dataset
    from electra_tf.data.input_pipeline import evaluation_dataset

    path = folder / f"batch_{seq_length}_{batch_size}.npz"
    if path.exists():
        return path
    corpus_dir, patterns = (
        (SHARED_FIXTURE.parent, (SHARED_FIXTURE.name,)) if SHARED_FIXTURE.is_file() else (SAMPLE_CORPUS_DIR, ("*.txt",))
    )
    print(f"  real batch from {corpus_dir}/{','.join(patterns)}", flush=True)
    info = build_dataset(
        BuildOptions(
            corpus_dir=corpus_dir,
            output_dir=folder / f"dataset_{seq_length}",
            vocab_file=DEFAULT_VOCAB_FILE,
            max_seq_length=seq_length,
            file_patterns=patterns,
        )
    )
    if info.num_train_examples < batch_size:
        raise SystemExit(
            f"{corpus_dir} gives {info.num_train_examples} examples of length {seq_length}, < {batch_size}"
        )
    batch = next(iter(evaluation_dataset([shard.path for shard in info.train_shards], batch_size, seq_length)))
    np.savez(
        path,
        **{name: batch[name].numpy() for name in FEATURES},
        vocab_size=info.vocab_size,
        cls_id=info.cls_id,
        sep_id=info.sep_id,
        mask_id=info.mask_id,
    )
    return path


def load_batch(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The feature arrays and the scalar facts (vocab size, special ids) saved by :func:`write_real_batch`."""
    with np.load(path) as data:
        features = {name: data[name] for name in FEATURES}
        facts = {name: int(data[name]) for name in ("vocab_size", "cls_id", "sep_id", "mask_id")}
    return features, facts


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def usable_cores() -> int:
    """Cores this process may run on (what both frameworks are allowed to use)."""
    return len(os.sched_getaffinity(0))


def run_child(script: Path, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run ``script --child SPEC_JSON`` in a fresh process; its last stdout line is its JSON answer.

    A failed or timed-out child answers ``{"error": ...}`` so one broken configuration does not
    stop the table.
    """
    command = [sys.executable, str(script), CHILD_FLAG, json.dumps(spec)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        last_error = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {done.returncode}: {last_error[:200]}"}
    return json.loads(lines[-1])


def child_spec_from_argv() -> dict[str, Any] | None:
    """The spec when this process was started by :func:`run_child`, else None."""
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        return json.loads(sys.argv[2])
    return None


def answer_parent(result: dict[str, Any]) -> None:
    """Print a child's result as its last stdout line (read by :func:`run_child`)."""
    print(json.dumps(result), flush=True)


@dataclasses.dataclass
class Measurement:
    """Step times of one configuration (one value per timed run: the mean step of that run)."""

    label: str
    batch_size: int
    seq_length: int
    flops_per_example: int
    peak_flops: float | None
    step_seconds: list[float] = dataclasses.field(default_factory=list)
    peak_rss: int | None = None
    error: str | None = None

    @property
    def median_step(self) -> float:
        return statistics.median(self.step_seconds)

    @property
    def sequences_per_second(self) -> float:
        return self.batch_size / self.median_step

    @property
    def tflops(self) -> float:
        return self.sequences_per_second * self.flops_per_example / 1e12

    @property
    def mfu(self) -> float | None:
        return self.sequences_per_second * self.flops_per_example / self.peak_flops if self.peak_flops else None


@dataclasses.dataclass(frozen=True)
class Timing:
    """How a child times its configuration: untimed warm-up steps, then ``runs`` × ``steps``."""

    warmup_steps: int
    steps: int
    runs: int
    timeout: float


def add_common_flags(parser: argparse.ArgumentParser) -> None:
    """The flags both training benchmarks share: model, shapes and timing."""
    parser.add_argument("--model-size", default="small", choices=("small", "base", "large"))
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--batch-sizes", default="32", help="comma-separated batch sizes, e.g. 32,128")
    parser.add_argument("--warmup-steps", type=int, default=1, help="untimed steps first (tracing, compilation)")
    parser.add_argument("--steps", type=int, default=2, help="steps per timed run")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per configuration")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds allowed per configuration")


def timing_from_flags(args: argparse.Namespace) -> Timing:
    """The :class:`Timing` of the common flags (checked)."""
    if args.warmup_steps < 1 or args.steps < 1 or args.runs < 1:
        raise SystemExit("--warmup-steps, --steps and --runs must be at least 1")
    return Timing(args.warmup_steps, args.steps, args.runs, args.timeout)


def parse_sizes(text: str) -> list[int]:
    """Comma-separated positive integers (``--batch-sizes``)."""
    try:
        sizes = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise SystemExit(f"expected comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise SystemExit(f"expected positive integers, got {text!r}")
    return sizes


def parse_list(text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    """Comma-separated names, each one of ``allowed``."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown or not items:
        raise SystemExit(f"{flag}: expected some of {', '.join(allowed)}, got {text!r}")
    return items


def measure_in_child(
    script: Path,
    label: str,
    spec: dict[str, Any],
    timing: Timing,
    folder: Path,
    peaks: dict[str, float],
    matmul_dtype: str,
) -> Measurement:
    """Run one configuration of ``script`` in a child on a real batch and describe the result.

    ``spec`` must name ``model_size``, ``seq_length`` and ``batch_size``; the batch file and the
    timing are added to it. MFU is taken against ``peaks[matmul_dtype]``.
    """
    from electra_tf.config import PretrainingConfig
    from electra_tf.flops import training_flops_per_example

    seq_length, batch_size = spec["seq_length"], spec["batch_size"]
    batch_file = write_real_batch(seq_length, batch_size, folder)
    vocab_size = load_batch(batch_file)[1]["vocab_size"]
    config = PretrainingConfig.from_size(spec["model_size"], {"max_seq_length": seq_length, "vocab_size": vocab_size})
    full_spec = {**spec, **dataclasses.asdict(timing), "batch_file": str(batch_file)}
    answer = run_child(script, full_spec, timing.timeout)
    print(f"  {label}, batch {batch_size}, seq {seq_length}: {answer.get('error') or 'done'}", flush=True)
    return Measurement(
        label=label,
        batch_size=batch_size,
        seq_length=seq_length,
        flops_per_example=training_flops_per_example(config),
        peak_flops=peaks.get(matmul_dtype),
        step_seconds=answer.get("step_seconds", []),
        peak_rss=answer.get("peak_rss"),
        error=answer.get("error"),
    )


def print_table(title: str, measurements: list[Measurement]) -> None:
    """A markdown table: median (min–max) step time, sequences/s, model TFLOP/s, MFU, peak RSS."""
    print(f"\n### {title}\n")
    print("| configuration | batch | seq | step s, median (min–max) | seq/s | model TFLOP/s | MFU | peak RSS |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for m in measurements:
        if m.error or not m.step_seconds:
            print(f"| {m.label} | {m.batch_size} | {m.seq_length} | failed: {m.error} | | | | |")
            continue
        spread = f"{m.median_step:.3f} ({min(m.step_seconds):.3f}–{max(m.step_seconds):.3f})"
        mfu = f"{m.mfu:.1%}" if m.mfu is not None else "n/a"
        rss = f"{m.peak_rss / 2**30:.2f} GiB" if m.peak_rss else ""
        print(
            f"| {m.label} | {m.batch_size} | {m.seq_length} | {spread} | {m.sequences_per_second:.2f} "
            f"| {m.tflops:.3f} | {mfu} | {rss} |"
        )


def print_setup(libraries: dict[str, str], dtypes: tuple[str, ...]) -> dict[str, float]:
    """Print the machine and measure (and print) the matmul peak of each dtype; returns the peaks."""
    import tensorflow as tf

    from electra_tf.flops import measured_matmul_peak

    gpus = tf.config.list_physical_devices("GPU")
    device = f"TensorFlow device: {len(gpus)} GPU(s)" if gpus else "CPU only: GPU figures are not measured"
    print(f"machine: {machine_description({'TensorFlow': tf.__version__, **libraries})}; {device}")
    peaks = {dtype: measured_matmul_peak(dtype) for dtype in dtypes}
    described = ", ".join(f"{dtype} {flops / 1e9:.1f} GFLOP/s" for dtype, flops in peaks.items())
    print(f"measured matmul peak (2048² matmul in TensorFlow, best of 3): {described}", flush=True)
    return peaks


def machine_description(libraries: dict[str, str]) -> str:
    """One paragraph naming the date, CPU, cores, load average and library versions."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    versions = ", ".join(f"{name} {version}" for name, version in libraries.items())
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {cpu_model()}, {usable_cores()} usable cores ({os.cpu_count()} logical), "
        f"load average {load} (1/5/15 min); Python {platform.python_version()}, {versions}"
    )
