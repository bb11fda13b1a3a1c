"""Adagrad: steps scaled by the sum of the squared gradients so far."""

from __future__ import annotations

import torch

from stabgap.core.optim import OPTIMIZERS, Optimizer, decay_flops


@OPTIMIZERS.register
class Adagrad(Optimizer):
    """torch.optim.Adagrad."""

    name = "adagrad"
    help = "Adagrad (eps, weight_decay)"
    make = torch.optim.Adagrad
    uses = ("weight_decay", "eps")

    @classmethod
    def options(cls, config):
        return {"eps": config.eps, "weight_decay": config.weight_decay}

    @classmethod
    def flops_per_param(cls, config) -> int:
        # s += g·g: 3, √s + ε: 2, p -= lr·g/denominator: 3
        return 8 + decay_flops(config)
