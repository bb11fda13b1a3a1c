"""Sweeps: stamps, resuming after kill -9, divergence, parallel and Ray execution."""

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import mnist_dir, swept_and_alone

from stabgap.analysis.tables import read_table
from stabgap.errors import StabgapError
from stabgap.studies.plan import load_study, stamp, study_spec
from stabgap.studies.records import iter_runs
from stabgap.study import run_spec


def run_sweep(spec, out, **how):
    return run_spec(spec, out, **how)


def sweep_spec(values):
    return study_spec(values)


SPEC = """
preset = "quick"
experiments = ["baseline", "no-replay"]
seeds = [1, 2, 3]
[set]
batches_per_task = 8
hidden = [16, 16]
eval_subset = 50
data_dir = "{data}"
[grid]
decay_lambda = [0, 1e-4]
"""


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "sweep.toml"
    path.write_text(SPEC.format(data=mnist_dir()))
    return path


def spec_of(path):
    return load_study(path)


def snapshot(folder):
    """Each run's name → (its run.json bytes, its accuracy curves)."""
    return {r.name: ((r.path / "run.json").read_bytes(), r.acc) for r in iter_runs(folder)}


def test_stamp_is_stable_and_changes_with_the_science():
    spec = sweep_spec({"preset": "quick", "seeds": [1]})
    (a,) = spec.plan()[:1]
    assert stamp(a.config) == stamp(a.config.replace())
    assert stamp(a.config) == stamp(a.config.replace(data_dir="/elsewhere"))
    assert stamp(a.config) == stamp(a.config.replace(device="cpu"))  # auto and cpu: one run
    assert stamp(a.config) != stamp(a.config.replace(decay_lambda=1e-3))
    assert a.name == f"baseline-seed1-{stamp(a.config)}"


@pytest.mark.slow
def test_a_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path, spec_file):
    whole = tmp_path / "whole"
    run_sweep(spec_of(spec_file), whole)
    expected = snapshot(whole)
    assert len(expected) == 12

    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "stabgap.cli", "sweep", str(spec_file), "--out", str(killed)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list(killed.glob("[!.]*/run.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = snapshot(killed)
    assert 3 <= len(before) < 12, "the sweep should have been killed part-way"

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{len(before)}/12 runs already done, skipped" in done.stderr
    after = snapshot(killed)
    assert sorted(after) == sorted(expected)
    for name, (run_json, _) in before.items():
        assert after[name][0] == run_json  # not run again
    for name, (_, acc) in after.items():
        np.testing.assert_array_equal(acc, expected[name][1])
    assert not [p for p in killed.iterdir() if p.name.startswith(".")]


def test_a_second_start_runs_nothing(tmp_path, spec_file):
    out = tmp_path / "out"
    run_sweep(spec_of(spec_file), out)
    first = snapshot(out)
    lines = []
    run_sweep(spec_of(spec_file), out, report=lines.append)
    assert lines[0] == "12/12 runs already done, skipped"
    assert snapshot(out).keys() == first.keys()
    assert all(snapshot(out)[k][0] == first[k][0] for k in first)


def test_a_diverging_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    spec = sweep_spec(
        {
            "preset": "quick",
            "experiments": ["baseline"],
            "seeds": [1],
            "set": {
                "batches_per_task": 5,
                "hidden": [8],
                "eval_subset": 50,
                "optimizer": "sgd",
                "data_dir": str(mnist_dir()),
            },
            "grid": {"lr": [0.01, 1e12]},
        }
    )
    records = run_sweep(spec, tmp_path / "out")
    diverged = {r.config["lr"]: r.diverged for r in records}
    assert diverged == {0.01: False, 1e12: True}
    table = read_table(tmp_path / "out" / "table.csv")
    assert {row["diverged"] for row in table} == {True, False}


def test_the_study_file_of_the_docs_reads_as_written(tmp_path):
    from conftest import ROOT

    from stabgap.studies.plan import load_toml, study_spec

    text = (ROOT / "docs" / "studies.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "study.toml").write_text(block)
    spec = study_spec(load_toml(tmp_path / "study.toml"), "study.toml")
    assert (spec.baseline, spec.compare) == ("λ=0", ("λ=0.0001",))
    assert spec.grid == {"decay_lambda": [0, 1e-5, 1e-4]} and len(spec.seeds) == 5
    assert len(spec.plan()) == 15


@pytest.mark.parametrize(
    "values,message",
    [
        ({"grid": {"decay_lambda": []}}, "every [grid] entry must be a non-empty list"),
        ({"seeds": "1,2"}, "seeds must be a non-empty list of integers"),
        ({"lrr": 0.1}, "unknown key 'lrr': neither a config field nor one of preset"),
        ({"grid": {"lerning_rate": [0.1]}}, "unknown key 'lerning_rate' in [grid]"),
        (
            {"grid": {"decay_lambda": [0, 1e-4], "baseline": "λ=0"}},
            "'baseline' stands in [grid], where only config fields go: move it above the "
            "file's first [table]",
        ),
        ({"set": {"lr": -1}}, "lr must be a positive finite number"),
        ({"lr": -1}, "lr must be a positive finite number"),
        ({"n_seeds": -1}, "n_seeds must be a whole number >= 1, got -1"),
        ({"n_seeds": "2"}, "n_seeds must be a whole number >= 1, got '2'"),
        ({"experiments": ["baseline"], "grid": {"seed": [1, 2]}}, "seeds are not a grid field"),
        ({"seed": 4}, "give one of seeds, n_seeds and seed, not seeds and seed"),
    ],
)
def test_bad_specs_are_refused_before_any_run(values, message, tmp_path):
    with pytest.raises(StabgapError, match=message.replace("[", r"\[").replace("]", r"\]")):
        seeds = {} if "n_seeds" in values else {"seeds": [1]}
        spec = sweep_spec({"preset": "quick", **seeds, **values})
        run_sweep(spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_worker_processes_give_the_same_runs(tmp_path, spec_file):
    serial = run_sweep(spec_of(spec_file), tmp_path / "serial")
    parallel = run_sweep(spec_of(spec_file), tmp_path / "parallel", workers=2)
    for a, b in zip(serial, parallel, strict=True):
        assert a.name == b.name
        np.testing.assert_array_equal(a.acc, b.acc)


@pytest.mark.slow
def test_the_same_sweep_on_a_local_ray_instance_gives_the_same_table(tmp_path, spec_file):
    """Without an address a Ray instance is started for the sweep (tests/test_ray.py runs
    a real two-node cluster)."""
    pytest.importorskip("ray", reason="needs the ray extra: pip install 'stabgap[ray]'")
    spec_file.write_text(spec_file.read_text().replace("seeds = [1, 2, 3]", "seeds = [1]"))
    local = run_sweep(spec_of(spec_file), tmp_path / "local", threads=1)
    on_ray = run_sweep(spec_of(spec_file), tmp_path / "ray", executor="ray", threads=1)
    assert [r.name for r in local] == [r.name for r in on_ray]
    local_rows = read_table(tmp_path / "local" / "table.csv")
    ray_rows = read_table(tmp_path / "ray" / "table.csv")
    assert len(local_rows) == len(ray_rows) > 0
    for a, b in zip(local_rows, ray_rows, strict=True):
        assert a == b


def test_a_sweep_of_sparse_schedules_on_two_workers_runs_each_as_alone(tmp_path):
    """eval_every beyond the task's length, read by a switch window (6-batch tasks, every
    10th batch): over two worker processes, run for run, the points and curves of the run
    trained alone."""

    pairs = swept_and_alone(
        tmp_path, {"batches_per_task": 6, "eval_switch_window": 2}, {"eval_every": [3, 10]}
    )
    for record, alone in pairs:
        np.testing.assert_array_equal(record.eval_steps, alone.eval_steps, err_msg=record.name)
        np.testing.assert_array_equal(record.acc, alone.acc)
        np.testing.assert_array_equal(record.loss, alone.loss)
    assert pairs[-1][0].eval_steps.tolist() == [0, 5, 6, 7, 10, 11, 12, 13, 17]


def test_a_script_that_starts_its_study_at_import_gets_an_error_not_an_endless_pool(tmp_path):
    # each spawned worker imports the script again, which starts the study again and dies:
    # the pool would start new workers for ever; the study ends with what to change instead
    script = tmp_path / "study.py"
    script.write_text(
        "from stabgap.study import run_study\n"
        f"run_study('quick', ['baseline', 'nd'], seeds=[1], data_dir={str(mnist_dir())!r},\n"
        "          overrides={'batches_per_task': 6, 'hidden': [16], 'eval_subset': 50},\n"
        f"          workers=2, out={str(tmp_path / 'runs')!r})\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("stabgap.errors.StabgapError: the worker processes cannot start")
    assert 'under `if __name__ == "__main__":`' in last
    assert done.stderr.count("Traceback") == 1  # the driver's; its workers end quietly


@pytest.mark.parametrize(
    "how, message",
    [
        ({"seeds": 5}, "seeds=5: give a list of whole numbers (seeds=[1, 2, 3]), or n_seeds"),
        ({"worker": 2}, "run_study has no argument 'worker' (did you mean 'workers'?)"),
    ],
)
def test_a_mistaken_run_study_argument_is_named_before_any_work(tmp_path, how, message):
    from stabgap.study import run_study

    with pytest.raises(StabgapError, match=re.escape(message)):
        run_study("quick", out=tmp_path / "runs", **how)
    assert not (tmp_path / "runs").exists()
