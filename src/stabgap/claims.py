"""Findings reported on this protocol about remedies, checked against a study's runs.

Each claim names the experiment whose groups it is about (every strength of it: ``lpr``
covers ``lpr-0.1``, ``lpr-1``, ...), the experiment it is compared with, and what it
predicts: per-run quantities that should go one way. A study that has both groups gets
one sentence per group: each prediction's difference with its 95 % interval and Welch's
p, and the verdict: *agrees* (every prediction significant in its direction), *contradicts*
(any significant the other way), or *not shown* (no significant difference). Studies
without those groups get nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from stabgap.metrics import acc_before_switch, drop_slope, gap_depth, recovery_slope
from stabgap.records import RunRecord
from stabgap.stats import compare


def _later_tasks_final(r: RunRecord) -> float:
    """The final accuracy on the tasks after the first, averaged (how well they were learnt)."""
    final = r.measure(acc_before_switch)[:, -1]
    return float(np.nanmean(final[1:]))


@dataclass(frozen=True)
class Prediction:
    what: str  # as the sentence says it
    value: Callable[[RunRecord], float]
    sign: int  # the direction of (claim's group − compared group) that the claim predicts


@dataclass(frozen=True)
class Claim:
    text: str
    experiment: str
    against: str
    predictions: tuple[Prediction, ...]


GD_12 = Prediction("GD_1,2 (p.p.)", lambda r: r.measure(gap_depth, 1, 2), -1)

CLAIMS = (
    Claim(
        "momentum makes the drop steeper",
        "sgd-momentum",
        "sgd",
        (
            Prediction(
                "drop slope_1,2 (p.p. per point)",
                lambda r: r.measure(drop_slope, 1, 2),
                -1,
            ),
        ),
    ),
    Claim(
        "a small learning rate after the switch gives a smaller drop but a slower recovery",
        "low-lr",
        "baseline",
        (
            GD_12,
            Prediction(
                "recovery slope_1,2 (p.p. per point)",
                lambda r: r.measure(recovery_slope, 1, 2),
                -1,
            ),
        ),
    ),
    Claim(
        "layerwise proximal replay reduces the gap but hurts the later tasks",
        "lpr",
        "baseline",
        (GD_12, Prediction("final accuracy on tasks 2.. (%)", _later_tasks_final, -1)),
    ),
)


def _of(groups: Sequence, experiment: str, exact: bool) -> list:
    return [
        g
        for g in groups
        if g.runs and (g.base == experiment or (not exact and g.base.startswith(experiment + "-")))
    ]


def check_claims(groups: Sequence, labels: dict[str, str], n_tasks: int) -> list[str]:
    """One sentence per group a claim is about, when the study has what it compares."""
    if n_tasks < 2:
        return []
    out = []
    for claim in CLAIMS:
        against = _of(groups, claim.against, exact=True)
        if len(against) != 1:
            continue
        for g in _of(groups, claim.experiment, exact=False):
            out.append(_verdict(claim, g, against[0], labels))
    return out


def _by_seed(group, value: Callable[[RunRecord], float]) -> dict:
    values = {r.config["seed"]: value(r) for r in group.runs}
    return {s: (None if math.isnan(v) else v) for s, v in values.items()}


def _verdict(claim: Claim, g, against, labels: dict[str, str]) -> str:
    parts, signs = [], []
    for p in claim.predictions:
        a, b = _by_seed(against, p.value), _by_seed(g, p.value)
        c = compare(a, b, labels[against.key], labels[g.key], metric=p.what)
        if not c.testable:
            parts.append(f"{p.what} {c.diff:+.2f} ({c.why_untestable()})")
            signs.append(None)
            continue
        signs.append(0 if not c.significant else (1 if c.diff * p.sign > 0 else -1))
        parts.append(
            f"{p.what} {c.diff:+.2f} [95 % CI {c.diff_ci95_low:+.2f} to "
            f"{c.diff_ci95_high:+.2f}], Welch p = {c.welch_p:.2g}"
        )
    if any(s == -1 for s in signs):
        word = "contradicts it"
    elif signs and all(s == 1 for s in signs):
        word = "agrees"
    elif any(s is None for s in signs):
        word = "cannot tell (a prediction could not be tested)"
    else:
        word = (
            "does not show it (" + ("only in part" if 1 in signs else "no significant change") + ")"
        )
    return (
        f"Reported on this protocol: {claim.text}. Ours, **{labels[g.key]}** against "
        f"{labels[against.key]}: " + "; ".join(parts) + f". Our measurement {word}."
    )
