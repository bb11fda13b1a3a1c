"""The docs' worked examples of a new stream, model and remedy, each one file loaded as a
plugin: the CLI, sweeps with workers (each run equal to the same run alone), the report,
the cost model and stacking take them without a change anywhere else."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, mnist_dir

DOCS = ROOT / "docs"
TINY = ["--batches-per-task", "6", "--hidden", "16", "--eval-subset", "50", "--quiet"]
# (module, the doc and the heading of the section whose first Python block it is)
EXAMPLES = {
    "my_clipping": ("remedies.md", "A worked example: gradient clipping per copy"),
    "relabeled": ("extending.md", "A stream: the labels permuted anew each task"),
    "resmlp": ("extending.md", "A model: an MLP with skip connections"),
    "l2_anchor": ("methods.md", "A worked example: a method as a plugin"),
}


def example_code(module: str) -> str:
    """The first Python block under the example's heading, as a reader sees it."""
    doc, heading = EXAMPLES[module]
    section = (DOCS / doc).read_text().split(f"## {heading}\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.parametrize("module", EXAMPLES)
def test_each_example_is_one_short_file(module):
    assert len(example_code(module).strip().splitlines()) <= 50


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("plugin")
    for module in EXAMPLES:
        (folder / f"{module}.py").write_text(example_code(module))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(folder), env.get("PYTHONPATH", "")])
    env["STABGAP_PLUGINS"] = ",".join(EXAMPLES)
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_plugin_method_runs_sweeps_on_workers_as_alone_and_is_costed(plugin, tmp_path):
    help_text = stabgap(plugin, "run", "--help", cwd=tmp_path).stdout
    assert "--l2-anchor" in help_text and "L2 anchor: strength" in help_text
    (tmp_path / "anchor.toml").write_text(
        "preset = 'quick-split'\nexperiments = ['no-replay']\nseeds = [1]\n"
        "batches_per_task = 6\nhidden = [16]\neval_subset = 50\n[grid]\nl2_anchor = [0, 10]\n"
    )
    done = stabgap(plugin, "sweep", "anchor.toml", "--workers", "2", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    swept = curves(tmp_path / "runs" / "anchor", "l2_anchor")
    assert swept[("0.0", 1)] != swept[("10.0", 1)]
    done = stabgap(plugin, "run", "--preset", "quick-split", *TINY, "--experiments", "no-replay",
                   "--seeds", "1", "--l2-anchor", "10", "--out", "alone", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert curves(tmp_path / "alone", "l2_anchor") == {("10.0", 1): swept[("10.0", 1)]}
    (run_json,) = (tmp_path / "alone").glob("*/run.json")
    assert json.loads(run_json.read_text())["metadata"]["methods"] == ["l2-anchor"]
    cost = stabgap(plugin, "cost", cwd=tmp_path).stdout
    assert re.search(r"l2-anchor\s+l2_anchor=10.0\s+nothing in task 1: it acts from task 2", cost)
    cost = stabgap(plugin, "cost", "--task", "2", cwd=tmp_path).stdout
    assert re.search(r"l2-anchor\s+l2_anchor=10.0\s+34\.947 M", cost)  # 6 FLOPs × 5.8 M


def test_a_missing_plugin_is_one_line(tmp_path):
    env = {**os.environ, "STABGAP_PLUGINS": "no_such_module_here"}
    done = stabgap(env, "presets", cwd=Path(tmp_path))
    assert done.returncode != 0
    assert "cannot import plugin module 'no_such_module_here'" in done.stderr


def curves(folder: Path, field: str) -> dict[tuple[str, int], tuple]:
    """Each run's (its value of `field`, seed) -> its loss and accuracy curves."""
    from stabgap.studies.records import iter_runs

    return {
        (str(r.config[field]), r.config["seed"]): (
            r.loss.tolist(),
            np.nan_to_num(r.acc, nan=-1).tolist(),
        )
        for r in iter_runs(folder)
    }


@pytest.mark.parametrize(
    "module, options, field, values",
    [
        ("relabeled", ["--stream", "relabeled", "--n-tasks", "2"], "stream_seed", ["0", "3"]),
        ("resmlp", ["--model", "resmlp"], "hidden", ["16", "16,16"]),
    ],
)
@pytest.mark.slow
def test_a_plugin_stream_and_model_run_sweep_and_report(
    plugin, tmp_path, module, options, field, values
):
    help_text = stabgap(plugin, "run", "--help", cwd=tmp_path).stdout
    assert f"{module}: " in help_text  # listed with its help line

    grid = ", ".join(f"[{v}]" if field == "hidden" else v for v in values)
    widths = "" if field == "hidden" else "hidden = [16]\n"
    (tmp_path / "study.toml").write_text(
        "experiments = ['baseline']\nseeds = [1, 2]\nbatches_per_task = 6\neval_subset = 50\n"
        f"{widths}[set]\n{_toml(options)}[grid]\n{field} = [{grid}]\n"
    )
    done = stabgap(plugin, "sweep", "study.toml", "--workers", "2", "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr  # the workers load the plugins too
    swept = curves(tmp_path / "runs" / "study", field)
    assert len(swept) == 4

    for value in values:  # each run of the sweep equals the same run alone
        out = tmp_path / f"alone-{value}"
        tiny = ["--batches-per-task", "6", "--eval-subset", "50", "--quiet"]
        tiny += [] if field == "hidden" else ["--hidden", "16"]
        done = stabgap(plugin, "run", *tiny, *options, "--experiments", "baseline",
                       "--seeds", "1,2", "--set", f"{field}={value}", "--out", out,
                       cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
        for key, alone in curves(out, field).items():
            assert swept[key] == alone, key

    done = stabgap(plugin, "report", "runs/study", cwd=tmp_path)
    assert done.returncode == 0, done.stderr


def _toml(options: list[str]) -> str:
    """``--stream relabeled --n-tasks 2`` as TOML lines of a study file's [set]."""
    lines = []
    for flag, value in zip(options[::2], options[1::2], strict=True):
        number = value.isdigit()
        lines.append(f"{flag[2:].replace('-', '_')} = {value if number else repr(value)}\n")
    return "".join(lines)


def test_a_capability_the_plugin_model_lacks_is_refused_in_one_line(plugin, tmp_path):
    done = stabgap(plugin, "run", *TINY, "--model", "resmlp", "--lpr-omega", "1",
                   "--out", "lpr", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "remedy lpr needs a network of dense layers only" in done.stderr
    assert "(model mlp does)" in done.stderr
    assert not (tmp_path / "lpr").exists()


def _remedy_declaring(field: str, name: str = "shy") -> str:
    """A plugin remedy `name` whose one field is `field`."""
    return f"""
from stabgap.core.fields import option
from stabgap.core.remedies import Remedy, register

@register
class Shy(Remedy):
    name = "{name}"
    help = "does nothing"
    fields = {{"{field}": (float, option(0.0, "its strength"))}}
    example = {{"{field}": 0.1}}
    @classmethod
    def active(cls, config):
        return False
"""


BROKEN = {
    # a field of a type no config can read: every command would fail on it
    "bad_type": """
from stabgap.core.fields import option
from stabgap.core.remedies import Remedy, register

@register
class Levels(Remedy):
    name = "levels"
    fields = {"noise_levels": (tuple, option((0.0, 0.3), "Noise levels."))}
""",
    # a stream that reads a field it does not declare, and one that builds float pixels
    "bad_streams": """
import torch
from stabgap.core.streams import STREAMS, Stream
from stabgap.core.streams.rotated import Rotated

@STREAMS.register
class Sneaky(Stream):
    name = "sneaky"
    help = "reads stream_seed without saying so"
    @classmethod
    def n_tasks(cls, config):
        return 3
    @classmethod
    def build(cls, config, images, device):
        config.stream_seed
        return None

@STREAMS.register
class Floats(Stream):
    name = "floats"
    help = "rotated, as floats"
    uses = ("rotations",)
    @classmethod
    def n_tasks(cls, config):
        return len(config.rotations)
    @classmethod
    def build(cls, config, images, device):
        stream = Rotated.build(config, images, device)
        import dataclasses
        return dataclasses.replace(stream, train_x=stream.train_x / 255.0)
""",
    # fields and names that stabgap or another extension has already
    "clashes_core": _remedy_declaring("lr"),
    "clashes_method": _remedy_declaring("der_alpha"),
    "named_like_a_method": _remedy_declaring("shy_amount", name="der"),
}


@pytest.mark.parametrize(
    "module, argv, message",
    [
        ("clashes_core", ["presets"], "plugin module 'clashes_core' cannot be loaded: its remedy "
         "shy declares the config field 'lr', which the core config has: rename it"),
        ("clashes_method", ["presets"], "plugin module 'clashes_method' cannot be loaded: remedy "
         "shy declares the config field 'der_alpha', which method der declares already"),
        ("named_like_a_method", ["cost"], "plugin module 'named_like_a_method' cannot be loaded: "
         "a method named 'der' is already registered"),
        ("bad_type", ["presets"], "plugin module 'bad_type' cannot be loaded: config field "
         "'noise_levels' of remedy levels is declared as tuple: declare bool, int, float"),
        ("bad_streams", ["run", *TINY, "--stream", "sneaky", "--out", "out"],
         "stream sneaky reads config field 'stream_seed', which it does not declare: add it "
         "to its uses"),
        ("bad_streams", ["run", *TINY, "--stream", "floats", "--out", "out"],
         "stream floats built training images of torch.float32: a stream's images are uint8"),
    ],
)  # fmt: skip
def test_a_plugin_mistake_is_one_line_naming_it(tmp_path, module, argv, message):
    (tmp_path / f"{module}.py").write_text(BROKEN[module])
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "STABGAP_PLUGINS": module}
    env["STABGAP_DATA"] = str(mnist_dir())
    done = stabgap(env, *argv, cwd=tmp_path)
    assert done.returncode in (1, 2), done.stdout
    assert message in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*/run.json"))


def test_the_cost_of_a_plugin_model_is_counted_from_its_layers(plugin, tmp_path):
    done = stabgap(plugin, "cost", "--model", "resmlp", "--hidden", "64,64", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].startswith(
        "Cost per batch in task 1: resmlp: hidden 64,64, 10 outputs"
    )
