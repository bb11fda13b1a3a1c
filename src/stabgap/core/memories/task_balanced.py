"""An equal share of the memory for each task seen so far, chosen when a task ends.

With M slots and k tasks seen, each task keeps M // k examples (the remainder going to the
earliest tasks), drawn at random from its training set (see
:mod:`stabgap.core.memories.base`): the memory of the GEM and A-GEM papers (Lopez-Paz and
Ranzato 2017; Chaudhry et al. 2019), there as a fixed number per task.
"""

from __future__ import annotations

import torch

from stabgap.core.memories import MEMORIES
from stabgap.core.memories.base import AtTaskEnd, equal_shares


@MEMORIES.register
class TaskBalanced(AtTaskEnd):
    """M // k examples of each of the k tasks seen, chosen at each task's end."""

    name = "task-balanced"
    help = "an equal share for each task seen, drawn from the task's data when it ends"

    def groups(self, task: int) -> dict[tuple, torch.Tensor]:
        lo, hi = self.stream.train_offsets[task - 1], self.stream.train_offsets[task]
        return {(task,): torch.arange(lo, hi, device=self.device)}

    def shares(self, sizes: dict[tuple, int]) -> dict[tuple, int]:
        return equal_shares(list(sizes), self.size)
