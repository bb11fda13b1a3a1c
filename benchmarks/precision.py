"""Does a faster precision change the science? GD, ACC and time per precision, over seeds.

Runs baseline and ND in fp32 and in each lower precision (bf16 autocast; TF32 too on
CUDA, where it exists), same seeds, and reports gap depth GD_1,T and final average
accuracy (mean ± std), the paired difference to fp32, and the time per run.

    python benchmarks/precision.py --preset quick --seeds 3
    python benchmarks/precision.py --preset paper --seeds 15 --device cuda   # on a GPU
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import data_dir, machine, timed_runs

from stabgap.core.device import resolve_device
from stabgap.core.streams import build_stream
from stabgap.metrics import avg_acc_final, gap_depth
from stabgap.studies.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, help="batches per task (default: preset's)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    precisions = ["fp32", "bf16"] + (["tf32"] if device.type == "cuda" else [])
    preset = get_preset(args.preset)
    extra = {"data_dir": data_dir(), "device": str(device)}
    if args.batches:
        extra["batches_per_task"] = args.batches
    print(f"machine: {machine() if device.type == 'cpu' else torch.cuda.get_device_name()}")
    print(f"preset {args.preset}, {args.seeds} seeds, device {device}")
    print("experiment  precision  GD_1,T (p.p.)   Δ GD vs fp32    ACC (%)        s/run")
    for experiment in ("baseline", "nd"):
        fp32_gd = None
        for precision in precisions:
            configs = [
                preset.config(experiment, {**extra, "precision": precision, "seed": s})
                for s in preset.seeds[: args.seeds]
            ]
            stream = build_stream(configs[0], device)
            results, seconds = timed_runs(configs, stream)
            n = configs[0].n_tasks
            gd = np.array([r.measure(gap_depth, 1, n) for r in results])
            acc = np.array([avg_acc_final(r.acc) for r in results])
            fp32_gd = gd if fp32_gd is None else fp32_gd
            delta = gd - fp32_gd
            print(
                f"{experiment:11s} {precision:9s}  {gd.mean():6.2f} ± {gd.std(ddof=1):4.2f}  "
                f"{delta.mean():+6.2f} ± {delta.std(ddof=1):4.2f}  "
                f"{acc.mean():6.2f} ± {acc.std(ddof=1):4.2f}  {seconds / len(configs):7.1f}"
            )


if __name__ == "__main__":
    main()
