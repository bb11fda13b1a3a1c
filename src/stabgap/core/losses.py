"""The loss of a stack of copies, each over its own examples."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of each copy: logits (R, B, C), targets (R, B) → (R,)."""
    r, b, c = logits.shape
    ce = F.cross_entropy(logits.reshape(r * b, c).float(), targets.reshape(r * b), reduction="none")
    return ce.view(r, b).mean(dim=1)
