"""Studies as sets of runs: plan them, name them by a stamp, run what is missing.

Every run is named ``<experiment>-seed<seed>-<stamp>``, the stamp being a hash of its
resolved config. A run whose directory exists is finished (directories appear
atomically, see :mod:`stabgap.records`), so running a study again only runs what is
missing, and a killed study resumes to the result of an uninterrupted one.

Compatible runs (same shapes; see :func:`stabgap.train.stack_key`) are trained together
as one stack; stacks are spread over worker processes or a Ray cluster.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stabgap.config import RunConfig, to_dict
from stabgap.errors import StabgapError
from stabgap.presets import Preset, get_preset
from stabgap.records import RunRecord, is_run_dir, read_run, record_of, write_run
from stabgap.tasks import TaskStream, build_stream
from stabgap.train import Progress, resolve_device, stack_key, train_runs

# Fields that say where things are, not what is computed: left out of the stamp.
UNSTAMPED = ("data_dir",)


@dataclass(frozen=True)
class RunSpec:
    """One run to do: its directory name, experiment and full config."""

    name: str
    experiment: str
    config: RunConfig


def stamp(config: RunConfig) -> str:
    """A stable 10-hex-digit hash of everything that determines the run's results."""
    values = {k: v for k, v in to_dict(config).items() if k not in UNSTAMPED}
    text = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def spec_for(experiment: str, config: RunConfig) -> RunSpec:
    return RunSpec(f"{experiment}-seed{config.seed}-{stamp(config)}", experiment, config)


def plan_runs(
    preset: Preset,
    experiments: Sequence[str],
    seeds: Sequence[int],
    overrides: dict[str, Any] | None = None,
    grid: dict[str, Sequence[Any]] | None = None,
) -> list[RunSpec]:
    """Every experiment × grid point × seed, as specs; all configs validated up front."""
    grid = grid or {}
    points = [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]
    specs, seen = [], set()
    for experiment in experiments:
        for point in points:
            label = experiment + "".join(f"_{k}={_short(v)}" for k, v in point.items())
            for seed in seeds:
                config = preset.config(experiment, {**(overrides or {}), **point, "seed": seed})
                spec = spec_for(label, config)
                if spec.name not in seen:  # a grid point may repeat an experiment's value
                    seen.add(spec.name)
                    specs.append(spec)
    return specs


def _short(value: Any) -> str:
    """A grid value as it reads in a run's label: 1e-05, 1024,1024, none."""
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def missing(specs: Iterable[RunSpec], out: Path) -> list[RunSpec]:
    """The specs whose run directory does not exist yet under `out`."""
    return [s for s in specs if not is_run_dir(out / s.name)]


def group_stacks(specs: Sequence[RunSpec], max_stack: int) -> list[list[RunSpec]]:
    """Compatible specs in stacks of at most `max_stack`, in a deterministic order."""
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        groups.setdefault(stack_key(s.config), []).append(s)
    return [g[i : i + max_stack] for g in groups.values() for i in range(0, len(g), max_stack)]


def default_stack_size(device: str) -> int:
    """How many runs to stack: many on a GPU, which a single small MLP cannot fill; one on
    a CPU, where one run already keeps the cores busy (train_runs trains a CPU stack copy
    by copy in any case; docs/performance.md)."""
    return 32 if resolve_device(device).type == "cuda" else 1


_STREAMS: dict[tuple, TaskStream] = {}


def _stream_for(config: RunConfig) -> TaskStream:
    """Task data, built once per process and shared by every stack that uses it."""
    device = resolve_device(config.device)
    key = (config.stream, config.rotations, config.data_dir, str(device))
    if key not in _STREAMS:
        _STREAMS.clear()  # keep one stream at a time: a GPU's memory is for the runs
        _STREAMS[key] = build_stream(config, device)
    return _STREAMS[key]


def run_stack(specs: Sequence[RunSpec], progress: Progress | None = None) -> list[RunRecord]:
    """Train one stack of compatible runs; their records, in memory."""
    results = train_runs([s.config for s in specs], _stream_for(specs[0].config), progress)
    return [record_of(r, s.name, s.experiment) for s, r in zip(specs, results, strict=True)]


def execute(
    specs: Sequence[RunSpec],
    out: Path | None,
    workers: int = 1,
    max_stack: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    plot: bool = True,
    report: Callable[[str], None] | None = None,
) -> list[RunRecord]:
    """Run every spec not already done under `out`; return all specs' records.

    Workers (processes or Ray tasks) only train and hand back records; this process
    writes them, one atomic directory per run, as each stack finishes, so that a sweep
    killed at any moment keeps every finished run and nothing half-written.

    Args:
        workers: parallel worker processes (local executor); CPU threads are split
            evenly between them.
        max_stack: most runs trained as one stack (default: by device).
        executor: "local" or "ray".
        ray_address: the Ray cluster to join; None starts a local one.
        report: receives progress lines (runs done/total, ETA); None for silence.
    """
    if not specs:
        return []
    todo = missing(specs, out) if out is not None else list(specs)
    if max_stack is None:
        max_stack = default_stack_size(specs[0].config.device)
    stacks = group_stacks(todo, max_stack)
    tracker = Tracker(len(specs), len(specs) - len(todo), report)
    if executor == "ray":
        from stabgap.distributed import run_on_ray

        finished = run_on_ray(stacks, ray_address)
    elif executor != "local":
        raise StabgapError(f"unknown executor '{executor}': use local or ray")
    elif workers > 1 and len(stacks) > 1:
        finished = _run_in_pool(stacks, workers)
    else:
        finished = (run_stack(stack, tracker.batches(stack[0].name)) for stack in stacks)
    fresh: dict[str, RunRecord] = {}
    for records in finished:
        for record in records:
            fresh[record.name] = write_run(record, out, plot) if out is not None else record
        tracker.done(len(records))
    return [fresh.get(s.name) or read_run(out / s.name) for s in specs]


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)


def _run_in_pool(stacks, workers: int) -> Iterator[list[RunRecord]]:
    """Stacks spread over processes; each gets its share of the cores as threads."""
    import concurrent.futures as cf
    import multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // workers)
    # 'spawn': a forked child would inherit the parent's OpenMP and CUDA state.
    with cf.ProcessPoolExecutor(
        workers,
        mp_context=mp.get_context("spawn"),
        initializer=_worker_init,
        initargs=(threads,),
    ) as pool:
        futures = [pool.submit(run_stack, stack) for stack in stacks]
        for future in cf.as_completed(futures):
            yield future.result()


class Tracker:
    """Runs done of total, and an ETA from the pace of the runs done in this session."""

    def __init__(self, total: int, already: int, report: Callable[[str], None] | None) -> None:
        self.total, self.count, self.report = total, already, report
        self.start_count, self.start = already, time.monotonic()
        if report and already:
            report(f"{already}/{total} runs already done, skipped")

    def done(self, n: int) -> None:
        self.count += n
        if self.report:
            self.report(f"runs {self.count}/{self.total} done{self._eta()}")

    def _eta(self, fraction: float = 0.0) -> str:
        ran = self.count - self.start_count + fraction
        if ran <= 0:
            return ""
        left = (time.monotonic() - self.start) / ran * (self.total - self.count - fraction)
        return f", ETA {_duration(left)}"

    def batches(self, label: str) -> Progress | None:
        """A per-batch progress hook for a stack trained in this process."""
        if not self.report:
            return None

        def progress(done: int, total: int) -> None:
            line = (
                f"runs {self.count}/{self.total} | {label}: batch {done}/{total}"
                f"{self._eta(done / total)}"
            )
            self.report(line)

        return progress


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


def stderr_reporter(stream=sys.stderr) -> Callable[[str], None]:
    """Progress on one terminal line when interactive, else a line now and then."""
    last = [0.0]

    def report(line: str) -> None:
        if stream.isatty():
            stream.write("\r\033[K" + line)
            stream.flush()
        elif "batch" not in line or time.monotonic() - last[0] > 30:
            stream.write(line + "\n")
            last[0] = time.monotonic()

    return report


def load_overrides_file(path: Path) -> dict[str, Any]:
    """A TOML file of config fields (and the study keys preset, experiments, seeds)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise StabgapError(f"config file {path} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise StabgapError(f"config file {path} is not valid TOML: {e}") from None
    return values


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: a preset's experiments × a grid over config fields × seeds.

    In TOML::

        preset = "quick"
        experiments = ["baseline"]
        seeds = [1, 2, 3]            # or: n_seeds = 3 (the preset's first three)
        [set]                        # applied to every run
        batches_per_task = 200
        [grid]                       # every combination is run
        decay_lambda = [0, 1e-5, 1e-4]
        hidden = [[128, 128], [256, 256]]
    """

    preset: str
    experiments: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: dict[str, Any]
    grid: dict[str, list[Any]]

    def plan(self) -> list[RunSpec]:
        return plan_runs(
            get_preset(self.preset), self.experiments, self.seeds, self.overrides, self.grid
        )


SPEC_KEYS = ("preset", "experiments", "seeds", "n_seeds", "set", "grid")


def sweep_spec(values: dict[str, Any], source: str = "the sweep spec") -> SweepSpec:
    """Check a sweep's keys and shapes; a mistake is one line naming `source`."""
    unknown = [k for k in values if k not in SPEC_KEYS]
    if unknown:
        raise StabgapError(
            f"{source}: unknown key '{unknown[0]}' (allowed: "
            f"{', '.join(SPEC_KEYS)}; config fields go under [set] or [grid])"
        )
    preset = get_preset(values.get("preset", "quick"))
    experiments = values.get("experiments", list(preset.default_experiments))
    if experiments == ["all"]:
        experiments = list(preset.experiments)
    seeds = values.get("seeds", list(preset.seeds[: values.get("n_seeds", len(preset.seeds))]))
    grid = values.get("grid", {})
    if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
        raise StabgapError(f"{source}: every [grid] entry must be a non-empty list of values")
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise StabgapError(f"{source}: seeds must be a non-empty list of integers")
    return SweepSpec(
        preset.name, tuple(experiments), tuple(seeds), dict(values.get("set", {})), grid
    )


def run_sweep(
    spec: SweepSpec,
    out: Path,
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    max_stack: int | None = None,
    report: Callable[[str], None] | None = None,
) -> list[RunRecord]:
    """Run what is missing of `spec` under `out`, then write its tidy table there."""
    from stabgap.aggregate import tidy_rows, write_table

    specs = spec.plan()  # every config is validated before anything runs
    records = execute(specs, out, workers, max_stack, executor, ray_address, report=report)
    write_table(tidy_rows(records), out / "table")
    return records
