"""An exponential moving average of the weights, evaluated instead of the weights.

After every update, ``ema ← β·ema + (1 − β)·w`` (starting from the initial weights), and
continual evaluation measures the average, as in Soutif-Cormerais et al., "Improving online
continual learning performance and stability with temporal ensembles" (CoLLAs 2023).
Training itself is untouched. β may differ between copies; β = 0 evaluates the weights.
"""

from __future__ import annotations

import copy

import torch

from stabgap.core.fields import FRACTION, option
from stabgap.core.remedies import Remedy, register


@register
class WeightAverage(Remedy):
    """Keeps an EMA copy of the stacked network and hands it to the evaluation."""

    name = "ema"
    help = "an exponential moving average of the weights, evaluated instead of them"
    order = 80  # keeps its average after every other change to the weights
    example = {"ema_decay": 0.99}
    fields = {
        "ema_decay": (
            float,
            option(
                0.0,
                "EMA of the weights, evaluated instead of them: decay β of ema ← β·ema + "
                "(1-β)·w after every update; 0 turns it off.",
                per_copy=True,
                **FRACTION,
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.average = copy.deepcopy(model).requires_grad_(False)
        self.keep = 1 - self.per_copy("ema_decay")  # (R,) weight of the new weights

    @classmethod
    def active(cls, config) -> bool:
        return config.ema_decay > 0

    @torch.no_grad()
    def after_step(self, model) -> None:
        for avg, w in zip(self.average.parameters(), model.parameters(), strict=True):
            avg.lerp_(w, self.keep.view(-1, *([1] * (w.dim() - 1))))
        # A network's running statistics (batch norm's), averaged alike: each copy's side by
        # side in one buffer, so each copy's share of it takes that copy's β.
        for avg, b in zip(self.average.buffers(), model.buffers(), strict=True):
            if avg.is_floating_point():
                keep = self.keep.repeat_interleave(b.numel() // len(self.keep))
                avg.lerp_(b, keep.view(b.shape))

    def evaluated(self, model):
        return self.average

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        return 3 * sum(layer.params for layer in layers)  # lerp: subtract, scale, add
