"""`stabgap report`: the tables, figures and plain-sentence answers of a study.

From a folder of run records (ours, imported reference runs, or both) and any profiling
results below it, write into one folder: the poster's Table 1 (Markdown, CSV, LaTeX), the
tidy table of every metric (CSV, and Parquet with pyarrow), summaries per experiment,
the figures (PNG and PDF), and ``report.md`` tying them together with the answers to the
poster's questions Q1–Q3.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from stabgap.aggregate import summarize, table1, tidy_rows, write_table
from stabgap.errors import StabgapError
from stabgap.records import RunRecord, iter_runs
from stabgap.stats import answer_questions, compare

# Fields that do not define an experiment's science (where it ran, which seed).
NOT_SCIENCE = ("seed", "device", "data_dir", "decay_lambda")


def write_report(runs_dir: Path, out: Path | None = None) -> Path:
    """Write the report of every run below `runs_dir` into `out` (default: runs_dir/report).

    The report is built in a temporary folder and swapped in at the end, so an earlier
    report is replaced whole or not at all.
    """
    records = [r for r in iter_runs(runs_dir) if r.path is None or "report" not in r.path.parts]
    if not records:
        raise StabgapError(f"no run directories (with run.json) found under {runs_dir}")
    out = out or runs_dir / "report"
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _build(records, runs_dir, tmp)
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _build(records: list[RunRecord], runs_dir: Path, out: Path) -> None:
    from stabgap import plots

    rows = tidy_rows(records)
    write_table(rows, out / "metrics")
    summaries = summarize(rows)
    by_exp = _by_experiment(records)
    main = [e for e in ("baseline", "nd") if e in by_exp] or list(by_exp)[:2]
    n_tasks = max(r.acc.shape[1] for r in records)

    costs, q3 = _cost_columns(runs_dir)
    t1 = table1(summaries, experiments=main, cost=costs or None)
    for fmt, suffix in (("markdown", "md"), ("csv", "csv"), ("latex", "tex")):
        (out / f"table1.{suffix}").write_text(t1.render(fmt) + "\n")

    figures: list[tuple[str, str]] = []

    def figure(name: str, caption: str, draw, *args, **kwargs) -> None:
        draw(*args, out / "figures" / f"{name}.png", **kwargs)
        figures.append((f"figures/{name}.png", caption))

    family = lambda_family(by_exp, main[0]) if n_tasks > 1 else {}
    if len(family) > 1:
        figure(
            "task1-accuracy",
            "Task-1 accuracy, mean ± std over seeds, for the baseline "
            "and each λ (the poster's Figure 4); insets zoom on the task switches.",
            plots.plot_task_curves,
            {f"{e} (λ={lam:g})": by_exp[e] for e, lam in family.items()},
        )
        points = [_tradeoff_point(summaries, e, lam, n_tasks) for e, lam in family.items()]
        figure(
            "lambda-tradeoff",
            f"Gap depth GD_1,{n_tasks} and final average accuracy "
            "against λ: a stronger decay gives a shallower gap but costs accuracy.",
            plots.plot_lambda_tradeoff,
            points,
        )
    for e in main:
        figure(
            f"all-tasks-{e}",
            f"Every task's accuracy in '{e}' (mean ± std).",
            plots.plot_all_tasks,
            by_exp[e],
            title=e,
        )
    replay_pairs = [e for e in ("baseline", "nd", "no-replay", "nd-no-replay") if e in by_exp]
    figure(
        "average-accuracy",
        "Average accuracy over the tasks seen so far.",
        plots.plot_avg_acc,
        {e: by_exp[e] for e in replay_pairs or main},
    )
    if n_tasks > 1:
        figure(
            "gap-anatomy",
            f"How GD and TTR are read, on one '{main[0]}' run (the poster's Figure 1).",
            plots.plot_gap_anatomy,
            by_exp[main[0]][0],
        )

    answers = answer_questions(summaries) if n_tasks > 1 else []
    comparison = _main_comparison(by_exp, main, n_tasks)
    text = _markdown(
        records, t1.render("markdown"), _experiment_table(records), comparison, answers, q3, figures
    )
    (out / "report.md").write_text(text)


def _by_experiment(records: Sequence[RunRecord]) -> dict[str, list[RunRecord]]:
    groups: dict[str, list[RunRecord]] = {}
    for r in records:
        if not r.diverged:
            groups.setdefault(r.experiment, []).append(r)
    return groups


def lambda_family(by_exp: dict[str, list[RunRecord]], base: str) -> dict[str, float]:
    """Experiments that differ from `base` only in λ, sorted by λ: the λ sweep."""

    def science(e: str) -> dict:
        return {k: v for k, v in by_exp[e][0].config.items() if k not in NOT_SCIENCE}

    family = {
        e: float(rs[0].config["decay_lambda"])
        for e, rs in by_exp.items()
        if science(e) == science(base)
    }
    return dict(sorted(family.items(), key=lambda kv: kv[1]))


def _tradeoff_point(summaries, experiment: str, lam: float, n_tasks: int) -> tuple:
    def get(metric: str, task, interval):
        s = next(
            s
            for s in summaries
            if (s.experiment, s.metric, s.task, s.interval) == (experiment, metric, task, interval)
        )
        return s.mean, s.std

    gd, acc = get("gap_depth", 1, n_tasks), get("avg_acc_final", None, None)
    return (lam, gd[0], gd[1], acc[0], acc[1])


def _main_comparison(by_exp, main: list[str], n_tasks: int) -> list[str]:
    if len(main) < 2 or n_tasks < 2:
        return []
    a, b = main
    lines = []
    for metric, task, interval, label in (
        ("gap_depth", 1, n_tasks, f"GD_1,{n_tasks}"),
        ("time_to_recover", 1, n_tasks, f"TTR_1,{n_tasks}"),
        ("avg_acc_final", None, None, "ACC"),
    ):
        a_values, b_values = (
            {r.config["seed"]: _value(r, metric, task, interval) for r in by_exp[e]} for e in (a, b)
        )
        c = compare(a_values, b_values, a, b, metric=label)
        lines.append(c.sentence())
    return lines


def _value(record: RunRecord, metric: str, task, interval):
    return next(
        m.value
        for m in record.metrics
        if (m.metric, m.task, m.interval) == (metric, task, interval)
    )


def _experiment_table(records: Sequence[RunRecord]) -> str:
    from stabgap.study import summary_rows

    header, *rows = summary_rows(records)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _cost_columns(runs_dir: Path) -> tuple[dict[str, dict[str, str]], str | None]:
    """Table 1's cost columns and the Q3 sentence, from profiling results if any."""
    try:
        from stabgap.profile import cost_columns
    except ImportError:
        return {}, None
    return cost_columns(runs_dir)


def _markdown(
    records,
    table_1: str,
    experiments: str,
    comparison: list[str],
    answers: list[str],
    q3: str | None,
    figures: list[tuple[str, str]],
) -> str:
    n_exp = len({r.experiment for r in records})
    sources = sorted({r.metadata.get("source", "stabgap") for r in records})
    parts = [
        "# Stability-gap study report",
        f"{len(records)} runs of {n_exp} experiments ({', '.join(sources)}). Mean ± sample "
        "standard deviation over seeds; TTR leaves out the seeds that never recover, and "
        "says how many. Diverged runs are counted but left out of the means.",
        "## Table 1",
        table_1,
        "## All experiments",
        experiments,
    ]
    if comparison:
        parts += ["## Baseline against ND", *[f"- {s}" for s in comparison]]
    if answers or q3:
        parts += ["## The poster's questions", *[f"- {s}" for s in answers]]
        if q3:
            parts.append(f"- {q3}")
    parts += ["## Figures"]
    parts += [f"![{caption}]({path})\n\n*{caption}*" for path, caption in figures]
    parts += ["Tables: `table1.{md,csv,tex}`, every metric of every run: `metrics.csv`."]
    return "\n\n".join(parts) + "\n"
