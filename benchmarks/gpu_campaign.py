"""Everything a lent GPU can tell us, in one command that writes its figures as it goes.

Steps, each written to ``OUT/campaign.json`` and ``OUT/campaign.md`` as soon as it is done
(a run cut off at any point keeps every figure so far):

1. the machine: device, versions, free memory, the fp32 and TF32 matmul rates;
2. the CUDA tests (``pytest -m cuda``; skipped without CUDA);
3. ``stabgap profile``: the poster's Table 1 cost columns (host "CPU time", CUDA time and
   wall time per batch, baseline and ND, ND's overhead);
4. the stacking curve: runs per second for R = 1, 2, 4, ... stacked paper-shape runs (a few
   batches each), the speed-up over one at a time, peak GPU memory;
5. the Table 1 study (baseline + ND × 15 seeds, the paper protocol) timed end to end in
   fp32, then with TF32, with GD_1,3 and ACC of both (the precision's effect, paired over
   the seeds); its run records go to ``OUT/table1-fp32`` and ``OUT/table1-tf32``;
6. if time is left: the Table 1 study again with fp32 training and bf16, then TF32,
   evaluation (the training is bit-identical; the speed-up and the metrics' paired
   differences against step 5's fp32 study);
7. the kernels by kind and the whole sweep's time modelled from its stacks
   (``gpu_breakdown.py``, which also runs alone);
8. if time is left: all 16 experiments × as many seeds as fit (``OUT/all``);
9. with ``--compile``: the Table 1 study's time per batch with torch.compile.

It checks first that the plan fits the budget (from the stacking step's measured speed)
and scales itself down, saying so, when it does not. On a CPU (``--tiny``, run in CI) it
runs the same steps at a tiny scale, so that it cannot break unseen.

    python benchmarks/gpu_campaign.py --out runs/gpu-campaign            # on the GPU
    python benchmarks/gpu_campaign.py --tiny --out /tmp/campaign          # anywhere
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import data_dir

from stabgap.core.device import resolve_device
from stabgap.core.streams import build_stream
from stabgap.core.train import train_stack
from stabgap.metrics import avg_acc_final, gap_depth
from stabgap.studies.plan import study_spec
from stabgap.studies.presets import get_preset
from stabgap.study import run_spec

HERE = Path(__file__).resolve().parent


class Campaign:
    """Results so far, written out after every step."""

    def __init__(self, out: Path, budget_s: float, name: str = "campaign") -> None:
        self.out, self.budget_s, self.started = out, budget_s, time.monotonic()
        self.name = name
        out.mkdir(parents=True, exist_ok=True)
        self.results: dict = {"steps": {}}
        self.markdown: list[str] = ["# GPU campaign", ""]

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def record(self, step: str, data: dict, lines: list[str]) -> None:
        self.results["steps"][step] = {**data, "elapsed_s": round(self.elapsed(), 1)}
        self.markdown += [f"## {step}", "", *lines, ""]
        (self.out / f"{self.name}.json").write_text(json.dumps(self.results, indent=1, default=str))
        (self.out / f"{self.name}.md").write_text("\n".join(self.markdown) + "\n")
        print("\n".join([f"== {step}", *lines]), flush=True)


def matmul_rate(device: torch.device, tf32: bool, n: int) -> float:
    """FLOP/s of an (n×n)@(n×n) float32 product on `device`."""
    from stabgap.core.device import cuda_matmul_precision

    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    context = cuda_matmul_precision("tf32" if tf32 else "ieee") if device.type == "cuda" else None
    with context or _nothing():
        for _ in range(3):
            a @ b
        _, seconds = timed_on(device, lambda: [a @ b for _ in range(10)])
    return 2 * n**3 * 10 / seconds


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_on(device: torch.device, fn):
    """(fn's result, its seconds), the device's queued work waited for at both ends."""
    sync(device)
    t0 = time.perf_counter()
    result = fn()
    sync(device)
    return result, time.perf_counter() - t0


def step_machine(c: Campaign, device: torch.device, tiny: bool) -> None:
    n = 256 if tiny else 8192
    info = {
        "device": str(device),
        "name": torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "fp32_tflops": matmul_rate(device, False, n) / 1e12,
        "tf32_tflops": matmul_rate(device, True, n) / 1e12 if device.type == "cuda" else None,
    }
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        info |= {"free_gib": free / 2**30, "total_gib": total / 2**30}
    tf32 = f", TF32 {info['tf32_tflops']:.1f} TFLOP/s" if info["tf32_tflops"] else ""
    c.record(
        "machine",
        info,
        [f"{info['name']} ({device}), torch {info['torch']}, CUDA {info['cuda']}; matmul "
         f"{n}x{n}: fp32 {info['fp32_tflops']:.2f} TFLOP/s{tf32}"],
    )  # fmt: skip


def step_tests(c: Campaign) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider"],
        cwd=HERE.parent,
        capture_output=True,
        text=True,
    )
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    c.record("cuda tests", {"returncode": done.returncode, "summary": tail}, [f"`{tail}`"])


def step_profile(c: Campaign, tiny: bool) -> None:
    argv = ["profile", "--device", "all", "--out", str(c.out / "profile")]
    if tiny:
        argv += ["--batches", "2", "--repeats", "2", "--warmup", "1", "--hidden", "32"]
        argv += ["--batch-size", "32"]
    done = subprocess.run(
        [sys.executable, "-m", "stabgap.cli", *argv], capture_output=True, text=True
    )
    c.record(
        "profile (the poster's Table 1 cost columns)",
        {"returncode": done.returncode, "table": done.stdout},
        ["```", done.stdout.strip() or done.stderr.strip(), "```"],
    )


def paper_config(tiny: bool, device: torch.device, **changes):
    config = get_preset("paper").config(
        "nd", {"device": str(device), "data_dir": data_dir(), **changes}
    )
    if tiny:
        config = config.replace(hidden=[32, 32], batch_size=32, eval_subset=64)
    return config


def step_stacking(c: Campaign, device: torch.device, tiny: bool) -> float:
    """Runs per second against R; returns seconds per paper-run batch at the best R."""
    sizes = [1, 2] if tiny else [1, 2, 4, 8, 16, 32, 64]
    batches = 2 if tiny else 4
    base = paper_config(tiny, device, batches_per_task=batches)
    stream = build_stream(base, device)
    train_stack([base.replace(batches_per_task=1)], stream)  # warm-up
    rows, lines = [], ["| R | s per stack | runs/s | speed-up over R=1 | peak memory (GiB) |"]
    lines.append("| --- | --- | --- | --- | --- |")
    for r in sizes:
        configs = [base.replace(seed=s, decay_lambda=1e-5 * (s % 2)) for s in range(r)]
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            _, seconds = timed_on(device, lambda configs=configs: train_stack(configs, stream))
        except torch.OutOfMemoryError:
            lines.append(f"| {r} | out of memory | | | |")
            break
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0
        rows.append({"R": r, "seconds": seconds, "runs_per_s": r / seconds, "peak_gib": peak})
        speedup = rows[-1]["runs_per_s"] / rows[0]["runs_per_s"]
        lines.append(f"| {r} | {seconds:.2f} | {r / seconds:.2f} | {speedup:.2f} | {peak:.2f} |")
    best = max(rows, key=lambda row: row["runs_per_s"])
    # A short stack's time is mostly fixed costs (building it, its first evaluation), which
    # over-estimated a paper run's time 2x on an H200: the plan uses the marginal cost of a
    # batch instead, from the best R timed again with twice the batches.
    configs = [base.replace(seed=s, batches_per_task=2 * batches) for s in range(best["R"])]
    _, longer = timed_on(device, lambda: train_stack(configs, stream))
    extra = best["R"] * (configs[0].total_batches - base.total_batches)
    naive = 1 / best["runs_per_s"] / base.total_batches
    per_batch = max((longer - best["seconds"]) / extra, naive / 4)  # noise cannot make it ~0
    lines.append(f"\nMarginal cost of a run-batch at R = {best['R']}: {per_batch * 1000:.2f} ms "
                 f"(the short stacks' average: {naive * 1000:.2f} ms).")  # fmt: skip
    data = {"batches_per_task": batches, "rows": rows, "marginal_s_per_run_batch": per_batch}
    c.record("stacking", data, lines)
    return per_batch


def table1_study(
    c: Campaign, device, tiny: bool, precisions: tuple[str, str], seeds: int, name: str, **how
):
    """Baseline and ND × seeds of the paper protocol, timed; their GD_1,3 and ACC.
    `precisions`: of the training and of the evaluation."""
    values = {
        "preset": "paper",
        "experiments": ["baseline", "nd"],
        "n_seeds": seeds,
        "set": {
            "device": str(device),
            "data_dir": data_dir(),
            "precision": precisions[0],
            "eval_precision": precisions[1],
            **how,
        },
    }
    if tiny:
        values["set"] |= {"hidden": [32, 32], "batch_size": 32, "eval_subset": 64}
        values["set"]["batches_per_task"] = 3
    spec = study_spec(values, source="gpu campaign")
    records, seconds = timed_on(device, lambda: run_spec(spec, c.out / name, plot=False))
    metrics = {
        r.name: {
            "experiment": r.base,
            "seed": r.config["seed"],
            "gd_1_3": r.measure(gap_depth, 1, 3),
            "acc": avg_acc_final(r.acc),
        }
        for r in records
    }
    return seconds, metrics


def _sd(x: np.ndarray) -> float:
    return float(x.std(ddof=1)) if x.size > 1 else math.nan


def summarize(metrics: dict) -> list[str]:
    lines = []
    for experiment in ("baseline", "nd"):
        rows = [m for m in metrics.values() if m["experiment"] == experiment]
        gd = np.array([m["gd_1_3"] for m in rows])
        acc = np.array([m["acc"] for m in rows])
        lines.append(
            f"| {experiment} | {len(rows)} | {gd.mean():.2f} ± {_sd(gd):.2f} | "
            f"{acc.mean():.2f} ± {_sd(acc):.2f} |"
        )
    return lines


# (training, evaluation) precisions: fp32 throughout, TF32 throughout, and fp32 training
# with bf16 or TF32 evaluation (which leaves the training bit-identical; issue "measure in
# bf16, learn in fp32").
TABLE1_PRECISIONS = (("fp32", "fp32"), ("tf32", "tf32"))
EVAL_PRECISIONS = (("fp32", "bf16"), ("fp32", "tf32"))


def step_table1(c: Campaign, device, tiny: bool, seeds: int, precisions, title: str) -> None:
    """The Table 1 study at each (training, evaluation) precision, timed, each against the
    fp32 one paired over its runs (the first of `precisions` must be fp32 throughout, or
    an fp32 study already recorded is used)."""
    lines = ["| precision | runs | time (s) | s per run |", "| --- | --- | --- | --- |"]
    by_precision = {}
    if torch.device(device).type != "cuda":  # TF32 is CUDA's: stabgap refuses it elsewhere
        skipped = [p for p in precisions if "tf32" in p]
        precisions = [p for p in precisions if "tf32" not in p]
        if skipped:
            lines.insert(0, f"(TF32 exists on CUDA only: {skipped} not run on {device}.)\n")
    for train_p, eval_p in precisions:
        key = train_p if train_p == eval_p else f"{train_p}, eval {eval_p}"
        name = f"table1-{train_p}" + ("" if train_p == eval_p else f"-eval-{eval_p}")
        seconds, metrics = table1_study(c, device, tiny, (train_p, eval_p), seeds, name)
        by_precision[key] = {"seconds": seconds, "runs": metrics}
        lines.append(f"| {key} | {len(metrics)} | {seconds:.1f} | {seconds / len(metrics):.2f} |")
    lines += [
        "",
        "| precision, experiment | seeds | GD_1,3 (p.p.) | ACC (%) |",
        "| --- | --- | --- | --- |",
    ]
    for key, found in by_precision.items():
        lines += [f"| {key}, " + line[2:] for line in summarize(found["runs"])]
    fp32 = by_precision.get("fp32") or c.results["steps"].get(TABLE1_TITLE, {}).get("fp32")
    for key, found in by_precision.items():
        if key != "fp32" and fp32:
            lines.append(paired_line(key, fp32, found))
    c.record(title, by_precision, lines)


def paired_line(key: str, fp32: dict, other: dict) -> str:
    """The other precision − fp32 over the same runs: GD_1,3 and ACC, and the speed-up."""
    pairs = {(m["experiment"], m["seed"]): m for m in fp32["runs"].values()}
    diffs = {"gd_1_3": [], "acc": []}
    for m in other["runs"].values():
        if (m["experiment"], m["seed"]) in pairs:
            for k in diffs:
                diffs[k].append(m[k] - pairs[(m["experiment"], m["seed"])][k])
    if len(diffs["gd_1_3"]) < 2:
        return f"\n{key}: too few paired runs"
    gd, acc = diffs["gd_1_3"], diffs["acc"]
    return (
        f"\n{key} − fp32, paired over {len(gd)} runs: GD_1,3 {statistics.mean(gd):+.3f} "
        f"± {statistics.stdev(gd):.3f} p.p., ACC {statistics.mean(acc):+.3f} ± "
        f"{statistics.stdev(acc):.3f} p.p.; time {fp32['seconds'] / other['seconds']:.2f}x faster"
    )


TABLE1_TITLE = "Table 1 study (baseline + ND, paper protocol)"
SWEEP_MODEL = "all 16 experiments, modelled from their stacks"


def all_experiments(device, tiny: bool, seeds: int, source: str):
    """The study of all 16 paper experiments × `seeds` (at a tiny scale: 3 of them)."""
    values = {
        "preset": "paper",
        "experiments": "all",
        "n_seeds": seeds,
        "set": {"device": str(device), "data_dir": data_dir()},
    }
    if tiny:
        values["set"] |= {"hidden": [32, 32], "batch_size": 32, "eval_subset": 64}
        values["set"]["batches_per_task"] = 2
        values["experiments"] = ["baseline", "nd", "no-replay"]
    return study_spec(values, source=source)


def step_all(c: Campaign, device, tiny: bool, seeds: int, wanted: int) -> None:
    """All 16 experiments × `seeds`, timed; the time for `wanted` seeds extrapolated."""
    spec = all_experiments(device, tiny, seeds, "gpu campaign")
    records, seconds = timed_on(device, lambda: run_spec(spec, c.out / "all", plot=False))
    lines = [f"{len(records)} runs ({seeds} seeds) in {seconds:.1f} s "
             f"({seconds / len(records):.2f} s a run)"]  # fmt: skip
    if seeds < wanted:
        lines.append(f"{wanted} seeds, extrapolated: {seconds * wanted / seeds / 60:.1f} min")
    data = {"runs": len(records), "seeds": seeds, "seconds": seconds}
    c.record("all 16 experiments", data, lines)


def step_compile(c: Campaign, device, tiny: bool) -> None:
    base = paper_config(tiny, device, batches_per_task=2 if tiny else 20)
    stream = build_stream(base, device)
    rows = {}
    for compiled in (False, True):
        configs = [base.replace(seed=s, compile=compiled) for s in range(2 if tiny else 30)]
        train_stack([configs[0].replace(batches_per_task=1)], stream)  # warm-up / compile
        _, seconds = timed_on(device, lambda configs=configs: train_stack(configs, stream))
        rows[compiled] = seconds / len(configs) / base.total_batches
    c.record(
        "torch.compile",
        {"ms_per_run_batch": {str(k): v * 1000 for k, v in rows.items()}},
        [f"ms per run-batch: eager {rows[False] * 1000:.3f}, compiled {rows[True] * 1000:.3f} "
         f"({rows[False] / rows[True]:.2f}x)"],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/gpu-campaign")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget-min", type=float, default=20.0, help="wall-time budget")
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument("--tiny", action="store_true", help="the same steps at a tiny scale")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args()
    device = resolve_device(args.device)
    c = Campaign(Path(args.out), args.budget_min * 60)
    seeds = 2 if args.tiny else args.seeds
    step_machine(c, device, args.tiny)
    step_tests(c)
    step_profile(c, args.tiny)
    per_run_batch = step_stacking(c, device, args.tiny)
    # Plan: the Table 1 study twice (fp32, TF32) = 2 × 30 runs × 1500 batches.
    batches = get_preset("paper").config("nd").total_batches if not args.tiny else 9
    needed = 2 * 2 * seeds * batches * per_run_batch * 1.3  # + a margin for evaluation spread
    if needed > c.left() and not args.tiny:
        fitting = max(2, int(seeds * c.left() / needed))
        c.record(
            "plan",
            {"needed_s": needed, "left_s": c.left(), "seeds": fitting},
            [f"The Table 1 study needs about {needed / 60:.1f} min for {seeds} seeds, "
             f"{c.left() / 60:.1f} min are left: scaled down to {fitting} seeds."],
        )  # fmt: skip
        seeds = fitting
    step_table1(c, device, args.tiny, seeds, TABLE1_PRECISIONS, TABLE1_TITLE)
    if args.tiny or needed / 2 < c.left():
        step_table1(c, device, args.tiny, seeds, EVAL_PRECISIONS, "Evaluation precision")
    else:
        c.record("Evaluation precision", {"skipped": True}, ["Skipped: not enough time left."])
    # Where the time goes (kernels by kind) and the full sweep's time, modelled from its
    # own stacks timed at their real sizes (about 3 minutes on an H200): gpu_breakdown.py.
    from gpu_breakdown import step_kernels, step_sweep_model  # it imports this module

    if args.tiny or c.left() > 60:
        step_kernels(c, device, args.tiny, [1, 2] if args.tiny else [1, 30])
    else:
        c.record("kernels by kind", {"skipped": True}, ["Skipped: not enough time left."])
    if args.tiny or c.left() > 240:
        step_sweep_model(c, device, args.tiny, seeds if args.tiny else args.seeds)
    else:
        c.record(SWEEP_MODEL, {"skipped": True}, ["Skipped: not enough time left."])
    # All 16 experiments: as many seeds as fit the time left (at least one), so that a short
    # lease still gives the time per run; the full 15-seed time is extrapolated from it.
    per_seed = 16 * batches * per_run_batch * 1.3
    reserve = 90 if args.compile else 0  # torch.compile's own step needs about this
    all_seeds = seeds if args.tiny else min(seeds, int((c.left() - reserve) / per_seed))
    if all_seeds >= 1:
        step_all(c, device, args.tiny, all_seeds, args.seeds)
    else:
        c.record("all 16 experiments", {"skipped": True}, ["Skipped: not enough time left."])
    if args.compile and (args.tiny or c.left() > 60):
        step_compile(c, device, args.tiny)
    elif args.compile:
        c.record("torch.compile", {"skipped": True}, ["Skipped: not enough time left."])
    c.record("done", {"total_s": c.elapsed()}, [f"Campaign took {c.elapsed() / 60:.1f} min."])


if __name__ == "__main__":
    os.environ.setdefault("STABGAP_DATA", data_dir() or "")
    main()
