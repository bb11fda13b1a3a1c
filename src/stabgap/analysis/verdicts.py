"""Every verdict a report states: its tests built, adjusted, put in words.

A report compares each group with the baseline on the headline metrics, answers the
poster's questions, checks the findings reported on this protocol, relates sparsity to the
gap and shows how the time to recover's verdict depends on its definition. Each of those is
a test; the tests of one quantity (GD_1,3 in every comparison, question and finding) are
adjusted together (:class:`stabgap.statistics.comparison.Family`, Bonferroni), and each
verdict is shown with the simultaneous interval at the same level. Our runs of the
paper protocol against the reference's published values are an equality claim, tested by
equivalence (:mod:`stabgap.analysis.fidelity`) outside the family (an intersection–union test).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from stabgap.analysis.claims import (
    ClaimCheck,
    GapCheck,
    claim_checks,
    claim_sentence,
    gap_checks,
    gap_sentence,
)
from stabgap.analysis.fidelity import Cell, cells
from stabgap.analysis.inside import SparsityTests, sparsity_findings, sparsity_tests
from stabgap.analysis.questions import QuestionTest, question_tests, render_questions
from stabgap.analysis.recovery import Definition, ttr_tests
from stabgap.analysis.why import WhyTests, why_comparisons, why_findings, why_tests
from stabgap.core.config import FIELDS, to_dict
from stabgap.metrics import difference_span, recovery_span
from stabgap.metrics import unit as metric_unit
from stabgap.statistics.comparison import Comparison, Family, compare

ROLES = ("baseline", "nd", "no-replay", "nd-no-replay")  # the poster's experiments


def compared_metrics(n_tasks: int) -> list[tuple]:
    """The metrics a comparison covers: (metric, task, interval, name, unit, lower is
    better); both times to recover, the reference's and the robust one."""
    j = n_tasks
    first = [("gap_depth", 1, 2, "GD_1,2", "p.p.", True)] if n_tasks > 2 else []
    return first + [
        ("gap_depth", 1, j, f"GD_1,{j}", "p.p.", True),
        ("time_to_recover", 1, j, f"TTR_1,{j}", "%", True),
        ("time_to_recover_robust", 1, j, f"TTR_1,{j} robust", "%", True),
        ("avg_acc_final", None, None, "final ACC", "%", False),
        ("min_acc", 1, None, "min-ACC_1", "%", False),
        ("wc_acc", None, j, f"WC-ACC_{j}", "%", False),
    ]


Test = tuple[str, bool, Comparison]  # (the metric's name, whether lower is better, test)


@dataclass
class GroupComparisons:
    """One compared group against the baseline, metric by metric.

    Attributes:
        group: the compared group.
        tests: the comparisons the report states.
        unstated: the gap metrics the pair has no gap for (a side forgot task 1, or never
            learned it): compared, and counted in their quantities' families, since the
            families were fixed before the data said who forgot, but not stated.
        why_unstated: the sentence that says so ("" where every metric is stated).
    """

    group: object
    tests: list[Test]
    unstated: list[Test] = field(default_factory=list)
    why_unstated: str = ""


Compared = list[GroupComparisons]

# The metrics that measure a gap: none where task 1 was never learned, and none in the last
# interval where it was forgotten before the last switch (nothing left to drop).
GAP_METRICS = ("gap_depth", "time_to_recover", "time_to_recover_robust")

# A compared metric's name ("GD_1,3") -> its key in metrics.csv (metric, task, interval),
# for streams of up to 100 tasks.
_METRIC_KEYS = {
    name: (metric, task, interval)
    for n in range(2, 101)
    for metric, task, interval, name, _, _ in compared_metrics(n)
}


def compare_groups(
    summaries,
    base,
    compared,
    n_tasks: int,
    labels: dict[str, str],
    gapless: Mapping[str, str] | None = None,
) -> Compared:
    """Each compared group against the baseline on every compared metric (unadjusted).

    `gapless`: the keys of groups whose gaps measure nothing, and where: "all" (task 1 never
    learned) or "last" (forgotten before the last switch). A gap metric there, with either
    side such a group, is not stated (:attr:`GroupComparisons.unstated`): its verdict would
    be on a difference of noise."""
    if n_tasks < 2:
        return []
    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    gapless = gapless or {}
    out = []
    for g in compared:
        tests, unstated = [], []
        for metric, task, interval, name, _, lower in compared_metrics(n_tasks):
            where = {gapless.get(k) for k in (base.key, g.key)}
            last = interval == n_tasks
            no_gap = metric in GAP_METRICS and ("all" in where or ("last" in where and last))
            a = index.get((base.key, metric, task, interval))
            b = index.get((g.key, metric, task, interval))
            if a is not None and b is not None:
                quantity = name.removesuffix(" robust")  # both times to recover: one quantity
                c = compare(
                    a.by_seed(),
                    b.by_seed(),
                    labels[base.key],
                    labels[g.key],
                    metric=name,
                    quantity=quantity,
                    span=(
                        recovery_span(base.runs + g.runs, interval)
                        if metric.startswith("time_to_recover")
                        else difference_span(metric)
                    ),
                    censored=metric.startswith("time_to_recover"),  # never: beyond the interval
                )
                (unstated if no_gap else tests).append((name, lower, c))
        names = [name for name, _, _ in unstated]
        why = _why_unstated(names, [base, g], gapless, labels)
        out.append(GroupComparisons(g, tests, unstated, why))
    return out


def _why_unstated(names: list[str], pair: list, gapless: Mapping[str, str], labels) -> str:
    """Why the gap metrics `names` are not stated for this pair ("" where all are)."""
    if not names:
        return ""
    why = [
        f"{labels[k]} never learned task 1"
        if gapless[k] == "all"
        else f"{labels[k]} forgot task 1 before the last switch"
        for k in dict.fromkeys(g.key for g in pair)  # (a baseline against itself: once)
        if k in gapless
    ]
    return (
        f"{', '.join(names)} not stated: {' and '.join(why)}, so they measure no gap (each "
        "still counts in its quantity's family, fixed before the data)"
    )


def poster_roles(groups, n_tasks: int) -> dict[str, object]:
    """The study's group for each of the poster's experiments it runs (one each), by role.
    Imported groups play none: their names say nothing of their settings."""
    found = {}
    for role in ROLES:
        matches = [g for g in groups if g.base == role and g.runs and not g.imported]
        if len(matches) == 1:
            found[role] = matches[0]
    return found if n_tasks > 1 and {"baseline", "nd"} <= found.keys() else {}


def paper_protocol(group, experiment: str) -> bool:
    """Whether a group's runs are the paper preset's `experiment` (its science, any seed)."""
    from stabgap.studies.presets import get_preset

    want = to_dict(get_preset("paper").config(experiment))
    science = [k for k, f in FIELDS.items() if f.metadata["science"]]
    return all(group.config.get(k) == want[k] for k in science)


@dataclass
class Verdicts:
    """A report's tests, adjusted together, and what it says of them."""

    family: Family
    comparisons: Compared
    questions: list[QuestionTest] = field(default_factory=list)
    claims: list[ClaimCheck] = field(default_factory=list)
    gaps: list[GapCheck] = field(default_factory=list)
    sparsity: SparsityTests | None = None
    why: WhyTests | None = None
    ttr: list[tuple[Definition, Comparison]] = field(default_factory=list)
    fidelity: list[Cell] = field(default_factory=list)
    # the keys of the groups whose gaps measure nothing, and where: "all" (task 1 never
    # learned) or "last" (forgotten before the last switch); the figures draw them so too
    gapless: dict[str, str] = field(default_factory=dict)
    # every test of the family, with the report's section that states it first
    tests: list[tuple[str, Comparison]] = field(default_factory=list)


def judge(
    summaries,
    groups,
    base,
    compared,
    n_tasks: int,
    labels: dict[str, str],
    unlearned: Collection[str] = (),
    forgotten: Collection[str] = (),
) -> Verdicts:
    """Every test of a report, and the family they are adjusted over. `unlearned`: the keys
    of groups that never learned task 1 (:func:`stabgap.analysis.forgetting.unlearned_groups`),
    which have no gap to compare or to check a reported finding on; `forgotten`: those that
    forgot it before the last switch (:func:`~stabgap.analysis.forgetting.forgotten_groups`),
    which have none in the last interval."""
    gapless = {**dict.fromkeys(forgotten, "last"), **dict.fromkeys(unlearned, "all")}
    comparisons = compare_groups(summaries, base, compared, n_tasks, labels, gapless)
    roles = poster_roles(groups, n_tasks)
    questions, ttr, fidelity = [], [], []
    if roles:
        keys = {role.replace("-", "_"): g.key for role, g in roles.items()}
        questions = question_tests(summaries, names=labels, **keys)
        ttr = ttr_tests(roles["baseline"], roles["nd"], labels, n_tasks)
        if n_tasks == 3 and all(paper_protocol(roles[r], r) for r in ("baseline", "nd")):
            fidelity = cells(summaries, {r: roles[r].key for r in ("baseline", "nd")})
    learned = [g for g in groups if g.key not in unlearned]
    checks = claim_checks(learned, labels, n_tasks)
    gaps = gap_checks(learned, labels, n_tasks)
    sparsity = sparsity_tests(base, [g for g in compared if g.runs], labels, n_tasks)
    why = why_tests(base, [g for g in compared if g.runs], labels) if n_tasks > 1 else None
    findings = "The poster's questions and reported findings"  # the report's sections
    tests = [
        *(("Each group against the baseline", c) for gc in comparisons
          for _, _, c in (*gc.tests, *gc.unstated)),
        *((findings, q.comparison) for q in questions if q.comparison is not None),
        *((findings, c) for check in checks for _, c in check.tests),
        *((findings, check.comparison) for check in gaps),
        *(("Time to recover, by definition", c) for _, c in ttr),
        *(("Inside the network", c) for c in (sparsity.comparisons if sparsity else [])),
        *(("Why the gap", c) for c in why_comparisons(why)),
    ]  # fmt: skip
    return Verdicts(
        Family(c for _, c in tests), comparisons, questions, checks, gaps, sparsity, why, ttr,
        fidelity, gapless, tests,
    )  # fmt: skip


FINDING_NOTE = (
    "Each difference is the group's mean minus the baseline's, with [its simultaneous 95 % "
    "interval over the report's tests of that quantity; the paired interval over the shared "
    'seeds], the Bonferroni-adjusted p and the verdict. "Not shown" is not "no '
    'difference": it gives the difference that n could have detected (80 % power). A time '
    "to recover where seeds never recovered has no mean: it gives the medians (those seeds "
    "as never), how often the group's seed is above the baseline's over every pair of "
    "seeds (a tie counts half) and the Hodges–Lehmann shift (the median of the pairs' "
    "differences), tested by an exact rank-sum test that ranks those seeds last; its interval "
    "holds the shifts of the group's measured times that test accepts (a bracket: that end "
    "included; a parenthesis: excluded)."
)


def finding(label: str, base_label: str, tests, family: Family, unstated: str = "") -> str:
    """One sentence per compared group: which way each metric went, and how sure that is
    (:data:`FINDING_NOTE` says how to read it), and which gap metrics it does not state
    (`unstated`: :attr:`GroupComparisons.why_unstated`)."""
    parts = []
    for name, lower, c in tests:
        c = family.adjusted(c)
        word = "better" if (c.direction < 0) == lower else "worse"
        if c.rank_test:  # seeds that never recovered: medians and ranks, no means
            if not c.testable:
                parts.append(f"{name} ({c.never()}; {c.why_untestable()})")
                continue
            verdict = word if c.significant else "not shown" + c.rank_reach()
            # (only a TTR is censored: in % of the interval, its differences in p.p.)
            medians = c.medians_text(unit="%", diff_unit="p.p.")
            parts.append(f"{name} {medians} [{c.never()}], adjusted p = {c.p:.2g}: {verdict}")
            continue
        if not c.testable:
            parts.append(f"{name} {_signed(c.diff)} p.p. ({c.why_untestable()})")
            continue
        low, high = c.interval()
        bounds = f"{low:+.2f}, {high:+.2f}{c.cut()}"
        if c.n_paired >= 3 and not math.isnan(c.paired_se):
            pl, ph = c.paired_interval()
            bounds += f"; paired {pl:+.2f}, {ph:+.2f}{c.cut(paired=True)}"
        if not c.significant:
            word = f"not shown ({c.reach(unit='p.p.')})"
        parts.append(f"{name} {_signed(c.diff)} p.p. [{bounds}], adjusted p = {c.p:.2g}: {word}")
    parts += [unstated] if unstated else []
    return f"**{label}** against {base_label}: " + "; ".join(parts) + "."


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.2f}"


def sentences(v: Verdicts, base, labels: dict[str, str]) -> dict[str, list[str]]:
    """The report's sentences: findings, questions (with the claims), inside the network."""
    return {
        "findings": [
            finding(labels[gc.group.key], labels[base.key], gc.tests, v.family, gc.why_unstated)
            for gc in v.comparisons
        ],
        "poster": (render_questions(v.questions, v.family) if v.questions else [])
        + [claim_sentence(check, v.family, labels) for check in v.claims]
        + [gap_sentence(check, v.family, labels) for check in v.gaps],
        "inside": sparsity_findings(v.sparsity, v.family),
        "why": why_findings(v.why, v.family, labels),
    }


def ttr_table(v: Verdicts) -> tuple[list[str], list[list[str]]]:
    """The time to recover under each definition: each side's mean over the seeds that
    recovered (how many did), the difference with its interval, adjusted p, verdict."""
    if not v.ttr:
        return [], []
    first = v.ttr[0][1]
    header = [
        "definition",
        f"{first.label_a}: mean (recovered)",
        f"{first.label_b}: mean (recovered)",
        "difference (p.p. of the interval)",
        "adjusted p",
        "verdict",
    ]
    rows = []
    for d, c in v.ttr:
        c = v.family.adjusted(c)
        total_a, total_b = c.n_a + c.n_undefined_a, c.n_b + c.n_undefined_b
        side_a = f"{c.mean_a:.1f} ({c.n_a} of {total_a})" if c.n_a else f"never (0 of {total_a})"
        side_b = f"{c.mean_b:.1f} ({c.n_b} of {total_b})" if c.n_b else f"never (0 of {total_b})"
        if not c.testable:
            diff = "n/a" if c.rank_test else _signed(c.diff)
            p, verdict = "n/a", c.why_untestable()
        else:
            diff, p = c.interval_text(1), f"{c.p:.2g}"
            verdict = (
                ("shorter" if c.direction < 0 else "longer")
                if c.significant
                else c.verdict(1, "p.p.")
            )
        if c.rank_test:
            verdict += " (rank-sum test: seeds that never recovered ranked last)"
        rows.append([d.name, side_a, side_b, diff, p, verdict])
    return header, rows


def fidelity_table(v: Verdicts) -> tuple[list[str], list[list[str]]]:
    """Our paper-protocol runs against the reference's published values, cell by cell."""
    if not v.fidelity:
        return [], []
    header = ["experiment", "metric", "ours", "reference (15 seeds)", "difference", "verdict"]
    rows = []
    for c in v.fidelity:
        ours = f"{c.ours[0]:.2f} ± {c.ours[1]:.2f} (n = {c.ours[2]})"
        theirs = f"{c.theirs[0]:.2f} ± {c.theirs[1]:.2f}"
        if c.test is None:
            low, high = c.interval
            diff = f"{c.diff:+.2f} (95 % CI {low:+.2f} to {high:+.2f})"
            verdict = "no margin set: no equality claimed"
        else:
            diff = f"{c.diff:+.2f} (90 % CI {c.test.low:+.2f} to {c.test.high:+.2f})"
            verdict = (
                f"equal within ±{c.test.margin:g} (p = {c.test.p:.2g})"
                if c.test.equivalent
                else f"equality within ±{c.test.margin:g} not shown (p = {c.test.p:.2g})"
            )
        rows.append([c.experiment, c.name, ours, theirs, diff, verdict])
    return header, rows


COMPARISON_COLUMNS = (
    "group",
    "baseline",
    "name",  # as the report writes it: "GD_1,3"
    "metric",  # as metrics.csv keys it: gap_depth, task 1, interval 3
    "task",
    "interval",
    "unit",  # of the differences
    "value_unit",  # of the means and medians
    "n_group",
    "n_baseline",
    "mean_group",
    "mean_baseline",
    "difference",
    "ci95_low_unadjusted",
    "ci95_high_unadjusted",
    "ci_low_adjusted",
    "ci_high_adjusted",
    "welch_p",
    "p_adjusted",
    "tests_adjusted_over",
    "verdict",
    "detectable_difference",
    "paired_n",
    "paired_difference",
    "paired_ci_low_adjusted",
    "paired_ci_high_adjusted",
    "paired_p",
    "wilcoxon_p",
    "hedges_g",
    "test",  # the verdict's: welch, or rank-sum where seeds never recovered
    "never_recovered_group",  # censored seeds, counted in the rank-sum test only
    "never_recovered_baseline",
    "rank_sum_p",
    "median_group",  # a censored seed counted as +inf (written "inf")
    "median_baseline",
    "superiority",  # P(group > baseline) + P(tie) / 2 over seed pairs
    "shift",  # Hodges–Lehmann: the median of group − baseline over seed pairs
    "shift_ci_low_adjusted",  # the shifts the adjusted rank-sum test accepts, from
    "shift_ci_high_adjusted",  # ... to (inf where they reach that far)
    "shift_ci_open_ends",  # "low", "high", "low and high": ends not accepted themselves;
    # "no shift accepted" where none is (the interval is then empty, not inapplicable)
)


def _shift_columns(c) -> list:
    """comparisons.csv's shift columns: the Hodges–Lehmann shift and the shifts the adjusted
    rank-sum test accepts (empty under Welch's test)."""
    if not c.rank_test:
        return [None] * 4
    s = c.shift()
    if math.isnan(s.low):  # not "not applicable": no shift fits at the adjusted level
        return [s.estimate, None, None, "no shift accepted"]
    open_ends = [end for end, is_open in (("low", s.low_open), ("high", s.high_open)) if is_open]
    return [s.estimate, s.low, s.high, " and ".join(open_ends)]


def comparison_rows(v: Verdicts) -> list[dict]:
    """comparisons.csv: every comparison with the baseline, unadjusted and adjusted, the
    unit of its differences and its verdict in columns of their own (no adjusted p where no
    test was possible). A gap metric the report does not state (no gap to measure) has its
    row, its verdict saying so and its numbers left empty; n counts the seeds the verdict's
    test counts (under the rank-sum test, those that never recovered too)."""
    rows = []
    for gc in v.comparisons:
        for (name, _, raw), stated in (
            *((t, True) for t in gc.tests),
            *((t, False) for t in gc.unstated),
        ):
            c = v.family.adjusted(raw)
            n_a, n_b = c.seeds()
            row = [
                c.label_b,
                c.label_a,
                name,
                *_METRIC_KEYS[name],
                "p.p. of the interval" if name.startswith("TTR") else "p.p.",
                metric_unit(_METRIC_KEYS[name][0]),
                n_b,
                n_a,
            ]
            if not stated:
                rows.append([*row, *[None] * (len(COMPARISON_COLUMNS) - len(row))])
                rows[-1][COMPARISON_COLUMNS.index("verdict")] = "not stated: no gap to measure"
                rows[-1][COMPARISON_COLUMNS.index("tests_adjusted_over")] = c.family
                continue
            rows.append(
                [
                    *row,
                    c.mean_b,
                    c.mean_a,
                    None if c.rank_test else c.diff,  # a mean of the recovered is biased
                    *raw.interval(),
                    *c.interval(),
                    c.welch_p,
                    c.p_adjusted if c.testable else None,  # no test, nothing adjusted
                    c.family if c.testable else None,
                    c.verdict(),
                    c.detectable(),
                    None if c.rank_test else c.n_paired,  # no paired test of censored times
                    c.paired_diff,
                    *c.paired_interval(),
                    c.paired_p,
                    c.wilcoxon_p,
                    c.hedges_g,
                    "rank-sum" if c.rank_test else "welch",
                    c.n_undefined_b if c.censored else None,
                    c.n_undefined_a if c.censored else None,
                    c.rank_p,
                    c.median_b,
                    c.median_a,
                    c.superiority,
                    *_shift_columns(c),
                ]
            )
    return [_row(COMPARISON_COLUMNS, r) for r in rows]


def _row(columns: tuple[str, ...], values: list) -> dict:
    """A CSV row: None rather than NaN, which CSV and Parquet writers leave empty."""
    return {
        k: None if isinstance(x, float) and math.isnan(x) else x
        for k, x in zip(columns, values, strict=True)
    }


TEST_COLUMNS = (
    "section",  # the report's section that states it (the first, where two ask it)
    "quantity",  # what it is adjusted with: the tests of one quantity are one family
    "measure",
    "group",  # B of B − A
    "against",  # A: a group, or the constant a one-sample test compares with
    "test",  # welch, rank-sum (seeds that never recovered), one-sample
    "n_group",
    "n_against",
    "estimate",  # B − A: the difference of the means, or the Hodges–Lehmann shift
    "ci_low_adjusted",  # the interval at the adjusted level (the shifts the test accepts)
    "ci_high_adjusted",
    "p",
    "p_adjusted",
    "tests_adjusted_over",
    "verdict",
)


def family_rows(v: Verdicts) -> list[dict]:
    """tests.csv: every test the report states, once each (as its family counts them), with
    what it is adjusted over: each row's p_adjusted is its p times the number of rows of its
    quantity that have a tests_adjusted_over (those of a planned test; at most 1)."""
    rows, seen = [], set()
    for section, raw in v.tests:
        key = Family.key(raw)
        if key in seen:
            continue
        seen.add(key)
        c = v.family.adjusted(raw)
        if c.rank_test:
            s = c.shift()
            estimate, low, high, kind = s.estimate, s.low, s.high, "rank-sum"
        else:
            (low, high), estimate = c.interval(), c.diff
            kind = "one-sample" if c.one_sample else "welch"
        n_b, n_a = c.seeds()[::-1]
        row = [
            section, key[0], c.measure or c.metric, c.label_b, c.label_a, kind, n_b,
            None if c.one_sample else n_a, estimate, low, high,
            c.rank_p if c.rank_test else c.welch_p,
            c.p_adjusted if c.testable else None,
            c.family if c.planned else None,
            c.verdict(),
        ]  # fmt: skip
        rows.append(_row(TEST_COLUMNS, row))
    return rows + _correlation_rows(v)


def _correlation_rows(v: Verdicts) -> list[dict]:
    """tests.csv's rows of the within-group correlations (Spearman's ρ against 0, Fisher's
    z), each adjusted over its section's correlations as the report states it."""
    tested = []
    if v.sparsity is not None and v.sparsity.rho is not None:
        j = v.sparsity.interval
        measure = f"ρ(active units before interval {j}, GD_1,{j}) within groups"
        tested.append(("Inside the network", measure, measure, v.sparsity.rho))
    if v.why is not None:
        quantity = "ρ(a measure, GD_1,2) within groups"
        for name, r in v.why.within.items():
            tested.append(("Why the gap", quantity, f"ρ({name}, GD_1,2) within groups", r))
    rows = []
    for section, quantity, measure, r in tested:
        r = r.adjusted(sum(q == quantity for _, q, _, _ in tested))
        verdict = f"significant at α = {r.alpha:g}" if r.significant else f"not shown at n = {r.n}"
        if not r.testable:
            verdict = "no test: " + r.text().split("(no test: ", 1)[1].rstrip(")")
        row = [
            section, quantity, measure, f"the runs of {r.groups} groups", "ρ = 0",
            "spearman (Fisher's z)", r.n, None, r.rho, *r.interval(), r.p,
            r.p_adjusted if r.testable else None, r.family, verdict,
        ]  # fmt: skip
        rows.append(_row(TEST_COLUMNS, row))
    return rows
