"""Tests for stabgap.metrics and stabgap.studies.reference.

Hand-worked examples on tiny arrays pin down every definition; the reference file of seed
2958 checks that compute_metrics reproduces the reference's task-1 numbers.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from stabgap.errors import StabgapError
from stabgap.metrics import (
    MetricRow,
    acc_before_switch,
    avg_acc_curve,
    avg_acc_final,
    compute_metrics,
    gap_depth,
    gap_position,
    learning_curve_area,
    min_acc,
    time_to_recover,
    wc_acc,
    windowed_forgetting,
)
from stabgap.studies.reference import ReferenceRun, load_reference_results

NAN = math.nan
TOL = 1e-6

REFERENCE_DIR = Path(
    os.environ.get("STABGAP_TEST_REFERENCE")
    or Path(__file__).resolve().parents[1].parent / "shared" / "reference"
)
RESULTS_FILE = REFERENCE_DIR / "reference-results-seed2958.json"
METRICS_FILE = REFERENCE_DIR / "reference-metrics-seed2958.json"
needs_reference = pytest.mark.skipif(
    not (RESULTS_FILE.is_file() and METRICS_FILE.is_file()),
    reason=f"reference files not found in {REFERENCE_DIR} (set STABGAP_TEST_REFERENCE)",
)

# Three tasks, three points per interval: boundaries (3, 6, 9).
#            interval 1         interval 2         interval 3
# task 1:    50   80   90   |   60   85   95   |   55   75   80
# task 2:    -    -    -    |   40   70   88   |   50   90   85
# task 3:    -    -    -    |   -    -    -    |   30   60   92
B3 = (3, 6, 9)
ACC3 = np.array(
    [
        [50, NAN, NAN],
        [80, NAN, NAN],
        [90, NAN, NAN],
        [60, 40, NAN],
        [85, 70, NAN],
        [95, 88, NAN],
        [55, 50, 30],
        [75, 90, 60],
        [80, 85, 92],
    ],
    dtype=float,
)


def col(*task_curves: list[float]) -> np.ndarray:
    """Stack per-task curves (same length) as the columns of an acc matrix."""
    return np.array(task_curves, dtype=float).T


# --------------------------------------------------------------------------------------------
# Hand-worked examples
# --------------------------------------------------------------------------------------------


def test_acc_before_switch_hand_worked():
    got = acc_before_switch(ACC3, B3)
    expected = np.array([[90, 95, 80], [NAN, 88, 85], [NAN, NAN, 92]])
    assert got.shape == (3, 3)
    np.testing.assert_array_equal(got, expected)  # NaNs compare equal here
    # The result is a copy: writing into it must not change acc.
    got[0, 0] = -1
    assert ACC3[2, 0] == 90


def test_gap_depth_hand_worked():
    assert gap_depth(ACC3, B3, 1, 2) == 30.0  # 90 - min(60, 85, 95)
    # GD_{1,3} is measured against the end of interval 2 (95), not the end of task 1 (90).
    assert gap_depth(ACC3, B3, 1, 3) == 40.0  # 95 - min(55, 75, 80)
    assert gap_depth(ACC3, B3, 2, 3) == 38.0  # 88 - min(50, 90, 85)


def test_gap_position_hand_worked():
    assert gap_position(ACC3, B3, 1, 2) == 0.0
    assert gap_position(ACC3, B3, 2, 3) == 0.0
    # Minimum 60 at points 3 and 4 of interval 2 (which starts at 2): the first one counts.
    acc = col([80, 90, 85, 60, 60, 90])
    acc = np.hstack([acc, np.full((6, 1), 50.0)])
    assert gap_position(acc, (2, 6), 1, 2) == 1.0
    assert gap_depth(acc, (2, 6), 1, 2) == 30.0


def test_time_to_recover_hand_worked():
    # Task 1, interval 2: back to >= 90 at point 5, i.e. 2 points after the switch at 3.
    assert time_to_recover(ACC3, B3, 1, 2) == pytest.approx(200 / 3)
    # Task 2, interval 3: back to >= 88 at point 7 (90), 1 point after the switch at 6.
    assert time_to_recover(ACC3, B3, 2, 3) == pytest.approx(100 / 3)


def test_time_to_recover_never_recovered_is_nan():
    # Task 1 never gets back to 95 after the switch at point 6.
    assert math.isnan(time_to_recover(ACC3, B3, 1, 3))


def test_time_to_recover_found_only_after_interval_ends():
    # Interval 2 = points 2..3; task 1 gets back to 90 only at point 5, in interval 3.
    acc = col([80, 90, 70, 85, 88, 91], [0, 0, 50, 60, 70, 80], [0, 0, 0, 0, 50, 60])
    b = (2, 4, 6)
    assert gap_depth(acc, b, 1, 2) == 20.0
    assert time_to_recover(acc, b, 1, 2) == 150.0  # (5 - 2) / 2 * 100: more than 100 %


def test_time_to_recover_hits_reference_exactly():
    # ">=": getting back to exactly the reference accuracy counts as recovered.
    acc = col([80, 90, 70, 90], [0, 0, 50, 60])
    assert time_to_recover(acc, (2, 4), 1, 2) == 50.0


def test_negative_gap_depth():
    # The accuracy only rises after the switch: negative depth, minimum at the switch, and
    # the minimum itself is already above the reference point, so TTR is 0.
    acc = col([80, 90, 95, 97], [10, 10, 50, 60])
    b = (2, 4)
    assert gap_depth(acc, b, 1, 2) == -5.0
    assert gap_position(acc, b, 1, 2) == 0.0
    assert time_to_recover(acc, b, 1, 2) == 0.0


def test_nans_for_unevaluated_points():
    # Task 2 is evaluated at the end of interval 2 but nowhere in interval 3.
    acc = col([80, 90, 60, 85, 70, 80], [NAN, NAN, 50, 88, NAN, NAN], [NAN] * 4 + [40, 50])
    b = (2, 4, 6)
    assert math.isnan(gap_depth(acc, b, 2, 3))
    assert math.isnan(gap_position(acc, b, 2, 3))
    assert math.isnan(time_to_recover(acc, b, 2, 3))
    # NaNs inside an interval are skipped by the minimum and by the recovery search.
    acc2 = col([80, 90, NAN, 60, NAN, 95], [0, 0, 50, 60, 70, 80], [0] * 4 + [40, 50])
    assert gap_depth(acc2, b, 1, 2) == 30.0
    assert gap_position(acc2, b, 1, 2) == 1.0
    assert time_to_recover(acc2, b, 1, 2) == 150.0  # point 5, NaN at point 4 skipped
    # Reference point not evaluated: depth and TTR undefined, the minimum is still located.
    acc3 = col([80, NAN, 60, 85], [0, 0, 50, 60])
    assert math.isnan(gap_depth(acc3, (2, 4), 1, 2))
    assert math.isnan(time_to_recover(acc3, (2, 4), 1, 2))
    assert gap_position(acc3, (2, 4), 1, 2) == 0.0


def test_avg_acc_final_hand_worked():
    assert avg_acc_final(ACC3) == pytest.approx((80 + 85 + 92) / 3)
    # A task not evaluated at the last point makes the average over all tasks unknown.
    acc = ACC3.copy()
    acc[-1, 1] = NAN
    assert math.isnan(avg_acc_final(acc))


def test_avg_acc_curve_hand_worked():
    expected = [50, 80, 90, 50, 77.5, 91.5, 45, 75, (80 + 85 + 92) / 3]
    np.testing.assert_allclose(avg_acc_curve(ACC3, B3), expected)


def test_avg_acc_curve_ignores_future_tasks_and_nans():
    # "All tasks" evaluation: tasks 2 and 3 have values (chance level) before they start.
    acc = ACC3.copy()
    acc[:3, 1] = 10.0
    acc[:6, 2] = 10.0
    expected = [50, 80, 90, 50, 77.5, 91.5, 45, 75, (80 + 85 + 92) / 3]
    np.testing.assert_allclose(avg_acc_curve(acc, B3), expected)
    # A seen task not evaluated at a point is left out; a point with nothing is NaN.
    acc[4, 0] = NAN
    acc[0, 0] = NAN
    got = avg_acc_curve(acc, B3)
    assert got[4] == 70.0
    assert math.isnan(got[0])


def test_min_acc_hand_worked():
    assert min_acc(ACC3, B3, 1) == 55.0  # min over points 3..8
    assert min_acc(ACC3, B3, 1, until_interval=2) == 60.0  # points 3..5 only
    assert min_acc(ACC3, B3, 2) == 50.0
    assert math.isnan(min_acc(ACC3, B3, 3))  # nothing after the last task
    assert math.isnan(min_acc(ACC3, B3, 2, until_interval=2))  # empty window
    acc = ACC3.copy()
    acc[6:, 1] = NAN
    assert math.isnan(min_acc(acc, B3, 2))  # never evaluated after its training


def test_wc_acc_hand_worked():
    assert wc_acc(ACC3, B3, 1) == 90.0
    # k = 2: 88 / 2 + min-ACC of task 1 up to the end of interval 2 (60) / 2; the later,
    # lower 55 of interval 3 must not count.
    assert wc_acc(ACC3, B3, 2) == 74.0
    # k = 3: 92 / 3 + 2/3 * mean(55, 50)
    assert wc_acc(ACC3, B3, 3) == pytest.approx(92 / 3 + 2 / 3 * 52.5)


def test_compute_metrics_rows_and_order():
    rows = compute_metrics(ACC3, B3)
    keys = [(r.metric, r.task, r.interval) for r in rows]
    pairs = ((1, 2), (1, 3), (2, 3))
    per_pair = (
        "gap_depth",
        "gap_position",
        "time_to_recover",
        "recovered",
        "gap_depth_robust",
        "time_to_recover_robust",
        "drop_slope",
        "recovery_slope",
    )
    earlier = ("min_acc", "forgetting", "windowed_forgetting_w10", "windowed_forgetting_w100")
    every = ("windowed_plasticity_w10", "windowed_plasticity_w100", "learning_curve_area")
    expected_keys = (
        [("acc_before_switch", i, j) for i in (1, 2, 3) for j in range(i, 4)]
        + [(m, i, j) for m in per_pair for i, j in pairs]
        + [("avg_acc_final", None, None), ("aaa", None, None)]
        + [(m, t, None) for m in earlier for t in (1, 2, None)]
        + [(m, t, None) for m in every for t in (1, 2, 3, None)]
        + [("wc_acc", None, k) for k in (1, 2, 3)]
    )  # fmt: skip
    assert keys == expected_keys
    values = {k: r.value for k, r in zip(keys, rows, strict=True)}
    assert values[("acc_before_switch", 2, 3)] == 85.0
    assert values[("gap_depth", 1, 3)] == 40.0
    assert values[("gap_position", 2, 3)] == 0.0
    assert values[("time_to_recover", 1, 2)] == pytest.approx(200 / 3)
    assert values[("time_to_recover", 1, 3)] is None  # never recovered: None, not NaN
    assert values[("recovered", 1, 3)] == 0.0 and values[("recovered", 1, 2)] == 1.0
    assert values[("avg_acc_final", None, None)] == pytest.approx(257 / 3)
    assert values[("min_acc", 1, None)] == 55.0
    assert values[("min_acc", None, None)] == (55.0 + 50.0) / 2  # De Lange et al.'s average
    assert values[("wc_acc", None, 2)] == 74.0
    assert all(isinstance(r, MetricRow) for r in rows)
    assert all(r.value is None or type(r.value) is float for r in rows)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rows[0].value = 1.0  # type: ignore[misc]
    assert compute_metrics(ACC3, B3) == rows  # deterministic


def test_compute_metrics_single_task():
    acc = col([10, 50, 70])
    rows = compute_metrics(acc, (3,))
    assert [(r.metric, r.task, r.interval, r.value) for r in rows] == [
        ("acc_before_switch", 1, 1, 70.0),
        ("avg_acc_final", None, None, 70.0),
        ("aaa", None, None, pytest.approx(130 / 3)),
        ("windowed_plasticity_w10", 1, None, 60.0),  # 10 -> 70 within two points
        ("windowed_plasticity_w10", None, None, 60.0),
        ("windowed_plasticity_w100", 1, None, 60.0),
        ("windowed_plasticity_w100", None, None, 60.0),
        ("learning_curve_area", 1, None, pytest.approx(130 / 3)),
        ("learning_curve_area", None, None, pytest.approx(130 / 3)),
        ("wc_acc", None, 1, 70.0),
    ]


def test_functions_accept_lists_and_do_not_modify_input():
    before = ACC3.copy()
    assert gap_depth(ACC3.tolist(), list(B3), 1, 2) == 30.0
    compute_metrics(ACC3, np.array(B3))
    np.testing.assert_array_equal(ACC3, before)


def _naive(acc: np.ndarray, b: tuple[int, ...], i: int, j: int) -> tuple[float, int, float]:
    """Straight loops over the definitions, for a cross-check on random curves."""
    s = (0, *b)
    a = acc[:, i - 1]
    ref = a[s[j - 1] - 1]
    t_min = min(range(s[j - 1], s[j]), key=lambda t: (a[t], t))
    ttr = NAN
    for t in range(t_min, len(a)):
        if a[t] >= ref:
            ttr = (t - s[j - 1]) / (s[j] - s[j - 1]) * 100
            break
    return ref - a[t_min], t_min - s[j - 1], ttr


def test_gap_metrics_match_naive_loops_on_random_curves():
    rng = np.random.default_rng(0)
    b = (7, 12, 20, 26)
    for _ in range(50):
        # Coarse values so that ties (first-minimum rule, exact recovery) actually happen.
        acc = rng.integers(0, 10, size=(26, 4)).astype(float) * 10
        for i in range(1, 4):
            for j in range(i + 1, 5):
                gd, pos, ttr = _naive(acc, b, i, j)
                assert gap_depth(acc, b, i, j) == gd
                assert gap_position(acc, b, i, j) == pos
                got = time_to_recover(acc, b, i, j)
                assert (math.isnan(got) and math.isnan(ttr)) or got == pytest.approx(ttr)


# --------------------------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("acc", "boundaries", "match"),
    [
        (np.zeros(9), B3, "2-D"),
        (np.zeros((9, 3, 1)), B3, "2-D"),
        (np.zeros((0, 3)), (1, 2, 3), "at least one point"),
        (np.zeros((9, 0)), B3, "at least one point"),
        (np.full((9, 3), np.inf), B3, "infinite"),
        (ACC3, (3, 3, 9), "strictly increasing"),
        (ACC3, (6, 3, 9), "strictly increasing"),
        (ACC3, (0, 6, 9), "positive"),
        (ACC3, (3, 6, 8), "last boundary"),
        (ACC3, (3, 6, 10), "last boundary"),
        (ACC3, (3.0, 6.0, 9.0), "integers"),
        (ACC3, (True, 6, 9), "integers"),
        (ACC3, (), "non-empty"),
        (ACC3, ((3, 6), (6, 9)), "1-D"),
        (ACC3, (6, 9), "task columns"),
    ],
)
def test_invalid_acc_or_boundaries(acc, boundaries, match):
    with pytest.raises(ValueError, match=match):
        compute_metrics(acc, boundaries)
    with pytest.raises(ValueError, match=match):
        avg_acc_curve(acc, boundaries)


@pytest.mark.parametrize(
    ("func", "task", "interval", "match"),
    [
        (gap_depth, 0, 2, "task must be between 1 and 3"),
        (gap_depth, 4, 2, "task must be between 1 and 3"),
        (gap_depth, 3, 3, "last task"),
        (gap_position, 2, 2, "interval must be between 3 and 3"),
        (gap_position, 2, 1, "interval must be between 3 and 3"),
        (time_to_recover, 1, 4, "interval must be between 2 and 3"),
        (time_to_recover, 1.0, 2, "task must be an int"),
        (gap_depth, True, 2, "task must be an int"),
        (gap_depth, 1, "2", "interval must be an int"),
    ],
)
def test_invalid_task_or_interval(func, task, interval, match):
    with pytest.raises(ValueError, match=match):
        func(ACC3, B3, task, interval)


def test_gap_metrics_accept_numpy_ints():
    assert gap_depth(ACC3, B3, np.int64(1), np.int32(2)) == 30.0


def test_invalid_min_acc_and_wc_acc_arguments():
    with pytest.raises(ValueError, match="task must be between 1 and 3"):
        min_acc(ACC3, B3, 4)
    with pytest.raises(ValueError, match="until_interval must be between 1 and 3"):
        min_acc(ACC3, B3, 1, until_interval=4)
    with pytest.raises(ValueError, match="after_task must be between 1 and 3"):
        wc_acc(ACC3, B3, 0)
    with pytest.raises(ValueError, match="2-D"):
        avg_acc_final(np.zeros(3))
    with pytest.raises(ValueError, match="last boundary"):
        acc_before_switch(ACC3, (3, 6, 8))


# --------------------------------------------------------------------------------------------
# The reference's results file (seed 2958)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_runs() -> dict[int, ReferenceRun]:
    return load_reference_results(RESULTS_FILE)


@pytest.fixture(scope="module")
def reference_metrics() -> dict[str, dict]:
    return json.loads(METRICS_FILE.read_text())


@needs_reference
def test_load_reference_results_structure(reference_runs):
    assert list(reference_runs) == list(range(1, 15))
    for no, run in reference_runs.items():
        assert run.experiment_no == no
        assert run.seed == 2958
        assert run.boundaries == (500, 1000, 1500)
        assert run.acc.shape == (1500, 3)
        assert run.acc.dtype == np.float64
        # Task k is evaluated from the start of interval k on: 1500, 1000 and 500 points.
        assert np.isnan(run.acc[:500, 1]).all() and np.isnan(run.acc[:1000, 2]).all()
        assert not np.isnan(run.acc[:, 0]).any()
        assert not np.isnan(run.acc[500:, 1]).any() and not np.isnan(run.acc[1000:, 2]).any()
        assert run.replay is (no not in (2, 3))
        assert run.parameters["n_batches_per_task"] == 500
        assert not run.acc.flags.writeable
    exp1 = reference_runs[1]
    assert exp1.acc[0, 0] == 10.3515625  # first value of task 1's curve in the file
    raw = json.loads(RESULTS_FILE.read_text())
    assert exp1.acc[500, 1] == raw["1"]["performances"][1][0]
    assert exp1.acc[-1, 2] == raw["1"]["performances"][2][-1]
    assert reference_runs[3].parameters["decay_lambda"] == 1e-05
    assert reference_runs[13].parameters["n_neurons"] == 4096


@needs_reference
@pytest.mark.parametrize("experiment", range(1, 15))
def test_task1_metrics_match_reference(reference_runs, reference_metrics, experiment):
    run = reference_runs[experiment]
    expected = reference_metrics[str(experiment)]
    assert list(run.boundaries) == expected["switch_indices"]
    rows = {
        (r.metric, r.task, r.interval): r.value for r in compute_metrics(run.acc, run.boundaries)
    }

    for j, value in enumerate(expected["acc_before_switch_task1"], start=1):
        assert rows[("acc_before_switch", 1, j)] == pytest.approx(value, abs=TOL)
    for j in (2, 3):
        key = f"interval{j}"
        assert rows[("gap_depth", 1, j)] == pytest.approx(expected["gap_depth_task1"][key], abs=TOL)
        ttr_expected = expected["time_to_recover_task1_pct"][key]
        ttr = rows[("time_to_recover", 1, j)]
        if ttr_expected is None:
            assert ttr is None
        else:
            assert ttr == pytest.approx(ttr_expected, abs=TOL)
    assert rows[("avg_acc_final", None, None)] == pytest.approx(expected["avg_acc_final"], abs=TOL)


@needs_reference
def test_every_batch_curves_keep_every_value_they_had_before_windows_were_in_batches(
    reference_runs,
):
    """Each point of the reference's curves is one batch: measured in batches (steps given)
    or in points, every metric keeps, to the bit, the value it had before."""
    before = json.loads((Path(__file__).parent / "fixtures" / FIXTURE).read_text())["rows"]
    for no, run in reference_runs.items():
        steps = np.arange(run.acc.shape[0])
        for rows in (
            compute_metrics(run.acc, run.boundaries),
            compute_metrics(run.acc, run.boundaries, steps=steps),
        ):
            now = {(r.metric, r.task, r.interval): r.value for r in rows}
            for metric, task, interval, value in before[str(no)]:
                assert now[(metric, task, interval)] == value, (no, metric, task, interval)


FIXTURE = "reference-2958-metrics-before-steps.json"


def test_windows_and_times_are_in_batches_whatever_the_evaluation_schedule():
    """One run's task-1 curve measured at every batch and at every 2nd batch: windows and
    times span the same batches (a window counted in points would span twice as many)."""
    nan = math.nan
    task1 = [50, 60, 70, 80, 90, 90, 80, 70, 60, 70, 90, 95]  # switch after batch 5
    task2 = [nan] * 6 + [40, 50, 60, 70, 80, 90]
    dense = np.array([task1, task2], dtype=float).T
    sparse, steps = dense[::2], np.arange(0, 12, 2)
    ends = (6, 12)  # in batches
    # Within 2 batches: 90 -> 70 (batches 5 -> 7), 80 -> 60 (6 -> 8): 20 either way; read
    # as 2 points, the every-2nd-batch curve would take 90 -> 60 (4 batches): 30.
    assert windowed_forgetting(dense, ends, 1, 2) == 20.0
    assert windowed_forgetting(sparse, ends, 1, 2, steps=steps) == 20.0
    assert windowed_forgetting(sparse, (3, 6), 1, 2) == 30.0  # the points' reading
    # The minimum 2 batches after the switch; back at 90 four batches after it.
    for acc, kw in ((dense, {}), (sparse, {"steps": steps})):
        assert gap_position(acc, ends, 1, 2, **kw) == 2.0
        assert time_to_recover(acc, ends, 1, 2, **kw) == pytest.approx(4 / 6 * 100)
    # LCA^2 of task 2: batches 6, 7, 8 at every batch; 6 and 8 at every 2nd.
    assert learning_curve_area(dense, ends, 2, 2) == 50.0
    assert learning_curve_area(sparse, ends, 2, 2, steps=steps) == 50.0
    # Unevenly spaced points (a schedule): the same definitions.
    uneven = np.array([0, 1, 2, 5, 6, 7, 8, 10, 11])
    assert time_to_recover(dense[uneven], ends, 1, 2, steps=uneven) == pytest.approx(4 / 6 * 100)


@pytest.mark.parametrize(
    "steps,ends,match",
    [
        ([0, 1, 1, 2], (2, 4), "strictly increasing"),
        ([0, 1, 2], (2, 4), "one batch index per point"),
        ([0, 1, 2, 3], (2, 3), "must lie after the last point's batch"),
        ([3, 4, 5, 6], (2, 8), "every interval needs at least one point"),
        ([0.5, 1, 2, 3], (2, 4), "whole numbers"),
    ],
)
def test_invalid_steps(steps, ends, match):
    acc = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, 1.0], [4.0, 2.0]])
    with pytest.raises(ValueError, match=match):
        gap_depth(acc, ends, 1, 2, steps=steps)


@needs_reference
def test_reference_never_recovered_cases_exist(reference_runs):
    # The file exercises the None branch: no replay (2, 3) never recover task 1 in interval 2.
    for no in (2, 3):
        run = reference_runs[no]
        assert math.isnan(time_to_recover(run.acc, run.boundaries, 1, 2))


# --------------------------------------------------------------------------------------------
# Loader errors
# --------------------------------------------------------------------------------------------


def _entry(**overrides):
    entry = {
        "experiment_no": 1,
        "performances": [[50.0, 60.0, 70.0, 80.0], [40.0, 45.0]],
        "switch_indices": [2, 4],
        "parameters": {"batch_size": 512},
        "use_perfect_replay": False,
        "seed": 7,
    }
    entry.update(overrides)
    return entry


def test_load_small_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"5": _entry(experiment_no=5), "1": _entry()}))
    runs = load_reference_results(path)
    assert list(runs) == [1, 5]
    run = runs[5]
    np.testing.assert_array_equal(run.acc, [[50, NAN], [60, NAN], [70, 40], [80, 45]])
    assert run.boundaries == (2, 4)
    assert run.replay is False
    assert run.seed == 7
    assert run.parameters == {"batch_size": 512}
    assert gap_depth(run.acc, run.boundaries, 1, 2) == -10.0


def _write(tmp_path: Path, content: str) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(content)
    return path


def _drop(field: str) -> dict:
    entry = _entry()
    del entry[field]
    return entry


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "non-empty JSON object"),
        ("{}", "non-empty JSON object"),
        (json.dumps({"1": [1]}), "is not a JSON object"),
        (json.dumps({"1": _drop("performances")}), "lacks the field 'performances'"),
        (json.dumps({"1": _drop("switch_indices")}), "lacks the field 'switch_indices'"),
        (json.dumps({"1": _drop("parameters")}), "lacks the field 'parameters'"),
        (json.dumps({"1": _drop("use_perfect_replay")}), "lacks the field 'use_perfect_replay'"),
        (json.dumps({"1": _drop("seed")}), "lacks the field 'seed'"),
        (json.dumps({"1": _drop("experiment_no")}), "lacks the field 'experiment_no'"),
        (json.dumps({"1": _entry(switch_indices=[4, 2])}), "strictly"),
        (json.dumps({"1": _entry(performances=[[1.0] * 4])}), "one curve per task"),
        (json.dumps({"1": _entry(performances=[[1.0] * 4, [1.0] * 3])}), "has 3 points"),
        (json.dumps({"1": _entry(performances=[[1.0] * 4, [1.0, "x"]])}), "non-numeric"),
        (json.dumps({"1": _entry(use_perfect_replay="yes")}), "true or false"),
        (json.dumps({"1": _entry(seed=1.5)}), "'seed' must be an integer"),
        (json.dumps({"1": _entry(), "2": _entry()}), "appears twice"),
    ],
)
def test_load_reference_results_errors(tmp_path, content, match):
    path = _write(tmp_path, content)
    with pytest.raises(StabgapError, match=match) as info:
        load_reference_results(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message


def test_load_reference_results_missing_file(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(StabgapError, match="cannot read") as info:
        load_reference_results(path)
    assert str(path) in str(info.value)
