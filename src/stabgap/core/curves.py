"""The curves of a stack of runs, kept on the device while it trains and copied once at the end.

At every evaluation point, for each copy: the right answers on each evaluated task's test
subset (for each of ``eval_repeats`` independent subsets), and what each hidden layer did
on them (:class:`stabgap.core.evaluate.Evaluation`). Copying them to the host after every
batch would stall a GPU; integer counts turn into exact percentages at the end (100·k/m
in float64, as the reference computes them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from stabgap.core.evaluate import Evaluation

STATISTICS = ("active_fraction", "mean_square", "dead_fraction")


@dataclass
class CopyCurves:
    """One copy's curves, on the host.

    Attributes:
        acc: (points, tasks) accuracy in %, pooled over the repeats; NaN where not evaluated.
        acc_repeats: (repeats, points, tasks) each subset's accuracy, when there were several.
        activity: each of :data:`STATISTICS` as (points, tasks, layers), averaged over the
            repeats; NaN where not evaluated or not recorded (config ``activity_every``).
    """

    acc: np.ndarray
    acc_repeats: np.ndarray | None
    activity: dict[str, np.ndarray]


class Curves:
    """Curves of R copies over `points` evaluations of up to `tasks` tasks."""

    def __init__(self, r: int, points: int, tasks: int, repeats: int, device) -> None:
        self.shape, self.repeats, self.device = (r, points, tasks), repeats, device
        self.counts = torch.full((r, points, repeats, tasks), -1, dtype=torch.int32, device=device)
        self.sizes = np.zeros(points, dtype=np.int64)  # m of each point
        self.stats: torch.Tensor | None = None  # (3, R, points, repeats, tasks, layers)

    def record(self, point: int, repeat: int, size: int, ev: Evaluation) -> None:
        """Keep one evaluation (of the first ev.correct.shape[1] tasks) at `point`."""
        n = ev.correct.shape[1]
        self.counts[:, point, repeat, :n] = ev.correct
        self.sizes[point] = size
        if ev.active is None:  # no statistics at this point: they stay NaN
            return
        if self.stats is None:
            r, points, tasks = self.shape
            layers = ev.active.shape[-1]
            self.stats = torch.full(
                (3, r, points, self.repeats, tasks, layers), float("nan"), device=self.device
            )
        for k, values in enumerate((ev.active, ev.square, ev.dead)):
            self.stats[k, :, point, repeat, :n] = values

    def latest(self, point: int) -> np.ndarray:
        """(R, tasks) pooled accuracy at `point` (a copy to the host: for logs, not per batch)."""
        return self._pooled(slice(point, point + 1))[:, 0]

    def pooled(self, points: int) -> np.ndarray:
        """(R, points, tasks) pooled accuracy of the first `points` points (for logs)."""
        return self._pooled(slice(0, points))

    def _pooled(self, at: slice) -> np.ndarray:
        counts = self.counts[:, at].cpu().numpy().astype(np.float64)  # (R, p, repeats, tasks)
        sizes = np.maximum(self.sizes[at], 1)[None, :, None]
        pooled = counts.sum(axis=2) / (self.repeats * sizes)
        return np.where(counts.min(axis=2) >= 0, 100.0 * pooled, np.nan)

    def finish(self) -> list[CopyCurves]:
        """Every copy's curves, on the host: the only copy of them from the device."""
        counts = self.counts.cpu().numpy().astype(np.float64)  # (R, points, repeats, tasks)
        sizes = self.sizes[None, :, None, None]
        per_repeat = np.where(counts >= 0, 100.0 * counts / np.maximum(sizes, 1), np.nan)
        pooled = per_repeat.mean(axis=2)  # equal subsets: the mean is the pooled count
        stats = None if self.stats is None else self.stats.cpu().numpy().mean(axis=3)
        out = []
        for i in range(self.shape[0]):
            activity = {} if stats is None else {s: stats[k, i] for k, s in enumerate(STATISTICS)}
            repeats = per_repeat[i].transpose(1, 0, 2) if self.repeats > 1 else None
            out.append(CopyCurves(pooled[i], repeats, activity))
        return out
