"""Reset the optimiser at each task switch: forget its moments and step counts."""

from __future__ import annotations

from stabgap.core.fields import option
from stabgap.core.remedies import Remedy, register


@register
class OptimizerReset(Remedy):
    """A newly built optimiser at the start of every task after the first."""

    name = "reset"
    help = "a new optimiser state at every task switch"
    order = 40  # before switch-lr sets rates: a reset rebuilds the optimiser at the set rates
    example = {"reset_optimizer": True}
    fields = {
        "reset_optimizer": (
            bool,
            option(
                False, "Reset the optimiser's state at each task switch (the reference keeps it)."
            ),
        ),
    }

    @classmethod
    def active(cls, config) -> bool:
        return config.reset_optimizer

    def at_switch(self, task: int, model, optimizer) -> None:
        if task > 1:
            optimizer.reset()
