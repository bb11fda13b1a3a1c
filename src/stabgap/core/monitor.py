"""Follow runs while they train: a live log per run, and TensorBoard when asked.

Each run's log, ``OUT/logs/<run>.jsonl``, exists from the moment its training starts: its
first line is the run's config (its hyperparameters). Then the process training it appends
one JSON line and flushes it, so that ``tail -f`` or a notebook can follow a long run:

- every :data:`LOG_EVERY` batches and at the end of each task, and at every evaluation
  point of the first :data:`NEAR_SWITCH` batches after a switch, where the gap lives
  (a gap of 5 to 10 batches would fall between lines 25 apart)::

    {"batch": 250, "of": 1500, "task": 1, "loss": 0.183, "accuracy": [96.1],
     "accuracy_at": 249, "seconds": 41.2}

- at the end of each interval after the first, its gap depths (the reference's GD_i,j)::

    {"batch": 1000, "interval": 2, "gap_depth": {"GD_1,2": 4.2}}

``batch`` counts the batches trained, ``loss`` is the mean training loss of the batches
since the previous line, ``accuracy`` each evaluated task's accuracy at the latest
evaluation and ``accuracy_at`` that evaluation's batch as the run's curves number it (the
model after that many batches: an evaluation comes before the batch of its number).
TensorBoard draws each figure at the batch its line gives it (accuracy at
``accuracy_at``, as in curves.csv; loss at ``batch``). With ``--tensorboard`` the same
figures go to TensorBoard event files in ``OUT/tensorboard/<run>/`` (written by
torch.utils.tensorboard's SummaryWriter; ``pip install "stabgap[tensorboard]"``), with the
config as the run's hyperparameters (the HPARAMS tab) and the gap depths as its metrics.

Logging copies a few numbers from the device at each line, never at every batch but near
a switch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stabgap.errors import StabgapError

LOG_EVERY = 25
NEAR_SWITCH = 50  # batches after a switch in which every evaluation point is logged
LOGS, EVENTS = "logs", "tensorboard"


def check_tensorboard() -> None:
    """Refuse --tensorboard up front when its writer cannot be imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise StabgapError(
            "--tensorboard needs TensorBoard: pip install 'stabgap[tensorboard]'"
        ) from None


def _rounded(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 3)


class Monitor:
    """The live logs (and event files) of the runs of one stack, copy i being names[i]."""

    def __init__(
        self,
        folder: Path,
        names: Sequence[str],
        tensorboard: bool = False,
        configs: Sequence[dict] | None = None,
    ) -> None:
        """Open every run's log now, its config as the first line (`configs`: each run's,
        as plain values), so that it exists while the run trains."""
        self.folder, self.names, self.tensorboard = Path(folder), list(names), tensorboard
        self.started = time.monotonic()
        self.files: dict[str, object] = {}
        self.writers: dict[str, object] = {}
        for name, config in zip(self.names, configs or [None] * len(self.names), strict=True):
            self._line(name, {"run": name, "config": config})
            if tensorboard and config is not None:
                self._hparams(name, config)

    @staticmethod
    def wants(t: int, per_task: int, eval_every: int) -> bool:
        """Whether batch `t` (done, 1-based) gets a line: every LOG_EVERY batches, at each
        task's end, and at each evaluation point near a switch."""
        in_task = (t - 1) % per_task  # the batch's index within its task
        near = t > per_task and in_task < NEAR_SWITCH and (t - 1) % eval_every == 0
        return t % LOG_EVERY == 0 or t % per_task == 0 or near

    def gaps(self, t: int, interval: int, depths: dict[str, np.ndarray]) -> None:
        """The gap depths of an interval that just ended, {"GD_1,2": (R,) values}."""
        for i, name in enumerate(self.names):
            values = {
                k: None if np.isnan(v[i]) else round(float(v[i]), 3) for k, v in depths.items()
            }
            self._line(name, {"batch": t, "interval": interval, "gap_depth": values})
            if self.tensorboard:
                writer = self._writer(name)
                for k, v in values.items():
                    if v is not None:
                        writer.add_scalar(f"gap_depth/{k}", v, t)
                writer.flush()

    def select(self, indices: Sequence[int]) -> Monitor:
        """The monitor of some of the copies (a CPU trains a stack copy by copy)."""
        view = Monitor(self.folder, [self.names[i] for i in indices], self.tensorboard)
        view.files, view.writers, view.started = self.files, self.writers, self.started
        return view

    def __call__(
        self, t: int, total: int, task: int, loss: np.ndarray, acc: np.ndarray, at: int
    ) -> None:
        """Log batch `t` of `total` for every copy: loss (R,), accuracy (R, tasks) of the
        latest evaluation, the model after `at` batches (the curves' batch of that point)."""
        seconds = round(time.monotonic() - self.started, 2)
        for i, name in enumerate(self.names):
            accuracy = [_rounded(a) for a in acc[i]]
            line = {
                "batch": t,
                "of": total,
                "task": task,
                "loss": float(loss[i]),
                "accuracy": accuracy,
                "accuracy_at": at,
                "seconds": seconds,
            }
            self._line(name, line)
            if self.tensorboard:
                writer = self._writer(name)
                writer.add_scalar("loss", float(loss[i]), t)
                for k, a in enumerate(accuracy, start=1):
                    if a is not None:
                        writer.add_scalar(f"accuracy/task{k}", a, at)  # as curves.csv
                writer.flush()

    def _line(self, name: str, line: dict) -> None:
        f = self._file(name)
        f.write(json.dumps(line, default=str) + "\n")
        f.flush()

    def _hparams(self, name: str, config: dict) -> None:
        """The config as the run's hyperparameters in TensorBoard (its HPARAMS tab)."""
        from torch.utils.tensorboard.summary import hparams

        flat = {
            k: ",".join(map(str, v)) if isinstance(v, list | tuple) else v
            for k, v in config.items()
            if v is not None
        }
        writer = self._writer(name)
        for summary in hparams(flat, {"gap_depth/GD_1,2": 0.0}):
            writer.file_writer.add_summary(summary)

    def _file(self, name: str):
        if name not in self.files:
            (self.folder / LOGS).mkdir(parents=True, exist_ok=True)
            # A new training of a run starts its log anew (an earlier one was cut off).
            self.files[name] = open(self.folder / LOGS / f"{name}.jsonl", "w")  # noqa: SIM115
        return self.files[name]

    def _writer(self, name: str):
        if name not in self.writers:
            from torch.utils.tensorboard import SummaryWriter

            self.writers[name] = SummaryWriter(str(self.folder / EVENTS / name))
        return self.writers[name]

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        for w in self.writers.values():
            w.close()
