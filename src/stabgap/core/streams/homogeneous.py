"""Homogeneous stream: the dataset cut into k disjoint random parts, one part a task.

Every task comes from one and the same distribution, so any drop of task 1's accuracy
when task 2 starts is a stability gap of joint training on homogeneous tasks (Kamath et
al., CVPR workshops 2024), not forgetting of a different distribution. The training and
the test set are each shuffled with the stream's own generator (``stream_seed``) and cut
into k parts of equal size (the remainder is dropped). One head over all classes.
"""

from __future__ import annotations

import torch

from stabgap.core.data import DATASETS, Images
from stabgap.core.streams.base import STREAMS, Stream, TaskStream, cut_into_tasks, stream_generator

DEFAULT_TASKS = 3


def parts(n: int, k: int, g: torch.Generator) -> list[torch.Tensor]:
    """k disjoint random parts of range(n), each n // k long.

    Example:
        >>> p = parts(10, 3, torch.Generator().manual_seed(0))
        >>> [len(x) for x in p], len(set(torch.cat(p).tolist()))
        ([3, 3, 3], 9)
    """
    order = torch.randperm(n, generator=g)
    size = n // k
    return [order[i * size : (i + 1) * size] for i in range(k)]


@STREAMS.register
class Homogeneous(Stream):
    """k disjoint random parts of one distribution, one a task."""

    name = "homogeneous"
    help = "disjoint random parts of the dataset, one a task (one distribution)"
    uses = ("n_tasks", "stream_seed")

    @classmethod
    def n_tasks(cls, config) -> int:
        return config.n_tasks or DEFAULT_TASKS

    @classmethod
    def sizes(cls, config, train: bool) -> tuple[int, ...]:
        k, dataset = cls.n_tasks(config), DATASETS[config.dataset]
        return ((dataset.train_size if train else dataset.test_size) // k,) * k

    @classmethod
    def build(cls, config, images: Images, device: torch.device) -> TaskStream:
        k = cls.n_tasks(config)
        g = stream_generator(config)

        def cut(x: torch.Tensor, labels: torch.Tensor):
            pieces = parts(len(labels), k, g)
            x = torch.cat([x[p].flatten(1) for p in pieces]).to(device)
            y = torch.cat([labels[p] for p in pieces]).to(device)
            return x, y, tuple(i * len(pieces[0]) for i in range(k + 1))

        return cut_into_tasks(tuple(f"part {i + 1}" for i in range(k)), cut, images)
