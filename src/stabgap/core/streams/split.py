"""Split stream: the dataset's classes in disjoint groups, one group a task.

Groups of ``classes_per_task`` classes in label order (2 on MNIST: the five pairs 0-1,
2-3, ..., 8-9; the last group is smaller when the classes do not divide evenly). Each task
holds exactly the training and test images of its classes. The scenario says how they
share the output (Van de Ven et al., 2022):

- 'class' (the default): one head over all the classes; a sample is scored over every
  class seen so far, in training and evaluation;
- 'task': the same head, but each sample is scored over its own task's classes only;
- 'domain': one head of ``classes_per_task`` outputs, the label being the class's place
  in its group (odd or even, for pairs).
"""

from __future__ import annotations

import math

import torch

from stabgap.core.data import DATASETS, Images
from stabgap.core.fields import AT_LEAST_ONE, option
from stabgap.core.streams.base import STREAMS, Stream, TaskStream, cut_into_tasks
from stabgap.errors import StabgapError


def groups(config) -> list[tuple[int, ...]]:
    """The classes of each task.

    Example:
        >>> from stabgap.core.config import RunConfig
        >>> groups(RunConfig(stream="split", classes_per_task=4))
        [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    """
    k, n = config.classes_per_task, DATASETS[config.dataset].n_classes
    return [tuple(range(s, min(s + k, n))) for s in range(0, n, k)]


@STREAMS.register
class Split(Stream):
    """The classes in disjoint groups, one a task."""

    name = "split"
    help = "the dataset's classes in disjoint groups, one group a task"
    fields = {
        "classes_per_task": (
            int,
            option(
                2,
                "split: classes per task, in label order (2 on MNIST: five pairs 0-1, ..., 8-9).",
                **AT_LEAST_ONE,
            ),
        )
    }
    uses = ("classes_per_task",)
    scenarios = ("class", "task", "domain")

    @classmethod
    def n_tasks(cls, config) -> int:
        return math.ceil(DATASETS[config.dataset].n_classes / config.classes_per_task)

    @classmethod
    def head(cls, config) -> int:
        if config.scenario == "domain":  # every task's classes answered as 0..k-1
            return config.classes_per_task
        return DATASETS[config.dataset].n_classes

    @classmethod
    def sizes(cls, config, train: bool) -> tuple[int, ...]:
        return tuple(DATASETS[config.dataset].images_of(c, train) for c in groups(config))

    @classmethod
    def check(cls, config) -> None:
        n, k = DATASETS[config.dataset].n_classes, config.classes_per_task
        fine = ", ".join(str(d) for d in range(2, n) if n % d != 1)
        if k == 1 or n % k == 1 or k >= n:
            lone = "every task would hold" if k == 1 else "its last task would hold"
            why = (
                f"puts all {n} classes in one task: no switch, no gap"
                if k >= n
                else f"leaves tasks of one class ({lone} one, which it learns by answering it "
                "always)"
            )
            raise StabgapError(
                f"invalid config: classes_per_task {k} on {config.dataset}'s {n} classes {why}; "
                f"give one of {fine}"
            )

    @classmethod
    def build(cls, config, images: Images, device: torch.device) -> TaskStream:
        scenario = config.scenario  # resolved by the stream's view: never 'auto' here
        tasks = groups(config)

        def split(x: torch.Tensor, labels: torch.Tensor):
            xs, ys, offsets = [], [], [0]
            for classes in tasks:
                keep = torch.isin(labels, torch.tensor(classes))
                y = labels[keep]
                xs.append(x[keep].flatten(1))
                ys.append(y - classes[0] if scenario == "domain" else y)
                offsets.append(offsets[-1] + len(y))
            return torch.cat(xs).to(device), torch.cat(ys).to(device), tuple(offsets)

        return cut_into_tasks(
            tuple(
                f"{DATASETS[config.dataset].classes_are} " + "-".join(map(str, c)) for c in tasks
            ),
            split,
            images,
            n_classes=cls.head(config),
            scenario=scenario,
            task_classes=() if scenario == "domain" else tuple(tasks),
        )
