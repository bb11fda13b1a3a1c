"""Calibration of the streams and the CNN at quick scale: is there a gap, does ND shrink it?

For every stream × network at the quick preset's scale: the baseline (full replay) and
neuronal decay at a few λ, for a few seeds. Reports task 1's largest gap depth over the
intervals after its own (GD_1,j, the interval where it is deepest for the baseline) and
the final average accuracy, mean ± sd over seeds, and ND's change of that gap.

Every setting is a resumable study under --out (run it again and only missing runs run).

    python benchmarks/calibrate_streams.py --seeds 3 --out runs/calibration
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import data_dir, machine

from stabgap.metrics import avg_acc_final, gap_depth
from stabgap.study import run_study

MLP = {}
CNN = {"model": "cnn", "channels": [4, 8], "hidden": [64], "eval_every": 2}
FASHION = {"dataset": "fashion-mnist"}  # found where it is installed (not MNIST's folder)
# The ViT and the ResNet at a scale that runs in a minute or two here: shorter tasks,
# evaluated every batch for 20 batches after each switch and every 5th elsewhere.
SHORT = {"batches_per_task": 100, "eval_every": 5, "eval_switch_window": 20}
VIT = {"model": "vit", "vit_patch": 7, "vit_dim": 32, "vit_depth": 2, "vit_heads": 2, **SHORT}
RESNET = {"model": "resnet", "resnet_width": 8, **SHORT}
# (name, overrides, the λ to try): λ is a sum over the activations, so the CNN, with some
# 4,700 post-ReLU units an image against the MLP's 512, takes a smaller one.
SETTINGS = [
    ("rotated, CNN", {**CNN}, (1e-5, 1e-6)),
    ("permuted, MLP", {"stream": "permuted", **MLP}, (1e-4, 1e-5)),
    ("permuted, CNN", {"stream": "permuted", **CNN}, (1e-5, 1e-6)),
    ("split (class-IL), MLP", {"stream": "split", **MLP}, (1e-4, 1e-5)),
    ("split (class-IL), CNN", {"stream": "split", **CNN}, (1e-5, 1e-6)),
    ("homogeneous, MLP", {"stream": "homogeneous", **MLP}, (1e-4, 1e-5)),
    ("homogeneous, CNN", {"stream": "homogeneous", **CNN}, (1e-5, 1e-6)),
    ("Fashion-MNIST rotated, MLP", {**FASHION, **MLP}, (1e-4, 1e-5)),
    ("Fashion-MNIST rotated, CNN", {**FASHION, **CNN}, (1e-5, 1e-6)),
    ("Fashion-MNIST split (class-IL), MLP", {**FASHION, "stream": "split", **MLP}, (1e-4, 1e-5)),
    ("Fashion-MNIST split (class-IL), CNN", {**FASHION, "stream": "split", **CNN}, (1e-5, 1e-6)),
    # some 4,400 MLP units an image in the ViT (17 tokens × 128 × 2 blocks), 30,000 post-ReLU
    # units in the ResNet
    ("rotated, ViT", {**VIT}, (1e-5, 1e-6)),
    ("rotated, ResNet", {**RESNET}, (1e-6, 1e-7)),
    ("split (class-IL), ViT", {"stream": "split", **VIT}, (1e-5, 1e-6)),
    ("split (class-IL), ResNet", {"stream": "split", **RESNET}, (1e-6, 1e-7)),
    ("split (class-IL), ResNet at width 4", {"stream": "split", **RESNET, "resnet_width": 4},
     (1e-6, 1e-7)),
]  # fmt: skip


def deepest(records) -> tuple[int, np.ndarray]:
    """The interval j where the runs' mean task-1 gap is deepest, and each run's GD_1,j."""
    n = records[0].acc.shape[1]
    gd = np.array([[r.measure(gap_depth, 1, j) for j in range(2, n + 1)] for r in records])
    j = int(np.nanargmax(np.nanmean(gd, axis=0)))
    return j + 2, gd[:, j]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="runs/calibration")
    parser.add_argument("--only", help="run only the settings whose name contains this")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(
        "| stream, network | s/run | baseline GD_1,j (p.p.) | baseline ACC | λ | ND GD_1,j | "
        "Δ GD (paired) | ND ACC |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, overrides, lambdas in SETTINGS:
        if args.only and args.only not in name:
            continue
        folder = Path(args.out) / name.replace(", ", "-").replace(" ", "_").replace(
            "(", ""
        ).replace(")", "")
        records = run_study(
            "quick",
            ["baseline"],
            n_seeds=args.seeds,
            overrides={**overrides, **({} if "dataset" in overrides else {"data_dir": data_dir()})},
            grid={"decay_lambda": [0.0, *lambdas]},
            out=folder,
        )
        # From the records, so that a resumed calibration still says what a run costs.
        per_run = float(
            np.mean([r.metadata["wall_time_s"] / r.metadata["stacked_runs"] for r in records])
        )
        base = [r for r in records if r.config["decay_lambda"] == 0]
        j, gd0 = deepest(base)
        acc0 = np.array([avg_acc_final(r.acc) for r in base])
        for lam in lambdas:
            nd = [r for r in records if r.config["decay_lambda"] == lam]
            gd = np.array([r.measure(gap_depth, 1, j) for r in nd])
            acc = np.array([avg_acc_final(r.acc) for r in nd])
            print(
                f"| {name} | {per_run:.0f} | GD_1,{j} {gd0.mean():.2f} ± {gd0.std(ddof=1):.2f} | "
                f"{acc0.mean():.2f} | {lam:g} | {gd.mean():.2f} ± {gd.std(ddof=1):.2f} | "
                f"{(gd - gd0).mean():+.2f} ± {(gd - gd0).std(ddof=1):.2f} | {acc.mean():.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
