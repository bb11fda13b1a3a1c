"""The field's continual-learning methods, each one module acting at the loop's named points.

A method is a :class:`Method`: a :class:`~stabgap.core.remedies.Remedy` (the same four
points, the same contract: its own config fields, strengths per copy where that makes
sense, a strength of 0 leaving a copy as it would be without it, stacked = alone) that may
also draw from the run's bounded replay memory (:mod:`stabgap.core.memories`) and replace
the loop's cross-entropy (:meth:`~stabgap.core.remedies.Remedy.data_loss`). Experience
replay itself is not a method here but the loop's ``replay = "memory"``: every other
method composes with it and with the remedies.

Each method's module cites its paper and says which definition it follows. Full GEM
(Lopez-Paz and Ranzato 2017) is not here: it solves a quadratic program over every earlier
task's gradient at every step, and A-GEM's single projection is a different method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from stabgap.core.registry import Registry
from stabgap.core.remedies import Remedy
from stabgap.seeds import derive_seed

# What a method asks of the memory.
DRAWS = "draws"  # examples drawn from it
LOGITS = "logits"  # examples with the logits stored with them


class Method(Remedy):
    """A continual-learning method (class attributes besides a remedy's).

    Attributes:
        memory_use: None, :data:`DRAWS` or :data:`LOGITS`: a run using the method keeps a
            memory (the method's ``memory``), storing logits for :data:`LOGITS`.
    """

    memory_use: ClassVar[str | None] = None

    def generators(self, purpose: str) -> list[torch.Generator]:
        """One generator per copy for `purpose`, from the copy's seed: a method's draws
        from the memory are its own, so copies with and without it draw alike."""
        return [
            torch.Generator(self.device).manual_seed(derive_seed(c.seed, purpose))
            for c in self.configs
        ]


METHODS: Registry[type[Method]] = Registry("method", "stabgap.core.methods")


def uses_memory(config, methods: Sequence[type[Method]]) -> bool:
    """Whether a run replays from a memory or uses a method that draws from one."""
    return config.replay == "memory" or any(m.memory_use for m in methods)
