"""What every stream is: a :class:`TaskStream` of tasks, built by a :class:`Stream`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch

from stabgap.core.data import DATASETS, Images
from stabgap.core.fields import COUNT, option
from stabgap.core.registry import Extension, Registry
from stabgap.errors import StabgapError
from stabgap.seeds import derive_seed

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

    def test_pixels(self, dtype: torch.dtype) -> torch.Tensor:
        """Every test image as `dtype` pixels (:func:`pixels`), made once per stream: an
        evaluation gathers its rows from them, where it converted its gathered uint8 rows at
        every point (a pixel's value is the same either way: the conversion is elementwise)."""
        return self._table(
            f"test pixels {dtype}", self.test_x.device, lambda: pixels(self.test_x, dtype)
        )

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


def pixels(x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 pixels → floats in [0, 1], what ToTensor gives (no normalisation).

    In bf16 each pixel is the float32 value rounded to bf16, what autocast would feed the
    first layer: bf16 division computes k / 255 in float32 and rounds once.
    """
    return x.to(dtype).div_(255)


def rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x[index] for an (N, D) table and any shape of row indices: (*index.shape, D).

    index_select copies whole rows; on a CPU it takes half the time of advanced indexing.

    >>> rows(torch.arange(6).view(3, 2), torch.tensor([[2, 0]])).tolist()
    [[[4, 5], [0, 1]]]
    """
    return x.index_select(0, index.reshape(-1)).view(*index.shape, *x.shape[1:])


class Stream(Extension):
    """A kind of task stream: how many tasks it makes and how it builds them from a dataset.

    Its class methods receive a :class:`~stabgap.core.fields.ConfigView` of the fields in
    ``uses`` and ``scenario`` (resolved: never 'auto'), not the whole config.
    """

    scenarios: ClassVar[tuple[str, ...]] = ("domain",)  # the scenarios it supports, default first

    @classmethod
    def n_tasks(cls, config) -> int:
        """The number of tasks `config` (a view) asks for."""
        raise NotImplementedError

    @classmethod
    def build(cls, config, images: Images, device: torch.device) -> TaskStream:
        """The tasks, cut from `images`, on `device`."""
        raise NotImplementedError

    @classmethod
    def head(cls, config) -> int:
        """The network's outputs for `config` (a view), known without the data: the
        dataset's classes, unless the stream scores fewer."""
        return DATASETS[config.dataset].n_classes

    @classmethod
    def sizes(cls, config, train: bool) -> tuple[int, ...]:
        """Each task's training (or test) images for `config` (a view), known without the
        data: the whole split, as each task of transformed copies has it."""
        dataset = DATASETS[config.dataset]
        return (dataset.train_size if train else dataset.test_size,) * cls.n_tasks(config)

    @classmethod
    def check(cls, config: RunConfig) -> None:
        if config.scenario not in ("auto", *cls.scenarios):
            raise StabgapError(
                f"invalid config: stream {config.stream} supports scenario "
                f"{', '.join(cls.scenarios)} (or auto), not {config.scenario}"
            )

    @classmethod
    def scenario(cls, config: RunConfig) -> str:
        return cls.scenarios[0] if config.scenario == "auto" else config.scenario


def transformed_copies(
    names: tuple[str, ...], train_x: torch.Tensor, test_x: torch.Tensor, images: Images, device
) -> TaskStream:
    """A stream whose every task is the whole dataset transformed (rotated, permuted): the
    tasks' images back to back in `train_x` and `test_x`, each with the dataset's labels."""
    t = len(names)
    n_train, n_test = len(images.train_labels), len(images.test_labels)
    return TaskStream(
        names=names,
        train_x=train_x,
        train_y=images.train_labels.to(device).repeat(t),
        train_offsets=tuple(k * n_train for k in range(t + 1)),
        test_x=test_x,
        test_y=images.test_labels.to(device).repeat(t),
        test_offsets=tuple(k * n_test for k in range(t + 1)),
        n_classes=images.n_classes,
        input_shape=images.input_shape,
    )


Cut = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]]


def cut_into_tasks(names: tuple[str, ...], cut: Cut, images: Images, **extra) -> TaskStream:
    """A stream whose tasks are parts of the dataset (random parts, class groups): `cut`
    turns the images and labels of a split into the tasks' images and labels back to back
    and where each task starts; the training split is cut first, then the test split.
    `extra`: the stream's other fields (``n_classes`` by default the dataset's)."""
    train_x, train_y, train_offsets = cut(images.train_images, images.train_labels)
    test_x, test_y, test_offsets = cut(images.test_images, images.test_labels)
    return TaskStream(
        names=names,
        train_x=train_x,
        train_y=train_y,
        train_offsets=train_offsets,
        test_x=test_x,
        test_y=test_y,
        test_offsets=test_offsets,
        input_shape=images.input_shape,
        **{"n_classes": images.n_classes, **extra},
    )


# Fields that more than one stream reads.
SHARED_FIELDS = {
    "n_tasks": (
        int,
        option(
            0,
            "The number of tasks (0: the stream's default, 3).",
            **COUNT,
        ),
    ),
    "stream_seed": (
        int,
        option(
            0,
            "Seed of the stream's own randomness (permutations, random parts), apart from the "
            "run's seed: every run sees the same tasks.",
            **COUNT,
        ),
    ),
}

STREAMS: Registry[type[Stream]] = Registry(
    "stream", "stabgap.core.streams", selector="stream", shared=SHARED_FIELDS
)


def stream_generator(config) -> torch.Generator:
    """The stream's own random numbers: from ``stream_seed``, apart from the run's seed."""
    return torch.Generator().manual_seed(derive_seed(config.stream_seed, "stream"))
