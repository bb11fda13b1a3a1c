"""How much of a metric's spread is the test subsets' noise, and how much the seeds'.

A run evaluated on ``eval_repeats`` independent test subsets at every point has one curve
per subset. A metric computed on each curve varies between them only through the
evaluation noise (the network is the same), so its variance across the subsets of a run,
averaged over runs, estimates the evaluation-noise variance of that metric measured on one
subset; the seed-to-seed spread of the metric (on the pooled curve) holds the rest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stabgap.metrics import (
    avg_acc_final,
    gap_depth,
    gap_depth_robust,
    time_to_recover,
    time_to_recover_robust,
)


def noise_metrics(n_tasks: int) -> list[tuple[str, object]]:
    """The metrics whose noise the report decomposes: (name, f(acc, ends, steps))."""
    j = n_tasks
    return [
        (f"GD_1,{j}", lambda a, e, s: gap_depth(a, e, 1, j, steps=s)),
        (f"GD_1,{j} robust", lambda a, e, s: gap_depth_robust(a, e, 1, j, steps=s)),
        (f"TTR_1,{j}", lambda a, e, s: time_to_recover(a, e, 1, j, steps=s)),
        (f"TTR_1,{j} robust", lambda a, e, s: time_to_recover_robust(a, e, 1, j, steps=s)),
        ("final ACC", lambda a, e, s: avg_acc_final(a)),
    ]


def evaluation_sd(runs: Sequence, metric) -> tuple[float, int]:
    """The evaluation-noise SD of `metric` on one subset, and the runs it is taken over.

    Per run, the sample variance of the metric over its subsets' curves; their mean over
    runs (where defined) is the noise variance.

    Example:
        >>> from types import SimpleNamespace
        >>> import numpy as np
        >>> run = SimpleNamespace(ends=(2,), eval_steps=np.arange(2), acc_repeats=np.array(
        ...     [[[80.0], [90.0]], [[82.0], [88.0]]]))
        >>> evaluation_sd([run], lambda a, e, s: float(a[-1, 0]))  # final: 90 vs 88
        (1.4142135623730951, 1)
    """
    variances = []
    for r in runs:
        if r.acc_repeats is None:
            continue
        values = np.array([metric(a, r.ends, r.eval_steps) for a in r.acc_repeats], dtype=float)
        values = values[np.isfinite(values)]
        if values.size >= 2:
            variances.append(values.var(ddof=1))
    return (math.sqrt(float(np.mean(variances))), len(variances)) if variances else (math.nan, 0)


def noise_table(
    groups: Sequence, labels: dict[str, str], n_tasks: int
) -> tuple[list[str], list[list[str]]]:
    """Per group and metric: the seed-to-seed SD beside the evaluation-noise SD."""
    with_repeats = [g for g in groups if g.runs and g.runs[0].acc_repeats is not None]
    if not with_repeats:
        return [], []
    header = ["group", "metric", "seed-to-seed SD", "evaluation-noise SD (one subset)", "runs"]
    rows = []
    for g in with_repeats:
        for name, metric in noise_metrics(n_tasks):
            pooled = np.array([metric(r.acc, r.ends, r.eval_steps) for r in g.runs], dtype=float)
            pooled = pooled[np.isfinite(pooled)]
            seeds = f"{pooled.std(ddof=1):.3f}" if pooled.size > 1 else "n/a"
            sd, n = evaluation_sd(g.runs, metric)
            rows.append(
                [labels[g.key], name, seeds, "n/a" if math.isnan(sd) else f"{sd:.3f}", str(n)]
            )
    return header, rows


def gap_noise_floor(reference: float, m: int, points: int, draws: int = 4000) -> float:
    """The gap depth (p.p.) that evaluation noise alone gives a network whose accuracy does
    not change: the reference point and each of the interval's `points` measured on a
    fresh subset of `m` test images, each a binomial draw at the accuracy `reference` (%).

    GD takes the lowest of the interval's measurements, so noise alone makes it positive,
    and more so the more points and the smaller the subsets. Drawn with a fixed seed: the
    same inputs give the same floor.

    Example:
        >>> gap_noise_floor(100.0, 500, 50), gap_noise_floor(95.0, 500, 1) < 0.1
        (0.0, True)
        >>> 2.0 < gap_noise_floor(95.0, 500, 150) < 3.5  # σ ≈ 0.97 p.p.: about 2.8 σ
        True
    """
    p = min(max(reference / 100.0, 0.0), 1.0)
    rng = np.random.default_rng(0)
    measured = rng.binomial(m, p, size=(draws, points + 1)) / m
    return float(100.0 * np.mean(measured[:, 0] - measured[:, 1:].min(axis=1)))
