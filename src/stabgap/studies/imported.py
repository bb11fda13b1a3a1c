"""Curves that stabgap did not train, as its run records: the curves file format, version 1.

Anyone's continual evaluation (a plain PyTorch loop, a framework's logger) becomes runs that
``stabgap metrics``, ``report``, ``--baseline``/``--compare`` and every figure read as
they read stabgap's own. The format is a long table, one row per evaluation of one task,
read from CSV, JSON lines (one object a row) or Parquet (docs/curves-format.md):

=================== ================================================================
column              what it holds
=================== ================================================================
``run``             the run's name, unique in the file (its folder's name)
``group``           the setting it is a seed of (the report's groups)
``seed``            its seed, an integer
``step``            training batches (updates) done before this evaluation, from 0
``training``        the task being trained at that step, 1, 2, ... (the switches)
``task``            the task evaluated, 1, 2, ...
``accuracy_pct``    its accuracy in % (0 to 100); or ``accuracy_fraction`` (0 to 1):
                    the column's name declares the unit, and nothing is guessed
``loss``            optional: the training loss at that step
``config.<name>``   optional: the source's own settings, recorded as imported
=================== ================================================================

A run's task k ends (in batches) at the first step at which task k+1 is trained, its
last task one batch after its last evaluation. Its config is the source's own (the
``config.`` columns), marked imported: it is not a stabgap config, whose unknown fields
would be errors. Every mistake is one line naming the row (counted from 1, the header not
counted) and the column; any other column is refused (a misspelt one would be lost). The
seeds of a group are averaged step by step, so they must share their evaluation grid (the
steps, the tasks, the switches). :func:`write_runs` checks every run against the folder
before it writes any, and writes all of them or none.
"""

from __future__ import annotations

import csv
import difflib
import json
import math
import shutil
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from stabgap.errors import StabgapError, did_you_mean
from stabgap.studies.outputs import is_run_dir
from stabgap.studies.records import RunRecord, read_info, read_run, run_dirs, write_run

FORMAT = "stabgap-curves/1"
REQUIRED = ("run", "group", "seed", "step", "training", "task")
UNITS = {"accuracy_pct": 100.0, "accuracy_fraction": 1.0}  # column -> the full scale
CONFIG = "config."
LOSS = "loss"
COLUMNS = (*REQUIRED, *UNITS, LOSS)  # with config.<name>: every column a file may have
GROUP_ORDER = "group_order"  # metadata: where the run's group first appears in its file
IMPORTED_AT = "imported_at"  # metadata: when its file was imported (UTC, ISO 8601)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The file's rows as dicts, by its suffix: .csv, .jsonl (or .ndjson), .parquet."""
    if not path.is_file():
        raise StabgapError(f"{path} is not a file: give a curves file (.csv, .jsonl, .parquet)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        # utf-8-sig: a spreadsheet's "CSV UTF-8" export begins with a byte-order mark, which
        # would otherwise become part of the first column's name
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.DictReader(f))
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    row = None
                if not isinstance(row, dict):
                    raise StabgapError(f"{path}: line {n} is not a JSON object")
                rows.append(row)
        return rows
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise StabgapError(
                "reading Parquet needs pyarrow: pip install 'stabgap[parquet]'"
            ) from None
        return pq.read_table(path).to_pylist()
    raise StabgapError(f"{path}: a curves file is .csv, .jsonl or .parquet, not '{suffix}'")


def _did_you_mean(column: str, choices: Sequence[str]) -> str:
    """ " (did you mean 'step'?)" for a misspelt column (case and outer spaces aside; a
    misspelt config. prefix too); "" if none."""
    prefix, dot, setting = column.partition(".")
    if dot and setting and difflib.get_close_matches(prefix + dot, [CONFIG]):
        return f" (did you mean '{CONFIG + setting}'?)"  # confg.lr: config.lr
    name = column.strip()
    if not name or sum(c.startswith(name.casefold()) for c in choices) > 1:
        return ""  # '' or 'accuracy' (which unit?): the list that follows has them all
    return did_you_mean(name, choices)


def records_from_rows(
    rows: Sequence[dict[str, Any]], source: str, extra: dict[str, Any] | None = None
) -> list[RunRecord]:
    """Every run of a curves table as a run record; a malformed row is a one-line error.

    Args:
        rows: the table's rows (:func:`read_rows`).
        source: where they came from, for messages and the records' metadata.
        extra: metadata every record gets besides.
    """
    if not rows:
        raise StabgapError(f"{source}: no rows")
    columns = list(dict.fromkeys(c for row in rows for c in row))  # every row's (JSON lines)
    if None in columns:  # csv's key for the cells beyond the header's
        n = next(n for n, row in enumerate(rows, start=1) if None in row)
        raise StabgapError(f"{source}: row {n} has more cells than the header has columns")
    missing = [c for c in REQUIRED if c not in columns]
    units = [c for c in UNITS if c in columns]
    unknown = [
        c for c in columns if c not in COLUMNS and not (str(c).startswith(CONFIG) and c != CONFIG)
    ]
    if unknown:  # before what is missing: a misspelt column is the likelier cause of both
        # what it may mean: a column the file lacks (either unit where it has none)
        absent = [c for c in (*REQUIRED, *(units or UNITS), LOSS) if c not in columns]
        raise StabgapError(
            f"{source}: unknown column {unknown[0]!r}{_did_you_mean(str(unknown[0]), absent)}: "
            f"a curves file has the columns {', '.join(REQUIRED)}, "
            f"{' or '.join(units or UNITS)}, optionally {LOSS} and {CONFIG}<name> for the "
            "source's settings; rename or remove it"
        )
    if missing:
        raise StabgapError(f"{source}: no column {missing[0]!r} (a curves file has {REQUIRED})")
    if len(units) != 1:
        raise StabgapError(
            f"{source}: give the accuracy in exactly one of the columns accuracy_pct (0-100) "
            f"or accuracy_fraction (0-1): its name declares the unit"
        )
    unit = units[0]
    runs: dict[str, list[tuple[int, dict]]] = {}
    for n, row in enumerate(rows, start=1):
        for column in (*REQUIRED, unit):
            if row.get(column) in (None, ""):
                raise StabgapError(
                    f"{source}: row {n}, column {column!r}: empty (every row gives "
                    f"{', '.join(REQUIRED)} and {unit})"
                )
        runs.setdefault(str(row["run"]), []).append((n, row))
    records = [_record(name, found, unit, source, extra or {}) for name, found in runs.items()]
    # the groups in the file's order: a report's default baseline is the file's first
    order = {g: i for i, g in enumerate(dict.fromkeys(r.experiment for r in records))}
    seeds: dict[tuple[str, int], str] = {}
    folders: dict[str, str] = {}
    for r, name in zip(records, runs, strict=True):
        r.metadata[GROUP_ORDER] = order[r.experiment]
        twin = seeds.setdefault((r.experiment, r.config["seed"]), name)
        if twin != name:
            raise StabgapError(
                f"{source}: row {runs[name][0][0]}, column 'seed': runs {twin!r} and {name!r} "
                f"are both seed {r.config['seed']} of group {r.experiment!r}: a group holds each "
                "seed once (its runs are averaged over seeds); give one of them another seed or "
                "another group"
            )
        other = folders.setdefault(r.name, name)
        if other != name:
            raise StabgapError(
                f"{source}: runs {other!r} and {name!r} have the same folder name {r.name!r}: "
                "rename one"
            )
        try:  # what the record's run.json will hold: refused now, not halfway through writing
            json.dumps([r.config, r.metadata], allow_nan=False)
        except (TypeError, ValueError) as e:
            raise StabgapError(
                f"{source}: run {name!r} holds a value a run record cannot keep ({e}): "
                "give its config columns numbers or text"
            ) from None
    firsts: dict[str, RunRecord] = {}
    for r in records:
        first = firsts.setdefault(r.experiment, r)
        if differs := grid_difference(first, r):
            raise StabgapError(
                f"{source}: group {r.experiment!r}: seed {first.config['seed']} "
                f"(run {first.metadata['run']!r}) and seed {r.config['seed']} "
                f"(run {r.metadata['run']!r}) {differs}; {SAME_GRID}"
            )
    return records


SAME_GRID = (
    "a group's seeds are averaged step by step, so evaluate every seed of a group at the same "
    "steps on the same tasks, or give them different group names"
)


def grid_difference(a: RunRecord, b: RunRecord) -> str:
    """How the evaluation grids of two runs differ, in words ("" where they do not)."""
    if a.acc.shape[1] != b.acc.shape[1]:
        return f"have {a.acc.shape[1]} and {b.acc.shape[1]} tasks"
    if not np.array_equal(a.eval_steps, b.eval_steps):
        ours, theirs = {int(s) for s in a.eval_steps}, {int(s) for s in b.eval_steps}
        step = min(ours ^ theirs)
        which = a if step in ours else b
        return (
            f"are evaluated at different steps ({len(ours)} and {len(theirs)} steps; step "
            f"{step} only in run {_run(which)!r})"
        )
    if tuple(a.ends) != tuple(b.ends):
        k = next(k for k, (x, y) in enumerate(zip(a.ends, b.ends, strict=True)) if x != y)
        return (
            f"switch tasks at different steps (task {k + 2} from step {a.ends[k]} and {b.ends[k]})"
        )
    return ""


def import_curves(path: str | Path) -> list[RunRecord]:
    """The runs of a curves file (see the module's docstring for the format)."""
    path = Path(path)
    now = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    return records_from_rows(read_rows(path), str(path), {"file": str(path), IMPORTED_AT: now})


def write_runs(records: Sequence[RunRecord], out: str | Path) -> tuple[int, int]:
    """Write `records` (:func:`import_curves`) into the study folder `out`, all or none.

    A run of the same name already there with the same content is left as it is; with
    other content (an earlier version of the file), or a run of one of the groups already
    there on another evaluation grid, is a one-line error, before anything is written. A
    write that fails midway (a full disk) removes the runs it wrote.

    Returns:
        How many runs were written, and how many were there already.
    """
    out = Path(out)
    fresh = []
    for r in records:
        there = out / r.name
        if not is_run_dir(there):
            fresh.append(r)
        elif differs := _content_difference(read_run(there), r):
            raise StabgapError(
                f"{there} holds another version of run {_run(r)!r} ({differs} not "
                f"as in {r.metadata.get('file', 'these curves')}): import into another "
                "folder, or remove the old runs first"
            )
    groups = {r.experiment: r for r in reversed(records)}  # each group's first run
    seeds = {(r.experiment, r.config["seed"]): r for r in records}
    names = {r.name for r in records}
    for path in run_dirs(out) if out.is_dir() else ():
        if path.parent == out and path.name in names:
            continue  # the same run (checked above)
        info = read_info(path)
        first = groups.get(info["experiment"])
        if first is None or not info["metadata"].get("imported"):
            continue
        twin = seeds.get((first.experiment, info["config"].get("seed")))
        if twin is not None:
            raise StabgapError(
                f"group {first.experiment!r}: run {path} already there and run {_run(twin)!r} "
                f"of {twin.metadata.get('file', 'these curves')} are both seed "
                f"{twin.config['seed']}: a group holds each seed once; give the new run another "
                "seed or group, or import into another folder"
            )
        if differs := grid_difference(read_run(path), first):
            raise StabgapError(
                f"group {first.experiment!r}: run {path} already there and run "
                f"{_run(first)!r} {differs}; {SAME_GRID}"
            )
    created = not out.exists()
    written: list[Path] = []
    try:
        for r in fresh:
            write_run(r, out)
            written.append(out / r.name)
    except BaseException as e:
        for path in written:
            shutil.rmtree(path, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        if isinstance(e, OSError):
            raise StabgapError(
                f"writing the runs into {out} failed ({e.strerror or e}): nothing was "
                "imported; free the disk or choose another --out, then import again"
            ) from None
        raise
    return len(fresh), len(records) - len(fresh)


def scale_doubt(records: Sequence[RunRecord]) -> str | None:
    """A warning naming each group whose every accuracy is at most 1 %: fractions of 1 in
    the accuracy_pct column, most likely (nothing is guessed: the runs are imported as the
    file says). By group, since a file merged from two sources can mix the units."""
    values: dict[str, list[np.ndarray]] = {}
    for r in records:
        values.setdefault(r.experiment, []).append(r.acc[np.isfinite(r.acc)])
    doubted = [g for g, parts in values.items() if np.concatenate(parts).max(initial=0.0) <= 1]
    if not doubted:
        return None
    which = "every group" if len(doubted) == len(values) else ", ".join(map(repr, doubted))
    return (
        f"every accuracy of {which} is at most 1 %: if they are fractions of 1, give them in "
        "the column accuracy_fraction (a file holds one unit) and import into a fresh folder; "
        "these runs were imported as percentages"
    )


def _run(record: RunRecord) -> str:
    """A run as its source names it (the curves file's run column; else the record's name:
    the reference's runs have none)."""
    return record.metadata.get("run", record.name)


def _content_difference(old: RunRecord, new: RunRecord) -> str:
    """What differs between a run in the folder and the same run imported again, in words
    ("" where nothing does; where the curves file lies is not content)."""

    def plain(value: Any) -> Any:
        return json.loads(json.dumps(value, default=str))

    def meta(r: RunRecord) -> dict[str, Any]:
        return plain(
            {
                k: v
                for k, v in r.metadata.items()
                # where and when the file was read, and in what order: not content
                if k not in ("file", "loss_at_evaluations", GROUP_ORDER, IMPORTED_AT)
            }
        )

    curves = (
        old.acc.shape == new.acc.shape
        and np.array_equal(old.acc, new.acc, equal_nan=True)
        and np.array_equal(old.eval_steps, new.eval_steps)
        and tuple(old.ends) == tuple(new.ends)
        and tuple(old.boundaries) == tuple(new.boundaries)
    )
    differs = [
        what
        for what, same in (
            ("group", old.experiment == new.experiment),
            ("curves", curves),
            (
                "loss",
                plain(old.metadata.get("loss_at_evaluations"))
                == plain(new.metadata.get("loss_at_evaluations")),
            ),
            ("config", plain(old.config) == plain(new.config)),
            ("metadata", meta(old) == meta(new)),
        )
        if not same
    ]
    return " and ".join(differs)


# --- one run ------------------------------------------------------------------------------------
def _record(name: str, rows: list[tuple[int, dict]], unit: str, source: str, extra) -> RunRecord:
    def fail(n: int, column: str, message: str) -> StabgapError:
        return StabgapError(f"{source}: row {n}, column {column!r}: {message}")

    def integer(n: int, row: dict, column: str, least: int | None = None) -> int:
        value = row.get(column)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise fail(n, column, f"{value!r} is not a whole number") from None
        if not number.is_integer() or (least is not None and number < least):
            whole = "a whole number" + ("" if least is None else f" >= {least}")
            raise fail(n, column, f"{value!r} is not {whole}")
        return int(number)

    first_n, first = rows[0]
    group, seed = str(first["group"]), integer(first_n, first, "seed")
    if group != group.strip():  # a report would print it so, and --baseline never match it
        raise fail(first_n, "group", f"{group!r} begins or ends with a space: remove it")
    points: dict[int, dict[int, float]] = {}  # step -> task -> accuracy (%)
    training: dict[int, int] = {}  # step -> task trained
    losses: dict[int, float] = {}
    # rows out of order first: what any other check would say of them follows from that
    last_step = -1
    for n, row in rows:
        step = integer(n, row, "step", 0)
        if step < last_step:
            raise fail(
                n, "step", f"step {step} comes after step {last_step}: sort each run's rows by step"
            )
        last_step = step
    last_trained = 1
    for n, row in rows:
        if str(row["group"]) != group or integer(n, row, "seed") != seed:
            raise fail(n, "group", f"run {name!r} changes its group or seed")
        step = integer(n, row, "step", 0)
        trained, task = integer(n, row, "training", 1), integer(n, row, "task", 1)
        if n == first_n and trained != 1:
            raise fail(n, "training", f"a run's first step trains task 1, not {trained}")
        if trained not in (last_trained, last_trained + 1):
            raise fail(
                n,
                "training",
                f"task {trained} follows task {last_trained}: a run trains its tasks in "
                "order, 1, 2, 3, ...",
            )
        last_trained = trained
        if training.setdefault(step, trained) != trained:
            raise fail(n, "training", f"step {step} says two tasks are being trained")
        value = row.get(unit)
        try:
            accuracy = float(value)
        except (TypeError, ValueError):
            raise fail(n, unit, f"{value!r} is not a number") from None
        if not 0.0 <= accuracy <= UNITS[unit]:  # (NaN fails too)
            raise fail(n, unit, f"{accuracy} is outside 0 to {UNITS[unit]:g} ({unit})")
        if task in points.setdefault(step, {}):
            raise fail(n, "task", f"run {name!r} has task {task} at step {step} twice")
        # in %, as stabgap's records hold it (a percentage kept to the bit)
        points[step][task] = accuracy if unit == "accuracy_pct" else 100.0 * accuracy
        if row.get(LOSS) not in (None, ""):
            try:
                loss = float(row[LOSS])
            except (TypeError, ValueError):
                raise fail(n, LOSS, f"{row[LOSS]!r} is not a number") from None
            if not math.isfinite(loss):
                raise fail(
                    n,
                    LOSS,
                    f"run {name!r} has loss {loss} at step {step}, not a finite number: leave "
                    "the cell empty where there is no loss, or remove the column",
                )
            if losses.setdefault(step, loss) != loss:
                raise fail(
                    n,
                    LOSS,
                    f"run {name!r} has loss {losses[step]} and {loss} at step {step}: a step "
                    "has one training loss; give the same on each of its rows, or on one",
                )
    steps = sorted(points)
    tasks = [training[s] for s in steps]
    n_tasks = max(max(tasks), max(max(p) for p in points.values()))
    for step in steps:
        seen = set(range(1, training[step] + 1))
        if not seen <= set(points[step]):
            lacking = min(seen - set(points[step]))
            n = next(n for n, row in rows if int(float(row["step"])) == step)
            raise fail(
                n, "task", f"run {name!r} lacks task {lacking} at step {step}, a task it has seen"
            )
    acc = np.full((len(steps), n_tasks), math.nan)
    for i, step in enumerate(steps):
        for task, value in points[step].items():
            acc[i, task - 1] = value
    ends = [next(s for s in steps if training[s] == k + 1) for k in range(1, max(tasks))]
    ends.append(steps[-1] + 1)
    eval_steps = np.array(steps)
    config: dict[str, Any] = {}  # the source's settings: one value a run, on any of its rows
    for n, row in rows:
        for column, cell in row.items():
            if not str(column).startswith(CONFIG) or cell in ("", None):
                continue
            value, key = _number(cell), column[len(CONFIG) :]
            if isinstance(value, float) and not math.isfinite(value):
                raise fail(n, column, f"{value} is not a finite number: leave the cell empty")
            if config.setdefault(key, value) != value:
                raise fail(
                    n,
                    column,
                    f"run {name!r} has {key} {config[key]!r} and {value!r}: a run has one "
                    "config; give the same on each of its rows, or on one",
                )
    return RunRecord(
        name=_folder_name(name),
        experiment=group,
        base=group,
        config={**config, "seed": seed},
        acc=acc,
        boundaries=tuple(int(np.searchsorted(eval_steps, e)) for e in ends),
        task_ends=tuple(ends),
        eval_steps=eval_steps,
        loss=None,
        metadata={
            "source": "imported",
            "imported": FORMAT,
            "run": name,
            "seed": seed,
            **({"loss_at_evaluations": [losses.get(s) for s in steps]} if losses else {}),
            **extra,
        },
    )


def _number(value: Any) -> Any:
    """A CSV cell of a config column as the number it spells, else as it is."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def _folder_name(name: str) -> str:
    """A run's name as a folder's: letters, digits and . _ = , - kept."""
    import re

    cleaned = re.sub(r"[^A-Za-z0-9._=,-]+", "_", name).strip("._") or "run"
    return cleaned


def rows_of(records: Iterable[RunRecord]) -> list[dict[str, Any]]:
    """Run records as a curves table (the inverse of :func:`records_from_rows`)."""
    rows = []
    for r in records:
        ends = list(r.ends)
        for i, step in enumerate(r.eval_steps):
            trained = 1 + sum(int(step) >= e for e in ends[:-1])
            for t in range(r.acc.shape[1]):
                if np.isfinite(r.acc[i, t]):
                    rows.append(
                        {
                            "run": r.name,
                            "group": r.experiment,
                            "seed": r.metadata.get("seed", r.config.get("seed")),
                            "step": int(step),
                            "training": trained,
                            "task": t + 1,
                            "accuracy_pct": float(r.acc[i, t]),
                        }
                    )
    return rows
