"""LwF: learning without forgetting (Li and Hoiem, ECCV 2016 / TPAMI 2017).

When a task ends, the network is frozen as it is. While the next task trains, the loss
gains λ · L_old: the cross-entropy between the frozen network's and the network's outputs
on the old classes, both softened by a temperature T,
``L_old = −Σ_c softmax(z_prev / T)_c · log softmax(z / T)_c`` averaged over the batch's
examples, with T = 2 and λ = 1 in the paper (which does not multiply by T²). The old
classes are those of the earlier tasks (every class in a 'domain' stream, whose tasks share
the head). λ may differ between copies; 0 leaves a copy as it would be without LwF.
"""

from __future__ import annotations

import copy

import torch

from stabgap.core.fields import NON_NEGATIVE, POSITIVE, option
from stabgap.core.methods import METHODS, Method
from stabgap.core.models.layers import forward_cost, loss_cost, outputs, pass_macs
from stabgap.core.remedies import Forward


@METHODS.register
class LearningWithoutForgetting(Method):
    """Distils the previous task's network on the old classes, on the current batch."""

    name = "lwf"
    help = "LwF: distil the network as it was when the last task ended, on the old classes"
    order = 40
    example = {"lwf_lambda": 1.0}
    fields = {
        "lwf_lambda": (
            float,
            option(
                0.0,
                "LwF (Li and Hoiem 2017): weight λ of the distillation loss on the old "
                "classes; 0 turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
        "lwf_temperature": (
            float,
            option(2.0, "LwF: temperature T of the distillation (the paper's 2).", **POSITIVE),
        ),
    }
    uses = ("lwf_temperature",)

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.lambdas = self.per_copy("lwf_lambda")
        self.temperature = configs[0].lwf_temperature
        self.previous: torch.nn.Module | None = None
        self.old: torch.Tensor | None = None  # the old classes' head units

    @classmethod
    def active(cls, config) -> bool:
        return config.lwf_lambda > 0

    def at_switch(self, task: int, model, optimizer) -> None:
        if task == 1:
            return
        self.previous = copy.deepcopy(model).requires_grad_(False).eval()
        stream = self.stream
        if stream.scenario == "domain":
            old = list(range(stream.n_classes))
        else:
            old = sorted({c for k in range(task - 1) for c in stream.task_classes[k]})
        self.old = torch.tensor(old, device=self.device)  # made once, not at every step

    def loss_term(self, out: Forward) -> torch.Tensor | None:
        if self.previous is None:
            return None
        with torch.no_grad():
            before = self.previous(out.inputs)[0][..., self.old].float()
        now = out.raw[..., self.old].float()
        target = torch.softmax(before / self.temperature, dim=-1)
        log_q = torch.log_softmax(now / self.temperature, dim=-1)
        return self.lambdas * -(target * log_q).sum(dim=-1).mean(dim=-1)

    @classmethod
    def acts_in(cls, config, task: int) -> bool:
        return task > 1  # no earlier network in task 1

    @classmethod
    def step_macs(cls, config, layers, batch: int) -> int:
        return pass_macs(layers, batch, backward=False)

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # The frozen network's forward pass of the batch (its inputs already scaled), and
        # a cross-entropy between soft outputs (counted as the loss's).
        return forward_cost(layers, batch, 0).flops + loss_cost(outputs(layers), batch).flops
