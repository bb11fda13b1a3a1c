"""The reduced ResNet-18: torch's own layers give the same logits, a stack equals its
copies alone, batch norm's statistics stay each copy's own and evaluation leaves them
alone, and the cost model counts its convolutions as torch's FLOP counter does."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import assert_a_stack_equals_its_copies, tiny_config
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from stabgap.core.config import FIELDS, RunConfig
from stabgap.core.models import resnet
from stabgap.core.models.layers import forward_cost
from stabgap.core.models.resnet import StackedResNet, plan
from stabgap.core.train import run_experiment, train_stack

SHAPE = (3, 16, 16)


def resnet_config(**changes) -> RunConfig:
    """A tiny run of the ResNet (which has no dense hidden layers to set)."""
    return tiny_config(model="resnet", hidden=FIELDS["hidden"].default, **changes)


def generators(*seeds):
    return [torch.Generator().manual_seed(s) for s in seeds]


class TorchResNet(nn.Module):
    """The same network from torch's own modules, for one copy, its weights copied in."""

    def __init__(self, stacked: StackedResNet, copy: int, norm: str) -> None:
        super().__init__()
        self.convs, self.norms = nn.ModuleList(), nn.ModuleList()
        for (_, c_in, c_out, k, stride, _), w in zip(stacked.convs, stacked.weights, strict=True):
            conv = nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False)
            conv.weight.data.copy_(w[copy])
            self.convs.append(conv)
            layer = {"batch": nn.BatchNorm2d(c_out), "group": nn.GroupNorm(4, c_out),
                     "none": nn.Identity()}[norm]  # fmt: skip
            self.norms.append(layer)
        self.roles = [role for role, *_ in stacked.convs]
        self.fc = nn.Linear(stacked.head.weights[0].shape[1], stacked.head.weights[0].shape[2])
        self.fc.weight.data.copy_(stacked.head.weights[0][copy].T)
        self.fc.bias.data.copy_(stacked.head.biases[0][copy, 0])

    def forward(self, x):
        def layer(k, x):
            return self.norms[k](self.convs[k](x))

        x, k = F.relu(layer(0, x)), 1
        while k < len(self.convs):
            shortcut = k + 2 < len(self.convs) and self.roles[k + 2] == "shortcut"
            y = layer(k + 1, F.relu(layer(k, x)))
            x = F.relu(y + (layer(k + 2, x) if shortcut else x))
            k += 3 if shortcut else 2
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_torchs_own_layers_give_the_same_logits_in_training_and_evaluation(norm):
    net = StackedResNet(SHAPE, 8, norm, 10, generators(1, 2))
    ref = TorchResNet(net, 1, norm)
    x = torch.rand(2, 6, *SHAPE, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net(x)[0][1], ref(x[1]), rtol=1e-4, atol=1e-5)  # training
    net.eval(), ref.eval()
    torch.testing.assert_close(net(x)[0][1], ref(x[1]), rtol=1e-4, atol=1e-5)  # running stats


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_a_stack_equals_its_copies_alone_and_keeps_each_copys_statistics(norm):
    stacked = StackedResNet(SHAPE, 8, norm, 10, generators(1, 2))
    alone = [StackedResNet(SHAPE, 8, norm, 10, generators(s)) for s in (1, 2)]
    x = torch.rand(2, 5, *SHAPE, generator=torch.Generator().manual_seed(0))
    # float tolerance: a grouped convolution sums in another order than one alone
    assert_a_stack_equals_its_copies(stacked, alone, x)
    for i, net in enumerate(alone):
        for a, b in zip(stacked.buffers(), net.buffers(), strict=True):  # per copy, side by side
            half = len(a) // 2
            torch.testing.assert_close(a[i * half : (i + 1) * half], b, rtol=1e-5, atol=1e-6)


def test_the_cost_model_counts_its_convolutions_as_torch_does():
    config = RunConfig(model="resnet", resnet_width=8)
    layers = resnet.ResNet.layers(config, SHAPE, 10)
    net = StackedResNet(SHAPE, 8, "batch", 10, generators(0))
    with FlopCounterMode(display=False) as counter:
        net(torch.rand(1, 4, *SHAPE))
    assert counter.get_total_flops() == forward_cost(layers, 4, 0).matmul_flops
    assert len(plan(8, SHAPE)) == 1 + 8 * 2 + 3  # stem, 16 convs, 3 shortcuts


def test_evaluation_never_feeds_training_with_batch_norm(small_stream):
    """Evaluated in eval mode, batch norm's running statistics are left alone: the training
    is the same however often the network is evaluated."""
    base = resnet_config(resnet_width=4, batches_per_task=6, batch_size=16, eval_subset=50, seed=3)
    every = run_experiment(base, small_stream)
    sparse = run_experiment(base.replace(eval_every=3), small_stream)
    np.testing.assert_array_equal(every.loss, sparse.loss)
    assert not every.diverged and every.acc.shape == (18, 3)


def test_remedies_and_stacks_run_on_the_resnet(small_stream):
    configs = [
        resnet_config(resnet_width=4, resnet_norm="group", batches_per_task=4, batch_size=8,
                      eval_subset=40, seed=s, decay_lambda=lam, ema_decay=0.9)
        for s, lam in ((1, 0.0), (2, 1e-3))
    ]  # fmt: skip
    stacked = train_stack(configs, small_stream)
    for c, s in zip(configs, stacked, strict=True):
        alone = run_experiment(c, small_stream)
        np.testing.assert_allclose(s.loss, alone.loss, rtol=1e-4)
    assert stacked[1].penalty is not None and stacked[1].penalty.min() > 0  # ND on its blocks


@pytest.mark.parametrize("width", [-4, 0])
def test_a_width_below_one_is_refused(width):
    from stabgap.errors import StabgapError

    with pytest.raises(
        StabgapError, match=f"resnet_width must be a whole number >= 1, got {width}"
    ):
        RunConfig(model="resnet", resnet_width=width)


@pytest.mark.parametrize("width, fix", [(2, "4"), (6, "4 or 8")])
def test_group_norm_needs_a_width_that_is_a_multiple_of_its_groups(width, fix):
    from stabgap.errors import StabgapError

    with pytest.raises(
        StabgapError, match=f"resnet_width must be a multiple of 4, got {width}: use {fix},"
    ):
        RunConfig(model="resnet", resnet_width=width, resnet_norm="group")


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_batch_norm_and_none_take_any_width(norm):
    """Only group norm splits the filters into groups: any width >= 1 builds and runs."""
    config = RunConfig(model="resnet", resnet_width=6, resnet_norm=norm)
    net = resnet.ResNet.build(config, SHAPE, 10, generators(1, 2))
    logits, hidden = net(torch.rand(2, 3, *SHAPE))
    assert tuple(logits.shape) == (2, 3, 10) and hidden[-1].shape[2] == 6 * 8
