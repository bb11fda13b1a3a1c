import torch
from conftest import tiny_config

from stabgap.core.evaluate import EvalSubsets
from stabgap.core.replay import BatchSampler


def sampler(stream, seed=0, **changes):
    config = tiny_config(**changes)
    return BatchSampler(config, stream, [torch.Generator().manual_seed(seed)])


def test_no_replay_draws_only_the_current_task(small_stream):
    s = sampler(small_stream, replay="none")
    off = small_stream.train_offsets
    s.start_task(2)
    batch = s.next()
    assert batch.shape == (1, 32)
    assert bool(((batch >= off[1]) & (batch < off[2])).all())


def test_full_replay_is_uniform_over_the_union_and_grows_the_batch(small_stream):
    s = sampler(small_stream, replay="full")
    s.start_task(3)
    drawn = torch.cat([s.next()[0] for _ in range(50)])
    assert s.batch_size == 96
    task_of = torch.bucketize(drawn, torch.tensor(small_stream.train_offsets[1:]), right=True)
    counts = torch.bincount(task_of, minlength=3).float() / len(drawn)
    assert bool((counts - 1 / 3).abs().max() < 0.05)  # about a third from each task


def test_stratified_takes_an_equal_share_from_each_task(small_stream):
    s = sampler(small_stream, replay="stratified")
    s.start_task(3)
    for _ in range(5):
        batch = s.next()[0]
        task_of = torch.bucketize(batch, torch.tensor(small_stream.train_offsets[1:]), right=True)
        assert torch.bincount(task_of, minlength=3).tolist() == [32, 32, 32]


def test_a_pass_covers_every_sample_once_and_keeps_the_small_last_batch(small_stream):
    s = sampler(small_stream, replay="none", batch_size=1000)
    s.start_task(1)
    sizes, seen = [], []
    for _ in range(3):  # 3,000 samples: batches of 1000, 1000, 1000
        b = s.next()[0]
        sizes.append(len(b))
        seen.append(b)
    assert sizes == [1000, 1000, 1000]
    assert torch.equal(torch.cat(seen).sort().values, torch.arange(3000))
    s = sampler(small_stream, replay="none", batch_size=800)
    s.start_task(1)
    assert [len(s.next()[0]) for _ in range(4)] == [800, 800, 800, 600]
    s = sampler(small_stream, replay="none", batch_size=800, drop_last=True)
    s.start_task(1)
    assert [len(s.next()[0]) for _ in range(4)] == [800, 800, 800, 800]


def test_cycle_repeats_the_tasks_order_and_reshuffle_does_not(small_stream):
    for order, same in (("cycle", True), ("reshuffle", False)):
        s = sampler(small_stream, replay="none", batch_size=1000, batch_order=order)
        s.start_task(1)
        first = torch.cat([s.next()[0] for _ in range(3)])
        second = torch.cat([s.next()[0] for _ in range(3)])
        assert torch.equal(first, second) is same


def test_fresh_and_fixed_test_subsets(small_stream):
    gens = [torch.Generator().manual_seed(1)]
    fresh = EvalSubsets(tiny_config(), small_stream, gens)
    a, b = fresh.draw(range(1, 3), 100), fresh.draw(range(1, 3), 100)
    assert a.shape == (1, 2, 100) and not torch.equal(a, b)
    assert len(a[0, 0].unique()) == 100  # without replacement
    off = small_stream.test_offsets
    assert bool(((a[0, 1] >= off[1]) & (a[0, 1] < off[2])).all())
    fixed = EvalSubsets(tiny_config(eval_resample="fixed"), small_stream, gens)
    a, b = fixed.draw(range(1, 3), 100), fixed.draw(range(1, 3), 100)
    assert torch.equal(a, b)
    assert torch.equal(fixed.draw(range(1, 3), 150)[..., :100], a)  # nested subsets
