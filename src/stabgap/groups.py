"""Groups of runs: the seeds of one setting, named by what sets them apart from the others.

A report compares groups. A group is every run of one experiment label (the preset's
experiment plus the grid values and overrides that were set on it) from one source (our
runs, or the reference implementation's imported runs: never averaged together). Its
label for tables and legends says only what differs between the groups of the report:
``λ=0.0001`` in a λ sweep, ``nd`` against ``baseline``, ``nd, lr=0.01`` when both vary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from stabgap.errors import StabgapError
from stabgap.plan import short
from stabgap.records import RunRecord

OURS = "stabgap"
# How a varied field reads in a label; the others by their own names.
SYMBOLS = {"decay_lambda": "λ", "hidden": "widths", "batch_size": "batch"}
REFERENCE_TAG = " [reference]"


@dataclass
class Group:
    """The runs of one setting (its seeds), with how to show it."""

    key: str  # unique: the experiment label, tagged when sources mix
    base: str  # the preset experiment
    varied: dict[str, Any]  # grid values and experiment-defining overrides
    source: str
    runs: list[RunRecord] = field(default_factory=list)  # the runs that did not diverge
    diverged: list[RunRecord] = field(default_factory=list)
    label: str = ""  # what differs from the other groups

    @property
    def config(self) -> dict[str, Any]:
        return (self.runs or self.diverged)[0].config


def source_of(record: RunRecord) -> str:
    return record.metadata.get("source", OURS)


def build_groups(records: Sequence[RunRecord]) -> list[Group]:
    """Every group of `records`, labelled, in a stable order (base name, then values)."""
    mixed = len({source_of(r) for r in records}) > 1
    groups: dict[str, Group] = {}
    for r in records:
        source = source_of(r)
        key = r.experiment + (REFERENCE_TAG if mixed and source != OURS else "")
        g = groups.setdefault(key, Group(key, r.base or r.experiment, dict(r.varied), source))
        (g.diverged if r.diverged else g.runs).append(r)
    ordered = sorted(groups.values(), key=lambda g: (g.base, _order(g.varied), g.source))
    for g, label in zip(ordered, _labels(ordered), strict=True):
        g.label = label
    return ordered


def _order(varied: dict[str, Any]) -> tuple:
    return tuple(
        (k, (0, v) if isinstance(v, int | float) else (1, str(v))) for k, v in varied.items()
    )


def _labels(groups: Sequence[Group]) -> list[str]:
    """Each group's label: what tells it apart from the others, and nothing more.

    What every group shares is said once, by :func:`common_settings`; a lone group is
    labelled with all its set values, since there is nothing to tell it apart from.
    """
    keys = list(dict.fromkeys(k for g in groups for k in g.varied))
    differing = [k for k in keys if len(groups) == 1 or _differs(groups, k)]

    def values(g: Group) -> str:
        return ", ".join(
            f"{SYMBOLS.get(k, k)}={short(g.varied[k])}" for k in differing if k in g.varied
        )

    same_base = len({g.base for g in groups}) == 1
    labels = []
    for g in groups:
        shown = values(g)
        label = (shown or g.base) if same_base else (f"{g.base}, {shown}" if shown else g.base)
        labels.append(label + (REFERENCE_TAG if g.key.endswith(REFERENCE_TAG) else ""))
    if len(set(labels)) < len(labels):  # what differs is not in the names: use the keys
        return [g.key for g in groups]
    return labels


def _differs(groups: Sequence[Group], key: str) -> bool:
    return len({short(g.varied.get(key)) for g in groups}) > 1


def common_settings(groups: Sequence[Group]) -> str:
    """The values set on every group alike (``widths=32,32``), said once; "" if none."""
    if len(groups) < 2:
        return ""
    keys = [
        k for k in dict.fromkeys(k for g in groups for k in g.varied) if not _differs(groups, k)
    ]
    return ", ".join(f"{SYMBOLS.get(k, k)}={short(groups[0].varied[k])}" for k in keys)


def find_group(groups: Sequence[Group], name: str, option: str) -> Group:
    """The group a user named by its key or its label, or a one-line error listing them."""
    for g in groups:
        if name in (g.key, g.label):
            return g
    names = ", ".join(g.key for g in groups)
    raise StabgapError(f"{option}: no group '{name}' in these runs; the groups are: {names}")


def file_name(key: str) -> str:
    """A group key as a file name: only letters, digits and . _ = , -"""
    return re.sub(r"[^A-Za-z0-9._=,-]+", "_", key).strip("_") or "group"
