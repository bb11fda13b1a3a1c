"""What a study runs: its spec (from TOML or the command line), its runs and their names.

A study is a preset's experiments × a grid of values × seeds. Every run is named
``<experiment>-seed<seed>-<stamp>``, the stamp being a hash of what makes the run what it
is (:func:`stamp`), so a study started again finds the runs it already has and runs only
the missing ones.

The same TOML serves ``stabgap run --config`` and ``stabgap sweep``::

    preset = "quick"
    experiments = ["baseline", "nd"]   # or "baseline,nd", or "all"
    seeds = [1, 2, 3]                  # or: n_seeds = 3 (the preset's seed sequence)
    batches_per_task = 200             # any config field: applied to every run
    [set]                              # the same, grouped
    hidden = [128, 128]
    [grid]                             # every combination is run
    decay_lambda = [0, 1e-5, 1e-4]
    # for `stabgap report`: the reference group and the groups compared with it
    baseline = "baseline"
    compare = ["nd"]

Every value is checked here, before anything runs; a mistake is one line that names the
key, what it must be and where it came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from stabgap.core.config import FIELDS, RunConfig, check_field, coerce, defaults, to_dict
from stabgap.core.registry import PLUGINS_ENV
from stabgap.errors import StabgapError, close_match, did_you_mean
from stabgap.studies.presets import DEFAULT_PRESET, Preset, get_preset, seed_sequence
from stabgap.studies.schema import STAMP_SCHEMA


def stamp(config: RunConfig) -> str:
    """A stable 10-hex-digit hash of the run's stamped fields that differ from the defaults.

    Only non-default values enter the hash, so a field added later with a default that
    keeps the old behaviour leaves every existing stamp (and run name) as it was; the
    defaults are pinned by the stamp schema (:mod:`stabgap.studies.schema`), whose version is
    hashed too. Where and how the run is computed (device, data folder) is not part of
    it: runs record it, and a study warns before it mixes them (:mod:`stabgap.studies.mixing`).

    Example:
        >>> stamp(RunConfig(seed=1)) == stamp(RunConfig(seed=1, device="cpu"))
        True
        >>> stamp(RunConfig(seed=1)) == stamp(RunConfig(seed=2))
        False
    """
    default = defaults()
    values = {
        name: value
        for name, value in to_dict(config).items()
        if FIELDS[name].metadata["stamped"] and value != default[name]
    }
    values["schema"] = STAMP_SCHEMA
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class RunSpec:
    """One run to do.

    Attributes:
        name: its directory name, ``<experiment>-seed<seed>-<stamp>``.
        experiment: its group's label: the preset experiment, then each value that the
            grid or an override set on it (``baseline_decay_lambda=0.0001``).
        config: the full resolved config.
        base: the preset's experiment it started from.
        varied: the values that the grid and the experiment-defining overrides set.
    """

    name: str
    experiment: str
    config: RunConfig
    base: str = ""
    varied: dict[str, Any] = field(default_factory=dict)


def spec_for(
    experiment: str, config: RunConfig, base: str = "", varied: dict | None = None
) -> RunSpec:
    name = f"{experiment}-seed{config.seed}-{stamp(config)}"
    return RunSpec(name, experiment, config, base or experiment, dict(varied or {}))


FIELD_ORDER = {name: i for i, name in enumerate(FIELDS)}

# An experiment's name starts its runs' folder and log file names, which a study folder
# copied to another system keeps: each of these is refused by Linux, macOS or Windows ("/"
# by all, the rest by Windows).
NOT_IN_NAMES = '/\\:*?"<>|'
# A run's folder is written as `.<name>.tmp-<pid>` first; with that, the longest name a file
# system takes (255 bytes on ext4, APFS and NTFS alike) leaves this much for the name.
MAX_RUN_NAME = 240


def name_problem(name: Any) -> str | None:
    """What keeps `name` from naming an experiment, and the fix ("its name ..."); None if
    nothing does. Spaces, "=" and any letter may stand in a name.

    Example:
        >>> name_problem("my exp 1") is None, name_problem("a/b").split(",")[0]
        (True, "its name holds '/'")
    """
    if not isinstance(name, str):
        return "its name is not a string: give a name in quotes"
    if not name:
        return "its name is empty: give it a name (its runs' folders start with it)"
    if name != name.strip():
        return "its name starts or ends with a space: remove the space"
    if name.startswith("."):  # "." and ".." too: a path, not a name
        return (
            "its name starts with '.', which would hide its runs' folders (stabgap reads no "
            "hidden folder as a run): start it with a letter or digit"
        )
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "its name holds a control character: rename it with printable characters only"
    if bad := "".join(c for c in NOT_IN_NAMES if c in name):
        return (
            f"its name holds {' and '.join(_quoted(c) for c in bad)}, which a folder name "
            "cannot hold on Linux, macOS or Windows (its runs' folders start with it): rename "
            f"it without any of {' '.join(NOT_IN_NAMES)}"
        )
    if "," in name:  # --experiments a,b reads two names
        return (
            "its name holds ',', which separates the names --experiments takes: rename it "
            "without a comma"
        )
    return None


def _quoted(c: str) -> str:
    """A character as a message shows it: in quotes, as typed (a backslash stays one); a
    control character escaped ('\\t'), which typed would not show."""
    return repr(c) if unicodedata.category(c) == "Cc" else f"'{c}'"


def check_name(name: Any, where: str | None = None) -> None:
    """Refuse a name that cannot start its runs' folder names: one line, with the fix.

    Args:
        where: how the message names the experiment (default: ``experiment 'NAME'``).
    """
    if problem := name_problem(name):
        raise StabgapError(f"{where or f'experiment {name!r}'}: {problem}")


def toml_key(name: str) -> str:
    """`name` as a TOML table's key: bare where TOML allows, else quoted."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)


def plan_runs(
    preset: Preset,
    experiments: Sequence[str],
    seeds: Sequence[int],
    overrides: dict[str, Any] | None = None,
    grid: dict[str, Sequence[Any]] | None = None,
) -> list[RunSpec]:
    """Every experiment × grid point × seed, as specs; all configs validated up front.

    An experiment's label says what it really runs: every override of a science field
    (what the report compares; not the device, the data folder or the seed) that changes
    this experiment's value is added to its name, as grid values are, so that
    ``--experiments baseline --ema-decay 0.9`` or ``--stream split`` is not reported as the
    baseline. A grid value equal to the experiment's own is not named: a grid over ``lr``
    around the preset's rate has the plain ``baseline`` among its groups. The fields are
    named in the config's order, whatever order they were given in. Where or how a run
    computes (the device, the data folder: no part of its stamp) is not named, from the
    grid either.

    Every name is checked first (:func:`check_name`), and every label: it starts the runs'
    folder names, and one label is one experiment's.
    """
    overrides, grid = dict(overrides or {}), dict(grid or {})
    for experiment in experiments:  # before any config is built
        check_name(experiment)
    for key, values in grid.items():
        # unstamped, its values would make the same runs, which one label cannot tell apart
        if key in FIELDS and not FIELDS[key].metadata["stamped"] and len(values) > 1:
            raise StabgapError(
                f"[grid] {key}: where or how a run computes is no part of what it computes, so "
                f"its {len(values)} values would make the same runs: give {key} one value, "
                "in [set] or on the command line"
            )
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    specs, seen, labels, owners = [], set(), {}, {}
    for experiment in experiments:

        def config(
            values: dict[str, Any], experiment: str = experiment, point: dict | None = None
        ) -> RunConfig:
            try:
                return preset.config(experiment, values)
            except StabgapError as e:  # which experiment's run it is, for a defined one
                # a study-wide value that a network of the file's own experiments does not use
                hint = _hint(e, overrides) if experiment in preset.kept else str(e)
                if not (point and len(points) > 1):
                    raise StabgapError(f"experiment {experiment}: {hint}") from None
                at = ", ".join(f"{k}={short(v)}" for k, v in point.items())  # which combination
                raise StabgapError(
                    f"experiment {experiment}, grid point {at}: {hint}; a grid runs every "
                    "combination of its values: give runs that go together [experiments.NAME] "
                    "tables of their own"
                ) from None

        own = to_dict(config({}))
        for point in points:
            # Resolved with the grid's values: the overrides alone may be no valid run (a
            # shorter task than the preset's evaluation window, which the grid lowers).
            resolved = to_dict(config({**overrides, **point}, point=point))
            changed = {
                k: v
                for k, v in resolved.items()
                if k in overrides and FIELDS[k].metadata["science"] and v != own[k]
            }
            varied = {
                **changed,
                **{k: v for k, v in point.items() if FIELDS[k].metadata["stamped"]},
            }
            # a grid value that is the experiment's own changes nothing: not in its name
            # in the config's own field order, however the overrides and the grid were
            # given: one config, one label (a sweep's and a `stabgap run`'s alike)
            named = sorted((k for k in varied if resolved[k] != own[k]), key=FIELD_ORDER.get)
            label = experiment + "".join(f"_{k}={short(varied[k])}" for k in named)
            _check_label(label, experiment, owners.setdefault(label, experiment))
            for seed in seeds:
                run = config({**overrides, **point, "seed": seed})
                spec = spec_for(label, run, experiment, varied)
                same = labels.setdefault(stamp(run), label)
                if same != label:
                    raise StabgapError(
                        f"{same} and {label} are the same runs: what tells the experiments "
                        "apart is set by the grid or an override; drop one of them"
                    )
                if len(spec.name.encode()) > MAX_RUN_NAME:
                    raise StabgapError(
                        f"experiment {experiment!r}: its runs' folder names would be "
                        f"{len(spec.name.encode())} bytes long, more than the {MAX_RUN_NAME} "
                        "a file system takes: give it a shorter name (or vary fewer fields in "
                        "its grid and overrides)"
                    )
                if spec.name not in seen:
                    seen.add(spec.name)
                    specs.append(spec)
    return specs


def _check_label(label: str, experiment: str, owner: str) -> None:
    """Refuse a label that another experiment's runs have (the report would pool two
    experiments in one group), or that a value set on the experiment makes no folder name."""
    if owner != experiment:
        raise StabgapError(
            f"experiments {owner!r} and {experiment!r} both make runs labelled {label!r} (a "
            "label is the experiment's name, then the values its grid and overrides set): "
            "rename one of them"
        )
    suffix = label[len(experiment) :]
    bad = sorted({c for c in suffix if c in NOT_IN_NAMES or unicodedata.category(c) == "Cc"})
    if bad:
        raise StabgapError(
            f"experiment {experiment!r}: a value set on it puts {' and '.join(map(_quoted, bad))} "
            f"in its runs' folder names ({label!r}), which a folder name cannot hold on Linux, "
            "macOS or Windows: give that value without them"
        )


def _hint(error: StabgapError, overrides: dict[str, Any]) -> str:
    """`error`'s message; where it refuses a study-wide value that this (defined)
    experiment's network does not use, the fix is to set it where it applies."""
    message = str(error)
    for name in overrides:
        message = message.replace(
            f"(leave {name} at its default)",
            f"(set {name} for the experiments that use it, in their own tables, not for the "
            "whole study)",
        )
    return message


def short(value: Any) -> str:
    """A value as it reads in a run's label: 1e-05, 1024,1024, none.

    Example:
        >>> short(1e-4), short([128, 128]), short("none"), short(0.0)
        ('0.0001', '128,128', 'none', '0')
    """
    if isinstance(value, list | tuple):
        return ",".join(map(short, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


# --- the study spec ------------------------------------------------------------------------
@dataclass(frozen=True)
class StudySpec:
    """A study: a preset's experiments × a grid over config fields × seeds.

    ``baseline`` and ``compare`` are only read by the report: the group the others are
    compared with, and which groups to compare (default: every other one).
    """

    preset: str
    experiments: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: dict[str, Any]
    grid: dict[str, list[Any]]
    baseline: str | None = None
    compare: tuple[str, ...] = ()
    source: str = "the study spec"  # where it came from, for messages
    # experiments the study file names and defines itself ([experiments.NAME]): their fields
    defined: dict[str, dict[str, Any]] = field(default_factory=dict)
    # which of those fields each table set itself (not from the experiment its `from` names)
    kept: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def preset_with_defined(self) -> Preset:
        """The preset, with the study's own experiments beside its own."""
        return with_defined(get_preset(self.preset), self.defined, self.kept)

    def plan(self) -> list[RunSpec]:
        """Every run of the study; a value that makes an invalid config is one line that
        names where it came from."""
        try:
            return plan_runs(
                self.preset_with_defined(),
                self.experiments,
                self.seeds,
                self.overrides,
                self.grid,
            )
        except StabgapError as e:
            raise StabgapError(f"{self.source}: {e}") from None


# A study file's keys: the spec's fields as a file writes them (its overrides as [set]), and
# n_seeds (its seeds as the first n of the preset's sequence).
STUDY_KEYS = (
    *(
        {"overrides": "set"}.get(f.name, f.name)
        for f in fields(StudySpec)
        if f.name not in ("source", "defined", "kept")  # (the experiments' table form)
    ),
    "n_seeds",
)


def study_spec(
    values: dict[str, Any],
    source: str = "the study spec",
    base_dir: Path | None = None,
    picked: str | Sequence[str] | None = None,
) -> StudySpec:
    """Check a study's keys and values; any mistake is one line naming `source`.

    Args:
        values: the TOML's table (or the same built from the command line); config
            fields may stand at the top level or under ``[set]``.
        source: where the values came from, for messages (a file name, "the command line").
        base_dir: the folder a relative ``data_dir`` is read from (a TOML's own folder).
        picked: the experiments to run (``--experiments``: a list, or names joined by
            commas), in place of the values' own list; where the file's
            ``[experiments.NAME]`` tables define experiments, any of those and the preset's.
    """

    def fail(message: str) -> StabgapError:
        return StabgapError(f"{source}: {message}")

    values = dict(values)
    overrides: dict[str, Any] = {}
    for key in [k for k in values if k not in STUDY_KEYS]:
        overrides[_field_name(key, source)] = values.pop(key)
    extra = values.get("set", {})
    if not isinstance(extra, dict):
        raise fail("[set] must be a table of config fields")
    for key, value in extra.items():
        overrides[_field_name(key, source, "set")] = value

    preset_name = values.get("preset", DEFAULT_PRESET)
    if not isinstance(preset_name, str):
        raise fail(f"preset must be a name (a string), got {preset_name!r}")
    try:
        preset = get_preset(preset_name)
    except StabgapError as e:
        raise fail(str(e)) from None
    defined: dict[str, dict[str, Any]] = {}
    kept: dict[str, tuple[str, ...]] = {}
    if isinstance(values.get("experiments"), dict):  # [experiments.NAME] tables
        defined, kept = _defined_experiments(values["experiments"], preset, source)
        values["experiments"] = list(values["experiments"])
        preset = with_defined(preset, defined, kept)
    if picked:
        values["experiments"] = picked
    experiments = _names(values.get("experiments"), "experiments", fail)
    if experiments is None:
        experiments = list(preset.default_experiments)
    elif experiments == ["all"]:
        experiments = list(preset.experiments)
    for name in experiments:
        if name not in preset.experiments:  # an error with the preset's choices
            try:
                preset.config(name)
            except StabgapError as e:
                raise fail(str(e)) from None

    grid = values.get("grid", {})
    if not isinstance(grid, dict):
        raise fail("[grid] must be a table of lists of values")
    grid = {_field_name(k, source, "grid"): v for k, v in grid.items()}
    for key, options in grid.items():
        if not isinstance(options, list) or not options:
            raise fail(f"every [grid] entry must be a non-empty list of values; '{key}' is not")
        if key == "seed":
            raise fail("seeds are not a grid field: give seeds = [...] or n_seeds = N")
        if key in overrides:
            raise fail(f"'{key}' is given a fixed value and a [grid] of values: give one")
        try:
            coerced = [coerce(key, option) for option in options]  # a wrong type, before a run
        except StabgapError as e:
            raise fail(f"[grid] {e}") from None
        if len(set(map(repr, coerced))) < len(coerced):
            raise fail(f"[grid] values of '{key}' repeat: {options!r}")
    seeds = _seeds(values, overrides, fail)

    if base_dir is not None:
        _resolve_data_dirs(overrides, grid, base_dir)
    baseline = values.get("baseline")
    if baseline is not None and not isinstance(baseline, str):
        raise fail(f"baseline must be a group name (a string), got {baseline!r}")
    compare = _names(values.get("compare"), "compare", fail) or []
    return StudySpec(
        preset.name,
        tuple(experiments),
        tuple(seeds),
        overrides,
        grid,
        baseline,
        tuple(compare),
        source,
        defined,
        kept,
    )


def with_defined(
    preset: Preset, defined: dict[str, dict[str, Any]], kept: dict[str, tuple[str, ...]]
) -> Preset:
    """`preset` with a study file's own experiments beside its own; the fields their tables
    set (`kept`) are refused where they do not apply, never put back to their defaults."""
    if not defined:
        return preset
    experiments = {**preset.experiments, **defined}
    return dataclasses.replace(preset, experiments=experiments, kept={**preset.kept, **kept})


def _defined_experiments(
    tables: dict[str, Any], preset: Preset, source: str
) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, ...]]]:
    """The experiments a study file defines, each ``[experiments.NAME]`` a table of config
    fields set on the experiment named by its ``from`` (default: the preset's base, that is
    its baseline); an empty table names one of the preset's own experiments. Returns each
    one's fields, and those its table set itself."""
    defined, kept = {}, {}
    for name, table in tables.items():
        where = f"[experiments.{toml_key(name)}]"
        check_name(name, f"{source}: {where}")  # the table's own name, before its fields
        if not isinstance(table, dict):
            raise StabgapError(f"{source}: {where} must be a table of config fields")
        table = dict(table)
        start = table.pop("from", None)
        if name in preset.experiments:
            if table or start is not None:
                raise StabgapError(
                    f"{source}: {where} redefines preset {preset.name}'s own experiment "
                    f"'{name}': give yours a name of its own (from = '{name}' starts it there)"
                )
            continue
        if start is not None and start not in preset.experiments:
            raise StabgapError(
                f"{source}: {where} from = {start!r}{did_you_mean(start, preset.experiments)}: "
                f"an experiment starts from one of preset {preset.name}'s own: "
                f"{', '.join(preset.experiments)}"
            )
        fields_ = {
            _field_name(k, source, f"experiments.{toml_key(name)}"): v for k, v in table.items()
        }
        try:
            fields_ = {k: coerce(k, v) for k, v in fields_.items()}
        except StabgapError as e:
            raise StabgapError(f"{source}: {where} {e}") from None
        defined[name] = {**(preset.experiments[start] if start else {}), **fields_}
        kept[name] = tuple(fields_)
    return defined, kept


def _field_name(key: str, source: str, table: str = "") -> str:
    """A config field's name, or a one-line error that also knows the study keys.

    Args:
        table: the TOML table the key stands in ("grid", "set"), for messages.
    """
    try:
        return check_field(key)
    except StabgapError:
        where = f" in [{table}]" if table else ""
        if table and key in STUDY_KEYS:  # written after a table's header, so inside it
            raise StabgapError(
                f"{source}: '{key}' stands{where}, where only config fields go: move it above "
                f"the file's first [table]"
            ) from None
        keys = [] if table else list(STUDY_KEYS)  # a table holds config fields only
        close = close_match(key.replace("-", "_"), [*FIELDS, *keys])
        hint = (
            f"did you mean '{close}'? A plugin's field needs its module named in ${PLUGINS_ENV}"
            if close
            else f"see `stabgap run --help`; a plugin's field needs its module in ${PLUGINS_ENV}"
        )
        what = (
            f"neither a config field nor one of {', '.join(STUDY_KEYS)}"
            if not table
            else "not a config field"
            + (" (nor 'from', the experiment it starts from)" if table.startswith("exp") else "")
        )
        raise StabgapError(f"{source}: unknown key '{key}'{where}: {what} ({hint})") from None


def _names(value: Any, key: str, fail) -> list[str] | None:
    """A list of names from a TOML list or a comma-separated string."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise fail(f"{key} must be a list of names (or one comma-separated string), got {value!r}")
    if twice := sorted({v for v in value if value.count(v) > 1}):
        named = " and ".join(repr(v) for v in twice)
        raise fail(f"{key}: {named} {'is' if len(twice) == 1 else 'are'} named twice")
    return value


def _seeds(values: dict[str, Any], overrides: dict[str, Any], fail) -> list[int]:
    """The seeds asked for: `seeds`, `n_seeds` or a single `seed`, never two of them."""
    given = [k for k in ("seeds", "n_seeds") if k in values] + (
        ["seed"] if "seed" in overrides else []
    )
    if len(given) > 1:
        raise fail(f"give one of seeds, n_seeds and seed, not {' and '.join(given)}")
    if "seed" in overrides:
        return [coerce("seed", overrides.pop("seed"))]
    if "seeds" in values:
        seeds = values["seeds"]
        if (
            not isinstance(seeds, list)
            or not seeds
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
        ):
            raise fail(f"seeds must be a non-empty list of integers, got {seeds!r}")
        if len(set(seeds)) != len(seeds):
            raise fail(f"seeds must not repeat, got {seeds!r}")
        return seeds
    preset = get_preset(values.get("preset", DEFAULT_PRESET))
    n = values.get("n_seeds", preset.n_seeds)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise fail(f"n_seeds must be a whole number >= 1, got {n!r}")
    return list(seed_sequence(n))


def _resolve_data_dirs(overrides: dict, grid: dict, base_dir: Path) -> None:
    """A relative data_dir in a TOML file is read from that file's folder."""

    def resolved(value: Any) -> Any:
        if isinstance(value, str) and value and not os.path.isabs(os.path.expanduser(value)):
            return str((base_dir / value).resolve())
        return value

    if "data_dir" in overrides:
        overrides["data_dir"] = resolved(overrides["data_dir"])
    if "data_dir" in grid:
        grid["data_dir"] = [resolved(v) for v in grid["data_dir"]]


def load_toml(path: Path) -> dict[str, Any]:
    """The table of a TOML file, or a one-line error."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise StabgapError(f"config file {path} not found") from None
    except IsADirectoryError:
        raise StabgapError(f"config file {path} is a folder: give a .toml file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise StabgapError(f"config file {path} is not valid TOML: {e}") from None
    except OSError as e:
        raise StabgapError(f"cannot read config file {path}: {e.strerror or e}") from None


def load_study(path: Path) -> StudySpec:
    """A study spec from a TOML file (relative paths in it are read from its folder)."""
    return study_spec(load_toml(path), source=str(path), base_dir=path.resolve().parent)


# --- the labels of runs written under older names -----------------------------------------
def _suffix(name: str) -> str | None:
    """``-seed<seed>-<stamp>`` of a run name: what identifies the run, whatever its label
    (None for a name of another kind: a run imported from elsewhere keeps its own)."""
    at = name.rfind("-seed")
    return None if at < 0 else name[at:]


def relabelled(records: list, folder: Path) -> list:
    """`records` of a study folder, each labelled as the folder's recorded studies
    (``study.json``) plan it today: a run found under an older label (one that did not yet
    name every field it changes) reads under the label its study now gives it. Studies
    that cannot be planned any more (a plugin's field, a preset gone) leave theirs as they
    are."""
    import dataclasses

    from stabgap.studies.outputs import STUDY_FILE

    try:
        studies = json.loads((folder / STUDY_FILE).read_text())["studies"]
    except (OSError, ValueError, KeyError, TypeError):
        return records
    planned = {}
    for entry in studies:
        try:
            spec = StudySpec(
                **{
                    **entry,
                    "experiments": tuple(entry["experiments"]),
                    "seeds": tuple(entry["seeds"]),
                    "compare": tuple(entry.get("compare") or ()),
                }
            )
            planned.update({_suffix(s.name): s for s in spec.plan()})
        except (StabgapError, TypeError, KeyError, ValueError):
            continue
    out = []
    for r in records:
        s = planned.get(_suffix(r.name))
        if s is not None and s.experiment != r.experiment:
            r = dataclasses.replace(r, experiment=s.experiment, base=s.base, varied=s.varied)
        out.append(r)
    return out
