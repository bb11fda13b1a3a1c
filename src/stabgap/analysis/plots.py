"""Figures: accuracy curves, the stability gap's anatomy, and a remedy strength's trade-off.

Plotting knows nothing of training: every function takes run records (anything with the
attributes of :class:`RunLike`) or plain numbers, draws one figure, writes it with
:func:`save` and returns it (already closed, for inspection).

Figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas rather than through
``pyplot``: no global figure state, no display, safe to call from worker processes, and a
user's interactive backend is left alone.

The x axis is always the training batch (``record.eval_steps``), not the point index, so runs
evaluated at different cadences read the same. Tasks and intervals are 1-based, as in
:mod:`stabgap.metrics`.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from stabgap import metrics

__all__ = [
    "GapAnnotation",
    "RunLike",
    "gap_annotation",
    "plot_all_tasks",
    "plot_avg_acc",
    "front_drawn",
    "pareto_front",
    "plot_gap_anatomy",
    "plot_gap_vs_accuracy",
    "plot_activity",
    "plot_strength_tradeoff",
    "plot_losses",
    "plot_run",
    "plot_task_curves",
    "save",
]

DPI = 150
BAND_ALPHA = 0.2
SWITCH_STYLE = {"color": "0.35", "linestyle": "--", "linewidth": 1.0, "zorder": 1}
ACC_LABEL = "test accuracy (%)"
BATCH_LABEL = "training batch"


class RunLike(Protocol):
    """What plotting needs of a run (:class:`stabgap.studies.records.RunRecord` has it)."""

    name: str
    experiment: str
    config: Mapping[str, Any]
    acc: np.ndarray  # (points, tasks) %, NaN where not evaluated
    eval_steps: np.ndarray  # (points,) training batch of each point
    boundaries: tuple[int, ...]  # point counts at the ends of the intervals
    ends: tuple[int, ...]  # the same in batches


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def save(fig: Figure, path: str | os.PathLike[str], pdf: bool = False) -> list[Path]:
    """Write ``fig`` to ``path`` as PNG (and, with ``pdf``, to the same stem as PDF); close it.

    Returns:
        The paths written, PNG first.
    """
    png = Path(path)
    png.parent.mkdir(parents=True, exist_ok=True)
    written = [png]
    fig.savefig(png, dpi=DPI, format="png")
    if pdf:
        written.append(png.with_suffix(".pdf"))
        fig.savefig(written[-1], format="pdf")
    # Only a figure made through pyplot is registered anywhere; importing pyplot just to close
    # one of ours would select a backend as a side effect.
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close(fig)
    return written


def _new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # raster output without pyplot's global backend
    return fig, fig.add_subplot()


# --------------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------------


def _n_tasks(record: RunLike) -> int:
    return int(np.asarray(record.acc).shape[1])


def _task_name(record: RunLike, task: int) -> str:
    """``"task 2 (80°)"``, ``"task 2 (digits 2-3)"``: the task's name from its stream, as the
    run recorded it; for a record without names, a rotated stream's angle; else ``"task 2"``."""
    names = (getattr(record, "metadata", None) or {}).get("task_names")
    config = record.config or {}
    if names is None and config.get("stream", "rotated") == "rotated":
        names = [f"{float(r):g}°" for r in config.get("rotations", ())]
    if names is not None and len(names) >= task:
        return f"task {task} ({names[task - 1]})"
    return f"task {task}"


def _interval_batches(record: RunLike) -> list[tuple[float, float]]:
    """(first batch, end batch) of every interval, in training batches."""
    ends = [float(e) for e in record.ends]
    return list(zip([0.0, *ends[:-1]], ends, strict=True))


def _switch_batches(record: RunLike) -> list[float]:
    """The training batch at which each task after the first starts."""
    return [start for start, _ in _interval_batches(record)[1:]]


def _mark_switches(ax: Axes, *records: RunLike) -> None:
    """Dashed vertical lines at the task switches, labelled above the axes (off the data):
    each record's, where groups train tasks of other lengths."""
    marked = {(k, x) for record in records for k, x in enumerate(_switch_batches(record), start=2)}
    for k, x in sorted(marked, key=lambda kx: kx[1]):
        ax.axvline(x, **SWITCH_STYLE)
        ax.text(
            x,
            1.01,
            f"task {k}",
            transform=ax.get_xaxis_transform(),  # x in data, y in axes fraction
            ha="center",
            va="bottom",
            fontsize=8,
            color="0.25",
        )


# Entries a legend beside the axes holds in one column before a figure takes another.
LEGEND_ROWS = 20


def _legend_outside(ax: Axes, title: str | None = None, columns: int = 1) -> None:
    """Legend to the right of the axes, so that it never covers a curve."""
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        ncols=columns,
        fontsize=8,
        title=title,
        title_fontsize=8,
        frameon=False,
    )


def _mean_std(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample std (ddof=1) over axis 0, ignoring NaN, without empty-slice warnings.

    Where fewer than two seeds have a value the std is NaN (no band is drawn there); where
    none has, the mean is NaN too.
    """
    curves = np.asarray(curves, dtype=float)  # (seeds, points)
    ok = ~np.isnan(curves)
    n = ok.sum(axis=0)
    filled = np.where(ok, curves, 0.0)
    mean = np.full(curves.shape[1], np.nan)
    np.divide(filled.sum(axis=0), n, out=mean, where=n > 0)
    sq = np.where(ok, (curves - mean) ** 2, 0.0).sum(axis=0)
    std = np.full(curves.shape[1], np.nan)
    np.divide(sq, n - 1, out=std, where=n > 1)
    return mean, np.sqrt(std)


def _check_same_grid(records: Sequence[RunLike], what: str) -> RunLike:
    """Curves are averaged point by point, so every seed must share one evaluation grid."""
    if not records:
        raise ValueError(f"{what}: no records to plot")
    first = records[0]
    for r in records[1:]:
        same = tuple(r.boundaries) == tuple(first.boundaries) and np.array_equal(
            np.asarray(r.eval_steps), np.asarray(first.eval_steps)
        )
        if not same or np.asarray(r.acc).shape != np.asarray(first.acc).shape:
            raise ValueError(
                f"{what}: runs {first.name!r} and {r.name!r} have different evaluation grids "
                "(eval_steps, boundaries or number of tasks); they cannot be averaged"
            )
    return first


def _band(ax: Axes, x: np.ndarray, mean: np.ndarray, std: np.ndarray, color: Any) -> None:
    """The ± std band; none where std is NaN (fewer than two seeds)."""
    if np.isfinite(std).any():
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=BAND_ALPHA, lw=0)


def _plot_mean_band(
    ax: Axes, x: np.ndarray, curves: np.ndarray, color: Any, label: str | None
) -> None:
    """Mean over seeds (axis 0 of ``curves``) as a line with a ± std band."""
    mean, std = _mean_std(curves)
    ax.plot(x, mean, color=color, lw=1.2, label=label, **_on_top(color))
    _band(ax, x, mean, std, color)


def _colors(n: int) -> list[Any]:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# One colour per group in every figure of a report (see :func:`palette`).
_PALETTE: dict[str, Any] = {}
# The baseline's, in every figure: what every other group is compared with stands out
# (and the gap-against-accuracy scatter's black point is the same group's).
BASELINE_COLOR = "black"


def _on_top(color: Any) -> dict:
    """The baseline's line above the others (a group that runs as it does would hide it)."""
    return {"zorder": 2.1} if isinstance(color, str) and color == BASELINE_COLOR else {}


def palette_colors(labels: Sequence[str], baseline: str | None = None) -> dict[str, Any]:
    """Each group label's colour in a report: black for the `baseline`, the others in
    order from tab10 (tab20 beyond 10 groups)."""
    others = [label for label in labels if label != baseline]
    colors = dict(zip(others, _colors(len(others)), strict=True))
    return {label: colors.get(label, BASELINE_COLOR) for label in labels}


@contextmanager
def palette(labels: Sequence[str], baseline: str | None = None):
    """Within the block, each group label keeps one colour in every figure drawn
    (:func:`palette_colors`)."""
    _PALETTE.update(palette_colors(labels, baseline))
    try:
        yield
    finally:
        _PALETTE.clear()


def _colors_for(labels: Sequence[str]) -> list[Any]:
    """Each label's colour: its own in the current :func:`palette`, else by position."""
    return [_PALETTE.get(label, c) for label, c in zip(labels, _colors(len(labels)), strict=True)]


# Markers that tell groups apart where colours do not (print, colour vision).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "8")


def _spread_title(groups: Mapping[str, Sequence[Any]]) -> str:
    """A legend's title: what each curve and its band are, and on what data (where every
    run shares one dataset)."""
    on = _dataset([r for records in groups.values() for r in records])
    spread = (
        "one seed each"
        if all(len(records) == 1 for records in groups.values())
        else "mean ± std over seeds"
    )
    return f"{on}: {spread}" if on else spread


def _wrapped(title: str, width: int = 88) -> str:
    """`title` in lines of at most `width` characters, broken after a '_', '-' or ' ' where
    it can be: a run's name, its settings joined by '_', is often wider than its figure,
    whose title would then be cut at both ends (the dataset named last with it).

    Example:
        >>> print(_wrapped("baseline_lr=0.1_hidden=64-seed1-c530db81c6 (MNIST)", width=24))
        baseline_lr=0.1_
        hidden=64-seed1-
        c530db81c6 (MNIST)
    """
    lines = [""]
    for piece in re.findall(r"[^_\- ]*[_\- ]?", title):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(line.rstrip() for line in lines)


def _dataset(records: Sequence[RunLike]) -> str:
    """The dataset every run was trained on, by its title ("Fashion-MNIST"), so that figures
    of different datasets, which look alike, say which they show; "" where the runs' configs
    name none (an imported run's may not) or different ones.

    Example:
        >>> from types import SimpleNamespace
        >>> run = SimpleNamespace(config={"dataset": "fashion-mnist"})
        >>> _dataset([run, run]), _dataset([run, SimpleNamespace(config={})])
        ('Fashion-MNIST', '')
    """
    names = {(r.config or {}).get("dataset") for r in records}
    if len(names) != 1:
        return ""
    name = names.pop()
    if not isinstance(name, str) or not name:
        return ""
    from stabgap.core.data import DATASETS  # (loaded with torch: only where a figure is drawn)

    known = DATASETS.get(name)
    return known.title if known is not None else name  # an imported run's own name for it


def _group_label(label: str, records: Sequence[RunLike]) -> str:
    return f"{label} (n={len(records)})" if len(records) > 1 else label


def _finite_range(*arrays: np.ndarray) -> tuple[float, float]:
    vals = np.concatenate([np.ravel(a) for a in arrays])
    vals = vals[np.isfinite(vals)]
    if vals.size == 0:
        return 0.0, 100.0
    return float(vals.min()), float(vals.max())


# --------------------------------------------------------------------------------------------
# One run
# --------------------------------------------------------------------------------------------


def plot_run(record: RunLike, path: str | os.PathLike[str]) -> Figure:
    """Every task's accuracy curve of one run against the training batch, and under it the
    training loss with the part beyond the cross-entropy (ND's share, ...); PNG only.

    Called for every run written, so it stays cheap: no bands, no insets.
    """
    loss = getattr(record, "loss", None)
    if loss is None or not len(loss):
        fig, ax = _new_figure(8.0, 4.2)
    else:
        fig = Figure(figsize=(8.0, 5.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax, below = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
        _loss_panel(below, record)
    x = np.asarray(record.eval_steps)
    acc = np.asarray(record.acc, dtype=float)
    for k, color in zip(range(1, _n_tasks(record) + 1), _colors(_n_tasks(record)), strict=True):
        ax.plot(x, acc[:, k - 1], color=color, lw=1.0, label=_task_name(record, k))
    _mark_switches(ax, record)
    if loss is None or not len(loss):
        ax.set_xlabel(BATCH_LABEL)
    ax.set_ylabel(ACC_LABEL)
    on = _dataset([record])
    title = f"{record.name} ({on})" if on else record.name
    ax.set_title(_wrapped(title), fontsize=10, pad=16)
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    save(fig, path)
    return fig


# --------------------------------------------------------------------------------------------
# Mean over seeds
# --------------------------------------------------------------------------------------------


def plot_task_curves(
    groups: Mapping[str, Sequence[RunLike]],
    path: str | os.PathLike[str],
    task: int = 1,
    zoom: bool = True,
    pdf: bool = True,
) -> Figure:
    """The poster's Figure 4: one task's accuracy per experiment, mean ± std over seeds.

    With ``zoom``, a zoomed view of every task switch after the task's own interval (from a
    few batches before the switch to 30 % of the next interval) makes the gap's depth
    readable. The zooms are insets in the space below the later curves; where those curves
    fall too low to leave room (e.g. without replay), the zooms form a row under the axes.

    Args:
        groups: Experiment label -> the runs (seeds) of that experiment.
        path: The PNG to write (the PDF takes the same stem).
        task: The 1-based task whose accuracy is drawn.
        zoom: Whether to draw the zoomed views.
        pdf: Whether to write the PDF too.
    """
    if not groups:
        raise ValueError("plot_task_curves: no groups to plot")
    firsts = {label: _check_same_grid(recs, label) for label, recs in groups.items()}
    first = next(iter(firsts.values()))
    n_tasks = _n_tasks(first)
    if not 1 <= task <= n_tasks:
        raise ValueError(f"task must be between 1 and {n_tasks}, got {task}")

    curves: list[_Curve] = []
    for (label, recs), color in zip(groups.items(), _colors_for(list(groups)), strict=True):
        stack = np.stack([np.asarray(r.acc, dtype=float)[:, task - 1] for r in recs])
        mean, std = _mean_std(stack)
        x = np.asarray(firsts[label].eval_steps, dtype=float)
        curves.append(_Curve(x, mean, std, color, _group_label(label, recs)))

    intervals = _interval_batches(first)
    later = intervals[task:] if zoom else []  # the intervals where the task's gaps open
    bottom, top, free = _room_below(curves, later[0][0] if later else None)
    as_insets = free >= 0.3
    if later and not as_insets:
        fig = Figure(figsize=(9.5, 7.5), layout="constrained")
        FigureCanvasAgg(fig)
        grid = fig.add_gridspec(2, len(later), height_ratios=(2.0, 1.0))
        ax = fig.add_subplot(grid[0, :])
        zooms = [fig.add_subplot(grid[1, i]) for i in range(len(later))]
    else:
        fig, ax = _new_figure(9.5, 5.2)
        zooms = []

    for c in curves:
        ax.plot(c.x, c.mean, color=c.color, lw=1.2, label=c.label, **_on_top(c.color))
        _band(ax, c.x, c.mean, c.std, c.color)
    _mark_switches(ax, *firsts.values())
    ax.set_xlabel(BATCH_LABEL)
    ax.set_ylabel(f"{_task_name(first, task)}: {ACC_LABEL}")
    ax.grid(alpha=0.3)
    _legend_outside(ax, title=_spread_title(groups))
    if not later:
        save(fig, path, pdf=pdf)
        return fig

    # to the longest run's end, where groups train tasks of other lengths
    run_start, run_end = intervals[0][0], max(_interval_batches(f)[-1][1] for f in firsts.values())
    ax.set_xlim(run_start, run_end)
    if as_insets:
        ax.set_ylim(bottom, top)

        def frac(batch: float) -> float:
            return (batch - run_start) / (run_end - run_start)

        # Each inset sits under its own interval, right of its switch line with room for its
        # tick labels, so that neither crosses a switch line; its top stays below the curves.
        height = min(free - 0.1, 0.55)
        for start, end in later:
            left, right = frac(start) + 0.05, frac(end) - 0.035
            zooms.append(ax.inset_axes((left, 0.06, right - left, height)))
    for k, (zax, (start, end)) in enumerate(zip(zooms, later, strict=True), start=task + 1):
        x_lo, x_hi, y_lo, y_hi = _draw_zoom(zax, curves, start, end)
        zax.set_title(f"zoom: switch to task {k}", fontsize=8, pad=3)
        # Only the rectangle, no connector lines: they would cross the curves and the zoom's
        # title, and each zoom already sits under its own switch.
        m_lo, m_hi = ax.get_ylim()
        r_lo, r_hi = max(y_lo, m_lo), min(y_hi, m_hi)
        ax.indicate_inset((x_lo, r_lo, x_hi - x_lo, r_hi - r_lo), edgecolor="0.4", alpha=0.8)
    save(fig, path, pdf=pdf)
    return fig


@dataclass(frozen=True)
class _Curve:
    """One experiment's mean ± std curve, as drawn."""

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # NaN where fewer than two seeds
    color: Any
    label: str

    @property
    def low(self) -> np.ndarray:
        return self.mean - np.nan_to_num(self.std)

    @property
    def high(self) -> np.ndarray:
        return self.mean + np.nan_to_num(self.std)


def _room_below(curves: Sequence[_Curve], after: float | None) -> tuple[float, float, float]:
    """Y limits that put the curves after batch ``after`` in the upper half of the axes.

    Returns (bottom, top, free), ``free`` being the axes fraction left below those curves. The
    limits never clip data and never reach far below 0 % just to make room.
    """
    lo_all, hi = _finite_range(*[c.low for c in curves], *[c.high for c in curves])
    top = hi + 0.03 * max(hi - lo_all, 1.0)
    if after is None:
        return lo_all, top, 0.0
    lo_later, _ = _finite_range(*[c.low[c.x >= after] for c in curves])
    bottom = max(2 * lo_later - top, min(lo_all, 0.0) - 2.0)
    bottom = min(bottom, lo_all - 0.03 * max(top - lo_all, 1.0))
    return bottom, top, (lo_later - bottom) / (top - bottom)


def _draw_zoom(
    zax: Axes, curves: Sequence[_Curve], start: float, end: float
) -> tuple[float, float, float, float]:
    """Draw the curves around the switch at batch ``start``; returns the view (x0, x1, y0, y1)."""
    length = end - start
    x_lo, x_hi = start - max(0.04 * length, 1.0), start + 0.3 * length
    shown = []
    for c in curves:
        sel = (c.x >= x_lo) & (c.x <= x_hi)
        zax.plot(c.x[sel], c.mean[sel], color=c.color, lw=1.2, **_on_top(c.color))
        _band(zax, c.x[sel], c.mean[sel], c.std[sel], c.color)
        shown += [c.low[sel], c.high[sel]]
    y_lo, y_hi = _finite_range(*shown)
    pad = 0.08 * max(y_hi - y_lo, 0.5)
    zax.set_xlim(x_lo, x_hi)
    zax.set_ylim(y_lo - pad, y_hi + pad)
    zax.axvline(start, **SWITCH_STYLE)
    zax.tick_params(labelsize=7)
    zax.xaxis.set_major_locator(MaxNLocator(4))
    zax.yaxis.set_major_locator(MaxNLocator(4))
    zax.grid(alpha=0.3)
    zax.set_facecolor("white")
    return x_lo, x_hi, y_lo - pad, y_hi + pad


def plot_all_tasks(
    records: Sequence[RunLike],
    path: str | os.PathLike[str],
    title: str | None = None,
    pdf: bool = True,
) -> Figure:
    """Every task's accuracy for one experiment, mean ± std over its seeds.

    Args:
        records: The runs (seeds) of one experiment.
        path: The PNG to write (the PDF takes the same stem).
        title: The figure's title; the experiment's name by default.
        pdf: Whether to write the PDF too.
    """
    first = _check_same_grid(records, title or "plot_all_tasks")
    fig, ax = _new_figure(8.5, 4.6)
    x = np.asarray(first.eval_steps, dtype=float)
    n = _n_tasks(first)
    for k, color in zip(range(1, n + 1), _colors(n), strict=True):
        stack = np.stack([np.asarray(r.acc, dtype=float)[:, k - 1] for r in records])
        _plot_mean_band(ax, x, stack, color, _task_name(first, k))
    _mark_switches(ax, first)
    ax.set_xlabel(BATCH_LABEL)
    ax.set_ylabel(ACC_LABEL)
    notes = [_dataset(records), f"{len(records)} seeds, mean ± std" if len(records) > 1 else ""]
    note = "; ".join(n for n in notes if n)
    title = (title or first.experiment) + (f" ({note})" if note else "")
    ax.set_title(_wrapped(title), fontsize=10, pad=16)
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    save(fig, path, pdf=pdf)
    return fig


def plot_avg_acc(
    groups: Mapping[str, Sequence[RunLike]],
    path: str | os.PathLike[str],
    pdf: bool = True,
) -> Figure:
    """Average accuracy over the tasks seen so far (:func:`metrics.avg_acc_curve`).

    One mean ± std curve per experiment. The drop at each switch is the new task entering the
    average at chance level, not forgetting.
    """
    if not groups:
        raise ValueError("plot_avg_acc: no groups to plot")
    fig, ax = _new_figure(8.5, 4.6)
    firsts = []
    for (label, recs), color in zip(groups.items(), _colors_for(list(groups)), strict=True):
        firsts.append(_check_same_grid(recs, label))
        stack = np.stack([metrics.avg_acc_curve(r.acc, r.boundaries) for r in recs])
        x = np.asarray(firsts[-1].eval_steps, dtype=float)
        _plot_mean_band(ax, x, stack, color, _group_label(label, recs))
    _mark_switches(ax, *firsts)
    ax.set_xlabel(BATCH_LABEL)
    ax.set_ylabel("average test accuracy over tasks seen (%)")
    ax.grid(alpha=0.3)
    _legend_outside(ax, title=_spread_title(groups))
    save(fig, path, pdf=pdf)
    return fig


# --------------------------------------------------------------------------------------------
# Anatomy of one gap (the poster's Figure 1)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GapAnnotation:
    """What :func:`plot_gap_anatomy` draws, as numbers (points are row indices of ``acc``).

    Attributes:
        task: 1-based task whose curve is annotated.
        interval: 1-based interval the gap is measured in.
        switch_point: First point of the interval (``s_{j-1}``).
        reference_point: Last point before the switch (``s_{j-1} - 1``).
        reference_acc: The task's accuracy there (%).
        min_point: Where the minimum lies (first occurrence).
        min_acc: The minimum accuracy (%); NaN if the interval was not evaluated.
        gap_depth: GD in p.p., equal to :func:`metrics.gap_depth`.
        recovery_point: First point from the minimum on with accuracy >= the reference, or None
            when it never gets back.
        time_to_recover: TTR in % of the interval, equal to :func:`metrics.time_to_recover`.
    """

    task: int
    interval: int
    switch_point: int
    reference_point: int
    reference_acc: float
    min_point: int | None
    min_acc: float
    gap_depth: float
    recovery_point: int | None
    time_to_recover: float


def gap_annotation(record: RunLike, task: int = 1, interval: int | None = None) -> GapAnnotation:
    """The GD/TTR annotation of one gap, derived from :mod:`stabgap.metrics` (not recomputed).

    Args:
        record: The run.
        task: 1-based task.
        interval: 1-based interval after the task's own; the last interval by default.

    Raises:
        ValueError: If ``task``/``interval`` name no gap (as :func:`metrics.gap_depth`).
    """
    acc, ends, steps = np.asarray(record.acc, dtype=float), record.ends, record.eval_steps
    interval = len(ends) if interval is None else interval
    gd = metrics.gap_depth(acc, ends, task, interval, steps=steps)
    pos = metrics.gap_position(acc, ends, task, interval, steps=steps)  # batches
    ttr = metrics.time_to_recover(acc, ends, task, interval, steps=steps)
    start = int(np.searchsorted(steps, ends[interval - 2]))  # the first point after the switch
    switch, length = ends[interval - 2], ends[interval - 1] - ends[interval - 2]

    def point(batch: float) -> int:
        return int(np.searchsorted(steps, batch))

    min_point = None if math.isnan(pos) else point(switch + int(pos))
    # TTR = (t - switch) / length * 100 exactly, so rounding inverts it to the batch t.
    recovery = None if math.isnan(ttr) else point(switch + round(ttr * length / 100.0))
    return GapAnnotation(
        task=task,
        interval=interval,
        switch_point=start,
        reference_point=start - 1,
        reference_acc=float(acc[start - 1, task - 1]),
        min_point=min_point,
        min_acc=math.nan if min_point is None else float(acc[min_point, task - 1]),
        gap_depth=gd,
        recovery_point=recovery,
        time_to_recover=ttr,
    )


def gd_label(gd: float) -> str:
    """``"GD = 16.4 p.p."``, the label drawn on the gap-depth arrow."""
    return "GD undefined" if math.isnan(gd) else f"GD = {gd:.1f} p.p."


def ttr_label(ttr: float) -> str:
    """``"TTR = 15.0 % of the task"``, the label drawn on the time-to-recover arrow."""
    return "TTR undefined (never recovers)" if math.isnan(ttr) else f"TTR = {ttr:.1f} % of the task"


def plot_gap_anatomy(
    record: RunLike,
    path: str | os.PathLike[str],
    task: int = 1,
    interval: int | None = None,
    pdf: bool = True,
    title: str | None = None,
) -> Figure:
    """The poster's Figure 1: one accuracy curve annotated with how GD and TTR are read.

    GD is the vertical arrow from the reference point (the last point before the switch) down
    to the interval's minimum; TTR the horizontal arrow from the switch to the first point,
    from the minimum on, back at the reference accuracy. The view spans the whole interval
    (TTR's 100 %) plus a little before the switch.
    """
    ann = gap_annotation(record, task, interval)
    x = np.asarray(record.eval_steps, dtype=float)
    y = np.asarray(record.acc, dtype=float)[:, task - 1]
    b = tuple(record.boundaries)
    start, end = ann.switch_point, b[ann.interval - 1]
    length = end - start
    # Show some of the previous interval (room for the GD arrow), the whole gap interval, and
    # the recovery even when it happens in a later interval.
    first = max(0, start - max(1, round(0.4 * length)))
    last = max(end, (ann.recovery_point or 0) + max(1, round(0.1 * length)))
    last = min(last, len(x))
    view = slice(first, last)
    x_first, x_last = x[first], x[last - 1]
    x_switch, x_ref = x[start], x[ann.reference_point]

    fig, ax = _new_figure(8.0, 4.6)
    ax.plot(x[view], y[view], color="C0", lw=1.3, label=_task_name(record, task))
    ax.axvline(x_switch, **SWITCH_STYLE)
    ax.text(
        x_switch,
        1.01,
        f"switch to task {ann.interval}",
        transform=ax.get_xaxis_transform(),
        ha="center",
        va="bottom",
        fontsize=8,
        color="0.25",
    )
    ax.axhline(ann.reference_acc, color="0.3", ls=":", lw=1.0, zorder=3)  # over the noise
    ax.plot(
        x_ref,
        ann.reference_acc,
        "o",
        color="k",
        ms=5,
        zorder=6,  # above the GD label's box, which may reach it when the gap is small
        label="reference (last point before switch)",
    )

    y_lo, y_hi = _finite_range(y[view])
    span = max(y_hi - y_lo, 1.0)
    arrow = {"arrowstyle": "<|-|>", "color": "k", "lw": 1.2, "shrinkA": 0, "shrinkB": 0}
    bold = {"fontsize": 10, "fontweight": "bold", "textcoords": "offset points"}
    if ann.min_point is not None:
        x_min = x[ann.min_point]
        ax.plot(x_min, ann.min_acc, "v", color="C3", ms=7, label="minimum in the interval")
        # The gap is usually a near-vertical plunge right after the switch: an arrow drawn at
        # the minimum would hide it, so the GD arrow stands before the switch (where the curve
        # is at the reference level), with a guide line across to the minimum and its label
        # set into it like a dimension line.
        x_gd = (x_first + x_switch) / 2
        ax.plot([x_gd, x_min], [ann.min_acc, ann.min_acc], color="C3", ls=":", lw=1.0)
        ax.annotate("", xy=(x_gd, ann.min_acc), xytext=(x_gd, ann.reference_acc), arrowprops=arrow)
        ax.annotate(
            gd_label(ann.gap_depth),
            xy=(x_gd, (ann.min_acc + ann.reference_acc) / 2),
            xytext=(0, 0),
            ha="center",
            va="center",
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none"},
            **bold,
        )
    # The TTR arrow runs below the minimum so that it crosses no part of the curve.
    y_ttr = y_lo - 0.12 * span
    x_end = x[ann.recovery_point] if ann.recovery_point is not None else x_last
    if ann.recovery_point is not None:
        y_rec = y[ann.recovery_point]
        ax.plot(x_end, y_rec, "o", color="C2", ms=6, label="recovered (≥ reference)")
        ax.plot([x_end, x_end], [y_ttr, y_rec], color="C2", ls=":", lw=1.0)
        ax.annotate("", xy=(x_end, y_ttr), xytext=(x_switch, y_ttr), arrowprops=arrow)
    else:
        ax.annotate(
            "",
            xy=(x_end, y_ttr),
            xytext=(x_switch, y_ttr),
            arrowprops={**arrow, "arrowstyle": "-|>", "ls": "--"},
        )
    if (x_end - x_first) / (x_last - x_first) < 0.6:
        # A short arrow: the label right of its head, clear of the switch line.
        where = {"xy": (x_end, y_ttr), "xytext": (8, 0), "ha": "left", "va": "center"}
    else:
        where = {
            "xy": ((x_switch + x_end) / 2, y_ttr),
            "xytext": (0, -6),
            "ha": "center",
            "va": "top",
        }
    ax.annotate(ttr_label(ann.time_to_recover), **where, **bold)
    ax.set_ylim(y_ttr - 0.16 * span, y_hi + 0.06 * span)
    ax.set_xlim(x_first, x_last)
    ax.set_xlabel(BATCH_LABEL)
    ax.set_ylabel(f"{_task_name(record, task)}: {ACC_LABEL}")
    on = _dataset([record])
    ax.set_title(
        _wrapped(
            f"Gap of task {ann.task} in interval {ann.interval}: {title or record.experiment}"
            + (f" ({on})" if on else "")
        ),
        fontsize=10,
        pad=16,
    )
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    save(fig, path, pdf=pdf)
    return fig


# --------------------------------------------------------------------------------------------
# A strength's trade-off (Q1 vs cost in accuracy): λ, ρ, a learning rate, ...
# --------------------------------------------------------------------------------------------


def _format_value(value: float, powers: bool = False) -> str:
    """``0``, ``0.05``, ``2000``, ``10^{-5}``, ``5×10^{-5}`` (mathtext): values that span
    decades; a whole number under a million as it is (a memory's size beside 192000).
    `powers`: a one-digit value in powers of ten however small its exponent (``10^{-2}``
    beside ``10^{-4}``, not 0.01)."""
    if value == 0:
        return "0"
    if float(value).is_integer() and abs(value) < 1e6 and not powers:
        return f"{int(value)}"
    mantissa, exponent = f"{value:.0e}".split("e")
    if float(f"{mantissa}e{exponent}") != value or (abs(int(exponent)) < 3 and not powers):
        return f"{value:g}"  # a plain number, or one of several significant digits
    power = f"10^{{{int(exponent)}}}"
    sign = "-" if mantissa.startswith("-") else ""
    mantissa = mantissa.lstrip("-")
    return f"${sign}{power}$" if mantissa == "1" else f"${sign}{mantissa}\\times{power}$"


def plot_strength_tradeoff(
    points: Sequence[tuple[float, float, float, float, float]]
    | Mapping[str, Sequence[tuple[float, float, float, float, float]]],
    path: str | os.PathLike[str],
    axis: str = "Neuronal decay strength λ (decay_lambda)",
    base_value: float | None = 0.0,
    pdf: bool = True,
    gap_name: str = "GD",
) -> Figure:
    """Gap depth and final average accuracy against one field's value (a remedy's strength,
    the learning rate): one line per series of a grid (the other fields' values).

    Two panels sharing the x axis: logarithmic when every value is positive; symlog, linear
    below the smallest non-zero value, when one is 0 (so that "off" sits on the same axis as
    the decades); linear when one is negative.

    Args:
        points: ``(value, gd_mean, gd_std, acc_mean, acc_std)`` per setting; a NaN std (one
            seed) draws no error bar, a NaN mean no point. Or {series name: such points}, a
            line each.
        path: The PNG to write (the PDF takes the same stem).
        axis: the x axis's label.
        base_value: the baseline's value, drawn as a black square on a lone line.
        pdf: Whether to write the PDF too.
        gap_name: How the gap metric reads on its axis, e.g. "GD_1,3".
    """
    series = dict(points) if isinstance(points, Mapping) else {"": points}
    if not any(series.values()):
        raise ValueError("plot_strength_tradeoff: no points to plot")
    lone = len(series) == 1
    columns = 2 if len(series) > 3 else 1  # of the legend over the panels, for a grid's lines
    rows = 0 if lone else math.ceil(len(series) / columns)
    fig = Figure(figsize=(9.0, 3.8 + 0.22 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    ax_gd, ax_acc = fig.subplots(1, 2, sharex=True)
    panels = (
        (ax_gd, 1, f"gap depth {gap_name} (p.p.), lower is better"),
        (ax_acc, 3, "final average accuracy ACC (%), higher is better"),
    )
    colors = ["C3", "C0"] if lone else _colors(len(series))
    every = []
    for i, (name, line) in enumerate(series.items()):
        arr = np.array(sorted(line, key=lambda p: p[0]), dtype=float)  # (settings, 5)
        x = arr[:, 0]
        every.append(x)
        for j, (ax, col, ylabel) in enumerate(panels):
            color = colors[j] if lone else colors[i]
            mean, err = arr[:, col], np.nan_to_num(arr[:, col + 1])
            ax.errorbar(x, mean, yerr=err, color=color, marker=MARKERS[i % len(MARKERS)],
                        ms=5, capsize=4, lw=1.2, label=name or None)  # fmt: skip
            base = x == base_value
            if lone and base.any():
                label = f"baseline ({_format_value(base_value)})"
                ax.plot(x[base], mean[base], "s", color="k", ms=7, zorder=3, label=label)
            ax.set_ylabel(ylabel, fontsize=9)
            ax.grid(alpha=0.3)
            ax.margins(y=0.15)
    if not any(np.isfinite(np.array(line, dtype=float)[:, 1]).any() for line in series.values()):
        # every group's gap measures nothing (the report leaves them out): say so, no scale
        ax_gd.text(0.5, 0.5, "no gap to measure", transform=ax_gd.transAxes, ha="center",
                   va="center", color="0.4")  # fmt: skip
        ax_gd.set_yticks([])
    title = "Gap depth and final accuracy (mean ± std over seeds)"
    if lone:  # the baseline's square, in each panel
        for ax, _, _ in panels:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="best", fontsize=8, frameon=False)
        fig.suptitle(title, fontsize=10)
    else:  # the lines, once for both panels, over them: a grid's can be many and long
        handles, labels = ax_gd.get_legend_handles_labels()
        # the title heads the legend: a title over it, the layout would draw across it
        fig.legend(handles, labels, loc="outside upper center", ncols=columns, fontsize=7,
                   frameon=False, title=title, title_fontsize=10)  # fmt: skip
    x = np.concatenate(every)
    positive = x[x > 0]
    ticks = np.unique(x)
    if (x > 0).all():
        ax_gd.set_xscale("log")
        ax_gd.set_xlim(ticks.min() / 1.6, ticks.max() * 1.6)
    elif (x >= 0).all() and positive.size:
        # Linear up to the smallest value used, logarithmic beyond: 0 and every decade visible.
        ax_gd.set_xscale("symlog", linthresh=float(positive.min()), linscale=0.6)
        ax_gd.set_xlim(-0.3 * positive.min(), ticks.max() * 1.6)
    else:
        span = max(ticks.max() - ticks.min(), 1.0)
        ax_gd.set_xlim(ticks.min() - 0.1 * span, ticks.max() + 0.1 * span)
    shown = [_format_value(v) for v in ticks]
    if any(t.startswith("$") for t in shown) and all(
        t[0] == "$" or "." in t or t == "0" for t in shown
    ):
        shown = [_format_value(v, powers=True) for v in ticks]  # one style: 10^{-2}, 10^{-4}
    ax_gd.set_xticks(ticks, shown)
    ax_gd.xaxis.set_minor_locator(NullLocator())  # log's minor ticks crowd the labels
    # One x label under both panels: a field's label can be longer than a panel is wide.
    fig.supxlabel(axis, fontsize=10)
    save(fig, path, pdf=pdf)
    return fig


# --------------------------------------------------------------------------------------------
# Gap depth against accuracy, every group (the trade-off between remedies)
# --------------------------------------------------------------------------------------------


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (gap, accuracy) that no other point beats on both: lower gap
    and higher accuracy, one of them strictly. Sorted by gap.

    Example:
        >>> pareto_front([(10.0, 94.0), (5.0, 95.0), (4.0, 92.0), (6.0, 93.0)])
        [2, 1]
    """
    front = [
        i
        for i, (g, a) in enumerate(points)
        if not any(
            (g2 <= g and a2 >= a) and (g2 < g or a2 > a)
            for j, (g2, a2) in enumerate(points)
            if j != i
        )
    ]
    return sorted(front, key=lambda i: points[i][0])


def front_drawn(points: Sequence[tuple], forgotten: Collection[str] = ()) -> bool:
    """Whether :func:`plot_gap_vs_accuracy` draws a Pareto front for these points: one group
    better than every other on both has no line to draw.

    >>> front_drawn([("a", 5.0, 4, 6, 95.0, 94, 96), ("b", 9.0, 8, 10, 90.0, 89, 91)])
    False
    """
    return bool(_drawn_front(points, forgotten))


def _drawn_front(points: Sequence[tuple], forgotten: Collection[str]) -> list[tuple]:
    """The points of the Pareto front the figure draws, in its order ([] where it draws none):
    of the groups with both metrics whose gap measures something."""
    kept = [p for p in points if np.isfinite(p[1]) and np.isfinite(p[4]) and p[0] not in forgotten]
    front = [kept[i] for i in pareto_front([(p[1], p[4]) for p in kept])]
    return front if len(front) > 1 else []


def _gap_legend_label(label: str, base: bool, gone: bool) -> str:
    """A group's legend entry: "(baseline)" once, and "(no gap to measure)" where its
    marker is hollow, the baseline's too."""
    if base and "baseline" not in label.lower():
        label += " (baseline)"
    return label + " (no gap to measure)" * gone


def plot_gap_vs_accuracy(
    points: Sequence[tuple[str, float, float, float, float, float, float]],
    path: str | os.PathLike[str],
    gap_name: str = "GD",
    pdf: bool = True,
    baseline: str | None = None,
    forgotten: Collection[str] = (),
) -> Figure:
    """Every group as one marker: gap depth against final accuracy, 95 % intervals as bars.

    Each group has a colour and a marker of its own and its name beside its point; the
    baseline's point is black and larger. The Pareto front (groups no other beats on both:
    a shallower gap and a higher accuracy) is drawn as a line; the best corner is lower
    right.

    Args:
        points: ``(label, gap, gap_low, gap_high, acc, acc_low, acc_high)`` per group; a NaN
            interval (too few seeds for one) draws no bar.
        gap_name: How the gap metric reads on its axis, e.g. "GD_1,3".
        baseline: The baseline group's label.
        forgotten: Groups whose gap measures nothing (task 1 forgotten before the last
            switch, or never learned): drawn hollow, marked so in the legend, and left off
            the Pareto front.
    """
    finite = [p for p in points if np.isfinite(p[1]) and np.isfinite(p[4])]
    if not finite:
        raise ValueError("plot_gap_vs_accuracy: no group with both metrics defined")
    # the legend beside the axes holds every group (and the front): in more columns, and a
    # taller figure, as the groups outgrow one column
    columns = math.ceil((len(finite) + 1) / LEGEND_ROWS)
    rows = math.ceil((len(finite) + 1) / columns)
    fig, ax = _new_figure(8.5 + 2.2 * (columns - 1), max(5.0, 1.2 + 0.21 * rows))
    markers = [MARKERS[i % len(MARKERS)] for i in range(len(finite))]
    styles = zip(_colors_for([p[0] for p in finite]), markers, strict=True)
    for (label, g, g_lo, g_hi, a, a_lo, a_hi), (color, marker) in zip(finite, styles, strict=True):
        xerr = [[a - a_lo], [a_hi - a]] if np.isfinite(a_lo) else None
        yerr = [[g - g_lo], [g_hi - g]] if np.isfinite(g_lo) else None
        base, gone = label == baseline, label in forgotten
        ax.errorbar(
            a,
            g,
            xerr=xerr,
            yerr=yerr,
            fmt=marker,
            color="black" if base else color,
            markerfacecolor="none" if gone else None,
            markersize=10 if base else 6,
            capsize=3,
            zorder=3 if base else 2,
            label=_gap_legend_label(label, base, gone),
        )
    if front := _drawn_front(finite, forgotten):
        ax.plot(
            [p[4] for p in front],
            [p[1] for p in front],
            color="0.3",
            ls="--",
            lw=1.0,
            zorder=1,
            label="Pareto front",
        )
    ax.set_xlabel("final average accuracy ACC (%), higher is better")
    ax.set_ylabel(f"gap depth {gap_name} (p.p.), lower is better")
    bars = any(np.isfinite(p[2]) for p in finite)
    # Over the whole figure: over the axes alone (narrowed by the legend) it ran off the edge.
    fig.suptitle(
        "Gap depth against accuracy (mean"
        + (", 95 % interval over seeds where there are enough" if bars else " over seeds")
        + ")",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    _legend_outside(ax, columns=columns)
    _name_points(ax, [(p[0], p[4], p[1]) for p in finite], baseline)
    save(fig, path, pdf=pdf)
    return fig


def _name_points(ax: Axes, points: Sequence[tuple[str, float, float]], first: str | None) -> None:
    """Each point's (label, x, y) name beside it, `first`'s first, in bold: to its right, or
    to its left where the right would leave the axes; a name that fits neither way without
    overlapping one already written is left to the legend.

    The names are placed once the figure's layout is done (the legend outside narrows the
    axes), by their drawn extents, whatever their length."""
    fig = ax.get_figure()
    fig.canvas.draw()  # the final layout: where the points and the names really are
    renderer = fig.canvas.get_renderer()
    inside, written = ax.get_window_extent(renderer), []
    for label, x, y in sorted(points, key=lambda p: p[0] != first):
        for dx, align in ((6, "left"), (-6, "right")):
            name = ax.annotate(label, (x, y), xytext=(dx, 5), textcoords="offset points",
                               ha=align, fontsize=7,
                               fontweight="bold" if label == first else "normal")  # fmt: skip
            name.set_in_layout(False)  # placed in the layout done: it must not move it
            box = name.get_window_extent(renderer)
            within = inside.x0 <= box.x0 and box.x1 <= inside.x1 and box.y1 <= inside.y1
            if within and not any(box.overlaps(b) for b in written):
                written.append(box)
                break
            name.remove()


# --------------------------------------------------------------------------------------------
# Training loss and the hidden layers' activity
# --------------------------------------------------------------------------------------------


def plot_losses(
    groups: Mapping[str, Sequence[Any]], path: str | os.PathLike[str], pdf: bool = True
) -> Figure:
    """Training loss per group against the batch (mean over seeds, a moving average of 10
    batches within each task), with the part beyond the cross-entropy (ND's share, ...)
    dashed."""
    fig, ax = _new_figure(8.5, 4.6)
    first = None
    for (label, recs), color in zip(groups.items(), _colors_for(list(groups)), strict=True):
        recs = [r for r in recs if r.loss is not None]
        if not recs:
            continue
        first = recs[0]
        switches = _switch_batches(first)
        loss = _moving(np.mean([r.loss for r in recs], axis=0), switches=switches)
        ax.plot(np.arange(loss.size), loss, color=color, lw=1.1, label=f"{label}: loss",
                **_on_top(color))  # fmt: skip
        if recs[0].penalty is not None:
            share = _moving(np.mean([r.penalty for r in recs], axis=0), switches=switches)
            ax.plot(np.arange(share.size), share, color=color, lw=1.0, ls="--",
                    label=f"{label}: its penalty")  # fmt: skip
    if first is not None:
        _mark_switches(ax, first)
    ax.set_yscale("log")
    ax.set_xlabel(BATCH_LABEL)
    ax.set_ylabel("training loss (mean over seeds)")
    ax.grid(alpha=0.3)
    _legend_outside(ax)
    save(fig, path, pdf=pdf)
    return fig


def _loss_panel(ax: Axes, record: RunLike) -> None:
    """One run's training loss at every batch (unsmoothed: a trailing average would show
    the jump at a switch late), the part beyond the cross-entropy dashed."""
    loss = np.asarray(record.loss, dtype=float)
    ax.plot(np.arange(loss.size), loss, color="0.2", lw=0.6, label="loss")
    penalty = getattr(record, "penalty", None)
    if penalty is not None:
        share = np.asarray(penalty, dtype=float)
        ax.plot(np.arange(share.size), share, color="0.2", lw=0.6, ls="--", label="its penalty")
    if np.all(loss > 0):
        ax.set_yscale("log")
    ax.set_xlabel(BATCH_LABEL)
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")


def _moving(values: np.ndarray, width: int = 10, switches: Sequence[float] = ()) -> np.ndarray:
    """A trailing moving average that starts again at each switch, so that the jump of the
    loss at a switch shows at its batch instead of being smeared over the next `width`.

    Example:
        >>> _moving(np.array([1.0, 1.0, 5.0, 5.0]), width=2, switches=[2]).tolist()
        [1.0, 1.0, 5.0, 5.0]
    """
    kernel = np.ones(width) / width
    edges = [0, *(int(b) for b in switches if 0 < b < values.size), values.size]
    parts = []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        part = values[start:end]
        padded = np.concatenate([np.full(width - 1, part[0]), part])
        parts.append(np.convolve(padded, kernel, mode="valid"))
    return np.concatenate(parts)


def plot_activity(
    groups: Mapping[str, Sequence[Any]],
    path: str | os.PathLike[str],
    statistic: str = "active_fraction",
    task: int = 1,
    pdf: bool = True,
) -> Figure:
    """A hidden-layer statistic of one task over training, one panel per layer (mean ± std).

    Args:
        statistic: "active_fraction" (shown in %), "mean_square" or "dead_fraction" (%).
    """
    firsts = {label: recs[0] for label, recs in groups.items() if recs and recs[0].activity}
    if not firsts:
        raise ValueError("plot_activity: no run holds activity curves")
    depth = {label: r.activity[statistic].shape[2] for label, r in firsts.items()}
    layers = max(depth.values())  # groups of other depths: each on its own layers' panels
    fig = Figure(figsize=(4.2 * layers + 2.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, layers, sharey=True))
    scale = 1.0 if statistic == "mean_square" else 100.0
    for (label, recs), color in zip(groups.items(), _colors_for(list(groups)), strict=True):
        if label not in firsts:
            continue
        x = np.asarray(firsts[label].eval_steps, dtype=float)
        for k, ax in enumerate(axes[: depth[label]]):
            stack = np.stack([scale * r.activity[statistic][:, task - 1, k] for r in recs])
            kept = np.isfinite(stack).any(axis=0)  # the points that recorded it (activity_every)
            label_k = _group_label(label, recs) if k == 0 else None
            _plot_mean_band(ax, x[kept], stack[:, kept], color, label_k)
    names = {"active_fraction": "active units (%)", "mean_square": "Σ h² per image",
             "dead_fraction": "dead units (%)"}  # fmt: skip
    for k, ax in enumerate(axes):
        _mark_switches(ax, next(iter(firsts.values())))
        ax.set_title(f"hidden layer {k + 1}", fontsize=9, pad=14)
        ax.set_xlabel(BATCH_LABEL)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"task {task}: {names[statistic]}")
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    save(fig, path, pdf=pdf)
    return fig


WHY_PANELS = {
    # what: [(analysis, its title, y label)]; drift reads the last hidden layer
    "drift": [
        ("drift_cka", "linear CKA with the last point before the switch", "CKA"),
        ("drift_change", "relative change since then", "‖Δh‖ / ‖h‖"),
    ],
    "head": [
        ("probe_acc", "the network (solid), a nearest-mean classifier (dashed), a linear probe "
         "(dotted)", "accuracy on the probe set (%)"),
    ],
    # (batches,): x is the training batch (around each switch)
    "gradients": [
        ("grad_cosine", "cosine of the replayed and the new examples' gradients",
         "cosine"),
    ],
    # (tasks ended, points on the segment, tasks): x is α, at task 2's end
    "path": [
        ("path_loss", "loss on the line from the first switch's weights to task 2's end",
         "cross-entropy"),
    ],
    # (tasks ended, tasks): x is each task's end, not the evaluation points
    "sharpness": [
        ("sharpness", "top Hessian eigenvalue of its loss, at each task's end", "λ_max"),
        ("hessian_trace", "the Hessian's trace there", "trace"),
    ],
}  # fmt: skip


def plot_why(
    groups: Mapping[str, Sequence[Any]],
    path: str | os.PathLike[str],
    what: str = "drift",
    task: int = 1,
    pdf: bool = True,
) -> Figure:
    """An analysis of task `task` over training, every group (mean ± std over seeds), one of
    :data:`WHY_PANELS`: "drift" (its last hidden layer's CKA and relative change), "head"
    (the network's, the nearest-mean classifier's and the linear probe's accuracy on its
    probe set), "gradients" (the cosine around each switch), "path" (its loss along the
    segment) or "sharpness" (its loss's Hessian at each task's end)."""
    key = WHY_PANELS[what][0][0]
    firsts = {label: recs[0] for label, recs in groups.items() if recs and key in recs[0].analyses}
    if not firsts:
        raise ValueError(f"plot_why: no run recorded {key}")
    panels = WHY_PANELS[what]
    fig = Figure(figsize=(4.6 * len(panels) + 2.5, 3.8), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for (label, recs), color in zip(groups.items(), _colors_for(list(groups)), strict=True):
        if label not in firsts:
            continue
        ends = what == "sharpness"
        x = _why_x(what, firsts[label], key)
        for k, (ax, (name, _, _)) in enumerate(zip(axes, panels, strict=True)):
            lines = [(name, "-")] + ([("nmc_acc", "--"), ("linear_acc", ":")]
                                     if what == "head" else [])  # fmt: skip
            for line, style in lines:
                if line not in recs[0].analyses:  # (records from before the linear probe)
                    continue
                values = [r.analyses[line] for r in recs]
                stack = np.stack([_task_column(line, v, task) for v in values])
                kept = np.isfinite(stack).any(axis=0)
                mean, std = _mean_std(stack[:, kept])
                xs = x[kept]
                if what == "gradients":  # measured only near the switches: no line between
                    xs, mean, std = _broken_at_gaps(kept, xs, mean, std)
                if not ends and what != "path":  # each task's stretch apart
                    xs, mean, std = _broken_at(_switch_batches(firsts[label]), xs, mean, std)
                first = k == 0 and style == "-"
                ax.plot(xs, mean, color=color, lw=1.2, ls=style, marker="o" if ends else None,
                        label=_group_label(label, recs) if first else None,
                        **_on_top(color))  # fmt: skip
                if what == "head":  # an accuracy's band stays within 0-100 %
                    low, high = np.clip(mean - std, 0, 100), np.clip(mean + std, 0, 100)
                    ax.fill_between(xs, low, high, color=color, alpha=BAND_ALPHA, lw=0)
                else:
                    _band(ax, xs, mean, std, color)
    for ax, (_, title, ylabel) in zip(axes, panels, strict=True):
        if what == "path":
            ax.set_xlabel("α: 0 at the first switch's weights, 1 at task 2's end")
        else:
            _mark_switches(ax, next(iter(firsts.values())))
            ax.set_xlabel(BATCH_LABEL)
        ax.set_title(title, fontsize=9, pad=14)
        ax.set_ylabel(f"task {task}: {ylabel}")
        ax.grid(alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    save(fig, path, pdf=pdf)
    return fig


def _broken_at(switches: Sequence[float], x: np.ndarray, *ys: np.ndarray) -> tuple:
    """x and the curves with a NaN between the points on either side of each switch, so
    that matplotlib draws each task's stretch apart.

    >>> _broken_at([2.0], np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 2, 3, 4]))[1].tolist()
    [1.0, 2.0, nan, 3.0, 4.0]
    """
    cuts = [i for i in range(1, len(x)) if any(x[i - 1] < s <= x[i] for s in switches)]
    return tuple(np.insert(np.asarray(a, dtype=float), cuts, np.nan) for a in (x, *ys))


def _broken_at_gaps(kept: np.ndarray, *curves: np.ndarray) -> tuple:
    """The curves at the `kept` columns with a NaN wherever columns left out lay between two
    kept ones, so that a line and its band break across what was not measured instead of
    joining its two sides.

    >>> kept = np.array([True, True, False, False, True, True])
    >>> _broken_at_gaps(kept, np.array([0.0, 1.0, 4.0, 5.0]))[0].tolist()
    [0.0, 1.0, nan, 4.0, 5.0]
    """
    cuts = np.flatnonzero(np.diff(np.flatnonzero(kept)) > 1) + 1
    return tuple(np.insert(np.asarray(c, dtype=float), cuts, np.nan) for c in curves)


def _why_x(what: str, record: RunLike, key: str) -> np.ndarray:
    """The x of an analysis's figure: each task's end (sharpness), the training batch
    (gradients), α along the segment (path), else the evaluation points' batches."""
    if what == "sharpness":
        return np.asarray(record.ends, dtype=float)
    if what == "gradients":
        return np.arange(len(record.analyses[key]), dtype=float)
    if what == "path":
        return np.linspace(0.0, 1.0, record.analyses[key].shape[1])
    return np.asarray(record.eval_steps, dtype=float)


def _task_column(key: str, values: np.ndarray, task: int) -> np.ndarray:
    """An analysis's values for `task`: the last layer's of drift's (points, tasks, layers),
    the task's column of a (points, tasks) one, its segment ending with task + 1 of the
    path's (tasks ended, α, tasks), the gradient cosine's (batches,) as it is."""
    if key.startswith("path_"):
        return values[task, :, task - 1]
    if values.ndim == 3:
        return values[:, task - 1, -1]
    return values[:, task - 1] if values.ndim == 2 else values
