"""Why the gap: each analysis against an independent computation (CKA's known values and
its feature-space formula, the nearest-mean classifier by explicit loops on the very
network the run measured), training untouched by them, stacks and worker sweeps equal to
runs alone, the arrays kept in the run records."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import swept_and_alone, tiny_config

from stabgap.core import analyses as analyses_module
from stabgap.core.analyses import Analyses
from stabgap.core.analyses.measures import (
    centred_gram,
    class_means,
    hessian_top_and_trace,
    linear_cka,
    nearest_mean_scores,
    relative_change,
)
from stabgap.core.config import FIELDS
from stabgap.core.streams import pixels
from stabgap.core.train import run_experiment, train_stack
from stabgap.errors import StabgapError


def cka_by_features(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al.'s feature-space form: ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), centred."""
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    return np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))


def cka(x, y) -> float:
    return linear_cka(centred_gram(torch.as_tensor(x)), centred_gram(torch.as_tensor(y))).item()


def test_linear_cka_takes_its_known_values_and_equals_the_feature_space_formula():
    line = np.array([[1.0], [2.0], [3.0]])
    assert cka(line, -line + 7) == pytest.approx(1.0)  # a linear map of it, reversed, moved
    assert cka(line, np.array([[1.0], [-2.0], [1.0]])) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 12))
    q, _ = np.linalg.qr(rng.normal(size=(12, 12)))
    assert cka(x, 5 * x @ q) == pytest.approx(1.0)  # rotation and scale leave it at 1
    y = rng.normal(size=(40, 30))  # another width: CKA compares them all the same
    assert cka(x, y) == pytest.approx(cka_by_features(x, y), rel=1e-10)
    assert cka(x, x + 0.5 * rng.normal(size=x.shape)) == pytest.approx(
        cka_by_features(x, x + 0.5 * rng.normal(size=x.shape)), abs=0.05
    )  # (two noise draws: close, not equal)


def test_relative_change_is_the_frobenius_distance_over_the_size():
    before = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # ‖·‖ = 5
    after = torch.tensor([[3.0, 1.0], [0.0, 4.0]])
    assert relative_change(before, after).item() == pytest.approx(0.2)


def test_the_nearest_mean_classifier_equals_explicit_loops():
    rng = np.random.default_rng(1)
    train = rng.normal(size=(30, 4)) + np.repeat(np.eye(4)[:3] * 3, 10, axis=0)
    labels = np.repeat([0, 1, 2], 10)
    probe = rng.normal(size=(25, 4)) * 2
    means, present = class_means(torch.tensor(train)[None], torch.tensor(labels)[None], 5)
    scores = nearest_mean_scores(torch.tensor(probe)[None], means, present)[0]
    for i, p in enumerate(probe):
        distances = [np.sum((p - train[labels == c].mean(axis=0)) ** 2) for c in range(3)]
        assert scores[i].argmax().item() == int(np.argmin(distances))
        assert scores[i, :3].numpy() == pytest.approx(-np.array(distances))
    assert present[0].tolist() == [True, True, True, False, False]
    assert torch.isinf(scores[:, 3:]).all()  # classes never seen are never chosen


ANALYSIS_FIELDS = ("drift_every", "head_every", "sharpness_iterations", "gradients_window",
                   "path_points")  # fmt: skip


def analysed(**changes):
    every = dict(drift_every=1, head_every=2, sharpness_iterations=3, gradients_window=2,
                 path_points=1)  # fmt: skip
    return tiny_config(hidden=(16,), batches_per_task=6, batch_size=16, eval_subset=100,
                       probe_size=20, **{**every, **changes})  # fmt: skip


def watch_analyses(monkeypatch, keep) -> dict:
    """Let a test see inside a run's analyses: `keep(tracker, point, net, task)` is called
    with every network the tracker measures, before it measures it; the tracker itself is
    under "tracker" of the returned dict once built (its probe sets, its schedule)."""
    built = {}
    measure, build = Analyses.measure, Analyses.__init__

    def measuring(self, point, net, task):
        keep(self, point, net, task)
        measure(self, point, net, task)

    def building(self, *args, **kwargs):
        build(self, *args, **kwargs)
        built["tracker"] = self

    monkeypatch.setattr(Analyses, "measure", measuring)
    monkeypatch.setattr(Analyses, "__init__", building)
    return built


def test_the_analyses_leave_training_exactly_as_it_is(small_stream):
    """Same losses and curves with the analyses on: EMA (the evaluated weights differ from
    the trained ones) and a ResNet with batch norm (whose statistics evaluation could
    move)."""
    resnet = {"model": "resnet", "hidden": FIELDS["hidden"].default, "resnet_width": 4}
    for changes in ({"ema_decay": 0.9}, resnet):
        on = analysed(**changes) if "model" not in changes else tiny_config(
            **changes, batches_per_task=4, batch_size=8, eval_subset=40, drift_every=2,
            head_every=1, probe_size=8, sharpness_iterations=2, gradients_window=1,
            path_points=1)  # fmt: skip
        off = on.replace(**{f: 0 for f in ANALYSIS_FIELDS})
        a, b = run_experiment(on, small_stream), run_experiment(off, small_stream)
        np.testing.assert_array_equal(a.loss, b.loss)
        np.testing.assert_array_equal(a.acc, b.acc)
        assert set(a.analyses) == set(analyses_module.RECORDED)
        assert b.analyses == {}


def test_each_value_is_what_the_network_at_that_point_gives(small_stream, monkeypatch):
    """The networks the run measured, kept as it measured them, then each recorded value
    recomputed from them: CKA by the feature-space formula, the change, the network's own
    probe accuracy, the nearest-mean classifier by explicit loops, the linear probe by
    numpy's solve."""
    kept: dict[int, torch.nn.Module] = {}

    def keep(tracker, point, net, task):
        if tracker.drift_at[point] or tracker.head_at[point]:
            kept[point] = (copy.deepcopy(net), task)

    built = watch_analyses(monkeypatch, keep)
    result = run_experiment(analysed(seed=5), small_stream)
    test, train = built["tracker"].test[0], built["tracker"].train[0]
    s = small_stream
    steps, per_task = result.eval_steps, 6
    task_of = steps // per_task + 1
    reference = {}
    for point, (net, task) in sorted(kept.items()):
        with torch.no_grad():
            net.eval()
            images = pixels(s.test_x[test[:task].reshape(-1)])[None]
            features, hidden = net.body(images)
            hidden = [h[0].reshape(task, 20, -1).numpy() for h in hidden]
            if task > 1 and reference:
                for k in range(task - 1):
                    for layer, h in enumerate(hidden):
                        before = reference[layer][k]
                        assert result.analyses["drift_cka"][point, k, layer] == pytest.approx(
                            cka_by_features(before, h[k]), rel=1e-4)  # fmt: skip
                        change = np.linalg.norm(h[k] - before) / np.linalg.norm(before)
                        assert result.analyses["drift_change"][point, k, layer] == pytest.approx(
                            change, rel=1e-4)  # fmt: skip
            if point == len(steps) - 1 or task_of[point + 1] != task:
                reference = {layer: h for layer, h in enumerate(hidden)}
            if not np.isnan(result.analyses["probe_acc"][point, 0]):
                sample = train[:task].reshape(-1)
                train_features = net.body(pixels(s.train_x[sample])[None])[0][0].numpy()
                train_labels = s.train_y[sample].numpy()
                f = features[0].numpy()
                labels = s.test_y[test[:task].reshape(-1)].numpy()
                logits = net.output(features)[0].numpy()
                for k in range(task):
                    rows = slice(k * 20, (k + 1) * 20)
                    own = 100 * np.mean(logits[rows].argmax(axis=1) == labels[rows])
                    assert result.analyses["probe_acc"][point, k] == pytest.approx(own)
                    owner = np.repeat(np.arange(task), 20)  # each task's own class means
                    means = {(t, c): train_features[(train_labels == c) & (owner == t)].mean(0)
                             for t, c in set(zip(owner, train_labels, strict=True))}  # fmt: skip
                    guess = [min(means, key=lambda tc, x=x: np.sum((x - means[tc]) ** 2))[1]
                             for x in f[rows]]  # fmt: skip
                    nmc = 100 * np.mean(np.array(guess) == labels[rows])
                    assert result.analyses["nmc_acc"][point, k] == pytest.approx(nmc)
                    # the linear probe: ridge regression solved by numpy in float64
                    x = np.hstack([train_features, np.ones((len(train_features), 1))]).astype(float)
                    y = np.eye(10)[train_labels]
                    lam = 1e-3 * np.mean((train_features.astype(float) ** 2).sum(1)) / f.shape[1]
                    w = np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)
                    scores = np.hstack([f[rows], np.ones((20, 1))]) @ w
                    scores[:, ~np.isin(np.arange(10), train_labels)] = -np.inf
                    linear = 100 * np.mean(scores.argmax(1) == labels[rows])
                    assert result.analyses["linear_acc"][point, k] == pytest.approx(linear)
    assert np.isnan(result.analyses["drift_cka"][:per_task]).all()  # none in task 1
    assert np.isfinite(result.analyses["drift_cka"][-1, :2]).all()  # tasks 1-2 in task 3
    assert np.isnan(result.analyses["drift_cka"][:, 2]).all()  # task 3 is never earlier


def test_a_stack_measures_each_copy_as_alone(small_stream):
    configs = [analysed(seed=s) for s in (1, 2)]
    for config, stacked in zip(configs, train_stack(configs, small_stream), strict=True):
        alone = run_experiment(config, small_stream)
        for k, v in alone.analyses.items():
            np.testing.assert_allclose(stacked.analyses[k], v, rtol=1e-4, atol=1e-5, err_msg=k)


def test_a_network_without_penultimate_features_is_refused_in_one_line(small_stream):
    class Opaque(torch.nn.Module):
        def forward(self, x):
            return x, []

    with pytest.raises(StabgapError, match="does not expose .*leave drift_every and head_every"):
        Analyses([analysed()], small_stream, Opaque(), np.arange(3), torch.device("cpu"))


def test_a_sweep_over_the_analyses_on_two_workers_records_each_as_alone(tmp_path):
    settings = {"batches_per_task": 4, "batch_size": 16, "probe_size": 16, "head_every": 2}
    grid = {"drift_every": [0, 1], "sharpness_iterations": [0, 2]}
    pairs = swept_and_alone(tmp_path, settings, grid, seeds=(1,))
    assert len(pairs) == 4
    for record, alone in pairs:
        np.testing.assert_array_equal(record.loss, alone.loss)
        assert set(record.analyses) == set(alone.analyses)
        for k, v in alone.analyses.items():  # as written to disk and read back
            np.testing.assert_allclose(record.analyses[k], v, rtol=1e-6, err_msg=k)


def test_the_module_names_what_it_records():
    assert (
        *("drift_cka", "drift_change", "probe_acc", "nmc_acc", "linear_acc"),
        *("sharpness", "hessian_trace"),
        *("grad_new_norm", "grad_replay_norm", "grad_cosine", "path_loss", "path_acc"),
    ) == analyses_module.RECORDED


def test_the_gradient_anatomy_is_each_parts_gradient_at_the_steps_weights(
    small_stream, monkeypatch
):
    """Each recorded norm and cosine against the gradients autograd gives, on a copy of the
    network as it was at that batch, of the mean cross-entropy of the batch's current-task
    examples and of its replayed ones (full replay: the earlier tasks' in the union)."""
    kept = {}
    before = Analyses.before_step

    def keeping(self, t, task, index, model):
        if self.window is not None and self.window[t]:
            kept[t] = (copy.deepcopy(model), task, index.clone())
        before(self, t, task, index, model)

    monkeypatch.setattr(Analyses, "before_step", keeping)
    result = run_experiment(analysed(seed=4), small_stream)
    s = small_stream
    assert sorted(kept) == [4, 5, 6, 7, 10, 11, 12, 13]  # 2 batches each side of 6 and 12
    for t, (net, task, index) in kept.items():
        grads = []
        for part in (s.task_of(index[0]) == task - 1, s.task_of(index[0]) != task - 1):
            net.zero_grad()
            if not part.any():
                grads.append(None)
                continue
            rows = index[0][part]
            logits = s.restrict(net(pixels(s.train_x[rows])[None])[0], task, rows[None])
            torch.nn.functional.cross_entropy(logits[0], s.train_y[rows]).backward()
            grads.append([p.grad[0].clone() for p in net.parameters()])
        new, old = grads
        norms = [g.norm().item() for g in new]
        assert result.analyses["grad_new_norm"][t] == pytest.approx(norms, rel=1e-4)
        if old is None:  # task 1: nothing is replayed yet
            assert np.isnan(result.analyses["grad_replay_norm"][t]).all()
            continue
        a, b = torch.cat([g.flatten() for g in new]), torch.cat([g.flatten() for g in old])
        replay = [g.norm().item() for g in old]
        assert result.analyses["grad_replay_norm"][t] == pytest.approx(replay, rel=1e-4)
        cosine = (a @ b / (a.norm() * b.norm())).item()
        assert result.analyses["grad_cosine"][t] == pytest.approx(cosine, rel=1e-4, abs=1e-6)
    assert np.isnan(result.analyses["grad_cosine"][:4]).all()  # outside the windows


def test_sharpness_is_the_exact_hessians_top_eigenvalue_and_trace_of_a_small_network():
    """Power iteration on Hessian-vector products through the stacked MLP (its per-copy
    products included) against the Hessian autograd builds entry by entry from the same
    loss written with plain torch operations; Hutchinson's trace within 4 standard errors."""
    import torch.nn.functional as F

    from stabgap.core.losses import cross_entropy
    from stabgap.core.models.mlp import StackedMLP

    net = StackedMLP((6, 4, 3), [torch.Generator().manual_seed(0)])
    x = torch.rand(1, 16, 6, generator=torch.Generator().manual_seed(2))
    y = torch.randint(0, 3, (1, 16), generator=torch.Generator().manual_seed(3))
    params = list(net.parameters())
    top, trace = hessian_top_and_trace(
        lambda: cross_entropy(net(x)[0], y), params, 400, [torch.Generator().manual_seed(1)]
    )
    shapes, sizes = [p.shape for p in params], [p.numel() for p in params]

    def loss(flat):
        w1, w2, b1, b2 = [
            q.reshape(s) for q, s in zip(torch.split(flat, sizes), shapes, strict=True)
        ]
        hidden = torch.relu(x.double()[0] @ w1[0] + b1[0, 0])
        return F.cross_entropy(hidden @ w2[0] + b2[0, 0], y[0])

    exact = torch.autograd.functional.hessian(
        loss, torch.cat([p.detach().reshape(-1) for p in params]).double()
    )
    eigenvalues = torch.linalg.eigvalsh(exact)
    assert top.item() == pytest.approx(eigenvalues[eigenvalues.abs().argmax()].item(), rel=1e-4)
    # Rademacher vᵀHv has variance 2 Σ_{i≠j} H_ij²; the mean of 400 is within 4 of its se
    off = exact - torch.diag(torch.diag(exact))
    se = (2 * off.square().sum() / 400).sqrt().item()
    assert abs(trace.item() - exact.trace().item()) < 4 * se
    assert all(p.grad is None for p in params)  # nothing accumulated where the update reads


def test_a_network_whose_forward_skips_its_body_is_refused_at_the_first_point(small_stream):
    """A subclass that overrides forward alone would have the analyses read features its
    output never sees: refused in one line, not measured wrongly."""
    from stabgap.core.models.mlp import StackedMLP

    class Doubled(StackedMLP):
        def forward(self, x):
            logits, hidden = super().forward(x)
            return 2 * logits, hidden

    net = Doubled((784, 8, 10), [torch.Generator().manual_seed(0)])
    analyses = Analyses([analysed()], small_stream, net, np.arange(3), torch.device("cpu"))
    with pytest.raises(StabgapError, match="its forward is not output\\(body\\(x\\)\\)"):
        analyses.measure(0, net, 1)


# --- the report's section, on runs whose analyses are known by construction -------------------
def why_run(seed, net_drop, nmc_drop, early, late, sharpness, group="baseline", cosine=0.0,
            bump=0.0):  # fmt: skip
    """Two tasks of 20 batches, evaluated at every batch: task 1 at 90 % until the switch,
    then down by `net_drop` (the network) and `nmc_drop` (the nearest-mean classifier) at
    once, back within 10 batches; its features' relative change rising by `early` a batch
    over the interval's first tenth (2 batches) and `late` after."""
    from stabgap.core.config import RunConfig, to_dict
    from stabgap.studies.records import RunRecord

    nan = float("nan")

    def curve(drop):
        after = [90 - drop + drop * min(1.0, k / 10) for k in range(20)]
        return np.column_stack([[90.0] * 20 + after, [nan] * 20 + [50.0] * 20])

    change = np.full((40, 2, 1), nan)
    change[19, 0, 0] = 0.0
    for t in range(20, 40):
        k = t - 19  # batches since the reference point
        change[t, 0, 0] = early * min(k, 2) + late * max(0, k - 2)
    hessian = np.array([[sharpness, nan], [sharpness + 1, sharpness]])
    config = RunConfig(seed=seed, rotations=(0, 90), batches_per_task=20, gradients_window=4)
    cosines = np.full(40, nan)
    cosines[20:24] = cosine  # the window after the switch (none before: no replay yet)
    norms = np.full((40, 2), nan)
    norms[20:24] = [3.0, 4.0]
    path = np.full((2, 4, 2), nan)
    path[1, :, 0] = [1.0, 1.0 + bump, 0.9 + bump / 2, 0.7]  # task 1 from the switch to the end
    return RunRecord(
        name=f"{group}-s{seed}", experiment=group, config=to_dict(config), acc=curve(net_drop),
        boundaries=(20, 40), eval_steps=np.arange(40), loss=None, metadata={"seed": seed},
        analyses={"probe_acc": curve(net_drop), "nmc_acc": curve(nmc_drop),
                  "drift_change": change, "drift_cka": 1 - change,
                  "sharpness": hessian, "hessian_trace": 10 * hessian,
                  "grad_cosine": cosines, "grad_new_norm": norms, "grad_replay_norm": norms / 5,
                  "path_loss": path, "path_acc": 100 - path},
    )  # fmt: skip


def test_the_report_says_the_head_holds_most_of_the_gap_where_it_does():
    from types import SimpleNamespace

    from stabgap.analysis.why import (
        probe_gap,
        why_comparisons,
        why_findings,
        why_table,
        why_tests,
    )
    from stabgap.statistics.comparison import Family

    rng = np.random.default_rng(0)
    base = SimpleNamespace(key="baseline", runs=[
        why_run(s, 30 + rng.normal(), 6 + rng.normal(), 0.05, 0.005 + 0.001 * rng.normal(), 20,
                cosine=-0.4 + 0.05 * rng.normal(), bump=0.5 + 0.05 * rng.normal())
        for s in range(1, 7)])  # fmt: skip
    nd = SimpleNamespace(key="nd", runs=[
        why_run(s, 10 + rng.normal(), 9 + rng.normal(), 0.05, 0.005, 4 + rng.normal(), "nd")
        for s in range(1, 7)])  # fmt: skip
    first = base.runs[0].acc
    assert probe_gap(base.runs[0], "probe_acc") == pytest.approx(first[19, 0] - first[20, 0])
    labels = {"baseline": "baseline", "nd": "nd"}
    tests = why_tests(base, [nd], labels)
    family = Family(why_comparisons(tests))
    said = why_findings(tests, family, labels)
    head = next(s for s in said if s.startswith("**baseline**, head or backbone"))
    share = 100 * (1 - np.mean([probe_gap(r, "nmc_acc") for r in base.runs])
                   / np.mean([probe_gap(r, "probe_acc") for r in base.runs]))  # fmt: skip
    assert f"removed {share:.0f} % of the network's gap" in head
    nd_head = next(s for s in said if s.startswith("**nd**, head or backbone"))
    assert "removed" not in nd_head and "not shown" in nd_head  # 10 vs 9: not an equality claim
    peak = next(s for s in said if s.startswith("**baseline**, drift at the switch"))
    assert peak.endswith("Task 1's features drift fastest right after the switch.")
    sharp = next(s for s in said if s.startswith("task 1's sharpness at the first switch"))
    expected = np.mean([r.analyses["sharpness"][0, 0] for r in nd.runs])
    assert "significant" in sharp and f"nd {expected:.3f}" in sharp
    path = next(s for s in said if s.startswith("**baseline**, loss along the path"))
    assert path.endswith("SGD left the low-loss path between them.")
    conflict = next(s for s in said if s.startswith("**baseline**, gradients at the switch"))
    assert conflict.endswith(
        "a step on the new examples alone would raise the replayed tasks' loss."
    )
    header, rows = why_table([base, nd], labels)
    assert rows[0][header.index("replay/new gradient norm")].startswith("0.20")  # 1/5
    assert rows[0][0] == "baseline" and rows[0][header.index("sharpness at the first switch")
                                                ].startswith("20.00")  # fmt: skip
    for column in range(1, len(header)):  # one number of decimals down each column
        decimals = {len(row[column].split(" ")[0].split(".")[-1]) for row in rows}
        assert len(decimals) == 1, (header[column], [row[column] for row in rows])


def test_the_report_says_when_the_nearest_mean_classifier_drops_further():
    from types import SimpleNamespace

    from stabgap.analysis.why import why_findings, why_tests
    from stabgap.statistics.comparison import Family

    rng = np.random.default_rng(1)
    base = SimpleNamespace(
        key="baseline",
        runs=[why_run(s, 5 + rng.normal(), 25 + rng.normal(), 0.01, 0.01, 20) for s in range(1, 7)],
    )
    labels = {"baseline": "baseline"}
    tests = why_tests(base, [], labels)
    said = why_findings(tests, Family([c for _, c in tests.head]), labels)
    assert "Łapacz et al.'s finding (the classifier removes most of the gap) is not seen" in said[0]
    assert not said[1].endswith("right after the switch.")  # the same speed early and late


def why_groups():
    """A baseline whose barrier lies below 0 in five runs of six and above it in one, and an
    nd group with a higher barrier and cosine; each quantity varies over the seeds."""
    from types import SimpleNamespace

    rng = np.random.default_rng(2)
    # the barrier is max(bump, 0.1 + bump / 2): -0.15, -0.125, -0.175, -0.14, -0.16, +0.01
    bumps = [-0.5, -0.45, -0.55, -0.48, -0.52, -0.18]
    base = SimpleNamespace(key="baseline", runs=[
        why_run(s, 20 + rng.normal(), 5 + rng.normal(), 0.05, 0.005, 20 + rng.normal(),
                cosine=-0.3 + 0.1 * rng.normal(), bump=bump)
        for s, bump in enumerate(bumps, start=1)])  # fmt: skip
    nd = SimpleNamespace(key="nd", runs=[
        why_run(s, 10 + rng.normal(), 4 + rng.normal(), 0.05, 0.005, 5 + rng.normal(), "nd",
                cosine=0.1 + 0.1 * rng.normal(), bump=0.2 + 0.05 * rng.normal())
        for s in range(1, 7)])  # fmt: skip
    return base, nd, {"baseline": "baseline", "nd": "nd"}


def test_a_quantity_tested_against_0_and_between_groups_is_one_family():
    """The barrier (and the cosine) of each group against 0 and nd's against the baseline's
    are three tests of one measured quantity (the same function of a run): one Bonferroni
    family of three, whatever sentence states each."""
    from stabgap.analysis.why import (
        BARRIER,
        COSINE,
        RELATED,
        barrier_at_switch,
        why_comparisons,
        why_findings,
        why_tests,
    )
    from stabgap.statistics.comparison import Family

    base, nd, labels = why_groups()
    tests = why_tests(base, [nd], labels)
    family = Family(why_comparisons(tests))
    assert RELATED[BARRIER] is barrier_at_switch  # the tests against 0 read the same measure
    assert family.sizes[BARRIER] == 3 and family.sizes[COSINE] == 3
    assert {c.quantity for _, c in tests.barrier} == {BARRIER}
    between = next(c for c in tests.remedies if c.quantity == BARRIER)
    adjusted = family.adjusted(between)
    assert adjusted.family == 3
    assert adjusted.p == pytest.approx(min(1.0, 3 * between.welch_p))
    said = why_findings(tests, family, labels)
    sentence = next(s for s in said if s.startswith(BARRIER))
    assert f"adjusted p = {adjusted.p:.2g}" in sentence
    assert "simultaneous 95 % CI over 3 tests" in sentence


def test_a_mean_against_0_is_a_one_sample_t_test_with_its_simultaneous_interval():
    """The barrier's test against 0 is scipy's one-sample t-test, its interval the mean's t
    interval at the family's level (1 − 0.05/3), and its sentence says so: no second group,
    paired test, Wilcoxon test or Hedges' g against a constant."""
    from scipy import stats as sps

    from stabgap.analysis.why import barrier_at_switch, why_comparisons, why_findings, why_tests
    from stabgap.statistics.comparison import Family

    base, nd, labels = why_groups()
    tests = why_tests(base, [nd], labels)
    family = Family(why_comparisons(tests))
    c = family.adjusted(dict(tests.barrier)["baseline"])
    x = [barrier_at_switch(r) for r in base.runs]
    exact = sps.ttest_1samp(x, 0.0)
    assert c.welch_t == pytest.approx(exact.statistic) and c.welch_df == 5
    assert c.welch_p == pytest.approx(exact.pvalue)
    assert c.p == pytest.approx(min(1.0, 3 * exact.pvalue))
    low, high = exact.confidence_interval(confidence_level=1 - 0.05 / 3)
    assert c.interval() == pytest.approx((low, high))
    said = why_findings(tests, family, labels)
    sentence = next(s for s in said if s.startswith("**baseline**, loss along the path"))
    assert (
        f"mean {np.mean(x):+.3f}, sd {np.std(x, ddof=1):.3f} (n = 6) [simultaneous 95 % CI "
        f"over 3 tests {low:+.3f} to {high:+.3f}], one-sample t-test against 0 (no barrier): "
        f"t(5) = {exact.statistic:.2f}, p = {exact.pvalue:.2g}, adjusted p = {c.p:.2g}: "
        "significant at α = 0.05." in sentence
    )
    for wrong in ("paired", "Wilcoxon", "Hedges", "vs no barrier", "n = 6 and 6"):
        assert wrong not in sentence
    cosine = next(s for s in said if s.startswith("**nd**, gradients at the switch"))
    assert "one-sample t-test against 0 (orthogonal gradients): t(5) = " in cosine
    assert "Wilcoxon" not in cosine and "vs orthogonal gradients" not in cosine


def test_the_barrier_sentence_says_what_the_points_measured_can_show():
    """A mean largest excess below 0 at two interior points does not say that no barrier
    lies between the ends: the sentence says where the loss was read, how many runs had an
    excess above 0 there (one of six), and what it cannot exclude."""
    from stabgap.analysis.why import why_comparisons, why_findings, why_tests
    from stabgap.statistics.comparison import Family

    base, nd, labels = why_groups()
    tests = why_tests(base, [nd], labels)
    said = why_findings(tests, Family(why_comparisons(tests)), labels)
    below = next(s for s in said if s.startswith("**baseline**, loss along the path"))
    assert "At the 2 interior points of the segment measured (path_points)" in below
    assert "was above 0 in 1 of 6 runs; on average it lies below 0" in below
    assert below.endswith(
        "This does not exclude a barrier between the points measured, or in single runs."
    )
    assert "no barrier lies" not in below
    above = next(s for s in said if s.startswith("**nd**, loss along the path"))
    assert "above 0 in 6 of 6 runs; on average it lies above 0" in above


def test_the_gradients_figure_breaks_its_line_and_band_where_nothing_was_measured(tmp_path):
    """Batches 20-23 and 30-33 measured, 24-29 not: the mean line has a NaN between 23 and 30
    (no segment joins them) and the ± sd band is two polygons, not one across the gap."""
    from stabgap.analysis.plots import plot_why

    runs = []
    for seed in range(1, 4):
        run = why_run(seed, 20, 5, 0.05, 0.005, 20, cosine=0.1 * seed)
        run.analyses["grad_cosine"][30:34] = -0.1 * seed
        runs.append(run)
    fig = plot_why({"baseline": runs}, tmp_path / "why-gradients.png", "gradients", pdf=False)
    line = max(fig.axes[0].lines, key=lambda ln: len(ln.get_xdata()))  # not a switch's mark
    x, y = (np.asarray(d, dtype=float) for d in line.get_data())
    gap = np.flatnonzero(np.isnan(y))
    assert len(gap) == 1 and x[gap[0] - 1] == 23 and x[gap[0] + 1] == 30
    finite = np.isfinite(x) & np.isfinite(y)
    joined = finite[:-1] & finite[1:]  # the segments matplotlib draws
    assert np.all(np.diff(x)[joined] == 1)
    (band,) = fig.axes[0].collections
    assert len(band.get_paths()) == 2


def test_the_loss_along_the_path_is_that_of_the_interpolated_networks(small_stream, monkeypatch):
    """Each recorded loss and accuracy on the segment against the network built by hand from
    the two networks the run measured (the last points of two consecutive tasks), their
    weights mixed (1 − α)·start + α·end: at α = 0 and 1 those networks themselves."""
    kept = {}

    def keep(tracker, point, net, task):
        if tracker.last_of_task[point]:
            kept[task] = copy.deepcopy(net)

    built = watch_analyses(monkeypatch, keep)
    config = analysed(seed=6, path_points=2, drift_every=0, head_every=0)
    result = run_experiment(config, small_stream)
    s, test = small_stream, built["tracker"].test[0]
    path_loss, path_acc = result.analyses["path_loss"], result.analyses["path_acc"]
    assert path_loss.shape == (3, 4, 3) and np.isnan(path_loss[0]).all()  # none in task 1
    for task in (2, 3):
        start, end = kept[task - 1].state_dict(), kept[task].state_dict()
        for a, alpha in enumerate((0.0, 1 / 3, 2 / 3, 1.0)):
            net = copy.deepcopy(kept[task])
            net.load_state_dict({k: (1 - alpha) * start[k] + alpha * end[k] for k in end})
            net.eval()
            for k in range(task - 1):
                rows = test[k]
                with torch.no_grad():
                    logits = s.restrict(net(pixels(s.test_x[rows])[None])[0], task,
                                        rows[None], train=False)[0]  # fmt: skip
                loss = torch.nn.functional.cross_entropy(logits, s.test_y[rows]).item()
                acc = 100 * (logits.argmax(1) == s.test_y[rows]).float().mean().item()
                assert path_loss[task - 1, a, k] == pytest.approx(loss, rel=1e-4)
                assert path_acc[task - 1, a, k] == pytest.approx(acc)
        assert np.isnan(path_loss[task - 1, :, task - 1 :]).all()  # only the earlier tasks


def test_groups_that_recorded_no_analysis_are_said_to_be_untested_not_left_out():
    """A baseline without analyses has no comparison with nd: the section says so (a trial
    found five sentences gone and the families shrunk without a word)."""
    import dataclasses
    from types import SimpleNamespace

    from stabgap.analysis.why import why_comparisons, why_findings, why_tests
    from stabgap.statistics.comparison import Family

    base, nd, labels = why_groups()
    runs = [dataclasses.replace(r, analyses={}) for r in base.runs]
    bare = SimpleNamespace(key="baseline", runs=runs)
    tests = why_tests(bare, [nd], labels)
    assert tests.remedies == [] and tests.bare == ["baseline"]
    said = why_findings(tests, Family(why_comparisons(tests)), labels)
    assert (
        "Not tested here: **baseline**, whose runs recorded no analysis (run them with the "
        "analyses on): none is compared with the baseline, which is one of them (choose "
        "another with --baseline)."
    ) in said
    tests = why_tests(nd, [bare], labels)  # a compared group without: named, no more
    said = why_findings(tests, Family(why_comparisons(tests)), labels)
    assert (
        "Not tested here: **baseline**, whose runs recorded no analysis (run them with the "
        "analyses on)."
    ) in said
    assert why_tests(base, [nd], labels).bare == []
