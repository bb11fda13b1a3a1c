"""torch.optim for stacked parameters: one parameter group per copy.

A stacked weight is one (R, ...) tensor holding R copies. The optimiser sees, for copy r,
views ``weight[r]`` of every stacked parameter as one parameter group, with copy r's own
learning rate, weight decay, momentum or betas. So every update is torch.optim's own
arithmetic (its fused kernel where the build has one), each copy's trajectory is the one it
would have alone, and what a copy's hyperparameters are never changes which kernel runs:
a run's numbers do not depend on which runs share its stack.

:data:`OPTIMIZERS` names the optimisers and the config fields each reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig


@dataclass(frozen=True)
class OptimizerSpec:
    """A torch.optim class, the config fields it reads and how they become its options."""

    make: Callable[..., torch.optim.Optimizer]
    uses: tuple[str, ...]
    options: Callable[[Any], dict[str, Any]]  # config -> the options of one copy's group
    flops_per_param: Callable[[Any], int]  # FLOPs of one update of one parameter


def _momentum_flops(c) -> int:
    return (2 if c.momentum else 0) + (2 if c.nesterov else 0)


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(
        torch.optim.SGD,
        ("momentum", "nesterov", "weight_decay"),
        lambda c: {"momentum": c.momentum, "nesterov": c.nesterov, "weight_decay": c.weight_decay},
        # p -= lr·g: 2; momentum b = μb + g: 2 more; Nesterov g + μb: 2 more; decay g + wd·p: 2
        lambda c: 2 + _momentum_flops(c) + (2 if c.weight_decay else 0),
    ),
    "adam": OptimizerSpec(
        torch.optim.Adam,
        ("betas", "weight_decay", "eps"),
        lambda c: {"betas": c.betas, "eps": c.eps, "weight_decay": c.weight_decay},
        # m: 3, v: 4, denominator: 3, step: 3 (see stabgap.cost.flops); decay g + wd·p: 2
        lambda c: 13 + (2 if c.weight_decay else 0),
    ),
    "adamw": OptimizerSpec(
        torch.optim.AdamW,
        ("betas", "weight_decay", "eps"),
        lambda c: {"betas": c.betas, "eps": c.eps, "weight_decay": c.weight_decay},
        # Adam's 13, and the decoupled decay p ← p·(1 - lr·wd): 1 (its factor is a scalar)
        lambda c: 13 + (1 if c.weight_decay else 0),
    ),
    "rmsprop": OptimizerSpec(
        torch.optim.RMSprop,
        ("rms_alpha", "momentum", "weight_decay", "eps"),
        lambda c: {
            "alpha": c.rms_alpha,
            "eps": c.eps,
            "momentum": c.momentum,
            "weight_decay": c.weight_decay,
        },
        # v = αv + (1-α)g²: 4, √v + ε: 2, p -= lr·g/denominator: 3 (with momentum, instead
        # b = μb + g/denominator: 4 and p -= lr·b: 2); decay: 2
        lambda c: 9 + (3 if c.momentum else 0) + (2 if c.weight_decay else 0),
    ),
    "adagrad": OptimizerSpec(
        torch.optim.Adagrad,
        ("weight_decay", "eps"),
        lambda c: {"eps": c.eps, "weight_decay": c.weight_decay},
        # s += g·g: 3, √s + ε: 2, p -= lr·g/denominator: 3; decay: 2
        lambda c: 8 + (2 if c.weight_decay else 0),
    ),
}


class CopyOptimizer:
    """torch.optim over stacked parameters, one parameter group per copy.

    Args:
        params: stacked parameters, each (R, ...).
        configs: the R copies' configs (their optimizer must agree; their lr and the
            optimiser's options may differ).

    Example:
        >>> w = torch.nn.Parameter(torch.ones(2, 3))  # two copies of a 3-vector
        >>> from stabgap.core.config import RunConfig
        >>> opt = CopyOptimizer([w], [RunConfig(optimizer="sgd", lr=lr) for lr in (0.1, 0.5)])
        >>> w.sum().backward(); opt.step()
        >>> w.detach()
        tensor([[0.9000, 0.9000, 0.9000],
                [0.5000, 0.5000, 0.5000]])
    """

    def __init__(self, params: Sequence[torch.Tensor], configs: Sequence[RunConfig]) -> None:
        self.params = list(params)
        self.configs = list(configs)
        self.spec = OPTIMIZERS[configs[0].optimizer]
        # Views of copy r of every parameter: leaves sharing the stacked storage, so an
        # update of a view is an update of the stack.
        self.views = [[p.detach()[r] for p in self.params] for r in range(len(configs))]
        self.base_lr = [c.lr for c in configs]
        self.reset()

    def reset(self) -> None:
        """Forget all state (moments, step counts), as a newly built optimiser."""
        groups = [
            {"params": views, "lr": c.lr, **self.spec.options(c)}
            for views, c in zip(self.views, self.configs, strict=True)
        ]
        self.optimizer = _fused_if_possible(self.spec.make, groups)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """One update of every copy, from the stacked parameters' gradients."""
        for p, r_views in zip(self.params, zip(*self.views, strict=True), strict=True):
            for r, view in enumerate(r_views):
                view.grad = None if p.grad is None else p.grad[r]
        self.optimizer.step()

    def scale_lr(self, factors: Sequence[float]) -> None:
        """Copy r's learning rate becomes its configured rate times factors[r]."""
        for group, lr, factor in zip(
            self.optimizer.param_groups, self.base_lr, factors, strict=True
        ):
            group["lr"] = lr * factor

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state)


def _fused_if_possible(make, groups) -> torch.optim.Optimizer:
    """torch.optim's fused kernel where this build and device have one, else its default."""
    try:
        return make(groups, fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel here
        return make(groups)
