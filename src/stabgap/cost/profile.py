"""`stabgap profile`: time per batch of the training step and the evaluation, baseline vs ND.

Two kinds of figure are taken for each model, device and phase:

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
:func:`stabgap.core.evaluate.evaluate`): ``train`` is one training step, ``eval`` one
continual evaluation,
``both`` the two in turn as the loop does at every batch (the reference profiled its
evaluation too). The default scale is the poster's profiling runs (experiments 15/16):
one task (0°), batch 512, widths 2048-2048, evaluation subsets of 2048 test images.

The images are random uint8 pixels of MNIST's shape (60,000 training and 10,000 test
images), so profiling needs no download: every operation is dense, so its cost does not
depend on the pixel values.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity
from torch.profiler import profile as torch_profile

from stabgap.core.config import RunConfig
from stabgap.core.device import resolve_device
from stabgap.core.evaluate import evaluate
from stabgap.core.remedies import Step
from stabgap.core.streams import TaskStream
from stabgap.core.train import build_parts, train_step
from stabgap.cost.flops import add_hidden_option
from stabgap.errors import StabgapError
from stabgap.studies.outputs import PROFILE_FILE, is_stabgap_profile

PHASES = ("train", "eval", "both")
MODELS = ("baseline", "nd")
N_TRAIN, N_TEST, N_FEATURES, N_CLASSES = 60_000, 10_000, 784, 10


@dataclass(frozen=True)
class ProfileResult:
    """Time per batch of one model in one phase on one device."""

    model: str  # "baseline" (λ = 0) or "nd"
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
    decay_lambda: float = 0.0
    eval_size: int = 0  # test images per evaluation
    n_batches: int = 0  # batches per timed repeat and in the profiled span
    repeats: int = 0
    threads: int = 0  # torch's intra-op CPU threads


def profile_config(
    config: RunConfig,
    device: torch.device | str = "cpu",
    n_batches: int = 20,
    warmup: int = 3,
    repeats: int = 5,
    nd_lambda: float = 1e-5,
) -> list[ProfileResult]:
    """Profile baseline (λ = 0) and ND (λ = `nd_lambda`) in every phase on one device.

    The runs use `config`'s task 1: its batch size, widths, evaluation subset size,
    optimiser, λ reduction and precision; ``config.decay_lambda`` itself is ignored.
    The timed repeats alternate between baseline and ND, so that a drift of the machine's
    speed (other work, clocks) hits both alike.

    Returns:
        One result per model and phase, in the order of :data:`MODELS` × :data:`PHASES`.
    """
    if min(n_batches, repeats) < 1 or warmup < 0:
        raise StabgapError("profiling needs batches >= 1, repeats >= 1 and warmup >= 0")
    device = torch.device(device)
    stream = synthetic_stream(device)
    lambdas = {"baseline": 0.0, "nd": nd_lambda}
    workloads = {m: Workload(config, stream, device, lambdas[m]) for m in MODELS}
    timings: dict[tuple[str, str], tuple[list[float], float, float | None]] = {}
    _self_times(workloads["baseline"].train, 1, device)  # start the profiler once
    for phase in PHASES:
        steps = {m: getattr(workloads[m], phase) for m in MODELS}
        walls: dict[str, list[float]] = {m: [] for m in MODELS}
        for model in MODELS:
            for _ in range(warmup):
                steps[model]()
        for _ in range(repeats):  # interleaved, so that a slower spell hits both models
            for model in MODELS:
                walls[model].append(_wall_ms(steps[model], n_batches, device))
        for model in MODELS:
            timings[model, phase] = (
                walls[model],
                *_self_times(steps[model], n_batches, device),
            )

    common = dict(
        device=device.type,
        device_name=device_name(device),
        batch_size=config.task_batch_size(1),
        hidden=tuple(config.hidden),
        torch_version=torch.__version__,
        eval_size=workloads["baseline"].eval_size,
        n_batches=n_batches,
        repeats=repeats,
        threads=torch.get_num_threads(),
    )
    results = []
    for model in MODELS:
        for phase in PHASES:
            walls, cpu_ms, cuda_ms = timings[model, phase]
            q1, q3 = np.percentile(walls, [25, 75])
            results.append(
                ProfileResult(
                    model=model,
                    phase=phase,
                    decay_lambda=lambdas[model],
                    wall_ms_median=statistics.median(walls),
                    wall_ms_iqr=float(q3 - q1),
                    profiler_self_cpu_ms=cpu_ms,
                    profiler_self_cuda_ms=cuda_ms,
                    **common,
                )
            )
    return results


def synthetic_stream(device: torch.device | str, seed: int = 0) -> TaskStream:
    """One task of random uint8 images of MNIST's shape and size, with random labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (N_TRAIN + N_TEST, N_FEATURES), dtype=torch.uint8, generator=g)
    y = torch.randint(0, N_CLASSES, (N_TRAIN + N_TEST,), generator=g)
    return TaskStream(
        names=("0°",),
        train_x=x[:N_TRAIN].to(device),
        train_y=y[:N_TRAIN].to(device),
        train_offsets=(0, N_TRAIN),
        test_x=x[N_TRAIN:].to(device),
        test_y=y[N_TRAIN:].to(device),
        test_offsets=(0, N_TEST),
        n_classes=N_CLASSES,
    )


class Workload:
    """One run's parts (model, optimiser, remedies, sampler, subsets): the loop's body, by phase."""

    def __init__(
        self, config: RunConfig, stream: TaskStream, device: torch.device, decay_lambda: float
    ) -> None:
        self.parts = build_parts([config.replace(decay_lambda=decay_lambda)], stream, device)
        self.parts.sampler.start_task(1)
        self.eval_size = config.task_eval_size(1, stream.test_size(1))
        self.loss = torch.zeros(1, device=device)
        self.correct = torch.zeros(1, 1, dtype=torch.int32, device=device)

    def train(self) -> None:
        loss, _ = train_step(self.parts, self.parts.sampler.next(), Step(1, 0, 0))
        self.loss.copy_(loss)  # the loop keeps every loss, on the device

    def eval(self) -> None:
        parts = self.parts
        idx = parts.subsets.draw(range(1, 2), self.eval_size)  # (1, 1, m)
        with parts.eval_precision():
            self.correct.copy_(evaluate(parts.model, parts.stream, idx, 1).correct)

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
    with torch_profile(activities=activities, record_shapes=False) as prof:
        for _ in range(n_batches):
            step()
        _sync(device)
    cpu_us, cuda_us = self_time_totals(prof.key_averages())
    return cpu_us / 1000 / n_batches, (cuda_us / 1000 / n_batches if cuda else None)


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
def write_profile(results: list[ProfileResult], out_dir: Path | str) -> Path:
    """Write `results` to ``out_dir/profile.json`` atomically; returns the file's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PROFILE_FILE
    tmp = out_dir / f".{PROFILE_FILE}.tmp-{os.getpid()}"
    payload = {"results": [dataclasses.asdict(r) for r in results]}
    try:
        tmp.write_text(json.dumps(payload, indent=1) + "\n")
        os.replace(tmp, path)  # same directory: an atomic rename
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_profiles(root: Path | str) -> list[ProfileResult]:
    """Every result of every ``profile.json`` at or below `root`, in path order."""
    fields = {f.name for f in dataclasses.fields(ProfileResult)}
    out = []
    for path in sorted(Path(root).rglob(PROFILE_FILE)):
        if not is_stabgap_profile(path):
            continue  # someone's own profile.json
        for row in json.loads(path.read_text())["results"]:
            row = {k: v for k, v in row.items() if k in fields}
            out.append(ProfileResult(**{**row, "hidden": tuple(row["hidden"])}))
    return out


# --- summaries ------------------------------------------------------------------------------
def overhead_pct(
    results: Iterable[ProfileResult], measure: str = "wall_ms_median"
) -> dict[tuple[str, str], float]:
    """ND's extra time over the baseline in %, per (device, phase).

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
        key: 100.0 * (v["nd"] - v["baseline"]) / v["baseline"]
        for key, v in values.items()
        if "nd" in v and v.get("baseline")
    }


def profile_table(results: list[ProfileResult]) -> str:
    """The table of ``stabgap profile``, with ND's overhead on the ND rows."""
    over = {
        m: overhead_pct(results, m)
        for m in ("wall_ms_median", "profiler_self_cpu_ms", "profiler_self_cuda_ms")
    }
    head = (
        "model",
        "device",
        "phase",
        "wall ms",
        "IQR",
        "prof self-CPU",
        "prof self-CUDA",
        "ND +% wall",
    )
    lines = [_row(head), _row(("", "", "", "(median)", "", "ms/batch", "ms/batch", ""))]
    for r in sorted(results, key=lambda r: (r.device, PHASES.index(r.phase), r.model)):
        key = (r.device, r.phase)
        cuda = "-" if r.profiler_self_cuda_ms is None else f"{r.profiler_self_cuda_ms:.3f}"
        extra = (
            f"{over['wall_ms_median'][key]:+.2f}"
            if r.model == "nd" and key in over["wall_ms_median"]
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
                )
            )
        )

    lines.append("")
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
        lines.append(
            f"  batch {first.batch_size}, widths {','.join(map(str, first.hidden))}, "
            f"eval {first.eval_size} images; {first.repeats} repeats × {first.n_batches} "
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
                lines.append(f"  ND overhead by profiler, {phase}: {', '.join(parts)}")
    return "\n".join(lines)


def _row(cells: tuple[str, ...]) -> str:
    widths = (9, 7, 6, 10, 8, 14, 15, 11)
    return "".join(
        f"{c:<{w}}" if i < 3 else f"{c:>{w}}"
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    ).rstrip()


# --- `stabgap profile` -----------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``stabgap profile``."""
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "all"),
        default="all",
        help="where to run: cpu (a CPU-only run), cuda, or all: cpu and, "
        "when present, cuda (default: all)",
    )
    parser.add_argument("--out", metavar="DIR", help="also write DIR/profile-<device>/profile.json")
    parser.add_argument(
        "--batches",
        type=int,
        default=20,
        help="batches per timed repeat and in the profiled span (default: 20)",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats for the median and IQR (default: 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed batches before each measurement (default: 3)"
    )
    add_hidden_option(parser)
    parser.add_argument(
        "--batch-size", type=int, default=512, help="training batch size (default: 512)"
    )
    parser.add_argument(
        "--nd-lambda", type=float, default=1e-5, help="λ of the ND model (default: 1e-5)"
    )


def profile_base() -> RunConfig:
    """The poster's profiling runs (experiments 15/16): the paper protocol on task 0° only."""
    from stabgap.studies.presets import PAPER_BASE

    return PAPER_BASE.replace(rotations=[0.0])


def command(args: argparse.Namespace) -> int:
    """Profile baseline and ND on the chosen devices; print the table, maybe write files."""
    for name in ("batches", "repeats", "batch_size"):
        if getattr(args, name) < 1:
            flag = name.replace("_", "-")
            raise StabgapError(f"--{flag} must be >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise StabgapError(f"--warmup must be >= 0, got {args.warmup}")
    if not (math.isfinite(args.nd_lambda) and args.nd_lambda > 0):
        raise StabgapError(f"--nd-lambda must be a positive finite number, got {args.nd_lambda}")
    if args.out:
        from stabgap.studies.outputs import check_study_folder

        check_study_folder(Path(args.out))  # a new or empty folder, or one of stabgap's
    if args.device == "all":
        devices = [torch.device("cpu")] + (
            [torch.device("cuda")] if torch.cuda.is_available() else []
        )
    else:
        devices = [resolve_device(args.device)]
    config = profile_base().replace(hidden=list(args.hidden), batch_size=args.batch_size)
    results = []
    for device in devices:
        found = profile_config(
            config, device, args.batches, args.warmup, args.repeats, args.nd_lambda
        )
        if args.out:
            path = write_profile(found, Path(args.out) / f"profile-{device.type}")
            print(f"wrote {path}")
        results += found
    print(profile_table(results))
    return 0


# --- for `stabgap reproduce` and the report ------------------------------------------------
def profile_study(
    folder: Path | str, quick: bool = False, device: str = "cpu"
) -> list[ProfileResult]:
    """Profile baseline and ND for a study's report; writes ``folder/profile-<device>/``.

    Args:
        quick: the ``quick`` preset's scale (widths 256, batch 128) and a short profile;
            else the poster's profiling setup (:func:`profile_base`).
        device: the study's device ('cpu', 'cuda', 'auto', ...).
    """
    from stabgap.studies.presets import ND_LAMBDA, QUICK_BASE, QUICK_LAMBDA

    dev = resolve_device(device)
    if quick:
        config = QUICK_BASE.replace(rotations=[0.0])
        results = profile_config(
            config, dev, n_batches=50, warmup=5, repeats=5, nd_lambda=QUICK_LAMBDA
        )
    else:
        results = profile_config(profile_base(), dev, nd_lambda=ND_LAMBDA)
    write_profile(results, Path(folder) / f"profile-{dev.type}")
    return results


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
            if model != "baseline" and "baseline" in rows:  # ND's overhead beside its time
                cell += f" ({pct(value, getattr(rows['baseline'], field_name)):+.1f} %)"
            columns[model][column] = cell
    if set(rows) != set(MODELS):
        return columns, None

    first = rows["baseline"]
    o = nd_overhead(first.hidden, first.batch_size)
    pair = list(rows.values())
    measured = [f"wall time {overhead_pct(pair)[device, 'both']:+.1f} %"]
    for measure, label in (
        ("profiler_self_cpu_ms", "host CPU time" if device == "cuda" else "CPU time"),
        ("profiler_self_cuda_ms", "CUDA time"),
    ):
        value = overhead_pct(pair, measure).get((device, "both"))
        if value is not None:
            measured.append(f"{label} {value:+.1f} %")
    sentence = (
        f"Q3, cost of ND: +{o['forward_macs']:.3f} % MACs on the forward pass (the poster's "
        f"measure), +{o['step_macs']:.3f} % on the whole training step (widths "
        f"{','.join(map(str, first.hidden))}, batch {first.batch_size}); measured per batch "
        f"of training and evaluation on {name} ({device}): {', '.join(measured)}."
    )
    return columns, sentence
