"""Online EWC: elastic weight consolidation with one running Fisher (Schwarz et al. 2018).

When task k ends, the diagonal Fisher information of its loss is estimated at the weights
θ*_k on ``ewc_samples`` of its training examples, drawn at random by the copy's own
generator: F_k = mean over examples of (∂ log p(ŷ | x) / ∂θ)², one example at a time, with
the label ŷ drawn from the network's own predictive distribution p(· | x) (the scenario's
classes). Drawing ŷ, rather than taking the true label or the most likely one, makes
F_k an unbiased estimate of the Fisher information itself (Kirkpatrick et al. 2017;
the "empirical Fisher" of the true labels is another matrix: Kunstner et al. 2019).

The running Fisher is F ← γ·F + F_k and the anchor θ* ← θ*_k, and from task k + 1 on the
loss gains (λ/2)·Σ F (θ − θ*)² (Progress & Compress's online EWC). λ may differ between
copies; 0 leaves a copy as it would be without EWC (the Fisher is still estimated).
"""

from __future__ import annotations

import torch

from stabgap.core.fields import AT_LEAST_ONE, NON_NEGATIVE, option
from stabgap.core.methods import METHODS, Method
from stabgap.core.models import evaluating
from stabgap.core.models.layers import pass_macs
from stabgap.core.remedies import Forward
from stabgap.core.streams import pixels, rows


@METHODS.register
class OnlineEWC(Method):
    """(λ/2)·Σ F (θ − θ*)², F a decayed sum of each finished task's diagonal Fisher."""

    name = "ewc"
    help = "online EWC: a quadratic penalty weighted by a running diagonal Fisher"
    order = 35
    example = {"ewc_lambda": 100.0}
    fields = {
        "ewc_lambda": (
            float,
            option(
                0.0,
                "Online EWC (Schwarz et al. 2018): strength λ of (λ/2)·Σ F (θ - θ*)²; 0 "
                "turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
        "ewc_gamma": (
            float,
            option(
                1.0,
                "Online EWC: decay γ of the running Fisher, F ← γ·F + F_task (1: a plain sum).",
                check=lambda g: 0 <= g <= 1,
                must="a number in [0, 1]",
            ),
        ),
        "ewc_samples": (
            int,
            option(
                500,
                "Online EWC: examples of the finished task its Fisher is estimated on.",
                **AT_LEAST_ONE,
            ),
        ),
    }
    uses = ("ewc_gamma", "ewc_samples")

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.lambdas = self.per_copy("ewc_lambda")
        self.gamma, self.samples = configs[0].ewc_gamma, configs[0].ewc_samples
        self.draws = self.generators("ewc")
        self.fisher: list[torch.Tensor] | None = None
        self.anchor: list[torch.Tensor] | None = None

    @classmethod
    def active(cls, config) -> bool:
        return config.ewc_lambda > 0

    def at_switch(self, task: int, model, optimizer) -> None:
        if task == 1:
            return
        new = self.task_fisher(task - 1, model)
        old = self.fisher or [torch.zeros_like(f) for f in new]
        self.fisher = [self.gamma * f + n for f, n in zip(old, new, strict=True)]
        self.anchor = [p.detach().clone() for p in model.parameters()]

    def task_fisher(self, task: int, model: torch.nn.Module) -> list[torch.Tensor]:
        """The diagonal Fisher of `task` (1-based) at the current weights, per copy."""
        lo, hi = self.stream.train_offsets[task - 1], self.stream.train_offsets[task]
        n = min(self.samples, hi - lo)
        picks = (
            torch.stack(
                [torch.randperm(hi - lo, generator=g, device=g.device)[:n] for g in self.draws]
            ).to(self.device)
            + lo
        )  # (R, n)
        u = torch.stack([torch.rand(n, generator=g, device=g.device) for g in self.draws])
        u = u.to(self.device)
        params = list(model.parameters())
        fisher = [torch.zeros_like(p) for p in params]
        with evaluating(model):  # the network as it is evaluated; batch norm's stats untouched
            for i in range(n):  # one example at a time: a squared per-example gradient
                index = picks[:, i : i + 1]  # (R, 1): each copy its own example
                x = pixels(rows(self.stream.train_x, index))
                logits = self.stream.restrict(model(x)[0], task, index)
                log_p = torch.log_softmax(logits.float(), dim=-1)  # (R, 1, classes)
                cdf = log_p.detach()[:, 0].exp().cumsum(dim=-1)  # (R, classes)
                # The first class whose cumulative probability reaches u: never a masked one
                # (probability 0), as u is scaled to the sum the rounding left.
                label = (cdf <= u[:, i : i + 1] * cdf[:, -1:]).sum(dim=-1)
                picked = log_p[:, 0].gather(1, label.view(-1, 1)).sum()  # Σ over copies
                grads = torch.autograd.grad(picked, params)
                for f, g in zip(fisher, grads, strict=True):
                    f += g.square() / n
        return fisher

    def loss_term(self, out: Forward) -> torch.Tensor | None:
        if self.fisher is None:
            return None
        params = out.model.parameters()
        weighted = sum(
            (f * (p - a).square()).flatten(1).sum(dim=1)
            for f, p, a in zip(self.fisher, params, self.anchor, strict=True)
        )
        return self.lambdas / 2 * weighted

    @classmethod
    def acts_in(cls, config, task: int) -> bool:
        return task > 1  # no Fisher before the first task ends

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # Forward: subtract, square, weight, sum (4 a parameter); backward: λF(θ-θ*) (3).
        return 7 * sum(layer.params for layer in layers)

    @classmethod
    def switch_flops(cls, config, layers) -> int:
        # A pass of one example each (its loss counted as a cross-entropy's), the squared
        # gradient added (2 a parameter), then F ← γF + F_task and the anchor (3).
        params = sum(layer.params for layer in layers)
        return config.ewc_samples * (cls.pass_flops(config, layers, 1) + 2 * params) + 3 * params

    @classmethod
    def switch_macs(cls, config, layers) -> int:
        # the products of those passes, forward and backward (of which switch_flops counts 2
        # FLOPs each); the Fisher's update and the anchor are elementwise
        return config.ewc_samples * pass_macs(layers, 1)
