"""Continual evaluation: the accuracy of every task at (almost) every training batch.

All evaluated tasks of all copies go through the network in one batched forward pass,
and only the counts of correct answers are kept, on the device: copying results to the
host after every batch would stall a GPU, and integer counts turn into exact
percentages later (100·k/m in float64, as the reference computes them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from stabgap.streams import TaskStream

if TYPE_CHECKING:
    from stabgap.config import RunConfig


def pixels(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → floats in [0, 1], what ToTensor gives (no normalisation)."""
    return x.float().div_(255)


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
        self.fixed = (
            [self._orders(range(1, stream.n_tasks + 1), g, min(self.sizes)) for g in generators]
            if config.eval_resample == "fixed"
            else None
        )

    def _orders(self, tasks: range, g: torch.Generator, size: int) -> torch.Tensor:
        """(len(tasks), size) indices into test_x: the first `size` of a random order."""
        starts = self.offsets[tasks.start - 1 : tasks.stop - 1, None]
        if not self.keys:
            rows = [torch.randperm(self.sizes[t - 1], generator=g)[:size] for t in tasks]
            return torch.stack(rows).to(self.device) + starts
        # On the generator's device: uniform keys, +inf past each task's end.
        keys = torch.rand(len(tasks), max(self.sizes), generator=g, device=g.device)
        lengths = torch.tensor([self.sizes[t - 1] for t in tasks], device=g.device)
        keys[torch.arange(keys.shape[1], device=g.device) >= lengths[:, None]] = float("inf")
        return keys.topk(size, dim=1, largest=False).indices.to(self.device) + starts

    def draw(self, tasks: range, size: int) -> torch.Tensor:
        """(R, len(tasks), size) indices into ``stream.test_x``."""
        if self.fixed is not None:
            return torch.stack([f[tasks.start - 1 : tasks.stop - 1, :size] for f in self.fixed])
        return torch.stack([self._orders(tasks, g, size) for g in self.generators])


@torch.no_grad()
def count_correct(
    model: torch.nn.Module, stream: TaskStream, idx: torch.Tensor, task: int
) -> torch.Tensor:
    """Correct answers of each copy on each task's subset: (R, T) int32.

    Args:
        idx: (R, T, m) indices into the stream's test set, from :meth:`EvalSubsets.draw`.
        task: the task being trained now (the scenario may score only the classes seen).
    """
    r, t, m = idx.shape
    flat = idx.view(r, t * m)
    model.eval()
    logits, _ = model(pixels(stream.test_x[flat]))  # (R, T·m, classes)
    model.train()
    logits = stream.restrict(logits, task, flat, train=False)
    correct = logits.argmax(dim=-1) == stream.test_y[flat]
    return correct.view(r, t, m).sum(dim=-1, dtype=torch.int32)
