"""The poster's Table 1 from summaries over seeds, as Markdown, CSV or LaTeX."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from stabgap.errors import StabgapError, did_you_mean
from stabgap.statistics.comparison import censored_median
from stabgap.statistics.summary import GroupSummary, format_mean_std, last_interval

__all__ = ["DEFAULT_LABELS", "Table1", "table1", "ttr_cell"]


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
            raise StabgapError(
                f"unknown table format {fmt!r}{did_you_mean(fmt, renderers)}: "
                f"use one of {', '.join(renderers)}"
            )
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
    # the field symbols labels use (λ=0.0001, α, β, ρ, ω of the remedies and methods):
    # plain pdflatex stops on them as text
    "λ": r"$\lambda$",
    "α": r"$\alpha$",
    "β": r"$\beta$",
    "ρ": r"$\rho$",
    "ω": r"$\omega$",
    "γ": r"$\gamma$",
    "≈": r"$\approx$",
    "×": r"$\times$",
    "∞": r"$\infty$",
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
    recovered (they are not in its mean) and the median counting them as never:
    ``"15.0 ± 6.4 (2 of 15 never recovered; median 16.0)"``; any
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
        f"average accuracy ACC at the end of interval {last}; mean ± sample std over seeds "
        "(TTR over the seeds that recovered; where some never did, their number and the median "
        "counting them as never)."
    )
    return Table1(columns=columns, rows=tuple(rows), caption=caption)


def _cell(s: GroupSummary, digits: int) -> str:
    text = format_mean_std(s.mean, s.std, digits)
    if s.n_undefined:
        text += f" ({s.n_undefined} left out)"
    return text


def ttr_median(ttr: GroupSummary, never: int) -> float:
    """A TTR's median over its recovered seeds' times and `never` seeds that never
    recovered, counted as +inf (so +inf where they are the middle)."""
    return censored_median(
        [*ttr.values, *[None] * never], [True] * len(ttr.values) + [False] * never
    )


def ttr_cell(
    ttr: GroupSummary, recovered: GroupSummary | None, digits: int = 1, median: bool = False
) -> str:
    """TTR over the seeds that recovered, and how many never did (not a hidden bias), with
    the median that counts those as never: the mean of the others is biased low, most where
    most never recovered.

    Example:
        >>> from stabgap.statistics.summary import summarize
        >>> rows = lambda *vs: [{"seed": s, "value": v} for s, v in enumerate(vs)]
        >>> [ttr] = summarize(rows(10.0, 20.0, None), by=())
        >>> [rec] = summarize(rows(1.0, 1.0, 0.0), by=())
        >>> ttr_cell(ttr, rec)
        '15.0 ± 7.1 (1 of 3 never recovered; median 20.0)'
        >>> [ttr] = summarize(rows(10.0, None, None), by=())
        >>> [rec] = summarize(rows(1.0, 0.0, 0.0), by=())
        >>> ttr_cell(ttr, rec)
        '10.0 ± n/a (2 of 3 never recovered; median never)'

    With `median`, the median also where every seed recovered: ``"12.0 ± 2.0; median 11.0"``.
    """
    text = format_mean_std(ttr.mean, ttr.std, digits)
    if recovered is None:
        return _cell(ttr, digits)
    never = sum(v == 0 for v in recovered.values)
    middle = ttr_median(ttr, never)
    middle_text = "never" if math.isinf(middle) else f"{middle:.{digits}f}"
    if never:
        return text + f" ({never} of {recovered.n} never recovered; median {middle_text})"
    return text + (f"; median {middle_text}" if median and ttr.values else "")
