"""Every run's curves as tidy tables, for plotting in one's own tools.

``curves``: one row per run × evaluation point × evaluated task: the run, its group (as the
report names it, the key every table of a report shares) and seed, the point, the training
batch it was taken at, the task, the accuracy in % (and each subset's, with several), and
each hidden layer's activity (shares of units in 0-1, the mean square of the activations).
``losses``: one row per run × training batch: the loss and the part of it beyond the
cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from stabgap.core.curves import STATISTICS

# A statistic's column, its unit in its name: the fractions of units are shares (0-1).
COLUMNS = {"active_fraction": "active_share", "dead_fraction": "dead_share"}


def curve_rows(runs: Sequence, group: dict[str, str]) -> list[dict]:
    """Tidy rows of the accuracy and activity curves (tasks not evaluated are left out)."""
    rows = []
    for r in runs:
        acc = np.asarray(r.acc)
        for p, t in zip(*np.nonzero(np.isfinite(acc)), strict=True):
            row = {
                "run": r.name,
                "group": group.get(r.name, r.experiment),
                "seed": r.config.get("seed"),
                "point": int(p),
                "batch": int(r.eval_steps[p]),
                "task": int(t) + 1,
                "accuracy_pct": float(acc[p, t]),
            }
            if r.acc_repeats is not None:
                for k, a in enumerate(r.acc_repeats, start=1):
                    row[f"accuracy_pct_subset{k}"] = float(a[p, t])
            for statistic in STATISTICS:
                values = r.activity.get(statistic)
                if values is not None:
                    for layer, v in enumerate(values[p, t], start=1):
                        row[f"{COLUMNS.get(statistic, statistic)}_layer{layer}"] = float(v)
            rows.append(row)
    return rows


def loss_rows(runs: Sequence, group: dict[str, str]) -> list[dict]:
    """Tidy rows of the training losses, batch by batch."""
    rows = []
    for r in runs:
        if r.loss is None:
            continue
        penalty = r.penalty if r.penalty is not None else np.zeros_like(r.loss)
        for t, (loss, extra) in enumerate(zip(r.loss, penalty, strict=True)):
            rows.append(
                {
                    "run": r.name,
                    "group": group.get(r.name, r.experiment),
                    "seed": r.config.get("seed"),
                    "batch": t,
                    "loss": float(loss),
                    "penalty": float(extra),
                    "cross_entropy": float(loss - extra),
                }
            )
    return rows
