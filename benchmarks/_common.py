"""Helpers shared by the benchmarks: timing, the machine, the data."""

from __future__ import annotations

import os
import platform
import resource
import statistics
import time
from collections.abc import Callable

import torch

# A warm-up run before the timed ones (allocator, kernels): two batches a task, each
# evaluated, whatever the preset's schedule.
WARM_UP = {"batches_per_task": 2, "eval_every": 1, "eval_switch_window": 0}


def data_dir() -> str | None:
    """MNIST for benchmarks: $STABGAP_DATA, else the shared copy beside the repository."""
    here = os.path.dirname(os.path.abspath(__file__))
    shared = os.path.join(here, "..", "..", "shared", "data", "mnist")
    return os.environ.get("STABGAP_DATA") or (shared if os.path.isdir(shared) else None)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:  # Linux names the CPU model here; platform.processor() often says only x86_64
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads"
    )


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    return statistics.median(timed(fn) for _ in range(repeats))


def matmul_rate(m: int, k: int, n: int, repeats: int = 7, dtype=torch.float32) -> float:
    """This machine's matmul rate (FLOP/s) on one (m×k)@(k×n) product of `dtype`, in-process,
    with the kernels the runs use (float32: :mod:`stabgap.core.models.cpu_matmul`'s)."""
    from stabgap.core.models.cpu_matmul import product

    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    return 2 * m * k * n / median_time(lambda: product(a, b), repeats, warmup=2)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed_runs(configs: list, stream, how: str = "alone") -> tuple[list, float]:
    """Train `configs` and time it: each 'alone', as sweeps do ('runs': train_runs, which
    stacks on a GPU), or as one 'stack' (train_stack) on any device."""
    from stabgap.core.train import train_runs, train_stack

    t0 = time.perf_counter()
    if how == "alone":
        results = [train_stack([c], stream)[0] for c in configs]
    else:
        results = (train_runs if how == "runs" else train_stack)(configs, stream)
    return results, time.perf_counter() - t0
