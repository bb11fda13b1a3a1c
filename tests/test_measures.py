"""The robust gap metrics and the field's other measures, each against a hand-worked case."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stabgap.metrics import (
    average_anytime_accuracy,
    drop_slope,
    forgetting,
    gap_depth,
    gap_depth_robust,
    learning_curve_area,
    recovery_slope,
    time_to_recover,
    time_to_recover_robust,
    windowed_forgetting,
    windowed_plasticity,
)

NAN = math.nan


def two_tasks(task1: list[float], switch: int, task2: float = 50.0) -> np.ndarray:
    """Task 1's curve, with task 2 evaluated (at a constant) from the switch on."""
    return np.array([[a, NAN if t < switch else task2] for t, a in enumerate(task1)], float)


def test_a_high_last_point_swings_the_reference_not_the_robust_metrics():
    """The reference's level is the single last point: a lucky 95 there makes the gap 5
    p.p. deeper and the run 'never recover'. The window's mean hardly moves."""
    calm = [90.0] * 10 + [80, 70, 75, 85, 89, 90, 90, 90]
    lucky = calm.copy()
    lucky[9] = 95.0  # one noisy evaluation just before the switch
    b = (10, 18)
    a, c = two_tasks(calm, 10), two_tasks(lucky, 10)
    assert gap_depth(c, b, 1, 2) - gap_depth(a, b, 1, 2) == 5.0
    assert math.isnan(time_to_recover(c, b, 1, 2)) and not math.isnan(time_to_recover(a, b, 1, 2))
    # Window 10: the level moves by 0.5; smoothing 1 keeps the minimum 70.
    assert gap_depth_robust(a, b, 1, 2, window=10, smooth=1) == 20.0
    assert gap_depth_robust(c, b, 1, 2, window=10, smooth=1) == 20.5
    # Recovered within 0.5 p.p. of 90.5: at 90, the 5th point after the switch.
    assert time_to_recover_robust(c, b, 1, 2, window=10, smooth=1, tolerance=0.5) == 5 / 8 * 100


def test_robust_metrics_by_hand_with_smoothing():
    curve = [88, 92, 90, 90, 60, 62, 64, 90, 90]  # switch after point 3
    acc, b = two_tasks(curve, 4), (4, 9)
    # level: mean(92, 90, 90) = 90.67 (window 3); smoothed (3 points, not across the
    # switch): 61, 62, 72, 81.33, 90 -> minimum 61 at the switch.
    assert gap_depth_robust(acc, b, 1, 2, window=3, smooth=3) == pytest.approx(272 / 3 - 61)
    # back within 1 p.p. of 90.67 at the 4th point after the switch (90 >= 89.67)
    assert time_to_recover_robust(acc, b, 1, 2, window=3, smooth=3, tolerance=1.0) == 80.0
    assert math.isnan(time_to_recover_robust(acc, b, 1, 2, window=3, smooth=3, tolerance=0.0))


def test_slopes_by_hand():
    curve = [80, 80, 80, 80, 60, 40, 50, 60, 70, 80, 80]
    acc, b = two_tasks(curve, 4), (4, 11)
    assert drop_slope(acc, b, 1, 2, window=4, smooth=1) == (40 - 80) / 2  # 2 points to 40
    assert recovery_slope(acc, b, 1, 2, window=4, smooth=1, tolerance=0) == 40 / 4  # 40 in 4
    flat = two_tasks([80, 80, 80, 80, 60, 50, 40, 30, 20, 10, 5], 4)
    assert math.isnan(recovery_slope(flat, b, 1, 2, window=4, smooth=1, tolerance=0))


def test_windowed_forgetting_and_plasticity_by_hand():
    task1 = [10, 30, 60, 70, 65, 40, 45, 50, 20, 60]  # own interval: points 0-3
    acc = np.array([[a, NAN if t < 4 else 50 + t] for t, a in enumerate(task1)], float)
    b = (4, 10)
    # From point 3 (70) on: within 2 points the largest drop is 65 -> 40 = 25 (70 -> 40
    # is 2 points too: 30); within 5 points 70 -> 20 is out of reach (5 points: yes, 50).
    assert windowed_forgetting(acc, b, 1, window=2) == 30.0
    assert windowed_forgetting(acc, b, 1, window=5) == 50.0
    assert windowed_plasticity(acc, b, 1, window=1) == 30.0  # 30 -> 60
    assert windowed_plasticity(acc, b, 1, window=3) == 60.0  # 10 -> 70
    assert windowed_plasticity(acc, b, 2, window=2) == 2.0  # 54 -> 56
    assert math.isnan(windowed_forgetting(acc, b, 2))  # nothing after the last task


def test_aaa_forgetting_and_learning_curve_area_by_hand():
    acc = np.array(
        [[40, NAN, NAN], [80, NAN, NAN], [60, 30, NAN], [70, 90, NAN], [75, 70, 20], [65, 85, 90]],
        float,
    )
    b = (2, 4, 6)
    # Average over seen tasks: 40, 80, 45, 80, 55, 80 -> mean 380/6.
    assert average_anytime_accuracy(acc, b) == pytest.approx(380 / 6)
    # Task 1: best at ends of intervals 1-2 is 80; final 65 -> 15. Task 2: 90 - 85 = 5.
    assert forgetting(acc, b, 1) == 15.0 and forgetting(acc, b, 2) == 5.0
    assert math.isnan(forgetting(acc, b, 3))
    assert learning_curve_area(acc, b, 2, beta=1) == 60.0  # (30 + 90) / 2
    assert learning_curve_area(acc, b, 3, beta=5) == 55.0  # its interval has only 2 points
