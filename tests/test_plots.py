"""Tests for stabgap.analysis.plots on small synthetic runs.

Each figure must be written (PNG, and PDF where asked) at a sensible pixel size, cope with
NaN (tasks not yet evaluated, holes in a curve, a single seed), and the gap-anatomy figure
must print the same GD and TTR as stabgap.metrics.
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from stabgap import metrics
from stabgap.analysis import plots

N_TASKS = 3
PER_TASK = 60  # points (= batches here) per task: small, so the test file stays fast
ROTATIONS = [0.0, 80.0, 160.0]


@dataclass(frozen=True)
class FakeRecord:
    """The attributes plotting reads, and nothing else: plotting must not need a RunRecord."""

    name: str
    experiment: str
    config: dict[str, Any]
    acc: np.ndarray
    eval_steps: np.ndarray
    boundaries: tuple[int, ...]
    ends: tuple[int, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    activity: dict[str, np.ndarray] = field(default_factory=dict)


def make_record(
    seed: int = 0,
    depth: float = 15.0,
    experiment: str = "baseline",
    eval_every: int = 1,
    decay_lambda: float = 0.0,
) -> FakeRecord:
    """Three tasks; each rises in its own interval, then dips by ~`depth` after every switch.

    The accuracy settles slightly above its pre-switch level, so every gap recovers.
    """
    rng = np.random.default_rng(seed)
    n = N_TASKS * PER_TASK // eval_every
    steps = np.arange(0, N_TASKS * PER_TASK, eval_every)
    acc = np.full((n, N_TASKS), np.nan)
    for k in range(N_TASKS):
        start = k * PER_TASK
        level = 10 + 85 * (1 - np.exp(-(steps - start) / (PER_TASK / 8)))
        for j in range(k + 1, N_TASKS):
            u = np.clip(steps - j * PER_TASK, 0, None)
            tau = PER_TASK / 15
            # A dip of `depth` at u = tau that fades, on a plateau that keeps rising a little.
            level = level - depth * (u / tau) * np.exp(1 - u / tau) + 1.0 * (1 - np.exp(-u / tau))
        curve = np.clip(level + rng.normal(0, 0.4, n), 0, 100)
        acc[steps >= start, k] = curve[steps >= start]
    return FakeRecord(
        name=f"{experiment}-seed{seed}",
        experiment=experiment,
        config={
            "rotations": ROTATIONS,
            "decay_lambda": decay_lambda,
            "batches_per_task": PER_TASK,
            "seed": seed,
        },
        acc=acc,
        eval_steps=steps,
        boundaries=tuple(PER_TASK // eval_every * k for k in range(1, N_TASKS + 1)),
        ends=tuple(PER_TASK * k for k in range(1, N_TASKS + 1)),
    )


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def check_png(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 5_000
    width, height = png_size(path)
    assert 800 <= width <= 2500 and 400 <= height <= 1500, (width, height)


def check_pdf(path: Path) -> None:
    assert path.is_file() and path.stat().st_size > 1_000
    assert path.read_bytes()[:5] == b"%PDF-"


@pytest.fixture(scope="module")
def groups() -> dict[str, list[FakeRecord]]:
    return {
        "baseline": [make_record(s, 15.0, "baseline") for s in range(3)],
        "ND λ=1e-5": [make_record(s + 10, 6.0, "nd", decay_lambda=1e-5) for s in range(3)],
    }


def all_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


# --------------------------------------------------------------------------------------------


def test_save_writes_png_and_pdf_with_the_same_stem(tmp_path: Path) -> None:
    fig, ax = plots._new_figure(6, 4)
    ax.plot([0, 1], [0, 1])
    written = plots.save(fig, tmp_path / "sub" / "fig.png", pdf=True)
    assert written == [tmp_path / "sub" / "fig.png", tmp_path / "sub" / "fig.pdf"]
    check_pdf(written[1])
    assert png_size(written[0]) == (900, 600)  # 6 x 4 inches at 150 dpi


def test_plot_run_png_only_with_switches_and_task_names(tmp_path: Path) -> None:
    fig = plots.plot_run(make_record(), tmp_path / "curves.png")
    check_png(tmp_path / "curves.png")
    assert not (tmp_path / "curves.pdf").exists()
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["task 1 (0°)", "task 2 (80°)", "task 3 (160°)"]
    assert [t for t in all_texts(fig) if t.startswith("task")] == ["task 2", "task 3"]
    assert ax.get_xlabel() == "training batch" and ax.get_ylabel() == "test accuracy (%)"


def test_the_curves_figures_name_the_dataset_their_runs_share(tmp_path: Path) -> None:
    """Rotated MNIST and rotated Fashion-MNIST draw alike: the title says which it is."""

    def on(dataset: str, seed: int = 0) -> FakeRecord:
        record = make_record(seed)
        return replace(record, config={**record.config, "dataset": dataset})

    fig = plots.plot_run(on("fashion-mnist"), tmp_path / "curves.png")
    assert fig.axes[0].get_title() == "baseline-seed0 (Fashion-MNIST)"
    assert plots.plot_run(on("mnist"), tmp_path / "m.png").axes[0].get_title().endswith("(MNIST)")
    fashion = [on("fashion-mnist", s) for s in range(3)]
    fig = plots.plot_all_tasks(fashion, tmp_path / "all.png", pdf=False)
    assert fig.axes[0].get_title() == "baseline (Fashion-MNIST; 3 seeds, mean ± std)"
    fig = plots.plot_avg_acc({"baseline": fashion}, tmp_path / "avg.png", pdf=False)
    assert fig.axes[0].get_legend().get_title().get_text().startswith("Fashion-MNIST: mean")
    # runs of two datasets in one figure: neither is named
    mixed = {"a": fashion, "b": [on("mnist", s) for s in range(3)]}
    fig = plots.plot_avg_acc(mixed, tmp_path / "mixed.png", pdf=False)
    assert fig.axes[0].get_legend().get_title().get_text() == "mean ± std over seeds"


def test_task_names_come_from_the_stream_not_from_rotations(tmp_path: Path) -> None:
    split = replace(
        make_record(),
        config={**make_record().config, "stream": "split"},  # its rotations: the default
        metadata={"task_names": ["digits 0-1", "digits 2-3", "digits 4-5"]},
    )
    legend = plots.plot_run(split, tmp_path / "split.png").axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [
        "task 1 (digits 0-1)",
        "task 2 (digits 2-3)",
        "task 3 (digits 4-5)",
    ]
    old_permuted = replace(make_record(), config={**make_record().config, "stream": "permuted"})
    legend = plots.plot_run(old_permuted, tmp_path / "permuted.png").axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["task 1", "task 2", "task 3"]


def test_plot_run_draws_the_loss_and_its_penalty_under_the_curves(tmp_path: Path) -> None:
    batches = N_TASKS * PER_TASK
    loss = np.linspace(2.3, 0.1, batches)
    penalty = np.full(batches, 0.05)
    rec = SimpleNamespace(**vars(make_record()), loss=loss, penalty=penalty)
    fig = plots.plot_run(rec, tmp_path / "curves.png")
    check_png(tmp_path / "curves.png")
    top, below = fig.axes
    assert top.get_ylabel() == "test accuracy (%)" and below.get_ylabel() == "training loss"
    drawn = {line.get_label(): line.get_ydata() for line in below.lines}
    np.testing.assert_array_equal(drawn["loss"], loss)  # every batch, unsmoothed
    np.testing.assert_array_equal(drawn["its penalty"], penalty)


def test_switch_lines_are_at_the_batch_where_each_task_starts(tmp_path: Path) -> None:
    rec = make_record(eval_every=3)  # points != batches: the x axis must be batches
    fig = plots.plot_run(rec, tmp_path / "curves.png")
    switch_x = sorted(
        line.get_xdata()[0]
        for line in fig.axes[0].lines
        if line.get_linestyle() == "--" and len(set(line.get_xdata())) == 1
    )
    assert switch_x == [PER_TASK, 2 * PER_TASK]


def test_plot_run_without_rotations_names_tasks_by_number(tmp_path: Path) -> None:
    rec = replace(make_record(), config={})
    fig = plots.plot_run(rec, tmp_path / "curves.png")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["task 1", "task 2", "task 3"]


def test_plot_task_curves_with_insets(tmp_path: Path, groups) -> None:
    fig = plots.plot_task_curves(groups, tmp_path / "fig4.png", task=1)
    check_png(tmp_path / "fig4.png")
    check_pdf(tmp_path / "fig4.pdf")
    (main,) = fig.axes
    insets = main.child_axes  # inset_axes live under the main axes
    assert len(insets) == 2  # task 1's gaps open at the switches to tasks 2 and 3
    # Each inset is centred on its switch: [switch - a few batches, switch + 30 % of the task].
    for inset, switch in zip(insets, (PER_TASK, 2 * PER_TASK), strict=True):
        lo, hi = inset.get_xlim()
        assert lo < switch < hi and hi - switch == pytest.approx(0.3 * PER_TASK)
        # The zoom shows the whole dip: the mean's minimum is inside the y range.
        means = [np.asarray(line.get_ydata()) for line in inset.lines[:2]]  # one per group
        assert inset.get_ylim()[0] < min(np.nanmin(m) for m in means)
        assert all(m.size > 2 for m in means)
    labels = [t.get_text() for t in main.get_legend().get_texts()]
    assert labels == ["baseline (n=3)", "ND λ=1e-5 (n=3)"]


def test_plot_task_curves_later_task_and_no_zoom(tmp_path: Path, groups) -> None:
    fig = plots.plot_task_curves(groups, tmp_path / "t2.png", task=2, pdf=False)
    assert len(fig.axes[0].child_axes) == 1  # one switch after task 2's interval
    assert not (tmp_path / "t2.pdf").exists()
    fig = plots.plot_task_curves(groups, tmp_path / "t1.png", task=1, zoom=False, pdf=False)
    assert fig.axes[0].child_axes == []
    check_png(tmp_path / "t1.png")
    # The last task has no later switch: no inset, but still a figure.
    fig = plots.plot_task_curves(groups, tmp_path / "t3.png", task=3, pdf=False)
    assert fig.axes[0].child_axes == []
    check_png(tmp_path / "t3.png")


def test_plot_task_curves_rejects_seeds_on_different_grids(tmp_path: Path) -> None:
    mixed = {"x": [make_record(0), make_record(1, eval_every=2)]}
    with pytest.raises(ValueError, match="different evaluation grids"):
        plots.plot_task_curves(mixed, tmp_path / "bad.png")
    with pytest.raises(ValueError, match="task must be"):
        plots.plot_task_curves({"x": [make_record(0)]}, tmp_path / "bad.png", task=4)


def test_plot_all_tasks_and_avg_acc(tmp_path: Path, groups) -> None:
    fig = plots.plot_all_tasks(groups["baseline"], tmp_path / "all.png")
    check_png(tmp_path / "all.png")
    check_pdf(tmp_path / "all.pdf")
    assert fig.axes[0].get_title().startswith("baseline (3 seeds")
    fig = plots.plot_avg_acc(groups, tmp_path / "avg.png")
    check_png(tmp_path / "avg.png")
    check_pdf(tmp_path / "avg.pdf")
    # The drawn mean is the mean over seeds of metrics.avg_acc_curve.
    expected = np.mean(
        [metrics.avg_acc_curve(r.acc, r.boundaries) for r in groups["baseline"]], axis=0
    )
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), expected)


def test_nan_holes_and_a_single_seed(tmp_path: Path) -> None:
    holed = []
    for s in range(3):
        r = make_record(s)
        acc = r.acc.copy()
        acc[70:80, :] = np.nan  # an evaluation outage in every seed
        acc[100 + s, 0] = np.nan  # and a hole in one seed only
        holed.append(replace(r, acc=acc))
    stack = np.stack([r.acc[:, 0] for r in holed])
    mean, std = plots._mean_std(stack)
    assert np.isnan(mean[75]) and np.isnan(std[75])
    assert mean[100] == pytest.approx(np.nanmean(stack[:, 100]))
    assert std[100] == pytest.approx(np.nanstd(stack[:, 100], ddof=1))
    # Task 3 before its interval: NaN in every seed.
    assert np.isnan(plots._mean_std(np.stack([r.acc[:, 2] for r in holed]))[0][:PER_TASK]).all()

    plots.plot_run(holed[0], tmp_path / "run.png")
    plots.plot_task_curves({"holed": holed, "one seed": [make_record(7)]}, tmp_path / "f4.png")
    plots.plot_all_tasks([make_record(7)], tmp_path / "one.png", pdf=False)
    plots.plot_avg_acc({"holed": holed}, tmp_path / "avg.png", pdf=False)
    for name in ("run.png", "f4.png", "one.png", "avg.png"):
        check_png(tmp_path / name)


@pytest.mark.parametrize(("task", "interval"), [(1, 2), (1, 3), (2, 3)])
def test_gap_annotation_equals_metrics(task: int, interval: int) -> None:
    rec = make_record(seed=4)
    ann = plots.gap_annotation(rec, task, interval)
    args = (rec.acc, rec.boundaries, task, interval)
    assert ann.gap_depth == metrics.gap_depth(*args)
    assert ann.time_to_recover == metrics.time_to_recover(*args)
    assert ann.gap_depth > 5  # the synthetic curve does dip
    start = PER_TASK * (interval - 1)
    assert ann.switch_point == start and ann.reference_point == start - 1
    assert ann.reference_acc == rec.acc[start - 1, task - 1]
    assert ann.min_point == start + metrics.gap_position(*args)
    assert ann.reference_acc - ann.min_acc == ann.gap_depth
    # The recovery point is the first point from the minimum on back at the reference.
    col = rec.acc[:, task - 1]
    assert col[ann.recovery_point] >= ann.reference_acc
    assert (col[ann.min_point : ann.recovery_point] < ann.reference_acc).all()


def test_gap_annotation_defaults_to_the_last_interval() -> None:
    ann = plots.gap_annotation(make_record())
    assert (ann.task, ann.interval) == (1, N_TASKS)
    with pytest.raises(ValueError):
        plots.gap_annotation(make_record(), task=3)


def test_plot_gap_anatomy_prints_the_metrics(tmp_path: Path) -> None:
    rec = make_record(seed=5)
    fig = plots.plot_gap_anatomy(rec, tmp_path / "anatomy.png", task=1)
    check_png(tmp_path / "anatomy.png")
    check_pdf(tmp_path / "anatomy.pdf")
    texts = all_texts(fig)
    gd = metrics.gap_depth(rec.acc, rec.boundaries, 1, 3)
    ttr = metrics.time_to_recover(rec.acc, rec.boundaries, 1, 3)
    (gd_text,) = [t for t in texts if t.startswith("GD = ")]
    (ttr_text,) = [t for t in texts if t.startswith("TTR = ")]
    assert float(re.search(r"GD = (-?[\d.]+) p\.p\.", gd_text).group(1)) == round(gd, 1)
    assert float(re.search(r"TTR = ([\d.]+) % of the task", ttr_text).group(1)) == round(ttr, 1)


def test_plot_gap_anatomy_when_the_task_never_recovers(tmp_path: Path) -> None:
    rec = make_record(seed=6)
    acc = rec.acc.copy()
    acc[2 * PER_TASK :, 0] -= 30  # task 1 never gets back in interval 3
    rec = replace(rec, acc=acc)
    ann = plots.gap_annotation(rec, 1, 3)
    assert ann.recovery_point is None and math.isnan(ann.time_to_recover)
    fig = plots.plot_gap_anatomy(rec, tmp_path / "never.png", pdf=False)
    assert "TTR undefined (never recovers)" in all_texts(fig)
    check_png(tmp_path / "never.png")


def test_plot_strength_tradeoff(tmp_path: Path) -> None:
    points = [
        (0.0, 16.4, 1.4, 97.67, 0.17),
        (1e-7, 15.0, 1.2, 97.6, 0.2),
        (1e-5, 5.5, 1.0, 97.04, 0.16),
        (5e-5, 3.0, float("nan"), 95.0, float("nan")),  # one seed: no error bar
    ]
    fig = plots.plot_strength_tradeoff(points, tmp_path / "lambda.png")
    check_png(tmp_path / "lambda.png")
    check_pdf(tmp_path / "lambda.pdf")
    ax_gd, ax_acc = fig.axes
    assert ax_gd.get_xscale() == "symlog"
    assert list(ax_gd.get_xticks()) == [0.0, 1e-7, 1e-5, 5e-5]  # λ = 0 is on the axis
    assert [t.get_text() for t in ax_gd.get_xticklabels()] == [
        "0",
        "$10^{-7}$",
        "$10^{-5}$",
        "$5\\times10^{-5}$",
    ]
    assert "GD" in ax_gd.get_ylabel() and "ACC" in ax_acc.get_ylabel()
    assert ax_gd.get_legend().get_texts()[0].get_text() == "baseline (0)"
    with pytest.raises(ValueError):
        plots.plot_strength_tradeoff([], tmp_path / "none.png")


def test_a_learning_rate_sweep_is_drawn_on_a_log_axis_around_its_baseline(tmp_path: Path):
    points = [(1e-4, 9.0, 1.0, 96.0, 0.3), (1e-3, 16.0, 1.0, 97.5, 0.2), (0.01, 30.0, 2.0, 90.0, 1)]
    fig = plots.plot_strength_tradeoff(
        points, tmp_path / "lr.png", axis="Learning rate (lr)", base_value=1e-3, pdf=False
    )
    ax_gd, _ = fig.axes
    assert ax_gd.get_xscale() == "log" and fig.get_supxlabel() == "Learning rate (lr)"
    # one style for the decades: 0.01 beside 10^-3 reads as a power of ten too
    assert [t.get_text() for t in ax_gd.get_xticklabels()] == [
        "$10^{-4}$",
        "$10^{-3}$",
        "$10^{-2}$",
    ]
    assert ax_gd.get_legend().get_texts()[0].get_text() == "baseline ($10^{-3}$)"
    assert ax_gd.lines[-1].get_xdata().tolist() == [1e-3]  # the square on the baseline


def test_a_long_field_label_is_written_once_under_both_panels(tmp_path: Path):
    axis = "Also evaluate at every batch for this many batches after each task switch (window)"
    points = [(2, 9.0, 1.0, 96.0, 0.3), (5, 10.0, 1.0, 96.5, 0.2)]
    fig = plots.plot_strength_tradeoff(points, tmp_path / "w.png", axis=axis, pdf=False)
    assert fig.get_supxlabel() == axis and [ax.get_xlabel() for ax in fig.axes] == ["", ""]
    assert axis not in fig.get_suptitle()


def test_gap_against_accuracy_names_points_only_where_the_names_do_not_collide(tmp_path: Path):
    long = "resnet_norm={}, eval_switch_window=2"
    points = [  # (label, gap, low, high, acc, low, high): two groups almost at one place
        ("baseline", 10.0, 9.0, 11.0, 80.0, 79.0, 81.0),
        (long.format("none"), 5.0, 4.0, 6.0, 85.0, 84.0, 86.0),
        (long.format("group"), 5.05, 4.0, 6.0, 85.02, 84.0, 86.0),
        ("far away", 20.0, 19.0, 21.0, 60.0, 59.0, 61.0),
    ]
    fig = plots.plot_gap_vs_accuracy(points, tmp_path / "g.png", baseline="baseline", pdf=False)
    check_png(tmp_path / "g.png")
    (ax,) = fig.axes
    names = [t.get_text() for t in ax.texts]
    assert names[0] == "baseline" and "far away" in names
    assert sum(name.startswith("resnet_norm") for name in names) == 1  # not one over the other
    boxes = [t.get_window_extent() for t in ax.texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])
    assert fig.get_suptitle().startswith("Gap depth against accuracy") and not ax.get_title()
    labels = ax.get_legend().get_texts()  # every group is still in the legend
    assert sum(t.get_text().startswith("resnet_norm") for t in labels) == 2


def test_activity_of_networks_of_different_depths(tmp_path: Path) -> None:
    """A sweep over the number of hidden layers: each group on the panels of its layers."""

    def with_activity(seed: int, layers: int) -> FakeRecord:
        record = make_record(seed)
        shape = (len(record.eval_steps), N_TASKS, layers)
        active = np.random.default_rng(seed).uniform(0.3, 0.6, shape)
        return replace(record, activity={"active_fraction": active})

    groups = {
        "one layer": [with_activity(s, 1) for s in range(2)],
        "two layers": [with_activity(s, 2) for s in range(2)],
    }
    fig = plots.plot_activity(groups, tmp_path / "activity.png", pdf=False)
    first, second = fig.axes
    assert len(first.lines) > len(second.lines) > 0  # layer 2: the deeper group alone
    assert [ax.get_title() for ax in fig.axes] == ["hidden layer 1", "hidden layer 2"]


def test_a_group_keeps_its_colour_in_every_figure_of_a_report():
    with plots.palette(["baseline", "nd", "sam"]):
        alone = plots._colors_for(["sam"])  # a figure that draws one group of three
        pair = plots._colors_for(["nd", "sam"])
    assert alone[0] == pair[1] and pair[0] != pair[1]
    assert plots._colors_for(["sam"]) == plots._colors(1)  # outside a report: by position


def test_a_memory_sweep_reads_its_sizes_and_its_gaps_interval(tmp_path: Path):
    points = {
        "er": [(200, 5.0, 1.0, 80.0, 1.0), (2000, 4.0, 1.0, 90.0, 1.0), (192000, 3.0, 1, 96, 1)],
        "der": [(200, 6.0, 1.0, 78.0, 1.0), (2000, 5.0, 1.0, 88.0, 1.0)],
    }
    fig = plots.plot_strength_tradeoff(points, tmp_path / "m.png", gap_name="GD_1,5", pdf=False)
    ax_gd = fig.axes[0]
    assert [t.get_text() for t in ax_gd.get_xticklabels()] == ["200", "2000", "192000"]
    assert ax_gd.get_ylabel().startswith("gap depth GD_1,5 (p.p.)")


def test_every_group_of_a_large_study_is_in_the_legend_inside_the_figure(tmp_path: Path):
    points = [(f"group-{i}", i % 7, math.nan, math.nan, 50 + i, math.nan, math.nan)
              for i in range(31)]  # fmt: skip
    fig = plots.plot_gap_vs_accuracy(points, tmp_path / "g.png", baseline="group-0", pdf=False)
    legend = fig.axes[0].get_legend()
    assert len(legend.get_texts()) == 32  # every group and the front
    box = legend.get_window_extent(fig.canvas.get_renderer())
    assert box.y0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def test_gap_against_accuracy_draws_a_front_only_where_one_exists(tmp_path: Path):
    """One group better than the other on both has no front to draw, and the report's
    caption promises none; a group without a gap to measure is hollow and named so; the
    baseline's legend entry says 'baseline' once, whatever its case."""
    dominated = [
        ("Baseline", 9.0, 8.0, 10.0, 90.0, 89.0, 91.0),
        ("nd", 5.0, 4.0, 6.0, 95.0, 94.0, 96.0),
        ("lwf", 0.0, 0.0, 0.0, 40.0, 39.0, 41.0),
    ]
    assert not plots.front_drawn(dominated, forgotten={"lwf"})
    fig = plots.plot_gap_vs_accuracy(
        dominated, tmp_path / "g.png", baseline="Baseline", forgotten={"lwf"}, pdf=False
    )
    (ax,) = fig.axes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["Baseline", "nd", "lwf (no gap to measure)"]  # no "Pareto front"
    traded = [*dominated, ("sam", 4.0, 3.0, 5.0, 92.0, 91.0, 93.0)]
    assert plots.front_drawn(traded, forgotten={"lwf"})
    fig = plots.plot_gap_vs_accuracy(
        traded, tmp_path / "g.png", baseline="Baseline", forgotten={"lwf"}, pdf=False
    )
    assert "Pareto front" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    fig = plots.plot_gap_vs_accuracy(  # a baseline drawn hollow is named so too
        dominated, tmp_path / "g.png", baseline="nd", forgotten={"nd", "lwf"}, pdf=False
    )
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[1] == "nd (baseline) (no gap to measure)"


def test_a_tradeoff_without_a_gap_to_measure_says_so(tmp_path: Path):
    points = [(0.0, math.nan, math.nan, 15.0, 4.0), (1000.0, math.nan, math.nan, 18.0, 0.3)]
    fig = plots.plot_strength_tradeoff(points, tmp_path / "t.png", axis="λ", pdf=False)
    ax_gd = fig.axes[0]
    assert [t.get_text() for t in ax_gd.texts] == ["no gap to measure"]
    assert not ax_gd.get_yticks().size


def test_groups_of_other_task_lengths_are_drawn_each_to_its_end(tmp_path: Path) -> None:
    # a group whose tasks are twice as long: the axis runs to its end, and its switches are
    # marked beside the other group's
    def longer(seed):
        r = make_record(seed)
        return replace(r, eval_steps=r.eval_steps * 2, ends=tuple(2 * e for e in r.ends))

    groups = {"short": [make_record(s) for s in range(2)], "long": [longer(s) for s in range(2)]}
    fig = plots.plot_task_curves(groups, tmp_path / "t.png", task=1, pdf=False)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] == 2 * N_TASKS * PER_TASK
    switches = sorted(line.get_xdata()[0] for line in ax.lines if line.get_linestyle() == "--")
    assert switches == [PER_TASK, 2 * PER_TASK, 2 * PER_TASK, 4 * PER_TASK]
    fig = plots.plot_avg_acc(groups, tmp_path / "a.png", pdf=False)
    switches = {line.get_xdata()[0] for line in fig.axes[0].lines if line.get_linestyle() == "--"}
    assert switches == {PER_TASK, 2 * PER_TASK, 4 * PER_TASK}
