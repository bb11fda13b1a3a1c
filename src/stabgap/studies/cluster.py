"""Sweeps on a Ray cluster, for users who outgrow one machine (``--executor ray``).

Each stack of runs is one Ray task; it trains and returns its records, and the driver
writes them, so workers need no shared filesystem, only the package and MNIST (found in
their own STABGAP_DATA or cache, or downloaded there). Progress comes back through a
Ray queue while the tasks train; Ctrl-C cancels every task.

Tasks are sized for the cluster as it is, not for the driver's machine
(:func:`plan_tasks`): a CPU task asks for as many CPUs as every node that could run it has
(or ``--threads``, refused at once where no node has that many), and device ``auto`` is
resolved for the cluster, so a cluster with GPUs gets GPU tasks. The configs travel as
plain values and are rebuilt on the worker, where an unknown field is an error; remedy
plugins (``STABGAP_PLUGINS``) travel with the tasks (Ray's ``py_modules``), so no run can
lose a field on the way and train as something else under its name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as queue_module
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from stabgap.core.registry import PLUGINS_ENV, plugin_names
from stabgap.errors import StabgapError
from stabgap.studies.plan import RunSpec
from stabgap.studies.records import RunRecord
from stabgap.studies.transit import spec_from_payload, spec_payload


@dataclass(frozen=True)
class Node:
    """What one alive node of the cluster offers."""

    cpus: int
    gpus: int


@dataclass(frozen=True)
class TaskPlan:
    """How the tasks of a sweep are sized for the cluster.

    Attributes:
        threads: CPU threads (and CPUs asked of Ray) of a task that trains on a CPU.
        gpus: whether the cluster has GPUs (device 'auto' then trains on one).
    """

    threads: int
    gpus: bool

    def device_of(self, device: str) -> str:
        """'cuda' or 'cpu': where a run of device setting `device` trains on this cluster."""
        if device == "auto":
            return "cuda" if self.gpus else "cpu"
        return "cuda" if device.startswith("cuda") else "cpu"

    def resources(self, device: str) -> dict[str, int]:
        """What a task of device setting `device` asks of Ray: a GPU and one CPU, or
        `threads` CPUs."""
        if self.device_of(device) == "cuda":
            return {"num_cpus": 1, "num_gpus": 1}
        return {"num_cpus": self.threads, "num_gpus": 0}


def plan_tasks(nodes: Sequence[Node], devices: Sequence[str], threads: int | None) -> TaskPlan:
    """Size the tasks for these nodes, or say why no node can take them.

    Args:
        nodes: the cluster's alive nodes.
        devices: the runs' device settings ('auto', 'cpu', 'cuda', ...).
        threads: the user's --threads; None for the most every CPU node can give.

    Example:
        >>> plan_tasks([Node(1, 0), Node(4, 0)], ["auto"], None)
        TaskPlan(threads=1, gpus=False)
        >>> plan_tasks([Node(8, 1)], ["auto"], None).device_of("auto")
        'cuda'
    """
    cpu_nodes = [n.cpus for n in nodes if n.cpus >= 1]
    gpus = any(n.gpus >= 1 for n in nodes)
    if not cpu_nodes:
        raise StabgapError(
            "the Ray cluster has no node with a CPU: start one, or check the address"
        )
    plan = TaskPlan(threads or min(cpu_nodes), gpus)
    kinds = {plan.device_of(d) for d in devices}
    if "cuda" in kinds and not gpus:
        raise StabgapError(
            "these runs ask for a GPU (device cuda), but no node of the Ray cluster has one: "
            "add a GPU node (ray start --num-gpus N), or set the runs' device to cpu"
        )
    if "cpu" in kinds and plan.threads > max(cpu_nodes):
        raise StabgapError(
            f"--threads {plan.threads}: no node of the Ray cluster has {plan.threads} CPUs (the "
            f"largest has {max(cpu_nodes)}), so no task could ever start: pass --threads "
            f"{max(cpu_nodes)} or fewer"
        )
    return plan


def alive_nodes() -> list[Node]:
    """The nodes of the connected cluster that are alive, with their CPUs and GPUs."""
    import ray

    return [
        Node(int(n["Resources"].get("CPU", 0)), int(n["Resources"].get("GPU", 0)))
        for n in ray.nodes()
        if n.get("Alive")
    ]


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[None]:
    """Connected to the Ray cluster at `address` (None: a local instance started here, and
    stopped afterwards)."""
    try:
        import ray
    except ImportError:
        raise StabgapError(
            "the ray executor needs Ray: pip install 'stabgap[ray]' (or use --executor local)"
        ) from None
    started_here = not ray.is_initialized()
    if started_here:
        try:
            joined = address or os.environ.get("RAY_ADDRESS")
            ray.init(
                # no address: a fresh instance for this sweep ("local"), even where a cluster
                # `ray start`ed on this machine would otherwise be joined (and refuse num_cpus)
                address=address if joined else "local",
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,  # not Ray's own lines on the user's terminal
                runtime_env=runtime_env(),  # the plugins, shipped with the job
                # a cluster joined (by --ray-address or $RAY_ADDRESS) has its own CPUs, and
                # Ray refuses num_cpus then; an instance started here gets this machine's
                num_cpus=None if joined else os.cpu_count(),
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise StabgapError(f"could not reach the Ray cluster at {address!r}: {e}") from None
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


REACH_TIMEOUT_S = 5.0  # how long a cluster's address may take to accept a connection


def check_reachable(address: str | None, timeout: float = REACH_TIMEOUT_S) -> None:
    """Refuse, in one line and within `timeout` seconds, an explicit ``host:port`` (or
    ``ray://host:port``) address where nothing accepts a connection. None, ``auto``,
    ``local`` and addresses of other forms are left to Ray, which says itself why."""
    if not address:
        return
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # an IPv6 address: [::1]:6379
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as e:  # refused, timed out, unknown host, no route
        why = "timed out" if isinstance(e, TimeoutError) else e.strerror or type(e).__name__
        client = (
            " (a ray:// address is its client server, port 10001)" if hostport != address else ""
        )
        raise StabgapError(
            f"no Ray cluster answers at {address} ({why}): start one there with "
            f"`ray start --head` (it prints its address), or check the host and port{client}"
        ) from None


def runtime_env() -> dict[str, Any] | None:
    """What the tasks need beyond the installed package: the remedy plugins loaded here,
    as modules Ray ships to every node, and their names for the workers to import. Ray
    ships local modules only for a whole job (``ray.init``): a Ray session started before
    stabgap's must carry them itself, else its tasks refuse the plugins' fields."""
    names = plugin_names()
    if not names:
        return None
    return {
        "py_modules": [_source(sys.modules[n]) for n in names],
        "env_vars": {PLUGINS_ENV: ",".join(names)},
    }


def _source(module) -> str:
    """A plugin module's file, or its package's folder: what Ray ships to the nodes."""
    return module.__path__[0] if hasattr(module, "__path__") else module.__file__


def _train_stack(index: int, payload: list[dict], threads: int, progress) -> list[RunRecord]:
    """One Ray task: rebuild the runs from their plain values, then train them."""
    import ray
    import torch

    from stabgap.studies.sweep import run_stack

    gpus = ray.get_gpu_ids()
    if gpus and not torch.cuda.is_available():
        raise StabgapError(
            f"Ray gave this task GPU {gpus[0]} on node {ray.util.get_node_ip_address()}, but "
            "torch there sees no CUDA device (a CPU build of torch, or no driver): install a "
            "CUDA build of torch on the GPU nodes, or set the runs' device to cpu"
        )
    stack = [spec_from_payload(p, where="this Ray worker") for p in payload]
    torch.set_num_threads(threads)
    try:
        return run_stack(stack, lambda done, total: progress.put_nowait((index, done, total)))
    except StabgapError as e:
        # said where: a node reads its own environment ($STABGAP_DATA, its cache, its
        # files), which the sweep's machine cannot see (a --data-dir every node has can)
        raise StabgapError(
            f"on Ray node {ray.util.get_node_ip_address()}, which reads its own environment "
            f"($STABGAP_DATA, its cache and files): {e}"
        ) from None


def run_on_ray(
    stacks: Sequence[Sequence[RunSpec]],
    plan: TaskPlan,
    progress: Callable[[int, int, int], None] | None = None,
) -> Iterator[tuple[int, list[RunRecord] | BaseException]]:
    """Run the stacks as tasks of the connected cluster (see :func:`connected`); yield each
    stack's index with its records (or error), as they finish.

    Args:
        plan: how each task is sized (:func:`plan_tasks`).
        progress: called as progress(stack index, batches done, batches in all).
    """
    import ray
    from ray.util.queue import Queue

    pending: dict = {}
    try:
        # The queue is an actor: it must hold no CPU, or on a small machine it would keep
        # the tasks that report to it from ever being scheduled.
        channel = Queue(actor_options={"num_cpus": 0})
        task = ray.remote(_train_stack)
        for i, stack in enumerate(stacks):
            options = plan.resources(stack[0].config.device)
            payload = [spec_payload(s) for s in stack]
            threads = options["num_cpus"]
            pending[task.options(**options).remote(i, payload, threads, channel)] = i
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
