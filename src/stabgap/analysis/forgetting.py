"""Groups whose first task is gone before a later switch: there a gap measures nothing.

A gap depth is the drop from the accuracy before a switch to the lowest point after it. A
network that has already forgotten task 1 (class-incremental learning without replay: its
head answers the newest classes only) has nothing left to drop, so GD_1,j is about 0 and
the time to recover is 0: the best scores, for the worst outcome. The report flags such
groups beside the metrics they make meaningless, and the gap-against-accuracy figure marks
them and leaves them off its Pareto front.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stabgap.metrics import acc_before_switch

# Task 1 counts as forgotten before a switch when its accuracy there is below this share
# of its accuracy when its own task ended.
FORGOTTEN = 0.5


def forgotten_groups(groups: Sequence, n_tasks: int) -> dict[str, tuple[int, int, float, float]]:
    """Groups in which most runs forgot task 1 before the last switch: key -> (runs that
    did, runs, mean accuracy when task 1 ended, mean accuracy before the last switch).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> def run(end, before):  # (tasks, intervals): each task at each interval's end
        ...     acc = np.array([[end, before, 0], [0, 90, 10], [0, 0, 95]], float)
        ...     return NS(measure=lambda f: acc)
        >>> g = NS(key="lwf", runs=[run(99.0, 0.0), run(98.0, 2.0), run(97.0, 90.0)])
        >>> forgotten_groups([g], n_tasks=3)
        {'lwf': (2, 3, 98.0, 30.666666666666668)}
    """
    if n_tasks < 3:  # the first switch always follows task 1's own end
        return {}
    out = {}
    for g in groups:
        # each run's task-1 accuracy at every interval's end: (runs, intervals)
        task1 = [r.measure(acc_before_switch)[0] for r in g.runs]
        if not task1 or any(len(a) < n_tasks for a in task1):
            continue  # (a group of fewer tasks: no such switch)
        # when task 1 ended, and before the switch into the last task
        pairs = np.array([(a[0], a[n_tasks - 2]) for a in task1], dtype=float)
        gone = int((pairs[:, 1] < FORGOTTEN * pairs[:, 0]).sum())
        if 2 * gone > len(g.runs):
            out[g.key] = (gone, len(g.runs), *map(float, pairs.mean(axis=0)))
    return out


def forgotten_sentence(label: str, found: tuple[int, int, float, float], n_tasks: int) -> str:
    gone, runs, end, before = found
    return (
        f"**{label}**: task 1 was forgotten before the last switch in {gone} of its {runs} "
        f"runs (its accuracy {before:.1f} % before task {n_tasks} began, {end:.1f} % when "
        f"task 1 ended): GD_1,{n_tasks} and TTR_1,{n_tasks} measure no gap there, whatever "
        "they read; min-ACC and the final accuracy say what happened."
    )
