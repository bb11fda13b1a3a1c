"""Neuronal decay (ND, the poster's remedy): a penalty on the squared hidden activations.

loss = cross-entropy + λ·ND, with ND the squared post-ReLU activations of every hidden
layer (the logits excluded), summed over the units and, as in the reference, over the
batch ('sum', so that its weight grows with the batch size) or averaged over it ('mean').
"""

from __future__ import annotations

import torch

from stabgap.core.fields import NON_NEGATIVE, option
from stabgap.core.models.layers import hidden_units
from stabgap.core.remedies import Forward, Remedy, register


def neuronal_decay(hidden: list[torch.Tensor], reduction: str = "sum") -> torch.Tensor:
    """ND: squared post-ReLU activations of every hidden layer, pooled per copy.

    Args:
        hidden: activations, each (R, B, ...): dense (R, B, width) or conv (R, B, C, H, W).
        reduction: "sum" over the batch and the units (the reference: its weight grows
            with the batch size), or "mean": summed over units, averaged over the batch.

    Returns:
        (R,) penalty of each copy.

    Example:
        >>> h = [torch.tensor([[[1.0, 2.0], [0.0, 3.0]]])]  # R=1, B=2, width 2
        >>> neuronal_decay(h), neuronal_decay(h, "mean")
        (tensor([14.]), tensor([7.]))
    """
    return pooled(hidden, _SquareSum.apply, reduction)


def pooled(hidden: list[torch.Tensor], summed, reduction: str) -> torch.Tensor:
    """Σ over layers of summed(h), each copy's sum over its batch and units (see
    :func:`unit_sum`), kept ('sum') or divided by the batch size ('mean'): (R,)."""
    total = sum(summed(h) for h in hidden)
    return total / hidden[0].shape[1] if reduction == "mean" else total


def unit_sum(per_unit):
    """h (R, B, ...) → (R,): each copy's sum of per_unit(h) over its batch and units."""
    return lambda h: per_unit(h).flatten(2).sum(dim=(1, 2))


class _SquareSum(torch.autograd.Function):
    """unit_sum(square)(h), with its gradient 2h·g in one pass over h.

    Autograd's square takes three (h to the power 1, times 2, times g); this gives the
    same numbers, since doubling a float is exact: 2g·h and 2h·g are one rounding of one
    product. ND's backward is then one pass over each hidden layer's activations.
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(h)
        return unit_sum(torch.square)(h)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (h,) = ctx.saved_tensors
        return h * (2 * grad).view(-1, *[1] * (h.dim() - 1))


def activation_flops(layers, batch: int, per_unit: int) -> int:
    """FLOPs of a penalty of the activations: `per_unit` FLOPs for each hidden activation
    of each image, forward and backward alike (see stabgap.cost.flops)."""
    return 2 * per_unit * batch * hidden_units(layers)


@register
class NeuronalDecay(Remedy):
    """λ·ND added to each copy's loss; λ per copy."""

    name = "nd"
    help = "neuronal decay: λ·Σh² of the hidden activations in the loss (the poster's remedy)"
    order = 10  # the loss terms add up in this order
    example = {"decay_lambda": 1e-5}
    fields = {
        "decay_lambda": (
            float,
            option(
                0.0,
                "Neuronal decay strength λ: loss = cross-entropy + λ·ND; 0 turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
        "decay_reduction": (
            str,
            option(
                "sum",
                "How ND pools the squared post-ReLU hidden activations over the batch: 'sum' "
                "(the reference; its weight grows with the batch size) or 'mean' (per sample).",
                choices=("sum", "mean"),
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.lambdas = self.per_copy("decay_lambda")
        self.reduction = configs[0].decay_reduction

    @classmethod
    def active(cls, config) -> bool:
        return config.decay_lambda > 0

    def loss_term(self, out: Forward) -> torch.Tensor:
        return self.lambdas * neuronal_decay(out.hidden, self.reduction).float()

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # Forward: square and sum (a multiply-accumulate, 2 FLOPs) per activation; backward:
        # 2λ·h added to the activation's incoming gradient (another 2).
        return activation_flops(layers, batch, 2)

    @classmethod
    def step_macs(cls, config, layers, batch: int) -> int:
        return activation_flops(layers, batch, 1)  # one MAC each way per activation
