"""Stochastic gradient descent, with momentum and Nesterov momentum as options."""

from __future__ import annotations

import torch

from stabgap.core.fields import option
from stabgap.core.optim import OPTIMIZERS, Optimizer, decay_flops
from stabgap.errors import StabgapError


@OPTIMIZERS.register
class SGD(Optimizer):
    """torch.optim.SGD."""

    name = "sgd"
    help = "stochastic gradient descent (momentum, nesterov, weight_decay)"
    make = torch.optim.SGD
    fields = {"nesterov": (bool, option(False, "sgd: Nesterov momentum (needs momentum > 0)."))}
    uses = ("momentum", "nesterov", "weight_decay")

    @classmethod
    def options(cls, config):
        return {
            "momentum": config.momentum,
            "nesterov": config.nesterov,
            "weight_decay": config.weight_decay,
        }

    @classmethod
    def flops_per_param(cls, config) -> int:
        # p -= lr·g: 2; momentum b = μb + g: 2 more; Nesterov g + μb: 2 more
        momentum = (2 if config.momentum else 0) + (2 if config.nesterov else 0)
        return 2 + momentum + decay_flops(config)

    @classmethod
    def check(cls, config) -> None:
        if config.nesterov and not config.momentum > 0:
            raise StabgapError("invalid config: nesterov needs momentum > 0")
