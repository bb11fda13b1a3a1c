"""The training loss: cross-entropy plus neuronal decay, per copy of a stacked model."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def neuronal_decay(hidden: list[torch.Tensor], reduction: str = "sum") -> torch.Tensor:
    """ND: squared post-ReLU activations of every hidden layer, pooled per copy.

    Args:
        hidden: activations, each (R, B, width); the logits are not included.
        reduction: "sum" over the batch and the units (the reference: its weight grows
            with the batch size), or "mean": summed over units, averaged over the batch.

    Returns:
        (R,) penalty of each copy.

    Example:
        >>> h = [torch.tensor([[[1.0, 2.0], [0.0, 3.0]]])]  # R=1, B=2, width 2
        >>> neuronal_decay(h), neuronal_decay(h, "mean")
        (tensor([14.]), tensor([7.]))
    """
    total = sum(h.square().sum(dim=(1, 2)) for h in hidden)
    return total / hidden[0].shape[1] if reduction == "mean" else total


def training_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    hidden: list[torch.Tensor],
    decay_lambda: torch.Tensor | None,
    reduction: str = "sum",
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean cross-entropy + λ·ND of each copy: the (R,) losses and their (R,) ND part.

    Summing these R losses and back-propagating gives each copy exactly its own gradient,
    since no parameter is shared between copies.

    Args:
        logits: (R, B, C); targets: (R, B) class indices.
        decay_lambda: (R,) λ of each copy, or None when every λ is 0 (ND is then skipped,
            so the baseline pays nothing for it, and the penalty is None).
    """
    r, b, c = logits.shape
    ce = F.cross_entropy(logits.reshape(r * b, c).float(), targets.reshape(r * b), reduction="none")
    loss = ce.view(r, b).mean(dim=1)
    if decay_lambda is None:
        return loss, None
    penalty = decay_lambda * neuronal_decay(hidden, reduction).float()
    return loss + penalty, penalty
