"""Rotated stream: each task is the whole dataset turned by one angle (the poster's stream).

One task per angle of ``config.rotations``, counter-clockwise about the image centre on
the same canvas (28×28 for MNIST), nearest-neighbour sampling, zero fill: what
torchvision's ``RandomRotation((d, d))`` does to a tensor image (tested pixel for pixel
against its output). Labels stay the classes: one head shared by all tasks
(domain-incremental).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stabgap.core.data import Images
from stabgap.core.fields import option
from stabgap.core.streams.base import STREAMS, Stream, TaskStream, transformed_copies
from stabgap.errors import StabgapError


def rotate(images: torch.Tensor, degrees: float) -> torch.Tensor:
    """Rotate images counter-clockwise about their centre, nearest sampling, zero fill.

    Matches torchvision's ``RandomRotation((d, d))`` on a tensor image pixel for pixel: the
    same canvas, so corners are cut off and the rest is filled with zeros.

    Args:
        images: (N, H, W) or (N, C, H, W) uint8 (or float) images; every channel turns alike.
        degrees: counter-clockwise angle.

    Returns:
        A tensor of the same shape and dtype.

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
    flat = images.reshape(-1, h * w)  # every image's every channel
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


@STREAMS.register
class Rotated(Stream):
    """One task per angle, each a rotation of the whole dataset."""

    name = "rotated"
    help = "one rotation of the whole dataset a task (the poster's stream)"
    fields = {
        "rotations": (
            tuple[float, ...],
            option(
                (0.0, 80.0, 160.0),
                "rotated: rotation of each task in degrees, counter-clockwise; one task an angle.",
            ),
        )
    }
    uses = ("rotations",)

    @classmethod
    def n_tasks(cls, config) -> int:
        return len(config.rotations)

    @classmethod
    def check(cls, config) -> None:
        super().check(config)
        if not config.rotations:
            raise StabgapError(
                "invalid config: rotations must list at least one angle (one task each)"
            )
        if not all(math.isfinite(r) for r in config.rotations):
            raise StabgapError("invalid config: rotations must be finite numbers")

    @classmethod
    def build(cls, config, images: Images, device: torch.device) -> TaskStream:
        def stack(x: torch.Tensor) -> torch.Tensor:
            x = x.to(device)
            # (T*N, pixels): rotated once here, never again in the loop.
            return torch.cat([rotate(x, r).flatten(1) for r in config.rotations])

        names = tuple(f"{r:g}°" for r in config.rotations)
        return transformed_copies(
            names, stack(images.train_images), stack(images.test_images), images, device
        )
