"""ER-ACE: experience replay with the asymmetric cross-entropy (Caccia et al., ICLR 2022).

The incoming (current task's) examples are scored only among the classes present in
their batch: the logits of classes seen before but absent from it are masked, so the new
examples do not push the old classes' logits down. The replayed examples keep the
ordinary cross-entropy over every class. The loss is the sum of the two means, as in the
paper's ``L_ACE = L_CE(incoming, present classes) + L_CE(replay, all classes)`` and the
authors' code; plain ER (``replay = "memory"``) is the mean over the joint batch.

The scenario's own mask still applies (in 'class', classes not yet seen are not scored at
all). On a stream where every batch holds every class (rotated, permuted) nothing is
masked and ER-ACE is ER with that sum of means.
"""

from __future__ import annotations

import torch

from stabgap.core.fields import option
from stabgap.core.losses import cross_entropy
from stabgap.core.methods import METHODS, Method
from stabgap.core.remedies import Forward
from stabgap.errors import StabgapError


@METHODS.register
class ERACE(Method):
    """Masks, for the incoming examples, the seen classes their batch does not hold."""

    name = "er-ace"
    help = "ER-ACE: incoming examples scored among the classes present in their batch"
    order = 5
    example = {"er_ace": True, "replay": "memory", "replay_weight": 0.0}  # its loss, not ER's
    fields = {
        "er_ace": (
            bool,
            option(
                False,
                "ER-ACE (Caccia et al. 2022) with replay 'memory': the incoming examples' "
                "cross-entropy over the classes present in their batch, plus the replayed "
                "examples' over all classes.",
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.seen = torch.zeros(len(configs), stream.n_classes, dtype=torch.bool, device=device)

    @classmethod
    def active(cls, config) -> bool:
        return config.er_ace

    @classmethod
    def check(cls, config) -> None:
        if config.er_ace and config.replay != "memory":
            raise StabgapError(
                "invalid config: er_ace replays from the bounded memory: set replay 'memory'"
            )

    def data_loss(self, out: Forward) -> torch.Tensor:
        b = out.batch.new.shape[1]
        incoming, labels = out.logits[:, :b], out.targets[:, :b]
        present = torch.zeros_like(self.seen).scatter_(1, labels, True)  # (R, classes)
        self.seen |= present
        masked = incoming.masked_fill((self.seen & ~present).unsqueeze(1), float("-inf"))
        loss = cross_entropy(masked, labels)
        if out.batch.replayed is not None:
            loss = loss + cross_entropy(out.logits[:, b:], out.targets[:, b:])
        return loss
