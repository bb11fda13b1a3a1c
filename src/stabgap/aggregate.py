"""Aggregate run records over seeds: a tidy table, per-group summaries and the poster's Table 1.

The flow is ``records -> tidy_rows -> summarize -> table1``:

* :func:`tidy_rows` flattens runs into one row per run × metric × task × interval (long,
  "tidy" format), with every config field as a column so that any grouping is possible;
* :func:`write_table` / :func:`read_table` store that table as CSV (and Parquet when pyarrow
  is installed);
* :func:`summarize` reduces it to mean ± sample standard deviation (ddof = 1) and a Student-t
  95 % interval per group, leaving undefined values (a time to recover that never came, a
  diverged run) out and counting them, as the protocol asks;
* :func:`table1` lays the summaries out as the poster's Table 1, rendered as Markdown, CSV or
  LaTeX.

Nothing here trains, plots or reads run directories itself (see :func:`stabgap.records.iter_runs`).
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np
from scipy import stats as sps

from stabgap.config import FIELDS, RunConfig
from stabgap.errors import StabgapError
from stabgap.records import RunRecord

__all__ = [
    "BASE_COLUMNS",
    "GroupSummary",
    "Table1",
    "format_mean_std",
    "last_interval",
    "read_table",
    "summarize",
    "table1",
    "tidy_rows",
    "write_table",
]

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


def _is_undefined(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def tidy_rows(records: Iterable[RunRecord]) -> list[Row]:
    """One row per run × metric × task × interval, in long ("tidy") format.

    Columns: ``run`` (the run's name), ``experiment``, ``seed`` (from the run's metadata,
    else its config), ``diverged``, ``metric``, ``task``, ``interval``, ``value``, then every
    config field of :class:`stabgap.config.RunConfig` (``seed`` only once, as above) and any
    extra key of the record's config, sorted. List values become comma-joined strings
    (``hidden = "2048,2048"``) so that the table stays flat.

    ``value`` is None where the metric is undefined (e.g. a time to recover when the accuracy
    never got back). A **diverged** run keeps all its rows, so it stays visible and is counted,
    but every value is None: the accuracy of a model whose loss went non-finite measures
    nothing about the stability gap. :func:`summarize` then counts it among the undefined.

    Args:
        records: Runs, e.g. from :func:`stabgap.records.iter_runs`.

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
                    # the config's device): a study should not mix them (stabgap.mixing);
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


# --------------------------------------------------------------------------------------------
# Writing and reading tables
# --------------------------------------------------------------------------------------------


def _atomic_write(path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then rename the file into place: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the mode any new file would get.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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
    _atomic_write(csv_path, lambda p: p.write_text(text, encoding="utf-8"))
    written = [csv_path]
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return written
    table = pa.Table.from_pylist([{c: row.get(c) for c in columns} for row in rows])
    parquet_path = stem.with_name(stem.name + ".parquet")
    _atomic_write(parquet_path, lambda p: pq.write_table(table, p))
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


# --------------------------------------------------------------------------------------------
# Summaries over seeds
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupSummary:
    """Mean ± sample standard deviation of one group of rows (usually: over seeds).

    Attributes:
        key: The group's ``(column, value)`` pairs, in the order of ``by``.
        n: Number of defined values.
        n_undefined: Number of rows left out because their value is undefined (a time to
            recover that never came, a diverged run, ...).
        n_diverged: How many of those ``n_undefined`` rows come from diverged runs.
        mean: Mean of the defined values (NaN if none).
        std: Sample standard deviation, ddof = 1 (NaN if ``n < 2``).
        ci95_low: Lower end of the Student-t 95 % interval for the mean (NaN if ``n < 2``).
        ci95_high: Upper end of that interval.
        seeds: Seeds of the defined values, sorted.
        values: The defined values, in the order of ``seeds``.
        undefined_seeds: Seeds of the rows left out, sorted.
    """

    key: tuple[tuple[str, Any], ...]
    n: int
    n_undefined: int
    n_diverged: int
    mean: float
    std: float
    ci95_low: float
    ci95_high: float
    seeds: tuple[Any, ...]
    values: tuple[float, ...]
    undefined_seeds: tuple[Any, ...]

    def get(self, column: str, default: Any = None) -> Any:
        """The group's value of ``column`` (``default`` if not a grouping column)."""
        return dict(self.key).get(column, default)

    @property
    def experiment(self) -> Any:
        return self.get("experiment")

    @property
    def metric(self) -> Any:
        return self.get("metric")

    @property
    def task(self) -> Any:
        return self.get("task")

    @property
    def interval(self) -> Any:
        return self.get("interval")

    def by_seed(self) -> dict[Any, float | None]:
        """``{seed: value}`` with None for the undefined seeds (what :func:`stats.compare` takes).

        Raises:
            StabgapError: If a seed occurs twice in the group (then the grouping is too coarse
                to pair runs by seed).
        """
        pairs = [*zip(self.seeds, self.values, strict=True)]
        pairs += [(s, None) for s in self.undefined_seeds]
        out = dict(pairs)
        if len(out) != len(pairs):
            raise StabgapError(
                f"group {dict(self.key)} holds a seed more than once: group by more columns"
            )
        return out

    def mean_std(self, digits: int = 2) -> str:
        """``"mean ± std"``, see :func:`format_mean_std`."""
        return format_mean_std(self.mean, self.std, digits)


def _sort_key(value: Any) -> tuple:
    """Order None last, numbers before strings, so that mixed columns still sort."""
    if value is None:
        return (2, 0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (0, value, "")
    return (1, 0, str(value))


def mean_std_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sample std (ddof = 1) and the Student-t interval for the mean of ``values``.

    Returns ``(mean, std, low, high)``; the mean is NaN for no values, the others for fewer
    than two.

    Example:
        >>> m, s, lo, hi = mean_std_ci([1.0, 2.0, 3.0])
        >>> m, s, round(lo, 4), round(hi, 4)  # 2 ± t(0.975, 2) · 1 / √3
        (2.0, 1.0, -0.4841, 4.4841)
    """
    x = np.asarray(values, dtype=np.float64)
    n = x.size
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(x.std(ddof=1))
    half = float(sps.t.ppf(0.5 + level / 2, n - 1)) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def summarize(
    rows: Iterable[Row], by: Sequence[str] = ("experiment", "metric", "task", "interval")
) -> list[GroupSummary]:
    """Mean ± sample std (ddof = 1) and a Student-t 95 % interval per group of rows.

    Undefined values (None or NaN) are left out of the statistics and counted in
    ``n_undefined`` (with their seeds), as the protocol does for a time to recover that never
    came; rows of diverged runs are undefined too (see :func:`tidy_rows`).

    Args:
        rows: Tidy rows (:func:`tidy_rows` or :func:`read_table`).
        by: The columns that define a group; a missing column counts as None.

    Returns:
        One summary per group, sorted by the group's key (numbers before strings, None last).

    Example:
        >>> rows = [
        ...     {"experiment": "nd", "metric": "gd", "seed": 1, "value": 5.0},
        ...     {"experiment": "nd", "metric": "gd", "seed": 2, "value": 7.0},
        ...     {"experiment": "nd", "metric": "gd", "seed": 3, "value": None},
        ... ]
        >>> [s] = summarize(rows, by=("experiment", "metric"))
        >>> s.n, s.n_undefined, s.mean, round(s.std, 4), s.undefined_seeds
        (2, 1, 6.0, 1.4142, (3,))
    """
    by = tuple(by)
    groups: dict[tuple, list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(c) for c in by), []).append(row)

    summaries = []
    for key in sorted(groups, key=lambda k: tuple(_sort_key(v) for v in k)):
        members = sorted(
            groups[key], key=lambda r: (_sort_key(r.get("seed")), _sort_key(r.get("run")))
        )
        defined = [r for r in members if not _is_undefined(r.get("value"))]
        undefined = [r for r in members if _is_undefined(r.get("value"))]
        values = tuple(float(r["value"]) for r in defined)
        mean, std, low, high = mean_std_ci(values)
        summaries.append(
            GroupSummary(
                key=tuple(zip(by, key, strict=True)),
                n=len(defined),
                n_undefined=len(undefined),
                n_diverged=sum(bool(r.get("diverged")) for r in undefined),
                mean=mean,
                std=std,
                ci95_low=low,
                ci95_high=high,
                seeds=tuple(r.get("seed") for r in defined),
                values=values,
                undefined_seeds=tuple(r.get("seed") for r in undefined),
            )
        )
    return summaries


def format_mean_std(mean: float, std: float, digits: int = 2) -> str:
    """``"mean ± std"`` with ``digits`` decimals; "n/a" for an undefined part.

    Example:
        >>> format_mean_std(16.3612, 1.4401)
        '16.36 ± 1.44'
        >>> format_mean_std(16.3612, float("nan"), 1)
        '16.4 ± n/a'
        >>> format_mean_std(float("nan"), float("nan"))
        'n/a'
    """
    if math.isnan(mean):
        return "n/a"
    spread = "n/a" if math.isnan(std) else f"{std:.{digits}f}"
    return f"{mean:.{digits}f} ± {spread}"


def last_interval(summaries: Iterable[GroupSummary], task: int = 1) -> int:
    """The last interval in which ``task``'s gap depth was measured (the poster's "3").

    Raises:
        StabgapError: If no summary holds a gap depth of ``task``.
    """
    intervals = [
        s.interval
        for s in summaries
        if s.metric == "gap_depth" and s.task == task and s.interval is not None
    ]
    if not intervals:
        raise StabgapError(f"no gap_depth of task {task} in the summaries: nothing to tabulate")
    return int(max(intervals))


# --------------------------------------------------------------------------------------------
# Table 1
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """A Table 1 column header: name, subscript, unit and which direction is better."""

    name: str
    sub: str = ""
    unit: str = ""
    better: str = ""  # "↓", "↑" or ""

    def label(self, fmt: str) -> str:
        if fmt == "latex":
            text = _latex_escape(self.name) + (f"$_{{{self.sub}}}$" if self.sub else "")
        elif fmt == "markdown":
            text = self.name + (f"<sub>{self.sub}</sub>" if self.sub else "")
        else:
            text = self.name + (f"_{{{self.sub}}}" if self.sub else "")
        if self.unit:
            text += f" ({_latex_escape(self.unit) if fmt == 'latex' else self.unit})"
        if self.better:
            text += " " + (_latex_escape(self.better) if fmt == "latex" else self.better)
        return text


@dataclass(frozen=True)
class Table1:
    """The poster's Table 1: one row per experiment, cells already formatted as strings.

    Render it with :meth:`markdown`, :meth:`csv`, :meth:`latex` or :meth:`render`.
    """

    columns: tuple[_Column, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""

    def header(self, fmt: str = "csv") -> list[str]:
        return [c.label(fmt) for c in self.columns]

    def markdown(self) -> str:
        def line(cells: Iterable[str]) -> str:
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        lines = [line(self.header("markdown")), "| " + " | ".join("---" for _ in self.columns)]
        lines[-1] += " |"
        lines += [line(r) for r in self.rows]
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.header("csv"))
        writer.writerows(self.rows)
        return buf.getvalue()

    def latex(self) -> str:
        spec = "l" + "c" * (len(self.columns) - 1)
        lines = [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
        lines.append(" & ".join(self.header("latex")) + " \\\\")
        lines.append("\\midrule")
        lines += [" & ".join(_latex_escape(c) for c in r) + " \\\\" for r in self.rows]
        lines += ["\\bottomrule", "\\end{tabular}"]
        return "\n".join(lines) + "\n"

    def render(self, fmt: str = "markdown") -> str:
        """Render as ``"markdown"``, ``"csv"`` or ``"latex"``."""
        renderers = {"markdown": self.markdown, "csv": self.csv, "latex": self.latex}
        if fmt not in renderers:
            raise StabgapError(f"unknown table format {fmt!r}: use one of {', '.join(renderers)}")
        return renderers[fmt]()


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "↓": r"$\downarrow$",
    "↑": r"$\uparrow$",
    "−": r"$-$",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


DEFAULT_LABELS = {
    "baseline": "Baseline",
    "nd": "ND",
    "no-replay": "Baseline, no replay",
    "nd-no-replay": "ND, no replay",
}
DEFAULT_DIGITS = {"gd": 1, "ttr": 1, "acc": 2}  # as printed on the poster


def table1(
    summaries: Sequence[GroupSummary],
    experiments: Sequence[str] = ("baseline", "nd"),
    *,
    task: int = 1,
    interval: int | None = None,
    cost: Mapping[str, Mapping[str, str]] | None = None,
    labels: Mapping[str, str] | None = None,
    digits: Mapping[str, int] | None = None,
) -> Table1:
    """The poster's Table 1: GD, TTR and ACC over seeds per experiment, plus cost columns.

    Cells are ``"mean ± std"`` (sample std). A TTR cell says how many seeds never
    recovered (they are not in its mean): ``"15.0 ± 6.4 (2 of 15 never recovered)"``; any
    other cell whose group left undefined values out says how many were left out.
    An experiment absent from ``summaries`` gets "n/a" cells.

    Args:
        summaries: From :func:`summarize` grouped by the default key.
        experiments: The rows, in order.
        task: The task whose gap is tabulated (the poster: 1).
        interval: The interval of GD and TTR; default the last one with a gap depth of
            ``task`` (the poster: 3). ACC is always the average accuracy at the last point.
        cost: Extra columns as already formatted strings, ``{experiment: {column: cell}}``,
            e.g. ``{"baseline": {"CPU time (ms) ↓": "18.01 ± 0.61"}}``; columns in order of
            first appearance, a missing cell is empty.
        labels: Row labels by experiment (default: "Baseline", "ND", ...; else the name).
        digits: Decimals for ``"gd"``, ``"ttr"``, ``"acc"`` (default 1, 1, 2 as on the poster).

    Returns:
        A :class:`Table1`; call ``.markdown()``, ``.csv()``, ``.latex()`` or ``.render(fmt)``.
    """
    last = last_interval(summaries, task)
    interval = last if interval is None else interval
    if not 1 <= task < interval <= last:
        raise StabgapError(
            f"no gap of task {task} in interval {interval}: intervals run from {task + 1} to {last}"
        )
    labels = {**DEFAULT_LABELS, **(labels or {})}
    digits = {**DEFAULT_DIGITS, **(digits or {})}
    cost = cost or {}
    cost_columns = list(dict.fromkeys(c for e in experiments for c in cost.get(e, {})))

    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    sub = f"{task},{interval}"
    cells_spec = [
        (("gap_depth", task, interval), digits["gd"]),
        (("time_to_recover", task, interval), digits["ttr"]),
        (("avg_acc_final", None, None), digits["acc"]),
    ]

    rows = []
    for experiment in experiments:
        row = [labels.get(experiment, experiment)]
        for (metric, t, j), d in cells_spec:
            s = index.get((experiment, metric, t, j))
            if s is not None and metric == "time_to_recover":
                row.append(ttr_cell(s, index.get((experiment, "recovered", t, j)), d))
            else:
                row.append("n/a" if s is None else _cell(s, d))
        row += [cost.get(experiment, {}).get(c, "") for c in cost_columns]
        rows.append(tuple(row))

    columns = (
        _Column("Model"),
        _Column("GD", sub, "p.p.", "↓"),
        _Column("TTR", sub, "%", "↓"),
        _Column("ACC", f"AVG,{last}", "%", "↑"),
        *(_Column(c) for c in cost_columns),
    )
    caption = (
        f"Task {task} gap depth GD, task {task} time-to-recover TTR (interval {interval}) and "
        f"average accuracy ACC at the end of interval {last}; mean ± sample std over seeds."
    )
    return Table1(columns=columns, rows=tuple(rows), caption=caption)


def _cell(s: GroupSummary, digits: int) -> str:
    text = format_mean_std(s.mean, s.std, digits)
    if s.n_undefined:
        text += f" ({s.n_undefined} left out)"
    return text


def ttr_cell(ttr: GroupSummary, recovered: GroupSummary | None, digits: int = 1) -> str:
    """TTR over the seeds that recovered, and how many never did (not a hidden bias).

    Example:
        >>> rows = lambda *vs: [{"seed": s, "value": v} for s, v in enumerate(vs)]
        >>> [ttr] = summarize(rows(10.0, 20.0, None), by=())
        >>> [rec] = summarize(rows(1.0, 1.0, 0.0), by=())
        >>> ttr_cell(ttr, rec)
        '15.0 ± 7.1 (1 of 3 never recovered)'
    """
    text = format_mean_std(ttr.mean, ttr.std, digits)
    if recovered is None:
        return _cell(ttr, digits)
    never = sum(v == 0 for v in recovered.values)
    total = recovered.n
    return text + (f" ({never} of {total} never recovered)" if never else "")
