"""The poster's research questions Q1 and Q2, answered in words from summaries over seeds.

:func:`question_tests` builds the comparisons the questions need (each adjusted with the
report's other tests of its quantity, :class:`stabgap.statistics.comparison.Family`);
:func:`answer_questions` puts them into sentences.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stabgap.metrics import difference_span
from stabgap.statistics.comparison import ALPHA, Comparison, Family, compare
from stabgap.statistics.summary import GroupSummary, summarize

__all__ = ["QuestionTest", "answer_questions", "question_tests", "render_questions"]


def _summaries(data: Iterable[GroupSummary] | Iterable[dict[str, Any]]) -> list[GroupSummary]:
    items = list(data)
    if items and isinstance(items[0], dict):
        return summarize(items)
    return items  # type: ignore[return-value]


def _direction(c: Comparison, lower_is_better: bool) -> str:
    """'better' / 'worse' (significantly), 'not shown' (not significant), 'untestable'."""
    if not c.testable:
        return "untestable"
    if not c.significant:
        return "not shown"
    return "better" if (c.direction < 0) == lower_is_better else "worse"


@dataclass(frozen=True)
class QuestionTest:
    """One test of the poster's questions (or why it could not be made).

    Attributes:
        tag: "Q1", "Q2" or "Q2, without replay".
        name: the metric as the sentence says it.
        unit: of the values.
        lower: whether lower is better.
        against: the compared experiment, as the sentence says it.
        interval: the interval of the gap depth the questions are about.
        comparison: the test; None when its runs are missing (``skipped`` says why).
    """

    tag: str
    name: str
    unit: str
    lower: bool
    against: str
    interval: int | None
    comparison: Comparison | None = None
    skipped: str = ""


def question_tests(
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
) -> list[QuestionTest]:
    """The comparisons behind the poster's Q1 and Q2 (see :func:`answer_questions`)."""
    summaries = _summaries(data)
    present = sorted({s.experiment for s in summaries if s.experiment is not None})
    gd_intervals = [s.interval for s in summaries if s.metric == "gap_depth" and s.task == task]
    if interval is None and gd_intervals:
        interval = max(gd_intervals)
    gd_name = f"GD_{task},{interval}"
    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    shown = names or {}

    def test(tag, a, b, metric, t, j, name, unit, lower, against) -> QuestionTest:
        found = [index.get((e, metric, t, j)) for e in (a, b)]
        if any(f is None for f in found):
            absent = [e for e in (a, b) if e not in present]
            if absent:
                wanted = ", ".join(f"'{e}'" for e in absent)
                have = ", ".join(shown.get(e, e) for e in present) or "none"
                why = f"no runs of experiment {wanted} (found: {have})"
            else:
                what = f"gap depth of task {task} in interval {interval}" if lower else metric
                why = f"no {what} in the runs of {a}, {b}"
            return QuestionTest(tag, name, unit, lower, against, interval, skipped=why)
        c = compare(
            found[0].by_seed(),
            found[1].by_seed(),
            shown.get(a, a),
            shown.get(b, b),
            metric=name,
            alpha=alpha,
            span=difference_span(metric),
        )
        return QuestionTest(tag, name, unit, lower, against, interval, c)

    gd = ("gap_depth", task, interval, gd_name, "p.p.", True)
    acc = ("avg_acc_final", None, None, "final ACC", "%", False)
    tests = [test("Q1", baseline, nd, *gd, "the baseline")]
    for other, against, tag in (
        (baseline, "the baseline with replay", "Q2"),
        (no_replay, "the baseline without replay", "Q2, without replay"),
    ):
        tests += [test(tag, other, nd_no_replay, *m, against) for m in (gd, acc)]
    return tests


def answer_questions(
    data: Iterable[GroupSummary] | Iterable[dict[str, Any]],
    *,
    family: Family | None = None,
    task: int = 1,
    interval: int | None = None,
    **roles: Any,
) -> list[str]:
    """Plain-English answers to the poster's Q1 and Q2, with their numbers.

    * Q1: does ND (``nd``) reduce task ``task``'s gap depth in ``interval`` compared with the
      baseline (``baseline``), both with full replay?
    * Q2: does ND without replay (``nd_no_replay``) beat the baseline with replay on the gap
      depth (lower) and on the final average accuracy (higher)? And does it beat the baseline
      without replay (``no_replay``)?

    "Reduces" / "beats" means Welch's test is significant in that direction, adjusted over
    `family` (default: these questions' own tests); a difference that is not significant is
    reported as not shown, with what the n could have detected. A question whose
    experiments are missing is skipped with a sentence that says which.

    Args:
        data: Summaries from :func:`stabgap.statistics.summary.summarize` (default grouping) or tidy
            rows, which are summarised here.
        family: The tests adjusted together (a report's); None: these questions alone.
        task: The task whose gap depth is compared.
        interval: The interval of the gap; default the last one with a gap depth of ``task``.
        roles: ``baseline``, ``nd``, ``no_replay``, ``nd_no_replay`` (experiment names),
            ``alpha`` and ``names`` (how each experiment reads), see :func:`question_tests`.

    Returns:
        The sentences, Q1's first.
    """
    tests = question_tests(data, task=task, interval=interval, **roles)
    family = family or Family(t.comparison for t in tests if t.comparison is not None)
    return render_questions(tests, family, task)


def render_questions(tests: Sequence[QuestionTest], family: Family, task: int = 1) -> list[str]:
    """The sentences of :func:`answer_questions` for its tests, adjusted over `family`."""
    answers = []
    q1 = tests[0]
    interval = q1.interval
    if q1.comparison is None:
        answers.append(f"Q1 skipped: {q1.skipped}.")
    else:
        c = family.adjusted(q1.comparison)
        verdict = {
            "better": f"Yes: ND reduces the task-{task} gap depth",
            "worse": f"No: ND increases the task-{task} gap depth",
            "not shown": f"Not shown: no significant change of the task-{task} gap depth by ND",
            "untestable": f"Undecided: too few seeds to test whether ND reduces the task-{task} "
            "gap depth",
        }[_direction(c, lower_is_better=True)]
        answers.append(
            f"Q1. {verdict} in interval {interval} compared with the baseline, both with full "
            f"replay (Welch's t-test). {c.sentence(unit='p.p.')}"
        )
    verbs = {
        "better": "beats",
        "worse": "is significantly worse than",
        "not shown": "is not shown to differ from",
        "untestable": "cannot be tested (too few seeds) against",
    }
    for tag in ("Q2", "Q2, without replay"):
        directions = {}  # each metric's verdict
        pair = [t for t in tests if t.tag == tag]
        for t in pair:
            if t.comparison is None:
                answers.append(f"{tag} ({t.name}) skipped: {t.skipped}.")
                continue
            c = family.adjusted(t.comparison)
            directions[t.name] = _direction(c, lower_is_better=t.lower)
            answers.append(
                f"{tag} ({t.name}). ND without replay {verbs[directions[t.name]]} {t.against} on "
                f"{t.name} ({'lower' if t.lower else 'higher'} is better; Welch's t-test). "
                f"{c.sentence(unit=t.unit, diff_unit='p.p.')}"
            )
        if len(directions) < 2:
            continue
        against = pair[0].against
        if "untestable" in directions.values():
            answers.append(
                f"{tag}. In short, undecided: too few seeds to test ND without replay against "
                f"{against}."
            )
            continue
        # Every verdict in the summary, a significant harm as much as a win.
        summary = "; it ".join(
            f"{verbs[d]} {against} on {' and on '.join(n for n, x in directions.items() if x == d)}"
            for d in ("better", "worse", "not shown")
            if d in directions.values()
        )
        answers.append(f"{tag}. In short, ND without replay {summary}.")
    return answers
