"""Learning-rate actions at each task switch: a linear warm-up, or a lowered rate.

For the first N batches of every task after the first, copy r's learning rate is its
configured rate times a factor: 'warmup' rises linearly, (i + 1) / N at the i-th batch of
the task; 'low' is ``switch_lr_factor`` throughout the N batches. Then the rate is back
to the configured one. N and the factor may differ between copies.
"""

from __future__ import annotations

from stabgap.core.fields import AT_LEAST_ONE, option
from stabgap.core.remedies import Remedy, Step, register
from stabgap.errors import StabgapError


@register
class SwitchLearningRate(Remedy):
    """A learning-rate schedule over the first batches after each switch."""

    name = "switch-lr"
    help = "a learning-rate warm-up, or a lowered rate, after each task switch"
    order = 70
    example = {"switch_lr": "warmup"}
    fields = {
        "switch_lr": (
            str,
            option(
                "none",
                "Learning rate after each task switch: 'warmup' (linear from lr/N to lr over "
                "switch_lr_batches), 'low' (lr·switch_lr_factor for switch_lr_batches), 'none'.",
                choices=("none", "warmup", "low"),
            ),
        ),
        "switch_lr_batches": (
            int,
            option(
                50,
                "Batches after each switch that switch_lr acts on.",
                per_copy=True,
                **AT_LEAST_ONE,
            ),
        ),
        "switch_lr_factor": (
            float,
            option(
                0.1,
                "switch_lr 'low': the factor of the lowered learning rate.",
                per_copy=True,
                check=lambda x: 0 < x <= 1,
                must="a number in (0, 1]",
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.schedule = configs[0].switch_lr

    @classmethod
    def active(cls, config) -> bool:
        return config.switch_lr != "none"

    @classmethod
    def check(cls, config) -> None:
        if config.switch_lr == "none" and config.switch_lr_factor != 0.1:
            raise StabgapError(
                "invalid config: switch_lr_factor needs switch_lr 'low' (or leave it at 0.1)"
            )

    @classmethod
    def caution(cls, config) -> str | None:
        if config.switch_lr_batches > config.batches_per_task:
            return (
                f"the {config.switch_lr} schedule of switch_lr_batches "
                f"{config.switch_lr_batches} outlasts a task of {config.batches_per_task} "
                "batches, so it never finishes: set switch_lr_batches to at most "
                "batches_per_task for a schedule that ends within the task"
            )
        return None

    def factor(self, config, t_in_task: int, task: int) -> float:
        """Copy's learning-rate factor at batch `t_in_task` (0-based) of `task`."""
        n = config.switch_lr_batches
        if task == 1 or t_in_task >= n:
            return 1.0
        return (t_in_task + 1) / n if self.schedule == "warmup" else config.switch_lr_factor

    def before_step(self, model, optimizer, step: Step) -> None:
        optimizer.scale_lr([self.factor(c, step.t_in_task, step.task) for c in self.configs])
