"""The training loop: one loop for one run or for a stack of compatible runs.

Read top to bottom, :func:`train_runs` is the whole protocol: for each task, for each
batch, evaluate every task (before the update), draw a batch (with or without replay),
take one optimiser step on cross-entropy + λ·ND. Replay, neuronal decay and the
evaluation cadence are options of this loop, not subclasses or callbacks.
"""

from __future__ import annotations

import contextlib
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import stabgap
from stabgap.config import RunConfig, to_dict
from stabgap.errors import StabgapError
from stabgap.evaluate import EvalSubsets, count_correct, pixels
from stabgap.losses import training_loss
from stabgap.metrics import MetricRow, compute_metrics
from stabgap.model import StackedMLP
from stabgap.optim import StackedOptimizer
from stabgap.replay import BatchSampler
from stabgap.tasks import TaskStream, build_stream

# Fields that may differ between the copies of one stack; everything else is shared.
PER_COPY_FIELDS = ("seed", "decay_lambda", "lr")

Progress = Callable[[int, int], None]


@dataclass
class RunResult:
    """What one run produced, in memory: curves, metrics and how it was run."""

    config: RunConfig
    acc: np.ndarray  # (points, tasks) accuracy in %, NaN where a task was not evaluated
    eval_steps: np.ndarray  # (points,) the batch index t (updates done) of each point
    boundaries: tuple[int, ...]  # points at the end of each task's interval
    loss: np.ndarray  # (total_batches,) training loss of each batch
    diverged: bool
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> list[MetricRow]:
        return compute_metrics(self.acc, self.boundaries)


def stack_key(config: RunConfig) -> tuple:
    """Runs with equal keys can be trained together as one stack."""
    return tuple(
        sorted((k, str(v)) for k, v in to_dict(config).items() if k not in PER_COPY_FIELDS)
    )


def resolve_device(name: str) -> torch.device:
    """'auto' → CUDA when present; anything unusable is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise StabgapError(f"unknown device '{name}': use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StabgapError(f"device '{name}' asked for, but CUDA is not available: use cpu")
    return device


def copy_generators(seed: int) -> tuple[torch.Generator, ...]:
    """Independent random streams of one copy: initialisation, batches, test subsets.

    Separate streams keep each one the same whatever the others consume, e.g. the batch
    order does not change when the evaluation cadence does.
    """
    return tuple(torch.Generator().manual_seed(seed * 3 + k) for k in range(3))


def run_experiment(
    config: RunConfig, stream: TaskStream | None = None, progress: Progress | None = None
) -> RunResult:
    """Train one run and return its curves and metrics (nothing is written to disk)."""
    return train_runs([config], stream, progress)[0]


def train_runs(
    configs: Sequence[RunConfig],
    stream: TaskStream | None = None,
    progress: Progress | None = None,
) -> list[RunResult]:
    """Train R compatible runs: as one stacked computation on a GPU, one by one on a CPU.

    On a CPU one run's matmuls already keep every core busy, and R copies trained side
    by side only compete for the caches (4-7 % slower per run at paper scale, about even
    at quick scale: docs/performance.md), so there a stack is trained copy after copy,
    which gives the same results and is never slower. :func:`train_stack` is the stacked
    computation itself, on any device.
    """
    if resolve_device(configs[0].device).type == "cpu" and len(configs) > 1:
        return [train_stack([c], stream, progress)[0] for c in configs]
    return train_stack(configs, stream, progress)


def train_stack(
    configs: Sequence[RunConfig],
    stream: TaskStream | None = None,
    progress: Progress | None = None,
) -> list[RunResult]:
    """Train R compatible runs side by side as one stacked computation.

    Each copy has its own initialisation, batches and test subsets, drawn from its own
    seed, so its curves are those it would have alone (to float tolerance).

    Args:
        configs: runs that differ only in seed, decay_lambda and lr (see :func:`stack_key`).
        stream: the task data, already on the device; built from the config if None.
        progress: called as progress(batches_done, total_batches) now and then.
    """
    base = configs[0]
    if any(stack_key(c) != stack_key(base) for c in configs):
        raise ValueError(f"runs stacked together may differ only in {PER_COPY_FIELDS}")
    device = resolve_device(base.device)
    if stream is None:
        stream = build_stream(base, device)
    started = time.time()

    gens = [copy_generators(c.seed) for c in configs]
    sizes = (stream.n_features, *base.hidden, stream.n_classes)
    model = StackedMLP(sizes, [g[0] for g in gens], device)
    as_tensor = lambda xs: torch.tensor(xs, dtype=torch.float32, device=device)  # noqa: E731
    # None when every λ is 0: the baseline then pays nothing for ND.
    lambdas = (
        as_tensor([c.decay_lambda for c in configs])
        if any(c.decay_lambda for c in configs)
        else None
    )
    optimizer = StackedOptimizer(
        list(model.parameters()),
        as_tensor([c.lr for c in configs]),
        base.optimizer,
        base.betas,
        base.momentum,
    )
    sampler = BatchSampler(base, stream, [g[1] for g in gens], device)
    subsets = EvalSubsets(base, stream, [g[2] for g in gens], device)

    r, n_tasks, per_task = len(configs), stream.n_tasks, base.batches_per_task
    eval_steps = np.arange(0, base.total_batches, base.eval_every)
    counts = torch.full((r, len(eval_steps), n_tasks), -1, dtype=torch.int32, device=device)
    eval_sizes = np.zeros(len(eval_steps), dtype=np.int64)  # m of each point
    losses = torch.zeros(r, base.total_batches, device=device)
    timer = Stopwatch(device)
    autocast = forward_precision(base.precision, device)

    with tf32_matmuls(base.precision == "tf32"):
        point = 0
        for task in range(1, n_tasks + 1):
            sampler.start_task(task)
            if base.reset_optimizer and task > 1:
                optimizer.reset()
            evaluated = range(1, (n_tasks if base.eval_tasks == "all" else task) + 1)
            m = base.task_eval_size(task, min(stream.test_size(k) for k in evaluated))
            for t in range((task - 1) * per_task, task * per_task):
                if t % base.eval_every == 0:  # the model after t updates
                    with timer("eval"):
                        idx = subsets.draw(evaluated, m)
                        with autocast():
                            correct = count_correct(model, stream, idx)
                        counts[:, point, : len(evaluated)] = correct
                    eval_sizes[point] = m
                    point += 1
                with timer("train"):
                    batch = sampler.next()  # (R, B)
                    losses[:, t] = train_step(
                        model, optimizer, stream, batch, lambdas, base.decay_reduction, autocast
                    )
                if progress is not None and (t + 1) % 10 == 0:
                    progress(t + 1, base.total_batches)
    if progress is not None:
        progress(base.total_batches, base.total_batches)

    # The only copy from the device: curves leave it once, at the end.
    counts_np = counts.cpu().numpy().astype(np.float64)
    losses_np = losses.cpu().numpy().astype(np.float64)
    acc = np.where(counts_np >= 0, 100.0 * counts_np / eval_sizes[None, :, None], np.nan)
    boundaries = tuple(
        int(np.searchsorted(eval_steps, k * per_task)) for k in range(1, n_tasks + 1)
    )
    meta = run_metadata(device, started, timer, r)
    return [
        RunResult(
            config=c.replace(device=str(device)),
            acc=acc[i],
            eval_steps=eval_steps,
            boundaries=boundaries,
            loss=losses_np[i],
            diverged=not bool(np.isfinite(losses_np[i]).all()),
            metadata={**meta, "seed": c.seed},
        )
        for i, c in enumerate(configs)
    ]


def train_step(
    model: StackedMLP,
    optimizer: StackedOptimizer,
    stream: TaskStream,
    batch: torch.Tensor,
    lambdas: torch.Tensor | None,
    reduction: str,
    autocast: Callable[[], contextlib.AbstractContextManager],
) -> torch.Tensor:
    """One update of every copy on its batch (R, B); returns the (R,) losses."""
    with autocast():
        logits, hidden = model(pixels(stream.train_x[batch]))
        loss = training_loss(logits, stream.train_y[batch], hidden, lambdas, reduction)
    optimizer.zero_grad()
    loss.sum().backward()
    optimizer.step()
    return loss.detach()


def forward_precision(precision: str, device: torch.device):
    """A context for each forward pass: bf16 autocast, or nothing (fp32, tf32).

    Autocast is entered per forward pass, never around the whole loop: it caches the
    low-precision copies of the weights until its context exits, so a loop-wide context
    would keep computing with the weights of the first step.
    """
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext


@contextlib.contextmanager
def tf32_matmuls(enabled: bool):
    """TensorFloat-32 CUDA matmuls for the run's span (no effect on a CPU)."""
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled or before
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


class Stopwatch:
    """Time spent in named sections; CUDA events on a GPU so that nothing synchronises."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.seconds: dict[str, float] = {}
        self.events: dict[str, list] = {}

    @contextlib.contextmanager
    def __call__(self, name: str):
        if self.cuda:
            start, end = (torch.cuda.Event(enable_timing=True) for _ in range(2))
            start.record()
            yield
            end.record()
            self.events.setdefault(name, []).append((start, end))
        else:
            t0 = time.perf_counter()
            yield
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def totals(self) -> dict[str, float]:
        if self.cuda:
            torch.cuda.synchronize()
            for name, pairs in self.events.items():
                self.seconds[name] = sum(s.elapsed_time(e) for s, e in pairs) / 1000
            self.events.clear()
        return dict(self.seconds)


def run_metadata(device: torch.device, started: float, timer: Stopwatch, n_stacked: int) -> dict:
    totals = timer.totals()
    return {
        "stabgap_version": stabgap.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        ),
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_time_s": time.time() - started,
        "train_time_s": totals.get("train", 0.0),
        "eval_time_s": totals.get("eval", 0.0),
        "stacked_runs": n_stacked,
    }
