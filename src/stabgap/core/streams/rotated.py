"""Rotated MNIST: each task is all of MNIST turned by one angle (the poster's stream).

One task per angle of ``config.rotations``, counter-clockwise about the image centre on
the same 28×28 canvas, nearest-neighbour sampling, zero fill: what torchvision's
``RandomRotation((d, d))`` does to a tensor image (tested pixel for pixel against its
output). Labels stay the digits: one 10-way head shared by all tasks (domain-incremental).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from stabgap.core.streams.base import TaskStream

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig
    from stabgap.core.data.mnist import MNIST


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


def build(config: RunConfig, mnist: MNIST, device: torch.device) -> TaskStream:
    """One task per angle of ``config.rotations``, each a rotation of all of MNIST."""

    def stack(images: torch.Tensor) -> torch.Tensor:
        images = images.to(device)
        # (T*N, 784): rotated once here, never again in the loop.
        return torch.cat([rotate(images, r).flatten(1) for r in config.rotations])

    t = len(config.rotations)
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
