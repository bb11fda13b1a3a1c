"""RMSprop: steps scaled by a running mean of the squared gradients."""

from __future__ import annotations

import torch

from stabgap.core.fields import FRACTION, option
from stabgap.core.optim import OPTIMIZERS, Optimizer, decay_flops


@OPTIMIZERS.register
class RMSprop(Optimizer):
    """torch.optim.RMSprop."""

    name = "rmsprop"
    help = "RMSprop (rms_alpha, eps, momentum, weight_decay)"
    make = torch.optim.RMSprop
    fields = {
        "rms_alpha": (
            float,
            option(0.99, "rmsprop: smoothing of the squared gradients.", per_copy=True, **FRACTION),
        )
    }
    uses = ("rms_alpha", "momentum", "weight_decay", "eps")

    @classmethod
    def options(cls, config):
        return {
            "alpha": config.rms_alpha,
            "eps": config.eps,
            "momentum": config.momentum,
            "weight_decay": config.weight_decay,
        }

    @classmethod
    def flops_per_param(cls, config) -> int:
        # v = αv + (1-α)g²: 4, √v + ε: 2, p -= lr·g/denominator: 3 (with momentum, instead
        # b = μb + g/denominator: 4 and p -= lr·b: 2)
        return 9 + (3 if config.momentum else 0) + decay_flops(config)
