"""What the network does inside, measured during evaluation, against a recount from its
weights; evaluation on several subsets; the live log and TensorBoard."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import mnist_dir, tiny_config
from torch import nn

from stabgap.core import evaluate as evaluate_module
from stabgap.core.evaluate import activity_points, evaluate
from stabgap.core.remedies import Step
from stabgap.core.streams import pixels
from stabgap.core.train import build_parts, run_experiment, train_step
from stabgap.metrics import gap_depth
from stabgap.studies.records import iter_runs


def by_hand(weights, biases, images: torch.Tensor) -> list[dict]:
    """Each hidden layer's statistics from one copy's weights, with plain nn.Linear layers."""
    out, x = [], images
    for w, b in zip(weights[:-1], biases[:-1], strict=True):
        layer = nn.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            layer.weight.copy_(w.T)
            layer.bias.copy_(b[0])
            x = torch.relu(layer(x))
        on = x > 0
        out.append(
            {
                "active_fraction": on.float().mean().item(),
                "mean_square": x.square().sum(dim=1).mean().item(),
                "dead_fraction": (~on.any(dim=0)).float().mean().item(),
            }
        )
    return out


def test_the_statistics_equal_a_recount_from_the_weights(small_stream):
    config = tiny_config(seed=2, eval_resample="fixed")
    parts = build_parts([config], small_stream, torch.device("cpu"))
    parts.sampler.start_task(2)
    for t in range(5):  # a network that has moved from its start
        train_step(parts, parts.sampler.next(), Step(2, t, t))
    idx = parts.subsets.draw(range(1, 3), 200)  # (1, 2 tasks, 200)
    ev = evaluate(parts.model, small_stream, idx, task=2)
    weights = [w.detach()[0] for w in parts.model.weights]
    biases = [b.detach()[0] for b in parts.model.biases]
    for task in range(2):
        images = pixels(small_stream.test_x[idx[0, task]])
        for layer, expected in enumerate(by_hand(weights, biases, images)):
            assert ev.active[0, task, layer].item() == pytest.approx(expected["active_fraction"])
            assert ev.square[0, task, layer].item() == pytest.approx(
                expected["mean_square"], rel=1e-5
            )
            assert ev.dead[0, task, layer].item() == pytest.approx(expected["dead_fraction"])


def test_a_runs_first_point_is_its_initial_network_on_its_fixed_subset(small_stream):
    """The recorded curves, not just the function: point 0 is the seed's initial network."""
    r = run_experiment(tiny_config(seed=4, eval_resample="fixed"), small_stream)
    order = torch.randperm(small_stream.test_size(1), generator=torch.Generator().manual_seed(14))
    images = pixels(small_stream.test_x[order[:200]])
    torch.manual_seed(12)  # the initialisation stream of seed 4 (seed·3)
    layers = [nn.Linear(784, 32), nn.Linear(32, 32), nn.Linear(32, 10)]
    weights = [lin.weight.detach().T for lin in layers]
    biases = [lin.bias.detach()[None] for lin in layers]
    for layer, expected in enumerate(by_hand(weights, biases, images)):
        for name, value in expected.items():
            assert r.activity[name][0, 0, layer] == pytest.approx(value, rel=1e-5)


def test_several_subsets_pool_and_leave_training_alone(small_stream):
    one = run_experiment(tiny_config(seed=1), small_stream)
    two = run_experiment(tiny_config(seed=1, eval_repeats=2), small_stream)
    np.testing.assert_array_equal(one.loss, two.loss)  # evaluation never feeds training
    assert two.acc_repeats.shape == (2, *two.acc.shape)
    np.testing.assert_allclose(two.acc, two.acc_repeats.mean(axis=0))
    assert not np.array_equal(two.acc_repeats[0], two.acc_repeats[1], equal_nan=True)


def test_a_run_can_be_followed_from_its_live_log_and_tensorboard(tmp_path):
    pytest.importorskip(
        "tensorboard", reason="needs the tensorboard extra: pip install -e '.[tensorboard]'"
    )
    from stabgap.cli import main

    argv = ["run", "--batches-per-task", "30", "--hidden", "16", "--eval-subset", "50", "--quiet",
            "--experiments", "baseline", "--seeds", "1", "--data-dir", mnist_dir(),
            "--tensorboard", "--out", tmp_path / "o"]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    (log,) = (tmp_path / "o" / "logs").glob("*.jsonl")
    header, *lines = [json.loads(line) for line in log.read_text().splitlines()]
    # the run's hyperparameters first: the log exists from the start
    assert header["config"]["batches_per_task"] == 30 and header["run"] == log.stem
    points = [line for line in lines if "accuracy" in line]
    gaps = [line for line in lines if "gap_depth" in line]
    # every 25 batches and at each task's end; near a switch (its first 50 batches) every
    # evaluation point, where a gap of a few batches lives
    batches = [25, 30, *range(31, 91)]
    assert [line["batch"] for line in points] == batches
    assert points[-1]["of"] == 90 and points[-1]["task"] == 3 and len(points[-1]["accuracy"]) == 3
    assert points[0]["accuracy"][1] is None  # task 2 not seen yet
    # each interval's gap depths as it closes: the run's own GD_i,j
    assert [(g["batch"], sorted(g["gap_depth"])) for g in gaps] == [
        (60, ["GD_1,2"]),
        (90, ["GD_1,3", "GD_2,3"]),
    ]
    (run,) = iter_runs(tmp_path / "o")
    assert gaps[-1]["gap_depth"]["GD_1,3"] == pytest.approx(run.measure(gap_depth, 1, 3), abs=1e-3)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (tmp_path / "o" / "tensorboard").iterdir()
    board = EventAccumulator(str(events))
    board.Reload()
    assert [e.step for e in board.Scalars("loss")] == batches
    assert board.Scalars("accuracy/task1")[-1].value == pytest.approx(points[-1]["accuracy"][0])
    # each accuracy at the batch its run's curves give it (the evaluation before that batch)
    assert [line["accuracy_at"] for line in points] == [b - 1 for b in batches]
    curve = {int(s): a for s, a in zip(run.eval_steps, run.acc[:, 0], strict=True)}
    for e in board.Scalars("accuracy/task1"):
        assert e.value == pytest.approx(curve[e.step], abs=1e-3), e.step
    assert [e.step for e in board.Scalars("gap_depth/GD_1,3")] == [90]
    assert board.PluginTagToContent("hparams")  # the config, as the run's hyperparameters


def test_the_statistics_schedule_keeps_every_kth_point_each_switch_and_the_end():
    steps = np.arange(0, 30, 1)  # 3 tasks of 10 batches, evaluated before each
    chosen = np.flatnonzero(activity_points(steps, per_task=10, every=4)).tolist()
    assert chosen == [0, 4, 8, 9, 12, 16, 19, 20, 24, 28, 29]
    assert activity_points(steps, per_task=10, every=1).all()
    assert not activity_points(steps, per_task=10, every=0).any()


def test_sparse_statistics_are_the_dense_ones_at_their_points(small_stream):
    """Statistics at every 3rd point equal those of the same run at every point; the others
    are NaN; the accuracy and the training do not change."""
    dense = run_experiment(tiny_config(seed=5, activity_every=1), small_stream)
    sparse = run_experiment(tiny_config(seed=5, activity_every=3), small_stream)
    none = run_experiment(tiny_config(seed=5, activity_every=0), small_stream)
    np.testing.assert_array_equal(sparse.acc, dense.acc)
    np.testing.assert_array_equal(none.loss, dense.loss)
    assert none.activity == {}
    chosen = activity_points(dense.eval_steps, tiny_config().batches_per_task, 3)
    assert 0 < chosen.sum() < len(chosen)
    for name, values in sparse.activity.items():
        np.testing.assert_array_equal(values[chosen], dense.activity[name][chosen])
        assert np.isnan(values[~chosen]).all()


class _Fixed(nn.Module):
    """A 'network' whose one hidden layer is given: NaN, -0.0 and 0.0 where asked."""

    def __init__(self, hidden: torch.Tensor) -> None:
        super().__init__()
        self.hidden = hidden

    def forward(self, x: torch.Tensor):
        return torch.zeros(*x.shape[:2], 10), [self.hidden]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_active_and_dead_units_are_counted_as_before(small_stream, dtype):
    # Against the earlier formulas (count_nonzero; a maximum over images equal to 0):
    # -0.0 (ReLU of -0.0) is not active; NaN (a diverged network) counts as non-zero.
    g = torch.Generator().manual_seed(4)
    hidden = torch.relu(torch.randn(1, 2 * 50, 30, generator=g)).to(dtype)
    hidden[0, :, 7] = 0.0  # dead on both tasks' subsets
    hidden[0, :50, 3] = -0.0  # dead on task 1's, by -0.0 alone
    hidden[0, :, 5] = 0.0
    hidden[0, 60:62, 5] = float("nan")  # alive on task 2's by NaN alone
    idx = torch.randint(0, 100, (1, 2, 50), generator=g)
    ev = evaluate(_Fixed(hidden), small_stream, idx, task=2)
    per_task = hidden.view(1, 2, 50, 30)
    active = torch.count_nonzero(per_task, dim=(2, 3)).float() / (50 * 30)
    dead = (per_task.amax(dim=2) == 0).float().mean(dim=2)
    assert torch.equal(ev.active[..., 0], active) and torch.equal(ev.dead[..., 0], dead)
    by_rule = ((per_task > 0) | per_task.isnan()).sum(dim=(2, 3)).float() / (50 * 30)
    assert torch.equal(ev.active[..., 0], by_rule)
    assert ev.dead[0, :, 0].tolist() == pytest.approx([3 / 30, 1 / 30])  # units 3, 5, 7; 7


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_gelus_negative_outputs_are_not_active(dtype):
    # A GELU is below zero wherever its input is: those units are idle, as a ReLU's zeros
    # are (counted as non-zero, every GELU unit of a ViT read as active, none dead).
    x = torch.randn(1, 2, 64, 40, generator=torch.Generator().manual_seed(6))
    x[..., 9] = -torch.rand(1, 2, 64)  # a unit whose input is never positive: dead
    counts, _ = evaluate_module.unit_counts_and_norms(nn.functional.gelu(x).to(dtype))
    assert torch.equal(counts, (x > 0).sum(dim=2, dtype=torch.int32))
    assert counts[..., 9].eq(0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_the_statistics_in_slices_are_those_of_the_whole_activations(monkeypatch, dtype):
    # A CPU goes through the activations in cache-sized slices of images; the counts and
    # every image's norm must be the whole computation's to the bit, with slices that do not
    # divide the images evenly and a slice of one image.
    g = torch.Generator().manual_seed(5)
    h = torch.relu(torch.randn(2, 3, 37, 300, generator=g)).to(dtype)
    h[1, 2, 4] = float("nan")
    whole = (
        (h != 0).sum(dim=2, dtype=torch.int32),  # on a ReLU's outputs: the non-zero ones
        torch.linalg.vector_norm(h.float(), dim=3),
    )
    for elements in (1, 2 * 3 * 300 * 5, 2 * 3 * 300 * 16, 10**9):
        monkeypatch.setattr(evaluate_module, "CPU_SLICE", elements)
        counts, norms = evaluate_module.unit_counts_and_norms(h)
        assert torch.equal(counts, whole[0])
        assert torch.equal(norms.isnan(), whole[1].isnan())
        assert torch.equal(norms.nan_to_num(), whole[1].nan_to_num())
