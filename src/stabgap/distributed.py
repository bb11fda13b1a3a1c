"""Sweeps on a Ray cluster, for users who outgrow one machine (``--executor ray``).

Each stack of runs is one Ray task; it trains and returns its records, and the driver
writes them, so workers need no shared filesystem, only the package and MNIST (found in
their own STABGAP_DATA or cache, or downloaded there).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from stabgap.errors import StabgapError
from stabgap.records import RunRecord
from stabgap.sweep import RunSpec


def _train_stack(stack: Sequence[RunSpec], threads: int) -> list[RunRecord]:
    import torch

    from stabgap.sweep import run_stack

    torch.set_num_threads(threads)
    return run_stack(stack)


def run_on_ray(
    stacks: Sequence[Sequence[RunSpec]], address: str | None = None, cpus_per_task: int = 1
) -> Iterator[list[RunRecord]]:
    """Run the stacks as Ray tasks; yield each stack's records as it finishes.

    Args:
        address: an existing cluster ("auto", "ray://host:10001", ...); None starts a
            local Ray instance for this sweep and stops it afterwards.
        cpus_per_task: CPU threads given to each task (and reserved from Ray).
    """
    try:
        import ray
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
    try:
        uses_gpu = any(s[0].config.device.startswith("cuda") for s in stacks)
        task = ray.remote(num_cpus=cpus_per_task, num_gpus=1 if uses_gpu else 0)(_train_stack)
        pending = [task.remote(list(stack), cpus_per_task) for stack in stacks]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        if started_here:
            ray.shutdown()
