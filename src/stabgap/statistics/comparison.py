"""Compare two experiments over seeds: the tests behind every verdict stabgap states.

:func:`compare` takes two ``{seed: value}`` maps (None for an undefined value, which is left
out and counted) and reports the difference of the means with its Welch interval, Welch's
t-test, a paired t-test with its interval and a Wilcoxon signed-rank test over the shared
seeds, and Hedges' g. :func:`equivalence` tests two sets of runs for equality within a
margin. Pure statistics of numbers: numpy and scipy, nothing of training.

How verdicts are read, everywhere stabgap states one:

- A report states many verdicts, so they are adjusted (:class:`Family`): the tests of one
  quantity (GD_1,3 of every compared group, the poster's question on it, a reported finding
  on it) together, Bonferroni; each interval shown beside a verdict is the simultaneous
  interval at the same level: it excludes 0 exactly when the adjusted p is below α, so an
  interval and its verdict never disagree.
- A difference that is not significant is not shown, which is not equality: the sentence
  says at which n, and what difference that n could have detected (80 % power at the
  adjusted level). Equality is claimed only by an equivalence test against a stated margin.
- Runs of two experiments with the same seed share their initialisation and batch order,
  so the paired interval over shared seeds is shown beside Welch's; the verdicts rest on
  Welch's test, which does not assume that.
- A time to recover of a seed that never recovered is censored: it is only known to exceed
  what the run measured, so no mean holds it. Where a side has one, the verdict rests on
  an exact rank-sum test (:func:`rank_sum_test`) in which it ranks above every recovered
  seed, and the sentence gives the medians instead of an interval of means.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import stats as sps

from stabgap.statistics.summary import format_mean_std

__all__ = [
    "ALPHA",
    "MIN_SEEDS",
    "POWER",
    "Comparison",
    "Equivalence",
    "Family",
    "censored_median",
    "compare",
    "equivalence",
    "rank_sum_test",
    "shift_interval",
    "welch",
]

ALPHA = 0.05
POWER = 0.8  # the power at which a sentence says what difference an n could detect
# Fewer seeds a side and a t-test's verdict rests on one variance estimate from two points:
# the report then says that no test is possible instead of printing one.
MIN_SEEDS = 3


@dataclass(frozen=True)
class Comparison:
    """Experiment B against experiment A, over seeds; differences are B − A.

    Attributes:
        label_a, label_b: Names of the two sides.
        metric: What was compared (used in :meth:`sentence`).
        n_a, n_b: Numbers of defined values.
        n_undefined_a, n_undefined_b: Values left out as undefined (None or NaN).
        mean_a, mean_b, std_a, std_b: Means and sample standard deviations (ddof = 1).
        diff: ``mean_b - mean_a``.
        diff_se: Welch's standard error of ``diff``.
        welch_t, welch_df, welch_p: Welch's unequal-variance t-test (two-sided).
        n_paired: Seeds defined on both sides.
        paired_diff, paired_se: Mean and standard error of the per-seed differences.
        paired_t, paired_p: Paired t-test on the shared seeds (NaN if ``n_paired < 3``).
        wilcoxon_p: Wilcoxon signed-rank test on the shared seeds (NaN if ``n_paired < 3``
            or all differences are zero).
        cohen_d: ``diff`` over the pooled standard deviation.
        hedges_g: Cohen's d times the small-sample correction ``1 - 3 / (4 (n_a + n_b) - 9)``.
        alpha: Significance level of :attr:`significant` and :meth:`sentence`.
        family: How many tests the verdict is adjusted over (Bonferroni; 1: none).
        quantity: What is compared, whichever way it is measured: the tests it is
            adjusted with (default: the metric; "TTR_1,3" for every definition of it).
        span: The largest difference the metric's values allow (100 for two accuracies in
            %; inf where unbounded): the intervals are cut to ±span, which keeps their
            coverage (the true difference lies within), and a detectable difference beyond
            it is said to be out of reach.
        measure: What is measured, where :attr:`metric` words it otherwise for a sentence
            ("GD_1,2 (p.p.)" measures "GD_1,2"): a report's tests of the same groups and
            measure are one test (default: the metric).
        censored: An undefined value is a censored one, known only to lie beyond what was
            measured (a time to recover of a seed that never recovered). Where a side has
            one, the mean of its defined values would be biased low: the verdict then rests
            on :attr:`rank_p` (:attr:`rank_test`), and no interval of means is given.
        rank_p: The exact two-sided rank-sum test's p (:func:`rank_sum_test`), each
            censored value ranked above every defined one (NaN unless :attr:`rank_test`).
        superiority: P(B > A) + ½·P(B = A) over every pair of seeds, a censored value
            counted as larger than any defined one: above ½ where B's values tend to be
            larger (NaN unless :attr:`rank_test`).
        median_a, median_b: Each side's median, a censored value counted as +∞ (NaN
            unless :attr:`rank_test`).
        ranked_a, ranked_b: The values the rank-sum test ranked, censored ones as +∞
            (empty unless :attr:`rank_test`): :meth:`shift` inverts the test on them.
        one_sample: B's values against the constant A (a one-sample test: A has no seeds).
    """

    label_a: str
    label_b: str
    metric: str
    n_a: int
    n_b: int
    n_undefined_a: int
    n_undefined_b: int
    mean_a: float
    mean_b: float
    std_a: float
    std_b: float
    diff: float
    diff_se: float
    welch_t: float
    welch_df: float
    welch_p: float
    n_paired: int
    paired_diff: float
    paired_se: float
    paired_t: float
    paired_p: float
    wilcoxon_p: float
    cohen_d: float
    hedges_g: float
    alpha: float = ALPHA
    family: int = 1
    quantity: str = ""
    span: float = math.inf
    censored: bool = False
    measure: str = ""
    rank_p: float = math.nan
    superiority: float = math.nan
    one_sample: bool = False
    median_a: float = math.nan
    median_b: float = math.nan
    ranked_a: tuple[float, ...] = ()
    ranked_b: tuple[float, ...] = ()

    @property
    def rank_test(self) -> bool:
        """Whether the verdict rests on the rank-sum test: censored values on a side."""
        return self.censored and bool(self.n_undefined_a or self.n_undefined_b)

    @property
    def testable(self) -> bool:
        """Whether the verdict's test was run: Welch's (at least :data:`MIN_SEEDS` values
        on each side, and some spread: two constant sides differ certainly or not at all)
        or, with censored values, the rank-sum test (at least :data:`MIN_SEEDS` seeds on
        each side)."""
        return not math.isnan(self.rank_p if self.rank_test else self.welch_p)

    @property
    def planned(self) -> bool:
        """Whether the comparison counts in its family: a test was run, or its sides have the
        seeds one needs and only the data (no spread, undefined values) kept it from
        running. How many seeds a group has is known before the data; what they give is not.
        A test of one group against a constant (:attr:`one_sample`) has one side."""
        sides = [self.n_b + self.n_undefined_b]
        if not self.one_sample:
            sides.append(self.n_a + self.n_undefined_a)
        return self.testable or min(sides) >= MIN_SEEDS

    @property
    def direction(self) -> float:
        """Positive where B's values tend to be larger, negative where smaller: the
        difference of the means, or, under the rank-sum test, ``superiority − ½``."""
        return self.superiority - 0.5 if self.rank_test else self.diff

    @property
    def p_adjusted(self) -> float:
        """The verdict's p (Welch's, or the rank-sum test's), Bonferroni-adjusted over the
        :attr:`family` (itself when alone)."""
        return min(1.0, (self.rank_p if self.rank_test else self.welch_p) * self.family)

    @property
    def p(self) -> float:
        """The p value the verdict rests on: the adjusted one."""
        return self.p_adjusted

    @property
    def significant(self) -> bool:
        """Whether the adjusted p value is below :attr:`alpha`."""
        return self.testable and self.p < self.alpha

    @property
    def level(self) -> float:
        """The confidence of the intervals beside the verdict: 1 − α / family."""
        return 1 - self.alpha / self.family

    def adjusted(self, family: int) -> Comparison:
        """This comparison as one of `family` tests adjusted together."""
        return dataclasses.replace(self, family=max(1, family))

    def interval(self) -> tuple[float, float]:
        """Welch's interval of the difference at :attr:`level` (simultaneous in a family),
        cut to ±:attr:`span` (NaN under the rank-sum test: censored values have no mean)."""
        if self.rank_test:
            return math.nan, math.nan
        low, high = self._welch()  # (a NaN, given first, stays NaN: no comparison holds)
        return max(low, -self.span), min(high, self.span)

    def paired_interval(self) -> tuple[float, float]:
        """The paired interval of the per-seed differences at :attr:`level`, cut to
        ±:attr:`span`."""
        low, high = self._paired()
        return max(low, -self.span), min(high, self.span)

    def _welch(self) -> tuple[float, float]:
        return _t_interval(self.diff, self.diff_se, self.welch_df, self.level)

    def _paired(self) -> tuple[float, float]:
        return _t_interval(self.paired_diff, self.paired_se, self.n_paired - 1, self.level)

    def cut(self, paired: bool = False) -> str:
        """ ", cut to the possible ±100" where Welch's (or the paired) interval reaches past
        ±:attr:`span` and is shown cut there; "" where it does not."""
        low, high = self._paired() if paired else self._welch()
        return f", cut to the possible ±{self.span:g}" if max(-low, high) > self.span else ""

    def interval_name(self) -> str:
        """What the intervals are, said with them: "95 % CI", or simultaneous."""
        if self.family == 1:
            return "95 % CI"
        return f"simultaneous 95 % CI over {self.family} tests"

    def detectable(self, power: float = POWER) -> float:
        """The smallest difference this n and these spreads detect with `power` at the
        adjusted level (Welch's normal-theory approximation; NaN under the rank-sum test)."""
        if self.rank_test or math.isnan(self.diff_se) or self.diff_se == 0:
            return math.nan
        df = self.welch_df
        t = sps.t.ppf(1 - self.alpha / (2 * self.family), df) + sps.t.ppf(power, df)
        return float(t * self.diff_se)

    def seeds(self) -> tuple[int, int]:
        """The seeds the verdict's test counts on each side (A, B): the defined values, and
        under the rank-sum test the censored ones too."""
        if self.rank_test:
            return self.n_a + self.n_undefined_a, self.n_b + self.n_undefined_b
        return self.n_a, self.n_b

    def why_untestable(self) -> str:
        n_a, n_b = self.seeds()
        if min(n_a, n_b) < MIN_SEEDS:
            return (
                f"no test is possible with fewer than {MIN_SEEDS} seeds per group "
                f"({self.label_b} has {n_b}, {self.label_a} {n_a})"
            )
        return "no test is possible: neither side varies over the seeds"

    def never(self) -> str:
        """How many seeds of each side never recovered, and how the test counts them ("" where
        none): the words beside a rank-sum test's verdict."""
        if not self.rank_test:
            return ""
        # (where no test could run, the test that would have: not one that did)
        how = (
            "exact rank-sum test, those ranked last"
            if self.testable
            else "an exact rank-sum test would rank those last"
        )
        return (
            f"{self.n_undefined_b} of {self.label_b}'s and {self.n_undefined_a} of "
            f"{self.label_a}'s seeds never recovered: {how}"
        )

    def rank_reach(self) -> str:
        """Where the exact rank-sum test cannot be significant at these seeds whatever the data
        (its smallest p, 2 / C(n_a + n_b, n_b) where no values tie, adjusted, at least α),
        the words that say so; else "". Ties only raise that floor."""
        n_a, n_b = self.seeds()
        floor = min(1.0, 2 / math.comb(n_a + n_b, n_b) * self.family)
        if floor < self.alpha:
            return ""
        return (
            f" (with {n_a} and {n_b} seeds the exact rank-sum test cannot give an adjusted p "
            f"below {floor:.2g}: no result at this n could show a difference)"
        )

    def medians_text(self, digits: int = 2, unit: str = "", diff_unit: str | None = None) -> str:
        """``"median 13.6 vs 16.0 %, nd above baseline in 48 % of seed pairs, Hodges–Lehmann
        shift ..."``: a rank-sum test's effect (a tied pair counts half), where an interval of
        means would be biased; the medians in `unit`, the shift in `diff_unit` (default
        `unit`)."""
        b, a = (_median(m, digits, unit) for m in (self.median_b, self.median_a))
        shift = self.shift_text(digits, unit if diff_unit is None else diff_unit)
        return (
            f"median {b} vs {a}, {self.label_b} above {self.label_a} in "
            f"{100 * self.superiority:.0f} % of seed pairs{shift}"
        )

    def shift(self) -> Shift:
        """The Hodges–Lehmann shift of B against A and the shifts the verdict's rank-sum
        test accepts at its adjusted level (:func:`shift_interval`): the interval beside a
        rank-sum verdict, holding 0 exactly when the verdict is not significant. Not cut to
        ±:attr:`span` as the intervals of means are: a seed that never recovered has a time
        beyond its run's end, unbounded, and a shift of such times may pass what measured
        values span."""
        if not self.testable:
            return Shift(math.nan, math.nan, math.nan)
        return _shift(self.ranked_a, self.ranked_b, self.alpha, self.family)

    def shift_text(self, digits: int = 2, unit: str = "") -> str:
        """``", Hodges–Lehmann shift +4.00 % (95 % CI [+1.00, +9.00])"``, or "" where
        the rank-sum test was not run."""
        s = self.shift()
        if math.isnan(s.estimate):
            return ""
        u = f" {unit}" if unit else ""
        estimate = _extended(s.estimate, digits)
        if math.isnan(s.low):
            accepted = f"no shift accepted at {self.interval_name()}"
        else:
            accepted = f"{self.interval_name()} {s.text(digits)}"
        return f", Hodges–Lehmann shift {estimate}{u} ({accepted})"

    def verdict(self, digits: int = 2, unit: str = "") -> str:
        """The verdict alone: "significant ...", or "not shown at n = ..." with the
        difference that n could have detected."""
        if not self.testable:
            return self.why_untestable()
        if self.significant:
            return f"significant at α = {self.alpha:g}"
        n_a, n_b = self.seeds()
        shown = f"not shown at n = {n_a} and {n_b}"
        if self.rank_test:
            return shown + self.rank_reach()
        small = self.detectable()
        if math.isnan(small):
            return shown
        if small >= self.span:
            return f"{shown} ({self.reach(digits, unit)})"
        u = f" {unit}" if unit else ""
        return (
            f"{shown} (a difference smaller than about {small:.{digits}f}{u} could not be "
            f"detected with {POWER * 100:.0f} % power at this level)"
        )

    def reach(self, digits: int = 2, unit: str = "") -> str:
        """What this n could detect, in a few words: "could detect ≈ 4.20 p.p.", or, where
        that is beyond any difference the metric allows, that none could be."""
        u = f" {unit}" if unit else ""
        small = self.detectable()
        if small >= self.span:
            return (
                f"at this n not even the largest possible difference, ±{self.span:g}{u}, could "
                f"be detected with {POWER * 100:.0f} % power at this level"
            )
        return f"could detect ≈ {small:.{digits}f}{u}"

    def interval_text(self, digits: int = 2, unit: str = "") -> str:
        """``"-10.00 p.p. (95 % CI -14.1 to -5.9)"``: the difference and its interval (under
        the rank-sum test, the medians: :meth:`medians_text`)."""
        if self.rank_test:
            return self.medians_text(digits, unit)
        u = f" {unit}" if unit else ""
        low, high = self.interval()
        return (
            f"{_signed(self.diff, digits)}{u} ({self.interval_name()} {_signed(low, digits)} to "
            f"{_signed(high, digits)}{self.cut()})"
        )

    def sentence(self, digits: int = 2, unit: str = "", diff_unit: str | None = None) -> str:
        """The comparison in one plain-English sentence, with its numbers.

        Args:
            digits: Decimals of means, standard deviations and differences.
            unit: Unit of the values, e.g. ``"%"``.
            diff_unit: Unit of the difference (default ``unit``), e.g. ``"p.p."``.
        """
        u = f" {unit}" if unit else ""
        du = unit if diff_unit is None else diff_unit

        def side(label: str, mean: float, std: float, n: int, n_undef: int) -> str:
            left_out = f", {n_undef} left out as undefined" if n_undef else ""
            return f"{label} {format_mean_std(mean, std, digits)}{u} (n = {n}{left_out})"

        adjusted = "" if self.family == 1 else f", adjusted p = {_p(self.p_adjusted)}"
        if self.rank_test:
            n_a, n_b = self.seeds()
            text = f"{self.metric}: {self.label_b} (n = {n_b}) vs {self.label_a} (n = {n_a})"
            if not self.testable:
                return f"{text}; {self.never()}; {self.why_untestable()}."
            return text + (
                f"; {self.medians_text(digits, unit, du)}; {self.never()}, p = {_p(self.rank_p)}"
                f"{adjusted}: {self.verdict(digits, du)}."
            )
        side_b = side(self.label_b, self.mean_b, self.std_b, self.n_b, self.n_undefined_b)
        side_a = side(self.label_a, self.mean_a, self.std_a, self.n_a, self.n_undefined_a)
        text = f"{self.metric}: {side_b} vs {side_a}"
        d = f" {du}" if du else ""
        if not self.testable:
            return f"{text}; difference {_signed(self.diff, digits)}{d}; {self.why_untestable()}."
        text += (
            f"; difference {self.label_b} − {self.label_a} = {self.interval_text(digits, du)}, "
            f"Welch's t({self.welch_df:.1f}) = {self.welch_t:.2f}, p = {_p(self.welch_p)}"
            f"{adjusted}: {self.verdict(digits, du)}"
        )
        if self.n_paired >= MIN_SEEDS:
            low, high = self.paired_interval()
            adjusted = (
                ""
                if self.family == 1
                else f", adjusted p = {_p(min(1.0, self.paired_p * self.family))}"
            )
            text += (
                f"; paired over {self.n_paired} shared seeds (not the verdict's test): difference "
                f"{_signed(self.paired_diff, digits)}{d} ({self.interval_name()} "
                f"{low:+.{digits}f} to {high:+.{digits}f}{self.cut(paired=True)}), "
                f"t = {self.paired_t:.2f}, "
                f"p = {_p(self.paired_p)}{adjusted}, Wilcoxon signed-rank p = "
                f"{_p(self.wilcoxon_p, 3)} (unadjusted)"  # 3 digits: 0.0625, its floor at n = 5
            )
            if self.n_paired <= WILCOXON_FLOOR_N:
                floor = 2 / 2**self.n_paired
                text += f" (with {self.n_paired} pairs it cannot go below {floor:.3g})"
        return text + f"; Hedges' g = {self.hedges_g:.2f}."


# With n pairs, the exact two-sided Wilcoxon signed-rank test cannot give p < 2 / 2^n:
# 0.25 for 3 pairs, 0.0625 for 5; at or below this many pairs the report says so.
WILCOXON_FLOOR_N = 5


class Family:
    """The tests whose verdicts one report states, adjusted by quantity (Bonferroni).

    The tests of one quantity (a comparison's :attr:`Comparison.quantity`: GD_1,3 of every
    compared group, a poster's question on it, a reported finding on it) are adjusted
    together, as a multi-arm study adjusts each outcome over its arms. A test is one
    comparison (two groups, one measure; the same comparison asked twice, as the
    comparisons table and a poster question or a reported finding may, counts once: a
    finding names its measure as the table does, :attr:`Comparison.measure`) or one further
    p value of a quantity (a correlation's). Tests are told apart by what they measure,
    never by their numbers: two measures that happen to agree on these seeds are two tests.

    Example:
        >>> a, b = {1: 1.0, 2: 2.0, 3: 3.0}, {1: 2.0, 2: 3.5, 3: 4.0}
        >>> f = Family([compare(a, b, metric="x"),
        ...             compare(a, b, metric="x (p.p.)", quantity="x", measure="x"),
        ...             compare(a, b, "A", "C", metric="x"), compare(a, b, metric="y"),
        ...             compare(b, a, "B", "A", metric="x")])  # the first, turned round
        >>> f.sizes, f.adjusted(compare(a, b, metric="x")).family
        ({'x': 2, 'y': 1}, 2)
    """

    def __init__(
        self, comparisons: Iterable[Comparison], extra: Mapping[str, int] | None = None
    ) -> None:
        keys: dict[str, set] = {}
        for c in comparisons:
            if c.planned:
                quantity, test = self.key(c)
                keys.setdefault(quantity, set()).add(test)
        self.sizes = {q: len(k) for q, k in keys.items()}
        for q, n in (extra or {}).items():
            self.sizes[q] = self.sizes.get(q, 0) + n

    @staticmethod
    def key(c: Comparison) -> tuple[str, tuple[str, str, str]]:
        """A test's quantity and the test itself: one hypothesis, its groups and its measure,
        fixed in advance (in either order: B against A is A against B's two-sided test, its
        sign turned, as a report with another baseline asks the poster's questions)."""
        return c.quantity or c.metric, (*sorted((c.label_a, c.label_b)), c.measure or c.metric)

    def adjusted(self, c: Comparison) -> Comparison:
        return c.adjusted(self.sizes.get(c.quantity or c.metric, 1))

    def p(self, p: float, quantity: str) -> float:
        """A further test's p value, adjusted with the tests of its `quantity`."""
        return min(1.0, p * self.sizes.get(quantity, 1))

    def describe(self) -> str:
        if all(n == 1 for n in self.sizes.values()):
            return "no adjustment (one test of each quantity)"
        return (
            "Bonferroni over the report's tests of the same quantity ("
            + ", ".join(f"{q}: {n}" for q, n in self.sizes.items())
            + ")"
        )


def censored_median(values: Sequence[float | None], recovered: Sequence[bool]) -> float:
    """Median of times to recover, counting a seed that never recovered as +∞.

    Leaving never-recovered seeds out biases a mean low; as +∞ they keep their place in
    the order, and the median is ∞ when half of the seeds or more never recovered.

    Example:
        >>> censored_median([10.0, 30.0, None], [True, True, False])
        30.0
        >>> censored_median([10.0, None, None], [True, False, False])
        inf
    """
    times = [v if ok else math.inf for v, ok in zip(values, recovered, strict=True)]
    return float(np.median(times)) if times else math.nan


def rank_sum_test(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """The Wilcoxon–Mann–Whitney rank-sum test of B against A, two-sided and exact with
    ties: tied values share their mean rank, and +∞ (a censored time) ranks above every
    finite value, tied with the other +∞.

    The p value is 2·min(P(S ≥ s), P(S ≤ s)) (at most 1), S the sum of B's ranks over the
    C(n_a + n_b, n_b) equally likely ways the pooled values could have been split: the
    exact permutation distribution, ties included, counted in integers of doubled ranks
    (up to 100 values; beyond, the normal approximation with the ties' correction).

    Returns:
        (p, superiority): superiority is P(B > A) + ½·P(B = A) over every pair (U / n_a·n_b).

    Example:
        >>> p, sup = rank_sum_test([1.0, 2.0, 3.0], [4.0, 5.0, math.inf])
        >>> round(p, 4), sup  # 1 of the C(6, 3) = 20 splits is as high: 2 × 1/20
        (0.1, 1.0)
    """
    na, nb = len(a), len(b)
    if min(na, nb) == 0:
        return math.nan, math.nan
    ranks = sps.rankdata(np.concatenate([np.asarray(a, float), np.asarray(b, float)]))
    doubled = np.rint(2 * ranks).astype(np.int64)  # mean ranks are whole or halves
    return _rank_sum_p(doubled, na), _superiority(doubled, na)


def _superiority(doubled: np.ndarray, na: int) -> float:
    """U / n_a·n_b from the pooled doubled ranks (A's first)."""
    nb = doubled.size - na
    return (int(doubled[na:].sum()) / 2 - nb * (nb + 1) / 2) / (na * nb)


def _rank_sum_p(doubled: np.ndarray, na: int) -> float:
    """The two-sided p of the rank-sum test from the pooled ranks, doubled to integers (A's
    first): exact up to :data:`RANK_EXACT_MAX` values, else the normal approximation."""
    nb = doubled.size - na
    if na + nb > RANK_EXACT_MAX:
        # scipy's statistic depends on the values' ranks alone: the doubled ranks give it
        res = sps.mannwhitneyu(doubled[na:], doubled[:na], method="asymptotic")
        return float(res.pvalue)
    observed = int(doubled[na:].sum())
    # ways[k, s]: subsets of k of the values so far whose doubled ranks sum to s; each value
    # joins the subsets of the values before it (the right side is read before it is added)
    ways = np.zeros((nb + 1, int(doubled.sum()) + 1))
    ways[0, 0] = 1.0
    for r in doubled:
        ways[1:, r:] += ways[:-1, : ways.shape[1] - r]
    splits = ways[nb] / ways[nb].sum()
    upper, lower = splits[observed:].sum(), splits[: observed + 1].sum()
    return float(min(1.0, 2 * min(upper, lower)))


def shift_interval(
    a: Sequence[float], b: Sequence[float], alpha: float = ALPHA, family: int = 1
) -> Shift:
    """The Hodges–Lehmann shift of B against A, and the shifts the rank-sum test accepts.

    The shift Δ moves each of B's finite values by −Δ; +∞ (a censored time) stays +∞, so
    the model behind it is "B's measured times are A's moved by Δ, and as many never end".
    The estimate is the Δ at which B − Δ is above A in half the pairs: the median of the
    differences b − a over the pairs of seeds, a pair of two +∞ left out (it ties whatever
    Δ is). The interval inverts :func:`rank_sum_test`: it runs from the smallest to the
    largest Δ at which B − Δ against A is not significant (Bonferroni over `family`, as the
    verdict), so it holds 0 exactly when the verdict is not significant. Without ties and
    +∞ its ends are Moses' interval's, the k-th smallest and k-th largest difference.

    With ties, an end can be open: the shifts just inside are accepted, the end itself not
    (:class:`Shift` says which).

    Example:
        >>> s = shift_interval([1.0, 2.0, 3.0, 4.0, 5.0], [11.0, 12.0, 13.0, 14.0, 15.0])
        >>> s.estimate, s.text()  # U ≤ 2 of 25 pairs is significant: the 3rd from each end
        (10.0, '(+7, +13)')

        Open at both ends: at Δ = 7 itself two pairs tie, and the exact test with ties
        rejects there, as it does below; every Δ between 7 and 13 is accepted.
    """
    xa, xb = np.asarray(a, float), np.asarray(b, float)
    if min(xa.size, xb.size) == 0:
        return Shift(math.nan, math.nan, math.nan)
    with np.errstate(invalid="ignore"):
        diffs = xb[None, :] - xa[:, None]  # [i, j]: b_j − a_i; NaN where both are +∞
        # a shift leaves the order within each side alone (+∞ against +∞: a tie), so each
        # value's count of its own side's values below it and tied with it is counted once
        within_a = np.nan_to_num(np.sign(xa[:, None] - xa[None, :]))
        within_b = np.nan_to_num(np.sign(xb[:, None] - xb[None, :]))
    below_own_a, ties_own_a = (within_a > 0).sum(1), (within_a == 0).sum(1) - 1
    below_own_b, ties_own_b = (within_b > 0).sum(1), (within_b == 0).sum(1) - 1

    def accepted(shift: float) -> bool:
        with np.errstate(invalid="ignore"):
            cross = np.nan_to_num(np.sign(diffs - shift))  # [i, j]: sign of (b_j − Δ) − a_i
        # a value's doubled mean rank: 2 + 2·(values below it) + (values tied with it)
        below_a = below_own_a + (cross < 0).sum(1)
        ties_a = ties_own_a + (cross == 0).sum(1)
        below_b = below_own_b + (cross > 0).sum(0)
        ties_b = ties_own_b + (cross == 0).sum(0)
        doubled = np.concatenate([2 + 2 * below_a + ties_a, 2 + 2 * below_b + ties_b])
        return min(1.0, _rank_sum_p(doubled, xa.size) * family) >= alpha

    paired = np.sort(diffs[~np.isnan(diffs)])  # every pair but two +∞
    estimate = math.nan  # the median of the pairs' differences (NaN between −inf and +inf)
    if paired.size:
        estimate = (float(paired[(paired.size - 1) // 2]) + float(paired[paired.size // 2])) / 2
    # the ranks change only where Δ crosses a finite difference: test at each of those and
    # at a shift inside each stretch between them (beyond the ends: the order at ±∞)
    edges = np.unique(paired[np.isfinite(paired)]).tolist()
    if not edges:
        stretches = [(-math.inf, 0.0, math.inf)]
    else:
        stretches = [(-math.inf, edges[0] - 1 - abs(edges[0]), edges[0]), (edges[0],) * 3]
        for lo, hi in itertools.pairwise(edges):
            stretches += [(lo, (lo + hi) / 2, hi), (hi,) * 3]
        stretches.append((edges[-1], edges[-1] + 1 + abs(edges[-1]), math.inf))
    kept = [(lo, shift, hi) for lo, shift, hi in stretches if accepted(shift)]
    if not kept:
        return Shift(estimate, math.nan, math.nan)
    (low, first, _), (_, last, high) = kept[0], kept[-1]
    return Shift(estimate, low, high, low_open=low != first, high_open=high != last)


class Shift(NamedTuple):
    """A Hodges–Lehmann shift and the shifts its rank-sum test accepts
    (:func:`shift_interval`): from `low` to `high`, each end included unless open (±inf
    ends are open); NaN ends where no shift is accepted."""

    estimate: float
    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    def holds(self, shift: float) -> bool:
        """Whether `shift` is among the accepted shifts."""
        above = self.low < shift or (self.low == shift and not self.low_open)
        below = shift < self.high or (shift == self.high and not self.high_open)
        return above and below

    def text(self, digits: int = 0) -> str:
        """ "[+7, +13]", "(+0, +∞)": the accepted shifts, a bracket at an included end and a
        parenthesis at an open one; "none" where no shift is accepted."""
        if math.isnan(self.low):
            return "none"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        return f"{left}{_extended(self.low, digits)}, {_extended(self.high, digits)}{right}"


@functools.lru_cache(maxsize=256)
def _shift(a: tuple[float, ...], b: tuple[float, ...], alpha: float, family: int) -> Shift:
    # a report asks for one comparison's shift in each place that states it
    return shift_interval(a, b, alpha, family)


# Up to this many pooled values the rank-sum test counts its exact distribution
# (n·n_b·Σranks additions: well under a second); beyond, the normal approximation.
RANK_EXACT_MAX = 100


def _median(x: float, digits: int, unit: str) -> str:
    """A median of times: "never" where it is +∞, else the number and its unit."""
    if math.isinf(x):
        return "never"
    return f"{_signed(x, digits).lstrip('+')}{f' {unit}' if unit else ''}"


def _signed(x: float, digits: int) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.{digits}f}"


def _extended(x: float, digits: int) -> str:
    """A signed number that may be ±∞: "+4.00", "-∞"."""
    return f"{'+' if x > 0 else '-'}∞" if math.isinf(x) else _signed(x, digits)


def _p(p: float, digits: int = 2) -> str:
    return "n/a" if math.isnan(p) else f"{p:.{digits}g}"


def _t_interval(center: float, se: float, df: float, level: float) -> tuple[float, float]:
    if math.isnan(se) or math.isnan(df) or df <= 0:
        return math.nan, math.nan
    half = float(sps.t.ppf(0.5 + level / 2, df)) * se
    return center - half, center + half


def _defined(values: Mapping[Any, float | None]) -> tuple[dict[Any, float], int]:
    """The defined values (not None, not NaN) and how many were left out."""
    kept = {k: float(v) for k, v in values.items() if v is not None and not math.isnan(float(v))}
    return kept, len(values) - len(kept)


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    mean = float(x.mean()) if x.size else math.nan
    std = float(x.std(ddof=1)) if x.size >= 2 else math.nan
    return mean, std


def welch(
    mean_a: float, sd_a: float, n_a: int, mean_b: float, sd_b: float, n_b: int
) -> tuple[float, float]:
    """Welch's standard error of mean_b − mean_a and its Welch–Satterthwaite degrees of
    freedom (NaN when a side has fewer than two values or neither has any spread)."""
    if min(n_a, n_b) < 2:
        return math.nan, math.nan
    va, vb = sd_a**2 / n_a, sd_b**2 / n_b
    if va + vb == 0:
        return math.nan, math.nan
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    return math.sqrt(va + vb), df


def compare(
    a: Mapping[Any, float | None],
    b: Mapping[Any, float | None],
    label_a: str = "A",
    label_b: str = "B",
    *,
    metric: str = "value",
    alpha: float = ALPHA,
    quantity: str = "",
    span: float = math.inf,
    censored: bool = False,
    measure: str = "",
) -> Comparison:
    """Compare the values of B with those of A (keys are seeds; None means undefined).

    `quantity`: what the test is adjusted with in a report (default: its metric); `span`:
    the largest difference the metric allows (:attr:`Comparison.span`); `censored`: an
    undefined value is censored (:attr:`Comparison.censored`): where a side has one, the
    verdict rests on :func:`rank_sum_test` with it ranked last, and nothing is computed
    from the defined values' means; `measure`: what is measured, where the metric's words
    differ (:attr:`Comparison.measure`).

    Example:
        >>> b = {1: 5.0, 2: 6.0, 3: 7.0, 4: None}
        >>> c = compare({1: 10.0, 2: 12.0, 3: 14.0}, b, "base", "nd")
        >>> c.n_a, c.n_b, c.n_undefined_b, c.diff, c.n_paired
        (3, 3, 1, -6.0, 3)
        >>> round(c.welch_t, 4), round(c.welch_df, 4)  # -6 / sqrt(4/3 + 1/3), df 50/17
        (-4.6476, 2.9412)
    """
    da, undef_a = _defined(a)
    db, undef_b = _defined(b)
    xa = np.array(list(da.values()), dtype=np.float64)
    xb = np.array(list(db.values()), dtype=np.float64)
    mean_a, std_a = _mean_std(xa)
    mean_b, std_b = _mean_std(xb)
    na, nb = xa.size, xb.size
    diff = mean_b - mean_a

    nan = math.nan
    t = p = d = g = nan
    se, df = welch(mean_a, std_a, na, mean_b, std_b, nb)
    ranked = censored and (undef_a or undef_b)
    rank_p = superiority = median_a = median_b = nan
    ranked_values: tuple[tuple[float, ...], ...] = ((), ())
    if ranked:
        # a censored seed is beyond every measured value: +∞ in ranks and medians
        ra = [*xa, *[math.inf] * undef_a]
        rb = [*xb, *[math.inf] * undef_b]
        median_a, median_b = float(np.median(ra)), float(np.median(rb))
        if min(len(ra), len(rb)) >= MIN_SEEDS:
            rank_p, superiority = rank_sum_test(ra, rb)
            ranked_values = tuple(ra), tuple(rb)
    if min(na, nb) < MIN_SEEDS or ranked:
        se = df = nan
    if not math.isnan(se):
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sps.ttest_ind(xb, xa, equal_var=False)
        t, p = float(res.statistic), float(res.pvalue)
        pooled = math.sqrt(((na - 1) * std_a**2 + (nb - 1) * std_b**2) / (na + nb - 2))
        if pooled > 0:
            d = diff / pooled
            g = d * (1 - 3 / (4 * (na + nb) - 9))

    shared = sorted(set(da) & set(db), key=lambda s: (str(type(s)), s))
    pd = pse = pt = pp = wp = nan
    if len(shared) >= MIN_SEEDS and not ranked:
        diffs = np.array([db[s] - da[s] for s in shared])
        pd, sd = float(diffs.mean()), float(diffs.std(ddof=1))
        pse = sd / math.sqrt(len(shared)) if sd > 0 else nan
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            # Few pairs or tied differences make scipy warn; the p values it returns stand.
            warnings.simplefilter("ignore")
            res = sps.ttest_rel([db[s] for s in shared], [da[s] for s in shared])
            pt, pp = float(res.statistic), float(res.pvalue)
            if np.any(diffs != 0):
                wp = float(sps.wilcoxon(diffs).pvalue)

    return Comparison(
        label_a=label_a,
        label_b=label_b,
        metric=metric,
        n_a=na,
        n_b=nb,
        n_undefined_a=undef_a,
        n_undefined_b=undef_b,
        mean_a=mean_a,
        mean_b=mean_b,
        std_a=std_a,
        std_b=std_b,
        diff=diff,
        diff_se=se,
        welch_t=t,
        welch_df=df,
        welch_p=p,
        n_paired=len(shared),
        paired_diff=pd,
        paired_se=pse,
        paired_t=pt,
        paired_p=pp,
        wilcoxon_p=wp,
        cohen_d=d,
        hedges_g=g,
        alpha=alpha,
        quantity=quantity or metric,
        span=span,
        censored=censored,
        measure=measure,
        rank_p=rank_p,
        superiority=superiority,
        median_a=median_a,
        median_b=median_b,
        ranked_a=ranked_values[0],
        ranked_b=ranked_values[1],
    )


# --------------------------------------------------------------------------------------------
# Equality within a margin
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided Welch tests (TOST) of |B − A| < margin.

    Attributes:
        diff: mean_b − mean_a.
        low, high: the (1 − 2α) interval of the difference (90 % at α = 0.05).
        p: the larger of the two one-sided p values; equivalent when below α.
        margin, alpha: what was tested.
    """

    diff: float
    low: float
    high: float
    p: float
    margin: float
    alpha: float = ALPHA

    @property
    def equivalent(self) -> bool:
        """Whether the difference lies within ±margin (the interval inside the margin)."""
        return self.p < self.alpha

    def sentence(self, digits: int = 2, unit: str = "p.p.") -> str:
        interval = (
            f"{_signed(self.diff, digits)} {unit} ({1 - 2 * self.alpha:.0%} CI "
            f"{_signed(self.low, digits)} to {_signed(self.high, digits)})"
        )
        verdict = "equivalent" if self.equivalent else "equivalence not shown"
        return (
            f"difference {interval}: {verdict} within ±{self.margin:g} {unit} "
            f"(two one-sided Welch tests, p = {_p(self.p)})"
        )


def equivalence(
    a: tuple[float, float, int],
    b: tuple[float, float, int],
    margin: float,
    alpha: float = ALPHA,
) -> Equivalence:
    """Equivalence of B and A within ±margin from their (mean, sd, n), by two one-sided
    Welch tests: equivalent when the (1 − 2α) interval of B − A lies inside the margin.

    Example:
        >>> e = equivalence((16.36, 1.44, 15), (16.67, 1.69, 15), margin=1.5)
        >>> round(e.diff, 2), e.equivalent
        (0.31, True)
        >>> equivalence((10.0, 1.0, 3), (10.5, 1.0, 3), margin=1.0).equivalent  # n too small
        False
    """
    se, df = welch(*a, *b)
    diff = b[0] - a[0]
    if math.isnan(se):
        return Equivalence(diff, math.nan, math.nan, math.nan, margin, alpha)
    low, high = _t_interval(diff, se, df, 1 - 2 * alpha)
    p_above = float(sps.t.sf((diff + margin) / se, df))  # H0: diff <= -margin
    p_below = float(sps.t.cdf((diff - margin) / se, df))  # H0: diff >= +margin
    return Equivalence(diff, low, high, max(p_above, p_below), margin, alpha)
