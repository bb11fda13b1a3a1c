"""The reduced ResNet-18 of the continual-learning literature, stacked over R copies.

As Lopez-Paz and Ranzato (GEM, 2017) reduced it and the stability-gap papers use it (De
Lange et al. 2023; Hess et al. 2024): a 3×3 stem of ``resnet_width`` filters (20), then four
stages of two basic blocks with 1, 2, 4 and 8 times as many filters, the last three
starting with a stride of 2; global average pooling; one linear layer. A basic block is
``conv 3×3 → norm → ReLU → conv 3×3 → norm``, plus a shortcut (a 1×1 conv and a norm where
the shape changes), then a ReLU. The convolutions have no bias.

``resnet_norm`` chooses the normalisation:

- ``batch`` (the papers'): batch normalisation. In training it normalises with the batch's
  statistics and updates running averages (momentum 0.1), over the whole batch, replayed
  examples included; in evaluation it uses those running averages. So at a task switch the
  running statistics still describe the old data for a while: evaluating right after a
  switch uses old statistics on the new weights, one of the effects the gap may include.
  The evaluated network never updates them (it is evaluated in eval mode), so evaluation
  still never feeds back into training.
- ``group``: group normalisation (4 groups a layer), the same in training and evaluation.
  Each layer's filters are split evenly into the groups, so ``resnet_width`` must then be a
  multiple of 4 (the later stages' 2, 4 and 8 times as many follow); with ``batch`` or
  ``none`` any width >= 1 works.
- ``none``: no normalisation.

The hidden activations the remedies see (neuronal decay, L1) are the stem's and every
block's output after its ReLU. Copies are stacked as the CNN's are (grouped convolutions;
a norm over the copies' channels side by side is each copy's own), so a stack equals its
copies alone to float tolerance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stabgap.core.data import DATASETS
from stabgap.core.fields import AT_LEAST_ONE, option
from stabgap.core.models import MODELS, Layer, Model
from stabgap.core.models.cnn import stacked_conv
from stabgap.core.models.layers import dense_layers
from stabgap.core.models.mlp import StackedMLP, default_init
from stabgap.errors import StabgapError

STAGES = (1, 2, 4, 8)  # each stage's filters, in units of resnet_width
BLOCKS = 2  # basic blocks a stage
GROUPS = 4  # group normalisation's groups a layer


def _shape_after(size: int, stride: int) -> int:
    """A 3×3 conv with padding 1 (or 1×1 without) at this stride: ⌈size / stride⌉."""
    return -(-size // stride)


def plan(width: int, input_shape: tuple[int, ...]) -> list[tuple[str, int, int, int, int, int]]:
    """Every convolution in order: (role, in, out, kernel, stride, output size), the
    shortcut after its block's second conv."""
    c_in, size = input_shape[0], input_shape[1]
    out = [("stem", c_in, width, 3, 1, size)]
    c_in = width
    for i, scale in enumerate(STAGES):
        for b in range(BLOCKS):
            stride = 2 if i > 0 and b == 0 else 1
            c_out = width * scale
            size = _shape_after(size, stride)
            out += [("conv1", c_in, c_out, 3, stride, size), ("conv2", c_out, c_out, 3, 1, size)]
            if stride != 1 or c_in != c_out:
                out.append(("shortcut", c_in, c_out, 1, stride, size))
            c_in = c_out
    return out


@MODELS.register
class ResNet(Model):
    """The reduced ResNet-18 (20 base filters in the field's papers)."""

    name = "resnet"
    help = "the field's reduced ResNet-18 (basic blocks, 4 stages, 20 base filters)"
    fields = {
        "resnet_width": (
            int,
            option(
                20,
                "resnet: filters of the first stage (the field's reduced ResNet-18: 20; "
                "torchvision's: 64); the later stages have 2, 4 and 8 times as many. With "
                f"resnet_norm 'group', a multiple of {GROUPS}.",
                **AT_LEAST_ONE,
            ),
        ),
        "resnet_norm": (
            str,
            option(
                "batch",
                "resnet: normalisation after each conv: 'batch' (the papers'; running "
                "statistics used in evaluation), 'group' (4 groups a layer) or 'none'.",
                choices=("batch", "group", "none"),
            ),
        ),
    }
    uses = ("resnet_width", "resnet_norm")

    @classmethod
    def build(cls, config, input_shape, n_classes, generators, device="cpu") -> StackedResNet:
        return StackedResNet(
            input_shape, config.resnet_width, config.resnet_norm, n_classes, generators, device
        )

    @classmethod
    def layers(cls, config, input_shape: tuple[int, ...], n_classes: int) -> list[Layer]:
        """Its convolutions and its linear layer, for the cost model: each conv's MACs
        exact; its norm, the residual additions and the pooling counted as one operation
        per output of each conv (as a bias is), and a ReLU after each but the shortcuts.
        The hidden activations (what ND acts on) are the stem's and each block's output.

        Example:
            >>> from stabgap.core.config import RunConfig
            >>> layers = ResNet.layers(RunConfig(model="resnet"), (3, 32, 32), 10)
            >>> round(sum(l.macs for l in layers) / 1e6, 1)  # the field's ~55 M an image
            54.6
        """
        out = []
        for k, (role, c_in, c_out, kernel, _, size) in enumerate(plan(config.resnet_width,
                                                                         input_shape)):  # fmt: skip
            macs = size * size * c_out * c_in * kernel * kernel
            params = c_out * c_in * kernel * kernel + 2 * c_out * (config.resnet_norm != "none")
            out.append(Layer("conv", macs, c_out * size * size, params, relu=role != "shortcut",
                             first=k == 0, hidden=role in ("stem", "conv2")))  # fmt: skip
        features = config.resnet_width * STAGES[-1]
        return out + dense_layers((features, n_classes), first=False)

    @classmethod
    def describe(cls, config, input_shape: tuple[int, ...], n_classes: int) -> str:
        return (
            f"reduced ResNet-18, {config.resnet_width} base filters, {config.resnet_norm} "
            f"norm, {n_classes} outputs"
        )

    @classmethod
    def check(cls, config) -> None:
        _, h, w = DATASETS[config.dataset].input_shape
        if min(h, w) < 8:  # three stride-2 stages
            raise StabgapError(
                f"invalid config: the ResNet halves its input three times; "
                f"{config.dataset}'s {h}×{w} images are too small"
            )
        # Group norm splits each layer's filters evenly into its groups; the later stages'
        # 2, 4 and 8 times as many then split too. Batch norm and none need no multiple.
        width = config.resnet_width
        if config.resnet_norm == "group" and width % GROUPS:
            near = sorted({max(GROUPS, width // GROUPS * GROUPS), -(-width // GROUPS) * GROUPS})
            raise StabgapError(
                f"invalid config: resnet_norm 'group' splits each layer's filters into "
                f"{GROUPS} groups, so resnet_width must be a multiple of {GROUPS}, got "
                f"{width}: use {' or '.join(map(str, near))}, or resnet_norm 'batch' or 'none'"
            )


class StackedResNet(nn.Module):
    """R reduced ResNet-18s evaluated together.

    Example:
        >>> g = [torch.Generator().manual_seed(s) for s in (1, 2)]
        >>> net = StackedResNet((3, 32, 32), 4, "batch", 10, g)
        >>> logits, hidden = net(torch.rand(2, 5, 3, 32, 32))  # (R, B, C, H, W)
        >>> tuple(logits.shape), len(hidden), tuple(hidden[-1].shape)
        ((2, 5, 10), 9, (2, 5, 32, 4, 4))
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        width: int,
        norm: str,
        n_classes: int,
        generators: list[torch.Generator],
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        self.input_shape, self.norm_kind, r = tuple(input_shape), norm, len(generators)
        self.convs = plan(width, input_shape)
        weights = []
        for _, c_in, c_out, kernel, _, _ in self.convs:
            w = [default_init((c_out, c_in, kernel, kernel), g)[0] for g in generators]
            weights.append(nn.Parameter(torch.stack(w).to(device)))
        self.weights = nn.ParameterList(weights)  # each (R, out, in, k, k)
        self.norms = nn.ModuleList(
            StackedNorm(norm, r, c_out, device) for _, _, c_out, _, _, _ in self.convs
        )
        self.head = StackedMLP((width * STAGES[-1], n_classes), generators, device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) images → logits (R, B, classes), post-ReLU activations."""
        features, hidden = self.body(x)
        return self.output(features), hidden

    def output(self, features: torch.Tensor) -> torch.Tensor:
        """The linear layer: features (R, B, f) → logits (R, B, classes)."""
        return self.head.output(features)

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) images → the pooled features the linear layer reads, post-ReLU
        activations."""
        r, b = x.shape[:2]
        x = x.reshape(r, b, *self.input_shape)
        x = self._conv(x, 0).relu()
        hidden = [x]
        k = 1
        while k < len(self.convs):
            shortcut = k + 2 < len(self.convs) and self.convs[k + 2][0] == "shortcut"
            y = self._conv(x, k).relu()
            y = self._conv(y, k + 1)
            skip = self._conv(x, k + 2) if shortcut else x
            x = (y + skip).relu()
            hidden.append(x)
            k += 3 if shortcut else 2
        return x.mean(dim=(-2, -1)), hidden  # global average pooling: (R, B, channels)

    def _conv(self, x: torch.Tensor, k: int) -> torch.Tensor:
        _, _, _, kernel, stride, _ = self.convs[k]
        out = stacked_conv(x, self.weights[k], None, stride=stride, padding=kernel // 2)
        return self.norms[k](out)


class StackedNorm(nn.Module):
    """Each copy's normalisation of (R, B, C, H, W): the copies' channels side by side are
    normalised per channel (batch) or per group of one copy's channels (group)."""

    def __init__(self, kind: str, r: int, channels: int, device) -> None:
        super().__init__()
        self.kind, self.r = kind, r
        if kind == "none":
            return
        self.weight = nn.Parameter(torch.ones(r, channels, device=device))
        self.bias = nn.Parameter(torch.zeros(r, channels, device=device))
        if kind == "batch":  # running statistics of each copy's channels, side by side
            self.register_buffer("running_mean", torch.zeros(r * channels, device=device))
            self.register_buffer("running_var", torch.ones(r * channels, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "none":
            return x
        r, b, c, h, w = x.shape
        side = x.transpose(0, 1).reshape(b, r * c, h, w)
        weight, bias = self.weight.flatten(), self.bias.flatten()
        if self.kind == "batch":
            out = F.batch_norm(side, self.running_mean, self.running_var, weight, bias,
                               training=self.training, momentum=0.1, eps=1e-5)  # fmt: skip
        else:
            out = F.group_norm(side, GROUPS * r, weight, bias, eps=1e-5)
        return out.reshape(b, r, c, h, w).transpose(0, 1)
