"""A small convolutional network, stacked over R copies like the MLP.

``conv 5x5 → ReLU → 2x2 max-pool`` for each entry of ``config.channels`` (padding keeps
the image size before pooling: 28 → 14 → 7), then the dense layers of ``config.hidden``
with ReLU, then the output layer. Every ReLU output (the conv feature maps before
pooling, and the dense layers) is returned as a hidden activation, so neuronal decay and
the other activation penalties apply to the CNN unchanged.

Stacked copies are one grouped convolution (``groups=R``: copy r's channels see only copy
r's filters), which is one kernel for all copies on a GPU; a single copy is a plain
convolution. Measured on this CPU, a grouped convolution of R copies equals R separate
ones to float tolerance, not to the bit, so stacked CNN runs equal their runs alone to
float tolerance (tests/test_models.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stabgap.core.data import DATASETS
from stabgap.core.fields import option
from stabgap.core.models import MODELS, Layer, Model
from stabgap.core.models.layers import dense_layers
from stabgap.core.models.mlp import StackedMLP, default_init
from stabgap.errors import StabgapError

KERNEL = 5


@MODELS.register
class CNN(Model):
    """Conv layers with pooling, then dense layers."""

    name = "cnn"
    help = "conv layers (5x5, ReLU, 2x2 max-pooling), then dense layers"
    fields = {
        "channels": (
            tuple[int, ...],
            option(
                (32, 64),
                "cnn: channels of each conv layer (5x5, ReLU, 2x2 max-pooling after each).",
            ),
        )
    }
    uses = ("channels", "hidden")

    @classmethod
    def build(cls, config, input_shape, n_classes, generators, device="cpu") -> StackedCNN:
        return StackedCNN(
            input_shape, config.channels, config.hidden, n_classes, generators, device
        )

    @classmethod
    def layers(cls, config, input_shape: tuple[int, ...], n_classes: int) -> list[Layer]:
        """The CNN's layers for the cost model (see :class:`stabgap.core.models.Layer`).

        Example:
            >>> from stabgap.core.config import RunConfig
            >>> c = RunConfig(model="cnn", channels=(4,), hidden=(8,))
            >>> [(l.kind, l.macs, l.pooled) for l in CNN.layers(c, (1, 28, 28), 10)]
            [('conv', 78400, 784), ('dense', 6272, 0), ('dense', 80, 0)]
        """
        c_in, h, w = input_shape
        out: list[Layer] = []
        for c_out in config.channels:
            macs = h * w * c_out * c_in * KERNEL * KERNEL  # 'same' padding: h·w positions
            params = c_out * c_in * KERNEL * KERNEL + c_out
            outputs = c_out * h * w
            h, w = h // 2, w // 2
            out.append(Layer("conv", macs, outputs, params, True, c_out * h * w, first=not out))
            c_in = c_out
        return out + dense_layers((c_in * h * w, *config.hidden, n_classes), first=False)

    @classmethod
    def describe(cls, config, input_shape: tuple[int, ...], n_classes: int) -> str:
        channels, hidden = ",".join(map(str, config.channels)), ",".join(map(str, config.hidden))
        return f"CNN conv {channels}, dense {hidden}, {n_classes} outputs"

    @classmethod
    def check(cls, config) -> None:
        if not all(w >= 1 for w in config.channels):
            raise StabgapError("invalid config: channels must be >= 1")
        _, h, w = DATASETS[config.dataset].input_shape
        fits = min(h, w).bit_length() - 1  # each layer's pooling halves the image
        if len(config.channels) > fits:
            raise StabgapError(
                f"invalid config: {len(config.channels)} conv layers halve {config.dataset}'s "
                f"{h}×{w} images to nothing; give channels for at most {fits} layers"
            )


class StackedCNN(nn.Module):
    """R CNNs evaluated together.

    Args:
        input_shape: (channels, height, width) of one image.
        channels: output channels of each conv layer.
        hidden: widths of the dense hidden layers.
        n_classes: outputs.
        generators: one CPU generator per copy; copy r is initialised from generators[r],
            layer by layer in torch's order, as nn.Conv2d and nn.Linear would be.

    Example:
        >>> g = [torch.Generator().manual_seed(s) for s in (1, 2)]
        >>> model = StackedCNN((1, 28, 28), (4, 8), (16,), 10, g)
        >>> logits, hidden = model(torch.rand(2, 3, 1, 28, 28))  # (R, B, C, H, W)
        >>> tuple(logits.shape), [tuple(h.shape) for h in hidden]
        ((2, 3, 10), [(2, 3, 4, 28, 28), (2, 3, 8, 14, 14), (2, 3, 16)])
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        channels: tuple[int, ...],
        hidden: tuple[int, ...],
        n_classes: int,
        generators: list[torch.Generator],
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        c_in, h, w = input_shape
        weights, biases = [], []
        for c_out in channels:
            pairs = [default_init((c_out, c_in, KERNEL, KERNEL), g) for g in generators]
            weights.append(nn.Parameter(torch.stack([p[0] for p in pairs]).to(device)))
            biases.append(nn.Parameter(torch.stack([p[1] for p in pairs]).to(device)))
            c_in, h, w = c_out, h // 2, w // 2
        self.conv_weights = nn.ParameterList(weights)  # each (R, out, in, k, k)
        self.conv_biases = nn.ParameterList(biases)  # each (R, out)
        # The dense part draws from the same generators, after the conv layers, as a
        # torch model whose conv layers are built first would.
        self.dense = StackedMLP((c_in * h * w, *hidden, n_classes), generators, device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) images → logits (R, B, classes), post-ReLU activations."""
        features, hidden = self.body(x)
        return self.output(features), hidden

    def output(self, features: torch.Tensor) -> torch.Tensor:
        """The output layer: its input (R, B, width) → logits (R, B, classes)."""
        return self.dense.output(features)

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) images → the output layer's input, post-ReLU activations."""
        r, b = x.shape[:2]
        x = x.reshape(r, b, *self.input_shape)
        hidden = []
        for weight, bias in zip(self.conv_weights, self.conv_biases, strict=True):
            x = stacked_conv(x, weight, bias).relu_()  # (R, B, C, H, W)
            hidden.append(x)
            x = F.max_pool2d(x.flatten(0, 1), 2).unflatten(0, (r, b))
        features, dense = self.dense.body(x.flatten(2))
        return features, hidden + dense


def stacked_conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: int = 1,
    padding: int | None = None,
) -> torch.Tensor:
    """Each copy's convolution: (R, B, C_in, H, W) → (R, B, C_out, H', W'); 'same' padding
    (k // 2) unless given, no bias where `bias` is None.

    One copy is a plain convolution; several are one grouped convolution over the copies'
    channels side by side (B, R·C_in, H, W), which keeps each copy to its own filters.
    """
    r, b, c, h, w = x.shape
    pad = weight.shape[-1] // 2 if padding is None else padding
    if r == 1:
        one = None if bias is None else bias[0]
        return F.conv2d(x[0], weight[0], one, stride=stride, padding=pad).unsqueeze(0)
    grouped = x.transpose(0, 1).reshape(b, r * c, h, w)
    flat_bias = None if bias is None else bias.flatten()
    out = F.conv2d(grouped, weight.flatten(0, 1), flat_bias, stride=stride, padding=pad, groups=r)
    return out.reshape(b, r, -1, *out.shape[-2:]).transpose(0, 1)
