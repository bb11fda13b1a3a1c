"""docs/remedies.md's worked example, loaded as a plugin: the CLI, sweeps with workers,
the report, the cost model and stacking all take a new remedy without touching train.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, mnist_dir

DOCS = ROOT / "docs" / "remedies.md"
TINY = ["--batches-per-task", "6", "--hidden", "16", "--eval-subset", "50", "--quiet"]


def example_code() -> str:
    """The first Python block of docs/remedies.md: the remedy, as a reader sees it."""
    return re.search(r"```python\n(.*?)```", DOCS.read_text(), re.S).group(1)


def test_the_example_is_under_40_lines():
    assert len(example_code().strip().splitlines()) < 40


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "my_clipping.py").write_text(example_code())
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    env["STABGAP_PLUGINS"] = "my_clipping"
    env["STABGAP_DATA"] = str(mnist_dir())
    return env


def stabgap(env, *argv, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "stabgap.cli", *map(str, argv)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_plugin_remedy_works_with_the_cli_sweeps_report_and_cost(plugin, tmp_path):
    help_text = stabgap(plugin, "run", "--help", cwd=tmp_path).stdout
    assert "--clip-norm" in help_text and "Clip each update's gradient" in help_text

    done = stabgap(plugin, "run", *TINY, "--experiments", "baseline", "--seeds", "1",
                   "--clip-norm", "0.5", "--out", "one", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run_json,) = (tmp_path / "one").glob("*/run.json")
    record = json.loads(run_json.read_text())
    assert record["config"]["clip_norm"] == 0.5 and record["metadata"]["remedies"] == ["clip"]

    (tmp_path / "clip.toml").write_text(
        "experiments = ['baseline']\nseeds = [1, 2, 3]\nbatches_per_task = 6\nhidden = [16]\n"
        "eval_subset = 50\n[grid]\nclip_norm = [0, 0.5]\n"
    )
    done = stabgap(plugin, "sweep", "clip.toml", "--workers", "2", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the workers load the plugin too
    done = stabgap(plugin, "report", "runs/clip", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    groups = (tmp_path / "runs/clip/report/groups.csv").read_text().splitlines()[1:]
    assert [g.split(",")[0] for g in groups] == ["clip_norm=0", "clip_norm=0.5"]

    cost = stabgap(plugin, "cost", cwd=tmp_path).stdout
    assert re.search(r"clip\s+clip_norm=1.0\s+17\.474 M", cost)  # 3 FLOPs × 5.8 M parameters


def test_a_plugin_remedy_stacks_and_clips_to_its_limit(plugin, tmp_path):
    check = f"""
import numpy as np, torch
from stabgap.core.config import RunConfig
from stabgap.core.remedies import Step
from stabgap.core.remedies.sam import copy_norms
from stabgap.core.streams import build_stream
from stabgap.core.train import build_parts, run_experiment, train_stack
base = dict(hidden=(16,), batches_per_task=8, batch_size=32, eval_subset=50,
            data_dir={str(mnist_dir())!r}, device="cpu", lr=0.01)
configs = [RunConfig(seed=1, clip_norm=0.05, **base), RunConfig(seed=2, clip_norm=0.0, **base)]
stream = build_stream(configs[0])
for c, together in zip(configs, train_stack(configs, stream)):
    alone = run_experiment(c, stream)
    assert np.array_equal(together.loss, alone.loss)
    assert np.array_equal(together.acc, alone.acc, equal_nan=True)
parts = build_parts(configs, stream, torch.device("cpu"))
parts.sampler.start_task(1)
clip = parts.remedies.all[0]
captured = {{}}
step = parts.optimizer.step
parts.optimizer.step = lambda: captured.setdefault("norms", copy_norms(
    [p.grad for p in parts.model.parameters()])) is not None and step()
from stabgap.core.train import train_step
train_step(parts, parts.sampler.next(), Step(1, 0, 0))
norms = captured["norms"]
assert abs(norms[0].item() - 0.05) < 1e-6, norms  # clipped to its limit
assert norms[1].item() > 0.05  # limit 0: not clipped
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", check], env=plugin, cwd=tmp_path, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_a_missing_plugin_is_one_line(tmp_path):
    env = {**os.environ, "STABGAP_PLUGINS": "no_such_module_here"}
    done = stabgap(env, "presets", cwd=Path(tmp_path))
    assert done.returncode != 0
    assert "cannot import plugin module 'no_such_module_here'" in done.stderr
