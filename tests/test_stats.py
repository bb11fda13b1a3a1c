"""Comparisons over seeds, and the answers to Q1 and Q2.

(stabgap.statistics.comparison, stabgap.analysis.questions)

Every statistic is checked against its textbook formula computed here (numpy and the t
distribution only), or against a p value worked out by hand.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter

import numpy as np
import pytest
from scipy import stats as sps

from stabgap.analysis.questions import answer_questions
from stabgap.metrics import difference_span
from stabgap.statistics.comparison import (
    ALPHA,
    Family,
    censored_median,
    compare,
    equivalence,
    rank_sum_test,
    shift_interval,
)
from stabgap.statistics.summary import summarize

NAN = math.nan
A = {1: 16.0, 2: 15.0, 3: 18.0, 4: 17.5, 5: 14.0}
B = {1: 5.0, 2: 6.0, 3: 8.0, 4: 4.5, 6: 7.0}  # seed 5 missing, seed 6 only here


def welch_textbook(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Welch's t of mean(y) - mean(x) and its Welch–Satterthwaite degrees of freedom."""
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    t = (y.mean() - x.mean()) / math.sqrt(vx + vy)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    return t, df


def test_welch_against_textbook_formula():
    c = compare(A, B, "baseline", "nd")
    x, y = np.array(list(A.values())), np.array(list(B.values()))
    t, df = welch_textbook(x, y)
    assert (c.n_a, c.n_b) == (5, 5)
    assert c.mean_a == pytest.approx(x.mean()) and c.mean_b == pytest.approx(y.mean())
    assert c.std_a == pytest.approx(x.std(ddof=1)) and c.std_b == pytest.approx(y.std(ddof=1))
    assert c.diff == pytest.approx(y.mean() - x.mean())
    assert c.welch_t == pytest.approx(t)
    assert c.welch_df == pytest.approx(df)
    assert c.welch_p == pytest.approx(2 * sps.t.sf(abs(t), df))
    half = sps.t.ppf(0.975, df) * math.sqrt(x.var(ddof=1) / 5 + y.var(ddof=1) / 5)
    assert c.interval() == pytest.approx((c.diff - half, c.diff + half))
    assert c.significant and c.alpha == ALPHA == 0.05 and c.family == 1


def test_welch_small_example_by_hand():
    # a: 10, 12, 14 (mean 12, var 4); b: 5, 6, 7 (mean 6, var 1).
    # t = -6 / sqrt(4/3 + 1/3) = -6 / sqrt(5/3);
    # df = (5/3)^2 / ((4/3)^2 / 2 + (1/3)^2 / 2) = (25/9) / (17/18) = 50/17.
    c = compare({1: 10.0, 2: 12.0, 3: 14.0}, {1: 5.0, 2: 6.0, 3: 7.0})
    assert c.welch_t == pytest.approx(-6 / math.sqrt(5 / 3))
    assert c.welch_df == pytest.approx(50 / 17)


def test_paired_tests_use_shared_seeds_only():
    c = compare(A, B, "baseline", "nd")
    shared = [1, 2, 3, 4]
    d = np.array([B[s] - A[s] for s in shared])  # -11, -9, -10, -13
    t = d.mean() / (d.std(ddof=1) / math.sqrt(d.size))
    assert c.n_paired == 4
    assert c.paired_t == pytest.approx(t)
    assert c.paired_p == pytest.approx(2 * sps.t.sf(abs(t), d.size - 1))
    # All four differences are negative: the exact two-sided Wilcoxon p is 2 / 2^4.
    assert c.wilcoxon_p == pytest.approx(2 / 16)
    half = sps.t.ppf(0.975, 3) * d.std(ddof=1) / 2
    assert c.paired_diff == d.mean()
    assert c.paired_interval() == pytest.approx((d.mean() - half, d.mean() + half))


def test_wilcoxon_exact_by_hand():
    # Five differences, ranks 1..5, one positive (rank 1): W+ = 1. P(W+ <= 1) = 2/32 (W+ = 0
    # or 1), two-sided p = 4/32.
    a = {s: 0.0 for s in range(5)}
    b = {0: 0.5, 1: -2.0, 2: -3.0, 3: -4.0, 4: -5.0}
    assert compare(a, b).wilcoxon_p == pytest.approx(4 / 32)


def test_effect_size_by_formula():
    c = compare(A, B)
    x, y = np.array(list(A.values())), np.array(list(B.values()))
    pooled = math.sqrt((4 * x.var(ddof=1) + 4 * y.var(ddof=1)) / 8)
    d = (y.mean() - x.mean()) / pooled
    assert c.cohen_d == pytest.approx(d)
    assert c.hedges_g == pytest.approx(d * (1 - 3 / (4 * 10 - 9)))
    assert c.hedges_g < 0  # same sign as the difference b - a


def test_undefined_values_are_left_out_and_counted():
    a = {1: 10.0, 2: None, 3: 12.0, 4: 11.0, 5: 13.0}
    b = {1: 20.0, 2: 21.0, 3: NAN, 4: 22.0, 5: 25.0}
    c = compare(a, b)
    assert (c.n_a, c.n_undefined_a, c.n_b, c.n_undefined_b) == (4, 1, 4, 1)
    assert c.mean_a == 11.5 and c.mean_b == 22.0
    assert c.n_paired == 3  # seeds 1, 4 and 5
    # d = 10, 11, 12: mean 11, sd 1, t = 11 / (1 / sqrt(3))
    assert c.paired_t == pytest.approx(11 * math.sqrt(3))
    assert "1 left out as undefined" in c.sentence()


def test_two_seeds_a_side_are_never_called_significant():
    c = compare({1: 10.0, 2: 10.1}, {1: 1.0, 2: 1.1}, "a", "b")  # a huge, clear difference
    assert not c.testable and not c.significant and math.isnan(c.welch_p)
    assert "no test is possible with fewer than 3 seeds per group" in c.sentence()
    assert "significant" not in c.sentence()


def test_constant_groups_give_no_infinite_t():
    c = compare({1: 5.0, 2: 5.0, 3: 5.0}, {1: 4.0, 2: 4.0, 3: 4.0})
    assert not c.testable and not c.significant
    assert "neither side varies" in c.sentence() and "inf" not in c.sentence()


def test_wilcoxon_floor_is_stated_for_few_pairs():
    a = {s: float(s) for s in range(1, 5)}
    b = {s: float(s) - 1 - 0.1 * s for s in range(1, 5)}  # four pairs, all lower
    sentence = compare(a, b).sentence()
    assert "with 4 pairs it cannot go below 0.125" in sentence


@pytest.mark.parametrize("family", [1, 3, 12, 60])
def test_an_adjusted_interval_excludes_zero_exactly_when_the_adjusted_verdict_is_significant(
    family,
):
    """Bonferroni over m tests: p·m < α ⟺ the (1 − α/m) Welch interval excludes 0 (the
    same t distribution); over many differences of either sign, the two never disagree."""
    rng = np.random.default_rng(family)
    for _ in range(200):
        a = dict(enumerate(rng.normal(0, 1, 5)))
        b = dict(enumerate(rng.normal(rng.normal(0, 1.5), rng.uniform(0.3, 2), 5)))
        c = compare(a, b).adjusted(family)
        low, high = c.interval()
        assert c.p_adjusted == min(1.0, c.welch_p * family)
        assert c.significant == (low > 0 or high < 0)
        level = 1 - ALPHA / family
        half = sps.t.ppf(0.5 + level / 2, c.welch_df) * c.diff_se
        assert (low, high) == pytest.approx((c.diff - half, c.diff + half))


def test_a_family_adjusts_the_tests_of_each_quantity_counting_each_comparison_once():
    gd = compare(A, B, "baseline", "nd", metric="GD")
    gd_other = compare(A, B, "baseline", "ema", metric="GD")
    ttr = compare(A, B, "baseline", "nd", metric="TTR", quantity="time")
    # another definition, even one that happens to give the same values: another test
    ttr_robust = compare(A, B, "baseline", "nd", metric="TTR robust", quantity="time")
    # a reported finding asking the comparisons table's test in its own words: one test
    finding = compare(A, B, "baseline", "nd", metric="GD (p.p.)", quantity="GD", measure="GD")
    untestable = compare({1: 1.0}, {1: 2.0}, metric="GD")
    family = Family([gd, gd, finding, gd_other, ttr, ttr_robust, untestable], extra={"time": 1})
    assert family.sizes == {"GD": 2, "time": 3}
    c = family.adjusted(gd)
    assert c.family == 2 and c.p == pytest.approx(min(1.0, 2 * gd.welch_p))
    assert "simultaneous 95 % CI over 2 tests" in c.sentence()
    assert family.p(0.02, "time") == pytest.approx(0.06)
    assert "GD: 2, time: 3" in family.describe()


def test_a_difference_not_shown_says_what_the_n_could_detect():
    """Non-significance is not equality: the sentence gives the n and the difference that
    n would have detected with 80 % power (normal-theory, from its own standard error)."""
    a = {1: 10.0, 2: 12.0, 3: 11.0}
    b = {1: 10.5, 2: 12.4, 3: 11.2}
    c = compare(a, b, "base", "nd", metric="GD")
    assert not c.significant
    expected = (sps.t.ppf(0.975, c.welch_df) + sps.t.ppf(0.8, c.welch_df)) * c.diff_se
    assert c.detectable() == pytest.approx(expected)
    text = c.sentence(unit="p.p.")
    assert "not shown at n = 3 and 3 (a difference smaller than about" in text
    assert f"{expected:.2f} p.p. could not be detected with 80 % power" in text
    assert "not significant" not in text and "no " not in text.split("; Hedges")[0].lower()


def test_intervals_are_cut_to_the_differences_the_metric_allows():
    """Accuracies lie in [0, 100], so their difference in [-100, 100]: the part of an
    interval beyond cannot hold the true difference, and cutting it keeps the coverage. A
    detectable difference beyond what is possible is said to be out of reach."""
    a = {1: 0.0, 2: 100.0, 3: 50.0}  # diverged seeds: a spread of 50 p.p.
    b = {1: 100.0, 2: 0.0, 3: 60.0}
    raw = compare(a, b, "base", "nd", metric="final ACC")
    c = compare(a, b, "base", "nd", metric="final ACC", span=100.0)
    (low, high), (raw_low, raw_high) = c.interval(), raw.interval()
    assert raw_low < -100 and raw_high > 100 and (low, high) == (-100.0, 100.0)
    assert c.paired_interval() == tuple(np.clip(raw.paired_interval(), -100, 100))
    assert c.welch_p == raw.welch_p and c.cut() and not raw.cut() and c.cut(paired=True)
    text = c.sentence(unit="%", diff_unit="p.p.")
    assert "simultaneous" not in text and "-100.00 to +100.00, cut to the possible ±100)" in text
    assert c.detectable() > 100 and "could not be detected" not in text
    assert "not even the largest possible difference, ±100 p.p., could be detected" in text
    assert "(a difference smaller than about" in raw.sentence(unit="%", diff_unit="p.p.")
    assert difference_span("avg_acc_final") == 100 and difference_span("gap_depth") == 200
    assert difference_span("time_to_recover") == math.inf  # recovery is sought past the end


def test_equivalence_by_two_one_sided_tests():
    # Textbook TOST from summaries: both one-sided p values below α ⟺ the 90 % interval
    # inside the margin.
    a, b, margin = (16.36, 1.44, 15), (16.67, 1.69, 15), 1.5
    e = equivalence(a, b, margin)
    se = math.sqrt(1.44**2 / 15 + 1.69**2 / 15)
    df = (1.44**2 / 15 + 1.69**2 / 15) ** 2 / ((1.44**2 / 15) ** 2 / 14 + (1.69**2 / 15) ** 2 / 14)
    diff = 16.67 - 16.36
    p = max(sps.t.sf((diff + margin) / se, df), sps.t.cdf((diff - margin) / se, df))
    assert e.p == pytest.approx(p) and e.equivalent
    half = sps.t.ppf(0.95, df) * se
    assert (e.low, e.high) == pytest.approx((diff - half, diff + half))
    assert -margin < e.low and e.high < margin
    wide = equivalence(a, b, 0.5)  # the same runs, a margin narrower than the interval
    assert not wide.equivalent and "equivalence not shown within ±0.5" in wide.sentence()


def test_censored_median_counts_never_recovered_as_infinite():
    assert censored_median([10.0, 20.0, None, None], [True, True, False, False]) == math.inf
    assert censored_median([10.0, 20.0, 30.0, None], [True, True, True, False]) == 25.0


def test_too_few_values_are_not_tested():
    c = compare({1: 1.0}, {1: 2.0, 2: 3.0}, "a", "b")
    assert not c.testable and not c.significant
    assert math.isnan(c.welch_p) and math.isnan(c.paired_p) and c.n_paired == 1
    assert "no test is possible with fewer than 3 seeds" in c.sentence()


def test_identical_samples_give_no_wilcoxon():
    c = compare({1: 1.0, 2: 2.0}, {1: 1.0, 2: 2.0})
    assert c.diff == 0.0 and math.isnan(c.wilcoxon_p)
    assert not c.significant


def test_sentence_has_the_numbers():
    c = compare(A, B, "baseline", "ND", metric="GD_1,3")
    s = c.sentence(unit="p.p.")
    # B: mean 6.1, variance 8.2 / 4; A: mean 16.1, variance 11.2 / 4.
    assert s.startswith(
        "GD_1,3: ND 6.10 ± 1.43 p.p. (n = 5) vs baseline 16.10 ± 1.67 p.p. (n = 5); "
        "difference ND − baseline = -10.00 p.p. (95 % CI "
    )
    assert f"Welch's t({c.welch_df:.1f}) = {c.welch_t:.2f}" in s
    assert ": significant at α = 0.05" in s and "not shown" not in s
    assert "paired over 4 shared seeds" in s and "Hedges' g" in s


# --------------------------------------------------------------------------------------------
# answer_questions
# --------------------------------------------------------------------------------------------


def rows_for(values: dict[str, dict[str, list[float | None]]]) -> list[dict]:
    """Tidy rows: {experiment: {"gd": [...], "acc": [...]}}, seed i for the i-th value."""
    rows = []
    for experiment, metrics in values.items():
        for key, metric, task, interval in (
            ("gd", "gap_depth", 1, 3),
            ("gd2", "gap_depth", 1, 2),
            ("acc", "avg_acc_final", None, None),
        ):
            for seed, v in enumerate(metrics.get(key, [1.0, 1.1, 1.2]), start=1):
                rows.append(
                    {
                        "experiment": experiment,
                        "seed": seed,
                        "diverged": False,
                        "metric": metric,
                        "task": task,
                        "interval": interval,
                        "value": v,
                    }
                )
    return rows


FULL = {
    "baseline": {"gd": [16.0, 15.0, 18.0, 17.0], "acc": [97.6, 97.7, 97.8, 97.5]},
    "nd": {"gd": [5.0, 6.0, 4.0, 5.5], "acc": [97.0, 97.1, 96.9, 97.0]},
    "no-replay": {"gd": [60.0, 62.0, 58.0, 61.0], "acc": [70.0, 71.0, 69.0, 70.5]},
    "nd-no-replay": {"gd": [40.0, 45.0, 42.0, 41.0], "acc": [80.0, 79.0, 81.0, 80.5]},
}


def test_answers_when_nd_reduces_the_gap():
    answers = answer_questions(rows_for(FULL))
    q1 = answers[0]
    assert q1.startswith("Q1. Yes: ND reduces the task-1 gap depth in interval 3")
    assert "α = 0.05" in q1 and "GD_1,3: nd 5.12 ± 0.85 p.p. (n = 4)" in q1
    q2 = [a for a in answers if a.startswith("Q2 (")]
    assert q2[0].startswith("Q2 (GD_1,3). ND without replay is significantly worse than")
    assert q2[1].startswith("Q2 (final ACC). ND without replay is significantly worse than")
    assert (
        "Q2. In short, ND without replay is significantly worse than the baseline with replay "
        "on GD_1,3 and on final ACC." in answers
    )
    # Adjusted by quantity: GD_1,3 over Q1 and Q2's two GD_1,3 tests.
    assert "simultaneous 95 % CI over 3 tests" in q1
    assert any(
        a.startswith("Q2, without replay (GD_1,3). ND without replay beats the baseline")
        for a in answers
    )
    assert any(
        a.startswith("Q2, without replay (final ACC). ND without replay beats") for a in answers
    )
    assert answers[-1].startswith("Q2, without replay. In short, ND without replay beats")


def test_the_short_answer_keeps_a_significant_harm_beside_a_difference_not_shown():
    mixed = {**FULL, "nd-no-replay": {"gd": [14.0, 19.0, 16.0, 17.5], "acc": [80.0, 79, 81, 80]}}
    answers = answer_questions(rows_for(mixed))
    assert (
        "Q2. In short, ND without replay is significantly worse than the baseline with replay "
        "on final ACC; it is not shown to differ from the baseline with replay on GD_1,3."
    ) in answers


def test_answers_when_nd_does_not_reduce_the_gap():
    same = {**FULL, "nd": {"gd": [17.0, 14.0, 18.5, 16.0], "acc": FULL["nd"]["acc"]}}
    q1 = answer_questions(rows_for(same))[0]
    assert q1.startswith("Q1. Not shown: no significant change of the task-1 gap depth by ND")
    assert "not shown at n = 4 and 4 (a difference smaller than about" in q1
    worse = {**FULL, "nd": {"gd": [26.0, 25.0, 28.0, 27.0]}}
    assert answer_questions(rows_for(worse))[0].startswith("Q1. No: ND increases")


def test_answers_accept_summaries_and_an_interval():
    rows = rows_for(FULL)
    assert answer_questions(summarize(rows)) == answer_questions(rows)
    q1 = answer_questions(rows, interval=2)[0]
    assert "in interval 2" in q1 and "GD_1,2" in q1


def test_missing_experiments_are_skipped_not_fatal():
    only = {k: FULL[k] for k in ("baseline", "nd")}
    answers = answer_questions(rows_for(only))
    assert answers[0].startswith("Q1. Yes")
    assert "Q2 (GD_1,3) skipped: no runs of experiment 'nd-no-replay'" in answers[1]
    assert all("skipped" in a for a in answers[1:])
    none = answer_questions(rows_for({"baseline": FULL["baseline"]}))
    assert none[0] == "Q1 skipped: no runs of experiment 'nd' (found: baseline)."


def test_undefined_values_in_questions_are_counted():
    rows = rows_for({**FULL, "nd": {"gd": [5.0, None, 4.0, 5.5]}})
    q1 = answer_questions(rows)[0]
    assert "nd 4.83 ± 0.76 p.p. (n = 3, 1 left out as undefined)" in q1
    assert "paired over 3 shared seeds" in q1


def test_q2_in_short_is_undecided_when_nothing_could_be_tested():
    rows = [
        {"experiment": e, "metric": m, "task": t, "interval": j, "seed": 1, "value": v}
        for e, v in (("baseline", 10.0), ("nd", 5.0), ("no-replay", 40.0), ("nd-no-replay", 30.0))
        for m, t, j in (("gap_depth", 1, 3), ("avg_acc_final", None, None))
    ]
    answers = answer_questions(rows)
    summaries = [a for a in answers if "In short" in a]
    assert len(summaries) == 2
    assert all("In short, undecided: too few seeds" in a for a in summaries)


def test_a_censored_time_to_recover_is_tested_by_ranks_not_means():
    # a seed that never recovered is only known to take longer than the run measured: the
    # mean of the recovered seeds is biased low, so the verdict rests on a rank-sum test in
    # which that seed ranks last, and no interval of means is given
    recovered = {1: 10.0, 2: 12.0, 3: 11.0, 4: 13.0}
    one_never = {1: 20.0, 2: 22.0, 3: 21.0, 4: None}
    c = compare(recovered, one_never, "baseline", "nd", metric="TTR", censored=True)
    assert c.rank_test and c.testable and c.n_undefined_b == 1
    assert math.isnan(c.paired_p) and math.isnan(c.welch_p) and math.isnan(c.detectable())
    assert all(math.isnan(x) for x in c.interval())
    # every nd seed ranks above every baseline seed: 1 of the C(8, 4) = 70 splits is as
    # extreme on that side, so p = 2/70; nd is above baseline in every pair
    assert c.rank_p == pytest.approx(2 / 70) and c.superiority == 1.0 and c.direction > 0
    assert (c.median_a, c.median_b) == (11.5, 21.5)
    assert c.seeds() == (4, 4)
    text = c.sentence()
    assert "median 21.50 vs 11.50" in text and "0 of baseline's seeds never recovered" in text
    assert "exact rank-sum test, those ranked last, p = 0.029" in text and "Welch" not in text
    # with 2 seeds a side no test runs, and the words say which test would have
    two = compare({1: 10.0, 2: None}, {1: 20.0, 2: 30.0}, "baseline", "nd", censored=True)
    assert not two.testable and two.never().endswith("an exact rank-sum test would rank those last")
    # a family of 10: adjusted p 20/70, not shown, with every seed counted in n
    assert "not shown at n = 4 and 4" in c.adjusted(10).verdict()
    # all recovered: the usual test, as without censoring
    every = {**one_never, 4: 23.0}
    tested = compare(recovered, every, "baseline", "nd", metric="TTR", censored=True)
    assert tested.welch_p == compare(recovered, every, "baseline", "nd", metric="TTR").welch_p
    assert tested.testable and not tested.rank_test and math.isnan(tested.rank_p)
    # too few seeds for any test, censored ones counted
    few = compare({1: 1.0, 2: None}, {1: 2.0, 2: 3.0}, metric="TTR", censored=True)
    assert not few.testable and "fewer than 3 seeds" in few.why_untestable()
    assert "(B has 2, A 2)" in few.why_untestable()


def test_the_rank_sum_test_is_the_exact_mann_whitney_test_without_ties():
    rng = np.random.default_rng(3)
    for na, nb in ((3, 4), (5, 5), (7, 6)):
        a, b = rng.normal(size=na), rng.normal(0.8, size=nb)
        p, superiority = rank_sum_test(a, b)
        ref = sps.mannwhitneyu(b, a, alternative="two-sided", method="exact")
        assert p == pytest.approx(ref.pvalue, rel=1e-12)
        assert superiority == pytest.approx(ref.statistic / (na * nb))


def test_the_rank_sum_test_with_ties_and_infinities_is_the_exhaustive_permutation_test():
    # scipy's permutation test enumerates every split of the pooled ranks (n_resamples=inf)
    cases = [
        ([1.0, 2.0, 2.0, math.inf], [2.0, 3.0, math.inf, math.inf, math.inf]),
        ([5.0, 5.0, 6.0, 7.0, 9.0], [5.0, 8.0, 9.0, math.inf]),
        ([math.inf] * 3, [1.0, math.inf, math.inf]),
    ]
    for a, b in cases:
        ranks = sps.rankdata(np.array(a + b))
        ref = sps.permutation_test(
            (ranks[: len(a)], ranks[len(a) :]),
            lambda x, y: np.sum(y),
            permutation_type="independent",
            alternative="two-sided",
            n_resamples=np.inf,
        )
        p, _ = rank_sum_test(a, b)
        assert p == pytest.approx(ref.pvalue, rel=1e-9), (a, b)


def test_the_rank_sum_test_beyond_its_exact_size_is_the_normal_approximation():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=60), [*rng.normal(0.3, size=50), *[math.inf] * 10]
    p, _ = rank_sum_test(a, b)
    ref = sps.mannwhitneyu(b, a, alternative="two-sided", method="asymptotic")
    assert p == pytest.approx(ref.pvalue)


def test_a_gap_metric_is_not_stated_where_a_group_has_no_gap_to_measure():
    """A group that forgot task 1 before the last switch has no gap there (its TTR reads 0
    because its accuracy stays at 0), and one that never learned task 1 has none anywhere:
    their gap metrics are not stated, but still count in their families, which were fixed
    before the data said who forgot."""
    from types import SimpleNamespace

    from stabgap.analysis.verdicts import compare_groups, finding

    rows = rows_for(
        {
            "base": {"gd": [10.0, 11.0, 12.0], "gd2": [5.0, 6.0, 7.0]},
            "lwf": {"gd": [0.0, 0.1, 0.0], "gd2": [20.0, 21.0, 22.0]},
            "tiny": {"gd": [1.0, 2.0, 3.0], "gd2": [1.0, 2.0, 1.5]},
        }
    )
    base, lwf, tiny = (SimpleNamespace(key=k) for k in ("base", "lwf", "tiny"))
    labels = {k: k for k in ("base", "lwf", "tiny")}
    gapless = {"lwf": "last", "tiny": "all"}
    out = compare_groups(summarize(rows), base, [lwf, tiny], 3, labels, gapless)
    lwf_c, tiny_c = out
    assert [name for name, _, _ in lwf_c.tests] == ["GD_1,2", "final ACC"]  # GD_1,3 held back
    assert [name for name, _, _ in lwf_c.unstated] == ["GD_1,3"]
    assert lwf_c.why_unstated.startswith(
        "GD_1,3 not stated: lwf forgot task 1 before the last switch, so they measure no gap"
    )
    assert [name for name, _, _ in tiny_c.tests] == ["final ACC"]
    assert [name for name, _, _ in tiny_c.unstated] == ["GD_1,2", "GD_1,3"]
    assert tiny_c.why_unstated.startswith("GD_1,2, GD_1,3 not stated: tiny never learned")
    every = [c for gc in out for _, _, c in (*gc.tests, *gc.unstated)]
    family = Family(every)
    assert family.sizes == {"GD_1,2": 2, "GD_1,3": 2, "final ACC": 2}  # as if all had a gap
    sentence = finding("lwf", "base", lwf_c.tests, family, lwf_c.why_unstated)
    assert "GD_1,3 [" not in sentence and "GD_1,2 +15.00 p.p. [" in sentence
    assert sentence.endswith("(each still counts in its quantity's family, fixed before the data).")
    # a baseline without a gap in the last interval holds it back for every group
    first, _ = compare_groups(summarize(rows), lwf, [base, tiny], 3, labels, gapless)
    assert "GD_1,3" not in [n for n, _, _ in first.tests] and "lwf forgot" in first.why_unstated


def test_a_family_counts_a_planned_test_the_data_left_untestable():
    """Whether both sides vary is the data's; how many seeds they have is the design's: a
    comparison of two constant sides of 3 seeds still counts in its family, one of 2 does
    not (no test was ever possible)."""
    varied = compare({1: 1.0, 2: 2.0, 3: 3.0}, {1: 2.0, 2: 3.0, 3: 5.0}, "A", "B", metric="x")
    flat = compare(dict.fromkeys((1, 2, 3), 0.0), dict.fromkeys((1, 2, 3), 0.0), "A", "C",
                   metric="x")  # fmt: skip
    few = compare({1: 1.0, 2: 2.0}, {1: 2.0, 2: 3.0}, "A", "D", metric="x")
    assert not flat.testable and flat.planned and not few.planned
    assert Family([varied, flat, few]).sizes == {"x": 2}
    assert flat.why_untestable() == "no test is possible: neither side varies over the seeds"


def test_a_rank_sum_verdict_says_when_no_result_at_its_n_could_be_significant():
    never = {1: None, 2: None, 3: None, 4: None}
    quick = {1: 10.0, 2: 12.0, 3: 11.0, 4: 13.0}
    c = compare(quick, never, "baseline", "nd", metric="TTR", censored=True)
    assert c.rank_p == pytest.approx(2 / 70)  # the most extreme split of 4 and 4
    assert c.adjusted(1).significant and c.adjusted(1).rank_reach() == ""
    # over 7 tests its floor is 7 × 2/70 = 0.2: nothing at n = 4 and 4 could be shown
    assert c.adjusted(7).verdict() == (
        "not shown at n = 4 and 4 (with 4 and 4 seeds the exact rank-sum test cannot give an "
        "adjusted p below 0.2: no result at this n could show a difference)"
    )


def _moses_bounds(a: list[float], b: list[float], alpha: float) -> tuple[float, float]:
    """Moses' interval from first principles: the null distribution of U counted over every
    split of n_a + n_b distinct values (itertools, not the package's recursion), k the
    least U whose two-sided p reaches α, the bounds the k-th smallest and largest of the
    pairwise differences."""
    na, nb = len(a), len(b)
    counts = Counter()
    for chosen in itertools.combinations(range(na + nb), nb):
        rank_sum = sum(r + 1 for r in chosen)
        counts[rank_sum - nb * (nb + 1) // 2] += 1
    total = sum(counts.values())
    k = next(u for u in range(na * nb) if 2 * sum(counts[v] for v in range(u + 1)) / total >= alpha)
    diffs = sorted(y - x for x in a for y in b)
    return diffs[k - 1], diffs[-k]  # the k-th smallest and the k-th largest


def test_the_shift_interval_without_ties_is_moses_interval():
    rng = np.random.default_rng(5)
    for na, nb in ((5, 5), (6, 4), (7, 7), (4, 8)):
        a, b = list(rng.normal(size=na)), list(rng.normal(1.0, size=nb))
        for alpha in (0.05, 0.2):
            s = shift_interval(a, b, alpha)
            assert (s.low, s.high) == pytest.approx(_moses_bounds(a, b, alpha), rel=1e-12)
            # the Hodges–Lehmann estimate: the median of the n_a·n_b differences
            assert s.estimate == pytest.approx(np.median([y - x for x in a for y in b]))


def test_the_shift_interval_is_the_shifts_the_rank_sum_test_accepts():
    # integer times with ties and never-recovered seeds (+inf): every shift on a fine grid
    # is tested directly with rank_sum_test; the interval is what that grid accepts, each
    # end included exactly when the test accepts the end itself
    rng = np.random.default_rng(6)

    def accepts(a: list[float], b: list[float], family: int, shift: float) -> bool:
        return min(1.0, rank_sum_test(a, [v - shift for v in b])[0] * family) >= 0.05

    for _ in range(150):
        na, nb = rng.integers(3, 8, size=2)
        a = [math.inf if rng.random() < 0.2 else float(v) for v in rng.integers(0, 10, na)]
        b = [math.inf if rng.random() < 0.2 else float(v) for v in rng.integers(0, 10, nb)]
        family = int(rng.integers(1, 4))
        test = functools.partial(accepts, a, b, family)

        s = shift_interval(a, b, 0.05, family)
        grid = [x for x in np.arange(-12, 12.01, 0.25) if test(x)]
        if math.isnan(s.low):
            assert not grid
            continue
        assert all(s.holds(x) for x in grid)
        for end, inward in ((s.low, 0.25), (s.high, -0.25)):
            if math.isfinite(end):
                assert test(end + inward) and test(end) == s.holds(end)
        # and it holds 0 exactly when the verdict at that level is not significant
        assert s.holds(0.0) == test(0.0)


def test_a_rank_sum_verdict_gives_the_shift_and_its_adjusted_interval():
    base = {1: 10.0, 2: 12.0, 3: 11.0, 4: 13.0}
    nd = {1: 20.0, 2: 22.0, 3: 21.0, 4: None}
    c = compare(base, nd, "baseline", "nd", metric="TTR", censored=True)
    # B − Δ against A: at Δ = 7 nd's 20 ties baseline's 13 and the test still accepts; above
    # any Δ nd's never-recovered seed stays above every baseline seed
    assert c.shift() == (10.0, 7.0, math.inf, False, True)
    assert "Hodges–Lehmann shift +10.00 % (95 % CI [+7.00, +∞))" in c.sentence(unit="%")
    # adjusted over 10 tests nothing at 4 seeds a side is significant: every shift accepted
    wide = c.adjusted(10)
    assert wide.shift().text() == "(-∞, +∞)" and not wide.significant
    assert "(simultaneous 95 % CI over 10 tests (-∞, +∞))" in wide.sentence()
    # every baseline seed never recovered and every nd seed did: no shift of the measured
    # times can account for it
    never = compare({s: None for s in range(5)}, {s: float(s) for s in range(5)}, censored=True)
    assert never.significant and "no shift accepted at 95 % CI" in never.sentence()
    from stabgap.analysis.verdicts import _shift_columns

    assert _shift_columns(never) == [-math.inf, None, None, "no shift accepted"]
    # the usual Welch comparison has no shift
    assert compare(base, {**nd, 4: 23.0}, censored=True).shift_text() == ""


def test_a_correlation_within_groups_counts_the_means_its_centring_spent():
    from stabgap.statistics.correlation import WithinGroups, within_groups

    # Bonett and Wright's interval by hand: ρ = 0.46 over 12 runs of 4 groups, n' = 9;
    # z = atanh(0.46) = 0.49731, se = sqrt((1 + 0.46²/2) / 6) = 0.42930
    w = WithinGroups(0.46, 12, 4)
    assert w.effective == 9 and w._se() == pytest.approx(0.42930, abs=1e-5)
    half = 1.95996 * 0.42930
    assert w.interval() == pytest.approx(
        (math.tanh(0.49731 - half), math.tanh(0.49731 + half)), abs=1e-4
    )
    assert w.p == pytest.approx(2 * sps.norm.sf(0.49731 / 0.42930), rel=1e-4)
    # every run in one order: no test (an interval of one point would claim too much)
    perfect = WithinGroups(1.0, 12, 4)
    assert not perfect.testable and "no test: every run in one order" in perfect.text()
    # the interval excludes 0 exactly when the adjusted p is below α
    rng = np.random.default_rng(7)
    for _ in range(300):
        r = WithinGroups(float(rng.uniform(-0.95, 0.95)), int(rng.integers(8, 40)), 3)
        r = r.adjusted(int(rng.integers(1, 5)))
        low, high = r.interval()
        assert r.significant == (not low <= 0 <= high)
    # under no relation, with groups far apart, the test keeps its level; scipy's p, which
    # counts every centred run as free, does not
    ours = naive = 0
    for _ in range(2000):
        groups = [
            [(x0 + rng.normal(), y0 + rng.normal()) for _ in range(3)]
            for x0, y0 in rng.normal(0, 5, size=(4, 2))
        ]
        ours += within_groups(groups).significant
        centred = [np.array(g) - np.mean(g, axis=0) for g in groups]
        naive += sps.spearmanr(*np.concatenate(centred).T)[1] < 0.05
    assert ours / 2000 <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2000) and naive / 2000 > 0.07


def test_a_comparison_asked_in_the_other_order_is_one_test_of_its_family():
    """With nd as the baseline, 'baseline against nd' and the poster's Q1 'nd against
    baseline' are one two-sided test: one member of GD_1,3's family, not two (a trial's
    report halved nothing and doubled Q1's adjusted p)."""
    from stabgap.statistics.comparison import Family, compare

    a, b = {1: 1.0, 2: 2.0, 3: 3.0}, {1: 2.0, 2: 3.5, 3: 4.5}
    forward = compare(a, b, "baseline", "nd", metric="GD_1,3")
    turned = compare(b, a, "nd", "baseline", metric="GD_1,3")
    assert turned.welch_p == pytest.approx(forward.welch_p)  # the same test, its sign turned
    family = Family([forward, turned])
    assert family.sizes == {"GD_1,3": 1}
    assert family.adjusted(turned).p == pytest.approx(forward.welch_p)
