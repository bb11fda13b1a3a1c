"""The loss of a stack of copies, each over its own examples."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each copy: logits (R, B, C), targets (R, B) → (R,)."""
    return per_example_cross_entropy(logits, targets).mean(dim=1)


def per_example_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Each example's cross-entropy, in float32: logits (R, B, C), targets (R, B) → (R, B)."""
    r, b, c = logits.shape
    ce = F.cross_entropy(logits.reshape(r * b, c).float(), targets.reshape(r * b), reduction="none")
    return ce.view(r, b)


def weighted_replay_loss(
    logits: torch.Tensor, targets: torch.Tensor, n_new: int, weight: float
) -> torch.Tensor:
    """Experience replay's loss as De Lange et al. (2023) weight it: w·mean over the `n_new`
    new examples (the batch's first) + (1 − w)·mean over the replayed rest; w·mean(new)
    alone while the batch holds no replayed example (their code's, in the first task too).

    Example:
        >>> logits = torch.zeros(1, 4, 2)  # every example's loss is ln 2
        >>> logits[0, 2:, 0] = 10.0  # ... but the replayed two are right, with a loss ~0
        >>> targets = torch.zeros(1, 4, dtype=torch.long)
        >>> round(weighted_replay_loss(logits, targets, 2, 0.7).item(), 4)  # 0.7·ln 2
        0.4852
    """
    new = cross_entropy(logits[:, :n_new], targets[:, :n_new])
    if logits.shape[1] == n_new:
        return weight * new
    return weight * new + (1 - weight) * cross_entropy(logits[:, n_new:], targets[:, n_new:])
