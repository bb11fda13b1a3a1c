"""Choose the robust gap metrics' window, smoothing and tolerance by measurement.

For every setting, on runs of the baseline and of ND (a quick study with many seeds,
and the reference's own result file, where experiments 1/11/13 are three baselines and
4/12/14 three ND runs of different widths), it reports:

- the seed-to-seed spread: the pooled standard deviation of the two groups;
- the separation of baseline and ND: |difference of means| / pooled sd (Cohen's d);
- for the time to recover, how many runs never recovered.

The reference's definitions are the first row (window 1, no smoothing, tolerance 0 is
the same quantity for the gap depth). A good setting has a smaller spread than the
reference's and a separation at least as large.

    stabgap run --preset quick --n-seeds 15 --out runs/quick15
    python benchmarks/robust_metrics.py --runs runs/quick15
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from stabgap.metrics import gap_depth, time_to_recover
from stabgap.metrics.robust import (
    RECOVERY_SMOOTH,
    SMOOTH,
    TOLERANCE,
    WINDOW,
    gap_depth_robust,
    time_to_recover_robust,
)
from stabgap.studies.records import iter_runs
from stabgap.studies.reference import load_reference_results

WINDOWS = (1, 5, 10, 20, 50)
SMOOTHS = (1, 3, 5, 9)
TOLERANCES = (0.0, 0.25, 0.5, 1.0, 2.0)
REFERENCE_GROUPS = {"baseline": (1, 11, 13), "nd": (4, 12, 14)}


def spread_and_separation(base: list[float], nd: list[float]) -> tuple:
    """Each group's sd, the pooled sd, |Δmean| / pooled sd, and how many values were
    undefined (NaN, left out)."""
    a, b = np.array(base, float), np.array(nd, float)
    undefined = int(np.isnan(a).sum() + np.isnan(b).sum())
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if a.size < 2 or b.size < 2:
        return math.nan, math.nan, math.nan, math.nan, undefined
    sa, sb = a.std(ddof=1), b.std(ddof=1)
    pooled = math.sqrt((sa**2 + sb**2) / 2)
    d = abs(a.mean() - b.mean()) / pooled if pooled else math.nan
    return sa, sb, pooled, d, undefined


def _curves(run) -> tuple:
    """A run's (acc, ends, steps): in batches for our records; a reference run is one
    point a batch, so its point boundaries are batches too."""
    if hasattr(run, "ends"):
        return run.acc, run.ends, run.eval_steps
    return run.acc, run.boundaries, None


def evaluate(groups: dict[str, list], interval: int, title: str) -> None:
    def row(name: str, metric) -> None:
        values = {g: [metric(*_curves(r)) for r in runs] for g, runs in groups.items()}
        sa, sb, sd, d, never = spread_and_separation(values["baseline"], values["nd"])
        print(f"| {name} | {sa:.2f} | {sb:.2f} | {sd:.2f} | {d:.2f} | {never} |")

    n = {g: len(runs) for g, runs in groups.items()}
    print(f"\n### {title}: task 1, interval {interval} ({n['baseline']} baseline, {n['nd']} ND)")
    print("\n| gap depth | sd baseline | sd ND | pooled sd (p.p.) | separation d | undefined |")
    print("| --- | --- | --- | --- | --- | --- |")
    row("reference GD", lambda a, b, steps: gap_depth(a, b, 1, interval, steps=steps))
    for w in WINDOWS:
        for s in SMOOTHS:
            mark = " (default)" if (w, s) == (WINDOW, SMOOTH) else ""
            row(
                f"window {w}, smooth {s}{mark}",
                lambda a, b, steps, w=w, s=s: gap_depth_robust(
                    a, b, 1, interval, window=w, smooth=s, steps=steps
                ),
            )
    print(
        "\n| time to recover | sd baseline | sd ND | pooled sd (% of interval) | separation d "
        "| never recovered |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    row("reference TTR", lambda a, b, steps: time_to_recover(a, b, 1, interval, steps=steps))
    for w, s in ((1, 1), (WINDOW, 1), (20, 1), (WINDOW, 5), (WINDOW, 9)):
        for tol in TOLERANCES:
            mark = " (default)" if (w, s, tol) == (WINDOW, RECOVERY_SMOOTH, TOLERANCE) else ""
            row(
                f"window {w}, smooth {s}, tolerance {tol:g}{mark}",
                lambda a, b, steps, w=w, s=s, t=tol: time_to_recover_robust(
                    a, b, 1, interval, window=w, smooth=s, tolerance=t, steps=steps
                ),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", help="a study with experiments 'baseline' and 'nd'")
    parser.add_argument(
        "--reference",
        default=str(
            Path(__file__).resolve().parents[2] / "shared/reference/reference-results-seed2958.json"
        ),
    )
    args = parser.parse_args()
    if args.runs:
        runs = [r for r in iter_runs(Path(args.runs)) if not r.diverged]
        groups = {g: [r for r in runs if r.experiment == g] for g in ("baseline", "nd")}
        for interval in (2, 3):
            evaluate(groups, interval, f"{args.runs}")
    if Path(args.reference).exists():
        results = load_reference_results(args.reference)
        groups = {g: [results[k] for k in ks] for g, ks in REFERENCE_GROUPS.items()}
        for interval in (2, 3):
            evaluate(groups, interval, "reference file, experiments 1/11/13 vs 4/12/14")


if __name__ == "__main__":
    main()
