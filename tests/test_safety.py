"""A researcher's own study, safely: bad input refused before any work, nothing lost.

Every case goes through the real CLI, as a user meets it: one line on stderr naming the
problem and the fix, a non-zero exit, no traceback, no training started, nothing
written, and nothing that was there touched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import mnist_dir, reference_dir

from stabgap.cli import main
from stabgap.studies import sweep
from stabgap.studies.plan import stamp
from stabgap.studies.presets import PAPER_SEEDS, seed_sequence
from stabgap.studies.records import iter_runs, read_run

TINY = ["--batches-per-task", "6", "--hidden", "16", "--eval-subset", "50", "--quiet"]


def tree(root: Path) -> dict[str, str]:
    """Every file below `root` with the hash of its bytes (and its mode)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() + oct(p.stat().st_mode)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def no_training(monkeypatch):
    """Fails the test if any run starts training."""
    started = []

    def refuse(*args, **kwargs):
        started.append(args)
        raise AssertionError("training started before the error")

    monkeypatch.setattr(sweep, "train_runs", refuse)
    return started


def cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(code: int, err: str, message: str) -> None:
    assert code == 2, err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fresh folder with a user's file, a study file and MNIST where the user keeps it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STABGAP_DATA", str(mnist_dir()))
    (tmp_path / "notes.txt").write_text("my notes\n")
    return tmp_path


# --- bad input: refused before any work -------------------------------------------------------
RUN_CASES = [
    (["--out", "notes.txt"], "output folder notes.txt is a file, not a folder"),
    (["--out", "notes.txt/sub"], "cannot be created: notes.txt is a file"),
    (["--out", "/sys/stabgap-out"], "cannot be written"),
    (["--workers", "0"], "--workers must be a whole number >= 1, got 0"),
    (["--stack", "0"], "--stack must be a whole number >= 1, got 0"),
    (["--threads", "0"], "--threads must be a whole number >= 1, got 0"),
    (["--n-seeds", "0"], "n_seeds must be a whole number >= 1, got 0"),
    (["--n-seeds", "-1"], "n_seeds must be a whole number >= 1, got -1"),
    (["--seeds", "1,x"], "--seeds takes comma-separated integers, got '1,x'"),
    (["--seeds", "1,1"], "seeds must not repeat"),
    (["--seed", "5", "--seeds", "1"], "give one of --seeds, --n-seeds and --seed"),
    (["--set", "seed=5", "--seeds", "1"], "--seed, not --seeds and --set seed=5"),
    (["--decay-lambda", "-1e-4"], "decay_lambda must be a finite number >= 0, got -0.0001"),
    (["--decay-lambda", "inf"], "decay_lambda must be a finite number >= 0, got inf"),
    (["--lr", "nan"], "lr must be a positive finite number, got nan"),
    (["--lr", "fast"], "config field 'lr' must be a number, got 'fast'"),
    (["--hidden", "0"], "hidden widths must be >= 1"),
    (["--replay", "some"], "'replay' must be one of none, full, stratified"),
    (["--eval-subset", "20000"], "eval_subset=20000 is larger than task 1's test set"),
    (["--device", "tpu"], "device 'tpu'"),
    (["--experiments", "baselin"], "no experiment 'baselin' (did you mean 'baseline'?); choose"),
    (["--preset", "papr"], "unknown preset 'papr'"),
    (["--set", "lamda=1"], "unknown config field 'lamda'"),
    (["--set", "lr"], "--set takes FIELD=VALUE"),
    (["--data-dir", "mnsit"], "does not exist: check the path"),
    (["--config", "nowhere.toml"], "config file nowhere.toml not found"),
    (["--config", "."], "is a folder: give a .toml file"),
    # settings that would make a study meaningless
    (["--stream", "split", "--classes-per-task", "3"], "(its last task would hold one, which"),
    (["--stream", "split", "--classes-per-task", "1"], "(every task would hold one, which it"),
    (["--stream", "split", "--classes-per-task", "10"], "all 10 classes in one task: no switch"),
    (["--eval-precision", "tf32"], "eval_precision tf32 is CUDA's TensorFloat-32, which a cpu"),
    (["--model", "cnn", "--channels", "4,4,4,4,4"], "5 conv layers halve mnist's 28×28 images"),
    (["--stream", "rotatd"], "got 'rotatd' (did you mean 'rotated'?)"),
]


@pytest.mark.parametrize("argv,message", RUN_CASES)
def test_run_refuses_bad_input_before_any_work(workspace, capsys, no_training, argv, message):
    before = tree(workspace)
    code, _, err = cli(capsys, "run", *TINY, *argv)
    assert_refused(code, err, message)
    assert tree(workspace) == before and not no_training
    assert not (workspace / "runs").exists()


TOML_CASES = [
    ('n_seeds = "2"', "n_seeds must be a whole number >= 1, got '2'"),
    ("n_seeds = -1", "n_seeds must be a whole number >= 1, got -1"),
    ("n_seeds = 2\nseeds = [1]", "give one of seeds, n_seeds and seed"),
    ("experiments = 5", "experiments must be a list of names"),
    ('experiments = ["nd", "nd"]', "experiments: 'nd' is named twice"),
    ('seeds = "1,2"', "seeds must be a non-empty list of integers"),
    ("[grid]\nlr = 0.1", "every [grid] entry must be a non-empty list of values; 'lr' is not"),
    ('[grid]\nlr = ["fast"]', "config field 'lr' must be a number, got 'fast'"),
    ("set = 3", "[set] must be a table"),
    ("preset = 3", "preset must be a name"),
    ("lerning_rate = 0.1", "unknown key 'lerning_rate': neither a config field nor one of"),
    ("lr = 0.1\n[set]\nlr = 0.2", None),  # allowed: [set] is applied after the top level
    ("lr = [", "is not valid TOML"),
    ('data_dir = "mnsit"', "does not exist: check the path"),
]


@pytest.mark.parametrize("text,message", TOML_CASES)
def test_a_study_file_is_checked_key_by_key(workspace, capsys, no_training, text, message):
    (workspace / "study.toml").write_text(text + "\n")
    for command in (["run", *TINY, "--config", "study.toml"], ["sweep", "study.toml"]):
        before = tree(workspace)
        code, _, err = cli(capsys, *command)
        if message is None:  # valid: it gets as far as training, which the fixture stops
            assert code == 1 and "training started before the error" in err
            no_training.clear()
            continue
        assert_refused(code, err, message)
        assert tree(workspace) == before and not no_training


def test_a_relative_data_dir_in_a_study_file_is_read_from_its_folder(workspace, capsys):
    study = workspace / "studies"
    study.mkdir()
    os.symlink(mnist_dir(), study / "mnist")
    (study / "s.toml").write_text('data_dir = "mnist"\nexperiments = ["baseline"]\nseeds = [1]\n')
    elsewhere = workspace / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    code, _, err = cli(capsys, "run", *TINY, "--config", study / "s.toml", "--out", "o")
    assert code == 0, err
    (record,) = iter_runs(elsewhere / "o")
    assert record.config["data_dir"] == str((study / "mnist").resolve())


@pytest.mark.parametrize(
    "argv,message",
    [
        (["sweep", "study.toml", "--out", "notes.txt"], "is a file, not a folder"),
        (["sweep", "study.toml", "--out", "/sys/stabgap-x"], "cannot be written"),
        (["reproduce", "--quick", "--out", "notes.txt"], "is a file, not a folder"),
        (["reproduce", "--quick", "--out", "/sys/stabgap-x"], "cannot be written"),
        (["import-reference", "ref.json", "--out", "notes.txt"], "is a file, not a folder"),
        (["profile", "--device", "cpu", "--out", "notes.txt"], "is a file, not a folder"),
        (["profile", "--device", "cpu", "--out", "/sys/stabgap-x"], "cannot be written"),
        (["profile", "--device", "cpu", "--batches", "0"], "--batches must be >= 1"),
        (["report", "nowhere"], "nowhere does not exist: give the folder of runs a study"),
        (["report", "notes.txt"], "notes.txt is a file, not a folder: give the folder of runs"),
        (["metrics", "nowhere"], "nowhere does not exist"),
        (["run", "--lamda", "1"], "stabgap run: error: unrecognized argument '--lamda'"),
        (["sweep"], "stabgap sweep: error: the following arguments are required: spec"),
    ],
)
def test_every_command_checks_its_output_first(workspace, capsys, no_training, argv, message):
    (workspace / "study.toml").write_text("experiments = ['baseline']\nseeds = [1]\n")
    (workspace / "ref.json").write_text(
        (reference_dir() / "reference-results-seed2958.json").read_text()
    )
    before = tree(workspace)
    started = time.monotonic()
    code, _, err = cli(capsys, *argv)
    assert_refused(code, err, message)
    assert tree(workspace) == before and not no_training
    assert time.monotonic() - started < 20  # refused at once, not after a profile or a study


def test_an_unknown_option_is_named_by_its_command_with_a_near_match(capsys):
    code, _, err = cli(capsys, "run", "--decay-lamda", "1e-4")
    assert_refused(code, err, "stabgap run: error: unrecognized argument '--decay-lamda'")
    assert "did you mean --decay-lambda?" in err
    # nothing near it among the command's fields: it may be a plugin's, not loaded
    code, _, err = cli(capsys, "run", "--clip-norm", "1")
    assert_refused(code, err, "unrecognized argument '--clip-norm'; a plugin's options need")
    assert "$STABGAP_PLUGINS (docs/extending.md)" in err
    code, _, err = cli(capsys, "report", "--clip-norm", "1", "x")  # it takes no fields
    assert code == 2 and "plugin" not in err


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_a_grid_asked_for_as_a_flag_points_to_the_sweep_files_table(capsys, command):
    code, _, err = cli(capsys, command, "--grid", "decay_lambda=0,1e-5")
    assert_refused(code, err, f"stabgap {command}: error: unrecognized argument '--grid'")
    assert "a sweep file's [grid] table does that (docs/studies.md)" in err


# --- requests are honoured exactly -------------------------------------------------------------
def test_seed_is_honoured_and_n_seeds_is_not_capped(workspace, capsys):
    code, _, err = cli(
        capsys, "run", *TINY, "--experiments", "baseline", "--seed", "5", "--out", "a"
    )
    assert code == 0, err
    assert [r.config["seed"] for r in iter_runs(workspace / "a")] == [5]
    code, _, err = cli(
        capsys, "run", *TINY, "--experiments", "baseline", "--n-seeds", "5", "--out", "b"
    )
    assert code == 0, err
    seeds = sorted(r.config["seed"] for r in iter_runs(workspace / "b"))
    assert seeds == sorted(seed_sequence(5)) and seed_sequence(5) == PAPER_SEEDS[:5]
    assert len(set(seed_sequence(20))) == 20 and seed_sequence(20)[:15] == PAPER_SEEDS


def test_an_overridden_experiment_is_labelled_by_its_override(workspace, capsys):
    code, out, err = cli(
        capsys,
        "run",
        *TINY,
        "--experiments",
        "baseline",
        "--decay-lambda",
        "1e-4",
        "--seeds",
        "1",
        "--out",
        "o",
    )
    assert code == 0, err
    (record,) = iter_runs(workspace / "o")
    assert record.experiment == (
        "baseline_batches_per_task=6_eval_subset=50_hidden=16_decay_lambda=0.0001"
    )
    assert record.base == "baseline" and record.varied["decay_lambda"] == 1e-4


@pytest.mark.parametrize(
    "overrides, label",
    [
        ({"ema_decay": 0.9}, "baseline_ema_decay=0.9"),
        ({"stream": "split"}, "baseline_stream=split"),
        ({"decay_lambda": 0.0}, "baseline"),  # the experiment's own value: nothing differs
        ({"device": "cpu", "data_dir": "elsewhere"}, "baseline"),  # how, not what it computes
    ],
)
def test_a_run_is_named_by_every_science_field_it_changes(overrides, label):
    from stabgap.studies.plan import plan_runs
    from stabgap.studies.presets import get_preset

    [spec] = plan_runs(get_preset("quick"), ["baseline"], [1], overrides)
    assert spec.experiment == label and spec.name.startswith(f"{label}-seed1-")


def test_runs_of_an_older_label_are_found_by_seed_and_stamp(workspace, capsys):
    argv = ["run", *TINY, "--experiments", "baseline", "--ema-decay", "0.9", "--seeds", "1"]
    code, _, err = cli(capsys, *argv, "--out", "o")
    assert code == 0, err
    [new] = [p for p in (workspace / "o").iterdir() if p.is_dir() and "seed1" in p.name]
    assert new.name.startswith("baseline_batches_per_task=6_eval_subset=50_hidden=16_ema_decay")
    # the same run as an earlier version named it: the preset's experiment alone
    old = new.with_name("baseline-seed1-" + new.name.rsplit("-", 1)[1])
    new.rename(old)
    info = json.loads((old / "run.json").read_text())
    older = {"experiment": "baseline", "name": old.name, "varied": {}}
    (old / "run.json").write_text(json.dumps({**info, **older}))
    before = sorted(p.name for p in (workspace / "o").iterdir())
    code, out, err = cli(capsys, *argv, "--out", "o")
    assert code == 0, err
    assert sorted(p.name for p in (workspace / "o").iterdir()) == before  # nothing re-run
    assert "ema_decay=0.9" in out  # and reported under today's name, by run and by report
    assert cli(capsys, "report", "o")[0] == 0
    assert "ema_decay=0.9" in (workspace / "o" / "report" / "groups.csv").read_text()
    assert "ema_decay=0.9" in (workspace / "o" / "table.csv").read_text()


def test_quick_names_do_not_state_values_they_do_not_run(capsys):
    code, out, _ = cli(capsys, "presets")
    assert code == 0
    quick = out[out.index("quick:") :]
    assert "nd-lambda-1e-7" not in quick and "baseline-width-1024" not in quick
    assert "nd-weak" in quick and "decay_lambda=1e-06" in quick
    assert "baseline-narrow" in quick and "hidden=128,128" in quick


def test_run_help_shows_the_presets_own_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    text = text.replace("- ", "-")  # argparse may wrap a line after a name's hyphen
    # --hidden: the presets that agree share one entry, the default preset first
    assert (
        "[quick, quick-permuted, quick-split, quick-fashion, quick-fashion-split, remedies, "
        "methods, methods-rotated: 256,256; paper: 2048,2048; quick-cnn, quick-fashion-cnn: 64; "
        "gv-example: 400,400]" in text
    )
    assert "remedies, methods, methods-rotated: 300; paper, gv-example: 500; " in text
    # (a preset whose network has no dense widths is not listed under --hidden, above)
    assert "[default: 0]" in text  # --decay-lambda: the same in both


def test_the_python_api_takes_a_string_path(workspace):
    from stabgap.study import run_study

    records = run_study(
        "quick",
        ["baseline"],
        seeds=[2],
        overrides={"batches_per_task": 6, "hidden": [16], "eval_subset": 50},
        out="api-runs",
    )
    assert records[0].path.parent == Path("api-runs") and (workspace / "api-runs").is_dir()


# --- resuming ---------------------------------------------------------------------------------
def test_run_resumes_into_its_own_folder(workspace, capsys):
    argv = ["run", *TINY, "--seeds", "1,2", "--out", "o"]
    assert cli(capsys, *argv)[0] == 0
    first = tree(workspace / "o")
    code, out, err = cli(capsys, *argv[:-4], "--seeds", "1,2,3", "--out", "o")  # one more seed
    assert code == 0 and "6 run(s) in o" in out
    after = tree(workspace / "o")
    assert all(after[f] == h for f, h in first.items() if f.endswith(("run.json", "curves.npz")))
    assert len(list(iter_runs(workspace / "o"))) == 6


def _tiny_sweep(path: Path, n_seeds: int = 4, batches: int = 40) -> Path:
    path.write_text(
        f"""preset = "quick"
experiments = ["baseline", "nd"]
n_seeds = {n_seeds}
batches_per_task = {batches}
hidden = [64, 64]
eval_subset = 200
data_dir = "{mnist_dir()}"
"""
    )
    return path


@pytest.mark.slow
def test_ctrl_c_stops_two_workers_at_once_and_the_rerun_finishes_the_same(tmp_path):
    # runs long enough that the Ctrl-C, sent once the first is written, lands mid-sweep
    spec = _tiny_sweep(tmp_path / "s.toml", batches=80)
    whole = tmp_path / "whole"
    assert main(["sweep", str(spec), "--out", str(whole), "--quiet"]) == 0

    out = tmp_path / "cut"
    cmd = [
        sys.executable,
        "-m",
        "stabgap.cli",
        "sweep",
        str(spec),
        "--out",
        str(out),
        "--workers",
        "2",
    ]
    # Ctrl-C's default action in the child, whatever the test runner's own disposition
    # (an ignored SIGINT is inherited, and Python then leaves it ignored)
    proc = subprocess.Popen(
        cmd,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while not list(out.glob("[!.]*/run.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    err = proc.communicate(timeout=30)[1]
    assert time.monotonic() - sent < 5, "Ctrl-C should stop the workers within seconds"
    assert proc.returncode == 130
    kept = len(list(iter_runs(out)))
    assert 1 <= kept < 8, "the sweep should have been stopped part-way"
    assert f"interrupted: {kept} of 8 runs finished and kept in {out}" in err
    assert "to run the rest: stabgap sweep" in err
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # nothing half-written

    assert main(["sweep", str(spec), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    done = {r.name: r for r in iter_runs(out)}
    expected = {r.name: r for r in iter_runs(whole)}
    assert done.keys() == expected.keys()
    for name, r in done.items():
        np.testing.assert_array_equal(r.acc, expected[name].acc)


def test_progress_shows_from_the_start_with_workers(tmp_path):
    spec = _tiny_sweep(tmp_path / "s.toml", n_seeds=2, batches=5)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "stabgap.cli",
            "sweep",
            str(spec),
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "runs 0/4 done, starting 4 on 2 workers"
    assert "runs 4/4 done" in done.stderr


# --- failures and divergence ------------------------------------------------------------------
def test_a_failed_stack_keeps_the_others_work(workspace, capsys, monkeypatch):
    real = sweep.run_stack

    def flaky(stack, *args, **kwargs):
        if stack[0].config.seed == 2:
            raise RuntimeError("a worker fell over")
        return real(stack, *args, **kwargs)

    monkeypatch.setattr(sweep, "run_stack", flaky)
    code, _, err = cli(
        capsys, "run", *TINY, "--experiments", "baseline", "--seeds", "1,2,3", "--out", "o"
    )
    assert code == 1
    assert "1 of 3 runs failed, the others are finished and kept in o" in err
    assert "RuntimeError: a worker fell over" in err and "run the same command again" in err
    assert sorted(r.config["seed"] for r in iter_runs(workspace / "o")) == [1, 3]


def test_an_exploding_run_is_marked_diverged_and_kept_out_of_the_report(workspace, capsys):
    argv = ["run", *TINY, "--experiments", "baseline", "--seeds", "1,2,3", "--optimizer", "sgd"]
    assert cli(capsys, *argv, "--out", "o")[0] == 0
    assert cli(capsys, *argv, "--lr", "1e6", "--out", "o")[0] == 0
    exploded = [r for r in iter_runs(workspace / "o") if r.config["lr"] == 1e6]
    assert len(exploded) == 3 and all(r.diverged for r in exploded)
    reasons = [r.metadata["divergence"] for r in exploded]
    assert all("cross-entropy" in why or "non-finite" in why for why in reasons)
    code, _, err = cli(capsys, "report", "o")
    assert code == 0, err
    text = (workspace / "o" / "report" / "report.md").read_text()
    assert "3 of 6 runs diverged and are left out of every mean" in text
    assert all(r.name in text for r in exploded)
    with open(workspace / "o" / "report" / "groups.csv") as f:
        groups = [(row["seeds"], row["diverged"]) for row in csv.DictReader(f)]
    assert sorted(groups) == [("0", "3"), ("3", "0")]  # both groups are listed


def test_a_run_that_collapses_to_chance_is_marked_diverged(workspace, capsys):
    argv = ["run", *TINY, "--batches-per-task", "40", "--experiments", "baseline", "--seeds",
            "1", "--sam-rho", "1e9", "--out", "o"]  # fmt: skip
    assert cli(capsys, *argv)[0] == 0
    (run,) = iter_runs(workspace / "o")
    assert run.diverged and run.metadata["divergence"].startswith("collapsed: the cross-entropy")
    code, _, err = cli(capsys, "metrics", "o")
    assert code == 0 and f"run {run.name} diverged (collapsed" in err


@pytest.mark.parametrize(
    "options, warning",
    [
        (["--rotations", "0"], "a stream of one task has no switch, so no stability gap"),
        (["--switch-lr", "warmup"], "switch_lr_batches 50 outlasts a task of 6 batches, so it"),
        (["--replay", "memory", "--memory-size", "5", "--replay-batch-size", "10"],
         "a replay batch of 10 is more than the memory's 5 examples, and a draw takes each "
         "example at most once: at most 5 are replayed a step"),
    ],
)  # fmt: skip
def test_a_setting_that_may_mean_nothing_is_run_with_a_warning(workspace, capsys, options, warning):
    argv = ["run", *TINY, *options, "--experiments", "baseline", "--seeds", "1"]
    code, _, err = cli(capsys, *argv, "--out", "o")
    assert code == 0 and warning in err and err.count(warning) == 1


def test_threads_are_recorded(workspace, capsys):
    assert (
        cli(
            capsys,
            "run",
            *TINY,
            "--experiments",
            "baseline",
            "--seeds",
            "1",
            "--threads",
            "1",
            "--out",
            "o",
        )[0]
        == 0
    )
    (record,) = iter_runs(workspace / "o")
    assert record.metadata["threads"] == 1


# --- the report: never destroys, shows every group ------------------------------------------------
@pytest.fixture
def lambda_grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    spec = root / "grid.toml"
    spec.write_text(
        f"""preset = "quick"
experiments = ["baseline"]
seeds = [1, 2, 3]
batches_per_task = 8
hidden = [16]
eval_subset = 50
data_dir = "{mnist_dir()}"
[grid]
decay_lambda = [0, 1e-4, 5e-4]
"""
    )
    assert main(["sweep", str(spec), "--out", str(root / "runs"), "--quiet"]) == 0
    return root / "runs"


def test_report_onto_the_runs_a_folder_or_a_file_leaves_every_byte(lambda_grid, tmp_path, capsys):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "idea.md").write_text("keep me")
    a_file = tmp_path / "paper.tex"
    a_file.write_text("\\documentclass{article}")
    before = {p: tree(p) for p in (lambda_grid, notes)}
    file_before = a_file.read_bytes()
    for out, message in (
        (lambda_grid, "would hold the runs it reports on"),
        (lambda_grid / sorted(os.listdir(lambda_grid))[0], "holds no stabgap report"),
        (notes, "is not empty and holds no stabgap report"),
        (a_file, "is a file, not a folder"),
    ):
        code, _, err = cli(capsys, "report", lambda_grid, "--out", out)
        assert_refused(code, err, message)
    assert {p: tree(p) for p in (lambda_grid, notes)} == before
    assert a_file.read_bytes() == file_before


def test_a_report_replaces_only_its_own_earlier_report(lambda_grid, tmp_path, capsys):
    out = tmp_path / "rep"
    assert cli(capsys, "report", lambda_grid, "--out", out)[0] == 0
    first = tree(out)
    assert cli(capsys, "report", lambda_grid, "--out", out)[0] == 0  # its own: replaced
    assert tree(out).keys() == first.keys()
    (out / "my-notes.txt").write_text("mine")
    code, _, err = cli(capsys, "report", lambda_grid, "--out", out)
    assert_refused(code, err, "holds a file the earlier report did not write ('my-notes.txt')")
    assert (out / "my-notes.txt").read_text() == "mine"
    assert oct((out / "metrics.csv").stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    assert oct((lambda_grid / "table.csv").stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_three_value_lambda_grid_shows_three_groups_everywhere(lambda_grid, tmp_path, capsys):
    out = tmp_path / "rep"
    assert cli(capsys, "report", lambda_grid, "--out", out)[0] == 0
    t1 = (out / "table1.md").read_text()
    labels = ["λ=0", "λ=0.0001", "λ=0.0005"]
    rows = [line.split("|")[1].strip() for line in t1.strip().splitlines()[2:]]
    assert rows == labels
    groups = (out / "groups.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in groups[1:]] == labels
    comparisons = (out / "comparisons.csv").read_text().splitlines()[1:]
    assert {line.split(",")[0] for line in comparisons} == {"λ=0.0001", "λ=0.0005"}
    text = (out / "report.md").read_text()
    assert "**λ=0.0001** against λ=0" in text and "**λ=0.0005** against λ=0" in text
    assert "λ=0 (λ=0)" not in text and "baseline_decay_lambda" not in t1


def test_user_named_groups_get_their_comparisons(lambda_grid, tmp_path, capsys):
    out = tmp_path / "rep"
    code, _, err = cli(
        capsys, "report", lambda_grid, "--out", out, "--baseline", "λ=0.0005", "--compare", "λ=0"
    )
    assert code == 0, err
    text = (out / "report.md").read_text()
    assert "Baseline group: **λ=0.0005** (as --baseline names it); compared with it: λ=0." in text
    assert "**λ=0** against λ=0.0005" in text and "**λ=0.0001** against" not in text
    code, _, err = cli(capsys, "report", lambda_grid, "--out", out, "--baseline", "λ=1")
    assert_refused(code, err, "--baseline: no group 'λ=1' in these runs; the groups are:")
    code, _, err = cli(capsys, "report", lambda_grid, "--out", out, "--baseline", "Λ=0")
    assert_refused(code, err, "no group 'Λ=0' in these runs (did you mean 'λ=0'?); the groups")


def test_with_two_seeds_no_test_is_claimed(workspace, capsys):
    assert cli(capsys, "run", *TINY, "--seeds", "1,2", "--out", "o")[0] == 0
    assert cli(capsys, "report", "o")[0] == 0
    text = (workspace / "o" / "report" / "report.md").read_text()
    assert "no test is possible with fewer than 3 seeds per group" in text
    body = text.split("## Table 1")[1]  # the verdicts, after the intro that explains them
    assert "significant" not in body and "not shown" not in body


@pytest.mark.slow
def test_reference_and_our_runs_are_never_averaged_together(workspace, capsys):
    assert (
        cli(
            capsys,
            "import-reference",
            reference_dir() / "reference-results-seed2958.json",
            "--out",
            "mix",
        )[0]
        == 0
    )
    argv = [
        "run",
        "--preset",
        "paper",
        "--experiments",
        "baseline",
        "--seed",
        "2958",
        "--out",
        "mix",
    ]
    assert (
        cli(
            capsys,
            *argv,
            "--batches-per-task",
            "4",
            "--hidden",
            "16",
            "--eval-subset",
            "100",
            "--quiet",
        )[0]
        == 0
    )
    assert cli(capsys, "report", "mix")[0] == 0
    with open(workspace / "mix" / "report" / "groups.csv") as f:
        lines = [row["group"] for row in csv.DictReader(f)]
    # the reference's baseline apart from ours, each saying what it ran
    assert "baseline, batches_per_task=500, eval_subset=2000, hidden=2048,2048 [reference]" in lines
    assert "baseline, batches_per_task=4, eval_subset=100, hidden=16" in lines
    assert len(lines) == 15 and len(set(lines)) == 15


def test_import_reference_takes_a_folder_and_says_what_it_skipped(workspace, capsys):
    folder = workspace / "results"
    folder.mkdir()
    (folder / "results_2958.json").write_text(
        (reference_dir() / "reference-results-seed2958.json").read_text()
    )
    (folder / "settings.json").write_text('{"note": "not a results file"}')
    code, out, err = cli(capsys, "import-reference", folder, "--out", "ref")
    assert code == 0
    assert "14 reference run(s) imported" in out and "1 file(s) skipped" in out
    assert f"skipped {folder / 'settings.json'}:" in err


def test_import_reference_again_keeps_the_runs_and_refuses_a_changed_file(workspace, capsys):
    results = workspace / "results_2958.json"
    results.write_text((reference_dir() / "reference-results-seed2958.json").read_text())
    assert cli(capsys, "import-reference", results, "--out", "ref")[0] == 0
    code, out, _ = cli(capsys, "import-reference", results, "--out", "ref")
    assert code == 0 and "0 reference run(s) imported" in out and "14 already there" in out
    before = {p: p.read_bytes() for p in (workspace / "ref").rglob("*") if p.is_file()}
    data = json.loads(results.read_text())
    data["1"]["performances"][0][5] = 12.5  # the baseline's curve, changed since
    results.write_text(json.dumps(data))
    code, _, err = cli(capsys, "import-reference", results, "--out", "ref")
    assert code == 2 and err.count("\n") == 1
    assert "holds another version of run 'baseline-seed2958-reference' (curves not as in" in err
    after = {p: p.read_bytes() for p in (workspace / "ref").rglob("*") if p.is_file()}
    assert after == before  # nothing written, the old runs as they were


# --- run identity -----------------------------------------------------------------------------
def test_a_stamp_holds_only_what_differs_from_the_defaults():
    from stabgap.core.config import RunConfig

    # By hand: the defaults are left out, so a field added later with its default keeps
    # every stamp; where the run computes (device, data) is not part of it.
    text = json.dumps({"schema": 4, "seed": 1}, sort_keys=True, separators=(",", ":"))
    assert stamp(RunConfig(seed=1)) == hashlib.sha256(text.encode()).hexdigest()[:10]
    assert stamp(RunConfig(seed=1, device="cpu", data_dir="/x")) == stamp(RunConfig(seed=1))


def test_every_config_in_a_sweep_is_checked_against_its_data_first(workspace, capsys, no_training):
    (workspace / "g.toml").write_text("seeds = [1]\n[grid]\neval_subset = [50, 20000]\n")
    code, _, err = cli(capsys, "sweep", "g.toml")
    assert_refused(code, err, "eval_subset=20000 is larger than task 1's test set")
    assert not (workspace / "runs").exists()


def test_runs_in_a_users_folder_named_report_are_found(workspace, capsys):
    assert cli(capsys, "run", *TINY, "--seeds", "1", "--out", "report/o")[0] == 0
    assert len(list(iter_runs(workspace / "report"))) == 2
    assert cli(capsys, "report", "report/o")[0] == 0  # writes report/o/report
    runs = list(iter_runs(workspace / "report"))  # our report folder holds no runs
    assert len(runs) == 2 and all(read_run(r.path).name == r.name for r in runs)


# --- found by trying it as a new user ---------------------------------------------------------
def test_profile_never_writes_over_a_users_files(workspace, capsys):
    mine = workspace / "mine" / "profile-cpu"
    mine.mkdir(parents=True)
    (mine / "profile.json").write_text('{"my": "precious"}')
    argv = ["profile", "--device", "cpu", "--batches", "1", "--repeats", "1", "--hidden", "8"]
    before = tree(workspace)
    for out in ("mine", "."):  # a user's profile folder, a folder of notes
        code, _, err = cli(capsys, *argv, "--batch-size", "8", "--out", out)
        assert_refused(code, err, "which stabgap did not write")
    assert tree(workspace) == before
    assert cli(capsys, *argv, "--batch-size", "8", "--out", "prof")[0] == 0
    assert cli(capsys, *argv, "--batch-size", "8", "--out", "prof")[0] == 0  # its own: replaced


def test_runs_that_differ_in_an_unnamed_field_are_separate_groups(workspace, capsys):
    argv = ["run", *TINY, "--experiments", "baseline", "--seeds", "1,2,3", "--out", "o"]
    assert cli(capsys, *argv)[0] == 0
    assert cli(capsys, *argv, "--eval-every", "2")[0] == 0
    code, _, err = cli(capsys, "report", "o")
    assert code == 0, err
    groups = (workspace / "o" / "report" / "groups.csv").read_text().splitlines()[1:]
    assert sorted(line.split(",")[0] for line in groups) == ["eval_every=1", "eval_every=2"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--seeds", "99999999999999999999"], "seed must be a whole number from 0 to 4294967295"),
        (["--seeds", "-3"], "seed must be a whole number from 0 to 4294967295"),
        (["--seeds", "1,,2"], "--seeds takes comma-separated integers, got '1,,2'"),
        (["--hidden", "32,,32"], "--hidden has an empty item"),
        (["--out", ""], "--out is empty: give a value"),
        (["--experiments", ""], "--experiments is empty"),
        (["--ray-address", "auto"], "--ray-address needs --executor ray"),
        (["--executor", "ray", "--workers", "2"], "--workers sizes this machine's worker "
         "processes, which a Ray sweep does not use"),
        (["--executor", "ray", "--tensorboard"], "--tensorboard is written by this machine's "
         "workers, and Ray's nodes may share no disk"),
        (["--batch-size", "100000"], "batch size 100000 in task 1 is larger than task 1's"),
        (["--data-dir", "notes.txt"], "notes.txt (given data dir) is a file"),
        (["--experiments", "baseline,nd", "--set", "decay_lambda=0"], "are the same runs"),
    ],
)  # fmt: skip
def test_more_bad_input_found_by_a_new_user(workspace, capsys, no_training, argv, message):
    before = tree(workspace)
    code, _, err = cli(capsys, "run", *TINY, *argv)
    assert_refused(code, err, message)
    assert tree(workspace) == before and not no_training


@pytest.mark.parametrize(
    "text,message",
    [
        ('seed = "7"', "config field 'seed' must be an integer, got '7'"),
        ("[grid]\ndecay_lambda = [0, 0.0]", "[grid] values of 'decay_lambda' repeat"),
        (
            "decay_lambda = 1e-4\n[grid]\ndecay_lambda = [0, 1e-3]",
            "given a fixed value and a [grid]",
        ),
        ('baseline = "lambda zero"', "s.toml: baseline: no group 'lambda zero'"),
        ('compare = ["nd", "nd"]', "s.toml: compare: 'nd' is named twice"),
        ('compare = ["baseline"]', "s.toml: compare: 'baseline' is the baseline group itself"),
    ],
)
def test_more_bad_study_files(workspace, capsys, no_training, text, message):
    (workspace / "s.toml").write_text(text + "\n")
    before = tree(workspace)
    code, _, err = cli(capsys, "sweep", "s.toml")
    assert_refused(code, err, message)
    assert tree(workspace) == before and not no_training


def test_a_grid_may_lower_a_window_that_the_shorter_tasks_make_too_long(workspace, capsys):
    """quick-vit evaluates every batch for 20 after a switch; with tasks of 10 batches that
    is no valid run, but every point of a grid that lowers the window is one."""
    (workspace / "w.toml").write_text(
        "preset = 'quick-vit'\nexperiments = ['baseline']\nseeds = [1]\n"
        "batches_per_task = 10\n[grid]\neval_switch_window = [2, 5]\n"
    )
    from stabgap.studies.plan import load_toml, study_spec

    specs = study_spec(load_toml(workspace / "w.toml"), "w.toml").plan()
    assert [s.config.eval_switch_window for s in specs] == [2, 5]
    assert [s.experiment for s in specs] == [
        f"baseline_batches_per_task=10_eval_switch_window={w}" for w in (2, 5)
    ]
    # without the grid the same file is refused, naming what to lower, in either table
    (workspace / "w.toml").write_text("preset = 'quick-vit'\nbatches_per_task = 10\n")
    code, _, err = cli(capsys, "sweep", "w.toml")
    assert_refused(code, err, "eval_switch_window (20) must be <= batches_per_task (10): lower")
    assert "(eval_switch_window=10 or less)" in err and "--set" not in err


def test_a_command_line_value_beats_the_files_grid(workspace, capsys):
    (workspace / "s.toml").write_text(
        "experiments = ['baseline']\nseeds = [1]\n[grid]\ndecay_lambda = [0, 1e-3]\n"
    )
    code, _, err = cli(
        capsys, "run", *TINY, "--config", "s.toml", "--decay-lambda", "5e-4", "--out", "o"
    )
    assert code == 0
    assert [r.config["decay_lambda"] for r in iter_runs(workspace / "o")] == [5e-4]
    # said, not silent: the sweep the file asked for became one value
    assert "decay_lambda = 0.0005 from the command line replaces s.toml's [grid] " in err


def test_compare_takes_labels_with_commas_and_lists_labels_when_wrong(
    lambda_grid, tmp_path, capsys
):
    from stabgap.analysis.groups import build_groups

    labels = [g.label for g in build_groups(list(iter_runs(lambda_grid)))]
    code, _, err = cli(capsys, "report", lambda_grid, "--out", tmp_path / "r", "--compare", "λ=2")
    assert_refused(code, err, "--compare: no group 'λ=2' in these runs; the groups are: 'λ=0'")
    assert all(f"'{label}'" in err for label in labels)
    code, _, err = cli(
        capsys, "report", lambda_grid, "--out", tmp_path / "r", "--compare", "λ=0.0001,λ=0.0001"
    )
    assert_refused(code, err, "--compare: 'λ=0.0001' is named twice")


def test_an_edited_report_file_is_not_replaced(lambda_grid, tmp_path, capsys):
    out = tmp_path / "rep"
    assert cli(capsys, "report", lambda_grid, "--out", out)[0] == 0
    with (out / "report.md").open("a") as f:
        f.write("\nMy own conclusions.\n")
    code, _, err = cli(capsys, "report", lambda_grid, "--out", out)
    assert_refused(code, err, "holds 'report.md' changed since stabgap wrote it")
    assert (out / "report.md").read_text().endswith("My own conclusions.\n")


def test_resuming_does_not_grow_the_study_file(workspace, capsys):
    argv = ["run", *TINY, "--experiments", "baseline", "--seeds", "1", "--out", "o"]
    for _ in range(3):
        assert cli(capsys, *argv)[0] == 0
    assert len(json.loads((workspace / "o" / "study.json").read_text())["studies"]) == 1


def test_a_failed_download_leaves_no_empty_folder(workspace, capsys, monkeypatch):
    from stabgap.core.data import mnist as data

    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))
    code, _, err = cli(capsys, "data", "download", "--data-dir", "new/mnist")
    assert code == 2 and "could not download" in err
    assert not (workspace / "new").exists()
    code, _, err = cli(capsys, "data", "verify", "--data-dir", "nowhere")
    assert_refused(code, err, "MNIST folder nowhere does not exist")


def test_the_python_api_reads_experiments_as_the_command_line_does(workspace):
    from stabgap.study import run_study

    records = run_study(
        "quick",
        "baseline,nd",
        seeds=[1],
        overrides={"batches_per_task": 6, "hidden": [16], "eval_subset": 50},
    )
    assert sorted(r.base for r in records) == ["baseline", "nd"]


def test_metrics_flags_a_diverged_run(workspace, capsys):
    argv = ["run", *TINY, "--experiments", "baseline", "--seeds", "1", "--optimizer", "sgd"]
    assert cli(capsys, *argv, "--lr", "1e6", "--out", "o")[0] == 0
    code, _, err = cli(capsys, "metrics", "o")
    assert code == 0 and "diverged (" in err


@pytest.mark.parametrize("damage", ["curves.npz", "run.json", "metrics.json"])
def test_a_damaged_run_is_named_left_out_set_aside_and_run_again(workspace, capsys, damage):
    argv = ["run", *TINY, "--experiments", "baseline", "--seeds", "1,2,3", "--out", "o"]
    assert cli(capsys, *argv)[0] == 0
    runs = sorted(p for p in (workspace / "o").iterdir() if (p / "run.json").is_file())
    cut = (runs[1] / damage).read_bytes()[:40]
    (runs[1] / damage).write_bytes(cut)  # a copy cut short
    shown = Path("o") / runs[1].name

    code, _, err = cli(capsys, "report", "o")
    assert code == 0, err
    assert f"left out {shown}: damaged (its {damage} cannot be read" in err
    assert "allow_pickle" not in err
    text = (workspace / "o" / "report" / "report.md").read_text()
    assert f"1 run folder(s) are damaged and left out: {runs[1].name} (its {damage}" in text
    code, out, err = cli(capsys, "metrics", "o")
    assert code == 0 and f"left out {shown}: damaged" in err and runs[0].name in out

    code, _, err = cli(capsys, *argv)  # resume: set aside, never deleted, and run again
    assert code == 0, err
    assert f"run {runs[1].name} is damaged (its {damage} cannot be read" in err
    assert (workspace / "o" / ".damaged" / runs[1].name / damage).read_bytes() == cut
    assert cli(capsys, *argv)[0] == 0  # and the folder is still one to resume
    assert len(list(iter_runs(workspace / "o"))) == 3  # whole again


# --- experiment names: they start the runs' folder and log file names ----------------------
BAD_NAMES = [
    ("my exp/1", "[experiments.\"my exp/1\"]: its name holds '/', which a folder name cannot"),
    ("", '[experiments.""]: its name is empty: give it a name'),
    (".", "its name starts with '.', which would hide its runs' folders"),
    ("..", "[experiments.\"..\"]: its name starts with '.'"),
    (".mine", "start it with a letter or digit"),
    (" mine", "its name starts or ends with a space: remove the space"),
    ("a\\b", "its name holds '\\', which a folder name cannot hold on Linux, macOS or Windows"),
    ("a,b", "its name holds ',', which separates the names --experiments takes"),
    ("a:b", "its name holds ':'"),
    ('a*b?<c>|"d"', "its name holds '*' and '?' and '\"' and '<' and '>' and '|', which"),
    ("tab\tname", "its name holds a control character: rename it with printable characters"),
]


@pytest.mark.parametrize("name,message", BAD_NAMES)
def test_an_experiment_name_no_file_system_takes_is_refused_first(
    workspace, capsys, no_training, name, message
):
    """A user's '/' in a name trained the other runs, then failed with a traceback on its
    log file; an empty name made a run labelled '_batches_per_task=5'."""
    key = json.dumps(name)  # a TOML key in quotes, escapes as JSON writes them
    (workspace / "n.toml").write_text(
        f'preset = "methods"\nn_seeds = 1\n[experiments.finetune]\n[experiments.{key}]\n'
        'from = "er-ace-200"\n'
    )
    for command in (["run", *TINY, "--config", "n.toml"], ["sweep", "n.toml"]):
        before = tree(workspace)
        code, _, err = cli(capsys, *command, "--out", "o")
        assert_refused(code, err, message)
        assert err.startswith("stabgap: error: n.toml: [experiments.")
        assert tree(workspace) == before and not no_training
        assert not (workspace / "o").exists()


def test_an_experiment_name_is_checked_from_python_too(workspace, no_training):
    """run_study takes the preset's names only; a spec built in Python (or read back from a
    study folder) is checked as it is planned, before its folder is touched."""
    from stabgap.errors import StabgapError
    from stabgap.studies.plan import StudySpec, plan_runs
    from stabgap.studies.presets import get_preset
    from stabgap.study import run_spec, run_study

    with pytest.raises(StabgapError, match="preset 'methods' has no experiment 'a/b'"):
        run_study("methods", ["a/b"], seeds=[1], out="o")
    spec = StudySpec("methods", ("my exp/1",), (1,), {}, {}, defined={"my exp/1": {}})
    with pytest.raises(StabgapError, match="experiment 'my exp/1': its name holds '/'"):
        run_spec(spec, workspace / "o")
    with pytest.raises(StabgapError, match="experiment '': its name is empty"):
        plan_runs(get_preset("quick"), [""], [1])
    assert not (workspace / "o").exists() and not no_training


def test_a_label_is_one_experiments_and_fits_a_folder_name(workspace, capsys, no_training):
    def refused(text: str, message: str) -> None:
        (workspace / "s.toml").write_text(text)
        before = tree(workspace)
        code, _, err = cli(capsys, "sweep", "s.toml")
        assert_refused(code, err, message)
        assert tree(workspace) == before and not no_training

    # the grid makes er-200's runs at memory_size 100 what the file's own name says; the
    # two would have been pooled in one group of the report
    refused(
        'preset = "methods"\n[experiments.er-200]\n[experiments."er-200_memory_size=100"]\n'
        'from = "er-ace-200"\nmemory_size = 100\n[grid]\nmemory_size = [100, 200]\n',
        "experiments 'er-200' and 'er-200_memory_size=100' both make runs labelled "
        "'er-200_memory_size=100' (a label is the experiment's name, then the values its grid "
        "and overrides set): rename one of them",
    )
    refused(
        f"[experiments.{'x' * 230}]\n",
        "bytes long, more than the 240 a file system takes: give it a shorter name",
    )
    # where a run computes names nothing, from the grid either (a data folder's '/' once
    # went into the runs' names); two values of it would be the same runs twice
    refused(
        "experiments = ['baseline']\n[grid]\ndevice = ['cpu', 'auto']\n",
        "s.toml: [grid] device: where or how a run computes is no part of what it computes, "
        "so its 2 values would make the same runs: give device one value",
    )
    from stabgap.studies.plan import study_spec

    values = {"experiments": ["baseline"], "seeds": [1], "grid": {"data_dir": [str(mnist_dir())]}}
    [spec] = study_spec(values).plan()
    assert spec.experiment == "baseline" and "data_dir" not in spec.varied


def test_a_name_with_spaces_runs_resumes_and_is_reported(workspace, capsys):
    (workspace / "s.toml").write_text(
        'preset = "quick"\nseeds = [1, 2]\nbatches_per_task = 6\nhidden = [16]\n'
        'eval_subset = 50\n[experiments.baseline]\n[experiments."my exp 1"]\nfrom = "nd"\n'
        "[experiments.my_exp_1]\nlr = 1e-4\n"  # another group, whose files spell alike
    )
    code, _, err = cli(capsys, "sweep", "s.toml", "--out", "o", "--quiet")
    assert code == 0, err
    label = "my exp 1_batches_per_task=6_eval_subset=50_hidden=16"
    folders = sorted(p.name for p in (workspace / "o").glob("my exp 1*"))
    assert [f.rsplit("-", 2)[0] for f in folders] == [label] * 2
    assert sorted(p.stem for p in (workspace / "o" / "logs").glob("my exp 1*")) == folders
    assert sorted(r.experiment for r in iter_runs(workspace / "o")).count(label) == 2
    before = tree(workspace / "o")
    code, _, err = cli(capsys, "sweep", "s.toml", "--out", "o", "--quiet")
    assert code == 0 and tree(workspace / "o") == before  # found again: nothing re-run
    code, _, err = cli(capsys, "report", "o", "--out", "r")
    assert code == 0, err
    assert "'my exp 1'" in (workspace / "r" / "report.md").read_text()
    # each group its own figure, although both labels spell one file name
    text = (workspace / "r" / "report.md").read_text()
    for name in ("all-tasks-my_exp_1.png", "all-tasks-my_exp_1-2.png"):
        assert (workspace / "r" / "figures" / name).is_file() and f"figures/{name}" in text


def test_experiments_on_the_command_line_pick_among_a_files_own(workspace, capsys):
    """A file that defines experiments of its own keeps them defined when --experiments
    picks which to run (it had replaced the file's tables, so 'mine' was unknown)."""
    (workspace / "s.toml").write_text(
        'preset = "quick"\nseeds = [1]\nbatches_per_task = 4\nhidden = [16]\neval_subset = 50\n'
        "[experiments.baseline]\n[experiments.mine]\nlr = 1e-4\n"
    )
    code, _, err = cli(capsys, "run", "--config", "s.toml", "--experiments", "mine,nd",
                       "--out", "o", "--quiet", "--no-plot")  # fmt: skip
    assert code == 0, err
    assert sorted(r.base for r in iter_runs(workspace / "o")) == ["mine", "nd"]
    assert next(r for r in iter_runs(workspace / "o") if r.base == "mine").config["lr"] == 1e-4
    code, _, err = cli(capsys, "run", "--config", "s.toml", "--experiments", "mnie", "--out", "x")
    assert code == 2 and "has no experiment 'mnie'" in err and "mine" in err
    assert not (workspace / "x").exists()


def test_the_write_check_leaves_the_folder_as_it_found_it(tmp_path):
    # its probe comes and goes; the folder's modification time is put back, so a refused
    # command leaves no trace even in the folder's times
    from stabgap.studies.outputs import check_writable

    folder = tmp_path / "runs"
    folder.mkdir()
    os.utime(folder, ns=(1_000_000_000, 1_000_000_000))
    check_writable(folder)
    check_writable(folder / "new" / "deeper")  # through its nearest existing ancestor
    assert folder.stat().st_mtime_ns == 1_000_000_000 and list(folder.iterdir()) == []


def test_when_every_run_failed_none_is_said_to_be_kept(workspace, capsys, monkeypatch):
    def broken(stack, *args, **kwargs):
        raise RuntimeError("a worker fell over")

    monkeypatch.setattr(sweep, "run_stack", broken)
    code, _, err = cli(capsys, "run", *TINY, "--experiments", "baseline", "--seeds", "1,2",
                       "--out", "o")  # fmt: skip
    assert code == 1 and "2 of 2 runs failed; first failure" in err and "the others" not in err


def test_a_network_larger_than_the_machine_is_refused_before_any_work(workspace, capsys):
    code, _, err = cli(capsys, "run", *TINY, "--experiments", "baseline", "--set",
                       "hidden=1000000,1000000", "--out", "o")  # fmt: skip
    assert code == 2 and "the network MLP 784-1000000-1000000-10 needs 7,457 GiB" in err
    assert "for its weights and gradients alone, more than this machine's" in err
    assert "choose a smaller network" in err and "Traceback" not in err
    assert not (workspace / "o").exists()
    code, _, err = cli(capsys, "profile", "--hidden", "1000000,1000000", "--out", "p")
    assert code == 2 and "the baseline run: the network MLP 784-1000000-1000000-10" in err
    assert not (workspace / "p").exists()


def test_a_run_out_of_memory_is_said_in_a_line_without_a_traceback(workspace, capsys, monkeypatch):
    def exhausted(stack, *args, **kwargs):  # the CPU allocator's own message
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
            "memory: you tried to allocate 313600000000 bytes. Error code 12"
        )

    monkeypatch.setattr(sweep, "run_stack", exhausted)
    code, _, err = cli(capsys, "run", *TINY, "--experiments", "baseline", "--out", "o")
    assert code == 1 and "Traceback" not in err and "alloc_cpu" not in err
    assert "3 of 3 runs failed; first failure, baseline_" in err
    assert ": out of memory (an allocation of 292 GiB): a smaller network, batch or " in err
    assert "fix it and run the same command again" in err
