"""What the hidden layers' statistics, or the why-the-gap analyses, cost: a run that records
them against one that does not.

The evaluation pass computes the hidden activations anyway; the statistics (active
fraction, Σh², dead units per layer and task) are a few passes over them. The analyses
(``--fields drift_every,head_every``) run their own passes over their probe sets. Runs the
same config with them at every evaluation point (1), at every 10th, and never (0), in
rotating order, and reports the median time of each and its overhead in % of a run (the
median of the per-round ratios). Every task is shortened to --batches batches, keeping
every shape of the preset; every 10th point always includes the last point of each task,
so a shortened run records a larger share of its points than a full one, and its overhead
is an upper bound for the full run's. "Never" is the code path of a run without them.

    python benchmarks/activity_overhead.py --preset paper --batches 20 --repeats 3
    python benchmarks/activity_overhead.py --preset quick --batches 100 --repeats 5
    python benchmarks/activity_overhead.py --preset quick --batches 100 \
        --fields drift_every,head_every
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
    parser.add_argument("--fields", default="activity_every", help="comma-separated, set alike")
    args = parser.parse_args()
    fields = args.fields.split(",")
    config = get_preset(args.preset).config(
        args.experiment,
        {"batches_per_task": args.batches, "data_dir": data_dir(), "activity_every": 0},
    )
    stream = build_stream(config)
    defaults = {FIELDS[f].default for f in fields}

    def name(k: int) -> str:
        text = {1: "every point", 10: "every 10th", 0: "never"}[k]
        return text + (" (default)" if defaults == {k} else "")

    schedules = {name(k): k for k in (1, 10, 0)}
    configs = {n: config.replace(**dict.fromkeys(fields, k)) for n, k in schedules.items()}
    never = name(0)

    train_stack([configs[never]], stream)  # warm-up: allocator, kernels
    times: dict[str, list[float]] = {name: [] for name in schedules}
    names = list(schedules)
    for i in range(args.repeats):
        for n in names[i % 3 :] + names[: i % 3]:  # rotate, so that no variant always goes first
            times[n].append(timed(lambda n=n: train_stack([configs[n]], stream)))

    steps = np.arange(0, config.total_batches, config.eval_every)
    print(f"machine: {machine()}")
    print(f"{args.preset} {args.experiment}, {args.batches} batches a task, {args.repeats} repeats")
    for n, k in schedules.items():
        share = activity_points(steps, config.batches_per_task, k).mean()
        ratios = [a / b for a, b in zip(times[n], times[never], strict=True)]
        print(
            f"{args.fields} {n:>22}: {statistics.median(times[n]):7.2f} s a run (median), "
            f"{100 * share:5.1f} % of the points, overhead "
            f"{100 * (statistics.median(ratios) - 1):+.2f} % of a run"
        )


if __name__ == "__main__":
    main()
