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
from stabgap.config import RunConfig, fields_where, to_dict
from stabgap.errors import StabgapError
from stabgap.evaluate import EvalSubsets, count_correct, pixels
from stabgap.losses import training_loss
from stabgap.metrics import MetricRow, compute_metrics
from stabgap.model import StackedMLP
from stabgap.optim import StackedOptimizer
from stabgap.replay import BatchSampler
from stabgap.tasks import TaskStream, build_stream, check_fits

# Fields that may differ between the copies of one stack; everything else is shared.
PER_COPY_FIELDS = fields_where("per_copy")
# A run has diverged when a loss is not finite or its cross-entropy, whose value at chance
# is ln C (2.3 for 10 classes), exceeds this many times ln C: a mean probability of e^-230
# for the right class is a network whose weights have blown up, not one that is learning.
EXPLODED_CE = 100

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
    penalty: np.ndarray | None = None  # (total_batches,) the loss terms beyond cross-entropy

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
    if not isinstance(name, str) or not name.strip():
        raise StabgapError("device must be cpu, cuda, cuda:N or auto")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise StabgapError(f"unknown device '{name}': use cpu, cuda, cuda:N or auto") from None
    if device.type not in ("cpu", "cuda"):
        raise StabgapError(f"device '{name}' is not supported: use cpu, cuda, cuda:N or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise StabgapError(f"device '{name}' asked for, but CUDA is not available: use cpu")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise StabgapError(
            f"device '{name}' asked for, but there are only {torch.cuda.device_count()} GPUs"
        )
    return device


def device_reason(name: str, device: torch.device) -> str:
    """Why a run ran where it did, for its record."""
    if name != "auto":
        return f"asked for {name}"
    return "auto: a CUDA GPU is present" if device.type == "cuda" else "auto: no CUDA GPU, so CPU"


def divergence(loss: np.ndarray, penalty: np.ndarray | None, n_classes: int) -> str | None:
    """Why a run's losses show it diverged, or None (the rule: :data:`EXPLODED_CE`).

    Example:
        >>> divergence(np.array([2.3, 1.1]), None, 10) is None
        True
        >>> divergence(np.array([2.3, 7e19]), None, 10)
        'cross-entropy 7e+19 > 100·ln 10 at batch 1'
        >>> divergence(np.array([2.3, np.nan]), None, 10)
        'non-finite loss at batch 1'
    """
    bad = np.flatnonzero(~np.isfinite(loss))
    if bad.size:
        return f"non-finite loss at batch {bad[0]}"
    ce = loss - penalty if penalty is not None else loss
    limit = EXPLODED_CE * np.log(n_classes)
    high = np.flatnonzero(ce > limit)
    if high.size:
        return f"cross-entropy {ce[high[0]]:.3g} > {EXPLODED_CE}·ln {n_classes} at batch {high[0]}"
    return None


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
        results = []
        for i, c in enumerate(configs):
            # Progress over the whole stack: copy i's batches come after those of 0..i-1.
            part = (
                None
                if progress is None
                else (lambda d, t, i=i: progress(i * t + d, len(configs) * t))
            )
            results.append(train_stack([c], stream, part)[0])
        return results
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
    for c in configs:
        check_fits(c, stream)  # every copy, not only the one the stream was built for
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
    penalties = torch.zeros(r, base.total_batches, device=device) if lambdas is not None else None
    timer = Stopwatch(device)
    train_precision = precision_context(base.precision, device)
    eval_precision = precision_context(base.eval_precision, device)

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
                    with eval_precision():
                        correct = count_correct(model, stream, idx)
                    counts[:, point, : len(evaluated)] = correct
                eval_sizes[point] = m
                point += 1
            with timer("train"):
                batch = sampler.next()  # (R, B)
                loss, penalty = train_step(
                    model,
                    optimizer,
                    stream,
                    batch,
                    lambdas,
                    base.decay_reduction,
                    train_precision,
                )
                losses[:, t] = loss
                if penalties is not None:
                    penalties[:, t] = penalty
            if progress is not None and (t + 1) % 10 == 0:
                progress(t + 1, base.total_batches)
    if progress is not None:
        progress(base.total_batches, base.total_batches)

    # The only copy from the device: curves leave it once, at the end.
    counts_np = counts.cpu().numpy().astype(np.float64)
    losses_np = losses.cpu().numpy().astype(np.float64)
    penalties_np = None if penalties is None else penalties.cpu().numpy().astype(np.float64)
    acc = np.where(counts_np >= 0, 100.0 * counts_np / eval_sizes[None, :, None], np.nan)
    boundaries = tuple(
        int(np.searchsorted(eval_steps, k * per_task)) for k in range(1, n_tasks + 1)
    )
    meta = run_metadata(device, started, timer, r)
    results = []
    for i, c in enumerate(configs):
        penalty_i = None if penalties_np is None else penalties_np[i]
        why = divergence(losses_np[i], penalty_i, stream.n_classes)
        results.append(
            RunResult(
                config=c.replace(device=str(device)),
                acc=acc[i],
                eval_steps=eval_steps,
                boundaries=boundaries,
                loss=losses_np[i],
                diverged=why is not None,
                metadata={
                    **meta,
                    "seed": c.seed,
                    "device_requested": c.device,
                    "device_reason": device_reason(c.device, device),
                    **({"divergence": why} if why else {}),
                },
                penalty=penalty_i,
            )
        )
    return results


def train_step(
    model: StackedMLP,
    optimizer: StackedOptimizer,
    stream: TaskStream,
    batch: torch.Tensor,
    lambdas: torch.Tensor | None,
    reduction: str,
    precision: Callable[[], contextlib.AbstractContextManager],
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One update of every copy on its batch (R, B); the (R,) losses and penalties."""
    with precision():
        logits, hidden = model(pixels(stream.train_x[batch]))
        loss, penalty = training_loss(logits, stream.train_y[batch], hidden, lambdas, reduction)
    optimizer.zero_grad()
    loss.sum().backward()
    optimizer.step()
    return loss.detach(), None if penalty is None else penalty.detach()


def precision_context(precision: str, device: torch.device):
    """A context for each forward (and backward) pass that gives exactly `precision`.

    bf16 is autocast, entered per pass, never around the whole loop: autocast caches
    the low-precision copies of the weights until its context exits, so a loop-wide
    context would keep computing with the weights of the first step. On a GPU, fp32 and
    tf32 set torch's float32 matmul (and convolution) precision for the pass and put
    back what was there, so a run is fp32 when it says fp32 whatever the process had
    switched on. A CPU has no TF32: there tf32 computes in fp32, like fp32.
    """
    if precision == "bf16":
        return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if device.type != "cuda":
        return contextlib.nullcontext
    return lambda: cuda_matmul_precision("tf32" if precision == "tf32" else "ieee")


@contextlib.contextmanager
def cuda_matmul_precision(mode: str):
    """CUDA float32 matmuls and convolutions in `mode` ('ieee' or 'tf32'), then as before.

    Uses torch's ``fp32_precision`` settings where they exist (torch >= 2.9; reading the
    older ``allow_tf32`` flags there raises once the new ones are used) and the
    ``allow_tf32`` flags on older versions.
    """
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if hasattr(matmul, "fp32_precision"):
        before = (matmul.fp32_precision, conv.fp32_precision)
        matmul.fp32_precision = conv.fp32_precision = mode
        try:
            yield
        finally:
            matmul.fp32_precision, conv.fp32_precision = before
        return
    before = (matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "tf32"
    try:
        yield
    finally:
        matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


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
