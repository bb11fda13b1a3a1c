"""Split MNIST: MNIST's classes in disjoint groups, one group a task.

Groups of ``classes_per_task`` classes in label order (2: the five pairs 0-1, 2-3, ...,
8-9; the last group is smaller when the classes do not divide evenly). Each task holds
exactly the training and test images of its classes. The scenario says how they share the
output (Van de Ven et al., 2022):

- 'class' (the default): one head over all ten digits; a sample is scored over every class
  seen so far, in training and evaluation;
- 'task': the same head, but each sample is scored over its own task's classes only;
- 'domain': one head of ``classes_per_task`` outputs, the label being the class's place
  in its group (odd or even, for pairs).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from stabgap.core.streams.base import TaskStream

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig
    from stabgap.core.data.mnist import MNIST

N_DIGITS = 10


def groups(config: RunConfig) -> list[tuple[int, ...]]:
    """The classes of each task.

    Example:
        >>> from stabgap.core.config import RunConfig
        >>> groups(RunConfig(stream="split-mnist", classes_per_task=4))
        [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    """
    k = config.classes_per_task
    return [tuple(range(s, min(s + k, N_DIGITS))) for s in range(0, N_DIGITS, k)]


def n_tasks(config: RunConfig) -> int:
    return math.ceil(N_DIGITS / config.classes_per_task)


def build(config: RunConfig, mnist: MNIST, device: torch.device) -> TaskStream:
    scenario = config.scenario  # resolved by the stream's view: never 'auto' here
    tasks = groups(config)

    def split(images: torch.Tensor, labels: torch.Tensor):
        xs, ys, offsets = [], [], [0]
        for classes in tasks:
            keep = torch.isin(labels, torch.tensor(classes))
            y = labels[keep]
            xs.append(images[keep].flatten(1))
            ys.append(y - classes[0] if scenario == "domain" else y)
            offsets.append(offsets[-1] + len(y))
        return torch.cat(xs).to(device), torch.cat(ys).to(device), tuple(offsets)

    train_x, train_y, train_offsets = split(mnist.train_images, mnist.train_labels)
    test_x, test_y, test_offsets = split(mnist.test_images, mnist.test_labels)
    head = config.classes_per_task if scenario == "domain" else N_DIGITS
    return TaskStream(
        names=tuple("digits " + "-".join(map(str, c)) for c in tasks),
        train_x=train_x,
        train_y=train_y,
        train_offsets=train_offsets,
        test_x=test_x,
        test_y=test_y,
        test_offsets=test_offsets,
        n_classes=head,
        scenario=scenario,
        task_classes=() if scenario == "domain" else tuple(tasks),
    )
