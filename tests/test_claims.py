"""The reported findings' verdicts, on hand-made curves whose answer is known."""

import re
from types import SimpleNamespace

import numpy as np

from stabgap.analysis.claims import claim_checks, claim_sentence
from stabgap.metrics import gap_depth
from stabgap.statistics.comparison import Family

ENDS = (30, 60, 90)


def curve(fall_points: int, depth: float, seed: int, later: float = 90.0) -> np.ndarray:
    """Task 1 at 90 % until the switch, falling by `depth` over `fall_points` points, then
    climbing back over 10; tasks 2 and 3 learnt up to `later` %. A seed's jitter keeps
    the groups' spreads non-zero."""
    acc = np.full((90, 3), np.nan)
    acc[:, 0] = 90.0
    for k in range(1, fall_points + 1):
        acc[29 + k, 0] = 90 - depth * k / fall_points
    bottom = 30 + fall_points
    for k in range(1, 11):
        acc[bottom + k - 1, 0] = 90 - depth + depth * k / 10
    acc[:, 0] += 0.05 * seed
    acc[30:, 1] = later
    acc[60:, 2] = later
    return acc


def run(acc: np.ndarray, seed: int, config: dict) -> SimpleNamespace:
    steps = np.arange(len(acc))
    record = SimpleNamespace(config={**config, "seed": seed}, acc=acc, eval_steps=steps, ends=ENDS)
    record.measure = lambda metric, *a, **k: metric(acc, ENDS, *a, steps=steps, **k)
    return record


def group(name: str, make, **config) -> SimpleNamespace:
    config = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.0, "lpr_omega": 0.0, **config}
    runs = [run(make(s), s, config) for s in range(5)]
    return SimpleNamespace(
        key=name, source="stabgap", imported=False, runs=runs, config=runs[0].config
    )


def verdicts(*groups) -> list[str]:
    labels = {g.key: g.key for g in groups}
    checks = claim_checks(groups, labels, n_tasks=3)
    family = Family([c for check in checks for _, c in check.tests])
    return [claim_sentence(check, family, labels) for check in checks]


def test_a_steeper_drop_with_momentum_agrees_and_a_gentler_one_contradicts():
    sgd = group("sgd", lambda s: curve(10 + s % 2, 20, s))
    steep = group("momentum-0.9", lambda s: curve(2, 20 + s % 2, s), momentum=0.9)
    (sentence,) = verdicts(sgd, steep)
    assert "a higher momentum makes the drop after a switch steeper" in sentence
    assert "Obis, 2025" in sentence and "differ in momentum only" in sentence
    assert sentence.endswith("agrees.")
    gentle = group("momentum-0.9", lambda s: curve(20 + s % 2, 20, s), momentum=0.9)
    (sentence,) = verdicts(sgd, gentle)
    assert sentence.endswith("contradicts it.")


def test_momentum_at_another_learning_rate_is_not_taken_for_the_claim():
    """The claim varied momentum at one learning rate: a group that also lowers it is not
    what it compared (and is then one of a learning-rate pair, if there is one)."""
    sgd = group("sgd", lambda s: curve(10 + s % 2, 20, s))
    other = group("sgd-momentum", lambda s: curve(2, 20 + s % 2, s), momentum=0.9, lr=0.01)
    assert verdicts(sgd, other) == []


def test_a_smaller_constant_learning_rate_is_compared_with_the_larger():
    fast = group("lr=0.1", lambda s: curve(3, 20 + s % 2, s))
    slow = group("lr=0.01", lambda s: curve(3, 8 + s % 2, s), lr=0.01)
    (sentence,) = verdicts(fast, slow)
    assert "**lr=0.01** against lr=0.1 (they differ in lr only)" in sentence
    assert "Sobocińska, 2025" in sentence and "GD_1,2 (p.p.) -12.00" in sentence


def test_each_strength_of_a_remedy_gets_its_own_verdict():
    base = group("baseline", lambda s: curve(5, 20 + s % 2, s))
    smaller = group("lpr-1", lambda s: curve(5, 5 + s % 2, s, later=80 + s % 2), lpr_omega=1.0)
    same = group("lpr-10", lambda s: curve(5, 20 + (s + 1) % 2, s, later=90 - s % 2), lpr_omega=10)
    out = verdicts(base, smaller, same)
    assert len(out) == 2
    assert "**lpr-1**" in out[0] and out[0].endswith("agrees.")
    assert "**lpr-10**" in out[1] and "does not show it" in out[1]
    # "not shown" says what this n could have shown; a significant test needs no such words
    assert re.search(r"adjusted p = [\d.e-]+ \(could detect ≈ [\d.]+ with 80 % power\)", out[1])
    assert "could detect" not in out[0]
    # each quantity adjusted over its tests: GD_1,2 over the two groups' checks
    assert "GD_1,2 (p.p.) -15.00 (simultaneous 95 % CI over 2 tests" in out[0]


def test_nothing_is_said_without_the_compared_group():
    assert verdicts(group("momentum-0.9", lambda s: curve(2, 20, s), momentum=0.9)) == []


def test_the_hand_made_curves_have_the_gaps_they_say():
    assert gap_depth(curve(5, 20, 0), ENDS, 1, 2) == 20.0


# --- the methods' findings ------------------------------------------------------------------------
def method_group(name: str, make, n: int = 5, **config) -> SimpleNamespace:
    config = {"stream": "split", "replay": "memory", "er_ace": False, "agem": False,
              "eval_resample": "fresh", "eval_subset": 500, **config}  # fmt: skip
    runs = [run(make(s), s, config) for s in range(n)]
    for r in runs:
        r.ends = ENDS
    return SimpleNamespace(key=name, source="stabgap", runs=runs, config=runs[0].config,
                           imported=False)  # fmt: skip


def test_er_ace_with_a_shallower_gap_agrees_with_caccia_et_al():
    er = method_group("er-200", lambda s: curve(3, 25 + s % 2, s))
    ace = method_group("er-ace-200", lambda s: curve(3, 5 + s % 2, s), er_ace=True)
    agem = method_group("er-agem-200", lambda s: curve(3, 25 + s % 3, s), agem=True)
    ace_sentence, agem_sentence = verdicts(er, ace, agem)
    assert ace_sentence.startswith("Reported for online class-incremental benchmarks (Caccia")
    assert "**er-ace-200** against er-200 (they differ in er_ace only)" in ace_sentence
    assert ace_sentence.endswith("agrees.")
    assert "gradient projection added to replay reduces the stability gap" in agem_sentence
    assert "not consistently" in agem_sentence and "does not show it" in agem_sentence


def test_the_noise_floor_of_a_gap_is_the_expected_minimum_of_noisy_measurements():
    """Two points after the switch, each on 900 images at 90 %: σ = 1 p.p., and the floor is
    E[X₀ − min(X₁, X₂)] = σ/√π for normal measurements (the binomial's is within 0.08)."""
    from stabgap.analysis.noise import gap_noise_floor

    assert abs(gap_noise_floor(90.0, 900, 2) - 1 / np.sqrt(np.pi)) < 0.08
    assert gap_noise_floor(90.0, 900, 1) < 0.05  # one point: no minimum to take, mean 0
    assert gap_noise_floor(90.0, 100, 30) > gap_noise_floor(90.0, 900, 30) > 0


def test_a_gap_beyond_the_noise_is_told_apart_from_noise_alone():
    from stabgap.analysis.claims import gap_checks, gap_sentence

    rng = np.random.default_rng(1)

    def noisy(depth):
        def make(s):
            acc = curve(3, depth, s)
            acc[:, 0] = np.where(
                np.isnan(acc[:, 0]), np.nan, rng.binomial(500, np.clip(acc[:, 0], 0, 100) / 100) / 5
            )
            return acc  # fmt: skip

        return make

    deep = method_group("er-200", noisy(20), n=6)
    flat = method_group("er-ace-200", noisy(0), n=6, er_ace=True)
    plain = method_group("finetune", noisy(20), n=6, replay="none")  # no memory, no method
    labels = {g.key: g.key for g in (deep, flat, plain)}
    checks = gap_checks([deep, flat, plain], labels, n_tasks=3)
    assert [c.group.key for c in checks] == ["er-200", "er-ace-200"]
    family = Family([c.comparison for c in checks])
    deep_text, flat_text = (gap_sentence(c, family, labels) for c in checks)
    assert deep_text.endswith("a gap beyond the noise.")
    assert "fresh subsets of 500 images" in deep_text
    assert "not shown at n = 6" in flat_text


def test_a_group_whose_config_this_version_refuses_is_not_tested():
    # Runs recorded with a schedule refused since (no point after any update of a task),
    # or with a plugin's model not loaded: the report goes on without their noise check.
    from stabgap.analysis.claims import gap_checks

    refused = method_group("er-200", lambda s: curve(3, 20, s), eval_every=500)
    assert gap_checks([refused], {"er-200": "er-200"}, n_tasks=3) == []


def test_a_drop_that_never_comes_back_is_called_forgetting_not_a_gap():
    from stabgap.analysis.claims import gap_checks, gap_sentence

    def forgets(s):
        acc = curve(3, 20, s)
        acc[30:, 0] = 0.5 * s  # gone after the switch, for good
        return acc

    lost = method_group("lwf-1", forgets, replay="none", lwf_lambda=1.0)
    labels = {"lwf-1": "lwf-1"}
    (check,) = gap_checks([lost], labels, n_tasks=3)
    text = gap_sentence(check, Family([check.comparison]), labels)
    assert check.never == 5 and text.endswith(
        "the drop lasts (forgetting), more than a temporary gap."
    )


def test_a_slower_recovery_where_seeds_never_recover_is_tested_by_ranks():
    """Two of the smaller learning rate's seeds never get back: their times are censored, so
    the TTR prediction rests on the rank-sum test, with them ranked last."""

    def slow(seed: int) -> np.ndarray:
        acc = curve(3, 8 + seed % 2, seed)
        bottom = 33
        climb = np.linspace(acc[bottom - 1, 0], acc[29, 0], 25)  # back over 25 points
        acc[bottom : bottom + 25, 0] = climb
        acc[bottom + 25 : 60, 0] = acc[29, 0]
        if seed >= 3:  # these stay halfway down to the end of the run
            acc[bottom + 5 :, 0] = acc[29, 0] - 4
        return acc

    fast = group("lr=0.1", lambda s: curve(3, 20 + s % 2, s))
    (sentence,) = verdicts(fast, group("lr=0.01", slow, lr=0.01))
    # every slow seed is above every fast one: 1 of the C(10, 5) = 252 splits, p = 2/252
    assert "2 of lr=0.01's and 0 of lr=0.1's seeds never recovered: exact rank-sum test" in sentence
    assert "lr=0.01 above lr=0.1 in 100 % of seed pairs" in sentence
    assert "adjusted p = 0.0079" in sentence and sentence.endswith("agrees.")
