"""Groups of runs: the seeds of one setting, named by what sets them apart from the others.

A report compares groups. A group is every run of one experiment label (the preset's
experiment plus the grid values and overrides that were set on it) from one source (our
runs, or the reference implementation's imported runs: never averaged together). Its
label for tables and legends says only what differs between the groups of the report:
``λ=0.0001`` in a λ sweep, ``nd`` against ``baseline``, ``nd, lr=0.01`` when both vary.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from stabgap.core.config import FIELDS, applies, help_text
from stabgap.errors import StabgapError
from stabgap.studies.imported import GROUP_ORDER, IMPORTED_AT
from stabgap.studies.plan import short
from stabgap.studies.presets import PRESETS
from stabgap.studies.records import RunRecord
from stabgap.studies.schema import STAMP_SCHEMA

OURS = "stabgap"
# How a varied field reads in a label; the others by their own names.
SYMBOLS = {"decay_lambda": "λ", "batch_size": "batch"}
# Where sources mix, each group's label says where its runs came from: the poster's
# reference code, or curves imported from any other loop (stabgap import-curves).
SOURCE_TAGS = {"reference implementation": " [reference]", "imported": " [imported]"}


def source_tag(source: str) -> str:
    """The tag a group of `source` carries beside stabgap's own groups."""
    return "" if source == OURS else SOURCE_TAGS.get(source, f" [{source}]")


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

    @property
    def imported(self) -> bool:
        """Whether its runs came from another loop (stabgap import-curves): their config is
        their source's, not a stabgap config."""
        return any(r.metadata.get("imported") for r in self.runs + self.diverged)


def source_of(record: RunRecord) -> str:
    return record.metadata.get("source", OURS)


def build_groups(records: Sequence[RunRecord]) -> list[Group]:
    """Every group of `records`, labelled, in a stable order (base name, then values).

    Runs of one experiment label whose science differs in a field the label does not
    name (two studies into one folder, one with eval_every 2), or whose names were stamped
    by another version of the stamp schema (:mod:`stabgap.studies.schema`), are separate groups,
    with that field added to what they vary.
    """
    mixed = len({source_of(r) for r in records}) > 1
    by_label: dict[tuple, dict[str, list]] = {}
    for r in records:
        source = source_of(r)
        key = r.experiment + (source_tag(source) if mixed else "")
        science = _science({**r.config, "stamp_schema": getattr(r, "stamp_schema", STAMP_SCHEMA)})
        by_label.setdefault((key, source), {}).setdefault(science, []).append(r)
    groups = []
    for (key, source), kinds in by_label.items():
        differing = _differing_fields([json.loads(k) for k in kinds])
        for kind, runs in kinds.items():
            config = json.loads(kind)
            extra = {f: config.get(f) for f in differing if _applies(config, f)}
            first = runs[0]
            g = Group(
                key + "".join(f"_{f}={short(v)}" for f, v in extra.items()),
                first.base or first.experiment,
                {**first.varied, **extra},
                source,
            )
            for r in runs:
                (g.diverged if r.diverged else g.runs).append(r)
            _one_run_a_seed(g)
            groups.append(g)
    ordered = sorted(groups, key=lambda g: (g.base, _order(g.varied), g.source))
    for g, label in zip(ordered, _labels(ordered), strict=True):
        g.label = label
    return ordered


def _one_run_a_seed(group: Group) -> None:
    """Refuse a group that holds a seed twice (runs of two folders merged by hand), naming
    both runs: its statistics pair and count runs by seed."""
    seen: dict[Any, RunRecord] = {}
    for r in group.runs + group.diverged:
        twin = seen.setdefault(r.config.get("seed"), r)
        if twin is not r:
            raise StabgapError(
                f"group {group.key!r} holds seed {r.config.get('seed')} twice: runs "
                f"{twin.path or twin.name} and {r.path or r.name}; move one of them out of the "
                "folder, or give it another experiment name"
            )


def same_settings(groups: Sequence[Group]) -> list[list[Group]]:
    """Groups of one source that ran the same settings under different names (a run
    reproduced under its own experiment name beside a study's): each such set, in order."""
    sets: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        if (g.runs or g.diverged) and not g.imported:
            sets.setdefault((g.source, _science(g.config)), []).append(g)
    return [same for same in sets.values() if len(same) > 1]


def _science(config: dict[str, Any]) -> str:
    """What makes runs one setting: their science fields, the seed left out."""
    science = {k: v for k, v in config.items() if k not in FIELDS or FIELDS[k].metadata["science"]}
    return json.dumps(science, sort_keys=True, default=str)


def _differing_fields(configs: list[dict[str, Any]]) -> list[str]:
    keys = sorted({k for c in configs for k in c})
    return [k for k in keys if len({json.dumps(c.get(k), default=str) for c in configs}) > 1]


def planned_groups(specs) -> list[Group]:
    """The groups a planned study will have (for checking a report's choices up front)."""
    from stabgap.core.config import to_dict

    runs = [
        SimpleNamespace(
            experiment=s.experiment,
            base=s.base,
            varied=s.varied,
            config=to_dict(s.config),
            metadata={},
            diverged=False,
        )
        for s in specs
    ]
    return build_groups(runs)


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
    unnamed = _unnamed_differences(groups, set(keys))

    def value(g: Group, k: str):
        # a field another group varies: this group's own value of it, from its config
        return g.varied[k] if k in g.varied else g.config.get(k) if k in FIELDS else None

    def values(g: Group, extra: dict[str, Any]) -> str:
        own = {k: value(g, k) for k in differing if _applies(g.config, k)}  # not a ViT's hidden
        shown = {**own, **extra}
        return ", ".join(
            f"{SYMBOLS.get(k, k)}={short(v)}" for k, v in shown.items() if v is not None
        )

    # the experiment's name, unless every group is the same experiment (then what differs
    # tells them apart) and there are several
    named = len({g.base for g in groups}) > 1 or len(groups) == 1
    labels = []
    for g, extra in zip(groups, unnamed, strict=True):
        shown = values(g, extra)
        label = (f"{g.base}, {shown}" if shown else g.base) if named else (shown or g.base)
        tag = source_tag(g.source)
        labels.append(label + (tag if tag and g.key.endswith(tag) else ""))
    if len(set(labels)) < len(labels):  # what differs is not in the names: use the keys
        return [g.key for g in groups]
    return labels


# What a run computes on: said wherever groups differ in it, whatever their names.
HEADLINE = ("dataset", "stream", "model")


def _unnamed_differences(groups: Sequence[Group], named: set[str]) -> list[dict[str, Any]]:
    """For each group, the settings that set it apart though no label would say them: the
    dataset, stream or network wherever groups differ in it, and any setting in which
    groups of one experiment name differ (two studies' baselines reported together, one
    of the ResNet and one of the ViT), each where it applies to the group's run. Imported
    groups, whose config is their source's, have none.
    """
    ours = [g for g in groups if not g.imported and (g.runs or g.diverged)]

    def differing(members: list[Group], candidates) -> list[str]:
        found = set(_differing_fields([g.config for g in members]))
        return [k for k in candidates if k in found]  # in the candidates' order

    science = [k for k in FIELDS if FIELDS[k].metadata["science"] and k not in named]
    said = {id(g): differing(ours, [k for k in HEADLINE if k in science]) for g in ours}
    for base in {g.base for g in ours}:
        same = [g for g in ours if g.base == base]
        for g in same:
            said[id(g)] += [k for k in differing(same, science) if k not in said[id(g)]]
    return [
        {k: g.config.get(k) for k in said.get(id(g), []) if _applies(g.config, k)} for g in groups
    ]


def _differs(groups: Sequence[Group], key: str) -> bool:
    return len({short(g.varied.get(key)) for g in groups}) > 1


def common_settings(groups: Sequence[Group]) -> str:
    """The values set on every group alike (``hidden=32,32``), said once; "" if none."""
    if len(groups) < 2:
        return ""
    keys = [
        k for k in dict.fromkeys(k for g in groups for k in g.varied) if not _differs(groups, k)
    ]
    return ", ".join(f"{SYMBOLS.get(k, k)}={short(groups[0].varied[k])}" for k in keys)


def find_group(groups: Sequence[Group], name: str, option: str) -> Group:
    """The group a user named by its label or its key, or a one-line error listing them."""
    for g in groups:
        if name in (g.key, g.label):
            return g
    names = "; ".join(f"'{g.label}'" for g in groups)
    # only a name that differs in case is offered: labels differ in their numbers, which a
    # likeness would confuse (λ=1 for λ=0)
    same = [g.label for g in groups if g.label.casefold() == name.casefold()]
    hint = f" (did you mean '{same[0]}'?)" if len(same) == 1 else ""
    raise StabgapError(f"{option}: no group '{name}' in these runs{hint}; the groups are: {names}")


# The presets' baseline experiments ("baseline"; the methods presets' ER with M = 200).
BASELINES = frozenset(p.baseline for p in PRESETS.values())


def default_baseline(groups: Sequence[Group]) -> tuple[Group, str]:
    """The baseline a report takes when none is named, and why: the preset's baseline
    experiment as the study ran it (its name adds only what every group has), else the
    first group."""
    with_runs = [g for g in groups if g.runs]
    common = {k for g in with_runs for k in g.varied if not _differs(with_runs, k)}

    def added(g: Group) -> list[str]:
        # a run's name adds each value that differs from its experiment's own: the plain
        # baseline's name adds only the study's common settings (a grid value equal to the
        # experiment's own is in its values, not in its name)
        return [k for k in g.varied if k not in common and f"_{k}=" in g.key]

    own = [g for g in with_runs if not g.imported]  # stabgap's (an imported name says nothing)
    baselines = [g for g in own if g.base in BASELINES]
    if baselines:
        # a grid over every group's settings leaves none plain: the one that changes fewest
        # of the preset's settings (a grid over dataset and memory: the preset's dataset)
        g = min(baselines, key=lambda g: len(added(g)))  # the first of the closest
        if not added(g):
            return g, "the preset's baseline; another with --baseline"
        changed = ", ".join(f"{k}={short(g.varied[k])}" for k in added(g))
        tied = sum(len(added(b)) == len(added(g)) for b in baselines) - 1
        first = f", the first of {tied + 1} as close" if tied else ""
        return g, (
            f"the preset's baseline as close to its own settings as this study runs it, with "
            f"{changed}{first}; another with --baseline"
        )
    advice = "as no group is the preset's baseline; choose with --baseline"
    if own:
        return own[0], f"the first group, {advice}"
    # imported curves: the first group of the first file imported, where a user puts the
    # control (runs imported before their files' places were recorded: by name)
    places = [_place_in_file(g) for g in with_runs]
    if None not in places:
        first = min(zip(places, with_runs, strict=True), key=lambda pair: pair[0])[1]
        # (not how many files: one that only added seeds to another's groups names none)
        return first, f"the first group of the first curves file imported, {advice}"
    return with_runs[0], f"the first group by name, {advice}"


def _place_in_file(group: Group) -> tuple[str, str, int] | None:
    """When an imported group's curves file was first imported, which file, and the group's
    place there (None where not recorded)."""
    metas = [r.metadata for r in group.runs + group.diverged]
    meta = metas[0]
    if meta.get("file") is None or meta.get(GROUP_ORDER) is None:
        return None
    when = min(str(m.get(IMPORTED_AT, "")) for m in metas)
    return when, str(meta["file"]), int(meta[GROUP_ORDER])


def choose(
    groups: Sequence[Group],
    baseline: str | None,
    compare: Sequence[str] | None,
    options: tuple[str, str] = ("--baseline", "--compare"),
) -> tuple[Group, list[Group]]:
    """The baseline group and the groups compared with it, as the user named them.

    Default: :func:`default_baseline`, against every other group. A group named twice, or
    compared with itself, is an error naming `options`.
    """
    with_runs = [g for g in groups if g.runs]
    base = find_group(groups, baseline, options[0]) if baseline else default_baseline(groups)[0]
    if compare is None:
        return base, [g for g in with_runs if g is not base]
    chosen = [find_group(groups, name, options[1]) for name in compare]
    if base in chosen:
        raise StabgapError(f"{options[1]}: '{base.label}' is the baseline group itself")
    if len(set(map(id, chosen))) < len(chosen):
        twice = next(g for g in chosen if chosen.count(g) > 1)
        raise StabgapError(f"{options[1]}: '{twice.label}' is named twice")
    return base, chosen


def split_names(texts: Sequence[str], groups: Sequence[Group]) -> list[str]:
    """Group names from --compare values: each a name, or comma-separated names (a label
    that itself holds a comma, 'nd, λ=0.0001', is taken whole)."""
    known = {n for g in groups for n in (g.key, g.label)}
    names: list[str] = []
    for text in texts:
        names += [text] if text in known else [t.strip() for t in text.split(",") if t.strip()]
    return names


# Greek letters of the labels, spelt out in file names (else "λ=0" would read "_=0")
_SPELT = {"λ": "lambda", "α": "alpha", "β": "beta", "γ": "gamma", "ρ": "rho"}


def file_name(key: str) -> str:
    """A group key as a file name: only letters, digits and . _ = , -

    >>> file_name("mlp32, dataset=mnist, λ=0")
    'mlp32,_dataset=mnist,_lambda=0'
    """
    for letter, name in _SPELT.items():
        key = key.replace(letter, name)
    return re.sub(r"[^A-Za-z0-9._=,-]+", "_", key).strip("_") or "group"


def _numeric_science_fields() -> list[str]:
    return [
        name
        for name, f in FIELDS.items()
        if f.metadata["science"]
        and isinstance(f.default, int | float)
        and not isinstance(f.default, bool)
    ]


def grid_sweeps(groups: Sequence[Group]) -> dict[str, dict[str, list[Group]]]:
    """Every numeric field the groups sweep, as lines: {field: {series: groups}}.

    A series is the groups that agree on every other science field (a grid's other
    values; the experiments of a preset's λ sweep are one series), sorted by the field's
    value, named by what tells it apart from the other series ("" when there is one); a
    series needs two values of the field. So a grid over a remedy's strength and the
    learning rate gives, for each of the two fields, one line per value of the other.
    """
    with_runs = [g for g in groups if g.runs]
    sweeps: dict[str, dict[str, list[Group]]] = {}
    for name in _numeric_science_fields():
        series: dict[str, list[Group]] = {}
        for g in with_runs:
            rest = {k: v for k, v in g.config.items() if k != name and k in FIELDS}
            rest = {k: v for k, v in rest.items() if FIELDS[k].metadata["science"]}
            key = json.dumps([g.source, rest], sort_keys=True, default=str)
            series.setdefault(key, []).append(g)
        lines = {k: v for k, v in series.items() if len({short(g.config.get(name)) for g in v}) > 1}
        if not lines:
            continue
        members = [g for line in lines.values() for g in line]
        differing = [
            k
            for k in dict.fromkeys(k for g in members for k in g.config)
            if k != name
            and k in FIELDS
            and FIELDS[k].metadata["science"]
            and len({short(g.config.get(k)) for g in members}) > 1
        ]
        parts = [
            [(k, line[0].config.get(k)) for k in differing if _applies(line[0].config, k)]
            for line in lines.values()  # (not a ViT's hidden widths)
        ]
        named = {}
        for line, said in zip(lines.values(), _told_apart(parts), strict=True):
            named[said] = sorted(line, key=lambda g: float(g.config.get(name, 0)))
        sweeps[name] = named
    return sweeps


def _told_apart(parts: list[list[tuple[str, Any]]]) -> list[str]:
    """Each line's name from its (field, value) pairs: without the fields at their default
    ("der_alpha=0.3", not "replay=none, der_alpha=0.3, er_ace=False") where every line
    keeps a field and the names stay distinct; else with every field."""

    def said(pairs) -> str:
        return ", ".join(f"{field_label(k)}={short(v)}" for k, v in pairs)

    chosen = [
        [(k, v) for k, v in pairs if k not in FIELDS or short(v) != short(FIELDS[k].default)]
        for pairs in parts
    ]
    names = [said(pairs) for pairs in chosen]
    if all(names) and len(set(names)) == len(names):
        return names
    return [said(pairs) for pairs in parts]


def _applies(config: dict[str, Any], name: str) -> bool:
    """Whether a run of this (recorded) config uses field `name`; True where that cannot be
    told (a plugin's network that is not loaded)."""
    try:
        return applies(SimpleNamespace(**config), name)
    except (KeyError, AttributeError, StabgapError):
        return True


def field_label(name: str) -> str:
    """A field as captions name it: its symbol (λ) or its own name."""
    return SYMBOLS.get(name, name)


def axis_label(name: str) -> str:
    """A field as an axis names it: the first clause of its help, and its name."""
    clause = re.split(r"[:;.,(]", help_text(name), maxsplit=1)[0].strip()
    return f"{clause} ({name})"
