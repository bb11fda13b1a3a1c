"""A network's layers as the cost model sees them, and the FLOPs of a pass over them.

Each network describes itself as :class:`Layer` s (``ModelSpec.layers``); these functions
count the work of a forward and a backward pass, in the conventions of
:mod:`stabgap.cost.flops` (which counts whole steps and runs), so that a remedy counts its
own extra work (``step_flops``) without reaching up into the cost layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

IMAGE = (1, 28, 28)  # an MNIST image


@dataclass(frozen=True)
class Layer:
    """One layer, as the cost model sees it (per image).

    Attributes:
        kind: "dense" or "conv".
        macs: multiply-accumulates of its matrix product for one image.
        outputs: its output elements for one image (before pooling).
        params: weights and biases.
        relu: whether a ReLU follows (every layer but the output).
        pooled: elements after 2x2 max-pooling (conv layers), else 0.
        first: whether its input is the image (which needs no gradient).
        hidden: whether its activated output is one of the network's hidden activations,
            which ND and the other activation remedies act on; None: wherever a ReLU
            follows (a ResNet block's first conv is activated but not among them).
    """

    kind: str
    macs: int
    outputs: int
    params: int
    relu: bool
    pooled: int = 0
    first: bool = False
    hidden: bool | None = None

    @property
    def acted_on(self) -> bool:
        """Whether the activation remedies and the analyses read its output."""
        return self.relu if self.hidden is None else self.hidden


@dataclass(frozen=True)
class Cost:
    """Work of one part of a computation; adds and scales like a number."""

    macs: int = 0  # multiply-accumulates (matmuls, convolutions and ND)
    flops: int = 0  # all floating-point operations, 2 per MAC included
    matmul_flops: int = 0  # the matrix-product part of `flops` (FlopCounterMode's count)

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.matmul_flops + other.matmul_flops,
        )

    def __mul__(self, k: int) -> Cost:
        return Cost(self.macs * k, self.flops * k, self.matmul_flops * k)

    __rmul__ = __mul__


ZERO = Cost()


def dense_layers(sizes: tuple[int, ...], first: bool = True) -> list[Layer]:
    """The layers of dense widths `sizes`, input first and output last (ReLU after every one
    but the output); `first`: the first takes the image.

    Example:
        >>> [layer.macs for layer in dense_layers((784, 8, 10))]
        [6272, 80]
    """
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    return [
        Layer("dense", a * b, b, a * b + b, relu=i < len(pairs) - 1, first=first and i == 0)
        for i, (a, b) in enumerate(pairs)
    ]


def hidden_units(layers: list[Layer]) -> int:
    """The hidden activations' units for one image: what ND and its kin act on.

    Example:
        >>> hidden_units(dense_layers((784, 8, 4, 10)))
        12
    """
    return sum(layer.outputs for layer in layers if layer.acted_on)


def total(costs: dict[str, Cost]) -> Cost:
    """Sum of the parts of a cost breakdown."""
    return sum(costs.values(), ZERO)


def matmul_cost(macs: int, other_flops: int = 0) -> Cost:
    return Cost(macs=macs, flops=2 * macs + other_flops, matmul_flops=2 * macs)


def forward_cost(layers: list[Layer], batch: int, pixels: int) -> Cost:
    """One forward pass of a batch: input scaling, matmuls/convolutions, biases, ReLUs, pools.

    Example:
        >>> c = forward_cost(dense_layers((784, 2048, 2048, 10)), 512, 784)
        >>> c.macs  # thop's count for the poster's model
        2980052992
        >>> c.flops - c.matmul_flops == 512 * (784 + 2048 + 2048 + 10 + 2048 + 2048)
        True
    """
    macs = batch * sum(layer.macs for layer in layers)
    elementwise = batch * (
        pixels + sum(layer.outputs * (1 + layer.relu) + 3 * layer.pooled for layer in layers)
    )
    return matmul_cost(macs, elementwise)


def backward_cost(layers: list[Layer], batch: int) -> Cost:
    """Back-propagation through the layers (the loss's own gradient excluded).

    Example:
        >>> c = backward_cost(dense_layers((784, 2048, 2048, 10)), 512)
        >>> c.macs == 512 * (784 * 2048 + 2 * (2048 * 2048 + 2048 * 10))
        True
    """
    weight_grads = batch * sum(layer.macs for layer in layers)
    input_grads = batch * sum(layer.macs for layer in layers if not layer.first)
    elementwise = batch * sum(layer.outputs * (1 + layer.relu) + layer.pooled for layer in layers)
    return matmul_cost(weight_grads + input_grads, elementwise)


def loss_cost(n_classes: int, batch: int) -> Cost:
    """Mean cross-entropy of a batch, forward and backward (no MACs).

    Example:
        >>> loss_cost(10, 512).flops == 512 * (4 * 10 + 3 + 3 * 10 + 1)
        True
    """
    return Cost(flops=batch * (7 * n_classes + 4))


def extra_pass_flops(layers: list[Layer], batch: int, image: tuple[int, ...]) -> int:
    """FLOPs of one more forward and backward pass of a batch of `image`-shaped inputs (the
    run's dataset's: its pixels are scaled), with its loss (SAM's)."""
    pixels = math.prod(image)
    n_classes = outputs(layers)
    passes = forward_cost(layers, batch, pixels) + backward_cost(layers, batch)
    return (passes + loss_cost(n_classes, batch)).flops


def pass_macs(layers: list[Layer], batch: int, backward: bool = True) -> int:
    """Matmul MACs of one more forward (and backward) pass of a batch (a method's own)."""
    macs = forward_cost(layers, batch, 0).macs
    return macs + (backward_cost(layers, batch).macs if backward else 0)


def outputs(layers: list[Layer]) -> int:
    """The network's outputs (classes): its last layer's."""
    return layers[-1].outputs
