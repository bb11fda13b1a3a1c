"""Our runs of the paper protocol against the reference's published 15-seed values.

The reference reports each Table 1 cell as mean ± sd over its 15 seeds (docs/protocol.md). That
our runs reproduce it is a claim of equality, so it is tested as one: two one-sided Welch
tests against a stated margin (:func:`stabgap.statistics.comparison.equivalence`), equal
when the 90 % interval of the difference lies inside it. The margins are about one of the
reference's standard deviations: ±1.5 p.p. on gap depth, ±0.25 p.p. on final accuracy.
No margin is set for the time to recover, whose spread over seeds is half its mean: its
difference is shown with its interval, and no equality is claimed (the reference averages
it over the seeds that recovered and does not say how many; 15 is assumed).

The claim that every cell is equal is an intersection–union test: each cell at α is that
claim at α, so no multiplicity correction applies to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stabgap.statistics.comparison import ALPHA, Equivalence, equivalence, welch

REFERENCE_SEEDS = 15
# (experiment, metric, task, interval) -> the reference's published (mean, sd) over 15 seeds
PUBLISHED: dict[tuple[str, str, int | None, int | None], tuple[float, float]] = {
    ("baseline", "gap_depth", 1, 2): (11.69, 1.09),
    ("baseline", "gap_depth", 1, 3): (16.36, 1.44),
    ("baseline", "time_to_recover", 1, 3): (14.92, 6.43),
    ("baseline", "avg_acc_final", None, None): (97.668, 0.168),
    ("nd", "gap_depth", 1, 2): (6.34, 0.66),
    ("nd", "gap_depth", 1, 3): (5.53, 0.97),
    ("nd", "time_to_recover", 1, 3): (16.09, 9.59),
    ("nd", "avg_acc_final", None, None): (97.038, 0.156),
}
MARGINS = {"gap_depth": 1.5, "avg_acc_final": 0.25}  # p.p.
NAMES = {
    ("gap_depth", 1, 2): "GD_1,2",
    ("gap_depth", 1, 3): "GD_1,3",
    ("time_to_recover", 1, 3): "TTR_1,3 (%)",
    ("avg_acc_final", None, None): "final ACC",
}


@dataclass(frozen=True)
class Cell:
    """One Table 1 cell: ours against the reference's."""

    experiment: str
    name: str
    ours: tuple[float, float, int]  # mean, sd, n
    theirs: tuple[float, float, int]
    test: Equivalence | None  # None where no margin is set
    interval: tuple[float, float]  # the 95 % interval of the difference

    @property
    def diff(self) -> float:
        return self.ours[0] - self.theirs[0]


def cells(summaries, roles: dict[str, str], alpha: float = ALPHA) -> list[Cell]:
    """Every published cell the summaries have, for our groups in `roles` ({"baseline":
    group key, "nd": group key}: groups run with the paper protocol)."""
    from scipy import stats as sps

    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    out = []
    for (experiment, metric, task, interval), (mean, sd) in PUBLISHED.items():
        s = index.get((roles.get(experiment), metric, task, interval))
        if s is None or s.n < 2:
            continue
        ours, theirs = (s.mean, s.std, s.n), (mean, sd, REFERENCE_SEEDS)
        margin = MARGINS.get(metric)
        test = None if margin is None else equivalence(theirs, ours, margin, alpha)
        se, df = welch(*theirs, *ours)
        half = float(sps.t.ppf(0.975, df)) * se if not math.isnan(se) else math.nan
        d = s.mean - mean
        name = NAMES[(metric, task, interval)]
        out.append(Cell(experiment, name, ours, theirs, test, (d - half, d + half)))
    return out


def summary(found: list[Cell]) -> str:
    """One sentence: which cells are shown equal within their margins."""
    tested = [c for c in found if c.test is not None]
    if not tested:
        return ""
    equal = [c for c in tested if c.test.equivalent]
    margins = f"±{MARGINS['gap_depth']:g} p.p. on GD, ±{MARGINS['avg_acc_final']:g} on final ACC"
    if len(equal) == len(tested):
        head = f"All {len(tested)} cells with a margin are equal to the reference's"
    else:
        shown = ", ".join(f"{c.experiment} {c.name}" for c in equal) or "none"
        head = (
            f"Equal to the reference's within their margins: {shown} ({len(equal)} of "
            f"{len(tested)}; equality not shown for the others)"
        )
    return (
        f"{head} (margins {margins}; two one-sided Welch tests at α = {tested[0].test.alpha:g}, "
        "each 90 % interval of the difference inside its margin). The time to recover has no "
        "margin: its difference is shown with its 95 % interval, and no equality is claimed."
    )
