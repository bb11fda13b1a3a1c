"""The bounded replay memories and the continual-learning methods, each against an
independent reference: the sequential reservoir rule, shares counted by hand, and every
method's step written out on plain nn.Linear networks from its paper's formula."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import tiny_config
from test_remedies import SIZES, forward, linears, reference_mlp
from torch import nn

from stabgap.core.config import RunConfig
from stabgap.core.memories.class_balanced import ClassBalanced
from stabgap.core.memories.reservoir import Reservoir
from stabgap.core.memories.task_balanced import TaskBalanced
from stabgap.core.remedies import Step
from stabgap.core.streams import TaskStream, build_stream, pixels
from stabgap.core.train import (
    build_parts,
    draw_batch,
    run_experiment,
    stored_logits,
    train_stack,
    train_step,
)
from stabgap.errors import StabgapError
from stabgap.seeds import derive_seed

CPU = torch.device("cpu")


def toy_stream(labels: list[list[int]]) -> TaskStream:
    """Tasks of the given labels (one list a task), images all zero."""
    y = torch.tensor([c for task in labels for c in task])
    offsets = tuple(np.cumsum([0] + [len(t) for t in labels]).tolist())
    z = torch.zeros(len(y), 1, dtype=torch.uint8)
    names = tuple(f"t{k}" for k in range(len(labels)))
    return TaskStream(names, z, y, offsets, z, y, offsets, 10)


# --- the memories ------------------------------------------------------------------------------
def test_reservoir_equals_the_sequential_rule_one_example_at_a_time():
    """Offered in batches, the slots are those of Vitter's rule applied one by one with the
    same uniform draws: a later example of a batch wins a slot two of them drew."""
    cfg = RunConfig(replay="memory", memory_size=7, batch_size=5)
    memory = Reservoir(cfg, toy_stream([[0] * 40]), [3], CPU)
    g = torch.Generator().manual_seed(derive_seed(3, "memory"))
    slots, n = [None] * 7, 0
    for start in range(0, 40, 5):
        memory.offer(torch.arange(start, start + 5).view(1, 5), None)
        for i, u in enumerate(torch.rand(5, generator=g, dtype=torch.float64).tolist()):
            j = n if n < 7 else int(u * (n + 1))
            if j < 7:
                slots[j] = start + i
            n += 1
    assert memory.slots[0].tolist() == slots
    assert memory.filled == 7


def test_reservoir_keeps_every_example_offered_with_the_same_probability():
    cfg = RunConfig(replay="memory", memory_size=20, batch_size=16)
    seen = np.zeros(4)
    for seed in range(300):
        memory = Reservoir(cfg, toy_stream([[0] * 200]), [seed], CPU)
        for start in range(0, 192, 16):
            memory.offer(torch.arange(start, start + 16).view(1, 16), None)
        seen += np.bincount(memory.slots[0].numpy() // 48, minlength=4)
    # 192 offered, 20 kept: each quarter of the stream holds 5 slots on average (± 0.13 sd).
    np.testing.assert_allclose(seen / 300, 5.0, atol=0.5)


def test_task_balanced_gives_each_task_an_equal_share_drawn_from_its_own_examples():
    stream = toy_stream([[0] * 30, [1] * 30, [2] * 30])
    memory = TaskBalanced(RunConfig(replay="memory", memory_size=10), stream, [1, 2], CPU)
    assert memory.draw() is None  # empty through task 1
    memory.end_task(1, None)
    first = memory.slots[:, :10].clone()
    assert memory.filled == 10 and bool((first < 30).all())
    assert all(len(row.unique()) == 10 for row in first)  # without replacement
    memory.end_task(2, None)
    assert memory.content()[:, :, :3].sum(axis=2).tolist() == [[5, 5, 0]] * 2
    assert set(memory.slots[0, :5].tolist()) <= set(first[0].tolist())  # kept, not redrawn
    memory.end_task(3, None)
    assert memory.content()[0].sum(axis=1).tolist() == [4, 3, 3]  # remainder to the first
    assert not torch.equal(memory.slots[0], memory.slots[1])  # each copy its own draw


def test_class_balanced_shares_each_class_and_splits_a_class_among_its_tasks():
    split = toy_stream([[0] * 20 + [1] * 20, [2] * 20 + [3] * 20])
    memory = ClassBalanced(RunConfig(replay="memory", memory_size=10), split, [0], CPU)
    memory.end_task(1, None)
    assert memory.content()[0, 0, :2].tolist() == [5, 5]
    memory.end_task(2, None)
    assert memory.content()[0].sum(axis=0)[:4].tolist() == [3, 3, 2, 2]  # 10 / 4 classes
    # A class shown by two tasks, 30 and 10 of its examples: its share split 3 : 1.
    rotated = toy_stream([[0] * 30 + [1] * 30, [0] * 10 + [1] * 10])
    memory = ClassBalanced(RunConfig(replay="memory", memory_size=16), rotated, [0], CPU)
    memory.end_task(1, None)
    memory.end_task(2, None)
    assert memory.content()[0, :, :2].tolist() == [[6, 6], [2, 2]]


def test_a_memory_is_refused_where_no_run_keeps_one():
    with pytest.raises(StabgapError, match="memory_size applies to a run that keeps"):
        RunConfig(memory_size=500)
    with pytest.raises(StabgapError, match="er_ace replays from the bounded memory"):
        RunConfig(er_ace=True)
    assert RunConfig(agem=True, memory_size=50).keeps_memory  # a method that draws


@pytest.mark.parametrize(
    ("memory", "fields"),
    [
        ("reservoir", {"der_alpha": 0.3}),  # DER: the stored logits too
        ("task-balanced", {}),
        ("class-balanced", {}),
    ],
)
def test_a_memory_larger_than_the_run_can_fill_keeps_what_one_just_large_enough_keeps(
    memory, fields, small_mnist
):
    """A memory size with zeros too many (10^12) trains the run a memory of exactly what
    the run can keep trains, and allocates only that, where it exhausted the machine."""
    base = tiny_config(
        stream="split",
        batches_per_task=4,
        batch_size=8,
        eval_every=2,
        eval_subset=50,
        replay="memory",
        memory=memory,
        **fields,
    )
    stream = build_stream(base, "cpu", small_mnist)
    # Everything the run can keep: each training example once; the reservoir keeps repeats.
    most = 5 * 4 * 8 if memory == "reservoir" else stream.train_offsets[-1]
    huge, exact = (run_experiment(base.replace(memory_size=m), stream) for m in (10**12, most))
    np.testing.assert_array_equal(huge.acc, exact.acc)
    np.testing.assert_array_equal(huge.loss, exact.loss)
    assert huge.metadata["memory"] == exact.metadata["memory"]
    parts = build_parts([base.replace(memory_size=10**12)], stream, CPU)
    assert parts.memory.slots.shape == (1, most)


# --- each method's step against its formula, on plain layers -----------------------------------
def split_config(**changes) -> RunConfig:
    return tiny_config(
        stream="split",
        hidden=SIZES[1:-1],
        optimizer="sgd",
        lr=0.05,
        batch_size=8,
        eval_subset=100,
        **changes,
    )


def recorded_run(configs, stream, steps=(4, 4)):
    """The loop's steps through the first tasks (`steps` in each), recording each step's
    batch and every draw from the memory, if the runs keep one (the examples and the
    logits stored with them, as they were then)."""
    parts = build_parts(configs, stream, CPU)
    memory, log = parts.memory, []
    if memory is not None:
        draw = memory.draw

        def recording(generators=None):
            drawn = draw(generators)
            if drawn is not None:
                logits = None if memory.logits is None else memory.stored_logits(drawn).clone()
                log[-1]["draws"].append((memory.examples(drawn).clone(), logits))
            return drawn

        memory.draw = recording
    t = 0
    for task, n in enumerate(steps, start=1):
        if task > 1 and memory is not None:
            memory.end_task(task - 1, lambda index: stored_logits(parts, index))
        parts.sampler.start_task(task)
        parts.remedies.at_switch(task, parts.model, parts.optimizer)
        for _ in range(n):
            log.append({"task": task, "draws": []})
            batch = draw_batch(parts)
            log[-1]["batch"] = batch
            train_step(parts, batch, Step(task, t, t))
            t += 1
    return parts, log


def restrict(logits, task, stream):
    """The class scenario by hand: classes of tasks after `task` are not scored."""
    seen = [c for k in range(task) for c in stream.task_classes[k]]
    mask = torch.full((logits.shape[-1],), float("-inf"))
    mask[seen] = 0.0
    return logits + mask


def ce(net, stream, index, task):
    x, y = pixels(stream.train_x[index]), stream.train_y[index]
    return nn.functional.cross_entropy(restrict(forward(net, x)[0], task, stream), y)


def assert_copy_matches(parts, i, ref):
    for w, b, lin in zip(parts.model.weights, parts.model.biases, linears(ref), strict=True):
        torch.testing.assert_close(w[i].detach(), lin.weight.T.detach(), rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(b[i, 0].detach(), lin.bias.detach(), rtol=1e-4, atol=1e-6)


@pytest.fixture
def split_stream(small_mnist):
    return build_stream(split_config(), "cpu", small_mnist)


def sgd_replay(configs, stream, log, loss_of):
    """Each copy's reference: SGD on loss_of(net, i, step record)."""
    refs = []
    for i, c in enumerate(configs):
        ref = reference_mlp(c.seed)
        opt = torch.optim.SGD(ref.parameters(), lr=c.lr)
        for record in log:
            opt.zero_grad()
            loss_of(ref, i, record).backward()
            opt.step()
        refs.append(ref)
    return refs


def test_er_is_one_step_on_the_joint_batch(split_stream):
    configs = [
        split_config(seed=s, replay="memory", memory_size=12, replay_batch_size=6) for s in (1, 2)
    ]
    parts, log = recorded_run(configs, split_stream)
    assert all(r["batch"].replayed.shape == (2, 6) for r in log[1:])  # from the second step

    def loss(net, i, r):
        return ce(net, split_stream, r["batch"].indices[i], r["task"])  # mean over all

    for i, ref in enumerate(sgd_replay(configs, split_stream, log, loss)):
        assert_copy_matches(parts, i, ref)


def test_weighted_er_is_de_lange_et_als_loss_with_its_first_task_scaled(split_stream):
    """replay_weight w: w·mean(new) + (1 − w)·mean(replayed), and w·mean(new) while the
    memory is empty (task 1 under a task-end policy), as their code computes it."""
    configs = [
        split_config(seed=s, replay="memory", memory="class-balanced", memory_size=12,
                     replay_batch_size=6, replay_weight=0.7)
        for s in (1, 2)
    ]  # fmt: skip
    parts, log = recorded_run(configs, split_stream)
    assert log[0]["batch"].replayed is None and log[-1]["batch"].replayed is not None

    def loss(net, i, r):
        b = r["batch"]
        new = 0.7 * ce(net, split_stream, b.new[i], r["task"])
        return (
            new
            if b.replayed is None
            else new + 0.3 * ce(net, split_stream, b.replayed[i], r["task"])
        )

    for i, ref in enumerate(sgd_replay(configs, split_stream, log, loss)):
        assert_copy_matches(parts, i, ref)


def test_er_ace_masks_the_absent_seen_classes_for_incoming_examples_only(split_stream):
    configs = [split_config(seed=1, replay="memory", memory_size=12, er_ace=True)]
    parts, log = recorded_run(configs, split_stream)
    seen = set()

    def loss(net, i, r):
        b = r["batch"]
        x, y = pixels(split_stream.train_x[b.new[i]]), split_stream.train_y[b.new[i]]
        present = set(y.tolist())
        seen.update(present)
        logits = restrict(forward(net, x)[0], r["task"], split_stream)
        for c in seen - present:
            logits[:, c] = float("-inf")
        out = nn.functional.cross_entropy(logits, y)
        if b.replayed is not None:
            out = out + ce(net, split_stream, b.replayed[i], r["task"])
        return out

    ref = sgd_replay(configs, split_stream, log, loss)[0]
    assert seen - {0, 1, 2, 3} == set() and {0, 1} <= seen  # task 2 masks 0 and 1 for its own
    assert_copy_matches(parts, 0, ref)


def test_der_matches_stored_logits_and_replays_labels(split_stream):
    alphas, betas = (0.5, 0.0), (0.3, 0.7)
    configs = [
        split_config(seed=s, replay="none", memory_size=20, der_alpha=a, der_beta=b)
        for s, a, b in zip((1, 2), alphas, betas, strict=True)
    ]
    parts, log = recorded_run(configs, split_stream)
    assert all(len(r["draws"]) == 2 for r in log[1:])  # α's batch, then β's

    def loss(net, i, r):
        out = ce(net, split_stream, r["batch"].new[i], r["task"])
        if r["draws"]:
            (x1, z1), (x2, _) = r["draws"]
            logits = forward(net, pixels(split_stream.train_x[x1[i]]))[0]
            out = out + alphas[i] * (logits - z1[i]).square().mean()
            out = out + betas[i] * ce(net, split_stream, x2[i], r["task"])
        return out

    for i, ref in enumerate(sgd_replay(configs, split_stream, log, loss)):
        assert_copy_matches(parts, i, ref)


def test_der_stores_the_logits_of_the_step_an_example_arrived_in(split_stream):
    c = split_config(seed=4, replay="none", memory_size=64, der_alpha=0.1)
    parts = build_parts([c], split_stream, CPU)
    parts.sampler.start_task(1)
    ref = reference_mlp(4)
    batch = draw_batch(parts)
    expected = forward(ref, pixels(split_stream.train_x[batch.new[0]]))[0]  # before the update
    train_step(parts, batch, Step(1, 0, 0))
    torch.testing.assert_close(parts.memory.logits[0, :8], expected, rtol=1e-5, atol=1e-6)
    assert parts.memory.slots[0, :8].tolist() == batch.new[0].tolist()


def test_agem_projects_only_conflicting_updates(split_stream):
    configs = [
        split_config(seed=s, replay="none", memory="task-balanced", memory_size=20, agem=True)
        for s in (1, 2)
    ]
    parts, log = recorded_run(configs, split_stream, steps=(3, 6))
    refs, projected = [], 0
    for i, c in enumerate(configs):
        ref = reference_mlp(c.seed)
        opt = torch.optim.SGD(ref.parameters(), lr=c.lr)
        for r in log:
            params = list(ref.parameters())
            g = torch.autograd.grad(ce(ref, split_stream, r["batch"].new[i], r["task"]), params)
            if r["draws"]:
                ((x, _),) = r["draws"]
                g_ref = torch.autograd.grad(ce(ref, split_stream, x[i], r["task"]), params)
                dot = sum((a * b).sum() for a, b in zip(g, g_ref, strict=True))
                if dot < 0:
                    projected += 1
                    norm = sum((b * b).sum() for b in g_ref)
                    g = [a - dot / norm * b for a, b in zip(g, g_ref, strict=True)]
            for p, gi in zip(params, g, strict=True):
                p.grad = gi
            opt.step()
        refs.append(ref)
    assert not log[0]["draws"] and projected > 0  # empty in task 1; conflicts in task 2
    for i, ref in enumerate(refs):
        assert_copy_matches(parts, i, ref)


def test_online_ewc_penalises_by_the_sampled_label_fisher(split_stream):
    lambdas, gamma, n = (50.0, 0.0), 0.9, 6
    configs = [
        split_config(seed=s, replay="none", ewc_lambda=lam, ewc_gamma=gamma, ewc_samples=n)
        for s, lam in zip((1, 2), lambdas, strict=True)
    ]
    parts, log = recorded_run(configs, split_stream, steps=(3, 3, 2))
    for i, c in enumerate(configs):
        ref = reference_mlp(c.seed)
        opt = torch.optim.SGD(ref.parameters(), lr=c.lr)
        g = torch.Generator().manual_seed(derive_seed(c.seed, "ewc"))
        fisher, anchor, task_now = None, None, 1
        for task, new in ((r["task"], r["batch"].new) for r in log):
            if task != task_now:  # the finished task's Fisher, by hand
                lo, hi = split_stream.train_offsets[task - 2], split_stream.train_offsets[task - 1]
                picks = torch.randperm(hi - lo, generator=g)[:n] + lo
                u = torch.rand(n, generator=g)
                f_task = [torch.zeros_like(p) for p in ref.parameters()]
                for k in range(n):
                    x = pixels(split_stream.train_x[picks[k : k + 1]])
                    p = torch.softmax(restrict(forward(ref, x)[0], task - 1, split_stream), -1)[0]
                    label = int(torch.searchsorted(p.cumsum(0), u[k] * p.sum(), right=True))
                    log_p = torch.log(p[label])
                    for f, grad in zip(
                        f_task, torch.autograd.grad(log_p, list(ref.parameters())), strict=True
                    ):
                        f += grad.square() / n
                fisher = (
                    f_task
                    if fisher is None
                    else [gamma * a + b for a, b in zip(fisher, f_task, strict=True)]
                )
                anchor = [p.detach().clone() for p in ref.parameters()]
                task_now = task
            loss = ce(ref, split_stream, new[i], task)
            if fisher is not None:
                loss = loss + lambdas[i] / 2 * sum(
                    (f * (p - a).square()).sum()
                    for f, p, a in zip(fisher, ref.parameters(), anchor, strict=True)
                )
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert_copy_matches(parts, i, ref)


def test_lwf_distils_the_previous_tasks_network_on_the_old_classes(split_stream):
    lambdas, temperature = (20.0, 0.0), 2.0
    configs = [
        split_config(seed=s, replay="none", lwf_lambda=lam)
        for s, lam in zip((1, 2), lambdas, strict=True)
    ]
    parts, log = recorded_run(configs, split_stream, steps=(3, 8))
    for i, c in enumerate(configs):
        ref = reference_mlp(c.seed)
        opt = torch.optim.SGD(ref.parameters(), lr=c.lr)
        previous = None
        for task, new in ((r["task"], r["batch"].new) for r in log):
            if task == 2 and previous is None:
                previous = copy.deepcopy(ref)
            loss = ce(ref, split_stream, new[i], task)
            if previous is not None:
                x = pixels(split_stream.train_x[new[i]])
                soft = torch.softmax(forward(previous, x)[0][:, :2] / temperature, -1).detach()
                log_q = torch.log_softmax(forward(ref, x)[0][:, :2] / temperature, -1)
                loss = loss + lambdas[i] * -(soft * log_q).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert_copy_matches(parts, i, ref)


# --- stacked = alone ----------------------------------------------------------------------------
STACKS = {
    "er": [dict(replay="memory", memory_size=30)] * 2,
    "er-ace, class-balanced": [dict(replay="memory", memory="class-balanced", er_ace=True)] * 2,
    "der": [dict(replay="none", der_alpha=0.3, der_beta=0.5), dict(replay="none", der_beta=0.5)],
    "der beside none": [dict(replay="none"), dict(replay="none", der_alpha=0.3)],
    "agem on er": [dict(replay="memory", memory="task-balanced", agem=True)] * 2,
    "ewc": [dict(replay="none", ewc_lambda=100.0), dict(replay="none", ewc_lambda=0.0)],
    "lwf": [dict(replay="none", lwf_lambda=1.0), dict(replay="none", lwf_lambda=2.0)],
}


@pytest.mark.parametrize("name", STACKS)
def test_a_stack_of_method_runs_equals_its_runs_alone(name, small_mnist):
    configs = [
        tiny_config(
            stream="split", batches_per_task=6, eval_every=3, eval_subset=100, seed=seed, **fields
        )
        for seed, fields in zip((1, 2), STACKS[name], strict=True)
    ]
    stream = build_stream(configs[0], "cpu", small_mnist)
    stacked = train_stack(configs, stream)
    for c, s in zip(configs, stacked, strict=True):
        alone = run_experiment(c, stream)
        np.testing.assert_allclose(s.loss, alone.loss, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(s.acc, alone.acc, atol=1.0)
        assert s.metadata.get("memory") == alone.metadata.get("memory")


# --- cost ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        {"replay": "memory"},
        {"replay": "memory", "agem": True},
        {"replay": "none", "der_alpha": 0.3, "der_beta": 0.5},
        {"replay": "none", "der_beta": 0.5, "lwf_lambda": 1.0},
    ],
)
def test_a_methods_matmul_flops_are_what_stabgap_cost_counts(fields, split_stream):
    """torch's FlopCounterMode on a real step in task 2: the step's batch with the replayed
    examples, plus each method's own passes (``step_macs``)."""
    from torch.utils.flop_counter import FlopCounterMode

    from stabgap.cost import flops as cost

    c = split_config(seed=1, memory_size=16, replay_batch_size=6, **fields)
    parts, _ = recorded_run([c], split_stream, steps=(3, 1))
    batch = draw_batch(parts)
    with FlopCounterMode(display=False) as counter:
        train_step(parts, batch, Step(2, 4, 0))
    parts_cost = cost.train_step_costs(c, batch.indices.shape[1], task=2)
    assert batch.indices.shape[1] == 8 + cost.replayed_examples(c, 2)
    own = sum(parts_cost[name].macs for name in c.methods)
    assert counter.get_total_flops() == cost.total(parts_cost).matmul_flops + 2 * own


# --- in a sweep, on worker processes -----------------------------------------------------------
def test_a_sweep_of_methods_on_two_workers_runs_each_as_alone(tmp_path):
    """Memories, methods and strengths swept over two worker processes: run for run, the
    curves and the memory's content of the run trained alone."""
    from conftest import swept_and_alone

    settings = {"batches_per_task": 4, "batch_size": 16, "replay": "memory", "memory_size": 20}
    grid = {"memory": ["reservoir", "class-balanced"], "der_alpha": [0.0, 0.3]}
    pairs = swept_and_alone(tmp_path, settings, grid)
    assert len(pairs) == 8
    for record, alone in pairs:
        np.testing.assert_array_equal(record.acc, alone.acc, err_msg=record.name)
        np.testing.assert_array_equal(record.loss, alone.loss)
        assert record.metadata["memory"] == alone.metadata["memory"]


def test_a_method_is_costed_only_in_the_tasks_it_acts_in():
    """LwF and EWC add nothing to task 1's steps; EWC's Fisher is paid at each switch; a
    task-end memory replays nothing in task 1, the reservoir from its start."""
    from stabgap.cost import flops as cost

    base = RunConfig(hidden=(32,), batches_per_task=10, batch_size=16, replay="none")
    for fields in ({"lwf_lambda": 1.0}, {"ewc_lambda": 1.0}):
        c = base.replace(**fields)
        (name,) = c.methods
        assert name not in cost.batch_costs(c, 1) and name in cost.batch_costs(c, 2)
    ewc = base.replace(ewc_lambda=1.0, ewc_samples=7)
    layers = cost.model_layers(ewc)
    params = cost.n_parameters(layers)
    # each of 7 examples: a pass of one (with its loss) and its squared gradient added;
    # then F ← γF + F_task and the anchor (3 a parameter); at each of the two switches
    per_switch = 7 * (cost.extra_pass_flops(layers, 1, (1, 28, 28)) + 2 * params) + 3 * params
    assert cost.run_cost(ewc)["ewc at switches"].flops == 2 * per_switch
    er = base.replace(replay="memory", replay_batch_size=4)
    balanced = er.replace(memory="task-balanced")
    assert cost.replayed_examples(er, 1) == 4 and cost.replayed_examples(balanced, 1) == 0
    assert cost.replayed_examples(balanced, 2) == 4
