"""Every remedy against an independent reference: torch.optim, hand-written steps on
plain nn.Linear networks, the papers' formulas; and stacked = alone for each."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from conftest import tiny_config
from torch import nn

from stabgap.core.config import RunConfig
from stabgap.core.optim import OPTIMIZERS, CopyOptimizer
from stabgap.core.remedies import REMEDIES, Remedies, Remedy, Step
from stabgap.core.streams import pixels
from stabgap.core.train import build_parts, run_experiment, train_stack, train_step
from stabgap.errors import StabgapError

SIZES = (784, 16, 12, 10)


def reference_mlp(seed: int) -> nn.Sequential:
    """The network a copy of this seed starts as: torch's own layers, torch's own init."""
    torch.manual_seed(seed * 3)  # a copy's initialisation stream (train.copy_generators)
    layers = []
    for a, b in zip(SIZES[:-1], SIZES[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def forward(net: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    hidden = []
    for m in net:
        x = m(x)
        if isinstance(m, nn.ReLU):
            hidden.append(x)
    return x, hidden


def linears(net: nn.Sequential) -> list[nn.Linear]:
    return [m for m in net if isinstance(m, nn.Linear)]


def stacked_run(configs, stream, steps: int = 3):
    """Our stacked step, `steps` times in task 1: the parts and the batches it drew."""
    parts = build_parts(configs, stream, torch.device("cpu"))
    parts.sampler.start_task(1)
    parts.remedies.at_switch(1, parts.model, parts.optimizer)
    batches = []
    for t in range(steps):
        batch = parts.sampler.next()
        batches.append(batch)
        train_step(parts, batch, Step(1, t, t))
    return parts, batches


def assert_same_weights(parts, refs, atol=1e-6):
    for i, ref in enumerate(refs):
        for w, b, lin in zip(parts.model.weights, parts.model.biases, linears(ref), strict=True):
            torch.testing.assert_close(w[i].detach(), lin.weight.T.detach(), rtol=1e-5, atol=atol)
            torch.testing.assert_close(b[i, 0].detach(), lin.bias.detach(), rtol=1e-5, atol=atol)


def config(**changes) -> RunConfig:
    return tiny_config(hidden=SIZES[1:-1], optimizer="sgd", lr=0.05, **changes)


# --- loss terms ----------------------------------------------------------------------------
PENALTIES = {
    "nd": (
        {"decay_lambda": 2e-3},
        lambda net, x, h, lam: lam * sum(a.square().sum() for a in h),
    ),
    "nd mean": (
        {"decay_lambda": 2e-2, "decay_reduction": "mean"},
        lambda net, x, h, lam: lam * sum(a.square().sum() for a in h) / x.shape[0],
    ),
    "l1": ({"l1_lambda": 1e-2}, lambda net, x, h, lam: lam * sum(a.abs().sum() for a in h)),
    "l2": (
        {"l2_lambda": 1e-2},
        lambda net, x, h, lam: lam * sum(p.square().sum() for p in net.parameters()),
    ),
}


@pytest.mark.parametrize("name", PENALTIES)
def test_each_loss_term_equals_its_formula_on_plain_layers(name, small_stream):
    settings, penalty = PENALTIES[name]
    strength = next(v for k, v in settings.items() if k.endswith("lambda"))
    strong = config(seed=1, **settings)
    weak = config(
        seed=2, **{k: (v / 4 if k.endswith("lambda") else v) for k, v in settings.items()}
    )
    parts, batches = stacked_run([strong, weak], small_stream)
    for i, (c, lam) in enumerate(((strong, strength), (weak, strength / 4))):
        ref = reference_mlp(c.seed)
        opt = torch.optim.SGD(ref.parameters(), lr=c.lr)
        for batch in batches:
            x, y = pixels(small_stream.train_x[batch[i]]), small_stream.train_y[batch[i]]
            logits, hidden = forward(ref, x)
            loss = nn.functional.cross_entropy(logits, y) + penalty(ref, x, hidden, lam)
            opt.zero_grad()
            loss.backward()
            opt.step()
        for w, b, lin in zip(parts.model.weights, parts.model.biases, linears(ref), strict=True):
            torch.testing.assert_close(w[i].detach(), lin.weight.T.detach(), rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(b[i, 0].detach(), lin.bias.detach(), rtol=1e-5, atol=1e-6)


def test_the_l2_term_is_torch_weight_decay_of_twice_lambda(small_stream):
    """λ·Σw² in the loss moves SGD exactly as torch's weight_decay = 2λ does."""
    parts, _ = stacked_run([config(seed=3, l2_lambda=0.05)], small_stream)
    plain, _ = stacked_run([config(seed=3, weight_decay=0.1)], small_stream)
    for a, b in zip(parts.model.parameters(), plain.model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


# --- optimisers ----------------------------------------------------------------------------
OPTIMIZER_SETTINGS = [
    ({"optimizer": "sgd", "momentum": 0.9}, {"momentum": 0.5}),
    ({"optimizer": "sgd", "momentum": 0.9, "nesterov": True}, {"weight_decay": 0.01}),
    ({"optimizer": "adam"}, {"betas": (0.8, 0.99)}),
    ({"optimizer": "adam", "weight_decay": 0.01}, {}),
    ({"optimizer": "adamw", "weight_decay": 0.1}, {"weight_decay": 0.3}),
    ({"optimizer": "rmsprop"}, {"rms_alpha": 0.9}),
    ({"optimizer": "rmsprop", "momentum": 0.5}, {}),
    ({"optimizer": "adagrad"}, {"weight_decay": 0.01}),
]


@pytest.mark.parametrize("shared,second", OPTIMIZER_SETTINGS)
def test_every_optimizer_equals_torch_optim_per_copy(shared, second):
    """Two copies with their own learning rate (and other options), fed the same
    gradients as two plain parameters under torch.optim, take the same steps."""
    a = RunConfig(lr=1e-2, **shared)
    b = RunConfig(lr=3e-3, **{**shared, **second})
    g = torch.Generator().manual_seed(0)
    start = torch.randn(2, 6, 5, generator=g)
    stacked = nn.Parameter(start.clone())
    ours = CopyOptimizer([stacked], [a, b])
    plain = [nn.Parameter(start[i].clone()) for i in range(2)]
    refs = []
    for p, c in zip(plain, (a, b), strict=True):
        spec = OPTIMIZERS[c.optimizer]
        refs.append(spec.make([p], lr=c.lr, foreach=False, **spec.options(c)))
    for _ in range(5):
        grad = torch.randn(2, 6, 5, generator=g)
        stacked.grad = grad.clone()
        ours.step()
        for i, (p, opt) in enumerate(zip(plain, refs, strict=True)):
            p.grad = grad[i].clone()
            opt.step()
    for i, p in enumerate(plain):
        torch.testing.assert_close(stacked.detach()[i], p.detach(), rtol=1e-6, atol=1e-7)


def test_copy_optimizer_keeps_torchs_state_dict():
    w = nn.Parameter(torch.ones(2, 3))
    opt = CopyOptimizer([w], [RunConfig(optimizer="adam", lr=lr) for lr in (0.1, 0.2)])
    w.sum().backward()
    opt.step()
    state = opt.state_dict()
    assert [g["lr"] for g in state["param_groups"]] == [0.1, 0.2]
    assert len(state["state"]) == 2  # one entry per copy's view


# --- actions at a switch -------------------------------------------------------------------
def test_reset_makes_the_next_update_adams_first_step(small_stream):
    """After a reset, Adam's bias-corrected first step is -lr·g/(|g| + ε) elementwise."""
    c = tiny_config(hidden=SIZES[1:-1], seed=1, reset_optimizer=True, lr=1e-3)
    parts, _ = stacked_run([c], small_stream, steps=3)
    assert parts.optimizer.optimizer.state  # moments built up in task 1
    parts.remedies.at_switch(2, parts.model, parts.optimizer)
    assert not parts.optimizer.optimizer.state  # forgotten
    parts.sampler.start_task(2)
    before = [p.detach().clone() for p in parts.model.parameters()]

    def compute():
        parts.optimizer.zero_grad()
        x = pixels(small_stream.train_x[parts.sampler.next()])
        logits, _ = parts.model(x)
        logits.square().mean().backward()
        return None, None

    compute()
    grads = [p.grad.clone() for p in parts.model.parameters()]
    parts.optimizer.step()
    for p, p0, g in zip(parts.model.parameters(), before, grads, strict=True):
        torch.testing.assert_close(
            p.detach() - p0, -1e-3 * g / (g.abs() + 1e-8), rtol=1e-4, atol=1e-9
        )


def test_switch_learning_rate_factors_by_hand():
    from stabgap.core.remedies.switch_lr import SwitchLearningRate

    warm = tiny_config(switch_lr="warmup", switch_lr_batches=4)
    low = tiny_config(switch_lr="low", switch_lr_batches=2, switch_lr_factor=0.25, lr=2e-3)
    remedy = SwitchLearningRate.__new__(SwitchLearningRate)
    remedy.schedule = "warmup"
    assert [remedy.factor(warm, i, 2) for i in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [remedy.factor(warm, i, 1) for i in range(3)] == [1.0, 1.0, 1.0]  # not task 1
    remedy.schedule = "low"
    assert [remedy.factor(low, i, 3) for i in range(4)] == [0.25, 0.25, 1.0, 1.0]
    w = nn.Parameter(torch.ones(2, 3))
    opt = CopyOptimizer([w], [low, low.replace(lr=1e-3, switch_lr_batches=1)])
    remedy.configs = opt.configs
    remedy.before_step(None, opt, Step(task=2, t=101, t_in_task=1))
    assert [g["lr"] for g in opt.optimizer.param_groups] == [2e-3 * 0.25, 1e-3]


# --- the evaluated weights -------------------------------------------------------------------
def test_ema_is_the_average_of_the_weight_trajectory(small_stream):
    beta = 0.8
    c = config(seed=1, ema_decay=beta)
    plain = config(seed=2)  # β = 0 in the same stack: evaluates its weights
    parts = build_parts([c, plain.replace(ema_decay=0.0)], small_stream, torch.device("cpu"))
    parts.sampler.start_task(1)
    ema = [p.detach()[0].clone() for p in parts.model.parameters()]
    for t in range(4):
        train_step(parts, parts.sampler.next(), Step(1, t, t))
        ema = [
            beta * e + (1 - beta) * p.detach()[0]
            for e, p in zip(ema, parts.model.parameters(), strict=True)
        ]
    evaluated = parts.remedies.evaluated(parts.model)
    for e, avg, live in zip(ema, evaluated.parameters(), parts.model.parameters(), strict=True):
        torch.testing.assert_close(avg[0], e, rtol=1e-5, atol=1e-7)
        assert torch.equal(avg[1], live[1].detach())  # β = 0: the live weights, exactly


# --- update rules ----------------------------------------------------------------------------
def test_sam_equals_the_papers_two_gradient_step(small_stream):
    rhos = (0.05, 0.0)
    configs = [config(seed=1, sam_rho=rhos[0]), config(seed=2, sam_rho=rhos[1])]
    parts, batches = stacked_run(configs, small_stream)
    refs = []
    for i, (c, rho) in enumerate(zip(configs, rhos, strict=True)):
        ref = reference_mlp(c.seed)
        opt = torch.optim.SGD(ref.parameters(), lr=c.lr)
        for batch in batches:
            x, y = pixels(small_stream.train_x[batch[i]]), small_stream.train_y[batch[i]]

            def loss_at_current_weights(ref=ref, opt=opt, x=x, y=y):
                opt.zero_grad()
                nn.functional.cross_entropy(forward(ref, x)[0], y).backward()

            loss_at_current_weights()  # g at w
            grads = [p.grad for p in ref.parameters()]
            norm = torch.sqrt(sum((g**2).sum() for g in grads))
            eps = [rho * g / (norm + 1e-12) for g in grads]
            with torch.no_grad():
                for p, e in zip(ref.parameters(), eps, strict=True):
                    p.add_(e)
            loss_at_current_weights()  # the gradient at w + ε
            with torch.no_grad():
                for p, e in zip(ref.parameters(), eps, strict=True):
                    p.sub_(e)
            opt.step()
        refs.append(ref)
    assert_same_weights(parts, refs)


def test_lpr_preconditions_with_the_papers_matrix(small_stream):
    omega = (2.0, 0.5)
    configs = [
        config(seed=s, lpr_omega=w, lpr_samples=64) for s, w in zip((1, 2), omega, strict=True)
    ]
    parts = build_parts(configs, small_stream, torch.device("cpu"))
    parts.sampler.start_task(2)
    lpr = next(r for r in parts.remedies.all if r.name == "lpr")
    batch = parts.sampler.next()
    lpr.seen.scatter_(1, batch, True)  # as the step will: this batch is seen
    images, counts = lpr.replay_samples()  # (R, 64, pixels): the 64 examples seen
    assert images.shape == (2, 64, 784) and counts.tolist() == [64, 64]
    before = [[p.detach()[i].clone() for p in parts.model.parameters()] for i in range(2)]
    lpr.replay_samples = lambda: (images, counts)  # the same samples for the hand computation
    train_step(parts, batch, Step(2, 0, 0))
    for i, c in enumerate(configs):
        ref = reference_mlp(c.seed)
        with torch.no_grad():
            for p, w in zip(ref.parameters(), _torch_order(before[i]), strict=True):
                p.copy_(w)
        inputs = [images[i]] + forward(ref, images[i])[1]  # each layer's input (64 own images)
        x, y = pixels(small_stream.train_x[batch[i]]), small_stream.train_y[batch[i]]
        nn.functional.cross_entropy(forward(ref, x)[0], y).backward()
        with torch.no_grad():
            for z, lin in zip(inputs, linears(ref), strict=True):
                z1 = torch.cat([z, torch.ones(len(z), 1)], dim=1)
                p = torch.eye(z1.shape[1], dtype=torch.float64) + omega[i] * (
                    z1.T @ z1
                ).double() / len(z1)
                p_inv = torch.inverse(p).float()  # one matrix: LU, in float64
                g = torch.cat([lin.weight.grad, lin.bias.grad[:, None]], dim=1) @ p_inv
                lin.weight -= c.lr * g[:, :-1]
                lin.bias -= c.lr * g[:, -1]
        for w, b, lin in zip(parts.model.weights, parts.model.biases, linears(ref), strict=True):
            torch.testing.assert_close(w[i].detach(), lin.weight.T, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(b[i, 0].detach(), lin.bias, rtol=1e-4, atol=1e-6)


def test_lpr_draws_its_samples_only_from_examples_the_run_has_seen(small_stream):
    """The paper's buffer holds the stream seen so far: never an example not yet trained on
    (drawing from the tasks' whole training sets did)."""
    configs = [config(seed=s, lpr_omega=1.0, lpr_samples=80, lpr_every=1) for s in (1, 2)]
    parts = build_parts(configs, small_stream, torch.device("cpu"))
    lpr = next(r for r in parts.remedies.all if r.name == "lpr")
    seen: list[set] = [set(), set()]
    for task, t in ((1, 0), (1, 1), (1, 2), (2, 3), (2, 4)):
        if t in (0, 3):
            parts.sampler.start_task(task)
        batch = parts.sampler.next()
        for r in range(2):
            seen[r] |= set(batch[r].tolist())
        train_step(parts, batch, Step(task, t, t))
        idx, counts = lpr.replay_indices()
        for r in range(2):
            drawn = idx[r, : counts[r]].tolist()
            assert len(set(drawn)) == len(drawn) == min(80, len(seen[r]))  # without replacement
            assert set(drawn) <= seen[r]


def _torch_order(stacked: list[torch.Tensor]) -> list[torch.Tensor]:
    """Our (in, out) weights and (1, out) biases as nn.Linear's (out, in) and (out,)."""
    ws, bs = stacked[: len(stacked) // 2], stacked[len(stacked) // 2 :]
    return [t for w, b in zip(ws, bs, strict=True) for t in (w.T, b[0])]


# --- stacking, composing, refusing -------------------------------------------------------------
STACKS = {
    "nd": [{"decay_lambda": 1e-3}, {"decay_lambda": 0.0}],
    "l1": [{"l1_lambda": 1e-3}, {"l1_lambda": 1e-4}],
    "l2": [{"l2_lambda": 1e-3}, {"l2_lambda": 0.0}],
    "switch-lr": [
        {"switch_lr": "warmup", "switch_lr_batches": 5},
        {"switch_lr": "warmup", "switch_lr_batches": 10},
    ],
    "ema": [{"ema_decay": 0.9}, {"ema_decay": 0.0}],
    "sam": [{"sam_rho": 0.05}, {"sam_rho": 0.01}],
    "lpr": [
        {"lpr_omega": 1.0, "lpr_every": 7, "lpr_samples": 50},
        {"lpr_omega": 0.1, "lpr_every": 7, "lpr_samples": 50},
    ],
    "reset": [{"reset_optimizer": True, "lr": 1e-3}, {"reset_optimizer": True, "lr": 2e-3}],
}


def test_every_remedy_has_a_stacking_test():
    assert set(STACKS) == set(REMEDIES)


@pytest.mark.parametrize("name", STACKS)
def test_a_stacked_remedy_equals_its_runs_alone(name, small_stream):
    configs = [tiny_config(seed=s, **o) for s, o in zip((1, 2), STACKS[name], strict=True)]
    stacked = train_stack(configs, small_stream)
    for c, together in zip(configs, stacked, strict=True):
        alone = run_experiment(c, small_stream)
        assert together.metadata["remedies"] == list(c.remedies)
        if name == "lpr":  # batched Cholesky rounds unlike one matrix: float tolerance
            np.testing.assert_allclose(together.loss, alone.loss, rtol=1e-5)
            assert np.nanmax(np.abs(together.acc - alone.acc)) <= 1.0  # 2 of 200 images
            continue
        np.testing.assert_array_equal(together.loss, alone.loss)
        np.testing.assert_array_equal(together.acc, alone.acc)


def test_remedies_compose(small_stream):
    both = run_experiment(tiny_config(seed=1, decay_lambda=1e-3, ema_decay=0.9), small_stream)
    nd = run_experiment(tiny_config(seed=1, decay_lambda=1e-3), small_stream)
    assert both.metadata["remedies"] == ["nd", "ema"]
    np.testing.assert_array_equal(both.loss, nd.loss)  # EMA leaves training alone...
    assert not np.array_equal(both.acc, nd.acc)  # ...and changes what is evaluated


def test_two_gradient_rules_are_refused(monkeypatch):
    class Twice(Remedy):
        name = "twice"

        @classmethod
        def active(cls, c):
            return True

        def gradients(self, compute, model):
            compute()
            return compute()

    monkeypatch.setitem(REMEDIES._entries, "twice", Twice)  # registered for this test only
    with pytest.raises(StabgapError, match="sam and twice both compute the gradients"):
        Remedies([tiny_config(sam_rho=0.1)], nn.Linear(1, 1), None, "cpu")
    monkeypatch.delitem(REMEDIES._entries, "twice")
    # a method and a remedy alike, refused when the config is made, before any work
    with pytest.raises(StabgapError, match="invalid config: sam and agem both compute"):
        tiny_config(sam_rho=0.1, agem=True, replay="memory")


@pytest.mark.parametrize(
    "values,message",
    [
        (
            {"lpr_omega": 1.0, "model": "cnn"},
            "remedy lpr needs a network of dense layers only, which this run's dataset mnist, "
            "stream rotated, model cnn, optimizer adam do not offer (model mlp does)",
        ),
        ({"lpr_omega": 1.0, "replay": "none"}, "lpr preconditions with replay data"),
        ({"switch_lr_factor": 0.5}, "switch_lr_factor needs switch_lr 'low'"),
        ({"sam_rho": -1.0}, "sam_rho must be a finite number >= 0"),
        ({"ema_decay": 1.0}, "ema_decay must be a number in [0, 1)"),
        ({"momentum": 0.9}, "momentum applies to optimizer rmsprop, optimizer sgd only"),
        ({"nesterov": True, "optimizer": "sgd"}, "nesterov needs momentum > 0"),
    ],
)
def test_remedy_settings_that_cannot_work_are_refused(values, message):
    with pytest.raises(StabgapError, match=re.escape(message)):
        RunConfig(**values)
