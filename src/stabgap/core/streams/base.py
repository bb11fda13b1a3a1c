"""What every stream is: a :class:`TaskStream` of tasks, and a :class:`StreamSpec` entry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from stabgap.errors import StabgapError

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig


@dataclass(frozen=True)
class TaskStream:
    """All tasks' training and test data, images flattened to (N, features) uint8 pixels.

    Attributes:
        names: each task's name ("0°", "perm 2", "digits 2-3", ...).
        train_x, test_x: (N, D) uint8 images of every task, back to back.
        train_y, test_y: (N,) int64 labels, as the network's head numbers them.
        train_offsets, test_offsets: where each task starts, then the end: (T + 1,).
        n_classes: outputs of the network's head.
        input_shape: the shape of one image, (channels, height, width).
        scenario: 'domain', 'class' or 'task' (see the module's doc).
        task_classes: the head classes of each task ('class' and 'task' scenarios).
        identity: which stream this is, from the fields its builder read
            (:func:`stabgap.core.streams.stream_identity`); the loop trains a run only on a
            stream whose identity is the run's. None for a stream built by hand.
    """

    names: tuple[str, ...]
    train_x: torch.Tensor
    train_y: torch.Tensor
    train_offsets: tuple[int, ...]
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_offsets: tuple[int, ...]
    n_classes: int
    input_shape: tuple[int, ...] = (1, 28, 28)
    scenario: str = "domain"
    task_classes: tuple[tuple[int, ...], ...] = ()
    identity: tuple | None = None
    # Small index tables on each device, built once: a tensor made from a Python list is a
    # host-to-device copy, and on a GPU such a copy waits for all queued work (a wait per
    # batch; measured on an H200, see docs/performance.md).
    _tables: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def _table(self, name: str, device: torch.device, make: Callable[[], torch.Tensor]):
        key = (name, str(device))
        if key not in self._tables:
            self._tables[key] = make().to(device)
        return self._tables[key]

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

    def task_of(self, index: torch.Tensor, train: bool = True) -> torch.Tensor:
        """The 0-based task of each sample index (into train_x or test_x)."""
        offsets = self.train_offsets if train else self.test_offsets
        bounds = self._table(f"bounds {train}", index.device, lambda: torch.tensor(offsets[1:-1]))
        return torch.bucketize(index, bounds, right=True)

    def restrict(self, logits: torch.Tensor, task: int, index: torch.Tensor, train: bool = True):
        """The logits with the classes this scenario does not score set to -inf.

        Args:
            logits: (R, B, classes).
            task: the task being trained now (1-based): in 'class', the classes seen so far.
            index: (R, B) the samples' indices, whose own tasks 'task' scores them within.
        """
        if self.scenario == "domain":
            return logits
        own = self._table("own classes", logits.device, self._own_classes)  # (tasks, classes)
        if self.scenario == "class":
            allowed = own[:task].any(dim=0)  # the classes of the tasks seen so far
        else:
            allowed = own[self.task_of(index, train)]  # (R, B, classes)
        return logits.masked_fill(~allowed, float("-inf"))

    def _own_classes(self) -> torch.Tensor:
        """(tasks, classes) whether each head class belongs to each task."""
        own = torch.zeros(self.n_tasks, self.n_classes, dtype=torch.bool)
        for k, classes in enumerate(self.task_classes):
            own[k, list(classes)] = True
        return own


@dataclass(frozen=True)
class StreamSpec:
    """A stream: its builder, its number of tasks, the config fields it reads.

    ``build`` and ``n_tasks`` receive a :class:`~stabgap.core.fields.ConfigView` of the fields
    in ``uses`` and ``scenario`` (resolved: never 'auto'), not the whole config.
    """

    build: Callable[[Any, Any, torch.device], TaskStream]  # (config view, mnist, device)
    n_tasks: Callable[[Any], int]  # (config view) -> number of tasks
    uses: tuple[str, ...]
    scenarios: tuple[str, ...]  # the scenarios it supports, its default first

    def check(self, config: RunConfig) -> None:
        if config.scenario not in ("auto", *self.scenarios):
            raise StabgapError(
                f"invalid config: stream {config.stream} supports scenario "
                f"{', '.join(self.scenarios)} (or auto), not {config.scenario}"
            )

    def scenario(self, config: RunConfig) -> str:
        return self.scenarios[0] if config.scenario == "auto" else config.scenario


def stream_generator(config: RunConfig) -> torch.Generator:
    """The stream's own random numbers: from ``stream_seed``, apart from the run's seed."""
    return torch.Generator().manual_seed(config.stream_seed)
