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
from stabgap.statistics.comparison import MIN_SEEDS, Comparison, Family, compare
from stabgap.statistics.correlation import WithinGroups, within_groups
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
    with_activity = [g for g in groups if recorded(g)]
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
                if values.size == 0:  # a network with fewer hidden layers than another's
                    row.append("–")
                    continue
                sd = values.std(ddof=1) if values.size > 1 else math.nan
                row.append(format_mean_std(float(values.mean()), float(sd), 2))
        rows.append(row)
    return header, rows


@dataclass(frozen=True)
class SparsityTests:
    """Does each compared group end sparser than the baseline (one comparison each), and do
    sparser runs have smaller gaps?

    The relation is tested within groups: each run's share of active units and its gap
    depth centred on its group's means, then Spearman's ρ over every run (None below 5
    runs). Pooled over groups, ρ would mostly compare the groups (a remedy that makes both
    sparser and shallower), not sparser runs of one setting; it is given, as a description.
    """

    comparisons: list[Comparison]
    rho: WithinGroups | None  # within groups
    pooled: float | None  # ρ over the runs pooled across groups (descriptive)
    interval: int


ACTIVE = "active units at the end (%, mean over the layers)"


def recorded(group) -> bool:
    """Whether every run of `group` recorded its hidden layers' statistics."""
    return bool(group.runs) and all("active_fraction" in r.activity for r in group.runs)


def sparsity_tests(base, compared: Sequence, labels: dict[str, str], n_tasks: int):
    """The tests of the report's "Inside the network" findings (None without statistics);
    groups without them (imported curves) take no part."""
    if n_tasks < 2 or not recorded(base):
        return None
    compared = [g for g in compared if recorded(g)]

    def active(g) -> dict:
        return {
            r.config["seed"]: float(np.nanmean(final(r, "active_fraction"))) * 100 for r in g.runs
        }

    a = active(base)
    comparisons = [
        compare(a, active(g), labels[base.key], labels[g.key], metric=ACTIVE) for g in compared
    ]
    shares, gaps, kept = [], [], []
    for g in [base, *compared]:
        # the runs that have the interval (a one-task profiling run has none)
        pairs = [
            (at_switch(r, "active_fraction", n_tasks), r.measure(gap_depth, 1, n_tasks))
            for r in g.runs
            if r.acc.shape[1] == n_tasks
        ]
        pairs = [xy for xy in pairs if np.isfinite(xy).all()]
        if len(pairs) < MIN_SEEDS:  # two runs centred on their mean mirror each other
            continue
        kept.append(pairs)
        shares += [x for x, _ in pairs]
        gaps += [y for _, y in pairs]
    rho = within_groups(kept) if kept else None
    pooled = float(sps.spearmanr(shares, gaps)[0]) if rho is not None else None
    return SparsityTests(comparisons, rho, pooled, n_tasks)


def sparsity_findings(tests: SparsityTests | None, family: Family) -> list[str]:
    """The findings in words, each adjusted over the report's `family`."""
    if tests is None:
        return []
    out = [family.adjusted(c).sentence(unit="%", diff_unit="p.p.") for c in tests.comparisons]
    if tests.rho is not None:
        r, j = tests.rho, tests.interval
        relation = f"no relation is shown at n = {r.n}." if r.testable else "untested."
        if r.significant:
            relation = f"{'sparser' if r.rho > 0 else 'denser'} runs had smaller gaps."
        out.append(
            f"Within each of the {r.groups} groups (each run's values centred on its group's "
            f"means; {r.n} runs, {r.effective} beyond the groups' means), the share of task "
            f"1's active units just before interval {j} and its gap depth GD_1,{j} in it have "
            f"Spearman's {r.text()}, the report's only test of this quantity: {relation} "
            f"Pooled across groups, ρ = {tests.pooled:+.2f}, which mostly compares the groups "
            "with each other."
        )
    return out
