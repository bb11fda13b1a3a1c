"""The Python face of `stabgap run` and `stabgap metrics`: functions a notebook can call.

>>> from stabgap.study import run_study
>>> records = run_study("quick", ["baseline"], seeds=[1], out=None)  # doctest: +SKIP
>>> records[0].acc.shape, records[0].metrics[:2]                     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from stabgap.errors import StabgapError
from stabgap.presets import get_preset
from stabgap.records import RunRecord, iter_runs
from stabgap.sweep import execute, plan_runs, stderr_reporter


def run_study(
    preset: str = "quick",
    experiments: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    n_seeds: int | None = None,
    overrides: dict[str, Any] | None = None,
    out: Path | None = None,
    workers: int = 1,
    max_stack: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    plot: bool = True,
    quiet: bool = True,
    echo: Callable[[str], None] | None = None,
) -> list[RunRecord]:
    """Run `experiments` of `preset` for `seeds`; return the records, in memory.

    Args:
        preset: "quick" or "paper".
        experiments: names from the preset, or ["all"]; default: the preset's default.
        seeds: explicit seeds; else the preset's first `n_seeds` (default: all of them).
        overrides: config fields applied on top of every experiment.
        out: directory for the run records (must not exist yet); None keeps all in memory.
        workers, max_stack, executor, ray_address: how runs execute (see
            :func:`stabgap.sweep.execute`).
        echo: where to print the summary table (e.g. print); None prints nothing.
    """
    p = get_preset(preset)
    if not experiments:
        experiments = p.default_experiments
    elif list(experiments) == ["all"]:
        experiments = tuple(p.experiments)
    if seeds is None:
        if n_seeds is not None and n_seeds < 1:
            raise StabgapError(f"--n-seeds must be >= 1, got {n_seeds}")
        seeds = p.seeds[:n_seeds] if n_seeds else p.seeds
    if not seeds:
        raise StabgapError("no seeds given: pass --seeds 1,2,3 or --n-seeds N")
    specs = plan_runs(p, experiments, seeds, overrides)  # validates every config first
    if out is not None and out.exists() and any(out.iterdir()):
        raise StabgapError(
            f"output directory {out} already exists and is not empty: "
            "choose another --out or remove it"
        )
    records = execute(
        specs,
        out,
        workers=workers,
        max_stack=max_stack,
        executor=executor,
        ray_address=ray_address,
        plot=plot,
        report=None if quiet else stderr_reporter(),
    )
    if echo is not None:
        if not quiet:
            echo("")
        echo(summary_table(records))
        if out is not None:
            echo(f"\n{len(records)} run(s) written to {out}")
    return records


def summary_table(records: Sequence[RunRecord]) -> str:
    """Mean ± std over seeds of the headline metrics, one line per experiment."""
    return _align(summary_rows(records))


def summary_rows(records: Sequence[RunRecord]) -> list[list[str]]:
    """The cells of :func:`summary_table`, header first."""
    from stabgap.aggregate import format_mean_std, summarize, tidy_rows

    summaries = summarize(tidy_rows(records))
    n_tasks = max(r.acc.shape[1] for r in records)
    columns = [(f"GD_1,{j}", "gap_depth", 1, j) for j in range(2, n_tasks + 1)]
    if n_tasks > 1:
        columns += [
            (f"TTR_1,{n_tasks} %", "time_to_recover", 1, n_tasks),
            ("min-ACC_1", "min_acc", 1, None),
        ]
    columns += [
        ("ACC", "avg_acc_final", None, None),
        (f"WC-ACC_{n_tasks}", "wc_acc", None, n_tasks),
    ]
    by_key = {(s.experiment, s.metric, s.task, s.interval): s for s in summaries}
    experiments = list(dict.fromkeys(r.experiment for r in records))
    header = ["experiment", "seeds", *(c[0] for c in columns)]
    lines = []
    for exp in experiments:
        n = sum(r.experiment == exp for r in records)
        cells = [exp, str(n)]
        for _, metric, task, interval in columns:
            s = by_key.get((exp, metric, task, interval))
            cell = format_mean_std(s.mean, s.std, 2) if s and s.n else "n/a"
            if s and s.n_undefined:
                cell += f" ({s.n_undefined} undef.)"
            cells.append(cell)
        lines.append(cells)
    return [header, *lines]


def _align(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def metrics_of_path(path: Path) -> list[dict[str, Any]]:
    """Metric rows {run, metric, task, interval, value} of run(s) or a reference file."""
    if path.is_file():
        from stabgap.reference import load_reference_results

        named = [(no, run.acc, run.boundaries) for no, run in load_reference_results(path).items()]
    elif path.is_dir():
        named = [(r.name, r.acc, r.boundaries) for r in iter_runs(path)]
        if not named:
            raise StabgapError(f"no run directories (with run.json) found under {path}")
    else:
        raise StabgapError(
            f"{path} does not exist: give a run directory, a folder of runs "
            "or a reference results JSON file"
        )
    from stabgap.metrics import compute_metrics

    return [
        {
            "run": name,
            "metric": m.metric,
            "task": m.task,
            "interval": m.interval,
            "value": _json_value(m.value),
        }
        for name, acc, boundaries in named
        for m in compute_metrics(acc, boundaries)
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
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    max_stack: int | None = None,
    quiet: bool = True,
    profile: bool = True,
) -> tuple[list[RunRecord], Path]:
    """The poster's whole study as a resumable sweep, then its report.

    Returns the records and the report folder. ``quick`` runs the quick preset with 3
    seeds; otherwise the paper preset with its 15.
    """
    from stabgap.report import write_report
    from stabgap.sweep import SweepSpec, run_sweep

    preset = get_preset("quick" if quick else "paper")
    seeds = preset.seeds[: n_seeds or len(preset.seeds)]
    spec = SweepSpec(
        preset.name, tuple(preset.experiments), tuple(seeds), dict(overrides or {}), {}
    )
    report = None if quiet else stderr_reporter()
    records = run_sweep(spec, out, workers, executor, ray_address, max_stack, report)
    if profile:
        _profile_into(out / "profile", quick, (overrides or {}).get("device", "cpu"))
    return records, write_report(out)


def _profile_into(folder: Path, quick: bool, device: str) -> None:
    """Time baseline and ND per batch (Table 1's cost columns), once per device."""
    from stabgap.profile import profile_study

    if not folder.exists():
        profile_study(folder, quick=quick, device=device)
