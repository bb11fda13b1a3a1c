"""What the hidden layers' statistics cost: a run that records them against one that does not.

The evaluation pass computes the hidden activations anyway; the statistics (active
fraction, Σh², dead units per layer and task) are a few passes over them. Runs the same
config with the statistics at every evaluation point (``activity_every = 1``), at the
default schedule, and never (0), in rotating order, and reports the median time of each and
its overhead in % of a run (the median of the per-round ratios). Every task is shortened to
--batches batches, keeping every shape of the preset; the default schedule always records
the last point of each task, so a shortened run records a larger share of its points than a
full one, and its overhead is an upper bound for the full run's.

    python benchmarks/activity_overhead.py --preset paper --batches 20 --repeats 3
    python benchmarks/activity_overhead.py --preset quick --batches 100 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
from _common import data_dir, machine, timed

from stabgap.core.config import FIELDS
from stabgap.core.evaluate import activity_points
from stabgap.core.streams import build_stream
from stabgap.core.train import train_stack
from stabgap.studies.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--experiment", default="nd")
    parser.add_argument("--batches", type=int, default=20, help="batches per task")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    default = FIELDS["activity_every"].default
    config = get_preset(args.preset).config(
        args.experiment, {"batches_per_task": args.batches, "data_dir": data_dir()}
    )
    stream = build_stream(config)
    schedules = {"every point": 1, f"every {default}th (default)": default, "never": 0}
    configs = {name: config.replace(activity_every=k) for name, k in schedules.items()}

    train_stack([configs["never"]], stream)  # warm-up: allocator, kernels
    times: dict[str, list[float]] = {name: [] for name in schedules}
    names = list(schedules)
    for i in range(args.repeats):
        for name in names[i % 3 :] + names[: i % 3]:  # rotate, so that no variant always goes first
            times[name].append(timed(lambda name=name: train_stack([configs[name]], stream)))

    steps = np.arange(0, config.total_batches, config.eval_every)
    print(f"machine: {machine()}")
    print(f"{args.preset} {args.experiment}, {args.batches} batches a task, {args.repeats} repeats")
    for name, k in schedules.items():
        share = activity_points(steps, config.batches_per_task, k).mean()
        ratios = [a / b for a, b in zip(times[name], times["never"], strict=True)]
        print(
            f"statistics {name:>22}: {statistics.median(times[name]):7.2f} s a run (median), "
            f"{100 * share:5.1f} % of the points, overhead "
            f"{100 * (statistics.median(ratios) - 1):+.2f} % of a run"
        )


if __name__ == "__main__":
    main()
