"""Which training samples each batch holds: no replay, full replay, stratified replay.

(Replay from a bounded memory adds its examples to the current task's batch drawn here:
:func:`stabgap.core.train.draw_batch`.)

Indices point into ``TaskStream.train_x``, where tasks lie back to back, so the union of
the tasks seen so far is one contiguous range. Every copy of a stacked run draws from its
own generator, so its batches do not depend on which other runs share its stack.
"""

from __future__ import annotations

import torch

from stabgap.core.config import RunConfig
from stabgap.core.streams import TaskStream


class _Shuffled:
    """Shuffled passes over the range [lo, hi) for one copy."""

    def __init__(self, lo: int, hi: int, g: torch.Generator, cycle: bool, device) -> None:
        self.lo, self.n, self.g, self.cycle, self.device = lo, hi - lo, g, cycle, device
        self.order = self._shuffle()
        self.pos = 0

    def _shuffle(self) -> torch.Tensor:
        # Drawn by the copy's generator where it lives: the CPU, or the GPU (so that a GPU
        # run draws nothing on the host), then on the run's device.
        order = torch.randperm(self.n, generator=self.g, device=self.g.device)
        return (order + self.lo).to(self.device)

    def _next_pass(self) -> None:
        self.pos = 0
        if not self.cycle:  # 'cycle' (the reference's quirk) reuses the task's one order
            self.order = self._shuffle()

    def batch(self, size: int, drop_last: bool) -> torch.Tensor:
        """The next batch of a pass: the last one of a pass is smaller unless dropped."""
        if self.pos >= self.n or (drop_last and self.pos + size > self.n):
            self._next_pass()
        out = self.order[self.pos : self.pos + size]
        self.pos += size
        return out

    def take(self, size: int) -> torch.Tensor:
        """Exactly `size` indices, running on into the next pass when this one ends."""
        parts = []
        while size > 0:
            if self.pos >= self.n:
                self._next_pass()
            part = self.order[self.pos : self.pos + size]
            self.pos += len(part)
            size -= len(part)
            parts.append(part)
        return torch.cat(parts)


class BatchSampler:
    """Training batches for the R copies of a stacked run, task by task.

    Example:
        >>> from stabgap.core.streams import TaskStream
        >>> z = torch.zeros(6, 1, dtype=torch.uint8)
        >>> stream = TaskStream(("a", "b"), z, torch.zeros(6), (0, 3, 6), z, torch.zeros(6),
        ...                     (0, 3, 6), 2)
        >>> cfg = RunConfig(rotations=(0, 90), replay="full", batch_size=2)
        >>> sampler = BatchSampler(cfg, stream, [torch.Generator().manual_seed(0)])
        >>> sampler.start_task(2)
        >>> batch = sampler.next()  # (R, B): 2·2 samples from the union of tasks 1-2
        >>> tuple(batch.shape), bool((batch < 6).all())
        ((1, 4), True)
    """

    def __init__(
        self,
        config: RunConfig,
        stream: TaskStream,
        generators: list[torch.Generator],
        device: torch.device | str = "cpu",
    ) -> None:
        self.config, self.stream, self.generators = config, stream, generators
        self.device = torch.device(device)
        self.task = 0

    def start_task(self, task: int) -> None:
        """Switch to training `task` (1-based): a new shuffled order for every pool."""
        self.task = task
        off, cycle = self.stream.train_offsets, self.config.batch_order == "cycle"
        self.batch_size = self.config.task_batch_size(task)
        if self.config.replay == "stratified":
            # One pool per task seen; an equal share of the batch from each, the
            # remainder going to the most recent tasks.
            share, extra = divmod(self.batch_size, task)
            self.shares = [share + (i >= task - extra) for i in range(task)]
            self.pools = [
                [_Shuffled(off[i], off[i + 1], g, cycle, self.device) for i in range(task)]
                for g in self.generators
            ]
        else:
            lo = 0 if self.config.replay == "full" else off[task - 1]  # none, memory: the task's
            self.pools = [
                [_Shuffled(lo, off[task], g, cycle, self.device)] for g in self.generators
            ]

    def next(self) -> torch.Tensor:
        """Indices of the next batch of every copy: (R, B) int64 on the device."""
        if self.config.replay == "stratified":
            rows = [
                torch.cat([p.take(s) for p, s in zip(pools, self.shares, strict=True)])
                for pools in self.pools
            ]
        else:
            rows = [pools[0].batch(self.batch_size, self.config.drop_last) for pools in self.pools]
        return torch.stack(rows)
