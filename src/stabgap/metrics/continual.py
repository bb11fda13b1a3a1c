"""The field's other continual-evaluation measures, as pure functions of the curves.

- **Average anytime accuracy** (AAA; Caccia et al., 2022): the average accuracy over the
  tasks seen so far, averaged over every evaluation point of the run.
- **Windowed forgetting** WF^w and **windowed plasticity** WP^w (De Lange et al., 2023): the
  largest drop of a task's accuracy within any w training iterations (batches) after its
  own training ended, and the largest rise within w batches while it is being trained.
- **Drop and recovery slopes**, stabgap's own measures (no paper defines them): on the
  smoothed curve after a switch, how fast the accuracy falls from the level before the
  switch to its minimum, and how fast it climbs back to that level (p.p. per batch).
- **Forgetting** FORG (Chaudhry et al., 2018): for each task, its best accuracy at the end
  of an interval (its own or a later one, before the last) minus its final accuracy.
- **Learning-curve area** LCA^β (Chaudhry et al., 2019): a task's mean accuracy over the
  first β + 1 batches (0 … β) of its own interval: how fast it is learnt.

Conventions as in :mod:`stabgap.metrics.gap`: ``acc`` (points, tasks) in %, NaN where not
evaluated; ``boundaries`` the ends of the intervals; ``steps`` each point's batch (default:
one point a batch); 1-based tasks. Windows are in batches, as the field defines them.

A worked example, 2 tasks of 4 points:

>>> import numpy as np
>>> nan = float("nan")
>>> acc = np.array([[20, nan], [50, nan], [70, nan], [80, nan],
...                 [60, 30], [75, 60], [79, 80], [81, 85]], float)
>>> b = (4, 8)
>>> average_anytime_accuracy(acc, b)  # (20 + 50 + 70 + 80 + 45 + 67.5 + 79.5 + 83) / 8
61.875
>>> windowed_forgetting(acc, b, task=1, window=2)  # 80 -> 60 within 2 points
20.0
>>> windowed_plasticity(acc, b, task=2, window=1)  # 30 -> 60 in one point
30.0
>>> forgetting(acc, b, task=1)  # best at an interval's end 80, final 81: it gained
-1.0
>>> learning_curve_area(acc, b, task=2, beta=2)  # (30 + 60 + 80) / 3
56.666666666666664
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stabgap.metrics.gap import (
    Axis,
    Steps,
    _check_index,
    _check_task_interval,
    _validate,
    acc_before_switch,
    avg_acc_curve,
)
from stabgap.metrics.robust import (
    RECOVERY_SMOOTH,
    SMOOTH,
    TOLERANCE,
    WINDOW,
    _recovery,
    _robust_gap,
)

WINDOWS = (10, 100)  # WF^w and WP^w are reported for these windows (batches)
LCA_BETA = 10  # batches of the learning-curve area

__all__ = [
    "average_anytime_accuracy",
    "drop_slope",
    "forgetting",
    "learning_curve_area",
    "recovery_slope",
    "windowed_forgetting",
    "windowed_plasticity",
]


def average_anytime_accuracy(
    acc: np.ndarray, boundaries: Sequence[int], *, steps: Steps = None
) -> float:
    """Mean over every evaluation point of the average accuracy over the tasks seen so far."""
    curve = avg_acc_curve(acc, boundaries, steps=steps)
    return float(np.nanmean(curve)) if np.isfinite(curve).any() else math.nan


def _largest_change(values: np.ndarray, at: np.ndarray, window: int, sign: int) -> float:
    """Largest sign·(later − earlier) over pairs of points at most `window` batches apart
    (`at`: each point's batch); 0 if none is positive, NaN if fewer than two points are
    evaluated."""
    values = np.asarray(values, dtype=np.float64)
    if np.isfinite(values).sum() < 2:
        return math.nan
    best = 0.0
    for lag in range(1, values.size):  # points apart; steps grow by at least 1 a point
        close = (at[lag:] - at[:-lag]) <= window
        if not close.any():
            break
        with np.errstate(invalid="ignore"):
            change = sign * (values[lag:] - values[:-lag])
        change = change[close]
        if np.isfinite(change).any():
            best = max(best, float(np.nanmax(change)))
    return best


def windowed_forgetting(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    window: int = WINDOWS[0],
    *,
    steps: Steps = None,
) -> float:
    """WF^w of `task`: its largest accuracy drop within `window` batches, from the last
    point of its own interval on. NaN for the last task (nothing comes after it)."""
    arr, ax = _validate(acc, boundaries, steps)
    task = _check_index("task", task, 1, arr.shape[1])
    if task == arr.shape[1]:
        return math.nan
    first = ax.bounds[task - 1] - 1
    return _largest_change(arr[first:, task - 1], ax.steps[first:], window, -1)


def windowed_plasticity(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    window: int = WINDOWS[0],
    *,
    steps: Steps = None,
) -> float:
    """WP^w of `task`: its largest accuracy rise within `window` batches of its own interval."""
    arr, ax = _validate(acc, boundaries, steps)
    task = _check_index("task", task, 1, arr.shape[1])
    own = slice(ax.start(task), ax.bounds[task - 1])
    return _largest_change(arr[own, task - 1], ax.steps[own], window, +1)


def drop_slope(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    window: int = WINDOW,
    smooth: int = SMOOTH,
    *,
    steps: Steps = None,
) -> float:
    """How fast the smoothed curve falls after the switch into `interval`: (its minimum −
    the level before the switch) / (batches from the last point before the switch to the
    minimum), in p.p. per batch (negative: a fall).

    Example:
        >>> nan = float("nan")
        >>> c = [90, 90, 90, 90, 80, 70, 60, 70, 90, 90]  # switch after point 3
        >>> acc = np.array([[a, nan if t < 4 else 50] for t, a in enumerate(c)], float)
        >>> drop_slope(acc, (4, 10), 1, 2, window=4, smooth=1)  # (60 - 90) / 3 batches
        -10.0
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    level, smoothed, t_min = _robust_gap(arr, ax, task, interval, window, smooth)
    if t_min is None:
        return math.nan
    start = ax.start(interval)
    return (float(smoothed[t_min]) - level) / _batches(ax, start - 1, start + t_min)


def _batches(ax: Axis, first: int, last: int) -> int:
    """Batches between two points."""
    return int(ax.steps[last] - ax.steps[first])


def recovery_slope(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    window: int = WINDOW,
    smooth: int = RECOVERY_SMOOTH,
    tolerance: float = TOLERANCE,
    *,
    steps: Steps = None,
) -> float:
    """How fast the curve climbs back, searched as the robust time to recover is: (the
    level it recovers to − its minimum) / (batches from the minimum to the recovery),
    p.p. per batch; NaN if it never recovers.

    Example:
        >>> nan = float("nan")
        >>> c = [90, 90, 90, 90, 80, 70, 60, 70, 90, 90]
        >>> acc = np.array([[a, nan if t < 4 else 50] for t, a in enumerate(c)], float)
        >>> recovery_slope(acc, (4, 10), 1, 2, window=4, smooth=1, tolerance=0)  # 30 / 2
        15.0
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    smoothed, t_min, back = _recovery(arr, ax, task, interval, window, smooth, tolerance)
    if not back:  # never recovered (None), or never fell below the level (0)
        return math.nan
    bottom = ax.start(interval) + t_min
    rise = float(smoothed[t_min + back]) - float(smoothed[t_min])
    return rise / _batches(ax, bottom, bottom + back)


def forgetting(
    acc: np.ndarray, boundaries: Sequence[int], task: int, *, steps: Steps = None
) -> float:
    """FORG of `task`: its best accuracy at the end of intervals task … T−1 minus its
    final accuracy (positive when it lost some, negative when it gained); NaN for the last
    task."""
    arr, ax = _validate(acc, boundaries, steps)
    n = arr.shape[1]
    task = _check_index("task", task, 1, n)
    if task == n:
        return math.nan
    ends = acc_before_switch(arr, ax.bounds)[task - 1, task - 1 : n - 1]
    return float(np.nanmax(ends) - arr[-1, task - 1])


def learning_curve_area(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    beta: int = LCA_BETA,
    *,
    steps: Steps = None,
) -> float:
    """LCA^β of `task`: its mean accuracy over the points of the first β + 1 batches
    (0 … β) of its own interval."""
    arr, ax = _validate(acc, boundaries, steps)
    task = _check_index("task", task, 1, arr.shape[1])
    own = np.arange(ax.start(task), ax.bounds[task - 1])
    early = own[ax.steps[own] - ax.switch(task) <= beta]
    values = arr[early, task - 1]
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
