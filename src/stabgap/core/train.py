"""The training loop: one loop for one run or for a stack of compatible runs.

Read top to bottom, :func:`train_stack` is the whole protocol: for each task, for each
batch, evaluate every task (before the update), draw a batch (with or without replay),
take one optimiser step on the cross-entropy and the remedies' loss terms. Replay and the
evaluation cadence are options of this loop; the remedies and the methods act only at its
named points (see :mod:`stabgap.core.remedies`): the loss (``data_loss``, ``loss_term``),
the update rule (``gradients``, ``before_step``), ``at_switch``, and the weights that are
``evaluated``. A bounded replay memory (:mod:`stabgap.core.memories`) is offered each
step's new examples and chooses at each task's end.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import stabgap
from stabgap.core.analyses import Analyses, wanted
from stabgap.core.config import RunConfig, fields_where, to_dict
from stabgap.core.curves import Curves
from stabgap.core.device import (
    Stopwatch,
    device_reason,
    keep_freed_memory,
    precision_context,
    resolve_device,
    runnable,
)
from stabgap.core.evaluate import (
    EvalSubsets,
    Evaluation,
    activity_points,
    evaluate,
    evaluation_steps,
)
from stabgap.core.losses import cross_entropy, weighted_replay_loss
from stabgap.core.memories import MEMORIES, Memory
from stabgap.core.methods import LOGITS, METHODS
from stabgap.core.models import build_model, cpu_matmul, evaluating
from stabgap.core.monitor import Monitor
from stabgap.core.optim import CopyOptimizer
from stabgap.core.remedies import Batch, Forward, Remedies, Step
from stabgap.core.replay import BatchSampler
from stabgap.core.streams import (
    TaskStream,
    build_stream,
    check_fits,
    check_stream,
    pixels,
    rows,
)
from stabgap.metrics import Measured, MetricRow, compute_metrics, gap_depth
from stabgap.seeds import derive_seed

# Fields that may differ between the copies of one stack; everything else is shared.
PER_COPY_FIELDS = fields_where("per_copy")
# A run has diverged when a loss is not finite or its cross-entropy, whose value at chance
# is ln C (2.3 for 10 classes), exceeds this many times ln C: a mean probability of e^-230
# for the right class is a network whose weights have blown up, not one that is learning.
EXPLODED_CE = 100
# ... or when it collapsed: a network whose output no longer depends on its input (its
# units dead after a blown-up step) has a cross-entropy flat at ln C, batch after batch
# (a standard deviation of 1e-5 after SAM at ρ = 1e9), while one that learns, however
# slowly, moves from batch to batch (4e-3 at lr 1e-4 in its first batches). Judged on the
# last tenth of the run, at least this many batches.
COLLAPSE_TAIL = 10

Progress = Callable[[int, int], None]


@dataclass
class RunResult(Measured):
    """What one run produced, in memory: curves, metrics and how it was run."""

    config: RunConfig
    acc: np.ndarray  # (points, tasks) accuracy in %, NaN where a task was not evaluated
    eval_steps: np.ndarray  # (points,) the batch index t (updates done) of each point
    boundaries: tuple[int, ...]  # points at the end of each task's interval
    loss: np.ndarray  # (total_batches,) training loss of each batch
    diverged: bool
    metadata: dict[str, Any] = field(default_factory=dict)
    penalty: np.ndarray | None = None  # (total_batches,) the loss terms beyond cross-entropy
    acc_repeats: np.ndarray | None = None  # (repeats, points, tasks) with eval_repeats > 1
    activity: dict[str, np.ndarray] = field(default_factory=dict)  # (points, tasks, layers)
    # why the gap (stabgap.core.analyses): (points, tasks[, layers]), NaN where not measured
    analyses: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ends(self) -> tuple[int, ...]:
        """Where each task's interval ends, in batches (the unit of eval_steps)."""
        per_task = self.config.batches_per_task
        return tuple(per_task * k for k in range(1, len(self.boundaries) + 1))

    @property
    def metrics(self) -> list[MetricRow]:
        return compute_metrics(self.acc, self.ends, steps=self.eval_steps)


def stack_key(config: RunConfig) -> tuple:
    """Runs with equal keys can be trained together as one stack."""
    return tuple(
        sorted((k, str(v)) for k, v in to_dict(config).items() if k not in PER_COPY_FIELDS)
    )


def copy_generators(seed: int, device: torch.device | str = "cpu") -> tuple[torch.Generator, ...]:
    """Independent random streams of one copy: initialisation, batches, test subsets.

    Separate streams keep each one the same whatever the others consume, e.g. the batch
    order does not change when the evaluation cadence does. The initialisation is drawn
    on the CPU (so that a copy starts where torch's own layers would for its seed); the
    batches and subsets where the run computes, so that a GPU run draws nothing on the
    host per batch (a CPU and a GPU run of one seed therefore see different batches).
    """
    device = torch.device(device)
    return (
        torch.Generator().manual_seed(derive_seed(seed, "init")),
        torch.Generator(device).manual_seed(derive_seed(seed, "batches")),
        torch.Generator(device).manual_seed(derive_seed(seed, "subsets")),
    )


def run_experiment(
    config: RunConfig, stream: TaskStream | None = None, progress: Progress | None = None
) -> RunResult:
    """Train one run and return its curves and metrics (nothing is written to disk)."""
    return train_runs([config], stream, progress)[0]


def train_runs(
    configs: Sequence[RunConfig],
    stream: TaskStream | None = None,
    progress: Progress | None = None,
    monitor: Monitor | None = None,
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
            view = None if monitor is None else monitor.select([i])
            results.append(train_stack([c], stream, part, view)[0])
        return results
    return train_stack(configs, stream, progress, monitor)


@dataclass
class RunParts:
    """Everything a stack of runs trains with; built once by :func:`build_parts`."""

    configs: list[RunConfig]
    stream: TaskStream
    device: torch.device
    model: torch.nn.Module
    optimizer: CopyOptimizer
    remedies: Remedies
    sampler: BatchSampler
    memory: Memory | None  # the bounded replay memory, where the runs keep one
    subsets: EvalSubsets
    precision: Callable  # the training step's precision context
    eval_precision: Callable  # the evaluation's
    forward: Callable  # the model's forward pass (compiled when the config asks)


def build_parts(configs: Sequence[RunConfig], stream: TaskStream, device: torch.device) -> RunParts:
    """The model, optimiser, remedies, sampler and test subsets of a stack of runs."""
    base = configs[0]
    gens = [copy_generators(c.seed, device) for c in configs]
    model = build_model(base, stream.input_shape, stream.n_classes, [g[0] for g in gens], device)
    memory = None
    if any(c.keeps_memory for c in configs):  # (a copy at DER's α = 0 keeps none alone)
        keep_logits = any(METHODS[m].memory_use == LOGITS for c in configs for m in c.methods)
        seeds = [c.seed for c in configs]
        memory = MEMORIES.chosen(base)(base, stream, seeds, device, keep_logits)
    return RunParts(
        configs=list(configs),
        stream=stream,
        device=device,
        model=model,
        optimizer=CopyOptimizer(list(model.parameters()), configs),
        remedies=Remedies(configs, model, stream, device, memory),
        sampler=BatchSampler(base, stream, [g[1] for g in gens], device),
        memory=memory,
        subsets=EvalSubsets(base, stream, [g[2] for g in gens], device),
        precision=precision_context(base.precision, device),
        eval_precision=precision_context(base.eval_precision, device),
        forward=torch.compile(model) if base.compile else model,
    )


def train_stack(
    configs: Sequence[RunConfig],
    stream: TaskStream | None = None,
    progress: Progress | None = None,
    monitor: Monitor | None = None,
) -> list[RunResult]:
    """Train R compatible runs side by side as one stacked computation.

    Each copy has its own initialisation, batches and test subsets, drawn from its own
    seed, so its curves are those it would have alone (to float tolerance).

    Args:
        configs: runs that differ only in per-copy fields (see :func:`stack_key`).
        stream: the task data, already on the device; built from the config if None.
        progress: called as progress(batches_done, total_batches) now and then.
        monitor: the runs' live logs (:class:`stabgap.core.monitor.Monitor`), if any.
    """
    base = configs[0]
    if any(stack_key(c) != stack_key(base) for c in configs):
        raise ValueError(f"runs stacked together may differ only in {PER_COPY_FIELDS}")
    device = resolve_device(base.device)
    if stream is None:
        stream = build_stream(base, device)
    if stream.train_x.device.type != device.type:  # else a device error deep in the first batch
        raise ValueError(
            f"the stream's data is on {stream.train_x.device} but the runs on {device}: "
            f"build it with build_stream(config, {str(device)!r})"
        )
    for c in configs:
        check_stream(c, stream)  # the run's own tasks, never another run's stream
        check_fits(c, stream)  # every copy, not only the one the stream was built for
    keep_freed_memory()  # each evaluation's large activations: reused, not page-faulted
    started = time.time()
    parts = build_parts(configs, stream, device)

    r, n_tasks, per_task = len(configs), stream.n_tasks, base.batches_per_task
    eval_steps = evaluation_steps(
        base.total_batches, per_task, base.eval_every, base.eval_switch_window
    )
    evaluated_at = np.zeros(base.total_batches, dtype=bool)
    evaluated_at[eval_steps] = True
    with_activity = activity_points(eval_steps, per_task, base.activity_every)
    analyses = Analyses(configs, stream, parts.model, eval_steps, device) if wanted(base) else None
    curves = Curves(r, len(eval_steps), n_tasks, base.eval_repeats, device)
    losses = torch.zeros(r, base.total_batches, device=device)
    penalties = torch.zeros(r, base.total_batches, device=device)
    penalized = False  # whether any loss term was added (else no penalty curve is kept)
    timer = Stopwatch(device)
    on_cpu, waiting = device.type == "cpu", []  # how many threads wanted a core, sampled

    point = logged = 0
    kept: list[np.ndarray] = []  # the memory's content at each switch: (R, tasks, classes)
    for task in range(1, n_tasks + 1):
        if parts.memory is not None and task > 1:
            parts.memory.end_task(task - 1, lambda index: stored_logits(parts, index))
            kept.append(parts.memory.content())
        parts.sampler.start_task(task)
        parts.remedies.at_switch(task, parts.model, parts.optimizer)
        evaluated, m = evaluated_tasks(base, stream, task)
        for t in range((task - 1) * per_task, task * per_task):
            if evaluated_at[t]:  # the model after t updates
                with timer("eval"):
                    net = parts.remedies.evaluated(parts.model)
                    for repeat, ev in evaluation_point(
                        parts, net, task, evaluated, m, with_activity[point]
                    ):
                        curves.record(point, repeat, m, ev)
                if analyses is not None:
                    with timer("analyses"):
                        analyses.measure(point, net, task)
                point += 1
            with timer("train"):  # (the gradient anatomy's time, where on, counts here)
                batch = draw_batch(parts)
                if analyses is not None:
                    analyses.before_step(t, task, batch.indices, parts.model)
                step = Step(task, t, t - (task - 1) * per_task)
                losses[:, t], penalty = train_step(parts, batch, step)
                if penalty is not None:
                    penalties[:, t], penalized = penalty, True
            done = t + 1
            if on_cpu and done % SAMPLE_EVERY == 0:  # between products: another's turn?
                waiting.append(runnable())
            if progress is not None and done % 10 == 0:
                progress(done, base.total_batches)
            if monitor is not None and monitor.wants(done, per_task, base.eval_every):
                recent = losses[:, logged:done].mean(dim=1).cpu().numpy()
                at = int(eval_steps[point - 1])  # the latest evaluation, as the curves say
                monitor(done, base.total_batches, task, recent, curves.latest(point - 1), at)
                logged = done
        if monitor is not None and task > 1:  # the interval's gaps, as they close
            monitor.gaps(done, task, interval_gaps(curves, point, eval_steps, per_task, task))
    if progress is not None:
        progress(base.total_batches, base.total_batches)

    losses_np = losses.cpu().numpy().astype(np.float64)
    penalties_np = penalties.cpu().numpy().astype(np.float64) if penalized else None
    boundaries = tuple(
        int(np.searchsorted(eval_steps, k * per_task)) for k in range(1, n_tasks + 1)
    )
    meta = run_metadata(device, started, timer, r, waiting)
    results = []
    analysed = analyses.finish() if analyses is not None else [{} for _ in configs]
    for i, (c, copy) in enumerate(zip(configs, curves.finish(), strict=True)):
        penalty_i = None if penalties_np is None else penalties_np[i]
        why = divergence(losses_np[i], penalty_i, stream.n_classes)
        results.append(
            RunResult(
                config=c.replace(device=str(device)),
                acc=copy.acc,
                eval_steps=eval_steps,
                boundaries=boundaries,
                loss=losses_np[i],
                diverged=why is not None,
                metadata={
                    **meta,
                    "seed": c.seed,
                    "device_requested": c.device,
                    "device_reason": device_reason(c.device, device),
                    "remedies": list(c.remedies),
                    **({"methods": list(c.methods)} if c.methods else {}),
                    # How many examples of each task (rows) and class the memory held as
                    # each task after the first began.
                    **(
                        {"memory": [k[i].tolist() for k in kept]} if kept and c.keeps_memory else {}
                    ),
                    "task_names": list(stream.names),  # for labels: angles, digits, parts
                    **({"divergence": why} if why else {}),
                },
                penalty=penalty_i,
                acc_repeats=copy.acc_repeats,
                activity=copy.activity,
                analyses=analysed[i],
            )
        )
    return results


def evaluated_tasks(config: RunConfig, stream: TaskStream, task: int) -> tuple[range, int]:
    """The tasks each evaluation during `task` covers (those seen so far, or all of them)
    and the test images it takes of each."""
    evaluated = range(1, (stream.n_tasks if config.eval_tasks == "all" else task) + 1)
    return evaluated, config.task_eval_size(task, min(stream.test_size(k) for k in evaluated))


def evaluation_point(
    parts: RunParts,
    net: torch.nn.Module,
    task: int,
    evaluated: range,
    m: int,
    statistics: bool,
) -> Iterator[tuple[int, Evaluation]]:
    """One continual evaluation, as the loop makes it at a point of `task`: `net` (the
    network the remedies evaluate) on `m` test images of each `evaluated` task, once per
    repeat, each on independent subsets. Yields (repeat, evaluation), the evaluation's
    precision still in force."""
    for repeat in range(parts.configs[0].eval_repeats):
        idx = parts.subsets.draw(evaluated, m)  # (R, tasks, m)
        with parts.eval_precision():
            yield repeat, evaluate(net, parts.stream, idx, task, statistics)


def draw_batch(parts: RunParts) -> Batch:
    """The next step's examples: the current task's, then any replayed from the memory."""
    new = parts.sampler.next()  # (R, B)
    drawn = parts.memory.draw() if parts.configs[0].replay == "memory" else None
    return Batch(new, None if drawn is None else parts.memory.examples(drawn))


def train_step(
    parts: RunParts, batch: Batch | torch.Tensor, step: Step
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One update of every copy on its batch (a :class:`Batch`, or (R, B) indices of the
    current task's examples alone); the (R,) losses and penalties."""
    model, stream, remedies = parts.model, parts.stream, parts.remedies
    if isinstance(batch, torch.Tensor):
        batch = Batch(batch)
    index = batch.indices  # (R, B)
    x, y = pixels(rows(stream.train_x, index)), stream.train_y[index]
    offered: list[torch.Tensor] = []  # the new examples' logits at the step's weights

    def compute(reference: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forward and backward at the current weights: each copy's loss, its penalty. With
        `reference` (R, n) examples: their plain cross-entropy instead (A-GEM's)."""
        parts.optimizer.zero_grad()
        if reference is not None:
            with parts.precision():
                logits = parts.forward(pixels(rows(stream.train_x, reference)))[0]
                loss = cross_entropy(
                    stream.restrict(logits, step.task, reference), stream.train_y[reference]
                )
            loss.sum().backward()
            return loss.detach(), None
        with parts.precision():
            raw, hidden = parts.forward(x)  # (R, B, classes)
            logits = stream.restrict(raw, step.task, index)
            out = Forward(logits, hidden, model, x, raw, y, batch, step.task)
            loss = remedies.data_loss(out)
            if loss is None and parts.configs[0].replay_weight:
                loss = weighted_replay_loss(
                    logits, y, batch.new.shape[1], parts.configs[0].replay_weight
                )
            elif loss is None:
                loss = cross_entropy(logits, y)
            penalty = remedies.loss_term(out)
            if penalty is not None:
                loss = loss + penalty
        loss.sum().backward()  # each copy's own gradient: no parameter is shared
        if not offered:
            offered.append(raw[:, : batch.new.shape[1]].detach())
        return loss.detach(), None if penalty is None else penalty.detach()

    loss, penalty = remedies.gradients(compute, model)
    remedies.before_step(model, parts.optimizer, dataclasses.replace(step, batch=index))
    parts.optimizer.step()
    remedies.after_step(model)
    if parts.memory is not None:
        parts.memory.offer(batch.new, offered[0])
    return loss, penalty


@torch.no_grad()
def stored_logits(parts: RunParts, index: torch.Tensor) -> torch.Tensor:
    """The network's logits (R, n, classes) for examples (R, n) a memory stores now, as the
    network evaluates them (eval mode: batch norm's running statistics left alone)."""
    with evaluating(parts.model), parts.precision():
        return parts.forward(pixels(rows(parts.stream.train_x, index)))[0]


def interval_gaps(
    curves: Curves, points: int, eval_steps: np.ndarray, per_task: int, interval: int
) -> dict[str, np.ndarray]:
    """Every earlier task's gap depth in `interval`, just ended, per copy (for the live log:
    the curves so far, copied to the host once per interval)."""
    acc = curves.pooled(points)[:, :, :interval]  # (R, points, tasks seen so far)
    ends = [per_task * k for k in range(1, interval + 1)]
    steps = eval_steps[:points]
    return {
        f"GD_{i},{interval}": np.array(
            [gap_depth(copy, ends, i, interval, steps=steps) for copy in acc]
        )
        for i in range(1, interval)
    }


def divergence(loss: np.ndarray, penalty: np.ndarray | None, n_classes: int) -> str | None:
    """Why a run's losses show it diverged, or None (the rule: :data:`EXPLODED_CE`).

    Example:
        >>> divergence(np.array([2.3, 1.1]), None, 10) is None
        True
        >>> divergence(np.array([2.3, 7e19]), None, 10)
        'cross-entropy 7e+19 > 100·ln 10 at batch 1'
        >>> divergence(np.array([2.3, np.nan]), None, 10)
        'non-finite loss at batch 1'
        >>> divergence(np.full(40, np.log(10)), None, 10)[:60]
        'collapsed: the cross-entropy stayed at ln 10 = chance over t'
    """
    bad = np.flatnonzero(~np.isfinite(loss))
    if bad.size:
        return f"non-finite loss at batch {bad[0]}"
    ce = loss - penalty if penalty is not None else loss
    limit = EXPLODED_CE * np.log(n_classes)
    high = np.flatnonzero(ce > limit)
    if high.size:
        return f"cross-entropy {ce[high[0]]:.3g} > {EXPLODED_CE}·ln {n_classes} at batch {high[0]}"
    tail = ce[-max(COLLAPSE_TAIL, len(ce) // 10) :] if len(ce) >= 2 * COLLAPSE_TAIL else ce[:0]
    if tail.size and np.std(tail) < 2e-4 and abs(np.mean(tail) - np.log(n_classes)) < 0.01:
        return (
            f"collapsed: the cross-entropy stayed at ln {n_classes} = chance over the last "
            f"{tail.size} batches, the output no longer depending on the input"
        )
    return None


# On a CPU, every this many batches the loop counts the threads that want a core.
SAMPLE_EVERY = 25


def run_metadata(
    device: torch.device,
    started: float,
    timer: Stopwatch,
    n_stacked: int,
    waiting: Sequence[int | None] = (),
) -> dict:
    totals = timer.totals()
    counts = sorted(n for n in waiting if n is not None)
    return {
        "stabgap_version": stabgap.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        ),
        "threads": torch.get_num_threads(),
        # What computed the float32 dense layers (runs with another differ by rounding).
        **({"cpu_matmul": cpu_matmul.library()} if device.type == "cpu" else {}),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_time_s": time.time() - started,
        "train_time_s": totals.get("train", 0.0),
        "eval_time_s": totals.get("eval", 0.0),
        "stacked_runs": n_stacked,
        # how busy the machine was while it trained: the median count of threads running or
        # waiting for a core, its own among them, at every SAMPLE_EVERY-th batch, and the
        # cores there are. More than the cores: other work took turns with it and slowed it
        # (stabgap.analysis.costs says so)
        **({"runnable": float(np.median(counts))} if counts else {}),
        "cpus": os.cpu_count(),
    }
