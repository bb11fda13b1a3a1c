import pytest
import torch
from torch import nn

from stabgap.core.config import RunConfig
from stabgap.core.models.mlp import StackedMLP
from stabgap.core.optim import CopyOptimizer
from stabgap.core.remedies.decay import neuronal_decay, pooled, unit_sum
from stabgap.core.train import cross_entropy


def reference_mlp(seed: int, sizes) -> nn.Sequential:
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


SIZES = (20, 16, 12, 5)


def test_initialisation_is_pytorch_default_for_the_same_seed():
    model = StackedMLP(SIZES, [torch.Generator().manual_seed(s) for s in (7, 8)])
    for copy, seed in enumerate((7, 8)):
        ref = reference_mlp(seed, SIZES)
        linears = [m for m in ref if isinstance(m, nn.Linear)]
        for w, b, lin in zip(model.weights, model.biases, linears, strict=True):
            assert torch.equal(w[copy], lin.weight.T) and torch.equal(b[copy, 0], lin.bias)


@pytest.mark.parametrize("kind,options", [("adam", {}), ("sgd", {"momentum": 0.9})])
def test_stacked_training_matches_torch_optim_per_copy(kind, options):
    """Two copies with different λ and lr follow what nn.Linear + torch.optim would do."""
    seeds, lrs, lambdas = (3, 4), (1e-2, 3e-3), (0.0, 1e-3)
    model = StackedMLP(SIZES, [torch.Generator().manual_seed(s) for s in seeds])
    configs = [RunConfig(optimizer=kind, lr=lr, **options) for lr in lrs]
    opt = CopyOptimizer(list(model.parameters()), configs)
    refs = [reference_mlp(s, SIZES) for s in seeds]
    make = torch.optim.Adam if kind == "adam" else torch.optim.SGD
    ref_opts = [make(r.parameters(), lr=lr, **options) for r, lr in zip(refs, lrs, strict=True)]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        x = torch.randn(2, 8, SIZES[0], generator=g)
        y = torch.randint(0, SIZES[-1], (2, 8), generator=g)
        logits, hidden = model(x)
        loss = cross_entropy(logits, y) + torch.tensor(lambdas) * neuronal_decay(hidden)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        for i, (ref, ref_opt) in enumerate(zip(refs, ref_opts, strict=True)):
            acts, h = [], x[i]
            for m in ref:
                h = m(h)
                if isinstance(m, nn.ReLU):
                    acts.append(h)
            ref_loss = nn.functional.cross_entropy(h, y[i]) + lambdas[i] * sum(
                a.square().sum() for a in acts
            )
            assert loss[i].item() == pytest.approx(ref_loss.item(), rel=1e-5)
            ref_opt.zero_grad()
            ref_loss.backward()
            ref_opt.step()
    for i, ref in enumerate(refs):
        linears = [m for m in ref if isinstance(m, nn.Linear)]
        for w, lin in zip(model.weights, linears, strict=True):
            torch.testing.assert_close(w[i].detach(), lin.weight.T.detach(), rtol=1e-5, atol=1e-6)


def test_neuronal_decay_sum_and_mean():
    h1 = torch.tensor([[[1.0, 0.0], [2.0, 1.0]]])  # (R=1, B=2, 2)
    h2 = torch.tensor([[[3.0], [0.0]]])
    assert neuronal_decay([h1, h2]).item() == 1 + 4 + 1 + 9
    assert neuronal_decay([h1, h2], "mean").item() == (1 + 4 + 1 + 9) / 2


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("shape", [(3, 5, 7), (2, 4, 3, 6, 6)])
def test_neuronal_decays_gradient_is_autograds_of_the_square_to_the_bit(reduction, shape, dtype):
    # ND's own backward (2h·g in one pass) against autograd through h.square(), with a λ
    # per copy and an incoming gradient from the layer above, as in training.
    g = torch.Generator().manual_seed(4)
    h = torch.randn(shape, generator=g).relu_().to(dtype)
    above = torch.randn(shape, generator=g).to(dtype)
    lambdas = torch.tensor([1e-5, 3e-4, 0.7][: shape[0]])
    grads = []
    for penalty in (neuronal_decay, lambda hs, r: pooled(hs, unit_sum(torch.square), r)):
        leaf = h.clone().requires_grad_()
        nd = penalty([leaf, leaf * 2], reduction).float()
        loss = (lambdas * nd).sum() + (leaf * above).sum().float()
        loss.backward()
        grads.append(leaf.grad)
    assert torch.equal(grads[0], grads[1])
    assert torch.autograd.gradcheck(
        lambda x: neuronal_decay([x], reduction), h.double().requires_grad_()
    )


# --- the CNN ---------------------------------------------------------------------------------
def reference_cnn(seed: int, channels=(4, 6), hidden=(12,)) -> nn.Sequential:
    """torch's own layers in the CNN's order, initialised from the same seed."""
    torch.manual_seed(seed)
    layers, c_in, side = [], 1, 28
    for c in channels:
        layers += [nn.Conv2d(c_in, c, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
        c_in, side = c, side // 2
    layers.append(nn.Flatten())
    sizes = (c_in * side * side, *hidden, 10)
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def test_the_cnn_starts_and_computes_as_torchs_own_layers():
    from stabgap.core.models.cnn import StackedCNN

    seeds = (5, 6)
    model = StackedCNN(
        (1, 28, 28), (4, 6), (12,), 10, [torch.Generator().manual_seed(s) for s in seeds]
    )
    x = torch.rand(2, 7, 1, 28, 28)
    logits, hidden = model(x)
    assert [tuple(h.shape) for h in hidden] == [(2, 7, 4, 28, 28), (2, 7, 6, 14, 14), (2, 7, 12)]
    for i, seed in enumerate(seeds):
        ref = reference_cnn(seed)
        convs = [m for m in ref if isinstance(m, nn.Conv2d)]
        for w, conv in zip(model.conv_weights, convs, strict=True):
            assert torch.equal(w[i], conv.weight)  # the same initial weights, to the bit
        # Two copies in one grouped convolution: the same outputs as each alone, to float
        # tolerance (the grouped kernel sums in another order).
        torch.testing.assert_close(logits[i], ref(x[i]), rtol=1e-5, atol=1e-6)
        acts = []
        h = x[i]
        for m in ref:
            h = m(h)
            if isinstance(m, nn.ReLU):
                acts.append(h)
        for ours, theirs in zip(hidden, acts, strict=True):
            torch.testing.assert_close(ours[i], theirs, rtol=1e-5, atol=1e-6)


def test_neuronal_decay_covers_the_conv_feature_maps():
    from stabgap.core.models.cnn import StackedCNN

    model = StackedCNN((1, 28, 28), (3,), (5,), 10, [torch.Generator().manual_seed(1)])
    _, hidden = model(torch.rand(1, 4, 1, 28, 28))
    by_hand = sum(h.square().sum() for h in hidden)
    assert neuronal_decay(hidden).item() == pytest.approx(by_hand.item(), rel=1e-6)
    assert hidden[0].dim() == 5  # a conv map (R, B, C, H, W) is in the penalty


def test_a_stacked_cnn_run_equals_its_runs_alone_to_float_tolerance(small_stream):
    import numpy as np
    from conftest import tiny_config

    from stabgap.core.train import run_experiment, train_stack

    configs = [
        tiny_config(model="cnn", channels=(4,), hidden=(16,), seed=s, decay_lambda=lam)
        for s, lam in ((1, 0.0), (2, 1e-4))
    ]
    stacked = train_stack(configs, small_stream)
    for c, together in zip(configs, stacked, strict=True):
        alone = run_experiment(c, small_stream)
        np.testing.assert_allclose(together.loss, alone.loss, rtol=1e-4)
        assert np.nanmax(np.abs(together.acc - alone.acc)) <= 1.0  # ≤ 2 of 200 images
        assert alone.loss[-10:].mean() < alone.loss[:10].mean() - 0.1  # it learns
