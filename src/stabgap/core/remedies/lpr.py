"""Layerwise Proximal Replay (LPR; Yoo, Liu, Wood and Pleiss, ICML 2024).

Every dense layer's gradient is preconditioned so that the layer's outputs on replay data
change only gradually. For layer l with inputs z (its bias input 1 appended), over n
replay samples:

    P_l = (I + ω·(1/n)·Σ z zᵀ)⁻¹,    [∇W_l  ∇b_l] ← [∇W_l  ∇b_l] · P_l

and the optimiser steps with the preconditioned gradient. The matrices are recomputed
from the current network every ``lpr_every`` batches, on ``lpr_samples`` samples drawn
from the replay buffer. The paper's buffer holds the stream seen so far, the current
task's data included; here that is every training example the run has trained on so far
(each copy its own, from its batches), never one it has not yet seen. Fewer seen than
``lpr_samples`` (the first batches): all of them. These are the paper's definitions for
fully-connected layers, with its scale ω (``omega_0``) and its layer factor 1 for dense
layers; its convolutional case (patches, and an extra β scale) is not implemented, so LPR
is refused for the CNN.

Stacked copies compute their matrices as one batch, which rounds differently from one
matrix alone: a stacked LPR run equals its run alone to float tolerance, not to the bit.
"""

from __future__ import annotations

import torch

from stabgap.core.fields import AT_LEAST_ONE, NON_NEGATIVE, option
from stabgap.core.models import DENSE_ONLY, evaluating
from stabgap.core.remedies import Remedy, Step, register
from stabgap.core.streams import pixels, rows
from stabgap.errors import StabgapError
from stabgap.seeds import derive_seed


@register
class LayerwiseProximalReplay(Remedy):
    """Preconditions every dense layer's gradient with its replay inputs' second moments."""

    name = "lpr"
    help = "layerwise proximal replay: gradients preconditioned by the replay inputs"
    order = 50  # preconditions the gradients before switch-lr scales the rates
    needs = frozenset({DENSE_ONLY})  # its convolutional form is not implemented
    example = {"lpr_omega": 1.0}
    fields = {
        "lpr_omega": (
            float,
            option(
                0.0,
                "Layerwise proximal replay: ω of P = (I + ω·E[z zᵀ])⁻¹ over replay inputs z of "
                "each layer; 0 turns it off.",
                per_copy=True,
                **NON_NEGATIVE,
            ),
        ),
        "lpr_every": (
            int,
            option(
                30, "LPR: recompute the preconditioners every this many batches.", **AT_LEAST_ONE
            ),
        ),
        "lpr_samples": (
            int,
            option(
                2000, "LPR: replay samples the preconditioners are computed on.", **AT_LEAST_ONE
            ),
        ),
    }

    def __init__(self, configs, model, stream, device) -> None:
        super().__init__(configs, model, stream, device)
        self.omega = self.per_copy("lpr_omega")
        self.every, self.samples = configs[0].lpr_every, configs[0].lpr_samples
        # Its own random numbers (which replay samples), apart from the run's streams.
        self.generators = [
            torch.Generator(device).manual_seed(derive_seed(c.seed, "lpr")) for c in configs
        ]
        # (R, training examples): which examples each copy has trained on so far.
        self.seen = torch.zeros(len(configs), len(stream.train_y), dtype=torch.bool, device=device)
        self.inverses: list[torch.Tensor] = []  # per layer: (R, in + 1, in + 1)

    @classmethod
    def active(cls, config) -> bool:
        return config.lpr_omega > 0

    @classmethod
    def check(cls, config) -> None:
        if config.lpr_omega > 0 and config.replay == "none":
            raise StabgapError(
                "invalid config: lpr preconditions with replay data: use replay full or stratified"
            )

    @torch.no_grad()
    def before_step(self, model, optimizer, step: Step) -> None:
        self.seen.scatter_(1, step.batch, True)  # this step's batch is seen from now on
        if step.t % self.every == 0:
            self.inverses = self.preconditioners(model, *self.replay_samples())
        for w, b, inverse in zip(model.weights, model.biases, self.inverses, strict=True):
            # [∇W; ∇b] as (R, in + 1, out): P⁻¹ is symmetric, so P⁻¹·[∇W; ∇b] is the
            # transpose of the paper's [∇Wᵀ ∇b]·P⁻¹ in this (in, out) layout.
            g = torch.bmm(inverse, torch.cat([w.grad, b.grad], dim=1))
            w.grad.copy_(g[:, :-1])
            b.grad.copy_(g[:, -1:])

    def replay_indices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each copy's replay samples: up to ``lpr_samples`` examples drawn without
        replacement from those it has seen. Returns (R, n) indices, padded with each copy's
        first sample where it has fewer, and (R,) how many of them each copy has."""
        picks = []
        for seen, g in zip(self.seen, self.generators, strict=True):
            pool = seen.nonzero().squeeze(1)  # the examples this copy has seen
            order = torch.randperm(len(pool), generator=g, device=g.device)[: self.samples]
            picks.append(pool[order.to(pool.device)])
        counts = torch.tensor([len(p) for p in picks], device=self.device)
        n = max(len(p) for p in picks)
        padded = [torch.cat([p, p[:1].expand(n - len(p))]) for p in picks]
        return torch.stack(padded), counts

    def replay_samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(R, n, pixels) replay images of each copy, and (R,) how many are its own."""
        idx, counts = self.replay_indices()
        return pixels(rows(self.stream.train_x, idx)), counts

    def preconditioners(self, model, images: torch.Tensor, counts: torch.Tensor) -> list:
        """(I + ω/n · Zᵀ Z)⁻¹ of every dense layer, Z its inputs on each copy's first
        ``counts[r]`` replay images (the rest is padding, left out)."""
        with evaluating(model):
            _, hidden = model(images)
        n = images.shape[1]
        own = (torch.arange(n, device=images.device) < counts[:, None]).unsqueeze(2)  # (R, n, 1)
        out = []
        for z in [images.flatten(2), *hidden]:  # each layer's input: (R, n, in)
            z = torch.cat([z, torch.ones_like(z[..., :1])], dim=2) * own  # the bias's input
            moment = torch.bmm(z.transpose(1, 2), z) / counts.view(-1, 1, 1)  # (R, in+1, in+1)
            eye = torch.eye(z.shape[2], device=z.device)
            # I + ω·E[z zᵀ] is symmetric positive definite: inverted through its Cholesky
            # factor (also the stabler way; and this torch build's batched LU inverse can
            # hang in MKL on a CPU).
            factor = torch.linalg.cholesky(eye + self.omega.view(-1, 1, 1) * moment)
            out.append(torch.cholesky_inverse(factor))
        return out

    @classmethod
    def step_flops(cls, config, layers, batch: int) -> int:
        # Every product's MACs twice, and the inverse (about 2·(in + 1)³ FLOPs a layer)
        # every lpr_every steps.
        inverses = sum(2 * (layer.params // layer.outputs) ** 3 for layer in layers)
        return 2 * cls.step_macs(config, layers, batch) + inverses // config.lpr_every

    @classmethod
    def step_macs(cls, config, layers, batch: int) -> int:
        # Per step: [∇W; ∇b]·P for every dense layer, (in + 1)² · out MACs. Every lpr_every
        # steps, spread over those steps: a forward pass of the samples and Zᵀ Z
        # (n · (in + 1)² MACs).
        n = config.lpr_samples
        per_step = refresh = 0
        for layer in layers:
            inputs = layer.params // layer.outputs  # in + 1: weights in·out, biases out
            per_step += inputs**2 * layer.outputs
            refresh += layer.macs * n + n * inputs**2
        return per_step + refresh // config.lpr_every
