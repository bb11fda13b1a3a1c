"""Shared fixtures: where the shared data lives, and small real task streams."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from stabgap.core.config import RunConfig
from stabgap.core.data import Images
from stabgap.core.data.mnist import load_mnist
from stabgap.core.streams import TaskStream, build_stream

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def mnist_dir() -> Path:
    return Path(os.environ.get("STABGAP_TEST_DATA", SHARED / "data" / "mnist"))


# The tests never download: where $STABGAP_DATA is not set (a fresh clone, the README's
# command as written), the CLI they start reads the shared copy of MNIST beside the clone.
os.environ.setdefault("STABGAP_DATA", str(mnist_dir()))


def reference_dir() -> Path:
    return Path(os.environ.get("STABGAP_TEST_REFERENCE", SHARED / "reference"))


@pytest.fixture(scope="session")
def mnist() -> Images:
    return load_mnist(mnist_dir())


@pytest.fixture(scope="session")
def small_mnist(mnist: Images) -> Images:
    """The first 3,000 training and 1,000 test images: real digits, fast runs."""
    return Images(
        mnist.train_images[:3000],
        mnist.train_labels[:3000],
        mnist.test_images[:1000],
        mnist.test_labels[:1000],
        mnist.n_classes,
    )


def tiny_config(**changes) -> RunConfig:
    """A run of a few seconds: narrow MLP, short tasks, small evaluation subsets."""
    base = dict(
        hidden=(32, 32),
        batches_per_task=20,
        batch_size=32,
        eval_subset=200,
        data_dir=str(mnist_dir()),
    )
    return RunConfig(**{**base, **changes})


def assert_a_stack_equals_its_copies(stack, alone, x, tol=(1e-4, 1e-5), grad_tol=(1e-3, 1e-4)):
    """A stacked network's logits, hidden activations and gradients, copy by copy, against
    the same networks alone (`alone[i]`, one copy each) on the same images x (R, B, ...), to
    float tolerance (rtol, atol): a stack sums in other orders than its copies alone."""
    logits, hidden = stack(x)
    logits.square().sum().backward()
    for i, net in enumerate(alone):
        own, own_hidden = net(x[i : i + 1])
        own.square().sum().backward()
        torch.testing.assert_close(logits[i], own[0], rtol=tol[0], atol=tol[1])
        for h, o in zip(hidden, own_hidden, strict=True):
            torch.testing.assert_close(h[i], o[0], rtol=tol[0], atol=tol[1])
        for a, b in zip(stack.parameters(), net.parameters(), strict=True):
            torch.testing.assert_close(a.grad[i], b.grad[0], rtol=grad_tol[0], atol=grad_tol[1])


@pytest.fixture
def small_stream(small_mnist: Images) -> TaskStream:
    return build_stream(tiny_config(), "cpu", small_mnist)


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(2)


def swept_and_alone(tmp_path: Path, settings: dict, grid: dict, seeds=(1, 2)) -> list[tuple]:
    """The quick preset's baseline, narrowed by `settings`, swept over `grid` on two worker
    processes, and each of its runs trained alone in this process: (swept record, alone
    result) pairs in the plan's order, for a test that they are the same runs."""
    from stabgap.core.train import run_experiment
    from stabgap.studies.plan import study_spec
    from stabgap.study import run_spec

    settings = {"hidden": [8], "eval_subset": 50, "data_dir": str(mnist_dir()), **settings}
    values = {"preset": "quick", "experiments": ["baseline"], "seeds": list(seeds)}
    spec = study_spec({**values, "set": settings, "grid": grid})
    swept = run_spec(spec, tmp_path / "sweep", workers=2, plot=False)
    return [
        (record, run_experiment(planned.config))
        for planned, record in zip(spec.plan(), swept, strict=True)
    ]
