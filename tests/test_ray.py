"""Ray as users' clusters are: a real two-node cluster started on this machine (each node
one CPU), sweeps through the CLI with a time limit (a hang fails), plugins, and a node that
declares a GPU."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import mnist_dir
from test_extending import example_code

pytest.importorskip("ray", reason="needs the ray extra: pip install 'stabgap[ray]' (CI has it)")

from stabgap.errors import StabgapError  # noqa: E402
from stabgap.studies.cluster import Node, plan_tasks  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")
LIMIT = 240  # seconds: a sweep that waits for resources no node has fails here, not never
SPEC = """experiments = ["baseline"]
seeds = [1, 2]
batches_per_task = 6
hidden = [16]
eval_subset = 50
[grid]
{grid}
"""


pytestmark = pytest.mark.slow  # a real two-node cluster: starts in seconds, runs for more


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head and a second node, one CPU each; a plugin folder; the environment to use."""
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "my_clipping.py").write_text(example_code("my_clipping"))
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",  # no token to hand around between test processes
        "RAY_USAGE_STATS_ENABLED": "0",
        "STABGAP_DATA": str(mnist_dir()),  # each node finds MNIST in its own STABGAP_DATA
    }
    env.pop("STABGAP_PLUGINS", None)  # the nodes know no plugin: it travels with the tasks
    address = f"127.0.0.1:{free_port()}"
    start = [RAY, "start", "--num-cpus", "1"]
    port = address.split(":")[1]
    subprocess.run(
        [*start, "--head", "--port", port, "--include-dashboard=false"],
        env=env, check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    try:
        subprocess.run(
            [*start, "--address", address], env=env, check=True, capture_output=True, timeout=120
        )
        yield {"address": address, "env": env, "plugins": plugins, "start": start}
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def stabgap(cluster, cwd, *argv, plugin=False):
    env = dict(cluster["env"])
    if plugin:
        env["PYTHONPATH"] = os.pathsep.join([str(cluster["plugins"]), env.get("PYTHONPATH", "")])
        env["STABGAP_PLUGINS"] = "my_clipping"
    return subprocess.run(
        [sys.executable, "-m", "stabgap.cli", *map(str, argv)],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=LIMIT,
    )  # fmt: skip


def curves(folder: Path) -> dict[str, tuple]:
    out = {}
    for run in sorted(folder.glob("*/curves.npz")):
        with np.load(run) as z:
            out[run.parent.name] = (z["acc"], z["loss"])
    return out


def assert_same_runs(a: Path, b: Path) -> None:
    ours, theirs = curves(a), curves(b)
    assert sorted(ours) == sorted(theirs) and ours
    for name, (acc, loss) in ours.items():
        np.testing.assert_array_equal(acc, theirs[name][0])
        np.testing.assert_array_equal(loss, theirs[name][1])


def test_a_sweep_on_nodes_of_one_cpu_runs_and_equals_the_local_executor(cluster, tmp_path):
    (tmp_path / "s.toml").write_text(SPEC.format(grid="decay_lambda = [0, 1e-4]"))
    on_ray = stabgap(cluster, tmp_path, "sweep", "s.toml", "--out", "ray", "--quiet",
                     "--executor", "ray", "--ray-address", cluster["address"])  # fmt: skip
    assert on_ray.returncode == 0, on_ray.stderr
    local = stabgap(cluster, tmp_path, "sweep", "s.toml", "--out", "local", "--quiet",
                    "--threads", "1")  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert_same_runs(tmp_path / "ray", tmp_path / "local")
    assert all('"threads": 1,' in p.read_text() for p in (tmp_path / "ray").glob("*/run.json"))


def test_threads_that_no_node_has_are_refused_at_once(cluster, tmp_path):
    (tmp_path / "s.toml").write_text(SPEC.format(grid="decay_lambda = [0]"))
    done = stabgap(cluster, tmp_path, "sweep", "s.toml", "--out", "ray", "--threads", "2",
                   "--executor", "ray", "--ray-address", cluster["address"])  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "stabgap: error: --threads 2: no node of the Ray cluster has 2 CPUs (the largest has "
        "1), so no task could ever start: pass --threads 1 or fewer"
    )
    assert not (tmp_path / "ray").exists()  # nothing written for a refused command


def test_a_plugin_remedy_travels_with_the_tasks(cluster, tmp_path):
    (tmp_path / "s.toml").write_text(SPEC.format(grid="clip_norm = [0, 0.05]"))
    how = ("--quiet", "--executor", "ray", "--ray-address", cluster["address"])
    on_ray = stabgap(cluster, tmp_path, "sweep", "s.toml", "--out", "ray", *how, plugin=True)
    assert on_ray.returncode == 0, on_ray.stderr
    local = stabgap(cluster, tmp_path, "sweep", "s.toml", "--out", "local", "--quiet",
                    "--threads", "1", plugin=True)  # fmt: skip
    assert local.returncode == 0, local.stderr
    assert_same_runs(tmp_path / "ray", tmp_path / "local")
    clipped = [p.read_text() for p in (tmp_path / "ray").glob("*clip_norm=0.05*/run.json")]
    assert len(clipped) == 2 and all('"clip"' in text for text in clipped)  # trained clipped


def test_a_field_unknown_on_a_worker_is_an_error_not_a_lost_field(cluster, tmp_path):
    """A Ray session the user started without the plugin: its workers cannot rebuild the
    config, and say so, instead of training the baseline under the remedy's name."""
    script = f"""
import ray
from stabgap.errors import StabgapError
from stabgap.study import run_study
ray.init(address={cluster["address"]!r}, log_to_driver=False)
try:
    run_study("quick", ["baseline"], seeds=[1], overrides=dict(clip_norm=0.05, hidden=[16],
              batches_per_task=6, eval_subset=50), executor="ray")
except StabgapError as e:
    print(e)
"""
    env = dict(cluster["env"])
    env["PYTHONPATH"] = os.pathsep.join([str(cluster["plugins"]), env.get("PYTHONPATH", "")])
    env["STABGAP_PLUGINS"] = "my_clipping"
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=LIMIT)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(
        r"1 of 1 runs failed.*reached this Ray worker with a config it cannot rebuild "
        r"\(unknown config field 'clip_norm'",
        done.stdout,
    ), done.stdout


def test_runs_on_auto_ask_the_cluster_for_a_gpu_where_a_node_has_one(cluster, tmp_path):
    """A node that declares a GPU (none is real here): device 'auto' asks Ray for a GPU,
    and the task that gets it says that torch sees no CUDA device there."""
    subprocess.run(
        [*cluster["start"], "--num-gpus", "1", "--address", cluster["address"]],
        env=cluster["env"], check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (tmp_path / "s.toml").write_text(SPEC.format(grid="decay_lambda = [0]"))
    done = stabgap(cluster, tmp_path, "sweep", "s.toml", "--out", "ray", "--quiet",
                   "--executor", "ray", "--ray-address", cluster["address"])  # fmt: skip
    assert done.returncode == 1
    assert "Ray gave this task GPU 0 on node" in done.stderr
    assert "torch there sees no CUDA device" in done.stderr


def test_tasks_are_sized_for_the_nodes_that_exist():
    assert plan_tasks([Node(1, 0), Node(4, 0)], ["auto"], None).threads == 1
    assert plan_tasks([Node(4, 0), Node(4, 1)], ["cpu"], 4).resources("cpu") == {
        "num_cpus": 4,
        "num_gpus": 0,
    }
    gpu = plan_tasks([Node(16, 0), Node(4, 2)], ["auto"], None)
    assert gpu.resources("auto") == {"num_cpus": 1, "num_gpus": 1}
    assert gpu.resources("cpu") == {"num_cpus": 4, "num_gpus": 0}
    with pytest.raises(StabgapError, match="ask for a GPU .* but no node of the Ray cluster"):
        plan_tasks([Node(8, 0)], ["cuda"], None)
    with pytest.raises(StabgapError, match="no node of the Ray cluster has 16 CPUs"):
        plan_tasks([Node(8, 0), Node(4, 1)], ["cpu"], 16)
    plan_tasks([Node(8, 0), Node(4, 1)], ["cuda"], 16)  # GPU tasks need one CPU: fine


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_address_where_no_cluster_listens_is_refused_at_once(tmp_path, scheme):
    # Ray itself retries such an address for minutes, printing its warnings.
    (tmp_path / "s.toml").write_text(SPEC.format(grid="decay_lambda = [0]"))
    address = f"{scheme}127.0.0.1:{free_port()}"  # free: the connection is refused
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "STABGAP_DATA": str(mnist_dir())}
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "stabgap.cli", "sweep", "s.toml", "--out", "o", "--quiet",
         "--executor", "ray", "--ray-address", address],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert time.monotonic() - start < 10
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert f"error: no Ray cluster answers at {address} (Connection refused)" in done.stderr
    assert "ray start --head" in done.stderr and "check the host and port" in done.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "address, env, cpus, asked_for",
    [
        (None, None, os.cpu_count(), "local"),  # a fresh instance, even beside a `ray start`
        ("10.0.0.1:6379", None, None, "10.0.0.1:6379"),
        (None, "10.0.0.1:6379", None, None),  # Ray reads $RAY_ADDRESS itself
    ],
)
def test_a_joined_cluster_is_not_told_its_cpus(monkeypatch, address, env, cpus, asked_for):
    # Ray refuses num_cpus when it joins a cluster (named by --ray-address or $RAY_ADDRESS);
    # only an instance started here is given this machine's CPUs, and without an address it
    # is started ("local") where Ray would join a cluster `ray start`ed on this machine
    import ray

    from stabgap.studies import cluster

    asked = {}
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: asked.update(kwargs))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    if env is None:
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
    else:
        monkeypatch.setenv("RAY_ADDRESS", env)
    with cluster.connected(address):
        pass
    assert asked["num_cpus"] == cpus and asked["address"] == asked_for


def test_a_runs_error_on_a_node_names_the_node_and_its_own_environment(monkeypatch):
    # a node reads its own $STABGAP_DATA and cache: an error there says where it happened,
    # or "set STABGAP_DATA" reads as advice about the sweep's own machine
    import ray

    import stabgap.studies.sweep as sweep
    from stabgap.studies.cluster import _train_stack

    def missing_data(stack, progress):
        raise StabgapError("MNIST not found in /root/.cache/stabgap/mnist")

    monkeypatch.setattr(sweep, "run_stack", missing_data)
    monkeypatch.setattr(ray, "get_gpu_ids", lambda: [])
    monkeypatch.setattr(ray.util, "get_node_ip_address", lambda: "10.0.0.7")
    with pytest.raises(StabgapError) as e:
        _train_stack(0, [], 1, progress=None)
    assert str(e.value) == (
        "on Ray node 10.0.0.7, which reads its own environment ($STABGAP_DATA, its cache and "
        "files): MNIST not found in /root/.cache/stabgap/mnist"
    )
