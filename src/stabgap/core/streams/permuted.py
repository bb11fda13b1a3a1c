"""Permuted stream: each task is the whole dataset with its pixels in one fixed random order.

Task k's permutation is drawn from the stream's own generator (``stream_seed``), so every
run of a study sees the same tasks; task 1 is the dataset as it is unless
``permute_first``. Labels stay the classes: one head shared by all tasks
(domain-incremental).
"""

from __future__ import annotations

import torch

from stabgap.core.data import Images
from stabgap.core.fields import option
from stabgap.core.streams.base import (
    STREAMS,
    Stream,
    TaskStream,
    stream_generator,
    transformed_copies,
)

DEFAULT_TASKS = 3


def permutations(config, n_pixels: int) -> list[torch.Tensor]:
    """Each task's pixel order: (n_pixels,) indices; the identity for task 1 by default.

    Example:
        >>> from stabgap.core.config import RunConfig
        >>> p = permutations(RunConfig(stream="permuted", n_tasks=2), 4)
        >>> p[0].tolist(), sorted(p[1].tolist())
        ([0, 1, 2, 3], [0, 1, 2, 3])
    """
    g = stream_generator(config)
    n = config.n_tasks or DEFAULT_TASKS
    drawn = [torch.randperm(n_pixels, generator=g) for _ in range(n)]
    if not config.permute_first:
        drawn[0] = torch.arange(n_pixels)
    return drawn


@STREAMS.register
class Permuted(Stream):
    """One fixed random pixel order a task."""

    name = "permuted"
    help = "one fixed random pixel permutation of the whole dataset a task"
    fields = {
        "permute_first": (
            bool,
            option(
                False, "permuted: permute task 1 too (by default task 1 is the dataset as it is)."
            ),
        )
    }
    uses = ("n_tasks", "permute_first", "stream_seed")

    @classmethod
    def n_tasks(cls, config) -> int:
        return config.n_tasks or DEFAULT_TASKS

    @classmethod
    def build(cls, config, images: Images, device: torch.device) -> TaskStream:
        orders = permutations(config, images.train_images[0].numel())

        def stack(x: torch.Tensor) -> torch.Tensor:
            flat = x.flatten(1).to(device)  # (N, pixels)
            return torch.cat([flat[:, order.to(device)] for order in orders])

        names = tuple(
            f"permutation {k}" if k or config.permute_first else "original"
            for k in range(len(orders))
        )
        return transformed_copies(
            names, stack(images.train_images), stack(images.test_images), images, device
        )
