"""Smoke runs of the real CLI on a tiny budget, and its answers to bad input."""

import json

import numpy as np
import pytest
from conftest import mnist_dir, reference_dir

from stabgap.cli import main
from stabgap.core.data import mnist as data
from stabgap.studies.records import iter_runs, read_run

TINY = [
    "--preset",
    "quick",
    "--batches-per-task",
    "15",
    "--hidden",
    "32,32",
    "--eval-subset",
    "100",
    "--quiet",
    "--no-plot",
]


def run_cli(capsys, *argv):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own one-line errors
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_one_complete_directory_per_run(tmp_path, capsys):
    out = tmp_path / "study"
    code, stdout, _ = run_cli(
        capsys,
        "run",
        *TINY,
        "--seeds",
        "1,2",
        "--experiments",
        "baseline,nd",
        "--data-dir",
        mnist_dir(),
        "--out",
        out,
    )
    assert code == 0
    records = list(iter_runs(out))
    # every science field set unlike the quick experiments is in the labels
    changed = "_batches_per_task=15_eval_subset=100_hidden=32,32"
    labels = sorted(r.experiment for r in records)
    assert labels == [f"baseline{changed}"] * 2 + [f"nd{changed}"] * 2
    nd = next(r for r in records if r.base == "nd")
    assert nd.config["decay_lambda"] > 0 and nd.config["hidden"] == [32, 32]
    assert nd.acc.shape == (45, 3) and nd.metadata["seed"] in (1, 2)
    assert {"torch_version", "device", "wall_time_s", "train_time_s", "eval_time_s"} <= set(
        nd.metadata
    )
    files = {p.name for p in nd.path.iterdir()}
    assert files == {"run.json", "curves.npz", "metrics.json"}
    assert "baseline" in stdout and "GD_1,3" in stdout and "4 run(s) in" in stdout


def test_run_saves_a_curve_plot_and_reads_a_toml_config(tmp_path, capsys):
    config = tmp_path / "study.toml"
    config.write_text(
        'experiments = ["baseline"]\nseeds = [3]\nrotations = [0, 90]\nhidden = [16]\n'
    )
    out = tmp_path / "runs"
    argv = [a for a in TINY if a not in ("--no-plot", "--hidden", "32,32")]
    code, _, _ = run_cli(
        capsys, "run", *argv, "--config", config, "--data-dir", mnist_dir(), "--out", out
    )
    assert code == 0
    (record,) = iter_runs(out)
    assert record.config["rotations"] == [0.0, 90.0] and record.config["hidden"] == [16]
    assert record.config["seed"] == 3
    assert (record.path / "curves.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--lr", "-0.1"], "lr must be a positive finite number, got -0.1"),
        (["--rotations", ""], "--rotations is empty: give a value"),
        (["--rotations", "0,,90"], "--rotations has an empty item in '0,,90'"),
        (["--set", "learning_rate=0.1"], "unknown config field 'learning_rate'"),
        (["--eval-subset", "20000"], "eval_subset=20000 is larger than task 1's test set"),
        (["--experiments", "bogus"], "no experiment 'bogus'"),
        (["--preset", "huge"], "unknown preset 'huge'"),
        (["--activity-every", "-1"], "activity_every must be 0 (never) or a whole number"),
        (["--replay", "partial"], "'replay' must be one of none, full, stratified"),
        (["--config", "/nonexistent.toml"], "config file /nonexistent.toml not found"),
        (
            ["--experiments", "baseline,nd,baseline"],
            "the command line: experiments: 'baseline' is named twice",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    code, _, err = run_cli(
        capsys, "run", *TINY, "--seeds", "1", "--data-dir", mnist_dir(), "--out", out, *argv
    )
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "argv, hint",
    [
        (["run", "--model", "ViT"], "got 'ViT' (did you mean 'vit'?)"),
        (["run", "--model", "resnet", "--resnet-norm", "Batch"], "(did you mean 'batch'?)"),
        (["run", "--stream", "Split"], "got 'Split' (did you mean 'split'?)"),
        (["run", "--dataset", "Fashion-MNIST"], "(did you mean 'fashion-mnist'?)"),
        (["run", "--preset", "quick-vitt"], "preset 'quick-vitt' (did you mean 'quick-vit'?)"),
        (["run", "--experiments", "baselin"], "no experiment 'baselin' (did you mean 'baseline'?)"),
        (["cost", "--preset", "quick", "--experiment", "nnd"], "'nnd' (did you mean 'nd'?)"),
        (["run", "--preset", "methods", "--experiments", "ER-200"], "(did you mean 'er-200'?)"),
        (["run", "--set", "LR=0.1"], "unknown config field 'LR': did you mean 'lr'?"),
        (["run", "--executor", "Ray"], "invalid choice: 'Ray' (did you mean 'ray'?)"),
        (["cost", "--model", "ViT"], "invalid choice: 'ViT' (did you mean 'vit'?)"),
        (["presest"], "invalid choice: 'presest' (did you mean 'presets'?)"),
        # a name cut short: the one choice it begins, not the nearest by spelling
        (["import-ref"], "invalid choice: 'import-ref' (did you mean 'import-reference'?)"),
        (["repro"], "invalid choice: 'repro' (did you mean 'reproduce'?)"),
    ],
)
def test_a_refused_name_offers_the_nearest_choice_whatever_its_case(capsys, argv, hint):
    """Every name refused among known choices gets the same did-you-mean, case ignored."""
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and hint in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "argv",
    [
        ["import"],  # begins two commands: which one is not for stabgap to guess
        ["run", "--experiments", "baseline-lr"],  # begins baseline-lr-1e-4 and -1e-2 alike
        ["run", "--preset", "transformer"],  # like no preset
        ["report", ".", "--format", "md"],  # no such option; --out is not it
    ],
)
def test_a_name_no_one_choice_was_meant_by_gets_no_suggestion(capsys, argv):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2 and "did you mean" not in err and err.count("\n") == 1, err


@pytest.mark.parametrize(
    "argv, memory_size",
    [
        (["--memory-size", "60", "--set", "memory_size=50"], 50),
        (["--set", "memory_size=50", "--memory-size", "60"], 60),
        (["--set", "memory_size=50", "--set", "memory_size=40"], 40),
        (["--memory-size=60", "--set", "lr=0.1", "--memory-size", "70"], 70),
    ],
)
def test_of_a_field_given_twice_the_last_on_the_command_line_wins(argv, memory_size):
    # as `run --help` says: once a field flag beat --set wherever each stood
    from stabgap.cli import _join_dashed_values, _parse, build_parser, study_values

    parser = build_parser()
    args = _parse(parser, _join_dashed_values(["run", *argv], parser))
    assert study_values(args)[0]["set"]["memory_size"] == memory_size


def test_a_field_flag_and_a_later_set_run_with_the_set_value(tmp_path, capsys):
    out = tmp_path / "o"
    code, _, err = run_cli(
        capsys, "run", *TINY, "--seeds", "1", "--experiments", "baseline",
        "--set", "batches_per_task=6", "--data-dir", mnist_dir(), "--out", out,
    )  # fmt: skip
    assert code == 0, err
    (record,) = iter_runs(out)
    assert record.config["batches_per_task"] == 6  # not TINY's 15, given before it


def test_stack_on_a_cpu_is_said_to_stack_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    shown = " ".join(capsys.readouterr().out.split())  # (as argparse wraps it)
    assert "one stack, on a GPU only: on a CPU runs train one after another" in shown
    code, _, err = run_cli(
        capsys, "run", *TINY, "--batches-per-task", "6", "--seeds", "1,2", "--device", "cpu",
        "--experiments", "baseline", "--stack", "2", "--data-dir", mnist_dir(),
        "--out", tmp_path / "o",
    )  # fmt: skip
    assert code == 0, err
    assert "note: --stack 2 stacks runs on a GPU only: on a CPU they train one after" in err
    assert len(list(iter_runs(tmp_path / "o"))) == 2


def test_a_folder_of_someone_elses_files_is_refused(tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    code, _, err = run_cli(
        capsys, "run", *TINY, "--seeds", "1", "--data-dir", mnist_dir(), "--out", out
    )
    assert code == 2 and "holds 'keep.txt', which stabgap did not write" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert (out / "keep.txt").read_text() == "precious"


def test_missing_data_says_where_it_looked_and_how_to_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))  # nothing listens there
    cache = tmp_path / "cache"  # the download goes to $STABGAP_DATA, which has nothing
    monkeypatch.setenv("STABGAP_DATA", str(cache))
    code, _, err = run_cli(capsys, "run", *TINY, "--seeds", "1", "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err and err.count("\n") == 1
    assert str(cache) in err and "127.0.0.1:9" in err
    assert not (tmp_path / "out").exists()


def test_a_mistyped_data_dir_is_refused_and_not_created(tmp_path, capsys):
    typo = tmp_path / "mnsit"
    code, _, err = run_cli(
        capsys, "run", *TINY, "--seeds", "1", "--data-dir", typo, "--out", tmp_path / "out"
    )
    assert code == 2 and f"MNIST folder {typo} (given data dir) does not exist" in err
    assert not typo.exists() and not (tmp_path / "out").exists()


def test_metrics_json_reproduces_the_reference_values(capsys):
    code, stdout, _ = run_cli(
        capsys, "metrics", reference_dir() / "reference-results-seed2958.json", "--json"
    )
    assert code == 0
    rows = json.loads(stdout)
    expected = json.loads((reference_dir() / "reference-metrics-seed2958.json").read_text())
    got = {(r["run"], r["metric"], r["task"], r["interval"]): r["value"] for r in rows}
    assert set(r["run"] for r in rows) == set(range(1, 15))
    for exp, m in expected.items():
        run = int(exp)
        for j, value in enumerate(m["acc_before_switch_task1"], start=1):
            assert got[(run, "acc_before_switch", 1, j)] == pytest.approx(value, abs=1e-6)
        for j in (2, 3):
            assert got[(run, "gap_depth", 1, j)] == pytest.approx(
                m["gap_depth_task1"][f"interval{j}"], abs=1e-6
            )
            ttr = m["time_to_recover_task1_pct"][f"interval{j}"]
            if ttr is None:
                assert got[(run, "time_to_recover", 1, j)] is None
            else:
                assert got[(run, "time_to_recover", 1, j)] == pytest.approx(ttr, abs=1e-6)
        assert got[(run, "avg_acc_final", None, None)] == pytest.approx(
            m["avg_acc_final"], abs=1e-6
        )
    assert {r["metric"] for r in rows} == {
        "acc_before_switch",
        "gap_depth",
        "gap_position",
        "time_to_recover",
        "recovered",
        "gap_depth_robust",
        "time_to_recover_robust",
        "drop_slope",
        "recovery_slope",
        "avg_acc_final",
        "aaa",
        "min_acc",
        "forgetting",
        "windowed_forgetting_w10",
        "windowed_forgetting_w100",
        "windowed_plasticity_w10",
        "windowed_plasticity_w100",
        "learning_curve_area",
        "wc_acc",
    }
    robust = [r for r in rows if r["metric"] == "gap_depth_robust"]
    assert {(r["task"], r["interval"]) for r in robust} == {(1, 2), (1, 3), (2, 3)}


def test_metrics_of_a_run_directory_match_its_curves(tmp_path, capsys):
    out = tmp_path / "one"
    assert (
        run_cli(
            capsys,
            "run",
            *TINY,
            "--seeds",
            "4",
            "--experiments",
            "baseline",
            "--data-dir",
            mnist_dir(),
            "--out",
            out,
        )[0]
        == 0
    )
    (record,) = iter_runs(out)
    code, stdout, _ = run_cli(capsys, "metrics", record.path, "--json")
    rows = json.loads(stdout)
    final = next(r for r in rows if r["metric"] == "avg_acc_final")
    assert final["run"] == record.name
    assert final["value"] == pytest.approx(float(np.mean(read_run(record.path).acc[-1])))
    saved = json.loads((record.path / "metrics.json").read_text())
    assert [r["value"] for r in saved] == [r["value"] for r in rows]


def test_metrics_of_a_missing_path(capsys, tmp_path):
    code, _, err = run_cli(capsys, "metrics", tmp_path / "nope")
    assert code == 2 and "does not exist" in err


def test_help_documents_every_config_field(capsys):
    from stabgap.core.config import FIELDS

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for name in FIELDS:
        assert f"--{name.replace('_', '-')}" in text


def test_data_verify(capsys):
    code, stdout, _ = run_cli(capsys, "data", "verify", "--data-dir", mnist_dir())
    assert code == 0 and stdout.count("ok ") == 4


def test_cost_prints_the_reference_count_and_the_overheads(capsys):
    code, stdout, _ = run_cli(capsys, "cost")
    assert code == 0
    assert "2,980,052,992 MACs, ND adds 2,097,152 = +0.0704 %" in stdout
    assert "ND overhead, whole training step" in stdout


def test_profile_writes_records_that_the_report_reads(tmp_path, capsys):
    from stabgap.cost.profile import cost_columns, read_profiles

    code, stdout, _ = run_cli(
        capsys,
        "profile",
        "--device",
        "cpu",
        "--batches",
        "2",
        "--repeats",
        "2",
        "--warmup",
        "1",
        "--hidden",
        "32,32",
        "--batch-size",
        "64",
        "--out",
        tmp_path,
    )
    assert code == 0 and "baseline" in stdout and "nd" in stdout
    results = read_profiles(tmp_path)
    assert {(r.model, r.phase) for r in results} == {
        (m, p) for m in ("baseline", "nd") for p in ("train", "eval", "both")
    }
    columns, q3 = cost_columns(tmp_path)
    assert set(columns) == {"baseline", "nd"} and "Q3" in q3


def test_each_default_that_run_help_shows_is_the_default_a_run_uses(capsys, monkeypatch):
    """The [default: ...] of every field flag, read from the help as a user reads it, is the
    value a plain `stabgap run` plans (the default preset's baseline)."""
    import re

    from stabgap.core.config import FIELDS, to_dict
    from stabgap.studies.plan import plan_runs, short
    from stabgap.studies.presets import DEFAULT_PRESET, get_preset

    monkeypatch.setenv("COLUMNS", "100000")  # one line per option
    code, out, _ = run_cli(capsys, "run", "--help")
    assert code == 0
    preset = get_preset(DEFAULT_PRESET)
    [spec] = plan_runs(preset, ["baseline"], [preset.seeds[0]])
    planned = to_dict(spec.config)
    checked = 0
    # a long flag has its help on the next line
    text = re.sub(r"(--[a-z0-9-]+ V)\n\s+", r"\1 ", out)
    for line in text.splitlines():
        found = re.match(r"\s+--([a-z0-9-]+) V\s.*\[([^\[\]]*)\]$", line)
        if not found or found[1] == "seed":
            continue
        name, shown = found[1].replace("-", "_"), found[2]
        assert name in FIELDS
        value = shown.removeprefix("default: ")
        if value == shown:  # the presets differ: "quick, ...: 256,256; paper: 2048,2048"
            value = next(
                part.split(": ")[1]
                for part in shown.split("; ")
                if DEFAULT_PRESET in part.split(": ")[0].split(", ")
            )
        expected = "unset" if planned[name] is None else short(planned[name])
        assert value == expected, (name, shown)
        checked += 1
    assert checked == len(FIELDS) - 1  # every field but the seed


def test_ctrl_c_while_the_cli_is_imported_is_one_line_and_status_130(tmp_path):
    """Ctrl-C during the second the imports take (torch's): not a traceback from inside them,
    nor an interrupt that numpy's import swallows. A stand-in for the slow import sends it."""
    import signal
    import subprocess
    import sys

    script = tmp_path / "start.py"
    script.write_text(
        "import os, signal, sys\n"
        "class CtrlC:  # Ctrl-C as the CLI's import begins, in an import that swallows it\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'stabgap.cli':\n"
        "            try:\n"
        "                os.kill(os.getpid(), signal.SIGINT)\n"
        "            except BaseException:\n"
        "                pass\n"
        "sys.meta_path.insert(0, CtrlC())\n"
        "sys.argv = ['stabgap', 'presets']\n"
        "from stabgap.entry import main\n"
        "sys.exit(main())\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        # Ctrl-C's default action in the child, whatever the test runner's own disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert done.returncode == 130
    assert done.stderr == "\nstabgap: interrupted; nothing half-written was left behind\n"
    assert done.stdout == ""


def test_the_command_starts_where_ctrl_c_is_handled_and_leaves_the_handler_as_it_was(
    capsys, monkeypatch
):
    import signal
    from pathlib import Path

    from stabgap import entry

    # not stabgap.cli:main, whose module's imports come before any try
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '\nstabgap = "stabgap.entry:main"' in pyproject
    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr("sys.argv", ["stabgap", "presets"])
    assert entry.main() == 0 and "quick-vit" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before
