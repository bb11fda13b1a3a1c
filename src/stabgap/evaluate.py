"""Continual evaluation: the accuracy of every task at (almost) every training batch.

All evaluated tasks of all copies go through the network in one batched forward pass,
and only the counts of correct answers are kept, on the device: copying results to the
host after every batch would stall a GPU, and integer counts turn into exact
percentages later (100·k/m in float64, as the reference computes them).
"""

from __future__ import annotations

import torch

from stabgap.config import RunConfig
from stabgap.model import StackedMLP
from stabgap.tasks import TaskStream


def pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → floats in [0, 1], what ToTensor gives (no normalisation)."""
    return x.float().div_(255)


class EvalSubsets:
    """Which test images each copy is evaluated on, per task, at each evaluation.

    'fresh' draws a new random subset at every evaluation (the reference); 'fixed' draws
    one order per task and copy for the whole run and always takes its first m images.
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
        self.fixed = (
            [[self._order(task, g) for task in range(1, stream.n_tasks + 1)] for g in generators]
            if config.eval_resample == "fixed"
            else None
        )

    def _order(self, task: int, g: torch.Generator) -> torch.Tensor:
        return (
            torch.randperm(self.stream.test_size(task), generator=g)
            + (self.stream.test_offsets[task - 1])
        )

    def draw(self, tasks: range, size: int) -> torch.Tensor:
        """(R, len(tasks), size) indices into ``stream.test_x``."""
        rows = []
        for r, g in enumerate(self.generators):
            orders = [self.fixed[r][t - 1] if self.fixed else self._order(t, g) for t in tasks]
            rows.append(torch.stack([o[:size] for o in orders]))
        return torch.stack(rows).to(self.device, non_blocking=True)


@torch.no_grad()
def count_correct(model: StackedMLP, stream: TaskStream, idx: torch.Tensor) -> torch.Tensor:
    """Correct answers of each copy on each task's subset: (R, T) int32.

    Args:
        idx: (R, T, m) indices into the stream's test set, from :meth:`EvalSubsets.draw`.
    """
    r, t, m = idx.shape
    flat = idx.view(r, t * m)
    model.eval()
    logits, _ = model(pixels(stream.test_x[flat]))  # (R, T·m, classes)
    model.train()
    correct = logits.argmax(dim=-1) == stream.test_y[flat]
    return correct.view(r, t, m).sum(dim=-1, dtype=torch.int32)
