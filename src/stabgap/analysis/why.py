"""Why the gap: the report's reading of the analyses measured while the network learned
(:mod:`stabgap.core.analyses`), over the seeds of each group.

Everything is read at task 1 in interval 2 (the first switch: the network then holds task
1 alone, and its gap is the poster's GD_1,2), from the arrays the runs recorded:

- **The head's share**: GD_1,2 of the network and of the nearest-mean classifier on the same
  penultimate features, both on task 1's probe set; their paired difference over the seeds
  is how much of the network's gap the classifier removes (Łapacz et al., WACV 2025, found
  it removes most of it).
- **Does drift peak at the switch**: the relative change of task 1's features in the last
  hidden layer per batch in the first tenth of interval 2 against the rest of it, paired
  over the seeds.
- **Remedies**: each compared group's drift at the end of interval 2, sharpness, gradient
  cosine, barrier and nearest-mean gap against the baseline's (Welch, as every other
  comparison between groups).
- **Sharpness**: the top Hessian eigenvalue and trace of task 1's loss at task 1's end (the
  weights the first switch starts from).
- **Are the gradients in conflict at the switch**: the cosine between the replayed and the
  new examples' gradients over the window after the first switch, each group's against 0
  (orthogonal gradients) by a one-sample t-test (:func:`against_zero`).
- **Is there a loss barrier**: task 1's loss along the straight line from the weights at the
  first switch to those at task 2's end, its largest excess over the line joining the two
  ends at the path_points interior points measured (Frankle et al. 2020's barrier, on those
  points), each group's against 0 by the same test.
- **What goes with GD**: Spearman's ρ between each of drift, sharpness, gradient cosine and
  barrier and GD_1,2 across the runs of each group (each centred on its group's means;
  Bonferroni over these correlations) and, apart, across the groups' means: the two can
  disagree, and only the first says that runs with more of it have deeper gaps.

Each test joins the report's family. The tests of one measured quantity are one family
whichever way they ask: a group's cosine or barrier against 0 and the groups' difference in
it (:data:`RELATED`, the same function of a run) carry one name (:data:`COSINE`,
:data:`BARRIER`), so Bonferroni counts them together.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats as sps

from stabgap.metrics import gap_depth
from stabgap.statistics.comparison import ALPHA, MIN_SEEDS, POWER, Comparison, Family, compare
from stabgap.statistics.correlation import WithinGroups, within_groups
from stabgap.statistics.summary import format_mean_std
from stabgap.studies.records import RunRecord

INTERVAL = 2
# One name per measured quantity, for its tests against 0 and between groups alike: the
# family is keyed by it (the two had different names, and each its own family).
COSINE = "the replayed and new examples' gradient cosine after the first switch"
BARRIER = "task 1's loss barrier from the first switch to task 2's end"
EARLY = 0.1  # the first tenth of the interval: where a gap's bottom lies in these studies


def measured(record: RunRecord, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(batches, values) of an analysis at the points where task 1 was measured."""
    values = record.analyses.get(key)
    if values is None:
        return None
    if values.ndim == 3:  # drift: the last hidden layer (the output layer's input's source)
        values = values[:, :, -1]
    kept = np.isfinite(values[:, 0])
    return np.asarray(record.eval_steps)[kept], values[kept]


def probe_gap(record: RunRecord, key: str) -> float:
    """GD_1,2 of `key`'s accuracy ("probe_acc": the network's, "nmc_acc": the nearest-mean
    classifier's) on task 1's probe set; NaN where not measured."""
    found = measured(record, key)
    if found is None or record.acc.shape[1] < INTERVAL:
        return math.nan
    steps, acc = found
    try:
        return gap_depth(acc, record.ends, 1, INTERVAL, steps=steps)
    except ValueError:
        return math.nan


def _drift_in_interval(record: RunRecord) -> tuple[np.ndarray, np.ndarray] | None:
    """(batches, relative change) of task 1's last hidden layer in interval 2; None where
    not measured."""
    found = measured(record, "drift_change")
    if found is None or record.acc.shape[1] < INTERVAL:
        return None
    steps, change = found
    inside = (steps >= record.ends[0]) & (steps < record.ends[1])
    return steps[inside], change[inside, 0]


def drift_speeds(record: RunRecord) -> tuple[float, float]:
    """Task 1's last-hidden-layer change per batch early in interval 2 and after, from the
    reference at the last point before the switch (change 0); NaN where too few points."""
    found = _drift_in_interval(record)
    steps = np.asarray(record.eval_steps)
    before = steps[steps < record.ends[0]]
    if found is None or not before.size:
        return math.nan, math.nan
    x, y = found
    early = x < record.ends[0] + EARLY * (record.ends[1] - record.ends[0])
    if not early.any() or early.all():
        return math.nan, math.nan
    cut = np.flatnonzero(early)[-1]
    early_speed = y[cut] / (x[cut] - before[-1])
    late_speed = (y[-1] - y[cut]) / (x[-1] - x[cut])
    return float(early_speed), float(late_speed)


def drift_at_end(record: RunRecord) -> float:
    """Task 1's last-hidden-layer relative change at the last point of interval 2."""
    found = _drift_in_interval(record)
    return float(found[1][-1]) if found is not None and found[1].size else math.nan


def sharpness_at_switch(record: RunRecord, key: str = "sharpness") -> float:
    """Task 1's loss's Hessian top eigenvalue ("sharpness") or trace ("hessian_trace") at
    task 1's end: the weights the first switch starts from."""
    values = record.analyses.get(key)
    return float(values[0, 0]) if values is not None else math.nan


def after_first_switch(record: RunRecord, key: str) -> np.ndarray:
    """The gradient anatomy's `key` at the recorded batches from the first switch on, until
    the window's end (NaN-free)."""
    values = record.analyses.get(key)
    if values is None:
        return np.empty((0,))
    start = record.ends[0]
    window = np.arange(len(values)) >= start
    window &= np.arange(len(values)) < start + record.config.get("gradients_window", 0)
    kept = values[window]
    finite = np.isfinite(kept).all(axis=tuple(range(1, kept.ndim)))
    return kept[finite]


def cosine_after_switch(record: RunRecord) -> float:
    """The mean cosine of the replayed and the new examples' gradients in the batches right
    after the first switch."""
    values = after_first_switch(record, "grad_cosine")
    return float(values.mean()) if values.size else math.nan


def norm_ratio_after_switch(record: RunRecord) -> float:
    """The replayed examples' gradient norm over the new ones' (whole gradients), averaged
    over the batches right after the first switch."""
    old = after_first_switch(record, "grad_replay_norm")
    new = after_first_switch(record, "grad_new_norm")
    if not old.size or old.shape != new.shape:
        return math.nan
    ratio = np.sqrt((old**2).sum(axis=1)) / np.sqrt((new**2).sum(axis=1))
    return float(ratio.mean())


def loss_barrier(losses: np.ndarray) -> float:
    """The largest excess of a loss at the points strictly between a segment's two ends over
    the straight line joining the ends (Frankle et al. 2020's barrier, on those points):
    positive where the loss rises above the line, negative where it stays below it.

    >>> round(loss_barrier(np.array([1.0, 2.5, 2.0, 3.0])), 4)  # the line: 1.667, 2.333
    0.8333
    >>> round(loss_barrier(np.array([2.0, 1.0, 2.0])), 4)  # a valley between the ends
    -1.0
    """
    alpha = np.linspace(0.0, 1.0, len(losses))
    excess = losses - ((1 - alpha) * losses[0] + alpha * losses[-1])
    return float(np.max(excess[1:-1])) if len(losses) > 2 else math.nan


def barrier_at_switch(record: RunRecord) -> float:
    """Task 1's loss barrier on the segment from the first switch to task 2's end."""
    values = record.analyses.get("path_loss")
    if values is None or values.shape[0] < INTERVAL or not np.isfinite(values[1, :, 0]).all():
        return math.nan
    return loss_barrier(values[1, :, 0])


def interior_points(record: RunRecord) -> int:
    """How many points strictly between the segment's ends the barrier was read at (0 where
    the path was not measured)."""
    values = record.analyses.get("path_loss")
    return max(0, values.shape[1] - 2) if values is not None else 0


# What goes with GD: each quantity of a run tested against its GD_1,2, and between groups.
RELATED = {
    "task 1's feature drift at the end of interval 2": drift_at_end,
    "task 1's sharpness at the first switch": sharpness_at_switch,
    COSINE: cosine_after_switch,
    BARRIER: barrier_at_switch,
}
# The largest difference of each quantity's means that its values allow, where bounded: a
# cosine lies in [-1, 1], so a mean of cosines differs from 0 by at most 1, two by at most 2.
SPAN = {COSINE: 1.0}


def _by_seed(runs: Sequence[RunRecord], value) -> dict:
    return {r.config["seed"]: v for r in runs if np.isfinite(v := value(r))}


def against_zero(
    values: dict, label: str, quantity: str, unmeasured: int = 0, span: float = math.inf
) -> Comparison:
    """One group's `values` ({seed: value}) tested against 0: a one-sample t-test (df = n − 1).

    It is held as a :class:`Comparison` of the group (B) with the constant 0 (A) so that the
    report's :class:`Family` counts and adjusts it with the between-group tests of the same
    `quantity`; its interval (:meth:`Comparison.interval`, at the family's level) is then
    the mean's one-sample t interval. There is no second sample, so it has no paired test,
    no Wilcoxon test and no effect size between groups (NaN), and :func:`zero_sentence`
    words it. NaN t and p where fewer than :data:`MIN_SEEDS` values or none vary.

    >>> c = against_zero({1: 1.0, 2: 2.0, 3: 3.0}, "g", "x")  # mean 2, se 1/√3
    >>> round(c.welch_t, 4), c.welch_df, round(c.welch_p, 4)
    (3.4641, 2.0, 0.0742)
    """
    nan = math.nan
    x = np.array(list(values.values()), dtype=np.float64)
    n = x.size
    mean = float(x.mean()) if n else nan
    sd = float(x.std(ddof=1)) if n > 1 else nan
    t = p = se = df = nan
    if n >= MIN_SEEDS and sd > 0:
        result = sps.ttest_1samp(x, 0.0)
        t, p = float(result.statistic), float(result.pvalue)
        se, df = sd / math.sqrt(n), float(n - 1)
    return Comparison(
        label_a="0", label_b=label, metric=quantity, n_a=0, n_b=n, n_undefined_a=0,
        n_undefined_b=unmeasured, mean_a=0.0, mean_b=mean, std_a=0.0, std_b=sd, diff=mean,
        diff_se=se, welch_t=t, welch_df=df, welch_p=p, n_paired=0, paired_diff=nan,
        paired_se=nan, paired_t=nan, paired_p=nan, wilcoxon_p=nan, cohen_d=nan, hedges_g=nan,
        quantity=quantity, span=span, one_sample=True,
    )  # fmt: skip


def zero_sentence(c: Comparison, zero: str, digits: int = 3) -> str:
    """An :func:`against_zero` test in words: the mean with its interval beside the adjusted
    p (simultaneous over the family), the one-sample t-test and the verdict; where it is
    not significant, the mean that n could have told from 0 (never "equal to 0")."""
    left = f", {c.n_undefined_b} not measured" if c.n_undefined_b else ""
    # a spread too small for `digits` in two significant figures: "sd 0.000" beside t = 80 reads
    # as no spread at all
    tiny = 0 < c.std_b < 10**-digits
    sd = f"{c.std_b:.2g}" if tiny else f"{c.std_b:.{digits}f}"
    text = f"{c.metric}: mean {c.mean_b:+.{digits}f}, sd {sd} (n = {c.n_b}{left})"
    if not c.testable:
        return f"{text}; no test against 0 is possible: its values do not vary over the seeds."
    low, high = c.interval()
    adjusted = (
        f", adjusted p = {c.p_adjusted:.2g}"
        if c.family > 1
        else " (the only test of this quantity: no adjustment)"
    )
    if c.significant:
        verdict = f"significant at α = {c.alpha:g}"
    else:
        small = c.detectable()
        verdict = f"not shown at n = {c.n_b}"
        if small >= c.span:
            verdict += (
                f" (at this n not even the largest possible mean, ±{c.span:g}, could be told "
                f"from 0 with {POWER * 100:.0f} % power at this level)"
            )
        elif math.isfinite(small):
            verdict += (
                f" (a mean closer to 0 than about {small:.{digits}f} could not be told from 0 "
                f"with {POWER * 100:.0f} % power at this level)"
            )
    return (
        f"{text} [{c.interval_name()} {low:+.{digits}f} to {high:+.{digits}f}{c.cut()}], "
        f"one-sample t-test against 0 ({zero}): t({c.welch_df:.0f}) = {c.welch_t:.2f}, "
        f"p = {c.welch_p:.2g}{adjusted}: {verdict}."
    )


@dataclass(frozen=True)
class WhyTests:
    """The tests of the report's "Why the gap" section."""

    head: list[tuple[str, Comparison]]  # per group: nearest-mean GD − network GD
    peak: list[tuple[str, Comparison]]  # per group: early − late drift speed
    conflict: list[tuple[str, Comparison]]  # per group: gradient cosine against 0
    barrier: list[tuple[str, Comparison]]  # per group: task 1's loss barrier against 0
    remedies: list[Comparison]  # compared group − baseline: each of RELATED, nearest-mean GD
    # per quantity of RELATED measured: ρ within groups (centred); and ρ over the groups'
    # means, groups
    within: dict[str, WithinGroups]
    across: dict[str, tuple[float, int]]
    # per group tested for a barrier: its runs whose largest excess was above 0, and the
    # numbers of interior points its runs read the barrier at
    excess: dict[str, tuple[int, tuple[int, ...]]] = field(default_factory=dict)
    # the groups whose runs recorded no analysis, so not compared here; and the baseline's
    bare: list[str] = field(default_factory=list)
    base: str = ""


def why_tests(base, compared: Sequence, labels: dict[str, str]) -> WhyTests | None:
    """The section's tests (None when no run recorded an analysis)."""
    groups = [g for g in [base, *compared] if g.runs]
    if not any(r.analyses for g in groups for r in g.runs):
        return None
    head, peak, conflict, barrier, excess = [], [], [], [], {}
    for g in groups:
        net = _by_seed(g.runs, lambda r: probe_gap(r, "probe_acc"))
        nmc = _by_seed(g.runs, lambda r: probe_gap(r, "nmc_acc"))
        name = labels[g.key]  # each group's contrast is its own test in the family
        if net and nmc:
            head.append((g.key, compare(net, nmc, f"{name}'s network",
                                        f"{name}'s nearest-mean classifier",
                                        metric="GD_1,2 on task 1's probe set (p.p.)")))  # fmt: skip
        speeds = {r.config["seed"]: drift_speeds(r) for r in g.runs}
        early = {s: v[0] for s, v in speeds.items() if np.isfinite(v).all()}
        late = {s: v[1] for s, v in speeds.items() if np.isfinite(v).all()}
        if early:
            peak.append((g.key, compare(late, early, f"{name}, later in the interval",
                                        f"{name}, its first tenth",
                                        metric="drift per batch")))  # fmt: skip
        measured = {q: _by_seed(g.runs, RELATED[q]) for q in (COSINE, BARRIER)}
        for out, quantity in ((conflict, COSINE), (barrier, BARRIER)):
            values = measured[quantity]
            if len(values) >= MIN_SEEDS:
                unmeasured = len(g.runs) - len(values)
                span = SPAN.get(quantity, math.inf)
                out.append((g.key, against_zero(values, name, quantity, unmeasured, span)))
        if barriers := measured[BARRIER]:
            above = sum(v > 0 for v in barriers.values())
            points = tuple(interior_points(r) for r in g.runs if r.config["seed"] in barriers)
            excess[g.key] = (above, points)
    remedies = []
    for g in compared:
        for metric, value in (
            *RELATED.items(),
            ("the nearest-mean classifier's GD_1,2 (p.p.)", lambda r: probe_gap(r, "nmc_acc")),
        ):
            a, b = _by_seed(base.runs, value), _by_seed(g.runs, value)
            if a and b:
                span = 2 * SPAN.get(metric, math.inf)  # two means, each within ±span of 0
                remedies.append(
                    compare(a, b, labels[base.key], labels[g.key], metric=metric, span=span)
                )
    within, across = {}, {}
    for name, value in RELATED.items():
        inside, between = _relations(groups, value)
        if inside is not None:
            within[name] = inside
        if between is not None:
            across[name] = between
    bare = [g.key for g in groups if not any(r.analyses for r in g.runs)]
    return WhyTests(head, peak, conflict, barrier, remedies, within, across, excess, bare, base.key)


def _relations(groups, value) -> tuple:
    """ρ(value, GD_1,2) within groups (centred: :func:`within_groups`) and across the
    groups' means."""
    kept, means = [], []
    for g in groups:
        pairs = [(value(r), r.measure(gap_depth, 1, INTERVAL)) for r in g.runs]
        pairs = [p for p in pairs if np.isfinite(p).all()]
        if len(pairs) < MIN_SEEDS:  # two runs centred on their mean mirror each other
            continue
        kept.append(pairs)
        means.append(np.array(pairs).mean(axis=0))
    within = within_groups(kept) if kept else None
    across = None
    if len(means) >= 3 and all(np.ptp(m) > 0 for m in np.array(means).T):
        across = (float(sps.spearmanr(*np.array(means).T)[0]), len(means))
    return within, across


def why_comparisons(tests: WhyTests | None) -> list[Comparison]:
    """The section's comparisons, for the report's family."""
    if tests is None:
        return []
    pairs = tests.head + tests.peak + tests.conflict + tests.barrier
    return [c for _, c in pairs] + tests.remedies


def why_findings(tests: WhyTests | None, family: Family, labels: dict[str, str]) -> list[str]:
    """The section's sentences, each adjusted over the report's `family`."""
    if tests is None:
        return []
    out = []

    def shown(c: Comparison) -> bool:
        """Both sides of a within-run contrast agree: Welch's verdict and the paired test,
        each adjusted over the family (the interpretation is given only then)."""
        paired = family.p(c.paired_p, c.quantity or c.metric)
        return family.adjusted(c).significant and math.isfinite(paired) and paired < ALPHA

    for key, c in tests.head:
        adjusted = family.adjusted(c)
        share = -c.diff / c.mean_a * 100 if c.mean_a > 0 else math.nan
        text = adjusted.sentence(unit="p.p.", diff_unit="p.p.")
        removed = ""
        if shown(c) and c.diff < 0 and math.isfinite(share):
            removed = (
                f" The classifier on the same features removed {share:.0f} % of the network's "
                "gap: that part of the drop is the output layer's, not the features'."
            )
        elif shown(c) and c.diff > 0:
            removed = (
                " The classifier on the same features dropped further than the network, so "
                "the drop is not the output layer's alone: Łapacz et al.'s finding (the "
                "classifier removes most of the gap) is not seen here."
            )
        out.append(f"**{labels[key]}**, head or backbone: {text}{removed}")
    for key, c in tests.peak:
        adjusted = family.adjusted(c)
        verdict = (
            " Task 1's features drift fastest right after the switch."
            if (shown(c) and c.diff > 0)
            else ""
        )
        out.append(
            f"**{labels[key]}**, drift at the switch: "
            + adjusted.sentence(digits=4, unit="per batch", diff_unit="per batch")
            + verdict
        )
    # the one-sample tests against 0: what a significant mean says, each way
    for key, c in tests.conflict:
        c = family.adjusted(c)
        verdict = ""
        if c.significant:
            verdict = (
                " On average over these batches the replayed examples' gradient points against "
                "the new examples': to first order, a step on the new examples alone would "
                "raise the replayed tasks' loss."
                if c.diff < 0
                else " On average over these batches the two gradients agree in direction."
            )
        sentence = zero_sentence(c, "orthogonal gradients")
        out.append(f"**{labels[key]}**, gradients at the switch: {sentence}{verdict}")
    for key, c in tests.barrier:
        c = family.adjusted(c)
        out.append(
            f"**{labels[key]}**, loss along the path: {zero_sentence(c, 'no barrier')}"
            + _barrier_reading(c, *tests.excess.get(key, (0, ())))
        )
    out += [family.adjusted(c).sentence(digits=3) for c in tests.remedies]
    out += _unmeasured(tests, labels)
    for name, within in tests.within.items():
        r = within.adjusted(len(tests.within))  # Bonferroni over these correlations
        over = f"the section's {len(tests.within)} correlations"
        relation = (
            f"runs with {'more' if r.rho > 0 else 'less'} of it had deeper gaps"
            if r.significant
            else f"no relation is shown at n = {r.n}"
            if r.testable
            else "untested"
        )
        out.append(
            f"Within each of the {r.groups} groups (each run centred on its group's means; "
            f"{r.n} runs, {r.effective} beyond the groups' means), {name} and GD_1,2 (the "
            f"run's, on its evaluation subsets) have Spearman's {r.text(over)}: {relation}."
        )
    for name, (rho, groups) in tests.across.items():
        out.append(
            f"Across the {groups} groups' means, {name} and GD_1,2 have ρ = {rho:+.2f} "
            "(descriptive: it compares settings, not runs, and may disagree with the "
            "relation within groups)."
        )
    return out


def _unmeasured(tests: WhyTests, labels: dict[str, str]) -> list[str]:
    """Which groups recorded no analysis, and so have no test here: said, not left out."""
    if not tests.bare:
        return []
    names = ", ".join(f"**{labels[k]}**" for k in tests.bare)
    base = (
        ": none is compared with the baseline, which is one of them (choose another with "
        "--baseline)"
        if tests.base in tests.bare
        else ""
    )
    return [
        f"Not tested here: {names}, whose runs recorded no analysis (run them with the "
        f"analyses on){base}."
    ]


def _barrier_reading(c: Comparison, above: int, points: tuple[int, ...]) -> str:
    """What a barrier's test says, and no more: the loss was read at a few interior points
    of the segment, so a mean excess below 0 there cannot exclude a rise between them, nor
    in a single run; how many runs had one at those points is said beside it."""
    if not points:
        return ""
    k = f"{min(points)}" if min(points) == max(points) else f"{min(points)} to {max(points)}"
    text = (
        f" At the {k} interior points of the segment measured (path_points), the largest "
        f"excess of task 1's loss over the straight line joining the ends was above 0 in "
        f"{above} of {len(points)} runs"
    )
    if not c.significant:
        return text + "."
    if c.diff < 0:
        return text + (
            "; on average it lies below 0: at those points task 1's loss stays below the line "
            "on average. This does not exclude a barrier between the points measured, or in "
            "single runs."
        )
    return text + (
        "; on average it lies above 0: at those points task 1's loss rises above the straight "
        "line between the weights at the switch and those at task 2's end, a barrier "
        "(Frankle et al. 2020): SGD left the low-loss path between them."
    )


def why_table(groups: Sequence, labels: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Every group's analyses at task 1, interval 2: mean ± sd over its seeds."""
    with_any = [g for g in groups if g.runs and g.runs[0].analyses]
    if not with_any:
        return [], []
    header = [
        "group",
        "GD_1,2 network, probe (p.p.)",
        "GD_1,2 nearest-mean (p.p.)",
        "GD_1,2 linear probe (p.p.)",
        "drift at end of interval 2",
        "drift/batch, first tenth",
        "drift/batch, rest",
        "sharpness at the first switch",
        "Hessian trace there",
        "gradient cosine after it",
        "replay/new gradient norm",
        "loss barrier, interval 2",
    ]
    by_group = []
    for g in with_any:
        speeds = np.array([drift_speeds(r) for r in g.runs]).reshape(-1, 2)
        by_group.append([
            [probe_gap(r, "probe_acc") for r in g.runs],
            [probe_gap(r, "nmc_acc") for r in g.runs],
            [probe_gap(r, "linear_acc") for r in g.runs],
            [drift_at_end(r) for r in g.runs],
            list(speeds[:, 0]),
            list(speeds[:, 1]),
            [sharpness_at_switch(r) for r in g.runs],
            [sharpness_at_switch(r, "hessian_trace") for r in g.runs],
            [cosine_after_switch(r) for r in g.runs],
            [norm_ratio_after_switch(r) for r in g.runs],
            [barrier_at_switch(r) for r in g.runs],
        ])  # fmt: skip
    # one number of decimals a column, from its largest value: 4 below 0.1, else 2
    digits = [
        2 if max((abs(v) for c in column for v in c if np.isfinite(v)), default=0) >= 0.1 else 4
        for column in zip(*by_group, strict=True)
    ]
    rows = [
        [labels[g.key], *(_cell(c, d) for c, d in zip(columns, digits, strict=True))]
        for g, columns in zip(with_any, by_group, strict=True)
    ]
    return header, rows


def _cell(values: Sequence[float], digits: int) -> str:
    x = np.array([v for v in values if np.isfinite(v)])
    if not x.size:
        return "n/a"
    sd = x.std(ddof=1) if x.size > 1 else math.nan
    return format_mean_std(float(x.mean()), float(sd), digits)
