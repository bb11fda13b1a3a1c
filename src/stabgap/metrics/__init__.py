"""Metrics of continual-evaluation accuracy curves: pure functions, no training, no files.

- :mod:`stabgap.metrics.gap`: the reference's definitions (gap depth, its position, time
  to recover, accuracy before each switch, final average accuracy, min-ACC, WC-ACC),
  generalised to any task and interval; they give the reference's published values.
- :mod:`stabgap.metrics.robust`: gap depth and time to recover measured from a window of
  points and a smoothed curve, which a single noisy point cannot swing.
- :mod:`stabgap.metrics.continual`: the field's other measures (AAA, WF^w, WP^w, drop and
  recovery slopes, forgetting, learning-curve area).

:func:`compute_metrics` gives every one of them for a run, as tidy rows.

>>> import numpy as np
>>> nan = float("nan")
>>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
>>> gap_depth(acc, (3, 6), task=1, interval=2)
30.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stabgap.metrics.continual import (
    LCA_BETA,
    WINDOWS,
    average_anytime_accuracy,
    drop_slope,
    forgetting,
    learning_curve_area,
    recovery_slope,
    windowed_forgetting,
    windowed_plasticity,
)
from stabgap.metrics.gap import (
    _validate,
    acc_before_switch,
    avg_acc_curve,
    avg_acc_final,
    gap_depth,
    gap_position,
    min_acc,
    recovered,
    time_to_recover,
    wc_acc,
)
from stabgap.metrics.robust import gap_depth_robust, time_to_recover_robust

__all__ = [
    "RANGES",
    "Measured",
    "MetricRow",
    "acc_before_switch",
    "average_anytime_accuracy",
    "avg_acc_curve",
    "avg_acc_final",
    "compute_metrics",
    "drop_slope",
    "forgetting",
    "gap_depth",
    "gap_depth_robust",
    "gap_position",
    "learning_curve_area",
    "min_acc",
    "recovered",
    "recovery_slope",
    "time_to_recover",
    "time_to_recover_robust",
    "unit",
    "wc_acc",
    "windowed_forgetting",
    "windowed_plasticity",
]


# The values each metric can take (None: unbounded on that side), so that an interval over
# seeds is cut to what is possible: a t interval of accuracies near 100 % passes 100.
_ACCURACY, _CHANGE, _SHARE = (0.0, 100.0), (-100.0, 100.0), (0.0, None)
RANGES: dict[str, tuple[float | None, float | None]] = {
    **dict.fromkeys(("acc_before_switch", "avg_acc_final", "aaa", "min_acc", "wc_acc"), _ACCURACY),
    "learning_curve_area": _ACCURACY,
    **dict.fromkeys(("gap_depth", "gap_depth_robust", "forgetting"), _CHANGE),
    # % of the interval; the search for recovery goes on past its end, so no upper bound
    **dict.fromkeys(("time_to_recover", "time_to_recover_robust", "gap_position"), _SHARE),
    "recovered": (0.0, 1.0),
    **{
        f"windowed_{kind}_w{w}": _ACCURACY for kind in ("forgetting", "plasticity") for w in WINDOWS
    },
}


def unit(metric: str) -> str:
    """The unit of a metric's values, as the tables name it.

    Example:
        >>> unit("gap_depth"), unit("min_acc"), unit("time_to_recover"), unit("drop_slope")
        ('p.p.', '%', '% of the interval', 'p.p. per batch')
    """
    if metric.endswith("_slope"):
        return "p.p. per batch"
    if metric in ("time_to_recover", "time_to_recover_robust", "gap_position"):
        return "% of the interval"
    if metric == "recovered":
        return "1 if recovered, else 0"
    if metric in ("gap_depth", "gap_depth_robust", "forgetting") or metric.startswith("windowed_"):
        return "p.p."
    return "%"


def difference_span(metric: str) -> float:
    """The largest difference two of a metric's values can have (from :data:`RANGES`): 100
    for two accuracies, 200 for two gap depths; infinite where a value is unbounded (a slope,
    a metric without a range, a time to recover: see :func:`recovery_span`).

    Example:
        >>> difference_span("avg_acc_final"), difference_span("gap_depth")
        (100.0, 200.0)
        >>> difference_span("time_to_recover")
        inf
    """
    low, high = RANGES.get(metric, (None, None))
    return math.inf if low is None or high is None else high - low


def recovery_span(runs: Sequence[Measured], interval: int) -> float:
    """The largest difference two times to recover a gap of `interval` can have among
    `runs`. Recovery is sought up to each run's end, so a run's TTR lies between 0 and
    (run's end − the interval's switch) / the interval's length × 100: 100 in the last
    interval, 200 for TTR_1,2 of three tasks of one length. Infinite without runs.

    Example:
        >>> from types import SimpleNamespace as Run
        >>> three = Run(ends=(10, 20, 30))
        >>> recovery_span([three], 2), recovery_span([three], 3)
        (200.0, 100.0)
        >>> recovery_span([three, Run(ends=(10, 15, 40))], 2)  # (40 - 10) / (15 - 10)
        600.0
    """
    return max(
        ((r.ends[-1] - r.ends[interval - 2]) / (r.ends[interval - 1] - r.ends[interval - 2]) * 100
         for r in runs),
        default=math.inf,
    )  # fmt: skip


class Measured:
    """A run as the metrics read it: its ``acc``, its tasks' ``ends`` in batches and each
    point's batch, ``eval_steps`` (records and in-memory results have them)."""

    def measure(self, metric, *args, **kwargs):
        """One metric of this run, in batches: ``metric(acc, ends, *args, steps=...)``.

        Example: ``run.measure(gap_depth, 1, 3)`` is GD_{1,3}.
        """
        return metric(self.acc, self.ends, *args, steps=self.eval_steps, **kwargs)


@dataclass(frozen=True)
class MetricRow:
    """One value of one metric, in long ("tidy") format.

    Attributes:
        metric: The metric's name, e.g. ``"gap_depth"``.
        task: The 1-based task the value is about, or None for metrics over all tasks.
        interval: The 1-based interval the value is about, or None where it does not apply.
        value: The value, or None where the metric is undefined (e.g. a time to recover when
            the accuracy never got back).
    """

    metric: str
    task: int | None
    interval: int | None
    value: float | None


def compute_metrics(
    acc: np.ndarray, boundaries: Sequence[int], *, steps: Sequence[int] | None = None
) -> list[MetricRow]:
    """All metrics of one run, as rows in a fixed order.

    ``steps`` is each point's training batch, and then ``boundaries`` are in batches too
    (see :mod:`stabgap.metrics.gap`); without them each point is one batch.

    Rows, in this order (each block sorted by task, then interval):

    1. ``acc_before_switch`` for each task ``i`` and interval ``j >= i``;
    2. for each task ``i`` and interval ``j > i``, grouped by metric: the reference's
       ``gap_depth``, ``gap_position``, ``time_to_recover``, ``recovered``; the robust
       ``gap_depth_robust``, ``time_to_recover_robust``; ``drop_slope``, ``recovery_slope``;
    3. ``avg_acc_final`` and ``aaa`` (task and interval None);
    4. ``min_acc``, ``forgetting``, ``windowed_forgetting_w10`` and ``_w100`` for each task
       but the last, then their mean over those tasks (task None; for min-ACC the average
       of De Lange et al., 2023);
    5. ``windowed_plasticity_w10``, ``_w100`` and ``learning_curve_area`` for each task,
       then their mean (task None);
    6. ``wc_acc`` for each ``k`` (task None, interval ``k``).

    Undefined values (NaN) become None.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 70]], float)
        >>> rows = compute_metrics(acc, (3, 6))
        >>> for r in rows[:7]:
        ...     print(r.metric, r.task, r.interval, r.value)
        acc_before_switch 1 1 90.0
        acc_before_switch 1 2 95.0
        acc_before_switch 2 2 70.0
        gap_depth 1 2 30.0
        gap_position 1 2 0.0
        time_to_recover 1 2 66.66666666666666
        recovered 1 2 1.0
        >>> len(rows), rows[-1].metric
        (32, 'wc_acc')
    """
    arr, ax = _validate(acc, boundaries, steps)
    b, on = ax.ends, {"steps": ax.steps}
    n = arr.shape[1]

    def row(metric: str, task: int | None, interval: int | None, value: float) -> MetricRow:
        # None rather than NaN so that JSON/CSV writers and comparisons behave.
        return MetricRow(metric, task, interval, None if math.isnan(value) else float(value))

    before = acc_before_switch(arr, b, **on)
    rows = [
        row("acc_before_switch", i, j, before[i - 1, j - 1])
        for i in range(1, n + 1)
        for j in range(i, n + 1)
    ]
    pairs = [(i, j) for i in range(1, n + 1) for j in range(i + 1, n + 1)]
    for name, func in (
        ("gap_depth", gap_depth),
        ("gap_position", gap_position),
        ("time_to_recover", time_to_recover),
        ("recovered", recovered),
        ("gap_depth_robust", gap_depth_robust),
        ("time_to_recover_robust", time_to_recover_robust),
        ("drop_slope", drop_slope),
        ("recovery_slope", recovery_slope),
    ):
        rows.extend(row(name, i, j, func(arr, b, i, j, **on)) for i, j in pairs)
    rows.append(row("avg_acc_final", None, None, avg_acc_final(arr)))
    rows.append(row("aaa", None, None, average_anytime_accuracy(arr, b, **on)))

    def per_task(name: str, func, tasks: range) -> None:
        values = [func(i) for i in tasks]
        rows.extend(row(name, i, None, v) for i, v in zip(tasks, values, strict=True))
        if tasks:
            defined = [v for v in values if not math.isnan(v)]
            rows.append(row(name, None, None, float(np.mean(defined)) if defined else math.nan))

    earlier = range(1, n)
    per_task("min_acc", lambda i: min_acc(arr, b, i, **on), earlier)
    per_task("forgetting", lambda i: forgetting(arr, b, i, **on), earlier)
    for w in WINDOWS:
        per_task(
            f"windowed_forgetting_w{w}",
            lambda i, w=w: windowed_forgetting(arr, b, i, w, **on),
            earlier,
        )
    for w in WINDOWS:
        per_task(
            f"windowed_plasticity_w{w}",
            lambda i, w=w: windowed_plasticity(arr, b, i, w, **on),
            range(1, n + 1),
        )
    per_task(
        "learning_curve_area",
        lambda i: learning_curve_area(arr, b, i, LCA_BETA, **on),
        range(1, n + 1),
    )
    rows.extend(row("wc_acc", None, k, wc_acc(arr, b, k, **on)) for k in range(1, n + 1))
    return rows
