"""Adam, and AdamW (its weight decay decoupled from the gradient)."""

from __future__ import annotations

import torch

from stabgap.core.optim import OPTIMIZERS, Optimizer, decay_flops
from stabgap.errors import StabgapError


@OPTIMIZERS.register
class Adam(Optimizer):
    """torch.optim.Adam."""

    name = "adam"
    help = "Adam (betas, eps, weight_decay added to the gradient)"
    make = torch.optim.Adam
    uses = ("betas", "weight_decay", "eps")

    @classmethod
    def options(cls, config):
        return {"betas": config.betas, "eps": config.eps, "weight_decay": config.weight_decay}

    @classmethod
    def flops_per_param(cls, config) -> int:
        # m: 3, v: 4, denominator: 3, step: 3 (see stabgap.cost.flops); decay g + wd·p: 2
        return 13 + decay_flops(config)

    @classmethod
    def check(cls, config) -> None:
        if not all(0 <= b < 1 for b in config.betas):
            raise StabgapError("invalid config: betas must be in [0, 1)")


@OPTIMIZERS.register
class AdamW(Adam):
    """torch.optim.AdamW."""

    name = "adamw"
    help = "AdamW (Adam with the weight decay decoupled from the gradient)"
    make = torch.optim.AdamW

    @classmethod
    def flops_per_param(cls, config) -> int:
        # Adam's 13, and the decoupled decay p ← p·(1 - lr·wd): 1 (its factor is a scalar)
        return 13 + (1 if config.weight_decay else 0)
