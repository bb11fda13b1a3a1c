"""Weight decay as an L2 penalty in the loss: loss = cross-entropy + λ·Σ w².

Over every weight and bias. Its gradient 2λ·w is what torch.optim's ``weight_decay``
adds to the gradient (with weight_decay = 2λ), but as a loss term it is part of the
recorded loss and composes with any optimiser; the decoupled form is ``optimizer =
"adamw"`` with ``weight_decay``.
"""

from __future__ import annotations

import torch

from stabgap.core.fields import NON_NEGATIVE, option
from stabgap.core.remedies import Forward, Remedy, register


@register
class L2Penalty(Remedy):
    """λ·Σ w² of each copy's own parameters; λ per copy."""

    name = "l2"
    help = "an L2 penalty λ·Σw² on the weights, in the loss"
    order = 30
    example = {"l2_lambda": 1e-4}
    fields = {
        "l2_lambda": (
            float,
            option(
                0.0,
                "L2 penalty λ in the loss: loss = cross-entropy + λ·Σw² over every weight and "
                "bias; 0 turns it off (the decoupled form: optimizer adamw, weight_decay).",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.lambdas = self.per_copy("l2_lambda")

    @classmethod
    def active(cls, config) -> bool:
        return config.l2_lambda > 0

    def loss_term(self, out: Forward) -> torch.Tensor:
        squares = sum(p.square().flatten(1).sum(dim=1) for p in out.model.parameters())
        return self.lambdas * squares

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # Forward: square and sum (2 FLOPs a parameter); backward: 2λ·w added (2).
        return 4 * sum(layer.params for layer in layers)
