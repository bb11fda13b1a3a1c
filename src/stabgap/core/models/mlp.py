"""The MLP of the poster, as a stack of R independent copies trained side by side.

One run is a stack of one. Runs that share every shape (widths, batch sizes) but differ
in seed, λ or learning rate are trained as one computation: each layer's weights are an
(R, in, out) tensor and every product is a batched matmul, so R small runs fill the
hardware like one large one, while each copy sees only its own inputs and gradients.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from stabgap.core.device import autocast_dtype
from stabgap.core.models import DENSE_ONLY, MODELS, Layer, Model, cpu_matmul
from stabgap.core.models.layers import dense_layers


@MODELS.register
class MLP(Model):
    """The poster's network: dense layers, ReLU after each hidden one."""

    name = "mlp"
    help = "dense layers, ReLU after each hidden one (the poster's network)"
    uses = ("hidden",)
    supports = frozenset({DENSE_ONLY})

    @classmethod
    def build(cls, config, input_shape, n_classes, generators, device="cpu") -> StackedMLP:
        sizes = (math.prod(input_shape), *config.hidden, n_classes)
        return StackedMLP(sizes, generators, device)

    @classmethod
    def layers(cls, config, input_shape: tuple[int, ...], n_classes: int) -> list[Layer]:
        """The MLP's layers for the cost model (see :class:`stabgap.core.models.Layer`).

        Example:
            >>> from stabgap.core.config import RunConfig
            >>> [l.macs for l in MLP.layers(RunConfig(hidden=(8,)), (1, 28, 28), 10)]
            [6272, 80]
        """
        return dense_layers((math.prod(input_shape), *config.hidden, n_classes))

    @classmethod
    def describe(cls, config, input_shape: tuple[int, ...], n_classes: int) -> str:
        return "MLP " + "-".join(map(str, (math.prod(input_shape), *config.hidden, n_classes)))


class StackedMLP(nn.Module):
    """R MLPs ``in → hidden[0] → ... → out`` with ReLU, evaluated together.

    Args:
        sizes: layer widths, input first and output last, e.g. (784, 2048, 2048, 10).
        generators: one CPU generator per copy; copy r is initialised from generators[r].
        device: where the weights live.

    Example:
        >>> g = [torch.Generator().manual_seed(s) for s in (1, 2)]
        >>> model = StackedMLP((4, 8, 3), g)
        >>> logits, hidden = model(torch.ones(2, 5, 4))  # (R, B, in)
        >>> tuple(logits.shape), [tuple(h.shape) for h in hidden]
        ((2, 5, 3), [(2, 5, 8)])
    """

    def __init__(
        self,
        sizes: tuple[int, ...],
        generators: list[torch.Generator],
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.sizes = tuple(sizes)
        self.n_runs = len(generators)
        weights, biases = [], []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            w, b = zip(*(_linear_init(fan_in, fan_out, g) for g in generators), strict=True)
            # (R, in, out) so that x @ W needs no transpose; bias (R, 1, out) broadcasts.
            weights.append(nn.Parameter(torch.stack(w).transpose(1, 2).contiguous().to(device)))
            biases.append(nn.Parameter(torch.stack(b).unsqueeze(1).to(device)))
        self.weights = nn.ParameterList(weights)
        self.biases = nn.ParameterList(biases)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) → logits (R, B, out) and the post-ReLU hidden activations."""
        features, hidden = self.body(x)
        return self.output(features), hidden

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) → the output layer's input (R, B, width) and the hidden
        activations (every network here has a body and a head: the analyses read both)."""
        x = x.flatten(2)  # (R, B, in): images as vectors
        hidden = []
        for w, b in zip(self.weights[:-1], self.biases[:-1], strict=True):
            x = affine(x, w, b, relu=True)  # (R, B, width)
            hidden.append(x)
        return x, hidden

    def output(self, features: torch.Tensor) -> torch.Tensor:
        """The output layer: features (R, B, width) → logits (R, B, out)."""
        return affine(features, self.weights[-1], self.biases[-1])


# Force the batched-matmul path of :func:`affine` on any device (tests run the GPU's path
# on a CPU with it); None chooses by device.
BATCHED: bool | None = None


def affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, relu: bool = False) -> torch.Tensor:
    """x @ w + b for every copy, then ReLU if `relu`: (R, B, in) → (R, B, out).

    On a GPU one batched matmul fills the device. On a CPU each copy's product already
    uses every core; there each copy's is one plain matmul (MKL's or oneDNN's:
    :mod:`stabgap.core.models.cpu_matmul`), so a stack does exactly the work of its runs
    alone, with the same kernels and the same results to the bit. A CPU pass in bf16
    autocast without autograd (bf16 evaluation) calls oneDNN's bf16 matmul with the bias
    and ReLU fused, which is autocast's result to the bit in fewer passes over memory.
    """
    autocast = autocast_dtype(x.device.type)
    if BATCHED is None and _bf16_cpu_inference(x, autocast):
        return cpu_matmul.per_copy(
            lambda r: cpu_matmul.bf16_affine(x[r], w[r], b[r], relu), x.shape[0]
        )
    batched = x.device.type == "cuda" or autocast is not None if BATCHED is None else BATCHED
    # autocast lowers baddbmm's precision, not that of out= ops
    out = torch.baddbmm(b, x, w) if batched else _PerCopyAffine.apply(x, w, b)
    return out.relu_() if relu else out


def _bf16_cpu_inference(x: torch.Tensor, autocast: torch.dtype | None) -> bool:
    """A CPU pass in bf16 autocast without autograd, where oneDNN's fused op is exact."""
    return (
        x.device.type == "cpu"
        and autocast == torch.bfloat16
        and not torch.is_grad_enabled()
        and cpu_matmul.bf16_fused()
    )


class _PerCopyAffine(torch.autograd.Function):
    """x @ w + b as one plain matmul per copy (see :mod:`stabgap.core.models.cpu_matmul`)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        return cpu_matmul.per_copy(lambda r: cpu_matmul.affine(x[r], w[r], b[r]), x.shape[0])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, w = ctx.saved_tensors
        grad, copies = grad.contiguous(), x.shape[0]
        grad_x = (
            cpu_matmul.per_copy(lambda r: cpu_matmul.product(grad[r], w[r].T), copies)  # (B, in)
            if ctx.needs_input_grad[0]
            else None
        )
        grad_w = cpu_matmul.per_copy(lambda r: cpu_matmul.product(x[r].T, grad[r]), copies)
        return grad_x, grad_w, grad.sum(dim=1, keepdim=True)


def _linear_init(fan_in: int, fan_out: int, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """PyTorch's default nn.Linear initialisation (see :func:`default_init`)."""
    return default_init((fan_out, fan_in), g)


def default_init(weight_shape: tuple[int, ...], g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """PyTorch's default initialisation of nn.Linear and nn.Conv2d: U(-1/√fan_in, 1/√fan_in)
    for the weight and the bias, fan_in = everything but the output dimension.

    Drawn in torch's order (weight as (out, ...), then bias) so that a copy seeded with s
    starts exactly where ``torch.manual_seed(s)`` and torch's layers would.
    """
    bound = 1.0 / math.sqrt(math.prod(weight_shape[1:]))
    w = torch.empty(weight_shape).uniform_(-bound, bound, generator=g)
    b = torch.empty(weight_shape[0]).uniform_(-bound, bound, generator=g)
    return w, b
