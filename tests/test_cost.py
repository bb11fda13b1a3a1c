"""The analytic cost model against torch's own FLOP counter and the reference's numbers."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from stabgap import cost
from stabgap.losses import training_loss
from stabgap.model import StackedMLP
from stabgap.optim import StackedOptimizer
from stabgap.presets import PAPER_BASE

SIZES = [(784, 32, 10), (20, 16, 8, 5), (784, 64, 48, 32, 10), (3, 1, 2)]


# --- the reference's numbers ------------------------------------------------------------
def test_reference_forward_macs_match_thop():
    assert cost.reference_forward_macs() == 2_980_052_992
    assert cost.reference_forward_macs(decay=True) - cost.reference_forward_macs() == 2_097_152
    assert 2 * 2048 * 512 == 2_097_152


def test_nd_forward_overhead_is_0_070_not_0_007_percent():
    o = cost.nd_overhead()
    assert o["forward_macs"] == pytest.approx(100 * 2_097_152 / 2_980_052_992)
    assert round(o["forward_macs"], 3) == 0.070
    # The whole step dilutes ND further: the backward pass and Adam are ND-free work.
    assert 0 < o["step_macs"] < o["forward_macs"]
    assert 0 < o["step_flops"] < o["forward_flops"]


def test_thop_convention_for_other_widths():
    # thop: in_features MACs per output element of each nn.Linear, no bias, no ReLU.
    assert cost.reference_forward_macs((1024, 1024), 512) == 512 * (
        784 * 1024 + 1024 * 1024 + 1024 * 10
    )


# --- against torch.utils.flop_counter ---------------------------------------------------
def _model(sizes: tuple[int, ...], r: int) -> StackedMLP:
    return StackedMLP(sizes, [torch.Generator().manual_seed(s) for s in range(r)])


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("r", [1, 3])
def test_forward_and_backward_matmul_flops_match_flop_counter(sizes, batch, r):
    model = _model(sizes, r)
    x = torch.rand(r, batch, sizes[0])
    y = torch.randint(0, sizes[-1], (r, batch))
    out: dict = {}

    def forward():
        out["logits"], out["hidden"] = model(x)

    def backward():
        training_loss(out["logits"], y, out["hidden"], torch.full((r,), 1e-3))[0].sum().backward()

    assert _flops(forward) == r * cost.forward_cost(sizes, batch).matmul_flops
    assert _flops(backward) == r * cost.backward_cost(sizes, batch).matmul_flops
    # The usual rule: backward = 2 × forward, but for the first layer's input gradient.
    fwd, bwd = cost.forward_cost(sizes, batch), cost.backward_cost(sizes, batch)
    assert bwd.macs == 2 * fwd.macs - batch * sizes[0] * sizes[1]


@pytest.mark.parametrize("sizes", SIZES[:3])
@pytest.mark.parametrize("decay", [False, True])
@pytest.mark.parametrize("kind", ["adam", "sgd"])
def test_full_training_step_matmul_flops_match_flop_counter(sizes, decay, kind):
    r, batch = 2, 16
    model = _model(sizes, r)
    opt = StackedOptimizer(list(model.parameters()), torch.full((r,), 1e-3), kind)
    x = torch.rand(r, batch, sizes[0])
    y = torch.randint(0, sizes[-1], (r, batch))
    lam = torch.full((r,), 1e-4) if decay else None

    def step():
        logits, hidden = model(x)
        loss, _ = training_loss(logits, y, hidden, lam)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()

    expected = cost.total(cost.train_step_costs(sizes, batch, decay, kind))
    assert _flops(step) == r * expected.matmul_flops
    # ND adds MACs and FLOPs but no matrix product.
    plain = cost.total(cost.train_step_costs(sizes, batch, False, kind))
    assert expected.matmul_flops == plain.matmul_flops
    assert (expected.macs - plain.macs) == (2 * batch * sum(sizes[1:-1]) if decay else 0)


# --- the optimiser's elementwise count, from the ops it really runs ---------------------
class ElementwiseFlops(TorchDispatchMode):
    """FLOPs of arithmetic aten ops: output elements × ops per element."""

    PER_ELEMENT = {"add": 1, "sub": 1, "mul": 1, "div": 1, "sqrt": 1, "lerp": 3, "addcmul": 3}

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__.rstrip("_")
        self.flops += self.PER_ELEMENT.get(name, 0) * out.numel()
        return out


@pytest.mark.parametrize(("kind", "momentum"), [("adam", 0.0), ("sgd", 0.0), ("sgd", 0.9)])
def test_optimizer_flops_match_the_ops_it_runs(kind, momentum):
    r, sizes = 3, (20, 16, 8, 5)
    model = _model(sizes, r)
    # Learning rates of their own: the written-out update (with one shared rate, the
    # fused torch.optim kernel runs instead, and its ops are not visible one by one).
    opt = StackedOptimizer(
        list(model.parameters()), torch.tensor([1e-3, 2e-3, 3e-3]), kind, momentum=momentum
    )
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    opt.step()  # SGD's momentum buffer starts as a copy of the first gradient
    with ElementwiseFlops() as counter:
        opt.step()
    expected = r * cost.optimizer_cost(cost.n_parameters(sizes), kind, momentum).flops
    # Adam also divides the (R,) learning rates by its bias correction once per step.
    assert expected <= counter.flops <= expected + r


def test_n_parameters_matches_the_model():
    for sizes in SIZES:
        model = _model(sizes, 1)
        assert cost.n_parameters(sizes) == sum(p.numel() for p in model.parameters())


# --- whole runs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"eval_every": 3},
        {"eval_every": 7, "eval_tasks": "all", "decay_lambda": 1e-5},
        {"replay": "none", "eval_subset": 50, "optimizer": "sgd", "momentum": 0.5},
        {"eval_subset_rounding": "batches", "batch_growth": "always", "replay": "none"},
    ],
)
def test_run_cost_matches_the_matmuls_of_a_real_run(changes, small_stream):
    """The real training loop, run under torch's FLOP counter, against the model."""
    from conftest import tiny_config

    from stabgap.train import run_experiment

    base = dict(hidden=(8, 4), batches_per_task=10, batch_size=6, eval_subset=20)
    config = tiny_config(**{**base, **changes})
    with FlopCounterMode(display=False) as counter:
        run_experiment(config, small_stream)
    predicted = cost.total(cost.run_cost(config, test_size=small_stream.test_size(1)))
    assert counter.get_total_flops() == predicted.matmul_flops


def test_paper_protocol_run_totals():
    per_image = 784 * 2048 + 2048 * 2048 + 2048 * 10  # forward MACs of one image
    run = cost.run_cost(PAPER_BASE)
    # 500 batches of 512·k in task k; evaluations of k tasks × (2048, 2048, 3072) images.
    assert run["forward"].macs == 500 * (512 + 1024 + 1536) * per_image
    assert run["evaluation"].macs == 500 * (2048 + 2 * 2048 + 3 * 3072) * per_image
    nd = cost.run_cost(PAPER_BASE.replace(decay_lambda=1e-5))
    extra = cost.total(nd).macs - cost.total(run).macs
    assert extra == 2 * 500 * (512 + 1024 + 1536) * 2 * 2048  # ND forward + backward
    assert nd["evaluation"] == run["evaluation"]  # evaluation computes no ND


def test_cost_command_prints_the_table(capsys):
    parser = argparse.ArgumentParser()
    cost.add_arguments(parser)
    assert cost.command(parser.parse_args([])) == 0
    text = capsys.readouterr().out
    assert "2,980,052,992" in text and "2,097,152" in text
    assert "+0.0704 % MACs" in text
    assert "run total" in text and "138.319 T" in text
    assert (
        cost.command(
            parser.parse_args(
                ["--hidden", "64,32", "--batch-size", "8", "--task", "2", "--optimizer", "sgd"]
            )
        )
        == 0
    )
    assert "MLP 784-64-32-10, batch 16, sgd" in capsys.readouterr().out
