"""torch.optim for stacked parameters: one parameter group per copy.

A stacked weight is one (R, ...) tensor holding R copies. The optimiser sees, for copy r,
views ``weight[r]`` of every stacked parameter as one parameter group, with copy r's own
learning rate, weight decay, momentum or betas. So every update is torch.optim's own
arithmetic (its fused kernel where the build has one), each copy's trajectory is the one it
would have alone, and what a copy's hyperparameters are never changes which kernel runs:
a run's numbers do not depend on which runs share its stack.

Each optimiser is one module here registering an :class:`Optimizer` in :data:`OPTIMIZERS`:
its torch.optim class, the config fields it reads and how they become its options.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from stabgap.core.fields import FRACTION, NON_NEGATIVE, POSITIVE, option
from stabgap.core.registry import Extension, Registry

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig


class Optimizer(Extension):
    """A torch.optim class, and how the fields it uses become one copy's options."""

    make: ClassVar[type[torch.optim.Optimizer]]

    @classmethod
    def options(cls, config: Any) -> dict[str, Any]:
        """The options of one copy's parameter group (besides its learning rate)."""
        raise NotImplementedError

    @classmethod
    def flops_per_param(cls, config: Any) -> int:
        """FLOPs of one update of one parameter (see stabgap.cost.flops's conventions)."""
        raise NotImplementedError


# Fields that more than one optimiser reads.
SHARED_FIELDS = {
    "betas": (
        tuple[float, float],
        option((0.9, 0.999), "The moment decays β1, β2.", per_copy=True),
    ),
    "momentum": (float, option(0.0, "Momentum.", per_copy=True, **FRACTION)),
    "weight_decay": (
        float,
        option(
            0.0,
            "Weight decay of the optimiser: added to the gradient, or decoupled from it (adamw).",
            per_copy=True,
            **NON_NEGATIVE,
        ),
    ),
    "eps": (
        float,
        option(1e-8, "ε of the denominator.", **POSITIVE),
    ),
}

OPTIMIZERS: Registry[type[Optimizer]] = Registry(
    "optimizer", "stabgap.core.optim", selector="optimizer", shared=SHARED_FIELDS
)


def decay_flops(config: Any) -> int:
    """The gradient's decay g + wd·p: 2 FLOPs where there is one."""
    return 2 if config.weight_decay else 0


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
        self.spec = OPTIMIZERS.chosen(configs[0])
        # Views of copy r of every parameter: leaves sharing the stacked storage, so an
        # update of a view is an update of the stack.
        self.views = [[p.detach()[r] for p in self.params] for r in range(len(configs))]
        self.base_lr = [c.lr for c in configs]
        self.reset()

    def reset(self) -> None:
        """Forget all state (moments, step counts), as a newly built optimiser."""
        groups = [
            {"params": views, "lr": c.lr, **self.spec.options(OPTIMIZERS.view(c))}
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
