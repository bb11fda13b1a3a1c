"""The small vision transformer: torch's own transformer layers give the same logits, a
stack equals its copies alone, the cost model counts its products as torch's FLOP counter
does, and the remedies act on each block's MLP."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_a_stack_equals_its_copies, tiny_config
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stabgap.core.config import FIELDS, RunConfig
from stabgap.core.models.layers import backward_cost, forward_cost
from stabgap.core.models.vit import StackedViT, ViT
from stabgap.core.train import run_experiment, train_stack
from stabgap.errors import StabgapError

SHAPE = (3, 8, 8)
ARGS = dict(patch=4, dim=16, depth=2, heads=4, n_classes=10)  # 4 patches + the class token


def vit_config(**changes) -> RunConfig:
    """A tiny run of the ViT (which has no dense hidden layers to set)."""
    small = dict(vit_patch=7, vit_dim=16, vit_depth=2, vit_heads=2)
    return tiny_config(model="vit", hidden=FIELDS["hidden"].default, **{**small, **changes})


def stacked(*seeds) -> StackedViT:
    return StackedViT(SHAPE, generators=[torch.Generator().manual_seed(s) for s in seeds], **ARGS)


def torch_vit(net: StackedViT, copy: int) -> nn.Module:
    """The same network from torch's own modules (a patchifying conv, pre-norm
    TransformerEncoderLayer, LayerNorm, Linear), one copy's weights copied in."""
    c, d = SHAPE[0], ARGS["dim"]

    def linear(layer, stacked_layer):
        layer.weight.data.copy_(stacked_layer.weights[0][copy].T)
        layer.bias.data.copy_(stacked_layer.biases[0][copy, 0])

    def norm(layer, stacked_norm):
        layer.weight.data.copy_(stacked_norm.weight[copy])
        layer.bias.data.copy_(stacked_norm.bias[copy])

    class Reference(nn.Module):
        def __init__(self):
            super().__init__()
            p = ARGS["patch"]
            self.patches = nn.Conv2d(c, d, p, stride=p)
            self.patches.weight.data.copy_(net.embed.weights[0][copy].T.reshape(d, c, p, p))
            self.patches.bias.data.copy_(net.embed.biases[0][copy, 0])
            self.blocks = nn.ModuleList()
            for block in net.blocks:
                layer = nn.TransformerEncoderLayer(d, ARGS["heads"], 4 * d, dropout=0.0,
                                                   activation="gelu", layer_norm_eps=1e-6,
                                                   batch_first=True, norm_first=True)  # fmt: skip
                attn = layer.self_attn
                attn.in_proj_weight.data.copy_(block.qkv.weights[0][copy].T)
                attn.in_proj_bias.data.copy_(block.qkv.biases[0][copy, 0])
                linear(attn.out_proj, block.proj)
                linear(layer.linear1, block.fc1)
                linear(layer.linear2, block.fc2)
                norm(layer.norm1, block.norm1)
                norm(layer.norm2, block.norm2)
                self.blocks.append(layer)
            self.norm = nn.LayerNorm(d, eps=1e-6)
            norm(self.norm, net.norm)
            self.head = nn.Linear(d, ARGS["n_classes"])
            linear(self.head, net.head)

        def forward(self, x):
            tokens = self.patches(x).flatten(2).transpose(1, 2)  # (B, patches, d), row-major
            cls = net.cls_token[copy].expand(x.shape[0], 1, d)
            x = torch.cat([cls, tokens], dim=1) + net.position[copy]
            for layer in self.blocks:
                x = layer(x)
            return self.head(self.norm(x[:, 0]))

    return Reference()


def test_torchs_transformer_layers_give_the_same_logits():
    net = stacked(1, 2)
    x = torch.rand(2, 6, *SHAPE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for copy in (0, 1):
            ref = torch_vit(net, copy).eval()  # eval: no dropout (there is none anyway)
            torch.testing.assert_close(net(x)[0][copy], ref(x[copy]), rtol=1e-4, atol=1e-5)


def test_a_stack_equals_its_copies_alone():
    net = stacked(1, 2)
    alone = [stacked(s) for s in (1, 2)]
    x = torch.rand(2, 5, *SHAPE, generator=torch.Generator().manual_seed(0))
    assert_a_stack_equals_its_copies(net, alone, x, tol=(1e-5, 1e-6), grad_tol=(1e-4, 1e-5))


def test_the_cost_model_counts_its_products_as_torch_does():
    config = RunConfig(model="vit", vit_patch=4, vit_dim=16, vit_depth=2, vit_heads=4)
    layers = ViT.layers(config, SHAPE, 10)
    net = stacked(0)
    x = torch.rand(1, 3, *SHAPE, requires_grad=False)
    with FlopCounterMode(display=False) as counter:
        net(x)[0].sum().backward()
    assert sum(p.numel() for p in net.parameters()) == sum(layer.params for layer in layers)
    expected = forward_cost(layers, 3, 0).matmul_flops + backward_cost(layers, 3).matmul_flops
    assert counter.get_total_flops() == expected


def test_a_patch_that_does_not_divide_the_image_or_heads_the_features_is_refused():
    with pytest.raises(StabgapError, match="vit_patch 5 does not divide"):
        vit_config(vit_patch=5).check()
    with pytest.raises(StabgapError, match="vit_heads 3 does not divide vit_dim 16"):
        vit_config(vit_heads=3).check()


def test_remedies_and_stacks_run_on_the_vit(small_stream):
    configs = [
        vit_config(batches_per_task=4, batch_size=8, eval_subset=40, seed=s,
                   decay_lambda=lam, ema_decay=0.9)
        for s, lam in ((1, 0.0), (2, 1e-3))
    ]  # fmt: skip
    stack = train_stack(configs, small_stream)
    for c, s in zip(configs, stack, strict=True):
        alone = run_experiment(c, small_stream)
        np.testing.assert_allclose(s.loss, alone.loss, rtol=1e-4)
    assert stack[1].penalty is not None and stack[1].penalty.min() > 0  # ND on the MLPs


@pytest.mark.parametrize("model", ["vit", "resnet"])
def test_bf16_evaluation_runs_on_the_new_models_and_leaves_training_alone(model, small_stream):
    small = {"resnet": dict(resnet_width=4, hidden=FIELDS["hidden"].default)}.get(model, {})
    base = (vit_config() if model == "vit" else tiny_config(model="resnet", **small)).replace(
        batches_per_task=4, batch_size=8, eval_subset=40, seed=4
    )
    fp32 = run_experiment(base, small_stream)
    bf16 = run_experiment(base.replace(eval_precision="bf16"), small_stream)
    np.testing.assert_array_equal(fp32.loss, bf16.loss)  # evaluation never feeds training
    assert np.nanmax(np.abs(fp32.acc - bf16.acc)) <= 10.0  # 40 images: a few flipped at most


def test_a_stack_equals_its_copies_alone_on_the_gpus_batched_path(monkeypatch):
    """The GPU's path (one batched matmul for every copy's linear layers), forced on the
    CPU: a stack of ViTs still equals its copies alone."""
    from stabgap.core.models import mlp

    monkeypatch.setattr(mlp, "BATCHED", True)
    test_a_stack_equals_its_copies_alone()
