"""Every branch a GPU takes, forced on a CPU (docs/performance.md lists them)."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest
import torch
from conftest import tiny_config

from stabgap.core.config import RunConfig
from stabgap.core.device import Stopwatch
from stabgap.core.evaluate import EvalSubsets
from stabgap.core.models import mlp
from stabgap.core.streams import TaskStream
from stabgap.core.train import run_experiment, train_stack


def test_the_batched_matmul_path_stacks_to_float_tolerance(small_stream, monkeypatch):
    configs = [tiny_config(seed=s) for s in (1, 2)]
    alone = [run_experiment(c, small_stream) for c in configs]
    monkeypatch.setattr(mlp, "BATCHED", True)  # the GPU's baddbmm, on the CPU
    stacked = train_stack(configs, small_stream)
    for a, s in zip(alone, stacked, strict=True):
        np.testing.assert_allclose(s.loss, a.loss, rtol=1e-4)
        assert np.nanmax(np.abs(s.acc - a.acc)) <= 1.0


def test_the_gpus_way_of_drawing_test_subsets(small_stream):
    """Uniform keys and their m smallest: m distinct images of the right task each time."""
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    subsets = EvalSubsets(tiny_config(), small_stream, gens, keys=True)
    idx = subsets.draw(range(1, 4), 150)  # (R, T, m)
    assert idx.shape == (2, 3, 150)
    off = small_stream.test_offsets
    for t in range(3):
        part = idx[:, t]
        assert bool(((part >= off[t]) & (part < off[t + 1])).all())
        assert all(len(row.unique()) == 150 for row in part)
    again = subsets.draw(range(1, 4), 150)
    assert not torch.equal(idx, again)  # fresh subsets
    first = EvalSubsets(tiny_config(), small_stream, [torch.Generator().manual_seed(1)], keys=True)
    assert torch.equal(first.draw(range(1, 4), 150)[0], idx[0])  # a copy's own stream
    # Uniform: over many draws every image of task 1 is chosen about equally often.
    counts = torch.zeros(off[1], dtype=torch.long)
    for _ in range(200):
        counts += torch.bincount(first.draw(range(1, 2), 100)[0, 0], minlength=off[1])
    expected = 200 * 100 / off[1]
    assert counts.float().std() < 0.25 * expected + 3 * expected**0.5


def test_the_gpus_way_keeps_each_task_within_its_own_images():
    """Tasks of unequal size (split MNIST's are): keys past a task's end are never chosen,
    in 'fresh' and in 'fixed' subsets, for every copy of a stack."""
    z = torch.zeros(8, 1, dtype=torch.uint8)
    stream = TaskStream(("a", "b"), z, torch.zeros(8), (0, 3, 8), z, torch.zeros(8), (0, 3, 8), 2)
    for resample in ("fresh", "fixed"):
        config = RunConfig(rotations=(0, 90), eval_resample=resample)
        gens = [torch.Generator().manual_seed(s) for s in range(4)]
        subsets = EvalSubsets(config, stream, gens, keys=True)
        for _ in range(20):
            idx = subsets.draw(range(1, 3), 3)  # (R=4, T=2, m=3)
            assert idx.is_contiguous()
            assert all(sorted(row.tolist()) == [0, 1, 2] for row in idx[:, 0])
            assert bool(((idx[:, 1] >= 3) & (idx[:, 1] < 8)).all())
            assert all(len(row.unique()) == 3 for row in idx[:, 1])


def test_drawing_test_subsets_builds_no_tensor_from_host_lists(small_stream, monkeypatch):
    """A tensor made from a Python list at every evaluation was, on an H200, a copy that
    waited for the GPU once per copy per batch; the tables are built once, up front."""
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    subsets = EvalSubsets(tiny_config(), small_stream, gens, keys=True)
    made = []
    real = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(a) or real(*a, **k))
    subsets.draw(range(1, 4), 150)
    assert made == []


class FakeEvent:
    """A CUDA event's interface over the wall clock: records, then measures."""

    def __init__(self, enable_timing: bool = False) -> None:
        self.at = None

    def record(self) -> None:
        self.at = time.perf_counter()

    def elapsed_time(self, end: FakeEvent) -> float:
        return (end.at - self.at) * 1000  # milliseconds, as CUDA's


def test_the_stopwatchs_event_path():
    watch = Stopwatch(torch.device("cpu"), event=FakeEvent)
    for _ in range(3):
        with watch("eval"):
            time.sleep(0.01)
    assert len(watch.events["eval"]) == 3  # kept, not read, until the end
    totals = watch.totals()
    assert 0.03 <= totals["eval"] < 0.5 and not watch.events


def test_stacks_are_sized_by_memory():
    from stabgap.cost.flops import run_memory
    from stabgap.studies.presets import PAPER_BASE
    from stabgap.studies.sweep import MAX_GPU_STACK, default_stack_size

    wide = PAPER_BASE.replace(hidden=[4096, 4096])
    per_copy = run_memory(wide)
    assert default_stack_size(wide, free_bytes=10 * per_copy) == 8  # 80 % of 10 copies
    assert default_stack_size(wide, free_bytes=10**15) == MAX_GPU_STACK
    assert default_stack_size(wide, free_bytes=1) == 1
    assert default_stack_size(PAPER_BASE.replace(device="cpu")) == 1


# Ops that make a GPU wait for the host: reading a value (item(), float(), bool() of a
# tensor) and sizing a result by the data (nonzero, masked_select, unique).
SYNCING = ("aten::_local_scalar_dense", "aten::nonzero", "aten::masked_select", "aten::unique")


def _syncing_ops(config, stream) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        train_stack([config], stream)
    return sum(e.count for e in prof.key_averages() if e.key in SYNCING)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"decay_lambda": 1e-4, "sam_rho": 0.05, "momentum": 0.9},
        {"ema_decay": 0.9, "switch_lr": "warmup", "l1_lambda": 1e-5},
        {"replay": "memory", "er_ace": True, "der_alpha": 0.3, "der_beta": 0.5},
        {"replay": "memory", "memory": "task-balanced", "agem": True, "lwf_lambda": 1.0},
        {"replay": "none", "memory_size": 50, "agem": True, "ewc_lambda": 10.0},
    ],
)
def test_nothing_waits_for_the_host_per_batch(small_stream, changes, monkeypatch):
    """The profiler's trace of a CPU run: the ops that would make a GPU wait for the host
    do not grow with the number of batches (a few at the start and the end at most).

    With SGD: torch's Adam reads its step count with item() every step, but torch keeps
    that count in a CPU tensor for this very reason, so on a GPU it waits for nothing."""
    from stabgap.core import train

    monkeypatch.setattr(mlp, "BATCHED", True)  # the GPU's ways, on the CPU
    monkeypatch.setattr(train, "EvalSubsets", functools.partial(EvalSubsets, keys=True))
    short = tiny_config(batches_per_task=10, optimizer="sgd", lr=0.05, **changes)
    long = short.replace(batches_per_task=30)
    assert _syncing_ops(long, small_stream) == _syncing_ops(short, small_stream)
