"""Task streams: the sequence of tasks a network learns, as flat tensors on the run's device.

A :class:`TaskStream` stores every task's images back to back in one uint8 tensor, with
``train_offsets[k]`` where task k+1 starts. The union of tasks 1..k is then the prefix
``[0, train_offsets[k])``, which is all that full replay needs. The training loop sees
only this structure, so a kind of stream is one module here registering a
:class:`~stabgap.core.streams.base.Stream` in :data:`STREAMS`, and no change to the loop.
A stream cuts its tasks from the run's dataset (:mod:`stabgap.core.data`): ``stream =
"rotated"`` with ``dataset = "mnist"`` is Rotated MNIST (``"rotated-mnist"`` says both).

How the tasks share the network's output is the stream's *scenario*: 'domain' (one head,
the same labels in every task: rotations, permutations), 'class' (one head over every
class seen so far) or 'task' (each sample scored over its own task's classes only);
:meth:`TaskStream.restrict` applies it to the logits, in training and in evaluation.

A stream's own randomness (permutations, random parts) comes from ``stream_seed``,
apart from the run's seed: every run of a study sees the same tasks.

A stream is built from a view of the config holding only the fields it uses, its dataset
and its scenario (:class:`~stabgap.core.fields.ConfigView`), and carries its identity,
made of those: a sweep shares one built stream between the runs of equal identity, and
the loop refuses a stream whose identity is not its run's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from stabgap.core.data import DATASETS, Images
from stabgap.core.fields import ConfigView
from stabgap.core.streams.base import (
    STREAMS,
    Stream,
    TaskStream,
    pixels,
    rows,
    stream_generator,
)
from stabgap.errors import StabgapError

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig

__all__ = [
    "STREAMS",
    "Stream",
    "TaskStream",
    "build_stream",
    "pixels",
    "rows",
    "check_fits",
    "check_sizes",
    "check_stream",
    "stream_generator",
    "stream_identity",
    "stream_view",
]


def stream_view(config: RunConfig) -> ConfigView:
    """What the config's stream may read of it: the fields it uses, its dataset and its
    scenario ('auto' resolved, so that auto and the value it means agree)."""
    stream = STREAMS.chosen(config)
    return STREAMS.view(config, dataset=config.dataset, scenario=stream.scenario(config))


def stream_identity(config: RunConfig) -> tuple:
    """Which stream `config` trains on: its name and the values of the fields it reads.

    Runs of equal identity train on the same tasks, whatever else differs between them.

    Example:
        >>> from stabgap.core.config import RunConfig
        >>> identity = stream_identity(RunConfig(stream="permuted", stream_seed=7))
        >>> identity[:2], identity[-2:]
        (('permuted', ('dataset', 'mnist')), (('scenario', 'domain'), ('stream_seed', 7)))
    """
    return (config.stream, *stream_view(config).items())


def build_stream(
    config: RunConfig, device: torch.device | str = "cpu", images: Images | None = None
) -> TaskStream:
    """Load the data (unless given) and build the task stream `config` asks for, on `device`."""
    if images is None:
        images = DATASETS.chosen(config).load(config.data_dir, download=True)
    built = STREAMS.chosen(config).build(stream_view(config), images, torch.device(device))
    for name, x in (("training", built.train_x), ("test", built.test_x)):
        if x.dtype != torch.uint8:  # float pixels would be divided by 255 again: chance
            raise StabgapError(
                f"stream {config.stream} built {name} images of {x.dtype}: a stream's images "
                "are uint8 pixels from 0 to 255, as the dataset gives them"
            )
    stream = dataclasses.replace(built, identity=stream_identity(config))
    check_fits(config, stream)
    return stream


def check_stream(config: RunConfig, stream: TaskStream) -> None:
    """Refuse to train `config` on a stream built for another one (a stream built by hand,
    or for other values of the stream's fields): never a silent run on other tasks."""
    want = stream_identity(config)
    if stream.identity == want:
        return
    if stream.identity is None:
        raise StabgapError(
            "this task stream carries no identity (built by hand): build it with "
            "build_stream(config) so that the loop can check it is the run's"
        )
    what = f"stream {stream.identity[0]}"
    if stream.identity[0] == want[0]:
        theirs = dict(stream.identity[1:])
        what = ", ".join(
            f"{k}={theirs[k]!r} (the run's: {v!r})" for k, v in want[1:] if theirs[k] != v
        )
    raise StabgapError(
        f"the task stream was built for another run ({what}): build it from this run's "
        f"config, build_stream(config)"
    )


def check_fits(config: RunConfig, stream: TaskStream) -> None:
    """Refuse, before any training, a config that asks for more data than a task has."""
    tasks = range(1, stream.n_tasks + 1)
    check_sizes(config, [stream.train_size(t) for t in tasks], [stream.test_size(t) for t in tasks])


def check_sizes(config: RunConfig, train_sizes: Sequence[int], test_sizes: Sequence[int]) -> None:
    """:func:`check_fits` on each task's training and test images (known without the data
    to the cost model: ``stabgap cost`` refuses what a run would)."""
    for task, (train_size, test_size) in enumerate(zip(train_sizes, test_sizes, strict=True), 1):
        if config.eval_subset > test_size:
            raise StabgapError(
                f"eval_subset={config.eval_subset} is larger than task {task}'s test set "
                f"({test_size} images): lower eval_subset"
            )
        size = config.task_batch_size(task)
        replaying = config.replay in ("full", "stratified") and task > 1
        pool = sum(train_sizes[:task]) if replaying else train_size
        what = f"tasks 1-{task}'s training sets" if replaying else f"task {task}'s training set"
        if size > pool:
            raise StabgapError(
                f"batch size {size} in task {task} is larger than {what} "
                f"({pool} images) that it draws from: lower batch_size"
            )
