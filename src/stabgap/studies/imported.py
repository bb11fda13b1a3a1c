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
counted) and the column.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stabgap.errors import StabgapError
from stabgap.studies.records import RunRecord

FORMAT = "stabgap-curves/1"
REQUIRED = ("run", "group", "seed", "step", "training", "task")
UNITS = {"accuracy_pct": 100.0, "accuracy_fraction": 1.0}  # column -> the full scale
CONFIG = "config."


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The file's rows as dicts, by its suffix: .csv, .jsonl (or .ndjson), .parquet."""
    if not path.is_file():
        raise StabgapError(f"{path} is not a file: give a curves file (.csv, .jsonl, .parquet)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if suffix in (".jsonl", ".ndjson"):
        rows = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise StabgapError(f"{path}: line {n} is not a JSON object") from None
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
    columns = set(rows[0])
    missing = [c for c in REQUIRED if c not in columns]
    units = [c for c in UNITS if c in columns]
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
        runs.setdefault(str(row["run"]), []).append((n, row))
    records = [_record(name, found, unit, source, extra or {}) for name, found in runs.items()]
    folders: dict[str, str] = {}
    for r, name in zip(records, runs, strict=True):
        other = folders.setdefault(r.name, name)
        if other != name:
            raise StabgapError(
                f"{source}: runs {other!r} and {name!r} have the same folder name {r.name!r}: "
                "rename one"
            )
    return records


def import_curves(path: str | Path) -> list[RunRecord]:
    """The runs of a curves file (see the module's docstring for the format)."""
    path = Path(path)
    return records_from_rows(read_rows(path), str(path), {"file": str(path)})


# --- one run ------------------------------------------------------------------------------------
def _record(name: str, rows: list[tuple[int, dict]], unit: str, source: str, extra) -> RunRecord:
    def fail(n: int, column: str, message: str) -> StabgapError:
        return StabgapError(f"{source}: row {n}, column {column!r}: {message}")

    def integer(n: int, row: dict, column: str, least: int) -> int:
        value = row.get(column)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise fail(n, column, f"{value!r} is not a whole number") from None
        if not number.is_integer() or number < least:
            raise fail(n, column, f"{value!r} is not a whole number >= {least}")
        return int(number)

    first_n, first = rows[0]
    group, seed = str(first["group"]), integer(first_n, first, "seed", -(2**63))
    points: dict[int, dict[int, float]] = {}  # step -> task -> accuracy (%)
    training: dict[int, int] = {}  # step -> task trained
    losses: dict[int, float] = {}
    last_step, last_trained = -1, 1
    for n, row in rows:
        if str(row["group"]) != group or integer(n, row, "seed", -(2**63)) != seed:
            raise fail(n, "group", f"run {name!r} changes its group or seed")
        step = integer(n, row, "step", 0)
        if step < last_step:
            raise fail(
                n, "step", f"step {step} comes after step {last_step}: sort each run's rows by step"
            )
        last_step = step
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
        if row.get("loss") not in (None, ""):
            try:
                losses.setdefault(step, float(row["loss"]))
            except (TypeError, ValueError):
                raise fail(n, "loss", f"{row['loss']!r} is not a number") from None
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
    config = {
        k[len(CONFIG) :]: _number(v)
        for k, v in first.items()
        if k.startswith(CONFIG) and v not in ("", None)
    }
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
