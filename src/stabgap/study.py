"""The Python face of `stabgap run` and `stabgap metrics`: functions a notebook can call.

>>> from stabgap.study import run_study
>>> records = run_study("quick", ["baseline"], seeds=[1], out=None)  # doctest: +SKIP
>>> records[0].acc.shape, records[0].metrics[:2]                     # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stabgap.analysis.groups import choose, planned_groups
from stabgap.atomic import write_text
from stabgap.core.config import RunConfig
from stabgap.errors import StabgapError, did_you_mean
from stabgap.studies.mixing import check_resumed
from stabgap.studies.outputs import STUDY_FILE, check_study_folder
from stabgap.studies.plan import StudySpec, study_spec
from stabgap.studies.presets import DEFAULT_PRESET, get_preset
from stabgap.studies.records import RunRecord, iter_runs
from stabgap.studies.sweep import check_execution, execute, preflight, stderr_reporter
from stabgap.text import aligned


def run_study(
    preset: str = DEFAULT_PRESET,
    experiments: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    n_seeds: int | None = None,
    overrides: dict[str, Any] | None = None,
    out: str | os.PathLike[str] | None = None,
    grid: dict[str, list[Any]] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    **how: Any,
) -> list[RunRecord]:
    """Run `experiments` of `preset` for `seeds`; return the records, in memory.

    Args:
        preset: "quick", "paper", ... (see ``stabgap presets``).
        experiments: names from the preset, or ["all"]; default: the preset's default.
        seeds: explicit seeds; else the first `n_seeds` of the preset's seed sequence
            (default: the preset's number of seeds).
        overrides: config fields applied on top of every experiment.
        out: folder for the run records (new, empty, or one of earlier runs, which is
            resumed); None keeps everything in memory.
        grid: lists of values of config fields, every combination run.
        data_dir: the dataset's folder (default: $STABGAP_DATA, else the user cache, where
            it is downloaded).
        how: how runs execute and what is printed: see :func:`run_spec`. With `workers` of
            2 or more, call it under ``if __name__ == "__main__":`` in a script: each worker
            is a new process that imports the script again.
    """
    unknown = [k for k in how if k not in inspect.signature(run_spec).parameters]
    if unknown:
        known = list(inspect.signature(run_study).parameters)[:-1]
        known += [k for k in inspect.signature(run_spec).parameters if k not in ("spec", "out")]
        raise StabgapError(
            f"run_study has no argument '{unknown[0]}'{did_you_mean(unknown[0], known)}; "
            f"its arguments: {', '.join(known)}"
        )
    if seeds is not None and (isinstance(seeds, str | bytes) or not hasattr(seeds, "__iter__")):
        raise StabgapError(
            f"seeds={seeds!r}: give a list of whole numbers (seeds=[1, 2, 3]), or n_seeds "
            "for the preset's first ones"
        )
    values: dict[str, Any] = {"preset": preset, "set": dict(overrides or {})}
    if data_dir is not None:
        values["set"]["data_dir"] = str(data_dir)
    for key, value in (("experiments", experiments), ("n_seeds", n_seeds), ("grid", grid)):
        if value is not None:
            values[key] = (
                list(value) if key == "experiments" and not isinstance(value, str) else value
            )
    if seeds is not None:
        values["seeds"] = list(seeds)
    spec = study_spec(values, source="run_study")
    return run_spec(spec, None if out is None else Path(out), **how)


def run_spec(
    spec: StudySpec,
    out: Path | None,
    workers: int = 1,
    max_stack: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    threads: int | None = None,
    plot: bool = True,
    quiet: bool = True,
    echo: Callable[[str], None] | None = None,
    report: Callable[[str], None] | None = None,
    tensorboard: bool = False,
) -> list[RunRecord]:
    """Run what is missing of a study under `out` (or all of it in memory).

    Every config and the output folder are checked before the first run trains; the
    folder's runs are kept and reused, and a tidy table of all its runs is written.

    Args:
        workers, max_stack, executor, ray_address, threads: how runs execute (see
            :func:`stabgap.studies.sweep.execute`).
        quiet: no progress lines on stderr.
        report: where progress lines go instead (e.g. a list's append).
        tensorboard: also write TensorBoard event files (beside the live logs in out/logs).
        echo: where to print the summary table (e.g. print); None prints nothing.
    """
    from stabgap.analysis.tables import tidy_rows, write_table

    check_execution(workers, max_stack, executor, threads, ray_address, tensorboard)
    specs = spec.plan()  # validates every config first
    if spec.baseline or spec.compare:  # the report's choices name groups this study has
        keys = (f"{spec.source}: baseline", f"{spec.source}: compare")
        choose(planned_groups(specs), spec.baseline, spec.compare or None, keys)
    if out is not None:
        check_study_folder(out)
        check_resumed(specs, out)  # a run it would reuse is the run it plans
    preflight(specs, local=executor == "local")  # data and sizes, before anything is written
    _warn_of_settings(specs)
    records = execute(
        specs,
        out,
        workers=workers,
        max_stack=max_stack,
        executor=executor,
        ray_address=ray_address,
        draw=_plot_run if plot else None,
        report=report or (None if quiet else stderr_reporter()),
        threads=threads,
        tensorboard=tensorboard,
        on_start=None if out is None else lambda: _record_study(out, spec),
    )
    if out is not None:
        write_table(tidy_rows(readable_runs(out)), out / "table")
    if echo is not None:
        echo(summary_table(records))
        if out is not None:
            echo(f"\n{len(records)} run(s) in {out}")
    return records


def _warn_of_settings(specs: list) -> None:
    """Warn, before any work, of settings that run but may not measure what is meant."""
    from stabgap.core.config import cautions

    said: dict[str, list[str]] = {}
    for s in specs:
        texts = cautions(s.config)
        if s.config.task_count == 1:
            texts.append(
                "a stream of one task has no switch, so no stability gap to measure (the paper "
                "preset's profiling experiments run one task on purpose; for a gap give the "
                "stream two tasks or more)"
            )
        for text in texts:
            said.setdefault(text, [])
            if s.experiment not in said[text]:
                said[text].append(s.experiment)
    for text, experiments in said.items():
        print(f"stabgap: warning: {', '.join(experiments)}: {text}", file=sys.stderr)


def readable_runs(root: Path) -> list[RunRecord]:
    """Every run below `root`, labelled as its study now plans it; a damaged one is named
    on stderr and left out."""
    from stabgap.studies.plan import relabelled

    damaged: list = []
    records = list(iter_runs(root, damaged))
    for e in damaged:
        print(f"stabgap: warning: left out {e.path}: damaged ({e.why})", file=sys.stderr)
    return relabelled(records, root) if root.is_dir() else records


def _plot_run(record: RunRecord, path: Path) -> None:
    from stabgap.analysis.plots import plot_run  # matplotlib only when a picture is wanted

    plot_run(record, path)


def _record_study(out: Path, spec: StudySpec) -> None:
    """Add the study to the folder's ``study.json``: what was asked, for the report and you."""
    import dataclasses
    import json

    path = out / STUDY_FILE
    try:
        studies = json.loads(path.read_text())["studies"]
    except (OSError, ValueError, KeyError, TypeError):
        studies = []
    entry = json.loads(json.dumps(dataclasses.asdict(spec), default=str))  # as it reads back
    if not studies or studies[-1] != entry:
        write_text(path, json.dumps({"studies": [*studies, entry]}, indent=1, default=str) + "\n")


def summary_table(records: Sequence[RunRecord]) -> str:
    """Mean ± std over seeds of the headline metrics, one line per experiment."""
    return _align(summary_rows(records))


def _align(rows: list[list[str]]) -> str:
    """`rows` as text, every column flush left (stabgap.text.aligned)."""
    return "\n".join(aligned(rows, left=len(rows[0])))


def summary_rows(records: Sequence[RunRecord]) -> list[list[str]]:
    """The cells of :func:`summary_table`, header first."""
    from stabgap.analysis.table1 import ttr_cell
    from stabgap.analysis.tables import tidy_rows
    from stabgap.statistics.summary import format_mean_std, summarize

    summaries = summarize(tidy_rows(r for r in records if not r.diverged))
    experiments = list(dict.fromkeys(r.experiment for r in records))
    # each experiment's own number of tasks: its last interval is its TTR's and WC-ACC's
    tasks = {e: max(r.acc.shape[1] for r in records if r.experiment == e) for e in experiments}
    n_tasks = max(tasks.values())
    one_length = len(set(tasks.values())) == 1
    last = str(n_tasks) if one_length else "T"  # T: each row's own, in its "tasks" column
    columns = [(f"GD_1,{j}", "gap_depth", 1, j) for j in range(2, n_tasks + 1)]
    if n_tasks > 1:
        columns += [
            (f"TTR_1,{last} %", "time_to_recover", 1, "last"),
            ("min-ACC_1", "min_acc", 1, None),
        ]
    columns += [
        ("ACC", "avg_acc_final", None, None),
        (f"WC-ACC_{last}", "wc_acc", None, "last"),
    ]
    by_key = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    header = ["experiment", "seeds", *([] if one_length else ["tasks"]), *(c[0] for c in columns)]
    lines = []
    for exp in experiments:
        n = sum(r.experiment == exp and not r.diverged for r in records)
        diverged = sum(r.experiment == exp and r.diverged for r in records)
        cells = [exp, f"{n}" + (f" (+{diverged} diverged)" if diverged else "")]
        cells += [] if one_length else [str(tasks[exp])]
        for _, metric, task, interval in columns:
            interval = tasks[exp] if interval == "last" else interval
            s = by_key.get((exp, metric, task, interval))
            if s and metric == "time_to_recover":
                cell = ttr_cell(s, by_key.get((exp, "recovered", task, interval)), 2)
            else:
                cell = format_mean_std(s.mean, s.std, 2) if s and s.n else "n/a"
                if s and s.n_undefined:
                    cell += f" ({s.n_undefined} undefined)"
            cells.append(cell)
        lines.append(cells)
    return [header, *lines]


def metrics_of_path(path: Path) -> list[dict[str, Any]]:
    """Metric rows {run, metric, task, interval, value} of run(s) or a reference file."""
    from stabgap.metrics import compute_metrics

    if path.is_file():
        from stabgap.studies.reference import load_reference_results

        runs = load_reference_results(path).items()
        named = [(no, compute_metrics(run.acc, run.boundaries)) for no, run in runs]
    elif path.is_dir():
        named = [(r.name, r.metrics) for r in readable_runs(path)]
        if not named:
            raise StabgapError(f"no run directories (with run.json) found under {path}")
    else:
        raise StabgapError(
            f"{path} does not exist: give a run directory, a folder of runs "
            "or a reference results JSON file"
        )
    return [
        {
            "run": name,
            "metric": m.metric,
            "task": m.task,
            "interval": m.interval,
            "value": _json_value(m.value),
        }
        for name, rows in named
        for m in rows
    ]


def _json_value(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def metrics_table(rows: list[dict[str, Any]]) -> str:
    """The metric rows as an aligned text table."""

    def show(v: Any) -> str:
        return "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)

    header = ["run", "metric", "task", "interval", "value"]
    return _align([header, *([show(r[k]) for k in header] for r in rows)])


def reproduce(
    quick: bool,
    out: Path,
    n_seeds: int | None = None,
    overrides: dict[str, Any] | None = None,
    profile: bool = True,
    **how: Any,
) -> tuple[list[RunRecord], Path]:
    """The poster's whole study as a resumable sweep, then its report.

    Returns the records and the report folder. ``quick`` runs the quick preset (3 seeds
    by default); otherwise the paper preset (15).
    """
    from stabgap.analysis.report import check_report_out, write_report

    preset = get_preset("quick" if quick else "paper")
    values: dict[str, Any] = {
        "preset": preset.name,
        "experiments": "all",
        "set": dict(overrides or {}),
    }
    if n_seeds is not None:
        values["n_seeds"] = n_seeds
    spec = study_spec(values, source="reproduce")
    check_execution(
        how.get("workers", 1),
        how.get("max_stack"),
        how.get("executor", "local"),
        how.get("threads"),
    )
    spec.plan()
    check_study_folder(out)
    check_report_out(out, out / "report")
    records = run_spec(spec, out, **how)
    if profile:
        _profile_into(out / "profile", quick, (overrides or {}).get("device", "auto"))
    return records, write_report(out)


def _profile_into(folder: Path, quick: bool, device: str) -> None:
    """Time baseline and ND per batch (Table 1's cost columns), once per device."""
    if not folder.exists():
        profile_study(folder, quick=quick, device=device)


def profile_base() -> RunConfig:
    """The poster's profiling runs (experiments 15/16): the paper protocol on task 0° only."""
    from stabgap.studies.presets import PAPER_BASE

    return PAPER_BASE.replace(rotations=[0.0])


def profile_study(folder: Path | str, quick: bool = False, device: str = "cpu") -> list:
    """Profile baseline and ND for a study's report; writes ``folder/profile-<device>/``.

    Args:
        quick: the ``quick`` preset's scale (widths 256, batch 128) and a short profile;
            else the poster's profiling setup (:func:`profile_base`).
        device: the study's device ('cpu', 'cuda', 'auto', ...).
    """
    from stabgap.core.device import resolve_device
    from stabgap.cost import profile
    from stabgap.studies.presets import ND_LAMBDA, QUICK_BASE, QUICK_LAMBDA

    dev = resolve_device(device)
    if quick:
        config = QUICK_BASE.replace(rotations=[0.0])
        results = profile.profile_config(
            config,
            dev,
            n_batches=50,
            warmup=5,
            repeats=5,
            treatment={"decay_lambda": QUICK_LAMBDA},
            run_name="preset quick, task 0°",
        )
    else:
        results = profile.profile_config(
            profile_base(),
            dev,
            treatment={"decay_lambda": ND_LAMBDA},
            run_name="the poster's profiling runs (task 0°)",
        )
    profile.write_profile(results, Path(folder) / f"profile-{dev.type}")
    return results
