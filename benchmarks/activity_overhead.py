"""What the hidden layers' statistics cost: a run with them against the same run without.

The evaluation pass computes the hidden activations anyway; the statistics (active
fraction, Σh², dead units per layer and task) are a few elementwise passes over them.
Runs the same config with and without them (the loop's evaluate() with statistics off),
alternating, and reports the median time of each and the overhead in % of a run. Every
task is shortened to --batches batches, keeping every shape of the preset.

    python benchmarks/activity_overhead.py --preset paper --batches 20 --repeats 5
    python benchmarks/activity_overhead.py --preset quick --batches 100 --repeats 5
"""

from __future__ import annotations

import argparse
import functools
import statistics

from _common import data_dir, machine, timed

from stabgap import train
from stabgap.evaluate import evaluate
from stabgap.presets import get_preset
from stabgap.streams import build_stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--experiment", default="nd")
    parser.add_argument("--batches", type=int, default=20, help="batches per task")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = get_preset(args.preset).config(
        args.experiment, {"batches_per_task": args.batches, "data_dir": data_dir()}
    )
    stream = build_stream(config)
    variants = {"with": evaluate, "without": functools.partial(evaluate, statistics=False)}

    def run(variant: str) -> float:
        train.evaluate = variants[variant]  # the loop looks evaluate up when it calls it
        try:
            return timed(lambda: train.train_stack([config], stream))
        finally:
            train.evaluate = evaluate

    run("with")  # warm-up: allocator, kernels
    times: dict[str, list[float]] = {"with": [], "without": []}
    for i in range(args.repeats):
        for variant in ("with", "without") if i % 2 == 0 else ("without", "with"):
            times[variant].append(run(variant))
    w, wo = statistics.median(times["with"]), statistics.median(times["without"])
    ratios = [a / b for a, b in zip(times["with"], times["without"], strict=True)]
    print(f"machine: {machine()}")
    print(f"{args.preset} {args.experiment}, {args.batches} batches a task, {args.repeats} repeats")
    print(f"run with statistics: {w:.2f} s, without: {wo:.2f} s (medians)")
    print(f"overhead: {100 * (statistics.median(ratios) - 1):+.2f} % of a run (median ratio)")


if __name__ == "__main__":
    main()
