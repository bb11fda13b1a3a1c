"""Follow runs while they train: a live log per run, and TensorBoard when asked.

Every :data:`LOG_EVERY` batches (and at the end of each task) the process training a run
appends one JSON line to ``OUT/logs/<run>.jsonl`` and flushes it, so that ``tail -f`` or a
notebook can follow a long run::

    {"batch": 250, "of": 1500, "task": 1, "loss": 0.183, "accuracy": [96.1], "seconds": 41.2}

``loss`` is the mean training loss of the batches since the previous line, ``accuracy``
each evaluated task's accuracy at the latest evaluation. With ``--tensorboard`` the same
figures go to TensorBoard event files in ``OUT/tensorboard/<run>/`` (written by
torch.utils.tensorboard's SummaryWriter; ``pip install "stabgap[tensorboard]"``).

Logging copies a few numbers from the device every LOG_EVERY batches, never per batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from stabgap.errors import StabgapError

LOG_EVERY = 25
LOGS, EVENTS = "logs", "tensorboard"


def check_tensorboard() -> None:
    """Refuse --tensorboard up front when its writer cannot be imported."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise StabgapError(
            "--tensorboard needs TensorBoard: pip install 'stabgap[tensorboard]'"
        ) from None


class Monitor:
    """The live logs (and event files) of the runs of one stack, copy i being names[i]."""

    def __init__(self, folder: Path, names: Sequence[str], tensorboard: bool = False) -> None:
        self.folder, self.names, self.tensorboard = Path(folder), list(names), tensorboard
        self.started = time.monotonic()
        self.files: dict[str, object] = {}
        self.writers: dict[str, object] = {}

    def select(self, indices: Sequence[int]) -> Monitor:
        """The monitor of some of the copies (a CPU trains a stack copy by copy)."""
        view = Monitor(self.folder, [self.names[i] for i in indices], self.tensorboard)
        view.files, view.writers, view.started = self.files, self.writers, self.started
        return view

    def __call__(self, t: int, total: int, task: int, loss: np.ndarray, acc: np.ndarray) -> None:
        """Log batch `t` of `total` for every copy: loss (R,), accuracy (R, tasks)."""
        seconds = round(time.monotonic() - self.started, 2)
        for i, name in enumerate(self.names):
            accuracy = [None if np.isnan(a) else round(float(a), 3) for a in acc[i]]
            line = {
                "batch": t,
                "of": total,
                "task": task,
                "loss": float(loss[i]),
                "accuracy": accuracy,
                "seconds": seconds,
            }
            f = self._file(name)
            f.write(json.dumps(line) + "\n")
            f.flush()
            if self.tensorboard:
                writer = self._writer(name)
                writer.add_scalar("loss", float(loss[i]), t)
                for k, a in enumerate(accuracy, start=1):
                    if a is not None:
                        writer.add_scalar(f"accuracy/task{k}", a, t)
                writer.flush()

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
