"""The reported findings' verdicts, on hand-made curves whose answer is known."""

from types import SimpleNamespace

import numpy as np

from stabgap.claims import check_claims

BOUNDARIES = (30, 60, 90)


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


def group(name: str, make) -> SimpleNamespace:
    runs = [
        SimpleNamespace(config={"seed": s}, acc=make(s), boundaries=BOUNDARIES) for s in range(5)
    ]
    return SimpleNamespace(base=name, key=name, runs=runs)


def verdicts(*groups) -> list[str]:
    return check_claims(groups, {g.key: g.key for g in groups}, n_tasks=3)


def test_a_steeper_drop_with_momentum_agrees_and_a_gentler_one_contradicts():
    sgd = group("sgd", lambda s: curve(10 + s % 2, 20, s))
    steep = group("sgd-momentum", lambda s: curve(2, 20 + s % 2, s))
    (sentence,) = verdicts(sgd, steep)
    assert "momentum makes the drop steeper" in sentence and sentence.endswith("agrees.")
    gentle = group("sgd-momentum", lambda s: curve(20 + s % 2, 20, s))
    (sentence,) = verdicts(sgd, gentle)
    assert sentence.endswith("contradicts it.")


def test_each_strength_of_a_remedy_gets_its_own_verdict():
    base = group("baseline", lambda s: curve(5, 20 + s % 2, s))
    smaller = group("lpr-1", lambda s: curve(5, 5 + s % 2, s, later=80 + s % 2))
    same = group("lpr-10", lambda s: curve(5, 20 + (s + 1) % 2, s, later=90 - s % 2))
    out = verdicts(base, smaller, same)
    assert len(out) == 2
    assert "**lpr-1**" in out[0] and out[0].endswith("agrees.")
    assert "**lpr-10**" in out[1] and "does not show it" in out[1]


def test_nothing_is_said_without_the_compared_group():
    assert verdicts(group("sgd-momentum", lambda s: curve(2, 20, s))) == []
