"""Bounded replay memories: M stored examples per copy, kept by a policy of the field.

A run keeps a memory when it replays from one (``replay = "memory"``: every batch is the
current task's ``batch_size`` examples plus ``replay_batch_size`` drawn from the memory,
experience replay as in Chaudhry et al. 2019, "On tiny episodic memories") or when one of
its methods draws from one (DER, A-GEM: :mod:`stabgap.core.methods`). Each policy is one
module here registering a :class:`Memory` in :data:`MEMORIES`:

- ``reservoir``: every incoming example of the stream is offered, after its update, and
  reservoir sampling keeps a uniform sample of all examples offered so far;
- ``task-balanced`` / ``class-balanced``: when a task ends, an equal share of the memory
  for each task (each class) seen so far, its examples drawn at random from that task's
  training set (:mod:`stabgap.core.memories.base`).

A memory holds indices into the stream's training set (the images, labels and tasks live
there, on the device, once) and, for the methods that need them, the logits the network
gave each example when it was stored. Each copy of a stack has its own memory, drawn from
its own random stream (``derive_seed(seed, "memory")``), so a stacked run keeps what it
would keep alone; storing and drawing are tensor operations on the run's device, with no
host round-trip per batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch

from stabgap.core.fields import AT_LEAST_ONE, COUNT, option
from stabgap.core.registry import Extension, Registry
from stabgap.seeds import derive_seed

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig
    from stabgap.core.streams import TaskStream

SHARED_FIELDS = {
    "memory_size": (
        int,
        option(
            200,
            "Examples the replay memory holds (per copy), M; used with replay 'memory' or "
            "a method that draws from the memory (DER, A-GEM).",
            **AT_LEAST_ONE,
        ),
    ),
    "replay_batch_size": (
        int,
        option(
            0,
            "Examples drawn from the memory at each step, for replay and for each method's "
            "own draw; 0: batch_size. It does not grow from task to task.",
            **COUNT,
        ),
    ),
    "replay_weight": (
        float,
        option(
            0.0,
            "Replay 'memory': weight w of the new examples in the loss; 0: the mean over "
            "the joint batch (Chaudhry et al. 2019); w in (0, 1): w·mean(new) + (1 − w)·"
            "mean(replayed), and w·mean(new) while nothing is replayed (De Lange et al. "
            "2023: 0.7).",
            check=lambda w: 0 <= w < 1,
            must="a number in [0, 1) (at 1 the replayed examples would weigh nothing)",
        ),
    ),
}

MEMORIES: Registry[type[Memory]] = Registry(
    "memory",
    "stabgap.core.memories",
    selector="memory",
    shared=SHARED_FIELDS,
    plural="memory policies",
)


def replayed_examples(config: RunConfig, task: int) -> int:
    """Examples replayed from the memory at each step of `task` (1-based), for the cost
    model: the replay batch once the memory holds it (from a task's end for the policies
    that choose then; the reservoir fills within the first steps, which this ignores)."""
    if config.replay != "memory":
        return 0
    online = MEMORIES.chosen(config).chooses_online
    return drawn_examples(config) if online or task > 1 else 0


def drawn_examples(config: RunConfig) -> int:
    """Examples a draw from a full memory takes (ER's replay, DER's and A-GEM's batches):
    the replay batch, or the whole memory where that is smaller."""
    return min(config.replay_batch, config.memory_size)


# Logits computed for examples chosen at a task's end: (R, n) indices -> (R, n, classes).
LogitsOf = Callable[[torch.Tensor], torch.Tensor]


class Memory(Extension):
    """The memories of the R copies of a stack: which examples each copy keeps.

    Attributes:
        slots: (R, M) indices into the stream's training set; the first ``filled`` are in
            use, the same number in every copy (it depends on the stream, not on chance).
        logits: (R, M, classes) the logits of each stored example when it was stored, or
            None when no method asked for them.
    """

    uses = ("memory_size", "replay_batch_size")
    chooses_online: ClassVar[bool] = False  # stores during a task (else at its end only)

    @classmethod
    def caution(cls, config: RunConfig) -> str | None:
        if config.replay_batch > config.memory_size:
            return (
                f"a replay batch of {config.replay_batch} is more than the memory's "
                f"{config.memory_size} examples, and a draw takes each example at most once: "
                f"at most {config.memory_size} are replayed a step"
            )
        return None

    def __init__(
        self,
        config: RunConfig,
        stream: TaskStream,
        seeds: Sequence[int],
        device: torch.device,
        keep_logits: bool = False,
    ) -> None:
        # The slots are allocated up front, so a memory larger than all this run can ever
        # keep is cut to that: it keeps and draws the same examples (a policy only fills
        # its slots in order while it has examples to spare), and a size with a few zeros
        # too many does not exhaust the machine's memory.
        self.size = min(config.memory_size, self.most_kept(config, stream))
        self.stream, self.device = stream, device
        self.draw_size = config.replay_batch
        self.generators = [
            torch.Generator(device).manual_seed(derive_seed(s, "memory")) for s in seeds
        ]
        r = len(seeds)
        self.slots = torch.zeros(r, self.size, dtype=torch.long, device=device)
        self.logits = (
            torch.zeros(r, self.size, stream.n_classes, device=device) if keep_logits else None
        )
        self.filled = 0

    @classmethod
    def most_kept(cls, config: RunConfig, stream: TaskStream) -> int:
        """The most examples this policy can hold in a run: every training example of
        the stream, each at most once (a policy that may keep repeats says more)."""
        return int(stream.train_offsets[-1])

    # --- what a policy fills in --------------------------------------------------------
    def offer(self, new: torch.Tensor, logits: torch.Tensor | None) -> None:
        """After each update: the step's incoming examples (R, B) and their logits
        (R, B, classes) from that step's forward pass, to keep or not."""

    def end_task(self, task: int, logits_of: LogitsOf) -> None:
        """When `task` (1-based) has ended, before the next one starts."""

    # --- what the loop and the methods use -----------------------------------------------
    def draw(self, generators: Sequence[torch.Generator] | None = None) -> torch.Tensor | None:
        """Positions (R, n) of n = min(replay_batch_size, filled) stored examples per copy,
        drawn uniformly without replacement by each copy's generator (the memory's own, or
        those a method draws with); None while the memory is empty."""
        if self.filled == 0:
            return None
        n = min(self.draw_size, self.filled)
        return torch.stack(
            [
                torch.randperm(self.filled, generator=g, device=g.device)[:n].to(self.device)
                for g in generators or self.generators
            ]
        )

    def examples(self, positions: torch.Tensor) -> torch.Tensor:
        """(R, n) indices into the training set of the stored examples at `positions`."""
        return self.slots.gather(1, positions)

    def stored_logits(self, positions: torch.Tensor) -> torch.Tensor:
        """(R, n, classes) the logits stored with the examples at `positions`."""
        assert self.logits is not None, "this memory keeps no logits"
        index = positions.unsqueeze(-1).expand(-1, -1, self.logits.shape[-1])
        return self.logits.gather(1, index)

    def content(self) -> np.ndarray:
        """(R, tasks, classes) how many stored examples each copy has of each task and class."""
        stream, r = self.stream, self.slots.shape[0]
        kept = self.slots[:, : self.filled].contiguous()  # (task_of's bucketize wants it)
        cell = self.stream.task_of(kept) * stream.n_classes + stream.train_y[kept]
        counts = torch.zeros(r, stream.n_tasks * stream.n_classes, device=self.device)
        counts.scatter_add_(1, cell, torch.ones_like(cell, dtype=counts.dtype))
        return counts.view(r, stream.n_tasks, stream.n_classes).long().cpu().numpy()
