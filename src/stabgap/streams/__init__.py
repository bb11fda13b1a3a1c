"""Task streams: the sequence of tasks a network learns, as flat tensors on the run's device.

A :class:`TaskStream` stores every task's images back to back in one uint8 tensor, with
``train_offsets[k]`` where task k+1 starts. The union of tasks 1..k is then the prefix
``[0, train_offsets[k])``, which is all that full replay needs. The training loop sees
only this structure, so a stream is one module here with its line in :data:`STREAMS`,
and no change to the loop.

How the tasks share the network's output is the stream's *scenario*: 'domain' (one head,
the same labels in every task: rotations, permutations), 'class' (one head over every
class seen so far) or 'task' (each sample scored over its own task's classes only);
:meth:`TaskStream.restrict` applies it to the logits, in training and in evaluation.

A stream's own randomness (permutations, random parts) comes from ``stream_seed``,
apart from the run's seed: every run of a study sees the same tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from stabgap.errors import StabgapError
from stabgap.streams import homogeneous, permuted, rotated, split
from stabgap.streams.base import StreamSpec, TaskStream, stream_generator

if TYPE_CHECKING:
    from stabgap.config import RunConfig
    from stabgap.data import MNIST

__all__ = ["STREAMS", "StreamSpec", "TaskStream", "build_stream", "check_fits", "stream_generator"]

STREAMS: dict[str, StreamSpec] = {
    "rotated-mnist": StreamSpec(
        rotated.build, lambda c: len(c.rotations), ("rotations",), ("domain",)
    ),
    "permuted-mnist": StreamSpec(
        permuted.build,
        lambda c: c.n_tasks or permuted.DEFAULT_TASKS,
        ("n_tasks", "permute_first", "stream_seed"),
        ("domain",),
    ),
    "split-mnist": StreamSpec(
        split.build, split.n_tasks, ("classes_per_task",), ("class", "task", "domain")
    ),
    "homogeneous-mnist": StreamSpec(
        homogeneous.build,
        lambda c: c.n_tasks or homogeneous.DEFAULT_TASKS,
        ("n_tasks", "stream_seed"),
        ("domain",),
    ),
}


def build_stream(
    config: RunConfig, device: torch.device | str = "cpu", mnist: MNIST | None = None
) -> TaskStream:
    """Load the data and build the task stream that `config` asks for, on `device`."""
    from stabgap.data import load_mnist

    if mnist is None:
        mnist = load_mnist(config.data_dir, download=True)
    stream = STREAMS[config.stream].build(config, mnist, torch.device(device))
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
        pool = stream.train_size(task) if config.replay == "none" else stream.train_offsets[task]
        replaying = config.replay != "none" and task > 1
        what = f"tasks 1-{task}'s training sets" if replaying else f"task {task}'s training set"
        if size > pool:
            raise StabgapError(
                f"batch size {size} in task {task} is larger than {what} "
                f"({pool} images) that it draws from: lower batch_size"
            )
