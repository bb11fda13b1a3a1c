import numpy as np
import pytest
import torch
from conftest import tiny_config

from stabgap.core.train import run_experiment, stack_key, train_runs, train_stack
from stabgap.metrics import gap_depth


def test_curves_have_one_point_per_batch_and_nan_before_a_task_starts(small_stream):
    r = run_experiment(tiny_config(seed=1), small_stream)
    assert r.acc.shape == (60, 3) and r.boundaries == (20, 40, 60)
    assert np.isnan(r.acc[:20, 1]).all() and np.isnan(r.acc[:40, 2]).all()
    assert np.isfinite(r.acc[:, 0]).all() and np.isfinite(r.acc[40:]).all()
    # Accuracies are whole counts out of the subset: k / 200 · 100.
    assert np.allclose((r.acc[:, 0] * 2) % 1, 0)
    assert r.acc[19, 0] > r.acc[0, 0] + 10  # 20 batches of real digits: well above chance
    assert r.loss.shape == (60,) and not r.diverged
    assert r.metadata["train_time_s"] > 0 and r.metadata["eval_time_s"] > 0


def test_same_seed_gives_identical_curves_and_another_seed_does_not(small_stream):
    a = run_experiment(tiny_config(seed=5), small_stream)
    b = run_experiment(tiny_config(seed=5), small_stream)
    c = run_experiment(tiny_config(seed=6), small_stream)
    np.testing.assert_array_equal(a.acc, b.acc)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert not np.array_equal(a.acc, c.acc, equal_nan=True)


def test_stacked_runs_equal_the_same_runs_alone(small_stream):
    configs = [tiny_config(seed=1), tiny_config(seed=2, decay_lambda=1e-3), tiny_config(seed=3)]
    stacked = train_stack(configs, small_stream)  # the stacked computation, even on a CPU
    for config, together in zip(configs, stacked, strict=True):
        alone = run_experiment(config, small_stream)
        # On a CPU each copy runs the very kernels it runs alone: equal to the bit. (On a
        # GPU the batched matmul may round differently: equal to float tolerance there.)
        np.testing.assert_array_equal(together.loss, alone.loss)
        np.testing.assert_array_equal(together.acc, alone.acc)
    assert stacked[0].metadata["stacked_runs"] == 3


def test_stacked_runs_with_their_own_learning_rates_equal_them_alone(small_stream):
    """One torch.optim parameter group per copy: a copy's learning rate (or any other
    per-copy hyperparameter) never changes which kernel updates it, so a stack of runs
    with different rates equals the runs alone to the bit."""
    configs = [tiny_config(seed=1, lr=1e-3), tiny_config(seed=2, lr=3e-3, weight_decay=0.01)]
    stacked = train_stack(configs, small_stream)
    for config, together in zip(configs, stacked, strict=True):
        alone = run_experiment(config, small_stream)
        np.testing.assert_array_equal(together.loss, alone.loss)
        np.testing.assert_array_equal(together.acc, alone.acc)


def test_only_per_copy_fields_may_differ_in_a_stack():
    assert stack_key(tiny_config(seed=1, lr=0.1)) == stack_key(tiny_config(decay_lambda=1))
    assert stack_key(tiny_config(sam_rho=0.1)) == stack_key(tiny_config(ema_decay=0.9))
    assert stack_key(tiny_config()) != stack_key(tiny_config(hidden=(16, 16)))
    with pytest.raises(ValueError, match="may differ only in"):
        train_stack([tiny_config(), tiny_config(batch_size=16)])


def test_on_a_cpu_a_stack_is_trained_copy_by_copy(small_stream):
    configs = [tiny_config(seed=1), tiny_config(seed=2, decay_lambda=1e-3)]
    results = train_runs(configs, small_stream)
    assert [r.metadata["stacked_runs"] for r in results] == [1, 1]
    for config, result in zip(configs, results, strict=True):
        np.testing.assert_array_equal(result.acc, run_experiment(config, small_stream).acc)


def test_divergence_is_recorded(small_stream):
    r = run_experiment(tiny_config(optimizer="sgd", lr=1e12), small_stream)
    assert r.diverged


def test_eval_every_thins_the_points_and_all_tasks_fills_them(small_stream):
    r = run_experiment(tiny_config(eval_every=5, eval_tasks="all"), small_stream)
    assert r.eval_steps.tolist() == list(range(0, 60, 5))
    assert r.boundaries == (4, 8, 12)
    assert np.isfinite(r.acc).all()


def test_replay_keeps_task_one_and_no_replay_forgets_it(small_mnist):
    """The science in miniature: without replay task 1 (0°) is forgotten at 160°."""
    from stabgap.core.streams import build_stream

    config = tiny_config(hidden=(64, 64), batches_per_task=60, seed=2)
    stream = build_stream(config, "cpu", small_mnist)
    full = run_experiment(config, stream)
    none = run_experiment(config.replace(replay="none"), stream)
    assert full.acc[-1, 0] > none.acc[-1, 0] + 15
    assert gap_depth(none.acc, none.boundaries, 1, 2) > gap_depth(full.acc, full.boundaries, 1, 2)


def test_bf16_autocast_still_learns(small_stream):
    """Autocast caches its bf16 weight copies until its context exits: a run must not
    keep the first step's weights (it would stay at chance)."""
    r = run_experiment(tiny_config(precision="bf16", seed=1), small_stream)
    assert r.acc[19, 0] > r.acc[0, 0] + 10
    fp32 = run_experiment(tiny_config(seed=1), small_stream)
    assert abs(r.acc[19, 0] - fp32.acc[19, 0]) < 15
    assert not np.array_equal(r.loss, fp32.loss)  # bf16 really was used


def test_fixed_test_subsets_are_scored_like_an_independent_count(small_stream):
    """Point 0 is the untrained model on task 1's fixed subset: recount it by hand."""
    import torch

    from stabgap.core.models.mlp import StackedMLP

    config = tiny_config(seed=4, eval_resample="fixed")
    r = run_experiment(config, small_stream)
    # The run's streams: initialisation from seed·3, test subsets from seed·3 + 2.
    order = torch.randperm(small_stream.test_size(1), generator=torch.Generator().manual_seed(14))
    images = small_stream.test_x[order[:200]].float() / 255
    model = StackedMLP((784, 32, 32, 10), [torch.Generator().manual_seed(12)])
    with torch.no_grad():
        logits, _ = model(images[None])
    correct = (logits[0].argmax(-1) == small_stream.test_y[order[:200]]).sum().item()
    assert r.acc[0, 0] == 100 * correct / 200


def test_reset_optimizer_changes_only_what_follows_a_switch(small_stream):
    kept = run_experiment(tiny_config(seed=1), small_stream)
    reset = run_experiment(tiny_config(seed=1, reset_optimizer=True), small_stream)
    np.testing.assert_array_equal(reset.loss[:20], kept.loss[:20])  # task 1: the same
    np.testing.assert_array_equal(reset.acc[:21], kept.acc[:21])  # up to the first update after
    assert not np.array_equal(reset.loss[21:], kept.loss[21:])


def test_stratified_replay_trains_on_every_task(small_stream):
    r = run_experiment(tiny_config(seed=1, replay="stratified"), small_stream)
    full = run_experiment(tiny_config(seed=1), small_stream)
    assert not r.diverged and r.acc[-1].min() > 30  # every task learnt
    assert not np.array_equal(r.loss[20:], full.loss[20:])  # other batches than full replay


def test_tf32_on_a_cpu_is_fp32(small_stream):
    """A CPU has no TensorFloat-32: a tf32 run there computes exactly as fp32."""
    a = run_experiment(tiny_config(seed=2, precision="tf32"), small_stream)
    b = run_experiment(tiny_config(seed=2), small_stream)
    np.testing.assert_array_equal(a.loss, b.loss)


def test_the_cuda_precision_switch_sets_and_restores_exactly():
    """The GPU-only branch of the precision switch, run on the flags themselves."""
    import torch

    from stabgap.core.device import cuda_matmul_precision

    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    try:
        matmul.fp32_precision = "tf32"  # a process that had switched TF32 on
        with cuda_matmul_precision("ieee"):
            assert matmul.fp32_precision == "ieee"  # fp32 means fp32
        assert matmul.fp32_precision == "tf32"
        with cuda_matmul_precision("tf32"):
            assert matmul.fp32_precision == "tf32"
    finally:
        matmul.fp32_precision = before


def test_bf16_evaluation_leaves_the_training_bit_identical(small_stream, monkeypatch):
    """Evaluation never feeds back into training (its subsets have their own generator),
    so evaluating in bf16 changes no loss of any batch; and bf16 really is used there."""
    from stabgap.core import train

    autocast = []
    real = train.evaluate

    def spy(*args, **kwargs):
        autocast.append(torch.is_autocast_enabled("cpu"))
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "evaluate", spy)
    fp32 = run_experiment(tiny_config(seed=2), small_stream)
    n = len(autocast)
    bf16 = run_experiment(tiny_config(seed=2, eval_precision="bf16"), small_stream)
    np.testing.assert_array_equal(bf16.loss, fp32.loss)
    assert not any(autocast[:n]) and all(autocast[n:]) and len(autocast) == 2 * n
    assert np.nanmax(np.abs(bf16.acc - fp32.acc)) < 5  # only near-ties flip


def test_an_evaluation_window_after_each_switch_adds_points_and_changes_no_training(small_stream):
    """Every batch for the window after a switch, every k-th elsewhere: the same training
    (evaluation never feeds it) and, on fixed subsets, the same accuracy where both measure."""
    from conftest import tiny_config

    from stabgap.core.train import run_experiment

    sparse = tiny_config(seed=3, eval_every=5, eval_resample="fixed")
    windowed = sparse.replace(eval_switch_window=4)
    a, b = run_experiment(sparse, small_stream), run_experiment(windowed, small_stream)
    np.testing.assert_array_equal(a.loss, b.loss)
    assert a.eval_steps.tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]
    assert b.eval_steps.tolist() == [0, 5, 10, 15, 19, 20, 21, 22, 23, 25, 30, 35, 39, 40, 41,
                                     42, 43, 45, 50, 55, 59]  # fmt: skip
    shared = np.isin(b.eval_steps, a.eval_steps)
    np.testing.assert_array_equal(b.acc[shared], a.acc)
    assert [m.task for m in b.metrics] == [m.task for m in a.metrics]  # metrics on steps
