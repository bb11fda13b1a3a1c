"""Trust: a run in a sweep is the run alone, and a stream is only ever the stream it says."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, mnist_dir, tiny_config

from stabgap.core.fields import ConfigView
from stabgap.core.memories import MEMORIES
from stabgap.core.methods import METHODS
from stabgap.core.models import MODELS
from stabgap.core.optim import OPTIMIZERS
from stabgap.core.remedies import REMEDIES
from stabgap.core.streams import STREAMS, build_stream
from stabgap.core.train import run_experiment
from stabgap.errors import StabgapError
from stabgap.studies.plan import study_spec
from stabgap.study import run_spec

TINY = {
    "hidden": [8],
    "batches_per_task": 4,
    "batch_size": 16,
    "eval_subset": 50,
    "data_dir": str(mnist_dir()),
}

# Every field a stream, a model, an optimiser or a remedy declares: the settings that make
# it apply, and two values to sweep. A field declared later without a line here fails
# test_the_grid_covers_every_declared_field.
PERMUTED = {"stream": "permuted"}
SPLIT = {"stream": "split", "classes_per_task": 5}
MEMORY = {"replay": "memory"}
RESNET = {"model": "resnet", "hidden": [2048, 2048]}  # (the ResNet has no dense hidden layers)
VIT = {"model": "vit", "hidden": [2048, 2048], "vit_patch": 7, "vit_dim": 8, "vit_depth": 1,
       "vit_heads": 2}  # fmt: skip
GRID: dict[str, tuple[dict, list]] = {
    "rotations": ({}, [[0, 80], [0, 45]]),
    "n_tasks": (PERMUTED, [2, 3]),
    "permute_first": ({**PERMUTED, "n_tasks": 2}, [False, True]),
    "stream_seed": ({**PERMUTED, "n_tasks": 2}, [0, 7]),
    "classes_per_task": ({**SPLIT}, [5, 4]),
    "scenario": ({**SPLIT}, ["class", "task"]),
    "hidden": ({}, [[8], [6, 6]]),
    "channels": ({"model": "cnn", "channels": [2]}, [[2], [3]]),
    "momentum": ({"optimizer": "sgd", "lr": 0.05}, [0.0, 0.9]),
    "nesterov": ({"optimizer": "sgd", "lr": 0.05, "momentum": 0.9}, [False, True]),
    "weight_decay": ({}, [0.0, 0.1]),
    "betas": ({}, [[0.9, 0.999], [0.5, 0.9]]),
    "eps": ({}, [1e-8, 0.1]),
    "rms_alpha": ({"optimizer": "rmsprop"}, [0.99, 0.5]),
    "decay_lambda": ({}, [0.0, 1e-3]),
    "decay_reduction": ({"decay_lambda": 1e-2}, ["sum", "mean"]),
    "l1_lambda": ({}, [0.0, 1e-3]),
    "l1_reduction": ({"l1_lambda": 1e-2}, ["sum", "mean"]),
    "l2_lambda": ({}, [0.0, 1e-2]),
    "ema_decay": ({}, [0.0, 0.9]),
    "sam_rho": ({}, [0.0, 0.05]),
    "lpr_omega": ({}, [0.0, 1.0]),
    "lpr_every": ({"lpr_omega": 1.0}, [1, 3]),
    "lpr_samples": ({"lpr_omega": 1.0, "lpr_every": 1}, [8, 50]),
    "switch_lr": ({}, ["none", "warmup"]),
    "switch_lr_batches": ({"switch_lr": "warmup"}, [2, 3]),
    "switch_lr_factor": ({"switch_lr": "low"}, [0.1, 0.5]),
    "reset_optimizer": ({}, [False, True]),
    # core fields new since this test was written
    "eval_batch_size": ({"eval_subset_rounding": "batches", "eval_subset": 40}, [0, 24]),
    "replay": ({}, ["full", "memory"]),
    "eval_switch_window": ({"eval_every": 2}, [0, 2]),
    # the bounded memory and the methods
    "memory": (MEMORY, ["reservoir", "task-balanced"]),
    "memory_size": (MEMORY, [10, 40]),
    "replay_batch_size": (MEMORY, [0, 5]),
    "replay_weight": (MEMORY, [0.0, 0.7]),
    "er_ace": ({**SPLIT, **MEMORY}, [False, True]),
    "der_alpha": ({"replay": "none"}, [0.0, 0.3]),
    "der_beta": ({"replay": "none"}, [0.0, 0.5]),
    "agem": (MEMORY, [False, True]),
    "ewc_lambda": ({}, [0.0, 100.0]),
    "ewc_gamma": ({"ewc_lambda": 1e4}, [1.0, 0.5]),
    "ewc_samples": ({"ewc_lambda": 1e4}, [5, 20]),
    "lwf_lambda": ({}, [0.0, 1.0]),
    "lwf_temperature": ({"lwf_lambda": 1.0}, [2.0, 4.0]),
    "resnet_width": (RESNET, [4, 8]),
    "resnet_norm": ({**RESNET, "resnet_width": 4}, ["batch", "group"]),
    "vit_patch": (VIT, [7, 14]),
    "vit_dim": (VIT, [8, 12]),
    "vit_depth": (VIT, [1, 2]),
    "vit_heads": (VIT, [2, 4]),
}


def declared_fields() -> dict[str, str]:
    """Every field an extension declares, with the kind that declares it."""
    kinds: dict[str, str] = {}
    for name, spec in STREAMS.items():
        for f in (*spec.uses, *(["scenario"] if len(spec.scenarios) > 1 else [])):
            kinds.setdefault(f, f"stream {name}")
    for kind, specs in (("model", MODELS), ("optimizer", OPTIMIZERS)):
        for name, spec in specs.items():
            for f in spec.uses:
                kinds.setdefault(f, f"{kind} {name}")
    for registry in (REMEDIES, METHODS):
        for name, acting in registry.items():
            for f in acting.fields:
                kinds.setdefault(f, f"{registry.kind} {name}")
    for f in ("memory", *MEMORIES.shared):
        kinds.setdefault(f, "memory")
    return kinds


def test_the_grid_covers_every_declared_field():
    missing = sorted(set(declared_fields()) - set(GRID))
    assert not missing, f"add a line to GRID for {missing}"


@pytest.mark.parametrize("field", sorted(GRID))
def test_a_grid_over_a_declared_field_runs_each_run_as_alone(field, tmp_path):
    """A sweep over the field (one stream cache, one process) gives, run for run, the
    curves and losses of each run trained alone on a stream built for it."""
    settings, values = GRID[field]
    fixed = {k: v for k, v in {**TINY, **settings}.items() if k != field}
    spec = study_spec(
        {
            "preset": "quick",
            "experiments": ["baseline"],
            "seeds": [1],
            "set": fixed,
            "grid": {field: values},
        }  # fmt: skip
    )
    swept = run_spec(spec, tmp_path / "sweep", plot=False)
    assert len(swept) == 2
    for planned, record in zip(spec.plan(), swept, strict=True):
        alone = run_experiment(planned.config)  # its own stream, built from its config
        np.testing.assert_array_equal(record.acc, alone.acc, err_msg=f"{field}: {record.name}")
        np.testing.assert_array_equal(record.loss, alone.loss)
    same = [np.array_equal(getattr(swept[0], a), getattr(swept[1], a), equal_nan=True)
            for a in ("loss", "acc")]  # fmt: skip
    assert not all(same), f"the two values of {field} ran alike: the test would show nothing"


@pytest.mark.slow
def test_a_stream_field_swept_through_the_cli_trains_each_run_on_its_own_stream(tmp_path):
    """The reported case: stream_seed = [0, 7] in a sweep of quick-permuted gave the
    stream_seed=7 run the curves of stream_seed=0, under the run id of the real one."""
    spec = tmp_path / "seeds.toml"
    spec.write_text(
        'preset = "quick-permuted"\nexperiments = ["baseline"]\nseeds = [1]\n[set]\n'
        "batches_per_task = 6\nhidden = [16]\neval_subset = 100\n[grid]\nstream_seed = [0, 7]\n"
    )
    env = {**os.environ, "STABGAP_DATA": str(mnist_dir())}

    def stabgap(*argv):
        done = subprocess.run(
            [sys.executable, "-m", "stabgap.cli", *argv], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    stabgap("sweep", "seeds.toml", "--out", "sweep", "--quiet")
    stabgap("run", "--preset", "quick-permuted", "--experiments", "baseline", "--seeds", "1",
            "--batches-per-task", "6", "--hidden", "16", "--eval-subset", "100",
            "--stream-seed", "7", "--out", "alone", "--quiet", "--no-plot")  # fmt: skip
    swept = {p.name.split("-seed1-")[1]: np.load(p / "curves.npz")["acc"]
             for p in (tmp_path / "sweep").glob("baseline*")}  # fmt: skip
    ((stamp, alone),) = [
        (p.name.split("-seed1-")[1], np.load(p / "curves.npz")["acc"])
        for p in (tmp_path / "alone").glob("baseline*")
    ]
    np.testing.assert_array_equal(swept[stamp], alone)  # the same run id, the same run
    (other,) = [acc for s, acc in swept.items() if s != stamp]
    assert not np.array_equal(other, alone, equal_nan=True)


def test_a_builder_that_reads_an_undeclared_field_fails():
    view = ConfigView("stream demo", {"rotations": (0.0,)})
    with pytest.raises(AttributeError, match="stream demo reads config field 'stream_seed'"):
        view.stream_seed  # noqa: B018


def test_the_loop_refuses_a_stream_built_for_another_run(small_mnist):
    config = tiny_config(stream="permuted", n_tasks=2)
    stream = build_stream(config, "cpu", small_mnist)
    run_experiment(config, stream)  # its own stream: fine
    with pytest.raises(StabgapError, match=r"stream_seed=0 \(the run's: 7\)"):
        run_experiment(config.replace(stream_seed=7), stream)
    with pytest.raises(StabgapError, match=r"another run \(stream permuted\)"):
        run_experiment(tiny_config(), stream)


# --- a run's id names exactly what it computed ------------------------------------------------
CLI_TINY = ["--preset", "quick", "--batches-per-task", "6", "--hidden", "8", "--eval-subset",
            "50", "--quiet", "--no-plot", "--experiments", "baseline"]  # fmt: skip


def cli(capsys, *argv):
    from stabgap.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_defaults_are_pinned_by_the_stamp_schema():
    """A default cannot change, nor a field be added, without the pinned snapshot saying so:
    runs are named by what differs from the defaults, so a changed default would give an
    old run's name to another computation."""
    from stabgap.core.config import FIELDS, defaults
    from stabgap.studies.schema import STAMP_SCHEMA, pinned_defaults

    pinned = pinned_defaults(STAMP_SCHEMA)
    stamped = {k: v for k, v in defaults().items() if FIELDS[k].metadata["stamped"]}
    added = sorted(set(stamped) - set(pinned))
    assert not added, (
        f"add {added} to schema {STAMP_SCHEMA}'s entry of pinned_defaults.json, at a default "
        "that does what runs did before the field existed"
    )
    changed = {k: (pinned[k], v) for k, v in stamped.items() if pinned[k] != v}
    assert not changed, (
        f"defaults changed {changed} (pinned, now): bump STAMP_SCHEMA and pin the new "
        "defaults as its entry, so that no earlier run is taken for the new ones"
    )


def test_resume_refuses_a_run_of_the_planned_name_that_computed_something_else(tmp_path, capsys):
    out = tmp_path / "study"
    args = ("run", *CLI_TINY, "--seeds", "1,2", "--data-dir", mnist_dir(), "--out", out)
    assert cli(capsys, *args)[0] == 0
    (run,) = [p for p in out.glob("baseline*-seed1-*")]
    info = json.loads((run / "run.json").read_text())
    info["config"]["lr"] = 0.01  # a run that computed another lr under this name
    (run / "run.json").write_text(json.dumps(info))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, err = cli(capsys, *args[:-2], "--seeds", "1,2,3", "--out", out)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{run} holds a run of the planned name that computed something else: lr=0.01 " in err
    assert "(planned: 0.001)" in err and "it is not reused" in err
    assert before == {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}  # untouched


def test_a_record_from_before_a_field_existed_is_reused_and_grouped_alike(tmp_path, capsys):
    from stabgap.analysis.report import write_report
    from stabgap.studies.records import iter_runs, read_run

    out = tmp_path / "study"
    args = ("run", *CLI_TINY, "--data-dir", mnist_dir(), "--out", out)
    assert cli(capsys, *args, "--seeds", "1,2,3")[0] == 0
    (run,) = [p for p in out.glob("baseline*-seed1-*")]
    info = json.loads((run / "run.json").read_text())
    del info["config"]["eval_repeats"]  # as if written before the field existed
    (run / "run.json").write_text(json.dumps(info))
    written = (run / "run.json").read_bytes()
    code, _, err = cli(capsys, *args, "--seeds", "1,2,3,4")
    assert code == 0, err
    assert (run / "run.json").read_bytes() == written  # reused, not run again
    assert read_run(run).config["eval_repeats"] == 1
    assert len({r.name for r in iter_runs(out)}) == 4
    with open(write_report(out) / "groups.csv") as f:
        groups = list(csv.DictReader(f))
    assert len(groups) == 1 and groups[0]["seeds"] == "4"  # one group of 4


def test_records_of_schema_2_read_a_later_field_at_what_they_did():
    """Runs written before activity_every existed recorded the statistics at every point."""
    from stabgap.studies.records import read_run

    results = next((ROOT / "docs" / "results").rglob("baseline-seed2958-*"))
    record = read_run(results)
    assert record.stamp_schema == 2
    assert record.config["activity_every"] == 1
    assert np.isfinite(record.activity["active_fraction"][:, 0]).all()  # at every point


def test_a_study_resumed_with_another_thread_count_says_so(tmp_path, capsys):
    from stabgap.analysis.report import write_report

    out = tmp_path / "study"
    args = ("run", *CLI_TINY, "--data-dir", mnist_dir(), "--out", out)
    assert cli(capsys, *args, "--seeds", "1", "--threads", "2")[0] == 0
    code, _, err = cli(capsys, *args, "--seeds", "1,2", "--threads", "1")
    assert code == 0, err
    assert err.strip() == (
        f"stabgap: warning: {out} holds finished runs computed with 2 CPU threads (1 run); the "
        "1 new run will be computed with 1 CPU thread. A CPU sums a product's terms in an "
        "order that follows its thread count, and runs of the two part by rounding: pass "
        "--threads 2 to keep this study to one thread count"
    )
    with open(out / "table.csv", newline="") as f:
        assert {r["seed"]: r["threads"] for r in csv.DictReader(f)} == {"1": "2", "2": "1"}
    # ... and its report, which pools the two, says so too
    assert (
        "The runs were computed with 1 CPU thread (1 run) and 2 CPU threads (1 run): a CPU "
        "sums a product's terms in an order that follows its thread count, and runs of the two "
        "part by rounding. This report takes them as they are (threads in each run.json)."
    ) in (write_report(out) / "report.md").read_text()


def test_a_study_resumed_on_another_kind_of_device_says_so(tmp_path, capsys):
    out = tmp_path / "study"
    args = ("run", *CLI_TINY, "--data-dir", mnist_dir(), "--out", out, "--threads", "2")
    assert cli(capsys, *args, "--seeds", "1")[0] == 0
    (run,) = list(out.glob("baseline*-seed1-*"))
    info = json.loads((run / "run.json").read_text())
    info["metadata"]["device"] = "cuda:0"  # as a GPU machine would have written it
    (run / "run.json").write_text(json.dumps(info))
    code, _, err = cli(capsys, *args, "--seeds", "1,2")
    assert code == 0, err
    assert f"{out} holds finished runs computed on a GPU (1 run); the 1 new run will be" in err
    assert "so a seed's CPU and GPU runs are different draws" in err
    assert "set the runs' device to cuda to keep this study to one kind of device" in err


def test_one_config_has_one_label_however_its_settings_were_given():
    """A sweep's grid and a run's overrides, in any order: the same label (else a report
    splits one setting into two groups)."""
    from stabgap.studies.plan import plan_runs
    from stabgap.studies.presets import get_preset

    quick = get_preset("quick")
    settings = {"stream": "split", "replay": "memory", "memory": "class-balanced"}
    by_run = plan_runs(quick, ["baseline"], [1], {**settings, "der_alpha": 0.3})
    by_sweep = plan_runs(
        quick, ["baseline"], [1], {"replay": "memory"},
        {"der_alpha": [0.3], "memory": ["class-balanced"], "stream": ["split"]},
    )  # fmt: skip
    assert by_run[0].name == by_sweep[0].name
    assert by_run[0].name.startswith("baseline_stream=split_replay=memory_memory=class-balanced")


def test_workers_asking_for_more_threads_than_the_cores_are_warned(tmp_path, capsys, monkeypatch):
    from stabgap.studies import sweep

    monkeypatch.setattr(sweep, "available_cpus", lambda: 2)
    args = ("run", *CLI_TINY, "--data-dir", mnist_dir(), "--seeds", "1,2", "--workers", "2")
    code, _, err = cli(capsys, *args, "--threads", "4", "--out", tmp_path / "a")
    assert (
        code == 0
        and (
            "stabgap: warning: 2 worker(s) of 4 threads each ask for 8 cores of this machine's 2: "
            "runs that share cores are far slower than one after the other; pass --threads 1"
        )
        in err
    )
    code, _, err = cli(capsys, *args, "--threads", "1", "--out", tmp_path / "b")
    assert code == 0 and "warning" not in err
