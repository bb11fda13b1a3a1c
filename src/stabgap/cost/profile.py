"""`stabgap profile`: time per batch of the training step and the evaluation, baseline vs a remedy.

A profile times two runs: the baseline, and a *treatment*: the baseline with some config
fields set (by default ND, ``decay_lambda = 1e-5``; any remedy's fields alike, e.g.
``sam_rho = 0.05``). Two kinds of figure are taken for each run, device and phase:

- **wall time**: milliseconds per batch, timed over `n_batches` batches, `repeats`
  times after `warmup` batches (the device is synchronised before and after each timed
  block); reported as the median and the interquartile range over the repeats.
- **the reference's figures** (the poster's Table 1): under ``torch.profiler``, the
  *self* CPU time and the *self* CUDA time summed over all events of `n_batches`
  batches, divided by `n_batches`. On a GPU run the "CPU" figure is host-side time (the
  Python and launch work that drives the GPU), which is what the poster's "CPU time"
  column is; a run on ``cpu`` is a CPU-only run, where the work itself is on the CPU.

The phases are the bodies of :func:`stabgap.core.train.train_stack`, run with the same parts
(:func:`stabgap.core.train.build_parts`, :func:`stabgap.core.train.train_step`,
:func:`stabgap.core.train.evaluation_point`): ``train`` is one training step, ``eval`` one
continual evaluation of task 1 (of every task where the run evaluates all, in each of its
repeats; the hidden layers' statistics at every `activity_every`-th, as in the run),
``both`` the two in turn as the loop does at every batch (the reference profiled its
evaluation too). The default scale is the poster's profiling runs (experiments 15/16):
one task (0°), batch 512, widths 2048-2048, evaluation subsets of 2048 test images; any
run's task 1 alike (``stabgap profile --preset``: its network, batch and evaluation subset).

The images are random uint8 pixels in the shape and numbers of the run's dataset (MNIST's
60,000 training and 10,000 test images, each class with its own count), cut into tasks by
the run's own stream, so profiling needs no download: every operation is dense, so its
cost does not depend on the pixel values. Freed memory is kept for reuse, as in a run
(:func:`stabgap.core.device.keep_freed_memory`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

from stabgap.atomic import write_text
from stabgap.core.config import RunConfig
from stabgap.core.data import DATASETS, Dataset, Images
from stabgap.core.device import keep_freed_memory
from stabgap.core.models import MODELS
from stabgap.core.remedies import Step
from stabgap.core.streams import TaskStream, build_stream, check_stream
from stabgap.core.train import (
    build_parts,
    draw_batch,
    evaluated_tasks,
    evaluation_point,
    train_step,
)
from stabgap.cost.flops import architecture, check_memory
from stabgap.errors import StabgapError

PROFILE_FILE = "profile.json"  # a profile's results, in a folder of its own
PHASES = ("train", "eval", "both")
BASELINE = "baseline"
ND = "nd"  # the poster's treatment, and the label a profile of decay_lambda alone takes


@dataclass(frozen=True)
class ProfileResult:
    """Time per batch of one model in one phase on one device."""

    model: str  # "baseline", or the treatment's label ("nd" for ND)
    device: str  # "cpu" (a CPU-only run) or "cuda"
    device_name: str  # the CPU's or the GPU's model name
    phase: str  # "train", "eval" or "both"
    wall_ms_median: float  # wall time per batch, median over the repeats
    wall_ms_iqr: float  # its interquartile range over the repeats
    profiler_self_cpu_ms: float  # Σ self CPU time / batches: host time on a GPU run
    profiler_self_cuda_ms: float | None  # Σ self CUDA time / batches; None on CPU
    batch_size: int
    hidden: tuple[int, ...]
    torch_version: str
    treatment: tuple[tuple[str, Any], ...] = ()  # the fields set on the baseline (none on it)
    eval_size: int = 0  # test images per evaluation
    n_batches: int = 0  # batches per timed repeat and in the profiled span
    repeats: int = 0
    threads: int = 0  # torch's intra-op CPU threads
    network: str = ""  # what was timed, e.g. "MLP 784-2048-2048-10" ("": the poster's MLP)
    run: str = ""  # what the baseline is, e.g. "preset quick, nd" ("": not recorded)
    warmup: int = 0  # untimed batches before each measurement


def treatment_label(treatment: Mapping[str, Any]) -> str:
    """A treatment's name in tables: "nd" for ND alone, else its fields ("hidden=32 lr=0.01")."""
    if set(treatment) == {"decay_lambda"}:
        return ND

    def value(v: Any) -> str:
        return ",".join(map(str, v)) if isinstance(v, list | tuple) else f"{v}"

    return " ".join(f"{k}={value(v)}" for k, v in treatment.items())


def profile_config(
    config: RunConfig,
    device: torch.device | str = "cpu",
    n_batches: int = 20,
    warmup: int = 3,
    repeats: int = 5,
    *,
    treatment: Mapping[str, Any],
    label: str | None = None,
    run_name: str = "",
) -> list[ProfileResult]:
    """Profile the baseline (`config`) and a treatment in every phase on one device.

    The runs use `config`'s task 1: its batch size, widths, evaluation subset size,
    optimiser, λ reduction and precision. The timed repeats alternate between the two runs,
    so that a drift of the machine's speed (other work, clocks) hits both alike.

    Args:
        treatment: config fields set on `config` for the treated run (``{"decay_lambda":
            1e-5}``: ND, the poster's profiling run).
        label: the treatment's name in the results (default :func:`treatment_label`).
        run_name: what the baseline is, for the results ("preset quick, nd").

    Returns:
        One result per run (the baseline first) and phase, in the order of :data:`PHASES`.
    """
    if min(n_batches, repeats) < 1 or warmup < 0:
        raise StabgapError("profiling needs batches >= 1, repeats >= 1 and warmup >= 0")
    treatment = dict(treatment)
    label = label or treatment_label(treatment)
    if label == BASELINE:
        raise StabgapError(f"a treatment cannot be named '{BASELINE}': give it another label")
    device = torch.device(device)
    configs = {BASELINE: config, label: config.replace(**treatment)}
    for name, c in configs.items():
        check_memory(c, device, f"the {name} run")
    stream = synthetic_stream(config, device)
    check_stream(configs[label], stream)  # a treatment of the run, not of its data
    keep_freed_memory()  # as a run does: large blocks reused, not page-faulted again
    models = tuple(configs)
    workloads = {m: Workload(configs[m], stream, device) for m in models}
    timings: dict[tuple[str, str], tuple[list[float], float, float | None]] = {}
    _self_times(workloads[BASELINE].train, 1, device)  # start the profiler once
    for phase in PHASES:
        steps = {m: getattr(workloads[m], phase) for m in models}
        walls: dict[str, list[float]] = {m: [] for m in models}
        for model in models:
            for _ in range(warmup):
                steps[model]()
        for _ in range(repeats):  # interleaved, so that a slower spell hits both runs
            for model in models:
                walls[model].append(_wall_ms(steps[model], n_batches, device))
        for model in models:
            timings[model, phase] = (
                walls[model],
                *_self_times(steps[model], n_batches, device),
            )

    common = dict(
        device=device.type,
        device_name=device_name(device),
        batch_size=config.task_batch_size(1),
        torch_version=torch.__version__,
        n_batches=n_batches,
        repeats=repeats,
        warmup=warmup,
        threads=torch.get_num_threads(),
        run=run_name,
    )
    results = []
    for model in models:
        run = configs[model]  # a treatment may change the network itself
        network = architecture(run)
        hidden = tuple(run.hidden) if "hidden" in MODELS.chosen(run).uses else ()  # not a ResNet's
        for phase in PHASES:
            walls, cpu_ms, cuda_ms = timings[model, phase]
            q1, q3 = np.percentile(walls, [25, 75])
            results.append(
                ProfileResult(
                    model=model,
                    phase=phase,
                    treatment=() if model == BASELINE else tuple(treatment.items()),
                    wall_ms_median=statistics.median(walls),
                    wall_ms_iqr=float(q3 - q1),
                    profiler_self_cpu_ms=cpu_ms,
                    profiler_self_cuda_ms=cuda_ms,
                    network=network,
                    hidden=hidden,
                    eval_size=workloads[model].eval_size,  # a treatment may evaluate more
                    **common,
                )
            )
    return results


def synthetic_stream(config: RunConfig, device: torch.device | str, seed: int = 0) -> TaskStream:
    """`config`'s task stream, built from :func:`synthetic_images` of its dataset."""
    images = synthetic_images(DATASETS.chosen(config), seed)
    return build_stream(config, device, images=images)


def synthetic_images(dataset: type[Dataset], seed: int = 0) -> Images:
    """Random uint8 pixels in `dataset`'s image shape, with as many training and test
    images of each class as it has, in a random order.

    Example:
        >>> from stabgap.core.data import DATASETS
        >>> images = synthetic_images(DATASETS["mnist"])
        >>> tuple(images.train_images.shape), images.input_shape, images.n_classes
        ((60000, 28, 28), (1, 28, 28), 10)
        >>> int((images.test_labels == 1).sum())  # MNIST's test set: 1,135 ones
        1135
    """
    g = torch.Generator().manual_seed(seed)
    grey = dataset.input_shape[0] == 1  # stored (N, H, W), as the loaders give grey images

    def split(train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        counts = [dataset.images_of([c], train) for c in range(dataset.n_classes)]
        labels = torch.repeat_interleave(torch.arange(dataset.n_classes), torch.tensor(counts))
        labels = labels[torch.randperm(len(labels), generator=g)]
        shape = dataset.input_shape[1:] if grey else dataset.input_shape
        pixels = torch.randint(0, 256, (len(labels), *shape), dtype=torch.uint8, generator=g)
        return pixels, labels

    (train_x, train_y), (test_x, test_y) = split(True), split(False)
    return Images(train_x, train_y, test_x, test_y, dataset.n_classes)


class Workload:
    """One run's parts (model, optimiser, remedies, sampler, subsets): the loop's body, by phase."""

    def __init__(self, config: RunConfig, stream: TaskStream, device: torch.device) -> None:
        self.parts = build_parts([config], stream, device)
        self.parts.sampler.start_task(1)
        self.evaluated, self.m = evaluated_tasks(config, stream, 1)
        # test images per evaluation: of every evaluated task, in every repeat
        self.eval_size = self.m * len(self.evaluated) * config.eval_repeats
        self.activity_every = config.activity_every
        self.points = 0  # evaluations so far: the statistics come at every k-th, as in a run
        self.loss = torch.zeros(1, device=device)
        self.correct = torch.zeros(1, len(self.evaluated), dtype=torch.int32, device=device)

    def train(self) -> None:
        loss, _ = train_step(self.parts, draw_batch(self.parts), Step(1, 0, 0))
        self.loss.copy_(loss)  # the loop keeps every loss, on the device

    def eval(self) -> None:
        every, self.points = self.activity_every, self.points + 1
        statistics = every > 0 and (self.points - 1) % every == 0
        net = self.parts.remedies.evaluated(self.parts.model)
        for _, ev in evaluation_point(self.parts, net, 1, self.evaluated, self.m, statistics):
            self.correct.copy_(ev.correct)  # the loop keeps every count, on the device

    def both(self) -> None:
        self.eval()  # before the update, as in the loop
        self.train()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _wall_ms(step: Callable[[], None], n_batches: int, device: torch.device) -> float:
    """Wall milliseconds per batch over `n_batches` consecutive batches."""
    _sync(device)
    start = time.perf_counter()
    for _ in range(n_batches):
        step()
    _sync(device)
    return (time.perf_counter() - start) * 1000 / n_batches


def _self_times(
    step: Callable[[], None], n_batches: int, device: torch.device
) -> tuple[float, float | None]:
    """(Σ self CPU ms, Σ self CUDA ms or None) per batch under torch.profiler."""
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    prof = torch_profile(activities=activities, record_shapes=False)
    with _without_stderr():
        prof.start()
    try:
        for _ in range(n_batches):
            step()
        _sync(device)
    finally:
        with _without_stderr():
            prof.stop()
    cpu_us, cuda_us = self_time_totals(prof.key_averages())
    return cpu_us / 1000 / n_batches, (cuda_us / 1000 / n_batches if cuda else None)


@contextlib.contextmanager
def _without_stderr() -> Iterator[None]:
    """The process's standard error closed for a moment: torch's profiler writes a
    "USDT: ... profiler_start" line of its own from C++ as it starts and stops, which is
    no message for the user. (Python's exceptions still propagate.)"""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def self_time_totals(events: Iterable) -> tuple[float, float]:
    """Total self CPU and self device time (µs) of profiler events.

    The sums printed under ``prof.key_averages().table()`` ("Self CPU time total",
    "Self CUDA time total"), which are what the reference divided by its batch count:
    device time comes from device events (kernels, copies), not user annotations, or
    from CPU events under the legacy profiler.
    """
    cpu = device = 0.0
    for e in events:
        cpu += e.self_cpu_time_total
        legacy = e.device_type == DeviceType.CPU and getattr(e, "is_legacy", False)
        kernel = e.device_type == DeviceType.CUDA and not getattr(e, "is_user_annotation", False)
        if legacy or kernel:
            device += e.self_device_time_total
    return cpu, device


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# --- files ---------------------------------------------------------------------------------
def is_stabgap_profile(path: Path) -> bool:
    """Whether a file is a profile.json that stabgap wrote."""
    try:
        rows = json.loads(path.read_text())["results"]
        return all({"model", "phase", "wall_ms_median"} <= set(row) for row in rows)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def write_profile(results: list[ProfileResult], out_dir: Path | str) -> Path:
    """Write `results` to ``out_dir/profile.json`` atomically; returns the file's path."""
    path = Path(out_dir) / PROFILE_FILE
    rows = [{**dataclasses.asdict(r), "treatment": dict(r.treatment)} for r in results]
    payload = {"results": rows}
    write_text(path, json.dumps(payload, indent=1) + "\n")
    return path


def read_profiles(root: Path | str) -> list[ProfileResult]:
    """Every result of every ``profile.json`` at or below `root`, in path order."""
    fields = {f.name for f in dataclasses.fields(ProfileResult)}
    out = []
    for path in sorted(Path(root).rglob(PROFILE_FILE)):
        if not is_stabgap_profile(path):
            continue  # someone's own profile.json
        for row in json.loads(path.read_text())["results"]:
            treatment = row.get("treatment", {})
            if "decay_lambda" in row and row["model"] != BASELINE:  # an older file: ND's λ
                treatment = {"decay_lambda": row["decay_lambda"]}
            row = {k: v for k, v in row.items() if k in fields}
            row.update(hidden=tuple(row["hidden"]), treatment=tuple(treatment.items()))
            out.append(ProfileResult(**row))
    return out


# --- summaries ------------------------------------------------------------------------------
def treatment_of(results: Iterable[ProfileResult]) -> str | None:
    """The one treatment's label among `results` (None without one).

    Raises:
        ValueError: when they hold two treatments: compare one profile's results at a time.
    """
    labels = sorted({r.model for r in results} - {BASELINE})
    if len(labels) > 1:
        raise ValueError(f"results of two treatments ({', '.join(labels)}): compare one at a time")
    return labels[0] if labels else None


def within_spread(results: Sequence[ProfileResult]) -> list[str]:
    """The rows ("cpu train") whose treated and baseline medians differ by less than the
    larger of their two interquartile ranges: a difference the repeats do not separate from
    the machine's own variation."""
    treated = treatment_of(results)
    baseline = {(r.device, r.phase): r for r in results if r.model == BASELINE}
    return [
        f"{b.device} {b.phase}"
        for b in results
        if b.model == treated
        and (a := baseline.get((b.device, b.phase))) is not None
        and abs(b.wall_ms_median - a.wall_ms_median) < max(a.wall_ms_iqr, b.wall_ms_iqr)
    ]


def _treatments(results: Sequence[ProfileResult], name: str) -> str:
    """ " (the treatment's: X)" where a result's field `name` is X, not the first's ("" where
    none differs)."""
    first = getattr(results[0], name)
    other = next((getattr(r, name) for r in results if getattr(r, name) != first), None)
    return f" (the treatment's: {other})" if other else ""


def overhead_pct(
    results: Iterable[ProfileResult], measure: str = "wall_ms_median"
) -> dict[tuple[str, str], float]:
    """The treatment's extra time over the baseline in %, per (device, phase).

    Args:
        measure: the field compared: ``wall_ms_median``, ``profiler_self_cpu_ms`` or
            ``profiler_self_cuda_ms`` (pairs where it is None are left out).

    Example:
        >>> r = dict(device="cpu", device_name="x", wall_ms_iqr=0.0, profiler_self_cpu_ms=1.0,
        ...          profiler_self_cuda_ms=None, batch_size=8, hidden=(4,), torch_version="t")
        >>> overhead_pct([ProfileResult("baseline", phase="train", wall_ms_median=10.0, **r),
        ...               ProfileResult("nd", phase="train", wall_ms_median=11.0, **r)])
        {('cpu', 'train'): 10.0}
    """
    results = list(results)
    treated = treatment_of(results)
    values: dict[tuple[str, str], dict[str, float]] = {}
    for r in results:
        key = (r.device, r.phase)
        if r.model in values.setdefault(key, {}):
            raise ValueError(
                f"two '{r.model}' results for {key}: compare one machine's results at a time"
            )
        value = getattr(r, measure)
        if value is not None:
            values[key][r.model] = value
    return {
        key: 100.0 * (v[treated] - v[BASELINE]) / v[BASELINE]
        for key, v in values.items()
        if treated in v and v.get(BASELINE)
    }


def profile_table(results: list[ProfileResult]) -> str:
    """The table of ``stabgap profile``, with the treatment's overhead on its rows."""
    treated = treatment_of(results)
    over = {
        m: overhead_pct(results, m)
        for m in ("wall_ms_median", "profiler_self_cpu_ms", "profiler_self_cuda_ms")
    }
    head = ("run", "device", "phase", "wall ms", "IQR")
    head += ("prof self-CPU", "prof self-CUDA", "+% wall")
    width = max(9, *(len(r.model) + 2 for r in results))  # a treatment's label may be long
    lines = [
        _row(head, width),
        _row(("", "", "", "(median)", "", "ms/batch", "ms/batch", ""), width),
    ]
    for r in sorted(results, key=lambda r: (r.device, PHASES.index(r.phase), r.model != BASELINE)):
        key = (r.device, r.phase)
        cuda = "-" if r.profiler_self_cuda_ms is None else f"{r.profiler_self_cuda_ms:.3f}"
        extra = (
            f"{over['wall_ms_median'][key]:+.2f}"
            if r.model == treated and key in over["wall_ms_median"]
            else ""
        )
        lines.append(
            _row(
                (
                    r.model,
                    r.device,
                    r.phase,
                    f"{r.wall_ms_median:.3f}",
                    f"{r.wall_ms_iqr:.3f}",
                    f"{r.profiler_self_cpu_ms:.3f}",
                    cuda,
                    extra,
                ),
                width,
            )
        )

    lines.append("")
    if treated is not None:
        fields = next(r.treatment for r in results if r.model == treated)
        shown = ", ".join(f"{k} = {v}" for k, v in fields)
        lines.append(f"{treated}: the baseline with {shown}; '+% wall' is its extra wall time")
        if treated == ND:
            lines.append("  (ND has no part in an evaluation: its 'eval' row differs by noise)")
        if noisy := within_spread(results):
            lines.append(
                f"  within the two runs' IQRs, so not shown to differ from the machine's noise: "
                f"{', '.join(noisy)}"
                + (
                    f" ({results[0].repeats} repeats: take 5 or more)"
                    if results[0].repeats < 5
                    else ""
                )
            )
    if results[0].run:
        lines.append(f"baseline: {results[0].run}")
    for device in sorted({r.device for r in results}):
        rs = [r for r in results if r.device == device]
        first = rs[0]
        kind = (
            "CPU-only run; 'prof self-CPU' is the work itself"
            if device == "cpu"
            else "GPU run; 'prof self-CPU' is host-side time (the poster's 'CPU time'), "
            "'prof self-CUDA' the kernels' time (its 'CUDA time'); its Table 1 is phase 'both'"
        )
        lines.append(f"{device}: {first.device_name}, {first.threads} CPU threads; {kind}")
        network = first.network or f"widths {','.join(map(str, first.hidden))}"
        network += _treatments(rs, "network")  # a treatment of the network itself
        evaluated = f"eval {first.eval_size} images" + _treatments(rs, "eval_size")
        lines.append(
            f"  {network}, batch {first.batch_size}, "
            f"{evaluated}; {first.repeats} repeats × {first.n_batches} "
            f"batches timed, {first.n_batches} profiled; torch {first.torch_version}"
        )
        for phase in PHASES:
            key = (device, phase)
            parts = [
                f"{label} {over[m][key]:+.2f} %"
                for m, label in (
                    ("profiler_self_cpu_ms", "self-CPU"),
                    ("profiler_self_cuda_ms", "self-CUDA"),
                )
                if key in over[m]
            ]
            if parts:
                lines.append(f"  {treated}'s overhead by profiler, {phase}: {', '.join(parts)}")
    return "\n".join(lines)


def _row(cells: tuple[str, ...], first: int = 9) -> str:
    widths = (first, 7, 6, 11, 10, 14, 15, 9)  # room for 5 digits before the point
    return "".join(
        f"{c:<{w}}" if i < 3 else f"{c:>{w}}"
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


# --- for the report ----------------------------------------------------------------------
def cost_columns(root: Path | str) -> tuple[dict[str, dict[str, str]], str | None]:
    """Table 1's time columns and a Q3 sentence from the profiles below `root`.

    Like the poster, the figures are the profiler's self times per batch of training and
    evaluation together (phase 'both'), taken from a GPU run when there is one ("CPU time"
    is then host-side time); otherwise from the CPU-only run, in a column that says so.

    Returns:
        ``({experiment: {column: cell}}, sentence)``; ``({}, None)`` without profiles.
    """
    from stabgap.cost.flops import nd_overhead, pct

    results = [r for r in read_profiles(root) if r.phase == "both"]
    devices = [r.device for r in results]
    if not results:
        return {}, None
    device = "cuda" if "cuda" in devices else devices[0]
    name = next(r.device_name for r in results if r.device == device)
    rows = {r.model: r for r in results if r.device == device and r.device_name == name}
    if len(set(rows) - {BASELINE}) > 1:  # e.g. a study's profile and someone's of SAM
        rows = {m: r for m, r in rows.items() if m in (BASELINE, ND)}
    # (column, ProfileResult field): the poster's two columns, then our wall time.
    measures = (
        [("CPU time (ms) ↓", "profiler_self_cpu_ms"), ("CUDA time (ms) ↓", "profiler_self_cuda_ms")]
        if device == "cuda"
        else [("CPU-only time (ms) ↓", "profiler_self_cpu_ms")]
    ) + [(f"wall time, {device} (ms) ↓", "wall_ms_median")]
    columns: dict[str, dict[str, str]] = {}
    for model, r in rows.items():
        columns[model] = {}
        for column, field_name in measures:
            value, cell = getattr(r, field_name), f"{getattr(r, field_name):.2f}"
            if model != BASELINE and BASELINE in rows:  # the overhead beside its time
                cell += f" ({pct(value, getattr(rows['baseline'], field_name)):+.1f} %)"
            columns[model][column] = cell
    treated = treatment_of(rows.values())
    if BASELINE not in rows or treated is None:
        return columns, None

    first = rows[BASELINE]
    pair = list(rows.values())
    measured = [f"wall time {overhead_pct(pair)[device, 'both']:+.1f} %"]
    for measure, label in (
        ("profiler_self_cpu_ms", "host CPU time" if device == "cuda" else "CPU time"),
        ("profiler_self_cuda_ms", "CUDA time"),
    ):
        value = overhead_pct(pair, measure).get((device, "both"))
        if value is not None:
            measured.append(f"{label} {value:+.1f} %")
    network = first.network or f"the MLP of widths {','.join(map(str, first.hidden))}"
    where = f"measured per batch of training and evaluation of {network} on {name} ({device})"
    mlp = not first.network or first.network.startswith("MLP")  # "": an older file's
    if treated != ND or not mlp:  # the counted overhead below is the MLP's formula
        return columns, f"Cost of {treated}: {where}: {', '.join(measured)}."
    o = nd_overhead(first.hidden, first.batch_size)
    sentence = (
        f"Q3, cost of ND: +{o['forward_macs']:.3f} % MACs on the forward pass (the poster's "
        f"measure), +{o['step_macs']:.3f} % on the whole training step (widths "
        f"{','.join(map(str, first.hidden))}, batch {first.batch_size}); {where}: "
        f"{', '.join(measured)}."
    )
    return columns, sentence
