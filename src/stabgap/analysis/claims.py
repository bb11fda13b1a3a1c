"""Findings reported in the literature, checked against a study's runs: on this protocol
(Rotated MNIST with perfect replay) for the remedies, on the methods' own benchmarks for
the continual-learning methods.

Each claim is about one config field: two groups of a study whose settings differ in that
field alone (every other science field alike, the seed aside) are what it compares, as the
study that reported it did. A claim names its source, the field, the group it compares the
others with (the one with the field's lowest or highest value), and what it predicts:
per-run quantities that should go one way. A study with such groups gets one sentence per
compared group: each prediction's difference with its interval and adjusted p, and the
verdict: *agrees* (every prediction significant in its direction), *contradicts* (any
significant the other way), or *not shown* at that n. The tests join the report's family
(:class:`stabgap.statistics.comparison.Family`). Studies without such groups get nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stabgap.analysis.noise import gap_noise_floor
from stabgap.core.config import FIELDS, from_record
from stabgap.errors import StabgapError
from stabgap.metrics import (
    acc_before_switch,
    difference_span,
    drop_slope,
    gap_depth,
    recovery_span,
    time_to_recover_robust,
)
from stabgap.statistics.comparison import Comparison, Family, compare
from stabgap.studies.records import RunRecord


def _later_tasks_final(r: RunRecord) -> float:
    """The final accuracy on the tasks after the first, averaged (how well they were learnt)."""
    final = r.measure(acc_before_switch)[:, -1]
    return float(sum(final[1:]) / len(final[1:]))


@dataclass(frozen=True)
class Prediction:
    what: str  # as the sentence says it
    quantity: str  # the report's tests it is adjusted with (statistics.comparison.Family)
    value: Callable[[RunRecord], float]
    sign: int  # the direction of (claim's group − compared group) that the claim predicts
    measure: str = ""  # the comparisons table's name of the same measure, where it has one
    # the largest difference two runs' values can have (the interval is cut there)
    span: Callable[[Sequence[RunRecord]], float] = lambda runs: math.inf


@dataclass(frozen=True)
class Claim:
    """A finding as reported, and how a study's groups test it.

    Attributes:
        text: the finding, as its source states it.
        source: who reported it, and on what.
        field: the one config field the two groups differ in.
        against: which group of a family the others are compared with: the one whose
            `field` is "lowest" or "highest".
        predictions: what the compared groups should show against it.
        when: which families it is about (e.g. SGD's only; default: all).
        where: where it was reported, as the sentence says it.
    """

    text: str
    source: str
    field: str
    against: str
    predictions: tuple[Prediction, ...]
    when: Callable[[dict], bool] = lambda config: True
    where: str = "on this protocol"


GD_12 = Prediction(
    "GD_1,2 (p.p.)",
    "GD_1,2",
    lambda r: r.measure(gap_depth, 1, 2),
    -1,
    measure="GD_1,2",
    span=lambda runs: difference_span("gap_depth"),
)

CLAIMS = (
    Claim(
        "a higher momentum makes the drop after a switch steeper",
        "Obis, 2025, TU Delft bachelor thesis; SGD at a fixed learning rate of 0.1",
        "momentum",
        "lowest",
        (
            Prediction(
                "drop slope_1,2 (p.p. per batch; stabgap's measure)",
                "drop slope_1,2",
                lambda r: r.measure(drop_slope, 1, 2),
                -1,
            ),
        ),
        when=lambda c: c.get("optimizer") == "sgd",
    ),
    Claim(
        "a smaller constant learning rate gives a smaller immediate drop but a slower recovery",
        "Sobocińska, 2025, TU Delft bachelor thesis",
        "lr",
        "highest",
        (
            GD_12,
            Prediction(
                # recovered within 10 % of the dip's depth: a fixed tolerance would count a
                # smaller drop as a faster recovery (stabgap.analysis.recovery)
                "TTR_1,2 (% of the interval; back within 10 % of the dip's depth)",
                "TTR_1,2",
                lambda r: r.measure(time_to_recover_robust, 1, 2, tolerance=0.1, of_depth=True),
                +1,
                span=lambda runs: recovery_span(runs, 2),
            ),
        ),
    ),
    Claim(
        "layerwise proximal replay reduces the gap but hurts the later tasks",
        "no published source is known to us",
        "lpr_omega",
        "lowest",
        (
            GD_12,
            Prediction(
                "final accuracy on tasks 2.. (%)",
                "later tasks' final ACC",
                _later_tasks_final,
                -1,
                span=lambda runs: difference_span("avg_acc_final"),
            ),
        ),
    ),
    Claim(
        "the asymmetric cross-entropy of ER-ACE makes the incoming data disturb the old "
        "classes less at a switch than experience replay does",
        "Caccia et al., ICLR 2022",
        "er_ace",
        "lowest",
        (GD_12,),
        when=lambda c: c.get("replay") == "memory",
        where="for online class-incremental benchmarks",
    ),
    Claim(
        "gradient projection added to replay reduces the stability gap",
        "Hess, Tuytelaars and van de Ven, 2024, in some of their pre-registered experiments "
        "but not consistently",
        "agem",
        "lowest",
        (GD_12,),
        when=lambda c: c.get("replay") == "memory",
        where="for replay with A-GEM's or GEM's projection",
    ),
)


@dataclass(frozen=True)
class ClaimCheck:
    """One compared group tested against a claim: each prediction's comparison."""

    claim: Claim
    group: object  # stabgap.analysis.groups.Group
    against: object
    tests: tuple[tuple[Prediction, Comparison], ...]


def _setting(config: dict, without: str) -> str:
    """A group's science settings but `without` (and the seed): its family under a claim."""
    kept = {
        k: v
        for k, v in config.items()
        if k != without and (k not in FIELDS or FIELDS[k].metadata["science"])
    }
    return json.dumps(kept, sort_keys=True, default=str)


def claim_checks(groups: Sequence, labels: dict[str, str], n_tasks: int) -> list[ClaimCheck]:
    """Every (group, compared group) pair of a study that a claim is about, with its tests."""
    if n_tasks < 2:
        return []
    out = []
    for claim in CLAIMS:
        families: dict[tuple, list] = {}
        for g in groups:
            # an imported group's config is its own loop's, whatever its fields are named
            if g.runs and not g.imported and claim.when(g.config) and claim.field in g.config:
                key = (g.source, _setting(g.config, claim.field))
                families.setdefault(key, []).append(g)
        for members in families.values():
            if len(members) < 2:
                continue
            members = sorted(members, key=lambda g: float(g.config[claim.field]))
            against = members[0] if claim.against == "lowest" else members[-1]
            for g in members:
                if g is against or g.config[claim.field] == against.config[claim.field]:
                    continue
                tests = tuple((p, _test(p, against, g, labels)) for p in claim.predictions)
                out.append(ClaimCheck(claim, g, against, tests))
    return out


def _test(p: Prediction, against, group, labels: dict[str, str]) -> Comparison:
    a, b = _by_seed(against, p.value), _by_seed(group, p.value)
    censored = p.quantity.startswith("TTR")  # a seed that never recovered: beyond the interval
    return compare(
        a, b, labels[against.key], labels[group.key], metric=p.what, quantity=p.quantity,
        censored=censored, measure=p.measure, span=p.span(against.runs + group.runs),
    )  # fmt: skip


def _by_seed(group, value: Callable[[RunRecord], float]) -> dict:
    values = {r.config["seed"]: value(r) for r in group.runs}
    return {s: (None if math.isnan(v) else v) for s, v in values.items()}


def claim_sentence(check: ClaimCheck, family: Family, labels: dict[str, str]) -> str:
    """The check in one sentence, its tests adjusted over the report's `family`."""
    parts, signs = [], []
    for p, c in check.tests:
        c = family.adjusted(c)
        if not c.testable:
            undefined = ""
            if c.rank_test:
                undefined = f" ({c.never()})"
            elif c.n_undefined_a or c.n_undefined_b:
                undefined = (
                    f" over the seeds where it is defined ({c.n_b} of {c.n_b + c.n_undefined_b} "
                    f"and {c.n_a} of {c.n_a + c.n_undefined_a})"
                )
            diff = "undefined" if math.isnan(c.diff) else f"{c.diff:+.2f}"
            if c.rank_test:  # the recovered seeds' mean would be biased: none is given
                diff = "untested"
            parts.append(f"{p.what} {diff}{undefined} ({c.why_untestable()})")
            signs.append(None)
            continue
        signs.append(0 if not c.significant else (1 if c.direction * p.sign > 0 else -1))
        never = f" ({c.never()})" if c.rank_test else ""
        reach = ""  # what a test that does not show it could have shown at this n
        if not c.significant:
            reach = c.rank_reach() if c.rank_test else f" ({c.reach()} with 80 % power)"
        parts.append(f"{p.what} {c.interval_text()}{never}, adjusted p = {c.p:.2g}{reach}")
    if any(s == -1 for s in signs):
        word = "contradicts it"
    elif signs and all(s == 1 for s in signs):
        word = "agrees"
    elif any(s is None for s in signs):
        word = "cannot tell (a prediction could not be tested)"
    else:
        first = next(c for _, c in check.tests if c.testable)
        n_a, n_b = first.seeds()
        word = "shows it only in part" if 1 in signs else f"does not show it at n = {n_a} and {n_b}"
    claim = check.claim
    return (
        f"Reported {claim.where} ({claim.source}): {claim.text}. Ours, "
        f"**{labels[check.group.key]}** against "
        f"{labels[check.against.key]} (they differ in {claim.field} only): "
        + "; ".join(parts)
        + f". Our measurement {word}."
    )


# --- every method shows a gap (De Lange et al., ICLR 2023) ---------------------------------------
@dataclass(frozen=True)
class GapCheck:
    """A group's GD_1,2 against what evaluation noise alone gives its runs."""

    group: object
    subset: int  # test images per measurement
    comparison: Comparison  # the runs' GD_1,2 (B) against their noise floors (A)
    never: int = 0  # runs whose task 1 never came back to its level before the first switch


def gap_checks(groups: Sequence, labels: dict[str, str], n_tasks: int) -> list[GapCheck]:
    """Each group that replays from a bounded memory or uses a continual-learning method,
    tested for a gap beyond the noise floor (:func:`stabgap.analysis.noise.gap_noise_floor`)
    of its own runs: their accuracy before the switch, their subsets, their points.

    Groups evaluated on fixed subsets have no such floor (their points share images) and
    are not tested."""
    if n_tasks < 2:
        return []
    out = []
    for g in groups:
        if not g.runs or g.imported or g.config.get("eval_resample") != "fresh":
            continue
        try:
            config = from_record(g.config)
        except StabgapError:  # a plugin's config not loaded, or one this version refuses
            continue
        if config.replay != "memory" and not config.methods:
            continue
        m = config.task_eval_size(2, 10**9)  # a run's data is never smaller (check_fits)
        floors, gaps = {}, {}
        for r in g.runs:
            seed = r.config["seed"]
            before, points = _first_switch(r)
            gaps[seed] = _defined_or_none(r.measure(gap_depth, 1, 2))
            floors[seed] = None if math.isnan(before) else gap_noise_floor(before, m, points)
        label = labels[g.key]
        # a gap depth is at most 100 p.p. and a floor at least 0: no difference beyond ±100
        # (below -100 only where a floor exceeded an accuracy near 0: by a fraction of 1)
        c = compare(floors, gaps, "its noise floor", label, metric="GD_1,2 (p.p.)",
                    quantity="GD_1,2 beyond the noise floor", span=100.0)  # fmt: skip
        never = sum(math.isnan(r.measure(time_to_recover_robust, 1, 2)) for r in g.runs)
        out.append(GapCheck(g, m, c, never))
    return out


def _first_switch(r: RunRecord) -> tuple[float, int]:
    """Task 1's accuracy at the last point before the first switch, and how many points
    task 1 is measured at in the second task's interval."""
    steps, first, second = np.asarray(r.eval_steps), r.ends[0], r.ends[1]
    before = np.flatnonzero(steps < first)
    inside = np.flatnonzero((steps >= first) & (steps < second))
    measured = inside[np.isfinite(r.acc[inside, 0])]
    return (float(r.acc[before[-1], 0]) if before.size else math.nan), int(measured.size)


def _defined_or_none(x: float) -> float | None:
    return None if math.isnan(x) else x


def gap_sentence(check: GapCheck, family: Family, labels: dict[str, str]) -> str:
    """Whether the group's task-1 gap is deeper than noise alone would make it."""
    c = family.adjusted(check.comparison)
    head = (
        f"Reported for every method studied (De Lange et al., ICLR 2023): a stability gap. "
        f"Ours, **{labels[check.group.key]}**: GD_1,2 minus what evaluation noise alone "
        f"gives its runs (fresh subsets of {check.subset} images at each point): "
    )
    if not c.testable:
        return head + f"{c.diff:+.2f} p.p. ({c.why_untestable()})."
    if c.significant and c.diff > 0 and 2 * check.never > len(check.group.runs):
        word = (
            f"a drop beyond the noise, but task 1 did not come back to its level before the "
            f"switch in {check.never} of its {len(check.group.runs)} runs: the drop lasts "
            "(forgetting), more than a temporary gap"
        )
    elif c.significant and c.diff > 0:
        word = "a gap beyond the noise"
    elif c.significant:
        word = "shallower than noise alone would make it: no gap"
    else:
        word = f"not shown at n = {c.n_b} (could detect ≈ {c.detectable():.2f} p.p.)"
    return head + f"{c.interval_text(unit='p.p.')}, adjusted p = {c.p:.2g}: {word}."
