"""Reservoir sampling over the stream (Vitter 1985; Chaudhry et al. 2019; Buzzega et al. 2020).

The n-th example offered (counting from 0, over the whole run, repeats included: an
example seen in two passes is offered twice) goes to slot n while the memory is not full;
after that it replaces slot j, for j drawn uniformly from 0..n, when j < M. Every example
offered so far is then in the memory with the same probability M / (n + 1).

A batch's examples are offered together but with the sequential rule's outcome: each
draws its j from its own n, and where two of them draw the same slot the later one wins,
as it would one after the other.
"""

from __future__ import annotations

import torch

from stabgap.core.memories import MEMORIES, Memory


@MEMORIES.register
class Reservoir(Memory):
    """A uniform sample of every example offered so far, updated after every step."""

    name = "reservoir"
    help = "reservoir sampling over the stream: a uniform sample of every example seen so far"
    chooses_online = True

    def __init__(self, config, stream, seeds, device, keep_logits=False) -> None:
        super().__init__(config, stream, seeds, device, keep_logits)
        self.offered = 0  # examples offered so far, the same in every copy

    @classmethod
    def most_kept(cls, config, stream) -> int:
        return config.total_batches * config.batch_size  # at most this many are offered

    def offer(self, new: torch.Tensor, logits: torch.Tensor | None) -> None:
        r, b = new.shape
        n = self.offered + torch.arange(b, device=self.device)  # (B,) each one's count
        u = torch.stack(
            [
                torch.rand(b, generator=g, device=g.device, dtype=torch.float64)
                for g in self.generators
            ]
        ).to(self.device)  # (R, B), in float64 so that u·(n + 1) < n + 1 at any n
        j = torch.where(n < self.size, n, (u * (n + 1)).long())  # the slot it would take
        target = torch.where(j < self.size, j, self.size)  # slot M: not kept
        # The last example of the batch to target each slot (-1: none did).
        order = torch.arange(b, device=self.device).expand(r, b)
        winner = torch.full((r, self.size + 1), -1, device=self.device, dtype=torch.long)
        winner = winner.scatter_reduce(1, target, order, "amax")[:, : self.size]
        written = winner >= 0
        source = winner.clamp(min=0)
        self.slots = torch.where(written, new.gather(1, source), self.slots)
        if self.logits is not None and logits is not None:
            picked = logits.gather(1, source.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
            self.logits = torch.where(written.unsqueeze(-1), picked.float(), self.logits)
        self.offered += b
        self.filled = min(self.offered, self.size)
