"""Compare two experiments over seeds, and answer the poster's research questions in words.

:func:`compare` takes two ``{seed: value}`` maps (None for an undefined value, which is left
out and counted) and reports the difference of the means with its Welch 95 % interval,
Welch's t-test, a paired t-test and a Wilcoxon signed-rank test over the shared seeds, and
Hedges' g. :func:`answer_questions` applies it to the poster's Q1 and Q2.

Runs of two experiments with the same seed share their initialisation and batch order, so
the paired tests are the sharper ones; Welch's test, which does not assume that, is the one
the verdicts rest on.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from stabgap.aggregate import GroupSummary, format_mean_std, summarize

__all__ = ["ALPHA", "MIN_SEEDS", "Comparison", "answer_questions", "compare", "holm"]

ALPHA = 0.05
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
        diff_ci95_low, diff_ci95_high: 95 % interval of ``diff`` with the
            Welch–Satterthwaite degrees of freedom.
        welch_t, welch_df, welch_p: Welch's unequal-variance t-test (two-sided).
        n_paired: Seeds defined on both sides.
        paired_t, paired_p: Paired t-test on the shared seeds (NaN if ``n_paired < 2``).
        wilcoxon_p: Wilcoxon signed-rank test on the shared seeds (NaN if ``n_paired < 2``
            or all differences are zero).
        cohen_d: ``diff`` over the pooled standard deviation.
        hedges_g: Cohen's d times the small-sample correction ``1 - 3 / (4 (n_a + n_b) - 9)``.
        alpha: Significance level of :attr:`significant` and :meth:`sentence`.
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
    diff_ci95_low: float
    diff_ci95_high: float
    welch_t: float
    welch_df: float
    welch_p: float
    n_paired: int
    paired_t: float
    paired_p: float
    wilcoxon_p: float
    cohen_d: float
    hedges_g: float
    alpha: float = ALPHA
    p_adjusted: float | None = None  # Welch's p after a multiple-comparison correction

    @property
    def testable(self) -> bool:
        """Whether Welch's test was run: at least :data:`MIN_SEEDS` values on each side,
        and some spread (two constant sides differ certainly or not at all)."""
        return not math.isnan(self.welch_p)

    @property
    def p(self) -> float:
        """The p value the verdict rests on: the adjusted one when there is one."""
        return self.welch_p if self.p_adjusted is None else self.p_adjusted

    @property
    def significant(self) -> bool:
        """Whether the verdict's p value is below :attr:`alpha`."""
        return self.testable and self.p < self.alpha

    def why_untestable(self) -> str:
        if min(self.n_a, self.n_b) < MIN_SEEDS:
            return (
                f"no test is possible with fewer than {MIN_SEEDS} seeds per group "
                f"(have {self.n_a} and {self.n_b})"
            )
        return "no test is possible: both groups have no spread over seeds"

    def sentence(self, digits: int = 2, unit: str = "", diff_unit: str | None = None) -> str:
        """The comparison in one plain-English sentence, with its numbers.

        Args:
            digits: Decimals of means, standard deviations and differences.
            unit: Unit of the values, e.g. ``"%"``.
            diff_unit: Unit of the difference (default ``unit``), e.g. ``"p.p."``.
        """
        u = f" {unit}" if unit else ""
        du = u if diff_unit is None else (f" {diff_unit}" if diff_unit else "")

        def side(label: str, mean: float, std: float, n: int, n_undef: int) -> str:
            left_out = f", {n_undef} left out as undefined" if n_undef else ""
            return f"{label} {format_mean_std(mean, std, digits)}{u} (n = {n}{left_out})"

        side_b = side(self.label_b, self.mean_b, self.std_b, self.n_b, self.n_undefined_b)
        side_a = side(self.label_a, self.mean_a, self.std_a, self.n_a, self.n_undefined_a)
        text = f"{self.metric}: {side_b} vs {side_a}"
        if not self.testable:
            return f"{text}; difference {_signed(self.diff, digits)}{du}; {self.why_untestable()}."
        verdict = "significant" if self.significant else "not significant"
        adjusted = "" if self.p_adjusted is None else f", Holm-adjusted p = {_p(self.p_adjusted)}"
        text += (
            f"; difference {self.label_b} − {self.label_a} = {_signed(self.diff, digits)}{du}"
            f" (95% CI {_signed(self.diff_ci95_low, digits)} to "
            f"{_signed(self.diff_ci95_high, digits)}), Welch's t({self.welch_df:.1f}) = "
            f"{self.welch_t:.2f}, p = {_p(self.welch_p)}{adjusted}, {verdict} at "
            f"α = {self.alpha:g}"
        )
        if self.n_paired >= MIN_SEEDS:
            text += (
                f"; paired over {self.n_paired} shared seeds: t = {self.paired_t:.2f}, "
                f"p = {_p(self.paired_p)}, Wilcoxon signed-rank p = {_p(self.wilcoxon_p)}"
            )
            if self.n_paired <= WILCOXON_FLOOR_N:
                floor = 2 / 2**self.n_paired
                text += f" (with {self.n_paired} pairs it cannot go below {floor:.3g})"
        return text + f"; Hedges' g = {self.hedges_g:.2f}."


# With n pairs, the exact two-sided Wilcoxon signed-rank test cannot give p < 2 / 2^n:
# 0.25 for 3 pairs, 0.0625 for 5; at or below this many pairs the report says so.
WILCOXON_FLOOR_N = 5


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of p values for multiple comparisons (NaN kept apart).

    Example:
        >>> [round(p, 4) for p in holm([0.01, 0.04, 0.03, 0.2])]
        [0.04, 0.09, 0.09, 0.2]
    """
    ps = [(p, i) for i, p in enumerate(p_values) if not math.isnan(p)]
    out = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(ps)):
        running = max(running, min(1.0, (len(ps) - rank) * p))
        out[i] = running
    return out


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


def _signed(x: float, digits: int) -> str:
    return f"{x:+.{digits}f}"


def _p(p: float) -> str:
    return "n/a" if math.isnan(p) else f"{p:.2g}"


def _defined(values: Mapping[Any, float | None]) -> tuple[dict[Any, float], int]:
    """The defined values (not None, not NaN) and how many were left out."""
    kept = {k: float(v) for k, v in values.items() if v is not None and not math.isnan(float(v))}
    return kept, len(values) - len(kept)


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    mean = float(x.mean()) if x.size else math.nan
    std = float(x.std(ddof=1)) if x.size >= 2 else math.nan
    return mean, std


def compare(
    a: Mapping[Any, float | None],
    b: Mapping[Any, float | None],
    label_a: str = "A",
    label_b: str = "B",
    *,
    metric: str = "value",
    alpha: float = ALPHA,
) -> Comparison:
    """Compare the values of B with those of A (keys are seeds; None means undefined).

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
    t = df = p = low = high = d = g = nan
    va = std_a**2 / na if na >= 2 else nan
    vb = std_b**2 / nb if nb >= 2 else nan
    if min(na, nb) >= MIN_SEEDS and va + vb > 0:
        se = math.sqrt(va + vb)
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            res = sps.ttest_ind(xb, xa, equal_var=False)
        t, p = float(res.statistic), float(res.pvalue)
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        half = float(sps.t.ppf(0.975, df)) * se
        low, high = diff - half, diff + half
        pooled = math.sqrt(((na - 1) * std_a**2 + (nb - 1) * std_b**2) / (na + nb - 2))
        if pooled > 0:
            d = diff / pooled
            g = d * (1 - 3 / (4 * (na + nb) - 9))

    shared = sorted(set(da) & set(db), key=lambda s: (str(type(s)), s))
    pt = pp = wp = nan
    if len(shared) >= MIN_SEEDS:
        pa = np.array([da[s] for s in shared])
        pb = np.array([db[s] for s in shared])
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            # Few pairs or tied differences make scipy warn; the p values it returns stand.
            warnings.simplefilter("ignore")
            res = sps.ttest_rel(pb, pa)
            pt, pp = float(res.statistic), float(res.pvalue)
            if np.any(pb != pa):
                wp = float(sps.wilcoxon(pb, pa).pvalue)

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
        diff_ci95_low=low,
        diff_ci95_high=high,
        welch_t=t,
        welch_df=df,
        welch_p=p,
        n_paired=len(shared),
        paired_t=pt,
        paired_p=pp,
        wilcoxon_p=wp,
        cohen_d=d,
        hedges_g=g,
        alpha=alpha,
    )


# --------------------------------------------------------------------------------------------
# The poster's questions
# --------------------------------------------------------------------------------------------


def _summaries(data: Iterable[GroupSummary] | Iterable[dict[str, Any]]) -> list[GroupSummary]:
    items = list(data)
    if items and isinstance(items[0], dict):
        return summarize(items)
    return items  # type: ignore[return-value]


def _direction(c: Comparison, lower_is_better: bool) -> str:
    """'better' / 'worse' (significantly, by Welch), 'same' (not significant), 'untestable'."""
    if not c.testable:
        return "untestable"
    if not c.significant:
        return "same"
    return "better" if (c.diff < 0) == lower_is_better else "worse"


def answer_questions(
    data: Iterable[GroupSummary] | Iterable[dict[str, Any]],
    *,
    baseline: str = "baseline",
    nd: str = "nd",
    no_replay: str = "no-replay",
    nd_no_replay: str = "nd-no-replay",
    task: int = 1,
    interval: int | None = None,
    alpha: float = ALPHA,
    names: Mapping[str, str] | None = None,
) -> list[str]:
    """Plain-English answers to the poster's Q1 and Q2, with their numbers.

    * Q1: does ND (``nd``) reduce task ``task``'s gap depth in ``interval`` compared with the
      baseline (``baseline``), both with full replay?
    * Q2: does ND without replay (``nd_no_replay``) beat the baseline with replay on the gap
      depth (lower) and on the final average accuracy (higher)? And does it beat the baseline
      without replay (``no_replay``)?

    "Reduces" / "beats" means Welch's test is significant at ``alpha`` in that direction.
    A question whose experiments are missing is skipped with a sentence that says which.

    Args:
        data: Summaries from :func:`stabgap.aggregate.summarize` (default grouping) or tidy
            rows, which are summarised here.
        baseline, nd, no_replay, nd_no_replay: Experiment names.
        task: The task whose gap depth is compared.
        interval: The interval of the gap; default the last one with a gap depth of ``task``.
        alpha: Significance level.
        names: How each experiment reads in the sentences (default: its name).

    Returns:
        The sentences, Q1's first.
    """
    summaries = _summaries(data)
    present = sorted({s.experiment for s in summaries if s.experiment is not None})
    gd_intervals = [s.interval for s in summaries if s.metric == "gap_depth" and s.task == task]
    if interval is None and gd_intervals:
        interval = max(gd_intervals)
    gd_name = f"GD_{{{task},{interval}}}"
    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}

    def values(experiment: str, metric: str, t: int | None, j: int | None) -> dict | None:
        s = index.get((experiment, metric, t, j))
        return None if s is None else s.by_seed()

    def get(exps: Sequence[str], metric: str, t: int | None, j: int | None) -> list | None:
        found = [values(e, metric, t, j) for e in exps]
        return None if any(f is None for f in found) else found

    def missing(question: str, exps: Sequence[str], what: str) -> str:
        absent = [e for e in exps if e not in present]
        if absent:
            wanted = ", ".join(f"'{e}'" for e in absent)
            found = ", ".join((names or {}).get(e, e) for e in present) or "none"
            return f"{question} skipped: no runs of experiment {wanted} (found: {found})."
        return f"{question} skipped: no {what} in the runs of {', '.join(exps)}."

    def cmp(a: str, b: str, vals: list, metric: str) -> Comparison:
        shown = names or {}
        return compare(
            vals[0], vals[1], shown.get(a, a), shown.get(b, b), metric=metric, alpha=alpha
        )

    answers = []

    # Q1: ND vs baseline, both with replay, on the gap depth.
    gd = get((baseline, nd), "gap_depth", task, interval)
    if gd is None:
        answers.append(
            missing("Q1", (baseline, nd), f"gap depth of task {task} in interval {interval}")
        )
    else:
        c = cmp(baseline, nd, gd, gd_name)
        verdict = {
            "better": f"Yes: ND reduces the task-{task} gap depth",
            "worse": f"No: ND increases the task-{task} gap depth",
            "same": f"No: ND does not significantly reduce the task-{task} gap depth",
            "untestable": f"Undecided: too few seeds to test whether ND reduces the task-{task} "
            "gap depth",
        }[_direction(c, lower_is_better=True)]
        answers.append(
            f"Q1. {verdict} in interval {interval} compared with the baseline, both with full "
            f"replay (Welch's t-test). {c.sentence(unit='p.p.')}"
        )

    # Q2: ND without replay against the baseline with replay, then against the baseline
    # without replay; each on the gap depth (lower is better) and the final ACC (higher).
    verbs = {
        "better": "beats",
        "worse": "is significantly worse than",
        "same": "does not significantly differ from",
        "untestable": "cannot be tested (too few seeds) against",
    }
    measures = (
        ("gap_depth", task, interval, gd_name, "p.p.", True),
        ("avg_acc_final", None, None, "final ACC", "%", False),
    )
    for other, against, tag in (
        (baseline, "the baseline with replay", "Q2"),
        (no_replay, "the baseline without replay", "Q2, without replay"),
    ):
        beats = {}
        for metric, t, j, name, unit, lower in measures:
            vals = get((other, nd_no_replay), metric, t, j)
            if vals is None:
                what = (
                    f"gap depth of task {task} in interval {interval}"
                    if lower
                    else "final accuracy"
                )
                answers.append(missing(f"{tag} ({name})", (other, nd_no_replay), what))
                continue
            c = cmp(other, nd_no_replay, vals, name)
            direction = _direction(c, lower_is_better=lower)
            beats[name] = None if direction == "untestable" else direction == "better"
            answers.append(
                f"{tag} ({name}). ND without replay {verbs[direction]} {against} on {name} "
                f"({'lower' if lower else 'higher'} is better; Welch's t-test). "
                f"{c.sentence(unit=unit, diff_unit='p.p.')}"
            )
        if len(beats) == 2 and None in beats.values():
            answers.append(
                f"{tag}. In short, undecided: too few seeds to test ND without replay against "
                f"{against}."
            )
        elif len(beats) == 2:
            won = [name for name, b in beats.items() if b]
            summary = {
                0: f"does not beat {against} on either {gd_name} or final ACC",
                1: f"beats {against} on {' '.join(won)} only",
                2: f"beats {against} on both {gd_name} and final ACC",
            }[len(won)]
            answers.append(f"{tag}. In short, ND without replay {summary}.")
    return answers
