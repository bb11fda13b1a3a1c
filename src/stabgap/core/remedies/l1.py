"""An L1 penalty on the hidden activations: sparsity without neuronal decay's square.

loss = cross-entropy + λ·Σ|h| over the post-ReLU activations of every hidden layer,
summed over the units and summed ('sum') or averaged ('mean') over the batch. After a
ReLU, |h| = h, so its gradient is λ on every active unit and 0 elsewhere.
"""

from __future__ import annotations

import torch

from stabgap.core.fields import NON_NEGATIVE, option
from stabgap.core.remedies import Forward, Remedy, register
from stabgap.core.remedies.decay import activation_flops, pooled, unit_sum


@register
class ActivationL1(Remedy):
    """λ·Σ|h| added to each copy's loss; λ per copy."""

    name = "l1"
    help = "an L1 penalty λ·Σ|h| on the hidden activations"
    order = 20
    example = {"l1_lambda": 1e-5}
    fields = {
        "l1_lambda": (
            float,
            option(
                0.0,
                "L1 activation penalty λ: loss = cross-entropy + λ·Σ|h| over the post-ReLU "
                "hidden activations; 0 turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
        "l1_reduction": (
            str,
            option(
                "sum",
                "How the L1 penalty pools over the batch: 'sum' (as neuronal decay) or 'mean'.",
                choices=("sum", "mean"),
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.lambdas = self.per_copy("l1_lambda")
        self.reduction = configs[0].l1_reduction

    @classmethod
    def active(cls, config) -> bool:
        return config.l1_lambda > 0

    def loss_term(self, out: Forward) -> torch.Tensor:
        return self.lambdas * pooled(out.hidden, unit_sum(torch.abs), self.reduction).float()

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # Forward: |h| and its sum (2 FLOPs); backward: λ·sign(h) added (2).
        return activation_flops(layers, batch, 2)
