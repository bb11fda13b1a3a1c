"""Sweeps on a Ray cluster, for users who outgrow one machine (``--executor ray``).

Each stack of runs is one Ray task; it trains and returns its records, and the driver
writes them, so workers need no shared filesystem, only the package and MNIST (found in
their own STABGAP_DATA or cache, or downloaded there). Progress comes back through a
Ray queue while the tasks train; Ctrl-C cancels every task.
"""

from __future__ import annotations

import os
import queue as queue_module
from collections.abc import Callable, Iterator, Sequence

from stabgap.errors import StabgapError
from stabgap.plan import RunSpec
from stabgap.records import RunRecord


def _train_stack(index: int, stack: Sequence[RunSpec], threads: int, progress) -> list[RunRecord]:
    import torch

    from stabgap.sweep import run_stack

    torch.set_num_threads(threads)
    return run_stack(stack, lambda done, total: progress.put_nowait((index, done, total)))


def run_on_ray(
    stacks: Sequence[Sequence[RunSpec]],
    address: str | None = None,
    cpus_per_task: int = 1,
    progress: Callable[[int, int, int], None] | None = None,
) -> Iterator[tuple[int, list[RunRecord] | BaseException]]:
    """Run the stacks as Ray tasks; yield each stack's index with its records (or error).

    Args:
        address: an existing cluster ("auto", "ray://host:10001", ...); None starts a
            local Ray instance for this sweep and stops it afterwards.
        cpus_per_task: CPU threads given to each task (and reserved from Ray).
        progress: called as progress(stack index, batches done, batches in all).
    """
    try:
        import ray
        from ray.util.queue import Queue
    except ImportError:
        raise StabgapError(
            "the ray executor needs Ray: pip install 'stabgap[ray]' (or use --executor local)"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            ray.init(
                address=address,
                include_dashboard=False,
                log_to_driver=False,
                num_cpus=None if address else os.cpu_count(),
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise StabgapError(f"could not reach the Ray cluster at {address!r}: {e}") from None
    pending: dict = {}
    try:
        # The queue is an actor: it must hold no CPU, or on a small machine it would keep
        # the tasks that report to it from ever being scheduled.
        channel = Queue(actor_options={"num_cpus": 0})
        uses_gpu = any(s[0].config.device.startswith("cuda") for s in stacks)
        task = ray.remote(num_cpus=cpus_per_task, num_gpus=1 if uses_gpu else 0)(_train_stack)
        pending = {
            task.remote(i, list(stack), cpus_per_task, channel): i for i, stack in enumerate(stacks)
        }
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=0.2)
            while progress is not None:
                try:
                    progress(*channel.get_nowait())
                except queue_module.Empty:
                    break
            for ref in done:
                index = pending.pop(ref)
                try:
                    records = ray.get(ref)
                except Exception as e:  # noqa: BLE001 - the task's, reported at the end
                    yield index, getattr(e, "cause", None) or e
                else:
                    yield index, records
    finally:
        for ref in pending:  # Ctrl-C or an early exit: stop what still runs
            ray.cancel(ref, force=True)
        if started_here:
            ray.shutdown()
