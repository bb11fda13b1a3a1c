"""Measure in bf16, learn in fp32: is the training untouched, how much faster, and does
the science move?

For every seed, runs one experiment twice side by side, with fp32 evaluation and with
the other evaluation precision (bf16 on a CPU; bf16 and tf32 on a GPU), in alternating
order so that a slow spell of a shared machine hits both alike. Reports:

- whether the training losses are bit-identical (they must be: evaluation never feeds
  back into training);
- the paired difference (other − fp32) of GD_1,2, GD_1,3, TTR_1,3, ACC, min-ACC_1 and
  WC-ACC_3, with its 95 % t interval, beside each metric's seed-to-seed spread;
- the time per run and per evaluation, and the speed-up (median of the per-seed ratios).

    python benchmarks/eval_precision.py --preset quick --experiments baseline,nd --seeds 15
    python benchmarks/eval_precision.py --preset paper --experiments nd --seeds 3
    python benchmarks/eval_precision.py --preset paper --seeds 15 --device cuda   # on a GPU

With --json PATH every figure is also written there (for docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
from _common import WARM_UP, data_dir, machine
from scipy import stats as sps

from stabgap.core.device import resolve_device
from stabgap.core.streams import build_stream
from stabgap.core.train import train_stack
from stabgap.metrics import avg_acc_final, gap_depth, min_acc, time_to_recover, wc_acc
from stabgap.studies.presets import get_preset, seed_sequence

METRICS = {
    "GD_1,2": lambda r: r.measure(gap_depth, 1, 2),
    "GD_1,3": lambda r: r.measure(gap_depth, 1, 3),
    "TTR_1,3": lambda r: r.measure(time_to_recover, 1, 3),
    "ACC": lambda r: avg_acc_final(r.acc),
    "min-ACC_1": lambda r: r.measure(min_acc, 1),
    "WC-ACC_3": lambda r: r.measure(wc_acc, 3),
}


def paired(diffs: list[float]) -> tuple[float, float, float, int]:
    """Mean of the defined paired differences and its 95 % t interval."""
    d = np.array([x for x in diffs if math.isfinite(x)])
    if d.size < 2:
        return (float(d.mean()) if d.size else math.nan), math.nan, math.nan, int(d.size)
    half = sps.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half), int(d.size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--experiments", default="baseline,nd")
    parser.add_argument("--seeds", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, help="batches per task (default: the preset's)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args()
    device = resolve_device(args.device)
    others = ["bf16"] + (["tf32"] if device.type == "cuda" else [])
    preset = get_preset(args.preset)
    extra = {"data_dir": data_dir(), "device": str(device)}
    if args.batches:
        extra["batches_per_task"] = args.batches
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else machine()
    print(f"machine: {name}")
    print(f"preset {args.preset}, seeds {args.seeds}, device {device}, compared: fp32 vs {others}")
    results: dict = {"machine": name, "preset": args.preset, "seeds": args.seeds, "runs": []}

    for experiment in args.experiments.split(","):
        base = preset.config(experiment, extra)
        stream = build_stream(base, device)
        for precision in ["fp32", *others]:  # warm-up: allocator, each precision's kernels
            train_stack([base.replace(**WARM_UP, eval_precision=precision)], stream)
        for other in others:
            rows = []
            for i, seed in enumerate(seed_sequence(args.seeds)):
                order = ["fp32", other] if i % 2 == 0 else [other, "fp32"]
                run = {}
                for precision in order:
                    config = base.replace(seed=seed, eval_precision=precision)
                    t0 = time.perf_counter()
                    (r,) = train_stack([config], stream)
                    run[precision] = (r, time.perf_counter() - t0)
                (a, ta), (b, tb) = run["fp32"], run[other]
                rows.append(
                    {
                        "seed": seed,
                        "same_losses": bool(np.array_equal(a.loss, b.loss)),
                        "seconds": {"fp32": ta, other: tb},
                        "eval_seconds": {
                            "fp32": a.metadata["eval_time_s"],
                            other: b.metadata["eval_time_s"],
                        },
                        "metrics": {m: {"fp32": f(a), other: f(b)} for m, f in METRICS.items()},
                    }
                )
                print(
                    f"  {experiment} seed {seed}: {ta:.1f} s fp32, {tb:.1f} s {other}", flush=True
                )
                save(args.json, results, {"experiment": experiment, "other": other, "rows": rows})
            results["runs"].append({"experiment": experiment, "other": other, "rows": rows})
            report(experiment, other, rows)
    save(args.json, results)


def save(path: str | None, results: dict, unfinished: dict | None = None) -> None:
    """Write every figure so far (a paper-scale comparison takes hours: a cut-off one
    still leaves its finished seeds)."""
    if path:
        runs = results["runs"] + ([unfinished] if unfinished else [])
        with open(path, "w") as f:
            json.dump({**results, "runs": runs}, f, indent=1, default=float)


def report(experiment: str, other: str, rows: list[dict]) -> None:
    same = sum(r["same_losses"] for r in rows)
    speed = [r["seconds"]["fp32"] / r["seconds"][other] for r in rows]
    eval_speed = [r["eval_seconds"]["fp32"] / r["eval_seconds"][other] for r in rows]
    print(f"\n{experiment}, {other} evaluation against fp32, {len(rows)} seeds")
    print(f"training losses bit-identical: {same} of {len(rows)} runs")
    print(
        f"time per run: fp32 {statistics.median(r['seconds']['fp32'] for r in rows):.1f} s, "
        f"{other} {statistics.median(r['seconds'][other] for r in rows):.1f} s (medians); "
        f"speed-up {statistics.median(speed):.2f}x per run, "
        f"{statistics.median(eval_speed):.2f}x per evaluation"
    )
    print(
        f"| metric | fp32 mean ± sd over seeds | paired Δ ({other} − fp32) | 95 % CI | n changed |"
    )
    print("| --- | --- | --- | --- | --- |")
    for m in METRICS:
        fp32 = np.array([r["metrics"][m]["fp32"] for r in rows], dtype=float)
        diffs = [r["metrics"][m][other] - r["metrics"][m]["fp32"] for r in rows]
        mean, low, high, n = paired(diffs)
        changed = sum(1 for d in diffs if math.isfinite(d) and d != 0)
        defined = fp32[np.isfinite(fp32)]
        center = defined.mean() if defined.size else math.nan
        spread = defined.std(ddof=1) if defined.size > 1 else math.nan
        print(
            f"| {m} | {center:.2f} ± {spread:.2f} | {mean:+.3f} | "
            f"{low:+.3f} to {high:+.3f} | {changed} of {n} |"
        )


if __name__ == "__main__":
    main()
