"""`stabgap report`: the tables, figures and plain-sentence findings of any study.

From a folder of run records (ours, imported reference runs, or both) and any profiling
results below it, write into one folder: the poster's Table 1 and a table of every group
(Markdown, CSV, LaTeX), each compared group against the baseline group and every other
verdict (:mod:`stabgap.analysis.verdicts`: adjusted together, with matching intervals), the tidy
table of every metric of every run (CSV, and Parquet with pyarrow), the figures (PNG and
PDF), and ``report.md`` tying them together.

Every group appears in every table; a figure that shows only some says which and why.
The report folder is built aside and put in place at the end; it only ever replaces an
earlier report (see :mod:`stabgap.studies.outputs`).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from stabgap.analysis.costs import COST_NOTE, cost_table, timing_caveats
from stabgap.analysis.export import curve_rows, loss_rows
from stabgap.analysis.fidelity import summary
from stabgap.analysis.forgetting import (
    forgotten_groups,
    forgotten_sentence,
    unlearned_groups,
    unlearned_sentence,
)
from stabgap.analysis.groups import (
    Group,
    axis_label,
    build_groups,
    choose,
    common_settings,
    default_baseline,
    field_label,
    file_name,
    grid_sweeps,
    same_settings,
    split_names,
)
from stabgap.analysis.html import curve_data, write_html
from stabgap.analysis.inside import activity_table
from stabgap.analysis.memory import MEMORY_NOTE, memory_table
from stabgap.analysis.noise import noise_table
from stabgap.analysis.table1 import DEFAULT_LABELS, table1, ttr_cell, ttr_median
from stabgap.analysis.tables import tidy_rows, write_table
from stabgap.analysis.verdicts import (
    FINDING_NOTE,
    comparison_rows,
    family_rows,
    fidelity_table,
    judge,
    sentences,
    ttr_table,
)
from stabgap.analysis.why import why_table
from stabgap.core.config import from_record
from stabgap.core.data import DATASETS
from stabgap.core.methods import METHODS
from stabgap.core.remedies import REMEDIES
from stabgap.cost.flops import architecture
from stabgap.errors import StabgapError
from stabgap.metrics import gap_depth, unit
from stabgap.statistics.comparison import MIN_SEEDS, Family
from stabgap.statistics.summary import GroupSummary, format_mean_std, summarize
from stabgap.studies.mixing import mixed_sentences
from stabgap.studies.outputs import STUDY_FILE, check_report_folder, new_temp_dir, publish_report
from stabgap.studies.plan import relabelled
from stabgap.studies.records import RunRecord, iter_runs

MAX_CURVES = 8  # groups in one curve figure before it stops being readable
NOISE_NOTE = (
    "Each point was evaluated on several independent test subsets: a metric's spread "
    "between the subsets of one run is evaluation noise alone (the network is the same). "
    "Beside the seed-to-seed SD of each metric (on the pooled curves), the SD that "
    "evaluation noise gives one subset's measurement."
)
TTR_NOTE = (
    "Task 1's time to recover in the last interval, baseline against ND, under each "
    "definition: the reference's (back to the single last point before the switch), and the "
    "robust one (a 10-batch level) at fixed tolerances and at tolerances relative to each "
    "dip's depth. A fixed tolerance lets a shallower dip count as recovered sooner; a "
    "relative one holds every dip to the same share of its own drop. Means are over the "
    "seeds that recovered."
)
FIDELITY_NOTE = (
    "The baseline and ND groups run the paper protocol: each Table 1 cell against the "
    "reference's published mean ± sd over its 15 seeds (docs/protocol.md). Equality is tested, "
    "not assumed from a non-significant difference: two one-sided Welch tests against the "
    "margin, equal when the 90 % interval of the difference lies inside it."
)
ACTIVITY_NOTE = (
    "The hidden layers at the last evaluation, averaged over the tasks evaluated: the share "
    "of units active (> 0) on the test images, neuronal decay's quantity Σ h² per image, and "
    "the share of units silent on every test image (mean ± sd over seeds)."
)

WHY_FIGURES = {
    "drift": "Why the gap, drift: task 1's features in the last hidden layer, on its probe "
    "set, against the last point before each switch",
    "head": "Why the gap, head or backbone: task 1's accuracy on its probe set, the network's "
    "(solid), and a nearest-mean classifier's (dashed) and a refitted linear probe's (dotted) "
    "on the same features",
    "sharpness": "Why the gap, sharpness: the top Hessian eigenvalue and the trace of task 1's "
    "loss on its training sample, at each task's end",
    "gradients": "Why the gap, gradients: the cosine between the replayed and the new "
    "examples' gradients at the batches around each switch",
    "path": "Why the gap, loss along the path: task 1's loss on the straight line from the "
    "weights at the first switch to those at task 2's end",
}
WHY_NOTE = (
    "Task 1 at the first switch (interval 2), read from the analyses the runs recorded "
    "(docs/why-the-gap.md); mean ± sd over seeds, n/a where not recorded. The columns:\n\n"
    "- GD_1,2 of the network, of a nearest-mean classifier and of a linear probe refitted on "
    "the same penultimate features, all on task 1's probe set;\n"
    "- the drift of task 1's features in the last hidden layer (their relative change since "
    "the last point before the switch) at the interval's end, and per batch in its first "
    "tenth and after;\n"
    "- the top Hessian eigenvalue and the trace of task 1's loss at task 1's end;\n"
    "- the cosine of the replayed and the new examples' gradients, and the ratio of their "
    "norms, over the gradients_window batches after the switch;\n"
    "- task 1's loss barrier on the straight line from the weights at the switch to those "
    "at task 2's end.\n\n"
    "A contrast within the same runs (network against classifier, early against late drift) "
    "has a paired interval beside Welch's verdict; a sentence interprets it only where both, "
    "adjusted, show it."
)


def check_report_out(runs_dir: Path, out: Path) -> None:
    """Refuse, before any work, a report folder that would overwrite something."""
    check_report_folder(out, runs_dir)


def write_report(
    runs_dir: Path,
    out: Path | None = None,
    baseline: str | None = None,
    compare: Sequence[str] | None = None,
) -> Path:
    """Write the report of every run below `runs_dir` into `out` (default: runs_dir/report).

    Args:
        baseline: the group the others are compared with (a group's key or label);
            default: the study file's, else :func:`~stabgap.analysis.groups.default_baseline`.
        compare: the groups compared with it; default: the study file's, else all others.
    """
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        what = "is a file, not a folder" if runs_dir.exists() else "does not exist"
        raise StabgapError(f"{runs_dir} {what}: give the folder of runs a study wrote")
    out = Path(out) if out is not None else runs_dir / "report"
    check_report_out(runs_dir, out)
    damaged: list = []
    records = relabelled(list(iter_runs(runs_dir, damaged)), runs_dir)
    for e in damaged:
        print(f"stabgap: warning: left out {e.path}: damaged ({e.why})", file=sys.stderr)
    if unloaded := unloaded_extensions(records):
        print(f"stabgap: warning: {_unloaded_text(unloaded)}", file=sys.stderr)
    if not records:
        raise StabgapError(f"no run directories (with run.json) found under {runs_dir}")
    groups = build_groups(records)
    if not any(g.runs for g in groups):
        raise StabgapError(f"every run under {runs_dir} diverged: there is nothing to report")
    chosen = study_choices(runs_dir)
    names = split_names(compare, groups) if compare is not None else chosen.get("compare")
    asked = baseline or chosen.get("baseline")
    base, compared = choose(groups, asked, names or None)
    if asked:
        why = "as " + ("--baseline" if baseline else "the study file") + " names it"
    else:
        why = default_baseline(groups)[1]
    records, groups, compared, left = _of_one_length(records, groups, base, compared, bool(names))
    if left:
        print(f"stabgap: warning: {left}", file=sys.stderr)
    compared, one_task = _without_one_task(base, compared)
    tmp = new_temp_dir(out)
    try:
        said = "; ".join(x for x in (left, one_task) if x)
        _build(records, groups, base, compared, runs_dir, tmp, why, damaged, said)
        publish_report(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _tasks(g: Group) -> int:
    return max(r.acc.shape[1] for r in g.runs + g.diverged)


def _of_one_length(records, groups, base: Group, compared: list[Group], named: bool):
    """The records, groups and compared groups of the baseline's number of tasks (and of one
    task: a profiling run's, which the report shows without gaps). A group of another
    stream length has none of the baseline's intervals to compare: it is left out, and the
    last value returned says so ("" when none is); a group the user `named` to compare is
    an error."""
    n = _tasks(base)
    other = [g for g in groups if _tasks(g) not in (1, n)]
    if not other:
        return records, groups, compared, ""
    if named and (wrong := [g for g in compared if g in other]):
        raise StabgapError(
            f"{wrong[0].label} trains {_tasks(wrong[0])} tasks and the baseline "
            f"{base.label} {n}: a report compares groups of one stream length; compare it "
            "with a baseline of its own length (--baseline)"
        )
    left = (
        f"left out, as they train another number of tasks than the baseline's {n}: "
        + ", ".join(f"{g.label} ({_tasks(g)})" for g in other)
        + "; report them with --baseline one of theirs (and another --out)"
    )
    kept = [g for g in groups if g not in other]
    runs = {id(r) for g in kept for r in g.runs + g.diverged}
    return [r for r in records if id(r) in runs], kept, [g for g in compared if g in kept], left


def _without_one_task(base: Group, compared: list[Group]) -> tuple[list[Group], str]:
    """The compared groups less the one-task ones (a profiling run's) where the baseline
    trains several tasks: shown in the tables, but their final accuracy is one task's, no
    average over the baseline's tasks, and they would widen every family. The sentence
    that says so ("" when none is left out)."""
    n = _tasks(base)
    one = [g for g in compared if n > 1 and _tasks(g) == 1]
    if not one:
        return compared, ""
    names = ", ".join(g.label for g in one)
    return [g for g in compared if g not in one], (
        f"one-task groups are shown but not compared with the baseline ({names}): their final "
        f"accuracy is one task's, not an average over {n}, and they have no switch"
    )


def study_choices(runs_dir: Path) -> dict:
    """The report's choices (baseline, compare) that the study file gave, if any."""
    try:
        studies = json.loads((runs_dir / STUDY_FILE).read_text())["studies"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    for study in reversed(studies):
        if study.get("baseline") or study.get("compare"):
            return {k: study.get(k) for k in ("baseline", "compare")}
    return {}


# --- building ---------------------------------------------------------------------------------
def _build(
    records: list[RunRecord],
    groups: list[Group],
    base: Group,
    compared: list[Group],
    runs_dir: Path,
    out: Path,
    why: str = "",
    damaged: Sequence = (),
    left: str = "",
) -> None:
    from stabgap.analysis import plots

    ordered = [base] + [g for g in groups if g is not base]
    # Every run under its group's key, so that tables, statistics and plots agree.
    keyed = {g.key: [dataclasses.replace(r, experiment=g.key) for r in g.runs] for g in groups}
    all_rows = tidy_rows(
        [dataclasses.replace(r, experiment=g.key) for g in groups for r in g.runs + g.diverged]
    )
    label_of = {g.key: g.label for g in groups}
    write_table(  # the group as every other table names it, and each value's unit
        [{"group": label_of[r["experiment"]], **r, "unit": unit(r["metric"])} for r in all_rows],
        out / "metrics",
    )
    summaries = summarize([r for r in all_rows if not r["diverged"]])
    n_tasks = max(r.acc.shape[1] for r in records)
    # Table 1 reads as the poster's ("Baseline", "ND"); everything else by group label (and
    # an imported group by its own: its name says nothing of the poster's settings).
    labels = {
        g.key: g.label if g.imported else DEFAULT_LABELS.get(g.label, g.label) for g in groups
    }
    shown = {g.key: g.label for g in groups}

    costs, q3 = _cost_columns(runs_dir)
    forgotten = forgotten_groups(ordered, n_tasks)
    unlearned = unlearned_groups(ordered)
    tables = []
    if n_tasks > 1:
        t1 = table1(
            summaries,
            experiments=[g.key for g in ordered],
            cost=costs or None,
            labels=labels,
        )
        for fmt, suffix in (("markdown", "md"), ("csv", "csv"), ("latex", "tex")):
            (out / f"table1.{suffix}").write_text(t1.render(fmt) + "\n")
        gone = [forgotten_sentence(shown[k], f, n_tasks) for k, f in forgotten.items()]
        gone += [unlearned_sentence(shown[k], f) for k, f in unlearned.items()]
        tables.append(("Table 1", t1.render("markdown") + "".join(f"\n\n- {s}" for s in gone)))
    header, rows = groups_table(summaries, ordered, n_tasks)
    write_table(group_rows(summaries, ordered, n_tasks), out / "groups")
    tables.append(("Every group", _markdown_table(header, rows)))

    verdicts = judge(summaries, groups, base, compared, n_tasks, shown, unlearned, forgotten)
    write_table(comparison_rows(verdicts), out / "comparisons")
    write_table(family_rows(verdicts), out / "tests")
    said = sentences(verdicts, base, shown)
    findings, poster = said["findings"], said["poster"]
    header, rows = ttr_table(verdicts)
    if rows:
        (out / "time-to-recover.csv").write_text(_csv([header, *rows]))
        tables.append(
            ("Time to recover, by definition", TTR_NOTE + "\n\n" + _markdown_table(header, rows))
        )
    header, rows = fidelity_table(verdicts)
    if rows:
        (out / "reference.csv").write_text(_csv([header, *rows]))
        text = FIDELITY_NOTE + "\n\n" + _markdown_table(header, rows)
        tables.append(
            ("Against the reference's published values", text + "\n\n" + summary(verdicts.fidelity))
        )

    header, rows = cost_table(ordered, base, shown)
    (out / "cost.csv").write_text(_csv([header, *rows]))
    caveats = timing_caveats(ordered, shown)
    note = COST_NOTE + (f" **{caveats}**" if caveats else "")
    tables.append(("Cost", note + "\n\n" + _markdown_table(header, rows)))

    header, rows = noise_table(ordered, shown, n_tasks)
    if rows:
        (out / "noise.csv").write_text(_csv([header, *rows]))
        tables.append(("Measurement noise", NOISE_NOTE + "\n\n" + _markdown_table(header, rows)))
    header, rows = memory_table(ordered, shown)
    if rows:
        (out / "memory.csv").write_text(_csv([header, *rows]))
        tables.append(("The replay memories", MEMORY_NOTE + "\n\n" + _markdown_table(header, rows)))
    header, rows = activity_table(ordered, shown)
    inside = said["inside"]
    if rows:
        (out / "activity.csv").write_text(_csv([header, *rows]))
        text = ACTIVITY_NOTE + "\n\n" + _markdown_table(header, rows)
        tables.append(("Inside the network", text + "".join(f"\n\n- {s}" for s in inside)))
    header, rows = why_table(ordered, shown)
    if rows:
        (out / "why.csv").write_text(_csv([header, *rows]))
        text = WHY_NOTE + "\n\n" + _markdown_table(header, rows)
        tables.append(("Why the gap", text + "".join(f"\n\n- {s}" for s in said["why"])))
    group_of = {r.name: g.label for g in groups for r in g.runs + g.diverged}
    everything = [r for g in groups for r in g.runs + g.diverged]
    write_table(curve_rows(everything, group_of), out / "curves")
    write_table(loss_rows(everything, group_of), out / "losses")

    colors = plots.palette_colors([labels[g.key] for g in groups if g.runs], labels[base.key])
    with plots.palette(list(colors), labels[base.key]):  # a group, a colour
        figures = _figures(
            plots,
            keyed,
            groups,
            base,
            compared,
            summaries,
            labels,
            n_tasks,
            out,
            verdicts.gapless,  # their gaps measure nothing: drawn hollow
        )
    text = _markdown(
        records,
        groups,
        base,
        compared,
        labels,
        tables,
        findings,
        poster,
        q3,
        figures,
        verdicts.family,
        why,
        damaged,
        left,
    )
    (out / "report.md").write_text(text)
    shown = [g for g in [base, *compared] if g.runs]
    curves = curve_data(
        {labels[g.key]: keyed[g.key] for g in shown},
        n_tasks,
        colors,
        keys={labels[g.key]: g.key for g in shown},
        baseline=labels[base.key],
    )
    write_html(out, text, curves)


# --- tables ----------------------------------------------------------------------------------
# Each group's headline metrics: (title in the Markdown, metric, task, interval, column in
# the data tables, with its unit: % accuracy, p.p. for a difference of accuracies).
Headline = tuple[str, str, int | None, int | None, str]


def headline_columns(n_tasks: int) -> list[Headline]:
    columns = [
        (f"GD_1,{j}", "gap_depth", 1, j, f"gap_depth_1_{j}_pp") for j in range(2, n_tasks + 1)
    ]
    if n_tasks > 1:
        columns.append(
            (
                f"TTR_1,{n_tasks} %",
                "time_to_recover",
                1,
                n_tasks,
                f"time_to_recover_1_{n_tasks}_pct_of_interval",
            )
        )
        columns.append(("min-ACC_1", "min_acc", 1, None, "min_acc_1_pct"))
    columns += [
        ("final ACC", "avg_acc_final", None, None, "final_acc_pct"),
        (f"WC-ACC_{n_tasks}", "wc_acc", None, n_tasks, f"wc_acc_{n_tasks}_pct"),
    ]
    return columns


def groups_table(
    summaries: list[GroupSummary], groups: list[Group], n_tasks: int
) -> tuple[list[str], list[list[str]]]:
    """Every group's headline metrics: mean ± std [95 % interval], seeds, recoveries."""
    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    columns = headline_columns(n_tasks)
    header = ["group", "seeds", *(c[0] for c in columns)]
    rows = []
    for g in groups:
        seeds = f"{len(g.runs)}" + (f" (+{len(g.diverged)} diverged)" if g.diverged else "")
        row = [g.label, seeds]
        for _, metric, task, interval, _ in columns:
            s = index.get((g.key, metric, task, interval))
            if s is None:
                row.append("n/a")
            elif metric == "time_to_recover":
                recovered = index.get((g.key, "recovered", task, interval))
                row.append(ttr_cell(s, recovered, 1, median=True))  # with the never as ∞
            else:
                row.append(_with_ci(s))
        rows.append(row)
    return header, rows


def group_rows(summaries: list[GroupSummary], groups: list[Group], n_tasks: int) -> list[dict]:
    """groups.csv: the numbers of :func:`groups_table`, one column a statistic (mean, sd,
    the 95 % interval where it is shown, n), the unit in each column's name."""
    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    rows = []
    for g in groups:
        row: dict = {
            "group": g.label,
            "experiment": g.base,
            "seeds": len(g.runs),
            "diverged": len(g.diverged),
        }
        for _, metric, task, interval, column in headline_columns(n_tasks):
            s = index.get((g.key, metric, task, interval))
            low, high = _interval(s) if s is not None else (math.nan, math.nan)
            numbers = (s.mean, s.std, low, high) if s is not None else (math.nan,) * 4
            for stat, value in zip(("mean", "sd", "ci95_low", "ci95_high"), numbers, strict=True):
                row[f"{column}_{stat}"] = None if math.isnan(value) else value
            row[f"{column}_n"] = s.n if s is not None else 0
            if metric == "time_to_recover":  # the seeds left out of its mean, and its median
                row[f"{column}_never_recovered"] = s.n_undefined if s is not None else None
                row[f"{column}_median"] = _censored_median(s)
        rows.append(row)
    return rows


def _censored_median(ttr: GroupSummary | None) -> float | None:
    """A TTR's median over every seed, those that never recovered (left out of its mean)
    counted as +inf; None without values."""
    if ttr is None or ttr.n + ttr.n_undefined == 0:
        return None
    return ttr_median(ttr, ttr.n_undefined)


def _interval(s: GroupSummary) -> tuple[float, float]:
    """A group's 95 % interval, where it has the seeds a test needs (else NaN): from two
    seeds, t's one degree of freedom makes it span most of what is possible."""
    return (s.ci95_low, s.ci95_high) if s.n >= MIN_SEEDS else (math.nan, math.nan)


def _with_ci(s: GroupSummary, digits: int = 2) -> str:
    text = format_mean_std(s.mean, s.std, digits)
    low, high = _interval(s)
    if not math.isnan(low):
        text += f" [{low:.{digits}f}, {high:.{digits}f}]"
    return text


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _csv(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _cost_columns(runs_dir: Path) -> tuple[dict[str, dict[str, str]], str | None]:
    """Table 1's cost columns and the Q3 sentence, from profiling results if any."""
    from stabgap.cost.profile import cost_columns

    return cost_columns(runs_dir)


# --- figures ---------------------------------------------------------------------------------
def _figures(plots, keyed, groups, base, compared, summaries, labels, n_tasks, out, gapless):
    # gapless: the keys of the groups whose gap measures nothing (task 1 forgotten before
    # the last switch, or never learned): hollow, or off a gap panel
    figures: list[tuple[str, str]] = []

    def figure(name: str, caption: str, draw, *args, **kwargs) -> None:
        # two groups whose labels make one file name ("my exp 1", "my_exp_1") each keep
        # their figure: the second is numbered, not drawn over the first
        stem, k = name, 1
        while f"figures/{name}.png" in (path for path, _ in figures):
            k += 1
            name = f"{stem}-{k}"
        draw(*args, out / "figures" / f"{name}.png", **kwargs)
        figures.append((f"figures/{name}.png", caption))

    shown = [base] + [g for g in compared if g is not base]
    shown = [g for g in shown if g.runs]
    why = _which(shown, groups)
    # Every group asked for is drawn: more than a figure can show legibly go on further
    # figures of the same kind, each with the baseline.
    rest, size = shown[1:], MAX_CURVES - 1
    pages = [[base, *rest[i : i + size]] for i in range(0, len(rest), size)] or [[base]]

    def paged(name: str, i: int) -> tuple[str, str]:
        if len(pages) == 1:
            return name, why
        return f"{name}-{i}", f"{why}: figure {i} of {len(pages)}, each with the baseline"

    if n_tasks > 1:
        for i, page in enumerate(pages, start=1):
            name, reason = paged("task1-accuracy", i)
            figure(
                name,
                f"Task-1 accuracy, {_spread(page)} ({reason}); insets zoom on the task "
                "switches (the poster's Figure 4).",
                plots.plot_task_curves,
                {labels[g.key]: keyed[g.key] for g in page},
            )
        points = [_point(summaries, g, labels, n_tasks) for g in groups if g.runs]
        gone = {labels[g.key] for g in groups if g.key in gapless}
        drawn = plots.front_drawn(points, gone)
        front = (
            "; the dashed line is the Pareto front"
            + (" of the groups that still knew task 1 before the last switch" if gone else "")
            if drawn
            else ""
        )
        hollow = (
            " (those that did not know task 1 before the last switch are hollow"
            + (" and off the front" if drawn else "")
            + ": their gap measures nothing)"
            if gone
            else ""
        )
        figure(
            "gap-vs-accuracy",
            f"Gap depth GD_1,{n_tasks} against final average accuracy for every group, the "
            f"baseline in black (95 % intervals over seeds, from {MIN_SEEDS} seeds){front}"
            f"{hollow}.",
            plots.plot_gap_vs_accuracy,
            points,
            gap_name=f"GD_1,{n_tasks}",
            baseline=labels[base.key],
            forgotten=gone,
        )
    # the groups of the report's stream length: a one-task profiling run has no gap to trade
    long = [g for g in groups if g.runs and _tasks(g) == n_tasks]
    for name, lines in (grid_sweeps(long) if n_tasks > 1 else {}).items():
        lines = _named_lines(lines, name, labels)
        trade = {
            line: [
                (g.config[name], *_tradeoff(summaries, g.key, n_tasks, g.key in gapless))
                for g in members
            ]
            for line, members in lines.items()
        }
        which = (
            f"one line for each value of the other settings: {'; '.join(lines)}"
            if len(lines) > 1
            else "the groups that differ only in it"
        )
        if any(g.key in gapless for members in lines.values() for g in members):
            which += "; a group whose gap measures nothing is left off the gap's panel"
        figure(
            f"tradeoff-{name}",
            f"Gap depth GD_1,{n_tasks} and final average accuracy against "
            f"{field_label(name)}, mean ± std over seeds ({which}).",
            plots.plot_strength_tradeoff,
            trade,
            axis=axis_label(name),
            gap_name=f"GD_1,{n_tasks}",
            # the black square is the report's baseline, where it is on the line: another
            # group at the baseline's value (fine-tuning at λ = 0 beside ER) is not it
            base_value=base.config.get(name)
            if len(lines) == 1 and any(g is base for g in next(iter(lines.values())))
            else None,
        )
    for g in shown:
        figure(
            f"all-tasks-{file_name(g.label)}",
            f"Every task's accuracy in '{labels[g.key]}' ({_spread([g])}).",
            plots.plot_all_tasks,
            keyed[g.key],
            title=labels[g.key],
        )
    for i, page in enumerate(pages, start=1):
        curves = {labels[g.key]: keyed[g.key] for g in page}
        name, reason = paged("average-accuracy", i)
        figure(
            name,
            f"Average accuracy over the tasks seen so far, {_spread(page)} ({reason}).",
            plots.plot_avg_acc,
            curves,
        )
        if any(r.loss is not None for runs in curves.values() for r in runs):
            name, reason = paged("training-loss", i)
            penalized = any(r.penalty is not None for runs in curves.values() for r in runs)
            figure(
                name,
                "Training loss, mean over seeds (a moving average of 10 batches within each "
                "task)"
                + (", and dashed the part of it beyond the cross-entropy" if penalized else "")
                + f" ({reason}).",
                plots.plot_losses,
                curves,
            )
        if all(runs[0].activity for runs in curves.values()):
            name, reason = paged("activity", i)
            figure(
                name,
                "Share of each hidden layer's units active on task 1's test images over "
                f"training, {_spread(page)} ({reason}).",
                plots.plot_activity,
                curves,
            )
        for what, caption in WHY_FIGURES.items():
            key = plots.WHY_PANELS[what][0][0]
            if n_tasks > 1 and all(key in runs[0].analyses for runs in curves.values()):
                name, reason = paged(f"why-{what}", i)
                figure(name, f"{caption}, {_spread(page)} ({reason}).", plots.plot_why, curves,
                       what=what)  # fmt: skip
    if n_tasks > 1:
        example, measured = typical_run(keyed[base.key], n_tasks)
        which = "the lower of its two middle values" if measured % 2 == 0 else "its median"
        figure(
            "gap-anatomy",
            f"How GD and TTR are read, on the '{labels[base.key]}' run whose GD_1,{n_tasks} is "
            f"{which} over the group's seeds (seed {example.config['seed']}; the poster's "
            "Figure 1).",
            plots.plot_gap_anatomy,
            example,
            title=f"{labels[base.key]}, seed {example.config['seed']}",
        )
    return figures


def typical_run(runs: list[RunRecord], n_tasks: int) -> tuple[RunRecord, int]:
    """The run whose task-1 gap depth in the last interval is the median of the group's (the
    lower of the middle two where they are even in number), and how many runs have one."""
    depths = [r.measure(gap_depth, 1, n_tasks) for r in runs]
    defined = sorted((d, i) for i, d in enumerate(depths) if not math.isnan(d))
    return (runs[defined[(len(defined) - 1) // 2][1]] if defined else runs[0]), len(defined)


def _protocol(base: Group, groups: Sequence[Group]) -> str:
    """The baseline group's protocol in a sentence (what a reader needs to know the study
    by); "" for runs imported from elsewhere, whose config is their source's."""
    c = base.config
    if base.imported or "stream" not in c:
        return ""
    others = any(g is not base and not g.imported and g.runs for g in groups)

    def show(v) -> str:
        return ",".join(map(str, v)) if isinstance(v, list | tuple) else str(v)

    return (
        f"The baseline group runs the {c['stream']} stream of {_dataset_title(c)}; network: "
        f"{_network(c)}; optimizer {c['optimizer']} at lr {show(c['lr'])}; "
        f"{c['batches_per_task']} batches a task of {c['batch_size']} images; replay "
        f"{c['replay']}. "
        # (imported groups' names say where they came from, not how they differ)
        + ("Each other group of stabgap's differs as its name says. " if others else "")
    )


def _dataset_title(c: dict) -> str:
    """The dataset as its authors write it ("Fashion-MNIST"); its config name if unknown."""
    known = DATASETS.get(str(c["dataset"]))
    return known.title if known is not None else str(c["dataset"])


def _twins(groups: Sequence[Group], labels: dict[str, str]) -> str:
    """A sentence for groups that ran one setting under two names ("" if none)."""
    said = []
    for same in same_settings(groups):
        names = " and ".join(f"**{labels[g.key]}**" for g in same)
        said.append(
            f"{names} ran the same settings under different names: they differ in name only, "
            f"{_count_word(len(same))} samples of one setting. "
        )
    return "".join(said)


def _count_word(n: int) -> str:
    return {2: "two", 3: "three", 4: "four"}.get(n, str(n))


def _network(c: dict) -> str:
    """A run's network in a few words, from the fields that network reads (as `stabgap
    cost` names it); its name alone where the record's config cannot be rebuilt."""
    try:
        return architecture(from_record(c))
    except (StabgapError, KeyError, TypeError, ValueError):  # e.g. a plugin's, not loaded
        return str(c["model"])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _spread(groups: list[Group]) -> str:
    """What a curve and its band are: over seeds, or one seed's run."""
    if all(len(g.runs) == 1 for g in groups):
        return "one seed each (no band)"
    return "mean ± std over seeds"


def _which(shown: list[Group], groups: list[Group]) -> str:
    total = sum(1 for g in groups if g.runs)
    empty = [g.label for g in groups if not g.runs]
    text = "every group" if len(shown) == total else "the baseline and the compared groups"
    if empty:
        text += "; not " + "; ".join(empty) + ", whose every run diverged"
    return text


def _point(summaries, g: Group, labels, n_tasks: int) -> tuple:
    def get(metric, task, interval):
        s = next(
            (
                s
                for s in summaries
                if (s.experiment, s.metric, s.task, s.interval) == (g.key, metric, task, interval)
            ),
            None,
        )
        return (math.nan,) * 3 if s is None else (s.mean, *_interval(s))

    return (labels[g.key], *get("gap_depth", 1, n_tasks), *get("avg_acc_final", None, None))


# A trade-off line named by the settings it shares, up to this many characters; past it, by
# its groups (a methods study's lines differ in many fields, which no legend can hold).
LINE_NAME_MAX = 40


def _named_lines(lines: dict[str, list], field: str, labels: dict[str, str]) -> dict[str, list]:
    """A trade-off figure's lines, each named by its settings when every such name is
    short, else by its groups' labels in the order of `field`'s values."""
    if all(len(line) <= LINE_NAME_MAX for line in lines):
        return lines
    return {
        " / ".join(labels[g.key] for g in sorted(members, key=lambda g: g.config[field])): members
        for members in lines.values()
    }


def _tradeoff(
    summaries, key: str, n_tasks: int, gapless: bool = False
) -> tuple[float, float, float, float]:
    """A trade-off figure's point: GD's and final ACC's mean and std (GD's NaN, not drawn,
    where it measures nothing: task 1 forgotten before the last switch, or never learned)."""
    index = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    gd, acc = index[(key, "gap_depth", 1, n_tasks)], index[(key, "avg_acc_final", None, None)]
    if gapless:
        return math.nan, math.nan, acc.mean, acc.std
    return gd.mean, gd.std, acc.mean, acc.std


def unloaded_extensions(records: Sequence[RunRecord]) -> list[str]:
    """The remedies and methods the runs trained with that no module loaded in this process
    defines: a plugin's, whose module $STABGAP_PLUGINS does not name here."""
    used = {
        n for r in records for kind in ("remedies", "methods") for n in r.metadata.get(kind) or ()
    }
    return sorted(used - {*REMEDIES, *METHODS})


def _unloaded_text(names: list[str]) -> str:
    return (
        f"the runs trained with {', '.join(names)}, which no module loaded here defines (a "
        "plugin's): their FLOPs and what the report knows of them are left out; name the "
        "plugin's module in $STABGAP_PLUGINS and report again."
    )


# --- report.md ----------------------------------------------------------------------------------
def _capitalized(text: str) -> str:
    """A warning's text as a sentence of report.md."""
    return text[:1].upper() + text[1:]


def _pairing(groups) -> str:
    """What the paired intervals rest on: stabgap's runs of one seed share their random
    numbers; imported runs' seeds are their source's, and what those shared is unknown."""
    imported = "a paired interval with an imported group pairs runs by seed number alone."
    if all(g.imported for g in groups):
        return (
            "The paired interval over shared seeds is shown beside Welch's; the verdicts "
            "rest on unpaired tests. The runs' seeds are their own loop's, which may share nothing "
            f"across groups: {imported}"
        )
    text = (
        "Runs that stabgap trained with one seed share their initialisation, batches and test "
        "subsets across groups (common random numbers), so the paired interval over shared "
        "seeds is shown beside Welch's; the verdicts rest on unpaired tests, which do not "
        "assume that."
    )
    if any(g.imported for g in groups):
        text += (
            f" The imported runs' seeds are their own loop's: {imported} Their protocol is "
            "their loop's too, which the report does not know: a difference between an "
            "imported group and stabgap's may come from either."
        )
    return text


def _no_verdicts(records, compared) -> str:
    """Why a report states no verdict: the first reason that holds."""
    if not compared:
        return "there is no other group to compare with the baseline."
    if max(r.acc.shape[1] for r in records) < 2:
        return "the runs have one task, so no switch: no gap, and nothing the report compares."
    return f"a test needs at least {MIN_SEEDS} seeds in each group compared."


def _markdown(
    records,
    groups,
    base,
    compared,
    labels,
    tables,
    findings,
    poster,
    q3,
    figures,
    family: Family,
    why: str = "",
    damaged: Sequence = (),
    left: str = "",
):
    sources = sorted({r.metadata.get("source", "stabgap") for r in records})
    n_ok = sum(len(g.runs) for g in groups)
    common = common_settings(groups)
    parts = [
        "# Stability-gap study report",
        f"{_count(len(records), 'run')} in {_count(len(groups), 'group')} ({', '.join(sources)})"
        + (f"; every group has {common}" if common else "")
        + f". {_protocol(base, groups)}{_twins(groups, labels)}"
        + f"Baseline group: **{labels[base.key]}**"
        + (f" ({why})" if why else "")
        + "; compared with it: "
        + ("; ".join(labels[g.key] for g in compared) or "none")
        + ". Mean ± sample standard deviation over seeds, [95 % t interval of the mean, "
        f"unadjusted, cut to the values the metric can take; shown from {MIN_SEEDS} seeds]. "
        "TTR is averaged over the seeds that recovered, with the number that "
        "never did and the median counting those as never. "
        + (
            "Verdicts: Welch's t-test (on a TTR where seeds never recovered, an exact "
            "rank-sum test that ranks them last, with the Hodges–Lehmann shift and the "
            f"shifts that test accepts as its interval), {family.describe()}, each shown "
            "with the simultaneous interval at the same level, which excludes 0 exactly when "
            "the adjusted p is below 0.05. A difference that is not significant is not shown at "
            "its n, which is not equality: the sentence says what difference that n could have "
            "detected. " + _pairing(groups)
            if family.sizes
            else "No verdicts: " + _no_verdicts(records, compared)
        ),
    ]
    if left:
        parts.append(_capitalized(left) + ".")
    parts += mixed_sentences(records)
    if unloaded := unloaded_extensions(records):
        parts.append(_capitalized(_unloaded_text(unloaded)))
    if damaged:
        parts.append(
            f"{len(damaged)} run folder(s) are damaged and left out: "
            + "; ".join(f"{e.path.name} ({e.why})" for e in damaged)
            + ". Resuming their study sets them aside and runs them again."
        )
    diverged = [r for g in groups for r in g.diverged]
    if diverged:
        parts.append(
            f"{len(diverged)} of {len(records)} runs diverged and are left out of every "
            "mean: "
            + "; ".join(f"{r.name} ({r.metadata.get('divergence', 'diverged')})" for r in diverged)
            + f". Runs that did not diverge: {n_ok}."
        )
    for title, table in tables:
        parts += [f"## {title}", table]
    if findings:
        parts += ["## Each group against the baseline", FINDING_NOTE]
        parts += [f"- {s}" for s in findings]
    if poster or q3:
        parts += ["## The poster's questions and reported findings", *[f"- {s}" for s in poster]]
        if q3:
            parts.append(f"- {q3}")
    parts += ["## Figures"]
    parts += [
        f"![{caption}]({path})\n\n*{caption}*" if path else caption for path, caption in figures
    ]
    parts += [
        "Files: `report.html` (this report as one page that works offline, its accuracy "
        "curves interactive), `table1.{md,csv,tex}` (the LaTeX table uses booktabs' rules), "
        "`groups.csv`, `comparisons.csv` (every comparison with the baseline, with its "
        "tests), `tests.csv` (every test the report states, once, with its section and what "
        "it is adjusted over), `metrics.csv` (every metric of every run, with its config), "
        "`cost.csv` (each group's training cost), `curves.csv` (every run's "
        "accuracy and activity at every point), `losses.csv` (its loss at every batch), and, "
        "where measured, `noise.csv`, `memory.csv`, `activity.csv`, `time-to-recover.csv` and "
        "`reference.csv`. The tables of numbers (groups, comparisons, metrics, curves, "
        "losses) join on their `group` column, each statistic a column with its unit in its "
        "name, and are also written as Parquet where pyarrow is installed."
    ]
    return "\n\n".join(parts) + "\n"
