"""Does a quantity go with the gap across runs of one setting? Spearman's ρ within groups.

Runs of several groups (settings) are each centred on their group's means, so that ρ
compares runs of one setting with each other, not the settings (a remedy that changes both
would otherwise make the relation). Centring spends one degree of freedom a group beyond
the one a single pooled mean spends: the runs count as n − (G − 1), as a partial correlation
given the group counts them.

The test and the interval are one computation, Fisher's z with Bonett and Wright's (2000)
variance for Spearman's ρ, (1 + ρ²/2) / (n' − 3) with n' = n − (G − 1) runs: the interval
(simultaneous over a family, Bonferroni) excludes 0 exactly when the adjusted p is below α.
scipy's p for ρ counts all n runs as free and would be too small.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as sps

from stabgap.statistics.comparison import ALPHA

__all__ = ["WithinGroups", "within_groups"]


@dataclass(frozen=True)
class WithinGroups:
    """Spearman's ρ of runs centred on their groups' means, with its test and interval.

    Attributes:
        rho: Spearman's ρ over the centred values of every run.
        n: the runs; groups: the groups they came from.
        family: the tests it is adjusted over (Bonferroni; 1: none).
    """

    rho: float
    n: int
    groups: int
    family: int = 1
    alpha: float = ALPHA

    @property
    def effective(self) -> int:
        """The runs less the group means beyond one that centring estimated."""
        return self.n - (self.groups - 1)

    @property
    def testable(self) -> bool:
        """At least 4 effective runs (Fisher's z needs n' > 3), and |ρ| < 1: with every run
        in one order z is infinite, and an interval of one point would claim too much."""
        return self.effective > 3 and abs(self.rho) < 1

    def _se(self) -> float:
        return math.sqrt((1 + self.rho**2 / 2) / (self.effective - 3))

    def _z(self) -> float:
        return math.atanh(self.rho)

    @property
    def p(self) -> float:
        """The two-sided p of ρ = 0, unadjusted (NaN where not testable)."""
        if not self.testable:
            return math.nan
        return float(2 * sps.norm.sf(abs(self._z()) / self._se()))

    @property
    def p_adjusted(self) -> float:
        return min(1.0, self.p * self.family)

    @property
    def significant(self) -> bool:
        return self.testable and self.p_adjusted < self.alpha

    def adjusted(self, family: int) -> WithinGroups:
        return replace(self, family=max(1, family))

    def interval(self) -> tuple[float, float]:
        """ρ's interval at 1 − α / family (NaN where not testable).

        Example:
            >>> low, high = WithinGroups(0.46, 12, 4).interval()  # n' = 9
            >>> round(low, 3), round(high, 3)
            (-0.331, 0.871)
        """
        if not self.testable:
            return math.nan, math.nan
        half = float(sps.norm.ppf(1 - self.alpha / (2 * self.family))) * self._se()
        z = self._z()
        return math.tanh(z - half), math.tanh(z + half)

    def text(self, adjusted_over: str = "") -> str:
        """``"ρ = +0.46 (95 % CI -0.33 to +0.87, p = 0.25)"``; with a family, the
        simultaneous interval and the p adjusted over `adjusted_over` ("the section's 3
        correlations")."""
        low, high = self.interval()
        if not self.testable:
            why = (
                f"{self.effective} runs beyond their groups' means, 4 needed"
                if self.effective <= 3
                else "every run in one order, where Fisher's z has no interval"
            )
            return f"ρ = {self.rho:+.2f} (no test: {why})"
        if self.family == 1:
            return f"ρ = {self.rho:+.2f} (95 % CI {low:+.2f} to {high:+.2f}, p = {self.p:.2g})"
        return (
            f"ρ = {self.rho:+.2f} (simultaneous 95 % CI {low:+.2f} to {high:+.2f}, p = "
            f"{self.p:.2g}; adjusted p = {self.p_adjusted:.2g}, Bonferroni over {adjusted_over})"
        )


def within_groups(groups: Sequence[Sequence[tuple[float, float]]]) -> WithinGroups | None:
    """ρ between x and y over the runs of `groups` (each a list of (x, y)), each centred on
    its group's means; None below 5 runs or where either side does not vary."""
    centred: tuple[list[float], list[float]] = ([], [])
    for pairs in groups:
        x, y = np.array(pairs, dtype=float).T
        centred[0].extend(x - x.mean())
        centred[1].extend(y - y.mean())
    if len(centred[0]) < 5 or np.ptp(centred[0]) == 0 or np.ptp(centred[1]) == 0:
        return None
    rho = float(sps.spearmanr(*centred)[0])
    return WithinGroups(rho, len(centred[0]), len(groups))
