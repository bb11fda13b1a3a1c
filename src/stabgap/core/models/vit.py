"""A small vision transformer (Dosovitskiy et al. 2021), stacked over R copies.

The image is cut into ``vit_patch`` × ``vit_patch`` patches, each flattened and embedded by
one linear layer into ``vit_dim`` features; a learned class token is put in front and a
learned position embedding added. Then ``vit_depth`` pre-norm blocks, each

    x ← x + attention(LN(x))      (``vit_heads`` heads, scaled dot products, softmax)
    x ← x + W₂ GELU(W₁ LN(x))    (an MLP 4 × vit_dim wide, as in ViT)

and a final layer norm; the class token's features go to one linear layer. No dropout.

What the activation remedies act on: the post-activation of each block's MLP (the GELU
output, every token's, ``(R, B, tokens, 4·vit_dim)``). These are a transformer's hidden
units in the poster's sense, the outputs of a nonlinearity that a unit of the layer
produces and the next layer reads; the residual stream is a sum that every block writes
into, not any one layer's units, and the attention weights sum to one per query, so
penalising their size would mean nothing. ND's penalty therefore shrinks what each
block's MLP writes, as it shrinks each hidden layer's output in the MLP. GELU, not ReLU,
as in ViT: its output can be slightly negative, which ND's square and L1's modulus
penalise like any other size.

Initialisation: every linear layer as torch's ``nn.Linear`` (as the other networks here),
the class token and the position embedding from N(0, 0.02²) as in ViT, layer norms at
weight 1 and bias 0. Each copy draws from its own generator, so copies are independent.

Stacking: the linear layers are the MLP's stacked affine maps (one plain matmul per copy
on a CPU, one batched matmul on a GPU), the attention products batch over copies,
examples and heads; so a stack equals its copies alone to float tolerance.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stabgap.core.data import DATASETS
from stabgap.core.fields import AT_LEAST_ONE, option
from stabgap.core.models import MODELS, Layer, Model
from stabgap.core.models.mlp import StackedMLP
from stabgap.errors import StabgapError

MLP_RATIO = 4  # each block's MLP is this many times vit_dim wide (ViT's)
EMBED_STD = 0.02  # the class token's and position embedding's initial scale (ViT's)


@MODELS.register
class ViT(Model):
    """A small vision transformer: patches, a few pre-norm blocks, a class token."""

    name = "vit"
    help = "a small vision transformer (patches, pre-norm blocks, class token)"
    fields = {
        "vit_patch": (
            int,
            option(
                4,
                "vit: side of the square patches, in pixels (must divide the image's).",
                **AT_LEAST_ONE,
            ),  # fmt: skip
        ),
        "vit_dim": (
            int,
            option(
                64, "vit: features of each token (the residual stream's width).", **AT_LEAST_ONE
            ),  # fmt: skip
        ),
        "vit_depth": (
            int,
            option(
                4,
                "vit: transformer blocks (attention, then an MLP 4 × vit_dim wide).",
                **AT_LEAST_ONE,
            ),  # fmt: skip
        ),
        "vit_heads": (
            int,
            option(
                4, "vit: attention heads of each block (must divide vit_dim).", **AT_LEAST_ONE
            ),  # fmt: skip
        ),
    }
    uses = ("vit_patch", "vit_dim", "vit_depth", "vit_heads")

    @classmethod
    def build(cls, config, input_shape, n_classes, generators, device="cpu") -> StackedViT:
        return StackedViT(
            input_shape, config.vit_patch, config.vit_dim, config.vit_depth, config.vit_heads,
            n_classes, generators, device,
        )  # fmt: skip

    @classmethod
    def layers(cls, config, input_shape: tuple[int, ...], n_classes: int) -> list[Layer]:
        """Its matrix products for the cost model, per image: the patch embedding, each
        block's query-key-value map, its two attention products (scores and the weighted
        values: both operands carry gradients, as a layer's input and weight do), its
        output projection and its MLP, and the head on the class token. A layer norm,
        the softmax and the residual additions are counted as one operation per output
        (as a bias is); the GELU as a ReLU is. The norms', class token's and position
        embedding's parameters are counted with the layer they feed.

        Example:
            >>> from stabgap.core.config import RunConfig
            >>> layers = ViT.layers(RunConfig(model="vit"), (1, 28, 28), 10)
            >>> round(sum(l.macs for l in layers) / 1e6, 2)  # 49 patches + the class token
            11.16
        """
        c, h, w = input_shape
        p, d, heads = config.vit_patch, config.vit_dim, config.vit_heads
        tokens = (h // p) * (w // p) + 1
        wide = MLP_RATIO * d

        def dense(fan_in: int, fan_out: int, rows: int, extra: int = 0, relu=False) -> Layer:
            params = fan_in * fan_out + fan_out + extra
            return Layer("dense", rows * fan_in * fan_out, rows * fan_out, params, relu)

        embed = dense(c * p * p, d, tokens - 1, extra=d + tokens * d)  # + class token, positions
        out = [Layer(embed.kind, embed.macs, embed.outputs, embed.params, False, first=True)]
        for _ in range(config.vit_depth):
            out += [
                dense(d, 3 * d, tokens, extra=2 * d),  # + its layer norm
                Layer("attention", tokens * tokens * d, heads * tokens * tokens, 0, False),
                Layer("attention", tokens * tokens * d, tokens * d, 0, False),
                dense(d, d, tokens),
                dense(d, wide, tokens, extra=2 * d, relu=True),
                dense(wide, d, tokens),
            ]
        return out + [dense(d, n_classes, 1, extra=2 * d)]  # the final norm, the head

    @classmethod
    def describe(cls, config, input_shape: tuple[int, ...], n_classes: int) -> str:
        return (
            f"ViT, {config.vit_patch}×{config.vit_patch} patches, {config.vit_depth} blocks "
            f"of {config.vit_dim} features and {config.vit_heads} heads, {n_classes} outputs"
        )

    @classmethod
    def check(cls, config) -> None:
        _, h, w = DATASETS[config.dataset].input_shape
        if h % config.vit_patch or w % config.vit_patch:
            fits = ", ".join(str(p) for p in range(1, min(h, w) + 1) if h % p == 0 == w % p)
            raise StabgapError(
                f"invalid config: vit_patch {config.vit_patch} does not divide "
                f"{config.dataset}'s {h}×{w} images; choose one of {fits}"
            )
        if config.vit_dim % config.vit_heads:
            dim = config.vit_dim
            fits = ", ".join(str(k) for k in range(1, dim + 1) if dim % k == 0)
            raise StabgapError(
                f"invalid config: vit_heads {config.vit_heads} does not divide vit_dim "
                f"{config.vit_dim} (each head takes vit_dim / vit_heads features); choose "
                f"one of {fits}"
            )


class StackedViT(nn.Module):
    """R small vision transformers evaluated together.

    Example:
        >>> g = [torch.Generator().manual_seed(s) for s in (1, 2)]
        >>> net = StackedViT((1, 28, 28), 7, 16, 2, 2, 10, g)
        >>> logits, hidden = net(torch.rand(2, 5, 1, 28, 28))  # (R, B, C, H, W)
        >>> tuple(logits.shape), [tuple(h.shape) for h in hidden]  # 16 patches + class token
        ((2, 5, 10), [(2, 5, 17, 64), (2, 5, 17, 64)])
    """

    def __init__(
        self,
        input_shape: tuple[int, ...],
        patch: int,
        dim: int,
        depth: int,
        heads: int,
        n_classes: int,
        generators: list[torch.Generator],
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        c, h, w = input_shape
        self.input_shape, self.patch = tuple(input_shape), patch
        tokens = (h // patch) * (w // patch) + 1
        self.embed = StackedMLP((c * patch * patch, dim), generators, device)
        self.cls_token = _normal((1, dim), generators, device)  # (R, 1, dim)
        self.position = _normal((tokens, dim), generators, device)  # (R, tokens, dim)
        self.blocks = nn.ModuleList(Block(dim, heads, generators, device) for _ in range(depth))
        self.norm = StackedLayerNorm(len(generators), dim, device)
        self.head = StackedMLP((dim, n_classes), generators, device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) images → logits (R, B, classes), each block's MLP activation."""
        features, hidden = self.body(x)
        return self.output(features), hidden

    def output(self, features: torch.Tensor) -> torch.Tensor:
        """The linear layer: features (R, B, f) → logits (R, B, classes)."""
        return self.head.output(features)

    def body(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """x: (R, B, ...) images → the class token's normalised features the linear layer
        reads, each block's MLP activation."""
        r, b = x.shape[:2]
        c, h, w = self.input_shape
        p = self.patch
        # (R, B, C, H/p, p, W/p, p) → one row per patch, its channels and pixels flattened
        patches = x.reshape(r, b, c, h // p, p, w // p, p).permute(0, 1, 3, 5, 2, 4, 6)
        patches = patches.reshape(r, b * (h // p) * (w // p), c * p * p)
        tokens = self.embed(patches)[0].reshape(r, b, -1, self.cls_token.shape[-1])
        cls = self.cls_token.unsqueeze(1).expand(r, b, 1, -1)
        x = torch.cat([cls.to(tokens.dtype), tokens], dim=2) + self.position.unsqueeze(1)
        hidden = []
        for block in self.blocks:
            x, activation = block(x)
            hidden.append(activation)
        return self.norm(x[:, :, 0]), hidden  # the class token: (R, B, dim)


class Block(nn.Module):
    """One pre-norm transformer block of R copies: attention, then an MLP."""

    def __init__(self, dim: int, heads: int, generators: list[torch.Generator], device) -> None:
        super().__init__()
        r, self.heads = len(generators), heads
        self.norm1 = StackedLayerNorm(r, dim, device)
        self.qkv = StackedMLP((dim, 3 * dim), generators, device)
        self.proj = StackedMLP((dim, dim), generators, device)
        self.norm2 = StackedLayerNorm(r, dim, device)
        self.fc1 = StackedMLP((dim, MLP_RATIO * dim), generators, device)
        self.fc2 = StackedMLP((MLP_RATIO * dim, dim), generators, device)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (R, B, T, dim) → the block's output and its MLP's post-activation."""
        r, b, t, d = x.shape
        per_head = d // self.heads
        qkv = self.qkv(self.norm1(x).reshape(r, b * t, d))[0]
        qkv = qkv.reshape(r, b, t, 3, self.heads, per_head).permute(3, 0, 1, 4, 2, 5)
        q, k, v = qkv.unbind(0)  # each (R, B, heads, T, per_head)
        weights = (q @ k.transpose(-2, -1) * per_head**-0.5).softmax(dim=-1)
        mixed = (weights @ v).transpose(2, 3).reshape(r, b * t, d)
        x = x + self.proj(mixed)[0].reshape(r, b, t, d)
        activation = F.gelu(self.fc1(self.norm2(x).reshape(r, b * t, d))[0])
        x = x + self.fc2(activation)[0].reshape(r, b, t, d)
        return x, activation.reshape(r, b, t, -1)


class StackedLayerNorm(nn.Module):
    """Each copy's layer norm over the last dimension of (R, ..., dim), with its own weight
    and bias."""

    def __init__(self, r: int, dim: int, device) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(r, dim, device=device))
        self.bias = nn.Parameter(torch.zeros(r, dim, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (x.shape[0],) + (1,) * (x.dim() - 2) + (x.shape[-1],)
        normed = F.layer_norm(x, x.shape[-1:], eps=1e-6)
        return normed * self.weight.reshape(shape) + self.bias.reshape(shape)


def _normal(shape: tuple[int, ...], generators: list[torch.Generator], device) -> nn.Parameter:
    """A parameter of each copy drawn from N(0, EMBED_STD²) with the copy's generator."""
    draws = [torch.randn(shape, generator=g) * EMBED_STD for g in generators]
    return nn.Parameter(torch.stack(draws).to(device))
