"""Many runs as one: time per run of R runs stacked, against the same runs one at a time.

The runs differ in seed and λ, as in a sweep; side by side in one process. Three ways:
each alone; as sweeps train them (train_runs: one stack on a GPU, copy by copy on a
CPU); and forced into one stacked computation (train_stack) even on a CPU. Also checks
that each stacked run's curves equal its curves alone.

    python benchmarks/stacking.py --batches 4 --stacks 1,2,4 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from _common import data_dir, machine, peak_rss_mib, timed_runs

from stabgap.core.device import resolve_device
from stabgap.core.streams import build_stream
from stabgap.core.train import train_stack
from stabgap.studies.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--batches", type=int, default=10, help="batches per task")
    parser.add_argument("--stacks", default="1,2,4", help="stack sizes R to measure")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median)")
    args = parser.parse_args()
    device = resolve_device(args.device)

    base = get_preset(args.preset).config(
        "baseline",
        {"batches_per_task": args.batches, "data_dir": data_dir(), "device": str(device)},
    )
    stream = build_stream(base, device)
    train_stack([base.replace(batches_per_task=1)], stream)  # warm-up

    print(f"machine: {machine() if device.type == 'cpu' else torch.cuda.get_device_name()}")
    print(f"runs: {args.preset} shapes, {args.batches} batches per task, device {device}")
    print("R   alone s/run  train_runs s/run  ratio  train_stack s/run  ratio  max|Δacc| p.p.")
    for r in (int(x) for x in args.stacks.split(",")):
        configs = [base.replace(seed=i, decay_lambda=[0, 1e-5][i % 2]) for i in range(r)]
        seconds: dict[str, list[float]] = {"alone": [], "runs": [], "stack": []}
        for _ in range(args.repeats):  # interleaved, so a slow spell of the machine hits all
            for how in seconds:
                results, t = timed_runs(configs, stream, how)
                seconds[how].append(t)
                if how == "alone":
                    alone_results = results
                elif how == "stack":
                    stacked_results = results
        alone, runs, stacked = (statistics.median(seconds[k]) for k in ("alone", "runs", "stack"))
        diff = max(
            np.nanmax(np.abs(a.acc - s.acc))
            for a, s in zip(alone_results, stacked_results, strict=True)
        )
        print(
            f"{r:<3d} {alone / r:11.2f} {runs / r:17.2f} {runs / alone:6.3f}"
            f" {stacked / r:18.2f} {stacked / alone:6.3f} {diff:14.3f}"
        )
    print(f"peak memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
