"""A tracker for anyone's training loop: its continual evaluation as a stabgap run record.

::

    import stabgap

    with stabgap.Tracker("runs/mine", group="sgd", seed=1, unit="fraction",
                         config={"lr": 0.1}) as tracker:
        for task in (1, 2, 3):
            tracker.switch(task)                      # the task trained from now on
            for step in ...:
                tracker.evaluate(step, {1: acc_1, 2: acc_2})   # the tasks seen, at this step
                ...                                   # one training batch

The run is written when the ``with`` block ends without an error, atomically, as
``stabgap import-curves`` writes a curves file's runs (the same checks, the same record):
an interrupted loop leaves nothing that looks complete. Nothing but stabgap's own
dependencies is needed.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from stabgap.errors import StabgapError
from stabgap.studies.imported import records_from_rows, write_runs
from stabgap.studies.outputs import check_study_folder, is_run_dir
from stabgap.studies.records import RunRecord

UNIT_COLUMNS = {"percent": "accuracy_pct", "fraction": "accuracy_fraction"}


class Tracker:
    """Collects one run's evaluations; writes its record under `out` when the run ends.

    Args:
        out: a study folder (new, empty, or one of stabgap's), as ``stabgap run --out``.
        group: the setting this run is a seed of.
        seed: the run's seed.
        unit: "percent" (0-100) or "fraction" (0-1): what the accuracies given are.
        config: the run's own settings, recorded as imported.
        name: the run's name (default ``<group>-seed<seed>``).
    """

    def __init__(
        self,
        out: str | os.PathLike[str],
        group: str,
        seed: int,
        unit: str,
        config: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        if unit not in UNIT_COLUMNS:
            raise StabgapError(f"Tracker: unit must be 'percent' or 'fraction', got {unit!r}")
        self.out, self.group, self.seed = Path(out), str(group), int(seed)
        self.name = name or f"{group}-seed{seed}"
        self.column = UNIT_COLUMNS[unit]
        self.config = dict(config or {})
        self.task = 0
        self.rows: list[dict[str, Any]] = []
        check_study_folder(self.out)
        if is_run_dir(self.out / self.name):
            raise StabgapError(
                f"{self.out / self.name} exists already: give the run another name or seed"
            )
        self.record: RunRecord | None = None

    def switch(self, task: int) -> None:
        """Task `task` is trained from the next evaluation on (1, then 2, ...)."""
        if task != self.task + 1:
            raise StabgapError(f"Tracker: switch to task {self.task + 1} next, not {task}")
        self.task = task

    def evaluate(self, step: int, accuracies: dict[int, float], loss: float | None = None) -> None:
        """The accuracy of each task evaluated after `step` training batches."""
        if self.task == 0:
            raise StabgapError("Tracker: call switch(1) before the first evaluation")
        for task, accuracy in sorted(accuracies.items()):
            row = {
                "run": self.name,
                "group": self.group,
                "seed": self.seed,
                "step": step,
                "training": self.task,
                "task": task,
                self.column: accuracy,
                **{f"config.{k}": v for k, v in self.config.items()},
            }
            if loss is not None:
                row["loss"] = loss
            self.rows.append(row)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None:
            return  # an interrupted or failed loop: nothing is written
        (record,) = records_from_rows(self.rows, f"Tracker {self.name!r}")
        # checked as import-curves checks a file's runs: against its group's runs already
        # in the folder (the same evaluation grid), before it is written
        write_runs([record], self.out)
        self.record = dataclasses.replace(record, path=self.out / record.name)
