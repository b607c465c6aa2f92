"""The machine a benchmark runs on: its CPU's name, and the training settings that are fastest on it.

The benchmarks record the CPU next to every figure, and the downstream benchmark picks its pretraining
precision from the CPU's instruction sets: this project's own measurements ("Training throughput" and
"Fine-tuning throughput" in ``bench/RESULTS.md``) found ``mixed_bfloat16`` 1.6x faster than float32 on a
CPU with bfloat16 matmul instructions (AVX512_BF16 or AMX) and 2.6x slower on one without. XLA changed the
float32 pretraining step by 5% at most, one way on one machine and the other way on the other, and costs
compilation time and 0.7 GiB, so it stays off.
"""

from __future__ import annotations

import platform
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
BFLOAT16_MATMUL_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name`` line of /proc/cpuinfo (Linux), or None."""
    try:
        lines = CPUINFO.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> frozenset[str]:
    """The instruction-set flags of the first CPU in /proc/cpuinfo (empty where there is none)."""
    return frozenset((_cpuinfo_field("flags") or "").split())


def fastest_cpu_precision(flags: frozenset[str]) -> tuple[str, str]:
    """``(precision, why)``: the fastest pretraining precision measured on a CPU with ``flags``."""
    found = sorted(BFLOAT16_MATMUL_FLAGS & flags)
    if found:
        return "mixed_bfloat16", f"the CPU has bfloat16 matmul instructions ({', '.join(found)})"
    return "float32", "the CPU has no bfloat16 matmul instructions (AVX512_BF16 or AMX)"
