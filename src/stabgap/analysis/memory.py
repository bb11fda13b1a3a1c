"""What the bounded replay memories held at each switch, per group (runs record it:
``metadata.memory``, examples of each task and class as each task after the first began)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MEMORY_NOTE = (
    "What the replay memory held as each task began: examples of each earlier task (mean "
    "over the group's seeds), and how many classes they covered. Recorded by every run that "
    "keeps a memory (`run.json`: `metadata.memory`)."
)


def memory_table(groups: Sequence, labels: dict[str, str]) -> tuple[list[str], list[list[str]]]:
    """Per group and switch: the memory's examples of each task, and the classes held.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> run = NS(metadata={"memory": [[[3, 2, 0], [0, 0, 0]], [[1, 1, 0], [0, 1, 2]]]})
        >>> memory_table([NS(key="er", runs=[run])], {"er": "er"})[1]
        [['er', '2', '5, 0', '2'], ['er', '3', '2, 3', '3']]
    """
    header = ["group", "task starting", "examples of tasks 1, 2, ... (mean)", "classes held"]
    rows = []
    for g in groups:
        kept = [np.array(r.metadata["memory"], dtype=float) for r in g.runs
                if r.metadata.get("memory")]  # fmt: skip
        if not kept:
            continue
        mean = np.mean(kept, axis=0)  # (switches, tasks, classes)
        for k, held in enumerate(mean, start=2):
            per_task = ", ".join(f"{v:g}" for v in np.round(held.sum(axis=1), 1))
            classes = np.mean([int((run[k - 2].sum(axis=0) > 0).sum()) for run in kept])
            rows.append([labels[g.key], str(k), per_task, f"{classes:g}"])
    return header, rows
