"""Remedies for the stability gap: each one module, acting at named points of the loop.

The training loop (:mod:`stabgap.core.train`) names the few places where a remedy may act, and
a remedy is a subclass of :class:`Remedy` that fills one or more of them:

1. **a loss term** (:meth:`Remedy.loss_term`): added to the cross-entropy, from the
   batch's activations and/or the parameters (neuronal decay, L1, L2);
2. **the update rule**: how the gradients are computed (:meth:`Remedy.gradients`, for
   rules that need more than one, such as SAM) and what is done to them or to the learning
   rates before the optimiser steps (:meth:`Remedy.before_step`: preconditioning, LR
   schedules); the optimiser itself is the config's ``optimizer``;
3. **an action at a task switch** (:meth:`Remedy.at_switch`): reset the optimiser, start
   a learning-rate warm-up;
4. **the weights that are evaluated** (:meth:`Remedy.evaluated`, with
   :meth:`Remedy.after_step` to keep them): an exponential moving average of the weights.

A remedy declares its own config fields (so every CLI flag, TOML file, stamp and record
gets them), says when a run uses it (:meth:`Remedy.active`), and works on a stack of R
copies, with its strengths per copy where that makes sense: a strength of 0 leaves a
copy exactly as it would be without the remedy, so copies with and without it can share
a stack. Remedies compose: every active remedy of a run acts at its points in the order
they declare (:attr:`Remedy.order`). See docs/extending.md for a worked example of adding
one.

Built-in remedies are the modules of this folder; more can be loaded from the modules
named in the environment variable ``STABGAP_PLUGINS`` (see :mod:`stabgap.core.registry`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from stabgap.core.registry import Extension, Registry, registries
from stabgap.errors import StabgapError

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig
    from stabgap.core.memories import Memory
    from stabgap.core.models import Layer
    from stabgap.core.streams import TaskStream


@dataclass(frozen=True)
class Forward:
    """What one training forward pass produced, for the loss terms.

    Attributes:
        logits: (R, B, classes).
        hidden: every hidden activation after its ReLU, each (R, B, ...).
        model: the network (for terms of the parameters).
        inputs, raw, targets, batch, task: the rest of what the loop knows of the batch, for the
            methods (:mod:`stabgap.core.methods`).
    """

    logits: torch.Tensor
    hidden: list[torch.Tensor]
    model: torch.nn.Module
    inputs: torch.Tensor | None = None  # (R, B, ...) the images, as the network takes them
    raw: torch.Tensor | None = None  # (R, B, classes) the logits before the scenario's mask
    targets: torch.Tensor | None = None  # (R, B) the labels
    batch: Batch | None = None  # which examples: the current task's, then replayed ones
    task: int = 0  # the task being trained (1-based)


@dataclass(frozen=True)
class Batch:
    """One step's training examples, as (R, n) indices into the stream's training set: the
    current task's ``new`` examples, then any ``replayed`` from the memory."""

    new: torch.Tensor
    replayed: torch.Tensor | None = None

    @property
    def indices(self) -> torch.Tensor:
        """(R, B) every example of the batch, the new ones first."""
        return self.new if self.replayed is None else torch.cat([self.new, self.replayed], 1)


@dataclass(frozen=True)
class Step:
    """Where the loop is: ``task`` (1-based), batch ``t`` of the run, ``t_in_task``, and the
    training examples of this step's batch, ``batch`` (R, B) indices into the stream's
    training set (set by the loop's update; None where no batch is given)."""

    task: int
    t: int
    t_in_task: int
    batch: torch.Tensor | None = None


class Remedy(Extension):
    """A method against the stability gap; subclasses override the points they act at.

    Class attributes (besides an extension's name, help, fields and needs):
        order: where it acts among the run's remedies at a point they share (lower first):
            the sum of the loss terms, and the changes to gradients and learning rates
            before a step, are made in this order.
        example: field values that turn it on, for ``stabgap cost``.
    """

    order: ClassVar[int] = 100  # the built-ins take 10 to 80: a plugin's acts after them
    example: ClassVar[dict[str, Any]] = {}  # field values that turn it on (stabgap cost)
    # how many times its `gradients` calls compute(), each a forward and backward pass with
    # every loss term (SAM: 2); the cost model counts the loss terms' work that often
    loss_passes: ClassVar[int] = 1
    memory: Memory | None = None  # the run's bounded replay memory, where it keeps one

    def __init__(
        self, configs: Sequence[RunConfig], model: torch.nn.Module, stream: TaskStream, device
    ) -> None:
        self.configs = list(configs)
        self.stream = stream
        self.device = device

    @classmethod
    def active(cls, config: RunConfig) -> bool:
        """Whether a run with this config uses the remedy."""
        return False

    def per_copy(self, field: str) -> torch.Tensor:
        """The (R,) values of a per-copy field, on the run's device."""
        values = [float(getattr(c, field)) for c in self.configs]
        return torch.tensor(values, dtype=torch.float32, device=self.device)

    # 1. a loss term ------------------------------------------------------------------
    def data_loss(self, out: Forward) -> torch.Tensor | None:
        """(R,) the loss on the batch's examples in place of the loop's cross-entropy over
        all of them (one extension at most); None to leave the cross-entropy."""
        return None

    def loss_term(self, out: Forward) -> torch.Tensor | None:
        """(R,) penalty of each copy, added to its loss; None for none."""
        return None

    # 2. the update rule ----------------------------------------------------------------
    def gradients(self, compute: Callable[[], tuple], model: torch.nn.Module) -> tuple | None:
        """Compute the gradients in its own way and return what ``compute()`` returns;
        None to leave it to the loop (one ``compute()``). ``compute`` runs the forward and
        backward pass of the batch at the current weights and returns (loss, penalty)."""
        return None

    def before_step(self, model: torch.nn.Module, optimizer, step: Step) -> None:
        """Act on the gradients or learning rates just before the optimiser steps."""

    # 3. an action at a task switch -------------------------------------------------------
    def at_switch(self, task: int, model: torch.nn.Module, optimizer) -> None:
        """Called when `task` (1-based) starts, before its first batch (also task 1)."""

    # 4. the weights that are evaluated ---------------------------------------------------
    def after_step(self, model: torch.nn.Module) -> None:
        """Called after every optimiser step."""

    def evaluated(self, model: torch.nn.Module) -> torch.nn.Module | None:
        """The network to evaluate instead of `model`; None to evaluate `model`."""
        return None

    # cost -------------------------------------------------------------------------------
    @classmethod
    def in_loss(cls) -> bool:
        """Whether its work is done in computing the loss (a loss term or the data loss),
        which a remedy that computes the loss again (SAM) repeats."""
        return cls.loss_term is not Remedy.loss_term or cls.data_loss is not Remedy.data_loss

    @classmethod
    def step_flops(cls, config: RunConfig, layers: list[Layer], batch: int) -> int:
        """Extra FLOPs of one training step (see stabgap.cost.flops's conventions)."""
        return 0

    @classmethod
    def step_macs(cls, config: RunConfig, layers: list[Layer], batch: int) -> int:
        """Extra multiply-accumulates of one training step, where it has any."""
        return 0

    @classmethod
    def acts_in(cls, config: RunConfig, task: int) -> bool:
        """Whether it adds work to the training steps of `task` (1-based): a method that
        acts on what earlier tasks left (a frozen network, a Fisher) does not in task 1."""
        return True

    @classmethod
    def switch_flops(cls, config: RunConfig, layers: list[Layer]) -> int:
        """Extra FLOPs at each task switch after the first task, where it acts there."""
        return 0

    @classmethod
    def switch_macs(cls, config: RunConfig, layers: list[Layer]) -> int:
        """Extra multiply-accumulates at each task switch after the first task, where it has
        any (their 2 FLOPs each are part of ``switch_flops``)."""
        return 0

    @staticmethod
    def pass_flops(config: RunConfig, layers: list[Layer], batch: int) -> int:
        """FLOPs of one more forward and backward pass of `batch` of the run's own images,
        with its loss (SAM's second pass, a memory batch's): for ``step_flops`` and
        ``switch_flops``, which count it on the run's dataset, whose pixels it scales."""
        from stabgap.core.data import DATASETS
        from stabgap.core.models.layers import extra_pass_flops

        return extra_pass_flops(layers, batch, DATASETS.chosen(config).input_shape)


REMEDIES: Registry[type[Remedy]] = Registry("remedy", __name__)
register = REMEDIES.register  # the decorator of a remedy's class


def in_order(remedies) -> list[type[Remedy]]:
    """Remedies in the order they act: their declared order, then their names."""
    return sorted(remedies, key=lambda r: (r.order, r.name))


# The points that at most one active extension may fill, and what filling one means.
SOLE_POINTS = {
    "gradients": "compute the gradients in their own way",
    "evaluated": "choose the evaluated weights",
    "data_loss": "replace the cross-entropy",
}


def fills(cls: type[Remedy], point: str) -> bool:
    """Whether an extension fills `point` (overrides the base's do-nothing method)."""
    return getattr(cls, point) is not getattr(Remedy, point)


def check_points(active: Sequence[type[Remedy]]) -> None:
    """Refuse two active extensions that fill a point only one may fill (SAM and A-GEM
    both computing the gradients), in one line, before any work."""
    for point, what in SOLE_POINTS.items():
        own = [cls.name for cls in active if fills(cls, point)]
        if len(own) > 1:
            raise StabgapError(f"invalid config: {' and '.join(own)} both {what}: use one")


def acting() -> list[type[Remedy]]:
    """Every extension that acts at the loop's points, in order: the remedies and the
    continual-learning methods (:mod:`stabgap.core.methods`), which share this contract."""
    return in_order(
        ext
        for registry in registries()
        for ext in registry.values()
        if isinstance(ext, type) and issubclass(ext, Remedy)
    )


class Remedies:
    """The active remedies of a stack, called at each point in their declared order."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        model: torch.nn.Module,
        stream: TaskStream,
        device,
        memory: Memory | None = None,
    ) -> None:
        self.all = [
            cls(configs, model, stream, device)
            for cls in acting()
            if any(cls.active(c) for c in configs)
        ]
        for r in self.all:
            r.memory = memory
        check_points([type(r) for r in self.all])
        self.gradient_rule = self._filling("gradients")
        self.weights = self._filling("evaluated")
        self.data_rule = self._filling("data_loss")

    def _filling(self, point: str) -> Remedy | None:
        """The active extension that fills `point` (at most one: :func:`check_points`)."""
        return next((r for r in self.all if fills(type(r), point)), None)

    def data_loss(self, out: Forward) -> torch.Tensor | None:
        return None if self.data_rule is None else self.data_rule.data_loss(out)

    def loss_term(self, out: Forward) -> torch.Tensor | None:
        terms = [t for t in (r.loss_term(out) for r in self.all) if t is not None]
        return sum(terms[1:], terms[0]) if terms else None

    def gradients(self, compute: Callable[[], tuple], model: torch.nn.Module) -> tuple:
        if self.gradient_rule is None:
            return compute()
        return self.gradient_rule.gradients(compute, model)

    def before_step(self, model, optimizer, step: Step) -> None:
        for r in self.all:
            r.before_step(model, optimizer, step)

    def at_switch(self, task: int, model, optimizer) -> None:
        for r in self.all:
            r.at_switch(task, model, optimizer)

    def after_step(self, model) -> None:
        for r in self.all:
            r.after_step(model)

    def evaluated(self, model: torch.nn.Module) -> torch.nn.Module:
        return model if self.weights is None else self.weights.evaluated(model)
