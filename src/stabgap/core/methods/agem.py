"""A-GEM: averaged gradient episodic memory (Chaudhry et al., ICLR 2019).

Each step computes the gradient g of the batch's loss and the gradient g_ref of the plain
cross-entropy of a batch drawn from the memory. Where they conflict (g·g_ref < 0, over all
of a copy's parameters) the update is g projected onto the half-space that does not
increase the memory's loss to first order: g − (g·g_ref / g_ref·g_ref) g_ref; otherwise g.

With ``replay = "none"``, g is the current task's gradient: A-GEM as published (its memory
filled at each task's end: memory 'task-balanced'). With ``replay = "memory"``, g is
experience replay's joint gradient, projected the same way: gradient projection added to
replay, the combination Hess et al. (2024) studied with GEM and A-GEM. Full GEM, one
constraint per earlier task solved as a quadratic program, is not offered.
"""

from __future__ import annotations

import torch

from stabgap.core.fields import option
from stabgap.core.memories import MEMORIES, drawn_examples
from stabgap.core.methods import DRAWS, METHODS, Method
from stabgap.core.models.layers import pass_macs


@METHODS.register
class AGEM(Method):
    """The update rule of A-GEM, copy by copy."""

    name = "agem"
    help = "A-GEM: the update projected where it would raise a memory batch's loss"
    order = 65
    memory_use = DRAWS
    example = {"agem": True}
    fields = {
        "agem": (
            bool,
            option(
                False,
                "A-GEM (Chaudhry et al. 2019): project each update where it conflicts with "
                "the gradient of a batch drawn from the memory (with replay 'memory': the "
                "projection added to replay).",
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.draws = self.generators("agem")

    @classmethod
    def active(cls, config) -> bool:
        return config.agem

    def gradients(self, compute, model):
        result = compute()  # g, and the loss reported for the step
        drawn = self.memory.draw(self.draws)
        if drawn is None:  # nothing to protect yet
            return result
        params = [p for p in model.parameters() if p.grad is not None]
        g = [p.grad.clone() for p in params]
        compute(reference=self.memory.examples(drawn))  # g_ref in the .grad fields
        with torch.no_grad():
            ref = [p.grad for p in params]
            dot = copy_dots(g, ref)  # (R,)
            scale = torch.where(dot < 0, dot / (copy_dots(ref, ref) + 1e-12), 0.0)
            for p, gi, ri in zip(params, g, ref, strict=True):
                p.grad = gi - scale.view(-1, *([1] * (gi.dim() - 1))) * ri
        return result

    @classmethod
    def acts_in(cls, config, task: int) -> bool:
        return task > 1 or MEMORIES.chosen(config).chooses_online  # a memory to draw from

    @classmethod
    def step_macs(cls, config, layers, batch: int) -> int:
        return pass_macs(layers, drawn_examples(config))

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        n = drawn_examples(config)
        # The memory batch's pass; two dot products (2 a parameter each), the projection (2).
        return cls.pass_flops(config, layers, n) + 6 * sum(layer.params for layer in layers)


def copy_dots(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
    """Σ a·b of each copy over all its parameters: (R,)."""
    return sum((x * y).flatten(1).sum(dim=1) for x, y in zip(a, b, strict=True))
