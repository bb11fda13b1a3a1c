"""What each group of a study costs beside the baseline: training FLOPs (counted by
:mod:`stabgap.cost.flops`) and training time per batch (measured in its runs), as ratios.

The measured ratio is of geometric means, with a 95 % interval from Welch's t on the
logarithms of the runs' times: times are positive and skewed (a slow spell of a shared
machine makes one run much slower, never much faster), which logs tame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from stabgap.core.config import from_record
from stabgap.core.methods import METHODS
from stabgap.core.remedies import REMEDIES
from stabgap.cost.flops import run_cost, training
from stabgap.errors import StabgapError
from stabgap.statistics.comparison import MIN_SEEDS
from stabgap.studies.records import RunRecord


def training_flops(config: dict, used: Sequence[str] = ()) -> float:
    """FLOPs of a run's training (its steps, remedies and methods; the evaluation and the
    analyses, which measure the run, left out), from its record's config.

    NaN where this process cannot count it: an imported run's config, or a run that trained
    with a remedy or method (`used`: its record's) that no loaded module defines. A plugin's
    fields in the config of a run that did not use it are left out: they cost nothing."""
    if set(used) - {*REMEDIES, *METHODS}:
        return math.nan
    try:
        costs = run_cost(from_record(config))
    except (StabgapError, KeyError, TypeError, ValueError):  # an imported run's config
        return math.nan
    return float(training(costs).flops)


def seconds_per_batch(record: RunRecord) -> float:
    """A run's measured training time per batch (its share of a stack's time)."""
    seconds = record.metadata.get("train_time_s")
    if not seconds or not len(record.loss):
        return math.nan
    return seconds / record.metadata.get("stacked_runs", 1) / len(record.loss)


def ratio_interval(times: Sequence[float], base: Sequence[float]) -> tuple[float, float, float]:
    """Ratio of geometric means of `times` to `base`, with its 95 % interval (NaN when
    either side has fewer runs than a test needs, :data:`MIN_SEEDS`: with two, Welch's
    degrees of freedom fall near 1 and the interval spans orders of magnitude).

    Example:
        >>> r, low, high = ratio_interval([2.0, 2.2, 1.8], [1.0, 1.1, 0.9])
        >>> round(r, 6), low < r < high
        (2.0, True)
    """
    a = np.log([t for t in times if t > 0])
    b = np.log([t for t in base if t > 0])
    if a.size == 0 or b.size == 0:
        return math.nan, math.nan, math.nan
    diff = a.mean() - b.mean()
    if min(a.size, b.size) < MIN_SEEDS:
        return math.exp(diff), math.nan, math.nan
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se = math.sqrt(va + vb)
    if se == 0:
        return math.exp(diff), math.exp(diff), math.exp(diff)
    dof = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = sps.t.ppf(0.975, dof) * se
    return math.exp(diff), math.exp(diff - half), math.exp(diff + half)


def _flops(group) -> float:
    """A group's training FLOPs; unknown for runs imported from another loop, whose config
    is their source's, not a network stabgap can count."""
    if group.imported or not group.runs:
        return math.nan
    meta = group.runs[0].metadata
    return training_flops(
        group.config, [*(meta.get("remedies") or ()), *(meta.get("methods") or ())]
    )


def cost_table(groups: Sequence, base, labels: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """One row per group: ms per training batch, and FLOPs and time as × the baseline's."""
    base_flops = _flops(base)
    base_times = [seconds_per_batch(r) for r in base.runs]
    header = ["group", "ms per batch", "training FLOPs (× baseline)", "time per batch (× baseline)"]
    rows = []
    for g in groups:
        times = [t for t in (seconds_per_batch(r) for r in g.runs) if math.isfinite(t) and t > 0]
        # the ratio's own statistic, so that the two columns agree
        ms = f"{1000 * math.exp(np.mean(np.log(times))):.2f}" if times else "n/a"
        flops = _flops(g) / base_flops
        ratio, low, high = ratio_interval(times, [t for t in base_times if math.isfinite(t)])
        measured = "n/a" if math.isnan(ratio) else f"{ratio:.2f}"
        if g is base:  # the ratios' denominator, where it has a time to be one
            measured = "1 (the baseline)" if times else "n/a"
        elif not math.isnan(low):
            measured += f" [{low:.2f}, {high:.2f}]"
        rows.append([labels[g.key], ms, "n/a" if math.isnan(flops) else f"{flops:.3f}", measured])
    return header, rows


# What a run's record says about how it was timed, beside its method: where the compared
# runs differ in one, their times differ for that reason too.
TIMED_BY = {
    "device_name": "device",
    "threads": "CPU threads",
    "stacked_runs": "runs stacked together",
    "cpu_matmul": "matmul library",
    "torch_version": "torch",
}
# A CPU run during which more threads wanted a core than there are cores (the median of
# its samples, `runnable` in its record, its own threads among them) took turns with other
# work, which slowed it: runs that fill the cores themselves (2 workers of 1 thread on 2
# cores) count as many as the cores, no more.


def timing_caveats(groups: Sequence, labels: dict[str, str]) -> str:
    """What the cost table's times cannot be compared for: the ways the groups' timed runs
    were run otherwise (each run's record says), and the groups with runs timed on a busy
    CPU; "" where none."""
    timed = [(g, r) for g in groups for r in g.runs if math.isfinite(seconds_per_batch(r))]
    out, differ = [], []
    for key, name in TIMED_BY.items():
        values = {r.metadata[key] for _, r in timed if key in r.metadata}
        if len(values) > 1:
            numbers = all(isinstance(v, int | float) for v in values)
            differ.append(
                f"{name} ({', '.join(map(str, sorted(values, key=None if numbers else str)))})"
            )
    if differ:
        out.append(
            "The timed runs were run under different conditions, which move their times beside "
            f"their methods: {'; '.join(differ)}."
        )
    busy = [
        (g, r)
        for g, r in timed
        if str(r.metadata.get("device", "")).startswith("cpu")
        and r.metadata.get("runnable", 0) > (r.metadata.get("cpus") or math.inf)
    ]
    if busy:
        names = ", ".join(dict.fromkeys(labels[g.key] for g, _ in busy))
        worst = max(r.metadata["runnable"] for _, r in busy)
        cores = sorted({r.metadata["cpus"] for _, r in busy})
        out.append(
            f"{len(busy)} of the {len(timed)} timed runs ({names}) trained while more threads "
            f"wanted a core than the machine has (up to {worst:g} on {cores[-1]} cores, their "
            "own among them): other work slowed them, so their times, and every ratio with "
            "them, say more of that work than of their methods; time them alone to compare."
        )
    return " ".join(out)


COST_NOTE = (
    "Training only: FLOPs leave out the evaluation and the analyses, which measure a run "
    "(time per batch leaves out the evaluation; the gradient anatomy, where on, runs inside "
    "the training step and is timed with it). FLOPs are counted from the network's shapes and "
    "each remedy's own count (`stabgap cost`); time per batch is measured in these runs "
    "(ms: the geometric mean over runs; × the baseline: the ratio of geometric means, with "
    f"its 95 % interval, unadjusted, where each side has at least {MIN_SEEDS} runs: a "
    "description of the runs' cost, not a verdict; one slow run moves both)."
)
