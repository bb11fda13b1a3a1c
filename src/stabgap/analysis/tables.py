"""Every run's metrics as one tidy table, and its storage as CSV (and Parquet).

The flow is ``records -> tidy_rows -> write_table``: :func:`tidy_rows` flattens runs into
one row per run × metric × task × interval (long, "tidy" format), with every config field
as a column so that any grouping is possible; :func:`write_table` / :func:`read_table`
store that table as CSV (and Parquet when pyarrow is installed). Summaries over seeds are
:func:`stabgap.statistics.summary.summarize`'s.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np

from stabgap.atomic import atomic_write
from stabgap.core.config import FIELDS, RunConfig
from stabgap.errors import StabgapError
from stabgap.studies.records import RunRecord

__all__ = ["BASE_COLUMNS", "read_table", "tidy_rows", "write_table"]

# Columns every tidy row has, in this order; the config fields follow.
BASE_COLUMNS = ("run", "experiment", "seed", "diverged", "metric", "task", "interval", "value")
# "seed" is both a base column and a config field: the base column holds it (once).
_CONFIG_COLUMNS = tuple(name for name in FIELDS if name not in BASE_COLUMNS)
_HINTS = get_type_hints(RunConfig)

Row = dict[str, Any]


# --------------------------------------------------------------------------------------------
# Tidy rows
# --------------------------------------------------------------------------------------------


def _flat(value: Any) -> Any:
    """A config value as a scalar cell: lists and tuples become "a,b,c" strings."""
    if isinstance(value, list | tuple):
        return ",".join(str(_flat(v)) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def tidy_rows(records: Iterable[RunRecord]) -> list[Row]:
    """One row per run × metric × task × interval, in long ("tidy") format.

    Columns: ``run`` (the run's name), ``experiment``, ``seed`` (from the run's metadata,
    else its config), ``diverged``, ``metric``, ``task``, ``interval``, ``value``, then every
    config field of :class:`stabgap.core.config.RunConfig` (``seed`` only once, as above) and any
    extra key of the record's config, sorted. List values become comma-joined strings
    (``hidden = "2048,2048"``) so that the table stays flat.

    ``value`` is None where the metric is undefined (e.g. a time to recover when the accuracy
    never got back). A **diverged** run keeps all its rows, so it stays visible and is counted,
    but every value is None: the accuracy of a model whose loss went non-finite measures
    nothing about the stability gap. :func:`summarize` then counts it among the undefined.

    Args:
        records: Runs, e.g. from :func:`stabgap.studies.records.iter_runs`.

    Returns:
        The rows, runs in the given order and each run's metrics in the order of
        :func:`stabgap.metrics.compute_metrics`.
    """
    rows: list[Row] = []
    for record in records:
        config = record.config
        seed = record.metadata.get("seed", config.get("seed"))
        extras = sorted(k for k in config if k not in FIELDS)
        config_cells = {name: _flat(config.get(name)) for name in (*_CONFIG_COLUMNS, *extras)}
        for m in record.metrics:
            rows.append(
                {
                    "run": record.name,
                    "experiment": record.experiment,
                    "seed": None if seed is None else int(seed),
                    "diverged": bool(record.diverged),
                    "metric": m.metric,
                    "task": m.task,
                    "interval": m.interval,
                    "value": None if record.diverged else m.value,
                    # how the run computed, which moves its numbers but not its name (with
                    # the config's device): a study should not mix them (stabgap.studies.mixing);
                    # the CPU's threads and matmul library are empty for GPU runs
                    "threads": record.metadata.get("threads") if _on_cpu(record) else None,
                    "cpu_matmul": record.metadata.get("cpu_matmul"),
                    **config_cells,
                }
            )
    return rows


def _on_cpu(record: RunRecord) -> bool:
    return str(record.metadata.get("device", "")).startswith("cpu")


def _columns(rows: Sequence[Row]) -> list[str]:
    """The union of the rows' columns, in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _csv_text(rows: Sequence[Row], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        # None -> empty cell; floats are written with repr, which reads back exactly.
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
    return buf.getvalue()


def write_table(rows: Sequence[Row], path_stem: str | os.PathLike[str]) -> list[Path]:
    """Write the rows to ``<path_stem>.csv``, and ``<path_stem>.parquet`` if pyarrow imports.

    Each file is written to a temporary name and renamed into place (atomic on POSIX).
    Columns are the union of the rows' keys in order of first appearance; a missing or None
    cell is empty in the CSV and null in Parquet.

    Args:
        rows: Table rows, e.g. from :func:`tidy_rows`.
        path_stem: Path without suffix; its folder is created if needed.

    Returns:
        The paths written, the CSV first.
    """
    stem = Path(path_stem)
    columns = _columns(rows)
    csv_path = stem.with_name(stem.name + ".csv")
    text = _csv_text(rows, columns)
    atomic_write(csv_path, lambda p: p.write_text(text, encoding="utf-8"))
    written = [csv_path]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    parquet_path = stem.with_name(stem.name + ".parquet")
    atomic_write(parquet_path, lambda p: pq.write_table(table, p))
    written.append(parquet_path)
    return written


def _parse_bool(text: str) -> bool:
    if text in ("True", "true", "1"):
        return True
    if text in ("False", "false", "0"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


_BASE_TYPES: dict[str, Any] = {
    "run": str,
    "experiment": str,
    "seed": int,
    "diverged": _parse_bool,
    "metric": str,
    "task": int,
    "interval": int,
    "value": float,
}


def _cell_parser(column: str) -> Any:
    """How to turn a CSV cell of ``column`` back into its value (empty cells become None)."""
    if column in _BASE_TYPES:
        return _BASE_TYPES[column]
    hint = _HINTS.get(column)
    if hint is None or get_origin(hint) is tuple:
        return str  # unknown columns and joined lists stay strings
    args = [a for a in get_args(hint) if a is not type(None)] or [hint]
    return {bool: _parse_bool, int: int, float: float}.get(args[0], str)


def read_table(path: str | os.PathLike[str]) -> list[Row]:
    """Read a table written by :func:`write_table` (``.csv``, or ``.parquet`` with pyarrow).

    CSV cells are converted back to the types :func:`tidy_rows` produced: the base columns
    and the config fields by their declared types, empty cells to None; joined lists stay
    strings.
    """
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        parsers = {c: _cell_parser(c) for c in reader.fieldnames or ()}
        try:
            return [
                {c: None if text == "" else parsers[c](text) for c, text in row.items()}
                for row in reader
            ]
        except ValueError as e:
            raise StabgapError(f"{path} is not a table written by stabgap ({e})") from None
