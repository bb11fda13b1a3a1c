"""oneDNN or MKL for the CPU's float32 products, malloc's kept memory, oneDNN's fused bf16
evaluation: what each gains.

Four questions, one per mode, each measured side by side in one process or in
alternating subprocesses, so that a slow spell of a shared machine hits both alike:

- ``products``: the rate of every matrix product of a paper run (training's forward and
  backward at its three batch sizes, fp32 evaluation's forward at its three sizes),
  through MKL and through oneDNN (medians of 7, alternating).
- ``run``: a paper run shortened to --batches per task, with bf16 (or fp32) evaluation,
  in four ways: {MKL, oneDNN} × {freed memory given back, kept} (each in its own process,
  since malloc's setting holds for a process's life), --rounds times in rotating order.
  Reports the training and evaluation time per batch and page faults per batch (medians),
  and a full paper run's time from them (each part scaled by its FLOPs).
- ``evaluation``: bf16 evaluation at task 3's shape (3 tasks × 3,072 images): oneDNN's
  bf16 matmul with bias and ReLU fused (now) against autocast's batched matmul (before),
  alternating, with and without the hidden layers' statistics; checks that both give the
  same numbers, and prints the pass's bf16 matmul-bound floor.
- ``science``: the same runs trained with MKL and with oneDNN for every seed: their
  paired metric differences with 95 % t intervals beside the seed-to-seed spread. They
  sum in other orders, so the runs part after a few batches, as on two machines; what
  must hold is that no metric moves beyond the noise.

    python benchmarks/cpu_matmul.py products
    python benchmarks/cpu_matmul.py run --batches 20 --rounds 2
    python benchmarks/cpu_matmul.py evaluation --points 20
    python benchmarks/cpu_matmul.py science --preset quick --experiments baseline,nd --seeds 15
    python benchmarks/cpu_matmul.py science --experiments nd --seeds 30 --skip 30  # fresh seeds
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import fields
from itertools import product as combinations

import numpy as np
import torch
from _common import data_dir, machine, matmul_rate, median_time
from eval_precision import METRICS, paired

from stabgap.core.device import keep_freed_memory
from stabgap.core.evaluate import evaluate
from stabgap.core.models import cpu_matmul
from stabgap.core.streams import build_stream
from stabgap.core.train import build_parts, train_stack
from stabgap.cost.flops import run_cost, total
from stabgap.studies.presets import get_preset, seed_sequence

LIBRARIES = ("mkl", "onednn")


def use(library: str) -> None:
    os.environ[cpu_matmul.ENV] = library
    cpu_matmul.library.cache_clear()


def paper_products() -> list[tuple[str, int, int, int]]:
    """(what, rows, inner, columns) of every product of a paper run, 784-2048-2048-10."""
    sizes = [(784, 2048), (2048, 2048), (2048, 10)]
    out = []
    for rows in (512, 1024, 1536):  # training: batch 512 and replay of 1 or 2 tasks
        for i, (a, b) in enumerate(sizes):
            out.append((f"train fwd L{i + 1}", rows, a, b))
            if i:  # the first layer's input needs no gradient
                out.append((f"train grad-in L{i + 1}", rows, b, a))
            out.append((f"train grad-w L{i + 1}", a, rows, b))
    for rows in (2048, 4096, 9216):  # fp32 evaluation of 1, 2 and 3 tasks
        out += [(f"eval fwd L{i + 1}", rows, a, b) for i, (a, b) in enumerate(sizes)]
    return out


def products() -> None:
    keep_freed_memory()  # as the runs do: fresh outputs are not page-faulted in
    print(f"machine: {machine()}")
    print("| product | rows × inner × columns | MKL GFLOP/s | oneDNN GFLOP/s | oneDNN / MKL |")
    print("| --- | --- | --- | --- | --- |")
    ratios = []
    for what, m, k, n in paper_products():
        a, b = torch.randn(m, k), torch.randn(k, n)
        if "grad-w" in what:
            a = torch.randn(k, m).T  # xᵀ: the backward reads the activations transposed
        rates = {}
        for library in LIBRARIES * 2:  # alternating; the second of each counts
            use(library)
            seconds = median_time(lambda a=a, b=b: cpu_matmul.product(a, b), 7, 2)
            rates[library] = 2 * m * k * n / seconds
        ratio = rates["onednn"] / rates["mkl"]
        ratios.append(ratio)
        print(
            f"| {what} | {m} × {k} × {n} | {rates['mkl'] / 1e9:.0f} | "
            f"{rates['onednn'] / 1e9:.0f} | {ratio:.2f} |"
        )
    print(f"median ratio over the {len(ratios)} products: {statistics.median(ratios):.2f}")


# One shortened paper run in a fresh process; prints its timers and page faults as JSON.
_ONE_RUN = """
import json, resource, sys, time
sys.path.insert(0, {benchmarks!r})
import stabgap.core.train as train
from stabgap.studies.presets import get_preset
from stabgap.core.streams import build_stream
if {memory!r} == "given back":
    train.keep_freed_memory = lambda: False
config = get_preset("paper").config("nd", {overrides!r})
stream = build_stream(config)
train.train_stack([config.replace(batches_per_task=2)], stream)  # warm-up
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
(r,) = train.train_stack([config], stream)
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({{"train": r.metadata["train_time_s"], "eval": r.metadata["eval_time_s"],
                  "wall": r.metadata["wall_time_s"], "faults": faults,
                  "library": r.metadata["cpu_matmul"]}}))
"""


def run(batches: int, rounds: int, eval_precision: str) -> None:
    overrides = {
        "batches_per_task": batches,
        "data_dir": data_dir(),
        "eval_precision": eval_precision,
    }
    ways = list(combinations(LIBRARIES, ("given back", "kept")))
    seen: dict = {w: [] for w in ways}
    for i in range(rounds):
        for library, memory in ways[i % len(ways) :] + ways[: i % len(ways)]:
            code = _ONE_RUN.format(
                benchmarks=os.path.dirname(__file__), memory=memory, overrides=overrides
            )
            env = {**os.environ, cpu_matmul.ENV: library}
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            assert result["library"] == library, result
            seen[(library, memory)].append(result)
            print(f"  round {i + 1}: {library}, memory {memory}: {result}", flush=True)

    config = get_preset("paper").config("nd", overrides)
    short, full = run_cost(config), run_cost(config.replace(batches_per_task=500))
    scale = {
        "train": (total(full).flops - full["evaluation"].flops)
        / (total(short).flops - short["evaluation"].flops),
        "eval": full["evaluation"].flops / short["evaluation"].flops,
    }
    n = config.total_batches
    print(f"\nmachine: {machine()}; paper ND, {batches} batches per task, {eval_precision} eval")
    print(
        "| matmul | freed memory | training ms/batch | evaluation ms/batch | "
        "page faults/batch | a full paper run (min) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for library, memory in ways:
        rows = seen[(library, memory)]
        train_s = statistics.median(r["train"] for r in rows)
        eval_s = statistics.median(r["eval"] for r in rows)
        faults = statistics.median(r["faults"] for r in rows)
        full_min = (train_s * scale["train"] + eval_s * scale["eval"]) / 60
        print(
            f"| {library} | {memory} | {1e3 * train_s / n:.0f} | {1e3 * eval_s / n:.0f} | "
            f"{faults / n:.0f} | {full_min:.1f} |"
        )


def evaluation(points: int) -> None:
    keep_freed_memory()  # as the runs do
    config = get_preset("paper").config("nd", {"data_dir": data_dir(), "eval_precision": "bf16"})
    stream = build_stream(config)
    parts = build_parts([config], stream, torch.device("cpu"))
    fused = cpu_matmul.bf16_fused
    ways = {"autocast's batched matmul (before)": lambda: False, "fused (now)": fused}
    seen = {(way, stats): [] for way in ways for stats in (False, True)}
    for i in range(points + 2):  # the first two warm up
        idx = parts.subsets.draw(range(1, 4), 3072)
        got = {}
        for (way, stats), times in list(seen.items())[::-1] if i % 2 else seen.items():
            cpu_matmul.bf16_fused = ways[way]
            with parts.eval_precision():
                start = time.perf_counter()
                got[way, stats] = evaluate(parts.model, stream, idx, 3, stats)
                if i >= 2:
                    times.append(time.perf_counter() - start)
        cpu_matmul.bf16_fused = fused
        for stats in (False, True):
            before, now = (got[way, stats] for way in ways)
            for field in fields(before):
                a, b = getattr(before, field.name), getattr(now, field.name)
                assert (a is None and b is None) or torch.equal(a, b), f"{field.name} changed"
    flops = sum(2 * 9216 * a * b for a, b in zip((784, 2048, 2048), (2048, 2048, 10), strict=True))
    floor = flops / matmul_rate(9216, 2048, 2048, dtype=torch.bfloat16)
    print(f"machine: {machine()}; fused: {fused()}; paper ND at task 3, {points} points")
    print("| bf16 evaluation | ms a point | with statistics | × the matmul floor |")
    print("| --- | --- | --- | --- |")
    for way in ways:
        plain, stats = (1e3 * statistics.median(seen[way, s]) for s in (False, True))
        print(f"| {way} | {plain:.1f} | {stats:.1f} | {plain / 1e3 / floor:.3f} |")
    print(f"matmul-bound floor: {1e3 * floor:.1f} ms; same numbers both ways: yes")


def science(preset_name: str, experiments: str, n_seeds: int, skip: int) -> None:
    preset = get_preset(preset_name)
    seeds = seed_sequence(skip + n_seeds)[skip:]
    print(
        f"machine: {machine()}; preset {preset_name}, {n_seeds} seeds after the first {skip}, "
        "MKL against oneDNN"
    )
    for experiment in experiments.split(","):
        base = preset.config(experiment, {"data_dir": data_dir()})
        stream = build_stream(base)
        rows = []
        for i, seed in enumerate(seeds):
            got = {}
            for library in LIBRARIES if i % 2 == 0 else LIBRARIES[::-1]:
                use(library)
                (got[library],) = train_stack([base.replace(seed=seed)], stream)
            rows.append({m: (f(got["mkl"]), f(got["onednn"])) for m, f in METRICS.items()})
            delta = ", ".join(f"{m} {b - a:+.3f}" for m, (a, b) in rows[-1].items())
            print(f"  {experiment} seed {seed}: Δ {delta}", flush=True)
        print(f"\n{experiment}: paired Δ (oneDNN − MKL) over {n_seeds} seeds")
        print("| metric | MKL mean ± sd over seeds | paired Δ | 95 % CI |")
        print("| --- | --- | --- | --- |")
        for m in METRICS:
            mkl = np.array([r[m][0] for r in rows], dtype=float)
            mean, low, high, _ = paired([r[m][1] - r[m][0] for r in rows])
            defined = mkl[np.isfinite(mkl)]
            print(
                f"| {m} | {defined.mean():.2f} ± {defined.std(ddof=1):.2f} | {mean:+.3f} | "
                f"{low:+.3f} to {high:+.3f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("products", "run", "evaluation", "science"))
    parser.add_argument("--batches", type=int, default=20, help="run: batches per task")
    parser.add_argument("--rounds", type=int, default=2, help="run: rounds of the four ways")
    parser.add_argument("--eval-precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--points", type=int, default=20, help="evaluation: points timed")
    parser.add_argument("--preset", default="quick", help="science: the preset")
    parser.add_argument("--experiments", default="baseline,nd", help="science: experiments")
    parser.add_argument("--seeds", type=int, default=15, help="science: seeds")
    parser.add_argument(
        "--skip", type=int, default=0, help="science: start after this many seeds (fresh ones)"
    )
    args = parser.parse_args()
    if args.mode == "evaluation":
        if not cpu_matmul.bf16_fused():
            sys.exit("this CPU has no native bf16 matmul in oneDNN: nothing to compare")
        evaluation(args.points)
        return
    if not cpu_matmul._ONEDNN_WORKS:
        sys.exit("this torch build has no oneDNN linear op: nothing to compare")
    if args.mode == "products":
        products()
    elif args.mode == "run":
        run(args.batches, args.rounds, args.eval_precision)
    else:
        science(args.preset, args.experiments, args.seeds, args.skip)


if __name__ == "__main__":
    main()
