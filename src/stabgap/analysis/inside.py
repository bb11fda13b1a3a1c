"""What the network does inside: its hidden layers' activity, summarised over seeds.

During every evaluation the loop keeps, per task and hidden layer, the fraction of active
ReLU units, neuronal decay's quantity (Σ h² per image) and the fraction of units dead on
the whole subset (:mod:`stabgap.core.evaluate`). This module turns the runs' curves into the
report's answers: does a remedy make the network sparser, and does sparsity go with a
smaller gap?
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from stabgap.metrics import gap_depth
from stabgap.statistics.comparison import ALPHA, Comparison, Family, compare
from stabgap.statistics.summary import format_mean_std
from stabgap.studies.records import RunRecord


def at_switch(record: RunRecord, statistic: str, interval: int) -> float:
    """Task 1's `statistic`, averaged over the hidden layers, at the last point before
    interval `interval` starts (the network whose gap the interval then measures)."""
    values = record.activity.get(statistic)
    if values is None:
        return math.nan
    point = record.boundaries[interval - 2] - 1
    return float(np.nanmean(values[point, 0, :]))


def final(record: RunRecord, statistic: str) -> np.ndarray:
    """(layers,) the statistic of the last point, averaged over the tasks evaluated."""
    return np.nanmean(record.activity[statistic][-1], axis=0)


def activity_table(groups: Sequence, labels: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Every group's hidden layers at the end of the run: mean ± sd over its seeds."""
    with_activity = [g for g in groups if g.runs and g.runs[0].activity]
    if not with_activity:
        return [], []
    layers = max(final(g.runs[0], "active_fraction").size for g in with_activity)
    header = ["group"]
    for k in range(1, layers + 1):
        header += [f"active, layer {k} (%)", f"Σh², layer {k}", f"dead, layer {k} (%)"]
    rows = []
    for g in with_activity:
        row = [labels[g.key]]
        for k in range(layers):
            for statistic, scale in (
                ("active_fraction", 100),
                ("mean_square", 1),
                ("dead_fraction", 100),
            ):
                values = np.array(
                    [scale * final(r, statistic)[k] for r in g.runs if k < final(r, statistic).size]
                )
                sd = values.std(ddof=1) if values.size > 1 else math.nan
                row.append(format_mean_std(float(values.mean()), float(sd), 2))
        rows.append(row)
    return header, rows


@dataclass(frozen=True)
class SparsityTests:
    """Does each compared group end sparser than the baseline (one comparison each), and do
    sparser networks have smaller gaps (Spearman's ρ over every run; None below 5 runs)?"""

    comparisons: list[Comparison]
    rho: tuple[float, float, int] | None  # (ρ, p, runs)
    interval: int


def sparsity_tests(base, compared: Sequence, labels: dict[str, str], n_tasks: int):
    """The tests of the report's "Inside the network" findings (None without statistics)."""
    if n_tasks < 2 or not base.runs or not base.runs[0].activity:
        return None

    def active(g) -> dict:
        return {
            r.config["seed"]: float(np.nanmean(final(r, "active_fraction"))) * 100 for r in g.runs
        }

    a = active(base)
    comparisons = [
        compare(a, active(g), labels[base.key], labels[g.key], metric="active units at the end (%)")
        for g in compared
    ]
    # the runs that have the interval (a one-task profiling run has none)
    runs = [r for g in [base, *compared] for r in g.runs if r.acc.shape[1] == n_tasks]
    shares = [at_switch(r, "active_fraction", n_tasks) for r in runs]
    gaps = [r.measure(gap_depth, 1, n_tasks) for r in runs]
    keep = [i for i, xy in enumerate(zip(shares, gaps, strict=True)) if np.isfinite(xy).all()]
    rho = None
    if len(keep) >= 5:
        r, p = sps.spearmanr([shares[i] for i in keep], [gaps[i] for i in keep])
        rho = (float(r), float(p), len(keep))
    return SparsityTests(comparisons, rho, n_tasks)


def sparsity_findings(tests: SparsityTests | None, family: Family) -> list[str]:
    """The findings in words, each adjusted over the report's `family`."""
    if tests is None:
        return []
    out = [family.adjusted(c).sentence(unit="%", diff_unit="p.p.") for c in tests.comparisons]
    if tests.rho is not None:
        rho, p, n = tests.rho
        j = tests.interval
        relation = f"no relation is shown at n = {n}."
        if p < ALPHA:
            relation = f"{'sparser' if rho > 0 else 'denser'} networks had smaller gaps."
        out.append(
            f"Over the {n} runs of these groups, the share of task 1's active units just before "
            f"interval {j} and its gap depth GD_1,{j} in it have Spearman's ρ = {rho:+.2f} "
            f"(p = {p:.2g}; the report's only test of this quantity): {relation}"
        )
    return out
