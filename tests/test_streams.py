"""Each stream is what it says: tests that would fail if its construction were wrong."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_config

from stabgap.core.streams import build_stream
from stabgap.core.train import run_experiment
from stabgap.errors import StabgapError


@pytest.fixture(scope="module")
def small(small_mnist):
    return small_mnist


def test_permuted_tasks_are_fixed_permutations_of_mnist(small):
    config = tiny_config(stream="permuted", n_tasks=4)
    stream = build_stream(config, "cpu", small)
    assert stream.n_tasks == 4 and config.task_count == 4
    original = small.train_images.flatten(1)
    n = len(original)
    assert torch.equal(stream.train_x[:n], original)  # task 1: MNIST as it is
    columns = sorted(tuple(c) for c in original.T.tolist())
    for k in range(1, 4):
        task = stream.train_x[k * n : (k + 1) * n]
        assert not torch.equal(task, original)
        # The task's pixel columns are the original's, reordered: one permutation of the
        # pixels shared by every image of the task.
        assert sorted(tuple(c) for c in task.T.tolist()) == columns
    assert torch.equal(stream.train_y, small.train_labels.repeat(4))
    again = build_stream(config, "cpu", small)
    assert torch.equal(again.train_x, stream.train_x)  # fixed: the stream's own seed
    other = build_stream(config.replace(stream_seed=1), "cpu", small)
    assert not torch.equal(other.train_x, stream.train_x)
    first = build_stream(config.replace(permute_first=True), "cpu", small)
    assert not torch.equal(first.train_x[:n], original)


def test_permuted_test_images_share_their_tasks_permutation(small):
    from stabgap.core.streams.permuted import permutations

    config = tiny_config(stream="permuted", n_tasks=3)
    stream = build_stream(config, "cpu", small)
    orders = permutations(config, 784)
    n = len(small.test_labels)
    for k, order in enumerate(orders):
        assert sorted(order.tolist()) == list(range(784))  # a permutation
        assert torch.equal(
            stream.test_x[k * n : (k + 1) * n], small.test_images.flatten(1)[:, order]
        )


@pytest.mark.parametrize("scenario,head", [("class", 10), ("task", 10), ("domain", 2)])
def test_split_tasks_hold_exactly_their_classes(small, scenario, head):
    stream = build_stream(
        tiny_config(stream="split", scenario=scenario, eval_subset=50), "cpu", small
    )
    assert stream.n_tasks == 5 and stream.n_classes == head
    labels = small.train_labels
    for k in range(5):
        lo, hi = stream.train_offsets[k], stream.train_offsets[k + 1]
        wanted = (labels == 2 * k) | (labels == 2 * k + 1)
        assert hi - lo == int(wanted.sum())
        assert torch.equal(stream.train_x[lo:hi], small.train_images[wanted].flatten(1))
        expected = labels[wanted] - (2 * k if scenario == "domain" else 0)
        assert torch.equal(stream.train_y[lo:hi], expected)
    assert stream.train_offsets[-1] == len(labels)


def test_split_scenarios_score_the_right_classes(small):
    logits = torch.zeros(1, 4, 10)
    index = torch.tensor([[0, 10, 10_000, 20_000]])  # samples of tasks 1, 1, ... by offset
    for scenario, task, allowed in (
        ("class", 2, set(range(4))),  # classes of tasks 1-2
        ("task", 3, None),  # each sample's own pair
    ):
        stream = build_stream(
            tiny_config(stream="split", scenario=scenario, eval_subset=50), "cpu", small
        )
        out = stream.restrict(logits, task, index.clamp(max=stream.train_offsets[-1] - 1))
        finite = [set(torch.isfinite(row).nonzero().flatten().tolist()) for row in out[0]]
        if allowed is not None:
            assert all(f == allowed for f in finite)
        else:
            own = stream.task_of(index.clamp(max=stream.train_offsets[-1] - 1))[0].tolist()
            assert finite == [{2 * t, 2 * t + 1} for t in own]


def test_scoring_builds_no_tensor_from_host_lists_after_the_first_batch(small, monkeypatch):
    """On a GPU a tensor made from a Python list is a copy that waits for the device; the
    scenarios' class tables are built once, so later batches make none (and score the
    same)."""
    index = torch.tensor([[0, 10, 10_000, 20_000]])
    made, real = [], torch.tensor
    for scenario in ("class", "task"):
        stream = build_stream(
            tiny_config(stream="split", scenario=scenario, eval_subset=50), "cpu", small
        )
        index = index.clamp(max=stream.train_offsets[-1] - 1)
        first = stream.restrict(torch.zeros(1, 4, 10), 3, index)
        monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(a) or real(*a, **k))
        again = stream.restrict(torch.zeros(1, 4, 10), 3, index)
        monkeypatch.setattr(torch, "tensor", real)
        assert made == [] and torch.equal(first, again)


def test_homogeneous_parts_are_disjoint_and_cover_the_set(small):
    config = tiny_config(stream="homogeneous", n_tasks=3)
    stream = build_stream(config, "cpu", small)
    assert stream.n_tasks == 3
    n = len(small.train_labels) // 3
    assert stream.train_offsets == (0, n, 2 * n, 3 * n)
    # Which original image each stream image is: match on pixels and label.
    rows = {
        (bytes(x.numpy()), int(y)): i
        for i, (x, y) in enumerate(
            zip(small.train_images.flatten(1), small.train_labels, strict=True)
        )
    }
    seen = [
        rows[(bytes(x.numpy()), int(y))]
        for x, y in zip(stream.train_x, stream.train_y, strict=True)
    ]
    assert len(set(seen)) == 3 * n  # disjoint, and together all but the remainder
    parts = [set(seen[k * n : (k + 1) * n]) for k in range(3)]
    assert not (parts[0] & parts[1]) and not (parts[1] & parts[2])
    counts = [
        np.bincount(stream.train_y[k * n : (k + 1) * n].numpy(), minlength=10) for k in range(3)
    ]
    assert all(c.min() > 0.05 * n for c in counts)  # each part holds every digit: one distribution


def test_rotated_mnist_is_unchanged_bit_for_bit(small):
    """The stream of the poster: task k is all of MNIST rotated (fixture tests: test_tasks)."""
    from stabgap.core.streams.rotated import rotate

    stream = build_stream(tiny_config(), "cpu", small)
    n = len(small.train_labels)
    for k, angle in enumerate((0.0, 80.0, 160.0)):
        assert torch.equal(
            stream.train_x[k * n : (k + 1) * n], rotate(small.train_images, angle).flatten(1)
        )


@pytest.mark.parametrize(
    "values,message",
    [
        (
            {"stream": "permuted", "rotations": (0, 90)},
            "rotations applies to stream rotated only; this run has dataset mnist, stream "
            "permuted, model mlp, optimizer adam (leave rotations at its default)",
        ),
        ({"n_tasks": 4}, "n_tasks applies to stream homogeneous, stream permuted only"),
        (
            {"stream": "rotated", "scenario": "class"},
            "supports scenario domain (or auto), not class",
        ),
        ({"classes_per_task": 3}, "classes_per_task applies to stream split only"),
        ({"channels": (4,)}, "channels applies to model cnn only"),
    ],
)
def test_fields_of_another_stream_or_model_are_refused(values, message):
    with pytest.raises(StabgapError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tiny_config(**values)


@pytest.mark.parametrize(
    "stream,extra",
    [
        ("permuted", {"n_tasks": 2}),
        ("split", {"eval_subset": 50}),
        ("split", {"eval_subset": 50, "scenario": "task"}),
        ("split", {"eval_subset": 50, "scenario": "domain"}),
        ("homogeneous", {"n_tasks": 2}),
    ],
)
def test_every_stream_trains_and_is_scored(small, stream, extra):
    config = tiny_config(stream=stream, batches_per_task=10, **extra)
    tasks = build_stream(config, "cpu", small)
    r = run_experiment(config, tasks)
    assert r.acc.shape[1] == config.task_count and not r.diverged
    assert np.isfinite(r.acc[-1]).all() and r.acc[-1].mean() > 20
    assert r.metadata["task_names"] == list(tasks.names)  # the figures' labels


def test_task_incremental_scoring_is_easier_than_class_incremental(small):
    """Scoring only the task's own pair: at least as many right answers as over all seen."""
    base = tiny_config(stream="split", batches_per_task=15, eval_subset=50, seed=3)
    class_il = run_experiment(base, build_stream(base, "cpu", small))
    task_il = run_experiment(
        base.replace(scenario="task"), build_stream(base.replace(scenario="task"), "cpu", small)
    )
    assert task_il.acc[-1].mean() > class_il.acc[-1].mean()


def test_an_evaluation_gathers_pixels_made_once_with_the_same_values():
    # the stream converts its test images once per dtype; a gathered row is the row that
    # converting the gathered uint8 row gives, in bf16 as in float32
    from stabgap.core.streams import TaskStream, pixels, rows

    x = torch.randint(
        0, 256, (50, 12), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    stream = TaskStream(("a",), x, torch.zeros(50), (0, 50), x, torch.zeros(50), (0, 50), 10)
    index = torch.tensor([[3, 49, 0], [7, 7, 20]])
    for dtype in (torch.float32, torch.bfloat16):
        made = stream.test_pixels(dtype)
        assert made is stream.test_pixels(dtype) and made.dtype == dtype
        assert torch.equal(rows(made, index).float(), pixels(rows(x, index), dtype).float())
