"""Summaries of values over seeds: mean ± sample standard deviation and a t interval.

Pure statistics of numbers (numpy and scipy, nothing of training): :func:`summarize`
reduces tidy rows to one :class:`GroupSummary` per group, leaving undefined values (a time
to recover that never came, a diverged run) out and counting them, as the protocol asks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from stabgap.errors import StabgapError
from stabgap.metrics import RANGES

__all__ = ["GroupSummary", "format_mean_std", "last_interval", "mean_std_ci", "summarize"]

Row = dict[str, Any]


def is_undefined(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class GroupSummary:
    """Mean ± sample standard deviation of one group of rows (usually: over seeds).

    Attributes:
        key: The group's ``(column, value)`` pairs, in the order of ``by``.
        n: Number of defined values.
        n_undefined: Number of rows left out because their value is undefined (a time to
            recover that never came, a diverged run, ...).
        n_diverged: How many of those ``n_undefined`` rows come from diverged runs.
        mean: Mean of the defined values (NaN if none).
        std: Sample standard deviation, ddof = 1 (NaN if ``n < 2``).
        ci95_low: Lower end of the Student-t 95 % interval for the mean (NaN if ``n < 2``).
        ci95_high: Upper end of that interval.
        seeds: Seeds of the defined values, sorted.
        values: The defined values, in the order of ``seeds``.
        undefined_seeds: Seeds of the rows left out, sorted.
    """

    key: tuple[tuple[str, Any], ...]
    n: int
    n_undefined: int
    n_diverged: int
    mean: float
    std: float
    ci95_low: float
    ci95_high: float
    seeds: tuple[Any, ...]
    values: tuple[float, ...]
    undefined_seeds: tuple[Any, ...]

    def get(self, column: str, default: Any = None) -> Any:
        """The group's value of ``column`` (``default`` if not a grouping column)."""
        return dict(self.key).get(column, default)

    @property
    def experiment(self) -> Any:
        return self.get("experiment")

    @property
    def metric(self) -> Any:
        return self.get("metric")

    @property
    def task(self) -> Any:
        return self.get("task")

    @property
    def interval(self) -> Any:
        return self.get("interval")

    def by_seed(self) -> dict[Any, float | None]:
        """``{seed: value}`` with None for the undefined seeds (what :func:`stats.compare` takes).

        Raises:
            StabgapError: If a seed occurs twice in the group (then the grouping is too coarse
                to pair runs by seed).
        """
        pairs = [*zip(self.seeds, self.values, strict=True)]
        pairs += [(s, None) for s in self.undefined_seeds]
        out = dict(pairs)
        if len(out) != len(pairs):
            raise StabgapError(
                f"group {dict(self.key)} holds a seed more than once: group by more columns"
            )
        return out

    def mean_std(self, digits: int = 2) -> str:
        """``"mean ± std"``, see :func:`format_mean_std`."""
        return format_mean_std(self.mean, self.std, digits)


def _sort_key(value: Any) -> tuple:
    """Order None last, numbers before strings, so that mixed columns still sort."""
    if value is None:
        return (2, 0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value))


def mean_std_ci(
    values: Sequence[float],
    level: float = 0.95,
    bounds: tuple[float | None, float | None] = (None, None),
) -> tuple[float, float, float, float]:
    """Mean, sample std (ddof = 1) and the Student-t interval for the mean of ``values``.

    Returns ``(mean, std, low, high)``; the mean is NaN for no values, the others for fewer
    than two. The interval is cut to `bounds`, the values the quantity can take (its
    coverage stays at least `level`: the mean cannot lie outside them).

    Example:
        >>> m, s, lo, hi = mean_std_ci([1.0, 2.0, 3.0])
        >>> m, s, round(lo, 4), round(hi, 4)  # 2 ± t(0.975, 2) · 1 / √3
        (2.0, 1.0, -0.4841, 4.4841)
        >>> round(mean_std_ci([1.0, 2.0, 3.0], bounds=(0, None))[2], 4)  # an accuracy
        0.0
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    low, high = bounds
    return (
        mean,
        std,
        mean - half if low is None else max(float(low), mean - half),
        mean + half if high is None else min(float(high), mean + half),
    )


def summarize(
    rows: Iterable[Row], by: Sequence[str] = ("experiment", "metric", "task", "interval")
) -> list[GroupSummary]:
    """Mean ± sample std (ddof = 1) and a Student-t 95 % interval per group of rows (cut
    to the values the row's metric can take, :data:`stabgap.metrics.RANGES`).

    Undefined values (None or NaN) are left out of the statistics and counted in
    ``n_undefined`` (with their seeds), as the protocol does for a time to recover that never
    came; rows of diverged runs are undefined too (see :func:`tidy_rows`).

    Args:
        rows: Tidy rows (:func:`tidy_rows` or :func:`read_table`).
        by: The columns that define a group; a missing column counts as None.

    Returns:
        One summary per group, sorted by the group's key (numbers before strings, None last).

    Example:
        >>> rows = [
        ...     {"experiment": "nd", "metric": "gd", "seed": 1, "value": 5.0},
        ...     {"experiment": "nd", "metric": "gd", "seed": 2, "value": 7.0},
        ...     {"experiment": "nd", "metric": "gd", "seed": 3, "value": None},
        ... ]
        >>> [s] = summarize(rows, by=("experiment", "metric"))
        >>> s.n, s.n_undefined, s.mean, round(s.std, 4), s.undefined_seeds
        (2, 1, 6.0, 1.4142, (3,))
    """
    by = tuple(by)
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(c) for c in by), []).append(row)

    summaries = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = sorted(
            groups[key], key=lambda r: (_sort_key(r.get("seed")), _sort_key(r.get("run")))
        )
        defined = [r for r in members if not is_undefined(r.get("value"))]
        undefined = [r for r in members if is_undefined(r.get("value"))]
        values = tuple(float(r["value"]) for r in defined)
        metric = dict(zip(by, key, strict=True)).get("metric")
        mean, std, low, high = mean_std_ci(values, bounds=RANGES.get(metric, (None, None)))
        summaries.append(
            GroupSummary(
                key=tuple(zip(by, key, strict=True)),
                n=len(defined),
                n_undefined=len(undefined),
                n_diverged=sum(bool(r.get("diverged")) for r in undefined),
                mean=mean,
                std=std,
                ci95_low=low,
                ci95_high=high,
                seeds=tuple(r.get("seed") for r in defined),
                values=values,
                undefined_seeds=tuple(r.get("seed") for r in undefined),
            )
        )
    return summaries


def format_mean_std(mean: float, std: float, digits: int = 2) -> str:
    """``"mean ± std"`` with ``digits`` decimals; "n/a" for an undefined part.

    Example:
        >>> format_mean_std(16.3612, 1.4401)
        '16.36 ± 1.44'
        >>> format_mean_std(16.3612, float("nan"), 1)
        '16.4 ± n/a'
        >>> format_mean_std(float("nan"), float("nan"))
        'n/a'
    """
    if math.isnan(mean):
        return "n/a"
    spread = "n/a" if math.isnan(std) else f"{std:.{digits}f}"
    return f"{mean:.{digits}f} ± {spread}"


def last_interval(summaries: Iterable[GroupSummary], task: int = 1) -> int:
    """The last interval in which ``task``'s gap depth was measured (the poster's "3").

    Raises:
        StabgapError: If no summary holds a gap depth of ``task``.
    """
    intervals = [
        s.interval
        for s in summaries
        if s.metric == "gap_depth" and s.task == task and s.interval is not None
    ]
    if not intervals:
        raise StabgapError(f"no gap_depth of task {task} in the summaries: nothing to tabulate")
    return int(max(intervals))
