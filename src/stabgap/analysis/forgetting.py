"""Groups whose first task is gone before a later switch, or was never learned: there a
gap measures nothing.

A gap depth is the drop from the accuracy before a switch to the lowest point after it. A
network that has already forgotten task 1 (class-incremental learning without replay: its
head answers the newest classes only) has nothing left to drop, so GD_1,j is about 0 and
the time to recover is 0: the best scores, for the worst outcome. The report flags such
groups beside the metrics they make meaningless, and the gap-against-accuracy figure marks
them and leaves them off its Pareto front. A network that never learned task 1 (too short a
task, too small a network) sits at chance before the first switch: its "gaps" are the
evaluation's noise around chance, and the report says so too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from stabgap.core.config import from_record
from stabgap.core.data import DATASETS
from stabgap.errors import StabgapError
from stabgap.metrics import acc_before_switch

# Task 1 counts as forgotten before a switch when its accuracy there is below this share
# of its accuracy when its own task ended and, where the record says what chance is, within
# CHANCE_SE standard errors of chance or below it: nothing above chance is left to drop. (A
# run at 45 % of a 10-class task, down from 90 %, can still drop 35 p.p., and its gap is
# measured.) Imported curves do not say what chance is; the share alone decides there.
FORGOTTEN = 0.5


def forgotten_groups(groups: Sequence, n_tasks: int) -> dict[str, tuple]:
    """Groups in which most runs forgot task 1 before the last switch (see FORGOTTEN): key
    -> (runs that did, runs, mean accuracy when task 1 ended, mean accuracy before the last
    switch, chance or None where unknown).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> def run(end, before):  # (tasks, intervals): each task at each interval's end
        ...     acc = np.array([[end, before, 0], [0, 90, 10], [0, 0, 95]], float)
        ...     return NS(measure=lambda f: acc)
        >>> g = NS(key="lwf", runs=[run(99.0, 0.0), run(98.0, 2.0), run(97.0, 90.0)],
        ...        imported=True)
        >>> forgotten_groups([g], n_tasks=3)
        {'lwf': (2, 3, 98.0, 30.666666666666668, None)}
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
        gone = pairs[:, 1] < FORGOTTEN * pairs[:, 0]
        found = None if g.imported else task_one_chance(g.config)
        if found is not None:
            chance, se = found
            gone &= pairs[:, 1] <= chance + CHANCE_SE * se
        if 2 * int(gone.sum()) > len(g.runs):
            means = map(float, pairs.mean(axis=0))
            out[g.key] = (int(gone.sum()), len(g.runs), *means, None if found is None else found[0])
    return out


def forgotten_sentence(label: str, found: tuple, n_tasks: int) -> str:
    gone, runs, end, before, chance = found
    at_chance = "" if chance is None else f", chance {chance:.1f} %"
    return (
        f"**{label}**: task 1 was forgotten before the last switch in {gone} of its {runs} "
        f"runs (its accuracy {before:.1f} % before task {n_tasks} began, {end:.1f} % when "
        f"task 1 ended{at_chance}): GD_1,{n_tasks} and TTR_1,{n_tasks} measure no gap there, "
        "whatever they read; min-ACC and the final accuracy say what happened."
    )


# Task 1 counts as not learned when its accuracy as its task ended is within this many
# standard errors of chance (a binomial proportion's, on the evaluation's subset).
CHANCE_SE = 3.0


def task_one_chance(config: dict) -> tuple[float, float] | None:
    """Chance accuracy on task 1 (%), one class in as many as task 1 holds, and the standard
    error of an accuracy at chance on task 1's evaluation subset (p.p.); None where the
    record cannot say (imported curves, a plugin's field).

    Example:
        >>> from stabgap.core.config import RunConfig, to_dict
        >>> chance, se = task_one_chance(to_dict(RunConfig(eval_subset=500)))
        >>> chance, round(se, 2)  # 10 digits, 500 test images: √(0.1 · 0.9 / 500)
        (10.0, 1.34)
    """
    from stabgap.cost.flops import run_shape

    try:
        run = from_record(config)
        shape = run_shape(run)
    except (StabgapError, KeyError, TypeError, ValueError):
        return None
    classes = run.classes_per_task if run.stream == "split" else DATASETS.chosen(run).n_classes
    p = 1 / classes
    m = run.task_eval_size(1, shape.test_sizes[0])
    return 100 * p, 100 * math.sqrt(p * (1 - p) / m)


def unlearned_groups(groups: Sequence) -> dict[str, tuple[int, int, float, float]]:
    """Groups in which most runs never learned task 1: key -> (runs at chance when task 1
    ended, runs, their mean accuracy then, chance)."""
    out = {}
    for g in groups:
        found = task_one_chance(g.config) if g.runs and not g.imported else None
        if found is None:
            continue
        chance, se = found
        ends = np.array([r.measure(acc_before_switch)[0][0] for r in g.runs], dtype=float)
        at_chance = int((ends <= chance + CHANCE_SE * se).sum())
        if 2 * at_chance > len(g.runs):
            out[g.key] = (at_chance, len(g.runs), float(np.nanmean(ends)), chance)
    return out


def unlearned_sentence(label: str, found: tuple[int, int, float, float]) -> str:
    at_chance, runs, end, chance = found
    return (
        f"**{label}**: task 1 was not learned in {at_chance} of its {runs} runs: its accuracy "
        f"when task 1 ended ({end:.1f} % on average) was within {CHANCE_SE:g} standard errors "
        f"of chance ({chance:.1f} %), so its GD and TTR measure the evaluation's noise around "
        "chance, not a gap; the checks of reported findings leave the group out. Train "
        "longer, or a larger network, before reading them."
    )
