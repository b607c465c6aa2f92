#!/usr/bin/env python3
"""Training throughput of ``ElectraPretrainer`` with ``model.fit``: step time, sequences/s, MFU, memory.

Every configuration runs in a fresh process (precision policies are global): the model is built
under the policy, compiled with the project's optimizer (loss-scaled under ``mixed_float16``) and
trained by ``model.fit`` on one batch of real examples repeated in memory, so the input pipeline
costs nothing. ``--warmup-steps`` steps run first (tracing, XLA compilation), then ``--runs`` timed
epochs of ``--steps`` steps; a row shows the median (min–max) of the runs' mean step time. The
PyTorch / Hugging Face step of ``bench_torch_reference.py`` runs on the same batch in the same
invocation, and the speed-up over it is printed.

A configuration is a precision policy, with ``+xla`` to XLA-compile the forward/backward function
(``jit_compile``): ``float32``, ``mixed_bfloat16+xla``, ... ``--configs all`` is the full grid.

    python bench/bench_training.py                          # ELECTRA-small, seq 128, batch 32, XLA off
    python bench/bench_training.py --configs all            # the full grid, XLA on too (slow on CPU)
    python bench/bench_training.py --batch-sizes 128 --configs float32 --torch-precisions float32
    python bench/bench_training.py --scaling --memory --no-ablations --no-torch
    python bench/bench_training.py --breakdown --configs float32,float32+xla --no-ablations --no-torch
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import tempfile
import time
from pathlib import Path
from typing import Any

import step_timing
from bench_torch_reference import TORCH_PRECISIONS, torch_measurements, torch_version

SCRIPT = Path(__file__).resolve()
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
ALL_CONFIGS = tuple(f"{precision}{suffix}" for suffix, precision in itertools.product(("", "+xla"), PRECISIONS))
DEFAULT_CONFIGS = "float32,float32+xla,mixed_bfloat16,mixed_bfloat16+xla,mixed_float16"
"""XLA on/off for float32 and bfloat16; float16 has no fast path on CPU (shown once, without XLA)."""
SCALING_SEQ_LENGTHS = (128, 256, 512)
SCALING_BATCH_SIZES = (32, 64, 128)
MEMORY_MODEL_SIZES = ("small", "base")


# ------------------------------------------------------------------------------------------------
# Child process: one configuration.
# ------------------------------------------------------------------------------------------------
def build_model(spec: dict[str, Any]):
    """The compiled pretrainer of ``spec`` (precision policy set first) and its batch (numpy)."""
    import keras

    from electra_tf.config import PretrainingConfig
    from electra_tf.model.masking import SpecialIds
    from electra_tf.model.pretrainer import ElectraPretrainer
    from electra_tf.optimization import create_optimizer

    features, facts = step_timing.load_batch(spec["batch_file"])
    keras.mixed_precision.set_dtype_policy(spec["precision"])
    overrides = {} if spec.get("dropout", True) else {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    config = PretrainingConfig.from_size(
        spec["model_size"],
        {
            "vocab_size": facts["vocab_size"],
            "max_seq_length": spec["seq_length"],
            "train_batch_size": spec["batch_size"],
            "precision": spec["precision"],
            "jit_compile": spec["xla"],
            "model_hparam_overrides": overrides,
        },
    )
    model = ElectraPretrainer(config, SpecialIds(facts["cls_id"], facts["sep_id"], facts["mask_id"]))
    optimizer = create_optimizer(config)
    if spec["precision"] == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer)
    return model, features


def fit_step_seconds(model, features, warmup_steps: int, steps: int, runs: int) -> list[float]:
    """Mean step time of each of ``runs`` epochs of ``model.fit`` (after ``warmup_steps`` untimed steps)."""
    import keras
    import tensorflow as tf

    class EpochTimer(keras.callbacks.Callback):
        """Wall time of each epoch (Keras reads the logs back at epoch end, so the work is done)."""

        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []
            self._start = 0.0

        def on_epoch_begin(self, epoch, logs=None) -> None:
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    dataset = tf.data.Dataset.from_tensors(features).repeat()
    model.fit(dataset, steps_per_epoch=warmup_steps, epochs=1, verbose=0)
    timer = EpochTimer()
    model.fit(dataset, steps_per_epoch=steps, epochs=runs, verbose=0, callbacks=[timer])
    return [seconds / steps for seconds in timer.seconds]


def call_seconds(function, repeats: int) -> float:
    """Median wall time of ``function()`` (results fetched) after one untimed call."""
    import statistics

    import tensorflow as tf

    def fetch(result) -> None:
        tf.nest.map_structure(lambda value: value.numpy() if hasattr(value, "numpy") else value, result)

    fetch(function())
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        fetch(function())
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def breakdown_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Where a step's time goes: the whole ``fit`` step, Keras' compiled train function called
    directly (no ``fit`` loop), the (XLA) forward/backward function alone and ``optimizer.apply``
    alone; the rest of the train function is masking counts, the clip and metric updates."""
    import tensorflow as tf

    model, features = build_model(spec)
    step_seconds = fit_step_seconds(model, features, spec["warmup_steps"], spec["steps"], spec["runs"])
    batch = {name: tf.constant(values) for name, values in features.items()}
    totals = model.step_denominators(batch["input_ids"], batch["input_mask"])
    arguments = (batch, tf.constant(0, tf.int64), tf.constant(0), totals.masked, totals.tokens, tf.constant(1.0))
    gradient_seconds = call_seconds(lambda: model._gradients(*arguments), spec["runs"])
    gradients, _ = model._gradients(*arguments)
    apply = tf.function(lambda: model.optimizer.apply(gradients, model.trainable_variables))
    iterator = iter(tf.data.Dataset.from_tensors(features).repeat())
    return {
        "step": min(step_seconds),
        "train_function": call_seconds(lambda: model.train_function(iterator), spec["runs"]),
        "gradients": gradient_seconds,
        "optimizer": call_seconds(apply, spec["runs"]),
    }


def run_child_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The child's work: a breakdown, or the timed ``fit`` runs and the peak memory."""
    if spec.get("breakdown"):
        return breakdown_child(spec)
    model, features = build_model(spec)
    step_seconds = fit_step_seconds(model, features, spec["warmup_steps"], spec["steps"], spec["runs"])
    return {"step_seconds": step_seconds, "peak_rss": step_timing.peak_rss_bytes()}


# ------------------------------------------------------------------------------------------------
# Parent process: plan, run, print.
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Plan:
    """What the parent measures, shared by every table."""

    timing: step_timing.Timing
    folder: Path
    peaks: dict[str, float]


def parse_config(name: str) -> tuple[str, bool]:
    """``"mixed_bfloat16+xla"`` → ``("mixed_bfloat16", True)``."""
    precision, _, xla = name.partition("+")
    return precision, xla == "xla"


def measure(plan: Plan, config_name: str, model_size: str, seq_length: int, batch_size: int) -> step_timing.Measurement:
    """One configuration of electra_tf in a child process."""
    precision, xla = parse_config(config_name)
    spec = {
        "model_size": model_size,
        "seq_length": seq_length,
        "batch_size": batch_size,
        "precision": precision,
        "xla": xla,
    }
    label = f"electra_tf {model_size} {precision}, XLA {'on' if xla else 'off'}"
    return step_timing.measure_in_child(
        SCRIPT, label, spec, plan.timing, plan.folder, plan.peaks, step_timing.MATMUL_DTYPE[precision]
    )


def print_speedups(rows: list[step_timing.Measurement]) -> None:
    """Sequences/s of each electra_tf row over each PyTorch row of the same table."""
    reference = [row for row in rows if row.label.startswith("PyTorch") and row.step_seconds]
    ours = [row for row in rows if not row.label.startswith("PyTorch") and row.step_seconds]
    for baseline in reference:
        print(f"\nsequences/s over {baseline.label} ({baseline.sequences_per_second:.2f} seq/s):")
        for row in ours:
            print(f"  {row.label}: {row.sequences_per_second / baseline.sequences_per_second:.2f}×")


def print_breakdown(plan: Plan, configs: list[str], args: argparse.Namespace, batch_size: int) -> None:
    """A table of where the step time goes, with and without dropout, per configuration."""
    print(f"\n### Step breakdown: ELECTRA-{args.model_size}, seq {args.seq_length}, batch {batch_size} (seconds)\n")
    print("| configuration | dropout | fit step | train function | forward+backward | optimizer.apply | rest |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for config_name, dropout in itertools.product(configs, (True, False)):
        precision, xla = parse_config(config_name)
        spec = {
            "model_size": args.model_size,
            "seq_length": args.seq_length,
            "batch_size": batch_size,
            "precision": precision,
            "xla": xla,
            "dropout": dropout,
            "breakdown": True,
            **dataclasses.asdict(plan.timing),
            "batch_file": str(step_timing.write_real_batch(args.seq_length, batch_size, plan.folder)),
        }
        answer = step_timing.run_child(SCRIPT, spec, plan.timing.timeout)
        label = f"{precision}, XLA {'on' if xla else 'off'}"
        if "error" in answer:
            print(f"| {label} | {'on' if dropout else 'off'} | failed: {answer['error']} | | | | |")
            continue
        rest = answer["train_function"] - answer["gradients"] - answer["optimizer"]
        print(
            f"| {label} | {'on' if dropout else 'off'} | {answer['step']:.3f} | {answer['train_function']:.3f} "
            f"| {answer['gradients']:.3f} | {answer['optimizer']:.3f} | {rest:.3f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    step_timing.add_common_flags(parser)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS, help="precisions, '+xla' for XLA; 'all': the grid")
    parser.add_argument("--torch-precisions", default=",".join(TORCH_PRECISIONS), help="PyTorch rows of the table")
    parser.add_argument("--no-ablations", dest="ablations", action="store_false", help="skip the main table")
    parser.add_argument("--no-torch", dest="torch", action="store_false", help="skip the PyTorch reference")
    parser.add_argument("--scaling", action="store_true", help="step time vs sequence length and batch size")
    parser.add_argument("--memory", action="store_true", help="peak RSS of small and base, batch 32, seq 128")
    parser.add_argument("--breakdown", action="store_true", help="time the parts of a step (profiling)")
    args = parser.parse_args()
    configs = (
        list(ALL_CONFIGS) if args.configs == "all" else step_timing.parse_list(args.configs, ALL_CONFIGS, "--configs")
    )
    torch_precisions = step_timing.parse_list(args.torch_precisions, TORCH_PRECISIONS, "--torch-precisions")
    batch_sizes = step_timing.parse_sizes(args.batch_sizes)

    peaks = step_timing.print_setup(torch_version(), ("float32", "bfloat16", "float16"))
    with tempfile.TemporaryDirectory(prefix="bench_training_") as name:
        plan = Plan(step_timing.timing_from_flags(args), Path(name), peaks)
        for batch_size in batch_sizes if args.ablations else ():
            rows = [measure(plan, config, args.model_size, args.seq_length, batch_size) for config in configs]
            if args.torch:
                rows += torch_measurements(
                    args.model_size, args.seq_length, batch_size, torch_precisions, plan.timing, plan.folder, peaks
                )
            step_timing.print_table(f"ELECTRA-{args.model_size}, seq {args.seq_length}, batch {batch_size}", rows)
            print_speedups(rows)
        if args.scaling:
            config = configs[0]
            rows = [measure(plan, config, args.model_size, length, 32) for length in SCALING_SEQ_LENGTHS]
            rows += [measure(plan, config, args.model_size, 128, size) for size in SCALING_BATCH_SIZES[1:]]
            step_timing.print_table(f"Scaling: ELECTRA-{args.model_size} {config}", rows)
        if args.memory:
            rows = [measure(plan, configs[0], size, 128, 32) for size in MEMORY_MODEL_SIZES]
            step_timing.print_table(f"Memory: {configs[0]}, seq 128, batch 32", rows)
        if args.breakdown:
            print_breakdown(plan, configs, args, batch_sizes[0])


if __name__ == "__main__":
    child_spec = step_timing.child_spec_from_argv()
    if child_spec is not None:
        step_timing.answer_parent(run_child_spec(child_spec))
    else:
        main()
