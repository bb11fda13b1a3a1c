"""Gap depth and time to recover that do not hinge on one noisy point.

The reference takes the single accuracy point just before a switch as the level the gap
is measured from and recovered to. Each point is measured on a random test subset, so
that level is off by the subset's noise (about 0.3 p.p. at 2,000 images), and a high
draw makes a run look like it "never recovered". Here:

- the **reference level** is the mean of the points of the ``window`` batches before the
  switch;
- the **minimum** is that of the curve after the switch smoothed by a centred moving
  average over ``smooth`` batches (within the interval's side of the switch: no point
  before the switch enters it);
- **recovery** is the first point, from the minimum on, where the curve (smoothed by
  ``smooth`` points: none by default) is back within ``tolerance`` p.p. of the reference
  level (searched to the end of the run, as the reference does).

The defaults were chosen by measurement (docs/metrics.md, benchmarks/robust_metrics.py):
they give a smaller seed-to-seed spread than the reference's definitions and keep the
baseline-vs-ND difference.

>>> import numpy as np
>>> nan = float("nan")
>>> task1 = [90, 92, 88, 90, 70, 60, 66, 80, 88, 89, 91]  # switch after point 3
>>> acc = np.array([[a, nan if t < 4 else 50] for t, a in enumerate(task1)], float)
>>> reference_level(acc, (4, 11), 1, 2, window=4)  # mean of 90, 92, 88, 90
90.0
>>> gap_depth_robust(acc, (4, 11), 1, 2, window=4, smooth=3)  # 90 - (70 + 60) / 2
25.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stabgap.metrics.gap import Axis, Steps, _check_task_interval, _validate

# Chosen by measurement (docs/metrics.md, benchmarks/robust_metrics.py): over 15 seeds of
# the quick study and on the reference's own file, these gave the smallest seed-to-seed
# spread with the clearest baseline-vs-ND separation.
# Windows are in batches (the field defines them in iterations); on a curve evaluated at
# every batch, as the measurements were, a batch is a point.
WINDOW = 10  # batches before the switch whose points average into the reference level
SMOOTH = 9  # batches of the centred moving average whose minimum is the gap's bottom
# The time to recover is searched on the unsmoothed curve: a smoothed one creeps up to
# the level late and by a varying amount (its spread over seeds was larger than the
# reference's), while the tolerance absorbs a single point's noise.
RECOVERY_SMOOTH = 1
TOLERANCE = 1.0  # p.p. below the reference level that still counts as recovered

__all__ = [
    "RECOVERY_SMOOTH",
    "SMOOTH",
    "TOLERANCE",
    "WINDOW",
    "gap_depth_robust",
    "reference_level",
    "smoothed_after",
    "time_to_recover_robust",
]


def reference_level(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    window: int = WINDOW,
    *,
    steps: Steps = None,
) -> float:
    """Mean accuracy of `task` over the points of the `window` batches before interval
    `interval` starts.

    NaN points (not evaluated) are left out; NaN if none is left.
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    return _level(arr, ax, task, interval, window)


def _level(arr: np.ndarray, ax: Axis, task: int, interval: int, window: int) -> float:
    start = ax.start(interval)
    first = int(np.searchsorted(ax.steps[:start], ax.switch(interval) - window, side="left"))
    values = arr[first:start, task - 1]
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan


def smoothed_after(
    curve: np.ndarray, start: int, smooth: int = SMOOTH, steps: Steps = None
) -> np.ndarray:
    """The curve from point `start` on, smoothed by a centred moving average over `smooth`
    batches (`steps`: each point's batch; default one point a batch).

    Near the ends the window is cut to the points there are, and it never reaches back
    before `start`. NaN points are left out of each average.

    Example:
        >>> smoothed_after(np.array([9.0, 1.0, 2.0, 3.0, 10.0]), start=1, smooth=3).tolist()
        [1.5, 2.0, 5.0, 6.5]
        >>> # evaluated every 2nd batch: 3 batches hold one point each side at most
        >>> smoothed_after(np.array([9.0, 1.0, 2.0, 3.0]), 1, 3, steps=[0, 2, 4, 6]).tolist()
        [1.0, 2.0, 3.0]
    """
    part = np.asarray(curve, dtype=np.float64)[start:]
    at = np.arange(part.size) if steps is None else np.asarray(steps)[start:]
    half = smooth // 2
    lows = np.searchsorted(at, at - half, side="left")
    highs = np.searchsorted(at, at + half, side="right")
    out = np.full(part.shape, np.nan)
    for t in range(part.size):
        window = part[lows[t] : highs[t]]
        window = window[~np.isnan(window)]
        if window.size:
            out[t] = window.mean()
    return out


def _robust_gap(arr: np.ndarray, ax: Axis, task, interval, window, smooth):
    """Reference level, smoothed curve from the switch on, and the minimum's offset."""
    start, end = ax.start(interval), ax.bounds[interval - 1]
    level = _level(arr, ax, task, interval, window)
    smoothed = smoothed_after(arr[:, task - 1], start, smooth, ax.steps)
    segment = smoothed[: end - start]
    if math.isnan(level) or np.isnan(segment).all():
        return level, smoothed, None
    return level, smoothed, int(np.nanargmin(segment))


def _recovery(arr: np.ndarray, ax: Axis, task, interval, window, smooth, tolerance, of_depth=False):
    """The curve (smoothed), its minimum's offset from the switch, and the points from the
    minimum until it is back within `tolerance` of the reference level (None: never, or
    no minimum); `of_depth`: the tolerance is that fraction of the dip's depth."""
    level, smoothed, t_min = _robust_gap(arr, ax, task, interval, window, smooth)
    if t_min is None:
        return smoothed, None, None
    if of_depth:  # a shallower dip is held to a proportionally closer recovery
        tolerance = tolerance * max(0.0, level - float(smoothed[t_min]))
    with np.errstate(invalid="ignore"):
        hits = np.flatnonzero(smoothed[t_min:] >= level - tolerance)
    return smoothed, t_min, (int(hits[0]) if hits.size else None)


def gap_depth_robust(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    window: int = WINDOW,
    smooth: int = SMOOTH,
    *,
    steps: Steps = None,
) -> float:
    """Reference level minus the smoothed curve's minimum in the interval (p.p.).

    Example: see the module's.
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    level, smoothed, t_min = _robust_gap(arr, ax, task, interval, window, smooth)
    return math.nan if t_min is None else level - float(smoothed[t_min])


def time_to_recover_robust(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    window: int = WINDOW,
    smooth: int = RECOVERY_SMOOTH,
    tolerance: float = TOLERANCE,
    *,
    steps: Steps = None,
    of_depth: bool = False,
) -> float:
    """Batches from the switch until the smoothed curve is back within `tolerance` of the
    reference level (from its minimum on, to the end of the run), as % of the interval.

    A fixed tolerance lets a shallower dip count as recovered sooner (it starts closer to
    the level); with ``of_depth`` the tolerance is that fraction of the dip's own depth
    (0.1: recovered once 90 % of the drop is regained), which compares dips of any depth.

    Example:
        >>> nan = float("nan")
        >>> task1 = [90, 92, 88, 90, 70, 60, 66, 80, 88, 89, 91]
        >>> acc = np.array([[a, nan if t < 4 else 50] for t, a in enumerate(task1)], float)
        >>> # smoothed from the switch: 65, 65.3, 68.7, 78, 85.7, 89.3, 90; within 0.5 of
        >>> # the level 90 at the 6th point after the switch (89.3 is not, 90 is)
        >>> round(time_to_recover_robust(acc, (4, 11), 1, 2, window=4, smooth=3, tolerance=0.5), 2)
        85.71
        >>> # the dip's depth is 90 - 65 = 25: within 20 % of it (5 p.p.) at 85.7, 4 batches
        >>> # after the switch: 4 of the interval's 7
        >>> round(time_to_recover_robust(acc, (4, 11), 1, 2, 4, 3, 0.2, of_depth=True), 2)
        57.14
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    _, t_min, back = _recovery(arr, ax, task, interval, window, smooth, tolerance, of_depth)
    if back is None:
        return math.nan
    point = ax.start(interval) + t_min + back
    return ax.since_switch(point, interval) / ax.length(interval) * 100.0
