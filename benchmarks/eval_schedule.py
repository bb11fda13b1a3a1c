"""What an evaluation schedule changes, measured on recorded every-batch curves, per seed.

Evaluation never feeds back into training, so a run evaluated at every batch already holds
the curve any sparser schedule would record (on other test subsets, which are fresh draws
either way): subsampling its points to a schedule gives that schedule's metrics of the same
run. For every run under the folders given (default: the paper protocol's 30 GPU runs in
docs/results/) and each schedule (every k-th batch, plus every batch for N batches after
each switch), this prints, over the runs, the mean and the largest absolute difference of
each metric from its every-batch value, the mean difference (a bias), and the share of the
evaluation's FLOPs the schedule saves (evaluations are equally costly points within a task).

    python benchmarks/eval_schedule.py
    python benchmarks/eval_schedule.py runs/quick --schedules 2:0,5:25,10:50
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stabgap.core.evaluate import evaluation_steps
from stabgap.metrics import avg_acc_final, gap_depth, time_to_recover_robust
from stabgap.studies.records import iter_runs

DEFAULT = Path(__file__).resolve().parent.parent / "docs/results/gpu-h200-2026-11-26/table1-fp32"


def metrics(acc: np.ndarray, ends: tuple[int, ...], steps: np.ndarray) -> dict[str, float]:
    n = acc.shape[1]
    out = {f"GD_1,{j}": gap_depth(acc, ends, 1, j, steps=steps) for j in range(2, n + 1)}
    out[f"TTR_1,{n} robust"] = time_to_recover_robust(acc, ends, 1, n, steps=steps)
    out["final ACC"] = avg_acc_final(acc)
    return out


def subsample(record, every: int, window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The record's points at the schedule's batches, and how many evaluations that is."""
    per_task = record.ends[0]
    wanted = evaluation_steps(record.ends[-1], per_task, every, window)
    keep = np.isin(record.eval_steps, wanted)
    return record.acc[keep], record.eval_steps[keep], int(keep.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[DEFAULT])
    parser.add_argument(
        "--schedules",
        default="5:0,5:50,10:0,10:50,10:100,25:50,25:100",
        help="every:window pairs (every k-th batch, every batch for `window` after a switch)",
    )
    args = parser.parse_args()
    runs = [r for folder in args.folders for r in iter_runs(folder)]
    dense = [
        r for r in runs if np.array_equal(np.diff(r.eval_steps), np.ones(len(r.eval_steps) - 1))
    ]
    if not dense:
        parser.error("no run evaluated at every batch under the folders given")
    print(f"{len(dense)} runs evaluated at every batch ({len(runs) - len(dense)} others skipped)")
    full = [metrics(r.acc, r.ends, r.eval_steps) for r in dense]
    names = list(full[0])
    print("| every | window | evaluations saved | " + " | ".join(
        f"{m}: mean abs / max abs / mean diff" for m in names) + " |")  # fmt: skip
    print("| --- | --- | --- | " + " | ".join("---" for _ in names) + " |")
    for pair in args.schedules.split(","):
        every, window = (int(x) for x in pair.split(":"))
        diffs = {m: [] for m in names}
        kept = total = 0
        for r, ref in zip(dense, full, strict=True):
            acc, steps, n = subsample(r, every, window)
            kept, total = kept + n, total + len(r.eval_steps)
            got = metrics(acc, r.ends, steps)
            for m in names:
                if np.isfinite(got[m]) and np.isfinite(ref[m]):
                    diffs[m].append(got[m] - ref[m])
        cells = []
        for m in names:
            d = np.array(diffs[m])
            if not d.size:
                cells.append("undefined in every run")
                continue
            cells.append(f"{np.abs(d).mean():.2f} / {np.abs(d).max():.2f} / {d.mean():+.2f}"
                         f"{'' if len(d) == len(dense) else f' (n={len(d)})'}")  # fmt: skip
        saved = 100 * (1 - kept / total)
        print(f"| {every} | {window} | {saved:.1f} % | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
