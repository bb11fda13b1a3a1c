"""Adam and SGD for stacked parameters, with a learning rate per copy.

When every copy has the same learning rate (one run, or a stack of seeds and λ), the
update is torch.optim's fused kernel: one pass over the parameters, where a sequence of
tensor operations makes a dozen, a tenth of a step's time on a CPU. torch.optim takes
one learning rate per parameter tensor, though, and a stacked (R, in, out) weight holds
R copies that may each have their own; for those stacks the update is written out here,
following torch.optim.Adam's arithmetic (no weight decay, no amsgrad) step by step, so
a copy's trajectory matches a plain nn.Linear model under torch.optim to float tolerance.
"""

from __future__ import annotations

import torch


class StackedOptimizer:
    """Adam or SGD over parameters whose first dimension indexes the R copies."""

    def __init__(
        self,
        params: list[torch.Tensor],
        lr: torch.Tensor,
        kind: str = "adam",
        betas: tuple[float, float] = (0.9, 0.999),
        momentum: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.kind, self.betas, self.momentum, self.eps = kind, betas, momentum, eps
        self.lr = lr  # (R,)
        self.uniform_lr = float(lr[0]) if bool((lr == lr[0]).all()) else None
        self.reset()

    def reset(self) -> None:
        """Forget all state (moments and step count), as a freshly built optimiser."""
        if self.uniform_lr is not None:
            self.fused = _torch_optimizer(
                self.params, self.uniform_lr, self.kind, self.betas, self.momentum, self.eps
            )
            return
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params] if self.kind == "adam" else []

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        if self.uniform_lr is not None:
            self.fused.step()
            return
        self.step_count += 1
        if self.kind == "adam":
            self._adam()
        else:
            self._sgd()

    def _per_copy(self, value: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return value.view(-1, *([1] * (p.dim() - 1)))  # (R, 1, 1) to broadcast over p

    def _adam(self) -> None:
        beta1, beta2 = self.betas
        bias_correction1 = 1 - beta1**self.step_count
        bias_correction2_sqrt = (1 - beta2**self.step_count) ** 0.5
        step_size = self.lr / bias_correction1  # (R,)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            g = p.grad
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            denom = (v.sqrt() / bias_correction2_sqrt).add_(self.eps)
            p.sub_(m.div(denom).mul_(self._per_copy(step_size, p)))

    def _sgd(self) -> None:
        for p, buf in zip(self.params, self.exp_avg, strict=True):
            g = p.grad
            if self.momentum:
                # torch.optim.SGD starts the buffer at the first gradient, not at zero.
                buf.mul_(self.momentum).add_(g) if self.step_count > 1 else buf.copy_(g)
                g = buf
            p.sub_(g * self._per_copy(self.lr, p))


def _torch_optimizer(params, lr: float, kind: str, betas, momentum: float, eps: float):
    """torch.optim's Adam or SGD, fused where this build has the kernel for the device."""
    make = (
        (lambda **kw: torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, **kw))
        if kind == "adam"
        else (lambda **kw: torch.optim.SGD(params, lr=lr, momentum=momentum, **kw))
    )
    try:
        return make(fused=True)
    except (RuntimeError, TypeError, ValueError):  # no fused kernel here
        return make()
