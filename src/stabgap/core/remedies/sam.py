"""Sharpness-aware minimisation (SAM; Foret et al., ICLR 2021).

Each step takes two gradients: g at the weights w, then the gradient at the nearby worst
point w + ε, ε = ρ·g/‖g‖₂ (the norm over all of a copy's parameters), which the
optimiser then applies to w. The recorded loss is the loss at w. ρ may differ between
copies; ρ = 0 takes the gradient at w twice.
"""

from __future__ import annotations

import torch

from stabgap.core.fields import NON_NEGATIVE, option
from stabgap.core.models.layers import pass_macs
from stabgap.core.remedies import Remedy, register


@register
class SharpnessAware(Remedy):
    """The update rule of SAM, copy by copy."""

    name = "sam"
    help = "sharpness-aware minimisation: the gradient at an ascent step's weights"
    order = 60
    example = {"sam_rho": 0.05}
    fields = {
        "sam_rho": (
            float,
            option(
                0.0,
                "Sharpness-aware minimisation: radius ρ of the ascent step; 0 turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.rho = self.per_copy("sam_rho")

    @classmethod
    def active(cls, config) -> bool:
        return config.sam_rho > 0

    def gradients(self, compute, model):
        result = compute()  # the gradient at w, and the loss reported for the step
        params = [p for p in model.parameters() if p.grad is not None]
        with torch.no_grad():
            norms = copy_norms([p.grad for p in params])  # (R,)
            scale = self.rho / (norms + 1e-12)
            steps = [p.grad * scale.view(-1, *([1] * (p.dim() - 1))) for p in params]
            for p, e in zip(params, steps, strict=True):
                p.add_(e)
        compute()  # the gradient at w + ε, which the optimiser applies
        with torch.no_grad():
            for p, e in zip(params, steps, strict=True):
                p.sub_(e)
        return result

    loss_passes = 2  # compute() at w and at w + ε

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # A second forward and backward pass, the norm (2 a parameter), ε (1), w ± ε (2);
        # the loss terms' work again is counted by the cost model (loss_passes).
        return cls.pass_flops(config, layers, batch) + 5 * sum(layer.params for layer in layers)

    @classmethod
    def step_macs(cls, config, layers, batch: int) -> int:
        return pass_macs(layers, batch)  # the second pass's products


def copy_norms(grads: list[torch.Tensor]) -> torch.Tensor:
    """‖g‖₂ of each copy over all its parameters: (R,)."""
    return torch.sqrt(sum(g.flatten(1).square().sum(dim=1) for g in grads))
