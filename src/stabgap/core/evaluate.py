"""Continual evaluation: the accuracy of every task at (almost) every training batch.

All evaluated tasks of all copies go through the network in one batched forward pass,
and only the counts of correct answers are kept, on the device: copying results to the
host after every batch would stall a GPU, and integer counts turn into exact
percentages later (100·k/m in float64, as the reference computes them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from stabgap.core.device import autocast_dtype
from stabgap.core.models import evaluating
from stabgap.core.streams import TaskStream, rows

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig


class EvalSubsets:
    """Which test images each copy is evaluated on, per task, at each evaluation.

    'fresh' draws a new random subset at every evaluation (the reference); 'fixed' draws
    one order per task and copy for the whole run and always takes its first m images.

    Each copy draws from its own generator. A CPU generator draws a permutation per task
    (torch.randperm); a generator on the GPU draws all tasks' subsets at once there (the
    m smallest of uniform keys), so that nothing is drawn on the host per batch, which
    would leave a GPU waiting. Both are uniform subsets without replacement; they are
    different numbers, so a run on a GPU is evaluated on other subsets than on a CPU.
    """

    def __init__(
        self,
        config: RunConfig,
        stream: TaskStream,
        generators: list[torch.Generator],
        device: torch.device | str = "cpu",
        keys: bool | None = None,
    ) -> None:
        """`keys`: draw by the smallest uniform keys (the GPU's way) or by permutations (the
        CPU's); None chooses by where the generators are. Tests force the GPU's way."""
        self.config, self.stream, self.generators = config, stream, generators
        self.device = torch.device(device)
        self.keys = generators[0].device.type != "cpu" if keys is None else keys
        self.offsets = torch.tensor(stream.test_offsets[:-1], device=self.device)
        self.sizes = [stream.test_size(t) for t in range(1, stream.n_tasks + 1)]
        # The key slots past each task's end, built once: a tensor made from a Python list
        # at every evaluation is a host-to-device copy, which waits for the GPU to finish
        # all its queued work (measured on an H200: 64 such waits a batch in a stack of 64).
        slots = torch.arange(max(self.sizes), device=self.device)
        self.past_end = slots >= torch.tensor(self.sizes, device=self.device)[:, None]
        self.fixed = (
            self._orders(range(1, stream.n_tasks + 1), min(self.sizes))
            if config.eval_resample == "fixed"
            else None
        )

    def _orders(self, tasks: range, size: int) -> torch.Tensor:
        """(R, len(tasks), size) indices into test_x: the first `size` of a random order of
        each task's images, for each copy from its own generator."""
        starts = self.offsets[tasks.start - 1 : tasks.stop - 1, None]
        if not self.keys:
            rows = [
                torch.stack([torch.randperm(self.sizes[t - 1], generator=g)[:size] for t in tasks])
                for g in self.generators
            ]
            return torch.stack(rows).to(self.device) + starts
        # Each copy's uniform keys from its own generator, where it lives; then one masked
        # fill and one top-k for the whole stack, not one per copy.
        shape = (len(tasks), self.past_end.shape[1])
        keys = torch.stack(
            [torch.rand(shape, generator=g, device=g.device) for g in self.generators]
        ).to(self.device)
        keys.masked_fill_(self.past_end[tasks.start - 1 : tasks.stop - 1], math.inf)
        return keys.topk(size, dim=2, largest=False).indices + starts

    def draw(self, tasks: range, size: int) -> torch.Tensor:
        """(R, len(tasks), size) indices into ``stream.test_x``."""
        if self.fixed is not None:
            return self.fixed[:, tasks.start - 1 : tasks.stop - 1, :size].contiguous()
        return self._orders(tasks, size)


@dataclass(frozen=True)
class Evaluation:
    """One continual evaluation of every copy on its test subsets.

    Attributes:
        correct: (R, T) right answers on each task's subset.
        active: (R, T, L) fraction of each hidden layer's units that are active (> 0),
            over the subset's images.
        square: (R, T, L) neuronal decay's quantity: Σ over a layer's units of h², averaged
            over the images.
        dead: (R, T, L) fraction of each layer's units that are 0 on every image of the
            subset.
    """

    correct: torch.Tensor
    active: torch.Tensor | None = None  # None: not recorded at this point
    square: torch.Tensor | None = None
    dead: torch.Tensor | None = None


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    stream: TaskStream,
    idx: torch.Tensor,
    task: int,
    statistics: bool = True,
) -> Evaluation:
    """Right answers of each copy on each task's subset, and what its hidden layers did.

    The activations are those the forward pass computes anyway, so the statistics cost a
    few elementwise passes over them (docs/metrics.md measures it).

    Args:
        idx: (R, T, m) indices into the stream's test set, from :meth:`EvalSubsets.draw`.
        task: the task being trained now (the scenario may score only the classes seen).
        statistics: compute the hidden layers' statistics (False: left None; the run asks
            for them at the points of :func:`activity_points`).
    """
    r, t, m = idx.shape
    flat = idx.view(r, t * m)
    # A bf16 pass gets bf16 pixels, not float32 ones that autocast would then cast.
    dtype = autocast_dtype(flat.device.type) or torch.float32
    with evaluating(model):
        logits, hidden = model(rows(stream.test_pixels(dtype), flat))
    logits = stream.restrict(logits, task, flat, train=False)
    right = (logits.argmax(dim=-1) == stream.test_y[flat]).view(r, t, m)
    correct = right.sum(dim=-1, dtype=torch.int32)
    if not statistics:
        return Evaluation(correct)
    active, square, dead = [], [], []
    for h in hidden:
        h = h.reshape(r, t, m, -1)  # (R, T, m, units): conv maps flattened to units
        per_unit, norms = unit_counts_and_norms(h)
        active.append(per_unit.sum(dim=2).float() / (m * h.shape[3]))
        square.append(norms.square().mean(dim=2))
        dead.append((per_unit == 0).float().mean(dim=2))
    return Evaluation(
        correct,
        torch.stack(active, dim=-1),
        torch.stack(square, dim=-1),
        torch.stack(dead, dim=-1),
    )


# On a CPU the statistics go through the activations in slices of about this many elements
# (4 MiB of float32), which stay in cache between the passes over them.
CPU_SLICE = 1 << 20


def unit_counts_and_norms(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each unit's count of images where it is active (above zero): (R, T, units) int32;
    and each image's norm over the units, in float32: (R, T, m). h: (R, T, m, units).

    A unit is active on an image where its output is above zero (a ReLU's or a GELU's: its
    input was positive; NaN, a diverged network's, counts as active), dead on the subset
    where it is active on no image: its count serves both, summed as bytes into int32
    (1.5-3 × faster than count_nonzero's int64 sum, and no max over images). On a ReLU's
    outputs (≥ 0, -0.0 or NaN) that is the count of non-zero values; a GELU's are negative
    below zero, which are not active.

    On a CPU both are computed over slices of the images: whole, a (T, m, units) reduction
    over the images reads memory 3-5 × slower than in cache-sized slices (paper MLP, 3
    tasks: 55 ms a layer in bf16, 18 sliced). The numbers are the same: counts are integers,
    and each image's norm is one reduction over its own units, however many images a slice
    holds (tests/test_inside.py checks both against the whole computation).
    """
    r, t, m, units = h.shape
    step = m if h.device.type != "cpu" else max(1, CPU_SLICE // (r * t * units))
    counts = torch.zeros(r, t, units, dtype=torch.int32, device=h.device)
    norms = torch.empty(r, t, m, device=h.device)
    for start in range(0, m, step):
        part = h[:, :, start : start + step]
        idle = (part <= 0).view(torch.uint8).sum(dim=2, dtype=torch.int32)  # NaN: not idle
        counts += part.shape[2] - idle
        norms[:, :, start : start + step] = torch.linalg.vector_norm(part.float(), dim=3)
    return counts, norms


def evaluation_steps(total: int, per_task: int, every: int, switch_window: int = 0) -> np.ndarray:
    """The batches t (updates done) at which the loop evaluates, before the update.

    Every `every`-th batch from the first; and, with a `switch_window`, every batch for the
    first `switch_window` batches after each task switch, where the gap lives (its depth
    is the lowest point just after a switch, its recovery soon after), and the last batch
    of every task: the point each gap is measured from, and the final accuracy.

    >>> evaluation_steps(12, per_task=6, every=3).tolist()
    [0, 3, 6, 9]
    >>> evaluation_steps(12, per_task=6, every=3, switch_window=2).tolist()
    [0, 3, 5, 6, 7, 9, 11]
    """
    t = np.arange(total)
    dense = (t >= per_task) & (t % per_task < switch_window)
    last = (t % per_task == per_task - 1) & (switch_window > 0)
    return t[(t % every == 0) | dense | last]


def activity_points(eval_steps: np.ndarray, per_task: int, every: int) -> np.ndarray:
    """Which evaluation points record the hidden layers' statistics (a boolean mask).

    Every `every`-th point from the first, and always the last point before each task
    switch and the run's last point: those are what the report reads (the network whose
    gap the next interval measures, and the network at the end). `every` 0: none.

    >>> activity_points(np.arange(0, 12, 2), per_task=6, every=2).astype(int).tolist()
    [1, 0, 1, 0, 1, 1]
    """
    if every == 0:
        return np.zeros(len(eval_steps), dtype=bool)
    chosen = np.arange(len(eval_steps)) % every == 0
    task = eval_steps // per_task
    chosen[:-1] |= task[1:] != task[:-1]  # the last point of each task
    chosen[-1] = True
    return chosen
