"""The reference's stability-gap metrics, generalised to any task and interval.

Every function here is pure: it takes an accuracy matrix and the interval boundaries and
returns numbers. Nothing here knows about training, files or plots.

Conventions shared by all functions:

* ``acc`` is a float array of shape ``(points, tasks)`` with accuracies in %, and NaN where a
  task was not evaluated at that point (typically a task before its interval has started).
* ``boundaries`` holds where each task interval ends, e.g. ``(500, 1000, 1500)``. Interval
  ``j`` (1-based) covers ``[s_{j-1}, s_j)`` with ``s_0 = 0``, and task ``i`` is trained
  during interval ``i``.
* ``steps`` (keyword, optional) is the training batch of each point (the updates done
  before it). Given, ``boundaries`` are in batches too and every window, position and
  time is measured in batches, as the field defines them, so curves evaluated every
  other batch, on a schedule or imported from elsewhere are measured right. Left out,
  each point is one batch (evaluation at every batch, as the reference's) and
  ``boundaries`` count points: the two agree exactly on such curves.
* Tasks and intervals are 1-based, as in the field's notation ``GD_{1,3}`` (task 1,
  interval 3).
* Scalar metrics return a Python ``float``; an undefined value is ``nan``.

The task-1 definitions come from the reference protocol (see ``docs/protocol.md``, "Metrics");
here they are generalised to any task ``i`` and any later interval ``j > i``. min-ACC and
WC-ACC follow De Lange et al. (2023), "Continual evaluation for lifelong learning: identifying
the stability gap".

A tiny run used in the examples: 2 tasks, 3 points per task.

>>> import numpy as np
>>> nan = float("nan")
>>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
>>> gap_depth(acc, (3, 6), task=1, interval=2)
30.0
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "acc_before_switch",
    "avg_acc_curve",
    "avg_acc_final",
    "gap_depth",
    "gap_position",
    "min_acc",
    "recovered",
    "time_to_recover",
    "wc_acc",
]


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _as_acc(acc: np.ndarray) -> np.ndarray:
    """Return ``acc`` as a 2-D float64 array with at least one point and one task."""
    arr = np.asarray(acc, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"acc must be a 2-D array (points, tasks), got shape {arr.shape}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"acc needs at least one point and one task, got shape {arr.shape}")
    # NaN means "not evaluated"; an infinite accuracy can only be a bug upstream.
    if np.isinf(arr).any():
        raise ValueError("acc contains infinite values; use NaN for points not evaluated")
    return arr


def _as_boundaries(boundaries: Sequence[int] | np.ndarray, n_points: int | None) -> tuple[int, ...]:
    """Check ``boundaries`` (against the number of points, when they count points) and return
    them as a tuple of ints."""
    arr = np.asarray(boundaries)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"boundaries must be a non-empty 1-D sequence of ints, got {boundaries!r}")
    # numpy turns (True, 6, 9) into ints, so bools (never meant as point counts) are caught
    # on the original elements; floats such as 500.0 are refused rather than truncated.
    is_bool = any(isinstance(x, (bool, np.bool_)) for x in np.asarray(boundaries, dtype=object))
    if is_bool or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"boundaries must be integers, got {boundaries!r}")
    b = tuple(int(x) for x in arr)
    if b[0] <= 0 or any(later <= earlier for earlier, later in zip(b[:-1], b[1:], strict=True)):
        raise ValueError(f"boundaries must be positive and strictly increasing, got {b}")
    if n_points is not None and b[-1] != n_points:
        raise ValueError(
            f"the last boundary ({b[-1]}) must equal the number of points in acc ({n_points})"
        )
    return b


# Each point's training batch, or None for one point a batch (see the module's doc).
Steps = Sequence[int] | np.ndarray | None


@dataclass(frozen=True)
class Axis:
    """Where each evaluation point lies in training.

    Attributes:
        steps: (points,) the training batch of each point.
        ends: where each interval ends, in batches (exclusive).
        bounds: where each interval ends, in points (exclusive).
    """

    steps: np.ndarray
    ends: tuple[int, ...]
    bounds: tuple[int, ...]

    def start(self, interval: int) -> int:
        """First point of a 1-based interval."""
        return 0 if interval == 1 else self.bounds[interval - 2]

    def switch(self, interval: int) -> int:
        """First batch of a 1-based interval (0 for the first)."""
        return 0 if interval == 1 else self.ends[interval - 2]

    def length(self, interval: int) -> int:
        """Batches in a 1-based interval."""
        return self.ends[interval - 1] - self.switch(interval)

    def since_switch(self, point: int, interval: int) -> int:
        """Batches from the start of `interval` to `point`."""
        return int(self.steps[point]) - self.switch(interval)


def _as_steps(steps: Sequence[int] | np.ndarray, n_points: int) -> np.ndarray:
    arr = np.asarray(steps)
    if arr.ndim != 1 or arr.size != n_points:
        raise ValueError(f"steps must hold one batch index per point ({n_points}), got {arr.shape}")
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"steps must be whole numbers (batch indices), got {arr.dtype}")
    if arr[0] < 0 or (np.diff(arr) <= 0).any():
        raise ValueError("steps must be batch indices >= 0, strictly increasing")
    return arr.astype(np.int64)


def _validate(
    acc: np.ndarray, boundaries: Sequence[int] | np.ndarray, steps: Steps = None
) -> tuple[np.ndarray, Axis]:
    """Validate ``acc``, ``boundaries`` and ``steps`` together (one interval per task).

    Without steps each point is one batch and the boundaries count points.
    """
    arr = _as_acc(acc)
    n = arr.shape[0]
    if steps is None:
        b = _as_boundaries(boundaries, n)
        axis = Axis(np.arange(n), b, b)
    else:
        at = _as_steps(steps, n)
        ends = _as_boundaries(boundaries, None)
        if ends[-1] <= at[-1]:
            raise ValueError(
                f"the last boundary ({ends[-1]}) must lie after the last point's batch ({at[-1]})"
            )
        bounds = tuple(int(x) for x in np.searchsorted(at, ends, side="left"))
        if bounds[0] == 0 or any(b <= a for a, b in zip(bounds[:-1], bounds[1:], strict=True)):
            raise ValueError(f"every interval needs at least one point; ends {ends}, steps {at}")
        axis = Axis(at, ends, bounds)
    # Task i is trained during interval i, so the two counts must agree.
    if len(axis.bounds) != arr.shape[1]:
        raise ValueError(
            f"acc has {arr.shape[1]} task columns but boundaries define {len(axis.bounds)} "
            "intervals"
        )
    return arr, axis


def _check_index(name: str, value: int, low: int, high: int) -> int:
    """Check that a 1-based index is an int in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return int(value)


def _check_task_interval(task: int, interval: int, n_tasks: int) -> tuple[int, int]:
    """Check a (task, interval) pair for the gap metrics: a gap exists only after the task."""
    task = _check_index("task", task, 1, n_tasks)
    if n_tasks < 2 or task == n_tasks:
        raise ValueError(
            f"task {task} is the last task: it has no later interval to measure a gap in"
        )
    interval = _check_index("interval", interval, task + 1, n_tasks)
    return task, interval


def _gap(acc: np.ndarray, ax: Axis, task: int, interval: int) -> tuple[float, int | None]:
    """Return the gap's reference accuracy and the point of its minimum (None if none)."""
    col = acc[:, task - 1]
    start, end = ax.start(interval), ax.bounds[interval - 1]
    # The reference is the last point of the previous interval, not the end of the task's own
    # training: GD_{1,3} is measured against task 1's accuracy at the end of task 2.
    reference = float(col[start - 1])
    segment = col[start:end]
    if np.isnan(segment).all():
        return reference, None
    # nanargmin returns the first occurrence of the minimum, which is the one we want.
    return reference, start + int(np.nanargmin(segment))


# --------------------------------------------------------------------------------------------
# Public metrics
# --------------------------------------------------------------------------------------------


def acc_before_switch(
    acc: np.ndarray, boundaries: Sequence[int], *, steps: Steps = None
) -> np.ndarray:
    """Accuracy of every task at the last point of every interval.

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.
        boundaries: Ends of the intervals (in points; in batches with `steps`).

    Returns:
        Array of shape (tasks, intervals) whose entry ``[i-1, j-1]`` is ``a_i(s_j - 1)``;
        NaN where task ``i`` was not evaluated at that point.

    Raises:
        ValueError: If ``acc`` or ``boundaries`` are malformed.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
        >>> acc_before_switch(acc, (3, 6))
        array([[90., 95.],
               [nan, 88.]])
    """
    arr, ax = _validate(acc, boundaries, steps)
    last_points = np.asarray(ax.bounds) - 1
    # Rows of acc are points, so selecting the last points and transposing gives (tasks, ints).
    return arr[last_points, :].T.copy()


def gap_depth(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    *,
    steps: Steps = None,
) -> float:
    """Depth of task ``task``'s stability gap in interval ``interval`` (percentage points).

    ``GD_{i,j} = a_i(s_{j-1} - 1) - min_{t in [s_{j-1}, s_j)} a_i(t)``: the drop from the last
    point of the previous interval to the lowest point of the interval. It is negative when the
    accuracy only rises after the switch.

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.
        boundaries: Ends of the intervals (in points; in batches with `steps`).
        task: 1-based task ``i``.
        interval: 1-based interval ``j``, with ``j > i``.

    Returns:
        The gap depth in percentage points; NaN if the reference point or the whole interval
        was not evaluated.

    Raises:
        ValueError: If the inputs are malformed or ``interval <= task``.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
        >>> gap_depth(acc, (3, 6), task=1, interval=2)  # 90 - min(60, 85, 95)
        30.0
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    reference, t_min = _gap(arr, ax, task, interval)
    if t_min is None:
        return math.nan
    return reference - float(arr[t_min, task - 1])


def gap_position(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    *,
    steps: Steps = None,
) -> float:
    """Where the minimum of the gap lies, in batches after the switch.

    ``t_min - s_{j-1}`` for the first ``t_min`` in ``[s_{j-1}, s_j)`` at which ``a_i`` is
    lowest; 0 means the very first batch of the interval.

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.
        boundaries: Ends of the intervals (in points; in batches with `steps`).
        task: 1-based task ``i``.
        interval: 1-based interval ``j``, with ``j > i``.

    Returns:
        The position as a float holding a whole number (so that "undefined" can be NaN, when
        the task was not evaluated anywhere in the interval).

    Raises:
        ValueError: If the inputs are malformed or ``interval <= task``.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [85, 40], [60, 70], [60, 88]], float)
        >>> gap_position(acc, (3, 6), task=1, interval=2)  # first minimum at point 4
        1.0
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    _, t_min = _gap(arr, ax, task, interval)
    if t_min is None:
        return math.nan
    return float(ax.since_switch(t_min, interval))


def time_to_recover(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    *,
    steps: Steps = None,
) -> float:
    """Time for task ``task`` to get back to its pre-switch accuracy, as % of the interval.

    From the gap's minimum ``t_min``, find the first ``t >= t_min`` with
    ``a_i(t) >= a_i(s_{j-1} - 1)``. The search runs to the end of the whole run, not just to
    the end of interval ``j`` (as the reference does), so a recovery during a later interval
    still counts. ``TTR = (t - s_{j-1}) / (s_j - s_{j-1}) * 100``, which can exceed 100.

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.
        boundaries: Ends of the intervals (in points; in batches with `steps`).
        task: 1-based task ``i``.
        interval: 1-based interval ``j``, with ``j > i``.

    Returns:
        TTR in % of the interval's length; NaN when the accuracy never gets back (or the gap is
        undefined).

    Raises:
        ValueError: If the inputs are malformed or ``interval <= task``.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
        >>> round(time_to_recover(acc, (3, 6), task=1, interval=2), 2)  # back at point 5: 2/3
        66.67
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    reference, t_min = _gap(arr, ax, task, interval)
    if t_min is None or math.isnan(reference):
        return math.nan
    later = arr[t_min:, task - 1]
    # NaN (not evaluated) never counts as recovered; silence the comparison's NaN warning.
    with np.errstate(invalid="ignore"):
        hits = np.flatnonzero(later >= reference)
    if hits.size == 0:
        return math.nan
    t_recovered = t_min + int(hits[0])
    return ax.since_switch(t_recovered, interval) / ax.length(interval) * 100.0


def recovered(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    interval: int,
    *,
    steps: Steps = None,
) -> float:
    """Whether task ``task`` got back to its pre-switch accuracy after the gap of ``interval``.

    1.0 when :func:`time_to_recover` is defined, 0.0 when the gap was measured but the
    accuracy never got back (by the end of the run), NaN when the gap itself could not be
    measured (the task was not evaluated). This keeps "never recovered" apart from "not
    evaluated", which a time to recover alone cannot.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [89, 88]], float)
        >>> recovered(acc, (3, 6), task=1, interval=2)  # 90 is never reached again
        0.0
    """
    arr, ax = _validate(acc, boundaries, steps)
    task, interval = _check_task_interval(task, interval, arr.shape[1])
    reference, t_min = _gap(arr, ax, task, interval)
    if t_min is None or math.isnan(reference):
        return math.nan
    return 0.0 if math.isnan(time_to_recover(arr, ax.bounds, task, interval)) else 1.0


def avg_acc_final(acc: np.ndarray) -> float:
    """Average accuracy over all tasks at the last point (``ACC_AVG`` at the end of the run).

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.

    Returns:
        The mean of the last row; NaN if any task was not evaluated at the last point, since
        the average over all tasks is then unknown.

    Raises:
        ValueError: If ``acc`` is malformed.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
        >>> avg_acc_final(acc)  # (95 + 88) / 2
        91.5
    """
    arr = _as_acc(acc)
    return float(np.mean(arr[-1, :]))


def avg_acc_curve(acc: np.ndarray, boundaries: Sequence[int], *, steps: Steps = None) -> np.ndarray:
    """Average accuracy over the tasks seen so far, at every point.

    At point ``t`` the average runs over the tasks ``i`` whose interval has started
    (``t >= s_{i-1}``) and that were evaluated at ``t``. Tasks not seen yet are left out even
    when ``acc`` holds values for them (evaluation on all tasks), since their accuracy is
    chance level and says nothing about forgetting.

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.
        boundaries: Ends of the intervals (in points; in batches with `steps`).

    Returns:
        Array of shape (points,); NaN at a point where no seen task was evaluated.

    Raises:
        ValueError: If ``acc`` or ``boundaries`` are malformed.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, 10], [80, 10], [90, 10], [60, 40], [85, 70], [95, 88]], float)
        >>> avg_acc_curve(acc, (3, 6))  # task 2's first three values are ignored
        array([50. , 80. , 90. , 50. , 77.5, 91.5])
    """
    arr, ax = _validate(acc, boundaries, steps)
    points = np.arange(arr.shape[0])[:, None]
    starts = np.array([ax.start(i) for i in range(1, arr.shape[1] + 1)])[None, :]
    use = (points >= starts) & ~np.isnan(arr)
    counts = use.sum(axis=1)
    sums = np.where(use, arr, 0.0).sum(axis=1)
    # Divide only where something was averaged, instead of nanmean's empty-slice warning.
    out = np.full(arr.shape[0], np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def min_acc(
    acc: np.ndarray,
    boundaries: Sequence[int],
    task: int,
    until_interval: int | None = None,
    *,
    steps: Steps = None,
) -> float:
    """Lowest accuracy of task ``task`` after its own training ended (min-ACC).

    The minimum of ``a_i(t)`` over ``t`` in ``[s_i, s_u)``, where ``u`` is ``until_interval``:
    every point after task ``i``'s interval up to the end of interval ``u``.

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.
        boundaries: Ends of the intervals (in points; in batches with `steps`).
        task: 1-based task ``i``.
        until_interval: Last 1-based interval included; None for the end of the run.

    Returns:
        The minimum in %; NaN when the window is empty (the last task, or
        ``until_interval <= task``) or was never evaluated.

    Raises:
        ValueError: If the inputs are malformed or an index is out of range.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
        >>> min_acc(acc, (3, 6), task=1)  # min(60, 85, 95)
        60.0
        >>> min_acc(acc, (3, 6), task=2)  # nothing after the last task
        nan
    """
    arr, ax = _validate(acc, boundaries, steps)
    b = ax.bounds
    n_tasks = arr.shape[1]
    task = _check_index("task", task, 1, n_tasks)
    until = n_tasks if until_interval is None else until_interval
    until = _check_index("until_interval", until, 1, len(b))
    window = arr[b[task - 1] : b[until - 1], task - 1]
    if window.size == 0 or np.isnan(window).all():
        return math.nan
    return float(np.nanmin(window))


def wc_acc(
    acc: np.ndarray,
    boundaries: Sequence[int],
    after_task: int,
    *,
    steps: Steps = None,
) -> float:
    """Worst-case accuracy after task ``k`` (WC-ACC, De Lange et al. 2023).

    ``WC-ACC_k = (1/k) * a_k(s_k - 1) + (1 - 1/k) * mean_{i<k} min-ACC_i``, where each
    min-ACC is taken up to the end of interval ``k``. For ``k = 1`` it is ``a_1(s_1 - 1)``.

    Args:
        acc: Accuracies in %, shape (points, tasks), NaN where not evaluated.
        boundaries: Ends of the intervals (in points; in batches with `steps`).
        after_task: 1-based task ``k``.

    Returns:
        WC-ACC in %; NaN if any of its terms is undefined.

    Raises:
        ValueError: If the inputs are malformed or ``after_task`` is out of range.

    Example:
        >>> import numpy as np
        >>> nan = float("nan")
        >>> acc = np.array([[50, nan], [80, nan], [90, nan], [60, 40], [85, 70], [95, 88]], float)
        >>> wc_acc(acc, (3, 6), after_task=2)  # 88 / 2 + 60 / 2
        74.0
        >>> wc_acc(acc, (3, 6), after_task=1)
        90.0
    """
    arr, ax = _validate(acc, boundaries, steps)
    b = ax.bounds
    k = _check_index("after_task", after_task, 1, arr.shape[1])
    current = float(arr[b[k - 1] - 1, k - 1])
    if k == 1:
        return current
    mins = [min_acc(arr, b, i, until_interval=k) for i in range(1, k)]
    return current / k + (1.0 - 1.0 / k) * float(np.mean(mins))
