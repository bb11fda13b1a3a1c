"""DER and DER++: dark experience replay (Buzzega et al., NeurIPS 2020).

The memory stores each example with the logits the network gave it when it was stored.
At every step, besides the cross-entropy of the batch:

- DER adds α · ‖f(x') − z'‖², the squared error between the network's logits for a batch
  x' drawn from the memory and the logits z' stored with it;
- DER++ adds β · CE(f(x''), y'') on a second, independent batch drawn from the memory.

The squared error is the mean over the batch's examples and the classes (the authors'
code, ``F.mse_loss``), so α is on their scale. The logits are the network's raw outputs,
before the scenario's mask. α and β may differ between copies; 0 leaves a copy as it would
be without the term. The paper uses the reservoir memory; any policy works here.
"""

from __future__ import annotations

import torch

from stabgap.core.fields import NON_NEGATIVE, option
from stabgap.core.losses import cross_entropy
from stabgap.core.memories import MEMORIES, drawn_examples
from stabgap.core.methods import LOGITS, METHODS, Method
from stabgap.core.models.layers import loss_cost, outputs, pass_macs
from stabgap.core.remedies import Forward
from stabgap.core.streams import pixels, rows


@METHODS.register
class DarkExperienceReplay(Method):
    """α · logit matching and β · cross-entropy on batches drawn from the memory."""

    name = "der"
    help = "DER / DER++: match the logits stored in the memory (α), replay its labels (β)"
    order = 15
    memory_use = LOGITS
    example = {"der_alpha": 0.3, "der_beta": 0.5}
    fields = {
        "der_alpha": (
            float,
            option(
                0.0,
                "DER (Buzzega et al. 2020): weight α of the squared error between the "
                "logits of a memory batch and those stored with it; 0 turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
        "der_beta": (
            float,
            option(
                0.0,
                "DER++: weight β of the cross-entropy of a second memory batch; 0 turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.alpha, self.beta = self.per_copy("der_alpha"), self.per_copy("der_beta")
        # Which terms the stack computes, known on the host (a copy at 0 computes it, times 0).
        self.matching = any(c.der_alpha > 0 for c in configs)
        self.replaying = any(c.der_beta > 0 for c in configs)
        self.logit_draws = self.generators("der logits")
        self.label_draws = self.generators("der labels")

    @classmethod
    def active(cls, config) -> bool:
        return config.der_alpha > 0 or config.der_beta > 0

    def loss_term(self, out: Forward) -> torch.Tensor | None:
        memory = self.memory
        drawn = memory.draw(self.logit_draws)
        if drawn is None:  # nothing stored yet
            return None
        term = torch.zeros_like(self.alpha)
        if self.matching:
            logits = self._forward(out, memory.examples(drawn))
            squared = (logits.float() - memory.stored_logits(drawn)).square()
            term = term + self.alpha * squared.mean(dim=(1, 2))
        if self.replaying:
            drawn = memory.draw(self.label_draws)
            index = memory.examples(drawn)
            logits = self.stream.restrict(self._forward(out, index), out.task, index)
            term = term + self.beta * cross_entropy(logits, self.stream.train_y[index])
        return term

    def _forward(self, out: Forward, index: torch.Tensor) -> torch.Tensor:
        return out.model(pixels(rows(self.stream.train_x, index)))[0]

    @classmethod
    def acts_in(cls, config, task: int) -> bool:
        return task > 1 or MEMORIES.chosen(config).chooses_online  # a memory to draw from

    @classmethod
    def step_macs(cls, config, layers, batch: int) -> int:
        passes = (config.der_alpha > 0) + (config.der_beta > 0)
        return passes * pass_macs(layers, drawn_examples(config))

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # Not counted: the logits of the examples a memory stores at a task's end, one
        # forward pass each (its new share of the memory: about a hundred images a run
        # with 50 slots on split MNIST).
        # Per memory batch of n: one more forward and backward pass with its loss; DER's
        # squared error costs 5 a logit (subtract, square, sum; backward: scale, add)
        # where the cross-entropy's 7 are counted.
        n, classes = drawn_examples(config), outputs(layers)
        flops = 0
        if config.der_alpha > 0:
            flops += (
                cls.pass_flops(config, layers, n) - loss_cost(classes, n).flops + 5 * n * classes
            )
        if config.der_beta > 0:
            flops += cls.pass_flops(config, layers, n)
        return flops
