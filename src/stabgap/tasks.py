"""Task streams: the sequence of tasks a network learns, as flat tensors on the run's device.

A :class:`TaskStream` stores every task's images back to back in one uint8 tensor, with
``train_offsets[k]`` where task k+1 starts. The union of tasks 1..k is then the prefix
``[0, train_offsets[k])``, which is all that full replay needs. The training loop sees
only this structure, so another stream (permuted, split) is one more builder registered
in :data:`STREAMS`, and no change to the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from stabgap.config import RunConfig
from stabgap.data import MNIST, load_mnist
from stabgap.errors import StabgapError


@dataclass(frozen=True)
class TaskStream:
    """All tasks' training and test data, flattened to (N, features) uint8 pixels."""

    names: tuple[str, ...]
    train_x: torch.Tensor  # (N_train_all, D) uint8, tasks back to back
    train_y: torch.Tensor  # (N_train_all,) int64
    train_offsets: tuple[int, ...]  # (T+1,) start of each task, then the end
    test_x: torch.Tensor  # (N_test_all, D) uint8
    test_y: torch.Tensor  # (N_test_all,) int64
    test_offsets: tuple[int, ...]
    n_classes: int

    @property
    def n_tasks(self) -> int:
        return len(self.names)

    @property
    def n_features(self) -> int:
        return self.train_x.shape[1]

    def train_size(self, task: int) -> int:
        """Number of training samples of `task` (1-based)."""
        return self.train_offsets[task] - self.train_offsets[task - 1]

    def test_size(self, task: int) -> int:
        return self.test_offsets[task] - self.test_offsets[task - 1]


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate images counter-clockwise about their centre, nearest sampling, zero fill.

    Matches torchvision's ``RandomRotation((d, d))`` on a tensor image pixel for pixel: the
    same canvas, so corners are cut off and the rest is filled with zeros.

    Args:
        images: (N, H, W) uint8 (or float) images.
        degrees: counter-clockwise angle.

    Returns:
        (N, H, W) tensor of the same dtype.

    Example:
        >>> img = torch.zeros(1, 3, 3, dtype=torch.uint8); img[0, 0, 1] = 255
        >>> rotate(img, 90)[0]  # the top-middle pixel moves to the middle-left
        tensor([[  0,   0,   0],
                [255,   0,   0],
                [  0,   0,   0]], dtype=torch.uint8)
    """
    if degrees % 360 == 0:
        return images.clone()
    h, w = images.shape[-2:]
    source = _rotation_source(h, w, degrees, images.device)  # (H·W,), -1 = outside
    flat = images.reshape(len(images), h * w)
    # Nearest sampling moves whole pixels, so a rotation is one gather with a fixed map.
    out = torch.where(
        source >= 0,
        flat[:, source.clamp(min=0)],
        torch.zeros((), dtype=flat.dtype, device=flat.device),
    )
    return out.view_as(images)


def _rotation_source(h: int, w: int, degrees: float, device: torch.device) -> torch.Tensor:
    """For each output pixel, the input pixel it copies (-1 where it falls outside).

    Found by rotating an image of pixel numbers with an affine grid and nearest sampling
    (align_corners=False, zero fill), which is what torchvision does to a tensor image.
    """
    a = math.radians(degrees)
    # affine_grid maps output coordinates to input ones, in [-1, 1] with y pointing down,
    # so this matrix turns the picture counter-clockwise as seen on screen.
    theta = torch.tensor(
        [[[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]],
        dtype=torch.float32,
        device=device,
    )
    numbers = torch.arange(1, h * w + 1, dtype=torch.float32, device=device).view(1, 1, h, w)
    grid = F.affine_grid(theta, [1, 1, h, w], align_corners=False)
    moved = F.grid_sample(numbers, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return moved.view(h * w).round().long() - 1


def rotated_mnist(config: RunConfig, mnist: MNIST, device: torch.device) -> TaskStream:
    """One task per angle of ``config.rotations``, each a rotation of all of MNIST."""

    def stack(images: torch.Tensor) -> torch.Tensor:
        images = images.to(device)
        # (T*N, 784): rotated once here, never again in the loop.
        return torch.cat([rotate(images, r).flatten(1) for r in config.rotations])

    t = config.n_tasks
    n_train, n_test = len(mnist.train_labels), len(mnist.test_labels)
    return TaskStream(
        names=tuple(f"{r:g}°" for r in config.rotations),
        train_x=stack(mnist.train_images),
        train_y=mnist.train_labels.to(device).repeat(t),
        train_offsets=tuple(k * n_train for k in range(t + 1)),
        test_x=stack(mnist.test_images),
        test_y=mnist.test_labels.to(device).repeat(t),
        test_offsets=tuple(k * n_test for k in range(t + 1)),
        n_classes=10,
    )


STREAMS: dict[str, Callable[[RunConfig, MNIST, torch.device], TaskStream]] = {
    "rotated-mnist": rotated_mnist,
}


def build_stream(
    config: RunConfig, device: torch.device | str = "cpu", mnist: MNIST | None = None
) -> TaskStream:
    """Load the data and build the task stream that `config` asks for, on `device`."""
    if mnist is None:
        mnist = load_mnist(config.data_dir, download=True)
    stream = STREAMS[config.stream](config, mnist, torch.device(device))
    check_fits(config, stream)
    return stream


def check_fits(config: RunConfig, stream: TaskStream) -> None:
    """Refuse, before any training, a config that asks for more data than a task has."""
    for task in range(1, stream.n_tasks + 1):
        if config.eval_subset > stream.test_size(task):
            raise StabgapError(
                f"eval_subset={config.eval_subset} is larger than task {task}'s test set "
                f"({stream.test_size(task)} images): lower eval_subset"
            )
        size = config.task_batch_size(task)
        if config.replay == "none" and size > stream.train_size(task):
            raise StabgapError(
                f"batch size {size} in task {task} is larger than its training set "
                f"({stream.train_size(task)} images): lower batch_size"
            )
