"""Permuted MNIST: each task is all of MNIST with its pixels in one fixed random order.

Task k's permutation is drawn from the stream's own generator (``stream_seed``), so every
run of a study sees the same tasks; task 1 is MNIST as it is unless ``permute_first``.
Labels stay the digits: one 10-way head shared by all tasks (domain-incremental).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from stabgap.core.streams.base import TaskStream, stream_generator

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig
    from stabgap.core.data.mnist import MNIST

DEFAULT_TASKS = 3


def permutations(config: RunConfig, n_pixels: int) -> list[torch.Tensor]:
    """Each task's pixel order: (n_pixels,) indices; the identity for task 1 by default.

    Example:
        >>> from stabgap.core.config import RunConfig
        >>> p = permutations(RunConfig(stream="permuted-mnist", n_tasks=2), 4)
        >>> p[0].tolist(), sorted(p[1].tolist())
        ([0, 1, 2, 3], [0, 1, 2, 3])
    """
    g = stream_generator(config)
    n = config.n_tasks or DEFAULT_TASKS
    drawn = [torch.randperm(n_pixels, generator=g) for _ in range(n)]
    if not config.permute_first:
        drawn[0] = torch.arange(n_pixels)
    return drawn


def build(config: RunConfig, mnist: MNIST, device: torch.device) -> TaskStream:
    orders = permutations(config, mnist.train_images[0].numel())

    def stack(images: torch.Tensor) -> torch.Tensor:
        flat = images.flatten(1).to(device)  # (N, 784)
        return torch.cat([flat[:, order.to(device)] for order in orders])

    t = len(orders)
    n_train, n_test = len(mnist.train_labels), len(mnist.test_labels)
    return TaskStream(
        names=tuple(
            f"permutation {k}" if k or config.permute_first else "original" for k in range(t)
        ),
        train_x=stack(mnist.train_images),
        train_y=mnist.train_labels.to(device).repeat(t),
        train_offsets=tuple(k * n_train for k in range(t + 1)),
        test_x=stack(mnist.test_images),
        test_y=mnist.test_labels.to(device).repeat(t),
        test_offsets=tuple(k * n_test for k in range(t + 1)),
        n_classes=10,
    )
