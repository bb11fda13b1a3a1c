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

A stream is built from a view of the config holding only the fields its spec declares
(:class:`~stabgap.core.fields.ConfigView`), and carries its identity, made of those
fields: a sweep shares one built stream between the runs of equal identity, and the
loop refuses a stream whose identity is not its run's.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import torch

from stabgap.core.fields import ConfigView
from stabgap.core.streams import homogeneous, permuted, rotated, split
from stabgap.core.streams.base import StreamSpec, TaskStream, stream_generator
from stabgap.errors import StabgapError

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig
    from stabgap.core.data.mnist import MNIST

__all__ = [
    "STREAMS",
    "StreamSpec",
    "TaskStream",
    "build_stream",
    "check_fits",
    "check_stream",
    "stream_generator",
    "stream_identity",
    "stream_view",
]

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


def stream_view(config: RunConfig) -> ConfigView:
    """What the config's stream may read of it: its declared fields, and its scenario."""
    spec = STREAMS[config.stream]
    values = {name: getattr(config, name) for name in spec.uses}
    values["scenario"] = spec.scenario(config)  # 'auto' resolved: auto and its value agree
    return ConfigView(f"stream {config.stream}", values)


def stream_identity(config: RunConfig) -> tuple:
    """Which stream `config` trains on: its name and the values of the fields it reads.

    Runs of equal identity train on the same tasks, whatever else differs between them.

    Example:
        >>> from stabgap.core.config import RunConfig
        >>> stream_identity(RunConfig(stream="permuted-mnist", stream_seed=7))[3:]
        (('scenario', 'domain'), ('stream_seed', 7))
    """
    return (config.stream, *stream_view(config).items())


def build_stream(
    config: RunConfig, device: torch.device | str = "cpu", mnist: MNIST | None = None
) -> TaskStream:
    """Load the data and build the task stream that `config` asks for, on `device`."""
    from stabgap.core.data.mnist import load_mnist

    if mnist is None:
        mnist = load_mnist(config.data_dir, download=True)
    built = STREAMS[config.stream].build(stream_view(config), mnist, torch.device(device))
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
