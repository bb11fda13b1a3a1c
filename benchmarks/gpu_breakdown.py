"""Where a stacked paper run's GPU time goes, and what all 16 experiments × 15 seeds cost.

The GPU campaign (gpu_campaign.py) left two questions that only a GPU answers:

1. **Kernels by kind.** A stacked paper-protocol run took 3.3 ms per run-batch on an H200
   against 1.8 ms at the 8192³ fp32 matmul rate. Is the rest the matmuls themselves
   running slower at this run's shapes, or the passes around them? The profiler's kernel
   times of a stack of R runs (tasks 1-3 in equal parts, as in a full run) are summed by
   kind (matmul, elementwise, reduction, indexing, optimiser, random numbers, copies), and
   the matmuls' own rate in place is their FLOPs (:func:`stabgap.cost.flops.run_cost`) over
   their kernel time.
2. **All 16 experiments × 15 seeds**, which no 10-minute device call can run whole. The
   sweep forms one stack per group of compatible runs (:func:`stabgap.studies.sweep.group_stacks`,
   sized by memory); each distinct stack is timed here at its own size, over two run
   lengths, which separates its fixed cost (building, first evaluation) from its cost per
   batch. The full sweep's time is then Σ over its stacks of fixed + batches × per-batch
   cost: a model from measurements at the real stack sizes, not an extrapolation from one
   seed (whose stacks are smaller, so slower per run).

Everything is written to ``OUT/breakdown.json`` and ``OUT/breakdown.md`` as it goes.

    python benchmarks/gpu_breakdown.py --out runs/gpu-breakdown          # on the GPU
    python benchmarks/gpu_breakdown.py --tiny --out /tmp/breakdown        # anywhere (CI)
"""

from __future__ import annotations

import argparse
import os
from collections import Counter, defaultdict
from pathlib import Path

import torch
from _common import data_dir
from gpu_campaign import (
    SWEEP_MODEL,
    Campaign,
    all_experiments,
    paper_config,
    step_machine,
    timed_on,
)
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from stabgap.core.device import resolve_device
from stabgap.core.streams import build_stream
from stabgap.core.train import stack_key, train_stack
from stabgap.cost.flops import run_cost
from stabgap.studies.sweep import group_stacks

# Kernel kinds, by what their names contain (first match wins; lower case).
KINDS = (
    ("matmul", ("gemm", "cutlass", "xmma", "cublas", "splitk")),
    ("optimiser", ("adam", "multi_tensor", "foreach")),
    ("random numbers", ("distribution", "philox", "randperm", "curand")),
    ("sort/top-k", ("topk", "sort", "radix", "bitonic")),
    ("indexing", ("index", "gather", "scatter")),
    ("reduction", ("reduce", "norm", "argmax", "max_kernel", "sum_kernel")),
    ("copy", ("memcpy", "memset", "copy", "cat", "fill")),
    ("elementwise", ("elementwise", "vectorized", "unrolled", "launch_kernel", "threshold")),
)


def kernel_kind(name: str) -> str:
    """The kind of a CUDA kernel from its name.

    >>> kernel_kind("sm90_xmma_gemm_f32f32_tf32f32_f32_nn_n_tilesize128x128x32")
    'matmul'
    >>> kernel_kind("void at::native::vectorized_elementwise_kernel<4, ...>")
    'elementwise'
    >>> kernel_kind("void at::native::(anonymous namespace)::fused_adam_kernel")
    'optimiser'
    >>> kernel_kind("something new")
    'other'
    """
    low = name.lower()
    return next((kind for kind, keys in KINDS if any(k in low for k in keys)), "other")


def kernel_times(events) -> dict[str, tuple[float, int]]:
    """Device µs and launches per kernel name, from ``prof.key_averages()``."""
    out = {}
    for e in events:
        if e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False):
            out[e.key] = (e.self_device_time_total, e.count)
    return out


def step_kernels(c: Campaign, device: torch.device, tiny: bool, sizes: list[int]) -> None:
    """Kernel time by kind per run-batch, for stacks of each R in `sizes`."""
    per_task = 2 if tiny else 6
    base = paper_config(tiny, device, batches_per_task=per_task)
    stream = build_stream(base, device)
    train_stack([base.replace(batches_per_task=1)], stream)  # warm-up: handles, kernels
    matmul_flops = 2 * sum(part.macs for part in run_cost(base).values())
    results, lines = {}, []
    for r in sizes:
        configs = [base.replace(seed=s, decay_lambda=1e-5 * (s % 2)) for s in range(r)]
        _, wall = timed_on(device, lambda configs=configs: train_stack(configs, stream))
        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if device.type == "cuda" else []
        )
        with profile(activities=activities) as prof:
            timed_on(device, lambda configs=configs: train_stack(configs, stream))
        kernels = kernel_times(prof.key_averages())
        run_batches = r * base.total_batches
        by_kind: dict[str, float] = defaultdict(float)
        launches: Counter = Counter()
        for name, (us, count) in kernels.items():
            by_kind[kernel_kind(name)] += us
            launches[kernel_kind(name)] += count
        total_us = sum(by_kind.values())
        gemm_s = by_kind.get("matmul", 0.0) / 1e6
        rate = r * matmul_flops / gemm_s / 1e12 if gemm_s else None
        top = sorted(kernels.items(), key=lambda kv: -kv[1][0])[:15]
        results[r] = {
            "wall_ms_per_run_batch": wall * 1000 / run_batches,
            "kernel_ms_per_run_batch": total_us / 1000 / run_batches,
            "by_kind_ms_per_run_batch": {k: v / 1000 / run_batches for k, v in by_kind.items()},
            "launches_per_batch": {k: v / base.total_batches for k, v in launches.items()},
            "matmul_tflops_in_place": rate,
            "top": [(name, us / 1000 / run_batches, n) for name, (us, n) in top],
        }
        lines += [f"### R = {r}", "",
                  f"wall {wall * 1000 / run_batches:.3f} ms per run-batch (unprofiled; this short "
                  "stack's fixed costs included), "
                  f"kernels {total_us / 1000 / run_batches:.3f} ms; matmuls in place: "
                  + (f"{rate:.1f} TFLOP/s" if rate else "none timed"), "",
                  "| kind | ms per run-batch | % of kernel time | launches per batch |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
            share, calls = 100 * us / total_us, launches[kind] / base.total_batches
            lines.append(f"| {kind} | {us / 1000 / run_batches:.4f} | {share:.1f} | {calls:.1f} |")
        lines += ["", "| kernel (top 15) | ms per run-batch | launches |", "| --- | --- | --- |"]
        lines += [f"| `{name[:90]}` | {ms:.4f} | {n} |" for name, ms, n in results[r]["top"]]
        lines.append("")
    c.record("kernels by kind", {"sizes": results}, lines)


def sweep_stacks(tiny: bool, device: torch.device, seeds: int) -> list[list]:
    """The stacks the sweep of all 16 experiments × `seeds` forms on this device."""
    return group_stacks(all_experiments(device, tiny, seeds, "gpu breakdown").plan())


def step_sweep_model(c: Campaign, device: torch.device, tiny: bool, seeds: int) -> None:
    """Each distinct stack of the full sweep timed at two lengths; the sweep's time modelled."""
    stacks = sweep_stacks(tiny, device, seeds)
    short, long = (1, 2) if tiny else (20, 60)
    timed: dict[tuple, dict] = {}  # (stack key, R) -> fixed s, s per batch
    lines = ["| stack (first run) | R | fixed s | ms per batch (whole stack) | ms per run-batch |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    total = 0.0
    for stack in stacks:
        configs = [s.config for s in stack]
        key = (stack_key(configs[0]), len(stack))
        if key not in timed:
            stream = build_stream(configs[0], device)
            times = {}
            for length in (short, long):
                trial = [cfg.replace(batches_per_task=length) for cfg in configs]
                _, times[length] = timed_on(
                    device, lambda trial=trial, stream=stream: train_stack(trial, stream)
                )
            tasks = configs[0].task_count
            per_batch = (times[long] - times[short]) / (tasks * (long - short))
            fixed = max(0.0, times[short] - tasks * short * per_batch)
            timed[key] = {"fixed_s": fixed, "s_per_batch": per_batch}
            ms = per_batch * 1000
            lines.append(f"| {stack[0].name} | {len(stack)} | {fixed:.2f} | {ms:.2f} | "
                         f"{ms / len(stack):.3f} |")  # fmt: skip
        cost = timed[key]
        total += cost["fixed_s"] + configs[0].total_batches * cost["s_per_batch"]
    sizes = [len(s) for s in stacks]
    lines += ["", f"The sweep forms {len(stacks)} stacks of {sum(sizes)} runs ({sizes}); "
              f"modelled time: {total:.0f} s = {total / 60:.1f} min."]  # fmt: skip
    c.record(
        SWEEP_MODEL,
        {"stacks": sizes, "kinds": [[k[1], v] for k, v in timed.items()],
         "modelled_s": total},
        lines,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu-breakdown")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument("--tiny", action="store_true", help="the same steps at a tiny scale")
    parser.add_argument("--sizes", default="1,30", help="stack sizes to profile")
    args = parser.parse_args()
    device = resolve_device(args.device)
    c = Campaign(Path(args.out), 600, "breakdown")
    c.markdown[0] = "# Where the GPU time goes"
    step_machine(c, device, args.tiny)
    sizes = [int(s) for s in args.sizes.split(",")]
    step_kernels(c, device, args.tiny, [min(s, 2) for s in sizes] if args.tiny else sizes)
    step_sweep_model(c, device, args.tiny, 2 if args.tiny else args.seeds)
    c.record("done", {"total_s": c.elapsed()}, [f"took {c.elapsed() / 60:.1f} min"])


if __name__ == "__main__":
    os.environ.setdefault("STABGAP_DATA", data_dir() or "")
    main()
