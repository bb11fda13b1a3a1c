"""Run a study's missing runs: in this process, in worker processes or on a Ray cluster.

A run whose directory exists is finished (directories appear atomically, see
:mod:`stabgap.studies.records`), so running a study again only runs what is missing, and a study
stopped at any moment (Ctrl-C, ``kill -9``) resumes to the result of an uninterrupted one.

Compatible runs (see :func:`stabgap.core.train.stack_key`) are trained together as one stack.
Workers only train and hand back records; this process writes them as each stack
finishes, so finished work is kept whatever happens to the rest: a stack that fails is
reported at the end, after every other stack has run, and Ctrl-C stops the workers at
once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from stabgap.core.config import RunConfig, to_dict
from stabgap.core.data import DATASETS
from stabgap.core.device import resolve_device
from stabgap.core.models import cpu_matmul
from stabgap.core.monitor import Monitor, check_tensorboard
from stabgap.core.streams import TaskStream, build_stream, check_fits, stream_identity
from stabgap.core.train import Progress, stack_key, train_runs
from stabgap.cost.flops import check_memory, gib
from stabgap.errors import StabgapError, did_you_mean
from stabgap.studies.mixing import check_resumed, mix_warnings
from stabgap.studies.plan import RunSpec
from stabgap.studies.records import (
    DamagedRun,
    Draw,
    RunRecord,
    find_run,
    read_run,
    record_of,
    set_aside,
    write_run,
)
from stabgap.studies.transit import spec_from_payload, spec_payload

Report = Callable[[str], None]


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C during a study: how far it got, for the message that says how to resume."""

    def __init__(self, finished: int, total: int, out: Path | None) -> None:
        super().__init__()
        self.finished, self.total, self.out = finished, total, out


class RunsFailed(StabgapError):
    """Some stacks failed; every other run was finished and written."""

    def __init__(self, message: str, details: str) -> None:
        super().__init__(message)
        self.details = details  # the first failure's traceback, for a bug report


def missing(specs: Iterable[RunSpec], out: Path) -> list[RunSpec]:
    """The specs whose run is not in `out` yet (under its name or an older label's)."""
    return [s for s in specs if find_run(out, s.name) is None]


def damaged_runs(specs: Iterable[RunSpec], out: Path) -> dict[str, DamagedRun]:
    """The planned runs of `out` whose files cannot be read, by spec name (read only)."""
    found = {}
    for spec in specs:
        path = find_run(out, spec.name)
        if path is not None:
            try:
                read_run(path)
            except DamagedRun as e:
                found[spec.name] = e
    return found


def finished_run(spec: RunSpec, out: Path) -> RunRecord:
    """The finished run of `spec` in `out`, labelled as planned (a run found under an older
    label reads under today's, which says every field it changes)."""
    record = read_run(find_run(out, spec.name))
    return dataclasses.replace(
        record, experiment=spec.experiment, base=spec.base, varied=spec.varied
    )


def group_stacks(specs: Sequence[RunSpec], max_stack: int | None = None) -> list[list[RunSpec]]:
    """Compatible specs in stacks of at most `max_stack` (default: by device and memory,
    :func:`default_stack_size`), in plan order."""
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        groups.setdefault(stack_key(s.config), []).append(s)
    stacks = []
    for g in groups.values():
        size = max_stack or default_stack_size(g[0].config)
        stacks += [g[i : i + size] for i in range(0, len(g), size)]
    return stacks


MAX_GPU_STACK = 64


def default_stack_size(config: RunConfig, free_bytes: int | None = None) -> int:
    """How many runs to stack: one on a CPU, where one run already keeps the cores busy
    (train_runs trains a CPU stack copy by copy in any case; docs/performance.md); on a
    GPU, which a single small network cannot fill, as many as fit in 80 % of its free
    memory (:func:`stabgap.cost.flops.run_memory`), at most :data:`MAX_GPU_STACK`.

    Args:
        free_bytes: the device's free memory (default: asked of CUDA); tests pass one.
    """
    device = resolve_device(config.device)
    if device.type != "cuda" and free_bytes is None:
        return 1
    if free_bytes is None:
        free_bytes, _ = torch.cuda.mem_get_info(device)
    from stabgap.cost.flops import run_memory

    fits = int(0.8 * free_bytes // run_memory(config))
    return max(1, min(MAX_GPU_STACK, fits))


def _warn_oversubscribed(busy: int, threads: int, cores: int, workers: int) -> None:
    """Say that `busy` workers of `threads` each ask for more than the `cores`."""
    fewer = " or fewer --workers" if busy > 1 else ""
    print(
        f"stabgap: warning: {busy} worker(s) of {threads} threads each ask for "
        f"{busy * threads} cores of this machine's {cores}: runs that share cores are far "
        f"slower than one after the other; pass --threads {max(1, cores // workers)} "
        f"(the default){fewer}",
        file=sys.stderr,
    )


def available_cpus() -> int:
    """CPU cores this process may use: its affinity mask, capped by a cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cores


_STREAMS: dict[tuple, TaskStream] = {}


def _stream_for(config: RunConfig) -> TaskStream:
    """Task data, built once per process and shared by every stack that uses it: keyed by
    the stream's identity (every field it reads), where its data comes from and where it
    lives."""
    device = resolve_device(config.device)
    key = (stream_identity(config), config.data_dir, str(device))
    if key not in _STREAMS:
        _STREAMS.clear()  # keep one stream at a time: a GPU's memory is for the runs
        _STREAMS[key] = build_stream(config, device)
    return _STREAMS[key]


def run_stack(
    specs: Sequence[RunSpec],
    progress: Progress | None = None,
    logs: Path | None = None,
    tensorboard: bool = False,
) -> list[RunRecord]:
    """Train one stack of compatible runs; their records, in memory.

    Args:
        logs: the study folder whose ``logs/`` (and ``tensorboard/``) get each run's live
            log (:mod:`stabgap.core.monitor`); None for none.
    """
    monitor = (
        None
        if logs is None
        else Monitor(logs, [s.name for s in specs], tensorboard, [to_dict(s.config) for s in specs])
    )
    try:
        stream = _stream_for(specs[0].config)
        results = train_runs([s.config for s in specs], stream, progress, monitor)
    finally:
        if monitor is not None:
            monitor.close()
    return [
        record_of(r, s.name, s.experiment, s.base, s.varied)
        for s, r in zip(specs, results, strict=True)
    ]


def preflight(specs: Sequence[RunSpec], local: bool) -> None:
    """Everything that can be checked before the first run trains: data and sizes.

    The data is found (or downloaded, into the user cache) here, once, not by every
    worker; and for local execution every config is checked against its task stream's
    sizes.
    """
    for config in {(s.config.dataset, s.config.data_dir): s.config for s in specs}.values():
        DATASETS.chosen(config).find(config.data_dir, download=True)
    if not local:
        return
    for s in specs:
        check_precision(s.config, resolve_device(s.config.device).type)
        check_memory(s.config, resolve_device(s.config.device), f"experiment {s.experiment}")
        check_fits(s.config, _stream_for(s.config))


def check_precision(config: RunConfig, device: str) -> None:
    """Refuse TF32 where it does not exist: on a CPU it would compute fp32 under its name."""
    for name in ("precision", "eval_precision"):
        if getattr(config, name) == "tf32" and device != "cuda":
            raise StabgapError(
                f"{name} tf32 is CUDA's TensorFloat-32, which a {device} does not have (its "
                f"runs would compute fp32 under another name): use fp32 or bf16 here"
            )


def execute(
    specs: Sequence[RunSpec],
    out: Path | None,
    workers: int = 1,
    max_stack: int | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    draw: Draw | None = None,
    report: Report | None = None,
    threads: int | None = None,
    tensorboard: bool = False,
    on_start: Callable[[], None] | None = None,
) -> list[RunRecord]:
    """Run every spec not already done under `out`; return all specs' records.

    Args:
        workers: parallel worker processes (local executor).
        max_stack: most runs trained as one stack (default: by device).
        executor: "local" or "ray".
        ray_address: the Ray cluster to join; None starts a local one.
        draw: draws each run's curves.png (see :func:`stabgap.studies.records.write_run`).
        report: receives progress lines (runs done, running, ETA); None for silence.
        threads: CPU threads of each run (default: the cores this process may use,
            shared evenly between the workers).
        tensorboard: also write TensorBoard event files beside the live logs.
        on_start: called once everything is checked, before the first write (the study
            records what was asked of its folder then, not for a command it refuses).

    Raises:
        StudyInterrupted: on Ctrl-C, after stopping every worker; finished runs are kept.
        RunsFailed: after every other stack ran, when some stacks failed.
    """
    if not specs:
        return []
    check_execution(workers, max_stack, executor, threads, ray_address, tensorboard)
    if tensorboard:
        check_tensorboard()
    if out is not None:
        check_resumed(specs, out)  # a run reused is the run planned, or an error
    damaged = damaged_runs(specs, out) if out is not None else {}
    todo = [s for s in specs if s.name in damaged or out is None or find_run(out, s.name) is None]
    stacks = group_stacks(todo, max_stack)
    with contextlib.ExitStack() as scope:
        plan = None
        if executor == "ray" and todo:
            from stabgap.studies.cluster import alive_nodes, connected, plan_tasks

            scope.enter_context(connected(ray_address))
            # Sized for the cluster's nodes, not this machine; devices resolved there.
            plan = plan_tasks(alive_nodes(), [s.config.device for s in todo], threads)
            threads = plan.threads
            device_of = lambda c: plan.device_of(c.device)  # noqa: E731
        else:
            cores, busy = available_cpus(), min(workers, len(stacks))
            if (
                threads
                and busy * threads > cores
                and any(resolve_device(s.config.device).type == "cpu" for s in todo)
            ):
                _warn_oversubscribed(busy, threads, cores, workers)
            threads = threads or max(1, cores // workers)
            device_of = lambda c: resolve_device(c.device).type  # noqa: E731
        if out is not None:
            for warning in mix_warnings(todo, out, threads, device_of):
                print(f"stabgap: warning: {warning}", file=sys.stderr)
        preflight(todo, local=executor == "local")
        if on_start is not None:
            on_start()
        if (max_stack or 1) > 1 and any(device_of(s.config) == "cpu" for s in todo):
            print(
                f"stabgap: note: --stack {max_stack} stacks runs on a GPU only: on a CPU they "
                "train one after another (docs/performance.md)",
                file=sys.stderr,
            )
        for e in damaged.values():
            where = set_aside(e.path, out)
            print(
                f"stabgap: warning: run {e.path.name} is damaged ({e.why}): set aside in "
                f"{where.parent}, and run again",
                file=sys.stderr,
            )
        tracker = Tracker(len(specs), stacks, workers if plan is None else None, report)
        fresh: dict[str, RunRecord] = {}
        failures: list[tuple[Sequence[RunSpec], BaseException]] = []
        try:
            logging = (out, tensorboard) if out is not None else (None, False)
            for i, outcome in _outcomes(stacks, workers, plan, threads, tracker, logging):
                if isinstance(outcome, BaseException):
                    failures.append((stacks[i], outcome))
                    tracker.finished(i, stacks[i], ok=False)
                    continue
                for record in outcome:
                    fresh[record.name] = write_run(record, out, draw) if out else record
                tracker.finished(i, stacks[i], ok=True)
        except KeyboardInterrupt:
            finished = len(specs) - len(todo) + len(fresh)
            raise StudyInterrupted(finished, len(specs), out) from None
        finally:
            tracker.close()
    if failures:
        raise _failed(failures, len(specs), out)
    return [fresh.get(s.name) or finished_run(s, out) for s in specs]


EXECUTORS = ("local", "ray")  # local processes, or tasks on a Ray cluster


def check_execution(
    workers: int,
    max_stack: int | None,
    executor: str,
    threads: int | None,
    ray_address: str | None = None,
    tensorboard: bool = False,
) -> None:
    """Refuse executor options that cannot work, before anything runs."""
    cpu_matmul.library()  # a mistyped STABGAP_CPU_MATMUL: said now, not at the first batch
    if executor not in EXECUTORS:
        raise StabgapError(
            f"unknown executor '{executor}'{did_you_mean(executor, EXECUTORS)}: "
            f"use {' or '.join(EXECUTORS)}"
        )
    for name, value in (("workers", workers), ("stack", max_stack), ("threads", threads)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise StabgapError(f"--{name} must be a whole number >= 1, got {value!r}")
    if ray_address and executor != "ray":
        raise StabgapError("--ray-address needs --executor ray")
    if executor == "ray" and workers > 1:
        raise StabgapError(
            "--workers sizes this machine's worker processes, which a Ray sweep does not use: "
            "leave it out (the cluster's CPUs take as many tasks as fit; --threads sizes each)"
        )
    if executor == "ray" and tensorboard:
        raise StabgapError(
            "--tensorboard is written by this machine's workers, and Ray's nodes may share no "
            "disk with the study folder: leave it out, or run with --executor local"
        )
    if executor == "ray":
        try:
            import ray  # noqa: F401
        except ImportError:
            raise StabgapError(
                "the ray executor needs Ray: pip install 'stabgap[ray]' (or use --executor local)"
            ) from None
        from stabgap.studies.cluster import check_reachable

        check_reachable(ray_address)  # else Ray retries for minutes, warning on the terminal


def _failed(failures, total: int, out: Path | None) -> RunsFailed:
    stack, error = failures[0]
    n_failed = sum(len(s) for s, _ in failures)
    where = f" and kept in {out}" if out is not None else ""
    others = f", the others are finished{where}" if n_failed < total else ""
    # A user's sizes that do not fit are no bug: said in a line, without a traceback.
    no_memory = out_of_memory(error)
    said = _no_memory(error) if no_memory else f"{type(error).__name__}: {error}"
    message = (
        f"{n_failed} of {total} runs failed{others}; first failure, {stack[0].name}: {said}"
        + ("; fix it and run the same command again to run only those" if out else "")
    )
    bug = not isinstance(error, StabgapError) and not no_memory
    return RunsFailed(message, "".join(traceback.format_exception(error)) if bug else "")


def out_of_memory(error: BaseException) -> bool:
    """Whether a run failed for want of memory (the CPU's allocator, CUDA's, or Python's)."""
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)  # torch < 2.5
    return isinstance(error, MemoryError | oom) or "can't allocate memory" in str(error)


def _no_memory(error: BaseException) -> str:
    asked = re.search(r"allocate (\d+) bytes", str(error))  # the CPU allocator's message
    size = f" (an allocation of {gib(int(asked[1]))})" if asked else ""
    return (
        f"out of memory{size}: a smaller network, batch or evaluation subset fits, or on a "
        "GPU fewer runs stacked (--stack)"
    )


# A stack's index and its records, or the exception that stopped it.
Outcome = tuple[int, "list[RunRecord] | BaseException"]


def _outcomes(stacks, workers, plan, threads, tracker, logging) -> Iterator[Outcome]:
    """Each stack's index with its records or the exception it raised, as stacks finish.

    `plan` sizes the tasks of a Ray cluster (None: this machine's processes). `logging`
    is (study folder, tensorboard) for the live logs; Ray's workers, which may share no
    file system with this process, keep none.
    """
    if plan is not None:
        from stabgap.studies.cluster import run_on_ray

        yield from run_on_ray(stacks, plan, tracker.progress)
    elif workers > 1 and len(stacks) > 1:
        yield from _run_in_pool(stacks, workers, threads, tracker.progress, logging)
    else:
        with _torch_threads(threads):
            for i, stack in enumerate(stacks):
                tracker.progress(i, 0, 1)
                try:
                    progress = lambda d, t, i=i: tracker.progress(i, d, t)  # noqa: E731
                    records = run_stack(stack, progress, *logging)
                except Exception as e:  # noqa: BLE001 - reported once every stack has run
                    yield i, e
                else:
                    yield i, records


@contextlib.contextmanager
def _torch_threads(threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --- worker processes ------------------------------------------------------------------------
_QUEUE: Any = None  # the worker's channel for progress, set when the worker starts


def _worker_init(threads: int, queue) -> None:
    global _QUEUE
    # The driver alone handles Ctrl-C (it stops the workers); a terminal's Ctrl-C reaches
    # every process of the group, and a worker dying mid-task would only add noise.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)
    _QUEUE = queue


def _started() -> None:
    """Nothing: a process that gets here could import the driver's main module."""


NO_WORKERS = (
    "the worker processes cannot start: each imports the script that started the study "
    "again, which starts it again (or, for code read from standard input, cannot be "
    'imported); put the study\'s call under `if __name__ == "__main__":` in a script, or '
    "run with 1 worker"
)


def _worker_run(index: int, payload: list[dict], logging) -> list[RunRecord]:
    def progress(done: int, total: int) -> None:
        try:
            _QUEUE.put((index, done, total))
        except OSError:  # the driver is gone (killed): stop quietly, not with a traceback
            os._exit(1)

    progress(0, 1)
    stack = [spec_from_payload(p, where="a worker process") for p in payload]
    return run_stack(stack, progress, *logging)


def _run_in_pool(stacks, workers: int, threads: int, progress, logging) -> Iterator[Outcome]:
    """Stacks spread over processes, each with `threads` CPU threads.

    On Ctrl-C (or any exit before the end) the workers are terminated at once, rather than
    left to finish the stacks they are training.
    """
    import multiprocessing as mp

    # A spawned process still starting (importing a script that starts its study at import)
    # ends quietly here, as multiprocessing would with a traceback: the driver says what to
    # change (NO_WORKERS). `_inheriting` is the flag multiprocessing itself checks for this.
    if getattr(mp.current_process(), "_inheriting", False):
        sys.exit(1)
    # 'spawn': a forked child would inherit the parent's OpenMP and CUDA state.
    ctx = mp.get_context("spawn")
    # A SimpleQueue writes from the worker's own thread, so a worker whose driver died
    # sees the broken pipe in put() (and exits) instead of a feeder thread's traceback.
    channel = ctx.SimpleQueue()
    pool = ctx.Pool(min(workers, len(stacks)), _worker_init, (threads, channel))
    # A spawned worker first imports the driver's main module again: a script that starts
    # its study at import (no `if __name__ == "__main__":`), or code read from standard
    # input, kills every worker as it starts, and a pool only starts new ones. One more
    # process that does nothing else tells, by how it ends, whether a worker can start.
    probe = ctx.Process(target=_started, daemon=True)
    probe.start()
    try:
        pending = {
            i: pool.apply_async(_worker_run, (i, [spec_payload(r) for r in s], logging))
            for i, s in enumerate(stacks)
        }
        while pending:
            # What progress has come, then every finished stack, at each turn: progress
            # arrives so often from fast runs that waiting for a quiet channel before
            # looking at the results would hold every finished run back to the end (and
            # with it what a Ctrl-C keeps).
            while not channel.empty():
                progress(*channel.get())
            time.sleep(0.05)
            if probe.exitcode not in (None, 0):
                raise StabgapError(NO_WORKERS)
            for i in [i for i, result in pending.items() if result.ready()]:
                result = pending.pop(i)
                try:
                    records = result.get()
                except Exception as e:  # noqa: BLE001 - the worker's, reported at the end
                    yield i, e
                else:
                    yield i, records
    finally:
        pool.terminate()
        pool.join()
        if probe.is_alive():  # still importing: the study ended first
            probe.terminate()
        probe.join()


# --- progress ----------------------------------------------------------------------------------
class Tracker:
    """Runs done of total, the stacks running now, and an ETA from the batches trained."""

    def __init__(
        self,
        n_specs: int,
        stacks: Sequence[Sequence[RunSpec]],
        workers: int | None,
        report: Report | None,
    ) -> None:
        self.n_specs, self.report = n_specs, report
        self.stack_batches = [sum(s.config.total_batches for s in stack) for stack in stacks]
        self.total_batches = sum(self.stack_batches)
        self.count = n_specs - sum(len(stack) for stack in stacks)
        self.running: dict[int, float] = {}  # stack index → fraction trained
        self.ended: set[int] = set()  # stacks finished or failed: late progress is ignored
        self.finished_batches = 0
        self.start = time.monotonic()
        if report and self.count:
            report(f"{self.count}/{n_specs} runs already done, skipped")
        if report and stacks:
            how = f" on {workers} workers" if workers and workers > 1 else ""
            report(f"runs {self.count}/{n_specs} done, starting {n_specs - self.count}{how}")

    def progress(self, stack: int, done: int, total: int) -> None:
        if stack in self.ended:
            return
        self.running[stack] = done / max(total, 1)
        self._show()

    def finished(self, stack: int, runs: Sequence[RunSpec], ok: bool) -> None:
        self.ended.add(stack)
        self.running.pop(stack, None)
        self.finished_batches += self.stack_batches[stack]
        if ok:
            self.count += len(runs)
            self._show(finished=True)
        elif self.report:
            self.report(f"failed: {', '.join(s.name for s in runs)}")

    def _show(self, finished: bool = False) -> None:
        if not self.report:
            return
        line = f"runs {self.count}/{self.n_specs} done"
        training = [f for f in self.running.values() if f < 1.0]
        if training:
            shares = ", ".join(f"{100 * f:.0f}%" for f in training)
            line += f", {len(training)} training ({shares})"
        trained = self.finished_batches + sum(
            f * self.stack_batches[i] for i, f in self.running.items()
        )
        if trained > 0:
            seconds = (time.monotonic() - self.start) / trained * (self.total_batches - trained)
            line += f", ETA {_duration(seconds)}"
        self.report(line + (" " if finished else ""))  # a trailing space: a run finished

    def close(self) -> None:
        if self.report:
            self.report("")


def _duration(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}h{m % 60:02d}m" if m >= 60 else f"{m}m{s:02d}s"


def stderr_reporter(stream=None, every: float = 30.0) -> Report:
    """Progress on one terminal line when interactive; in a log, a line now and then.

    In a terminal the line is rewritten in place; written to a file (or a pipe) a line
    is added at most every `every` seconds, and at once when a run finishes.
    """
    last = [-every]

    def report(line: str) -> None:
        out = stream or sys.stderr  # looked up now: sys.stderr may have been replaced
        if out.isatty():
            out.write("\r\033[K" + line.rstrip() + ("\n" if not line else ""))
            out.flush()
            return
        finished = line.endswith(" ") or "already done" in line or "starting" in line
        if line and (finished or time.monotonic() - last[0] >= every):
            out.write(line.rstrip() + "\n")
            out.flush()
            last[0] = time.monotonic()

    return report
