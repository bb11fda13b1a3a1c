"""Curves stabgap did not train: the curves file, import-curves, the Tracker."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, reference_dir

import stabgap
from stabgap.cli import main
from stabgap.metrics import gap_depth
from stabgap.studies.imported import import_curves, rows_of
from stabgap.studies.records import iter_runs
from stabgap.studies.reference import import_reference


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_plain_pytorch_loop_becomes_a_report(tmp_path, capsys):
    curves = tmp_path / "curves.csv"
    done = subprocess.run(
        [sys.executable, ROOT / "docs" / "examples" / "plain_loop.py", curves],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    code, out, err = cli(capsys, "import-curves", curves, "--out", tmp_path / "runs")
    assert code == 0 and "6 run(s) written" in out, err
    assert cli(capsys, "import-curves", curves, "--out", tmp_path / "runs")[1].startswith("0 run")
    code, _, err = cli(capsys, "report", tmp_path / "runs")
    assert code == 0, err
    report = tmp_path / "runs" / "report"
    text = (report / "report.md").read_text()
    assert "## Table 1" in text and "**sgd lr=0.1** against sgd lr=0.01" in text
    assert (report / "figures" / "task1-accuracy.png").is_file()
    run = next(iter_runs(tmp_path / "runs"))
    assert run.config == {"lr": pytest.approx(run.config["lr"]), "seed": run.config["seed"]}
    with open(report / "cost.csv") as f:
        assert {row["training FLOPs (× baseline)"] for row in csv.DictReader(f)} == {"n/a"}


@pytest.mark.skipif(not reference_dir().is_dir(), reason="needs ../shared/reference")
def test_the_reference_files_and_the_same_curves_as_csv_give_the_same_metrics(tmp_path):
    records, _ = import_reference(reference_dir() / "reference-results-seed2958.json")
    imported = import_curves(write_csv(tmp_path / "same.csv", rows_of(records)))
    assert len(imported) == len(records)
    for ours, theirs in zip(imported, records, strict=True):
        assert ours.ends == theirs.ends and np.array_equal(ours.acc, theirs.acc, equal_nan=True)
        assert [(m.metric, m.task, m.interval) for m in ours.metrics] == [
            (m.metric, m.task, m.interval) for m in theirs.metrics
        ]
        for a, b in zip(ours.metrics, theirs.metrics, strict=True):
            assert a.value == pytest.approx(b.value, nan_ok=True, abs=1e-9), a


def _rows(**change):
    """Two tasks of two evaluations each: a valid run, then one cell changed."""
    rows = []
    for step, training in ((0, 1), (1, 1), (2, 2), (3, 2)):
        for task in range(1, training + 1):
            rows.append({"run": "a", "group": "g", "seed": 1, "step": step,
                         "training": training, "task": task, "accuracy_fraction": 0.5})  # fmt: skip
    for at, column, value in change.get("cells", [change["cell"]] if "cell" in change else []):
        rows[at - 1][column] = value
    return rows


def _renamed(column, name):
    """_rows() with `column` called `name`."""
    return [{(name if k == column else k): v for k, v in r.items()} for r in _rows()]


@pytest.mark.parametrize(
    "rows, message",
    [
        (_rows(cell=(2, "step", 5)), "row 3, column 'step': step 2 comes after step 5"),
        (_rows(cell=(3, "accuracy_fraction", 1.5)), "row 3, column 'accuracy_fraction': 1.5 is"),
        (_rows(cell=(4, "task", 1)), "row 4, column 'task': run 'a' has task 1 at step 2 twice"),
        (_rows(cell=(1, "training", 2)), "row 1, column 'training': a run's first step trains"),
        # shuffled: a later task's row first, which the order explains
        ([_rows()[3], *_rows()[:3], *_rows()[4:]],
         "row 2, column 'step': step 0 comes after step 2: sort each run's rows by step"),
        (_rows(cell=(2, "seed", 7)), "row 2, column 'group': run 'a' changes its group or seed"),
        (_rows(cell=(6, "task", 3)), "column 'task': run 'a' lacks task 2 at step 3"),
        (_rows(cell=(1, "step", "x")), "row 1, column 'step': 'x' is not a whole number"),
        (_rows(cell=(1, "seed", "1.5")), "row 1, column 'seed': '1.5' is not a whole number\n"),
        (_rows(cell=(2, "loss", "low")), "row 2, column 'loss': 'low' is not a number"),
        (_rows(cell=(3, "config.lr", float("inf"))), "row 3, column 'config.lr': inf is not"),
        (_rows(cells=[(1, "config.lr", 0.1), (5, "config.lr", 0.2)]),
         "row 5, column 'config.lr': run 'a' has lr 0.1 and 0.2: a run has one config"),
        (_rows(cell=(2, "los", 0.1)), "unknown column 'los' (did you mean 'loss'?): a curves"),
        (_rows(cell=(1, "confg.lr", 1)), "unknown column 'confg.lr' (did you mean 'config.lr'?)"),
        (_rows(cell=(4, "", 1)), "unknown column '': a curves file has the columns run, group,"),
        (_rows(cell=(3, "group", "")), "row 3, column 'group': empty (every row gives run,"),
        ([{"run": "a", "group": "g", "seed": 1, "step": 0, "training": 1, "task": 1,
           "accuracy": 50}], "unknown column 'accuracy': a curves file has the columns run, "
         "group, seed, step, training, task, accuracy_pct or accuracy_fraction,"),
        ([{"run": "a", "group": "g", "seed": 1, "step": 0, "training": 1, "task": 1}],
         "give the accuracy in exactly one of the columns accuracy_pct"),
        ([{"run": "a", "seed": 1}], "no column 'group'"),
        # a misspelt column is named before what it leaves missing
        (_renamed("step", "stpe"), "unknown column 'stpe' (did you mean 'step'?)"),
        (_renamed("accuracy_fraction", "accuracy_pc"),
         "unknown column 'accuracy_pc' (did you mean 'accuracy_pct'?): a curves file has the "
         "columns run, group, seed, step, training, task, accuracy_pct or accuracy_fraction"),
        (_renamed("accuracy_fraction", "Accuracy_fraction "),
         "unknown column 'Accuracy_fraction ' (did you mean 'accuracy_fraction'?)"),
        (_rows(cells=[(n, "group", "g ") for n in range(1, 7)]),
         "row 1, column 'group': 'g ' begins or ends with a space: remove it"),
        (_rows() + [{**r, "run": "b"} for r in _rows()],
         "row 7, column 'seed': runs 'a' and 'b' are both seed 1 of group 'g': a group holds "
         "each seed once"),
    ],
)  # fmt: skip
def test_a_malformed_file_is_refused_naming_the_row_and_column(tmp_path, capsys, rows, message):
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = cli(capsys, "import-curves", path, "--out", tmp_path / "runs")
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "runs").exists()


def test_uneven_points_are_measured_in_batches(tmp_path):
    """Evaluated every 10 batches, then every batch after the switch: the gap's position is
    in batches, as for an evenly evaluated run."""
    rows = []
    steps = [*range(0, 100, 10), *range(100, 120), *range(120, 200, 10)]
    for step in steps:
        training = 1 if step < 100 else 2
        for task in range(1, training + 1):
            dip = 100 <= step < 105 and task == 1
            rows.append({"run": "u", "group": "g", "seed": 1, "step": step, "training": training,
                         "task": task, "accuracy_pct": 70.0 if dip else 90.0})  # fmt: skip
    (run,) = import_curves(write_csv(tmp_path / "u.csv", rows))
    assert run.ends == (100, 191)  # the last task ends a batch after the last evaluation
    from stabgap.metrics import time_to_recover

    assert run.measure(gap_depth, 1, 2) == 20.0
    assert run.measure(time_to_recover, 1, 2) == pytest.approx(100 * 5 / 91)  # in batches


def test_the_tracker_writes_a_run_only_when_the_loop_ends(tmp_path):
    def loop(tracker, fail_at=None):
        for task in (1, 2):
            tracker.switch(task)
            for step in range((task - 1) * 5, task * 5):
                if step == fail_at:
                    raise KeyboardInterrupt
                tracker.evaluate(step, {k: 0.9 - 0.1 * (k < task) for k in range(1, task + 1)})

    with pytest.raises(KeyboardInterrupt), stabgap.Tracker(tmp_path, "g", 1, unit="fraction") as t:
        loop(t, fail_at=7)
    assert not list(tmp_path.iterdir())  # nothing that looks complete
    with stabgap.Tracker(tmp_path, "g", 1, unit="fraction", config={"lr": 0.1}) as t:
        loop(t)
    (run,) = iter_runs(tmp_path)
    assert run.name == "g-seed1" and run.config == {"lr": 0.1, "seed": 1}
    assert run.ends == (5, 10) and np.nanmax(run.acc) == pytest.approx(90.0)
    with pytest.raises(stabgap.errors.StabgapError, match="exists already"):
        stabgap.Tracker(tmp_path, "g", 1, unit="fraction")
    with pytest.raises(stabgap.errors.StabgapError, match="unit must be 'percent' or 'fraction'"):
        stabgap.Tracker(tmp_path, "g", 2, unit="%")
    # another seed of the group, evaluated at other steps: refused as import-curves refuses
    # it (a report could not average the two), and not written
    refused = pytest.raises(stabgap.errors.StabgapError, match="group 'g'")
    with refused, stabgap.Tracker(tmp_path, "g", 2, unit="fraction") as t:
        t.switch(1)
        t.evaluate(0, {1: 0.5})
        t.switch(2)
        t.evaluate(3, {1: 0.4, 2: 0.5})
    assert [r.name for r in iter_runs(tmp_path)] == ["g-seed1"]


# --- the framework adapters of docs/curves-format.md, against stand-ins --------------------
def _snippet(heading: str) -> str:
    section = (ROOT / "docs" / "curves-format.md").read_text().split(f"## {heading}\n", 1)[1]
    import re

    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    # the frameworks' imports replaced by the stand-ins the test gives
    return "\n".join(
        line for line in code.splitlines() if "avalanche" not in line and "lightning" not in line
    )


def _toy(seed: int):
    """A linear model and two tasks of separable points, the second the first's labels flipped."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(200, 2, generator=g)
    y = (x[:, 0] > 0).long()
    return torch.nn.Linear(2, 2), [(x, y), (x, 1 - y)]


def _train(model, data, steps, hook_before, opt):
    for step in steps:
        hook_before(step)
        x, y = data
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def test_the_avalanche_plugin_of_the_docs_records_a_run(tmp_path):
    from types import SimpleNamespace

    class SupervisedPlugin:  # Avalanche's base: hooks are called by name
        def __init__(self):
            pass

    namespace = {"SupervisedPlugin": SupervisedPlugin}
    exec(_snippet("From Avalanche"), namespace)
    model, tasks = _toy(1)
    stream = [SimpleNamespace(dataset=_Dataset(x, y)) for x, y in tasks]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with stabgap.Tracker(tmp_path, "naive", 1, unit="fraction") as tracker:
        plugin = namespace["StabilityGapPlugin"](tracker, stream, every=2)
        strategy = SimpleNamespace(model=model, device="cpu", clock=SimpleNamespace())
        for k in range(2):
            strategy.experience = SimpleNamespace(current_experience=k)
            plugin.before_training_exp(strategy)

            def hook(step, strategy=strategy):
                strategy.clock.train_iterations = step
                plugin.before_training_iteration(strategy)

            _train(model, tasks[k], range(20 * k, 20 * (k + 1)), hook, opt)
    (run,) = iter_runs(tmp_path)
    assert run.ends == (20, 39) and len(run.eval_steps) == 20  # every 2nd iteration
    assert run.measure(gap_depth, 1, 2) > 20  # the second task flips the first's labels


class _Dataset:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __getitem__(self, index):
        return self.x[index], self.y[index]


def test_the_lightning_callback_of_the_docs_records_a_run(tmp_path):
    from types import SimpleNamespace

    namespace = {"Callback": object}
    exec(_snippet("From PyTorch Lightning"), namespace)
    model, tasks = _toy(2)
    model.device = "cpu"
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with stabgap.Tracker(tmp_path, "lightning", 2, unit="fraction") as tracker:
        callback = namespace["StabilityGapCallback"](tracker, tasks, lambda s: 1 + s // 15)
        trainer = SimpleNamespace()

        def hook(step):
            trainer.global_step = step
            callback.on_train_batch_start(trainer, model, None, step)

        for k in range(2):
            _train(model, tasks[k], range(15 * k, 15 * (k + 1)), hook, opt)
    (run,) = iter_runs(tmp_path)
    assert run.ends == (15, 30) and run.acc.shape == (30, 2)


# --- refused before anything is written -----------------------------------------------------
def _seed(run, seed, steps=(0, 1, 2, 3), tasks=None, switch=2, group="g", loss=None):
    """One run of `group`: task 2 trained from step `switch`, each seen task evaluated (and
    tasks up to `tasks` besides)."""
    rows = []
    for step in steps:
        training = 1 if step < switch else 2
        for task in range(1, max(training, tasks or 0) + 1):
            rows.append({"run": run, "group": group, "seed": seed, "step": step,
                         "training": training, "task": task, "accuracy_pct": 50.0 + task,
                         **({} if loss is None else {"loss": loss(step)})})  # fmt: skip
    return rows


def _refused(tmp_path, capsys, path, message, out=None):
    """`import-curves` says `message` in one line and leaves --out as it was."""
    out = out or tmp_path / "runs"
    before = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")) if (
        out.exists()) else None  # fmt: skip
    code, printed, err = cli(capsys, "import-curves", path, "--out", out)
    assert code == 2 and not printed and message in err and err.count("\n") == 1, err
    assert "Traceback" not in err
    after = sorted((p.relative_to(out), p.stat().st_mtime_ns) for p in out.rglob("*")) if (
        out.exists()) else None  # fmt: skip
    assert after == before  # not created, or unchanged
    return err


@pytest.mark.parametrize(
    "other, differs",
    [
        (_seed("b", 2, steps=(0, 1, 2, 4)), "are evaluated at different steps (4 and 4 steps; "
                                            "step 3 only in run 'a')"),
        (_seed("b", 2, steps=(0, 2, 3)), "step 1 only in run 'a'"),
        (_seed("b", 2, tasks=3), "have 2 and 3 tasks"),
        (_seed("b", 2, switch=3), "switch tasks at different steps (task 2 from step 2 and 3)"),
    ],
)  # fmt: skip
def test_a_group_whose_seeds_are_evaluated_differently_is_refused(tmp_path, capsys, other, differs):
    """`stabgap report` averages a group's seeds step by step: the import refuses a group it
    could not average (the report crashed on it), naming the group, the seeds, what differs."""
    path = write_csv(tmp_path / "seeds.csv", _seed("a", 1) + other)
    err = _refused(tmp_path, capsys, path, "group 'g': seed 1 (run 'a') and seed 2 (run 'b') ")
    assert differs in err
    assert (
        "evaluate every seed of a group at the same steps on the same tasks, or give them "
        "different group names" in err
    )


def test_seeds_evenly_uneven_import_and_report_and_a_group_in_the_folder_is_checked(
    tmp_path, capsys
):
    """Uneven spacing inside a run is fine when every seed of its group shares it; another
    file's seeds of a group already in the folder must share that grid too."""
    steps = (0, 1, 2, 5, 6, 9)
    path = write_csv(tmp_path / "ok.csv", _seed("a", 1, steps) + _seed("b", 2, steps))
    code, out, err = cli(capsys, "import-curves", path, "--out", tmp_path / "runs")
    assert code == 0 and out.startswith("2 run(s) written"), err
    code, _, err = cli(capsys, "report", tmp_path / "runs")
    assert code == 0, err
    more = write_csv(tmp_path / "more.csv", _seed("c", 3, steps=(0, 1, 2, 5, 6, 8)))
    err = _refused(tmp_path, capsys, more, "group 'g': run ")
    assert "already there and run 'c' are evaluated at different steps" in err
    same = write_csv(tmp_path / "same.csv", _seed("c", 3, steps))
    assert cli(capsys, "import-curves", same, "--out", tmp_path / "runs")[0] == 0


@pytest.mark.parametrize("suffix", ["csv", "jsonl"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_loss_is_refused_before_any_run_is_written(tmp_path, capsys, suffix, bad):
    """The loss of the last run's last step is nan or inf: refused in one line, naming the
    file, the row and the step, with nothing written (it used to write the first runs and
    then fail with a traceback)."""
    rows = [
        *_seed("a", 1, loss=lambda s: 1.0),
        *_seed("b", 2, loss=lambda s: 1.0),
        *_seed("c", 3, loss=lambda s: bad if s == 3 else 1.0),
    ]
    path = tmp_path / f"loss.{suffix}"
    if suffix == "csv":
        write_csv(path, rows)
    else:  # json writes NaN and Infinity, and reads them back
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    err = _refused(tmp_path, capsys, path, f"{path}: row 17, column 'loss': run 'c' has loss ")
    assert f"{bad} at step 3, not a finite number: leave the cell empty" in err
    assert "or remove the column" in err


def test_rows_of_one_step_disagreeing_on_the_loss_are_refused(tmp_path, capsys):
    """Every row of a step gives the run's loss at that step: they must agree (the first one
    was kept and the others dropped); a row without a loss says nothing."""
    rows = _seed("a", 1, loss=lambda s: 0.5)
    rows[2]["loss"] = ""  # step 2, task 1: no loss; task 2 gives it
    (run,) = import_curves(write_csv(tmp_path / "one.csv", rows))
    assert run.metadata["loss_at_evaluations"] == [0.5] * 4
    rows[5]["loss"] = 0.25  # step 3, task 2; task 1 said 0.5
    path = write_csv(tmp_path / "two.csv", rows)
    _refused(
        tmp_path, capsys, path, "row 6, column 'loss': run 'a' has loss 0.5 and 0.25 at step 3"
    )


@pytest.mark.parametrize(
    "change, differs",
    [
        (lambda r: r[11].update(accuracy_pct=40.0), "(curves not as in"),
        (lambda r: [x.update(loss=0.5) for x in r[6:]], "(loss not as in"),
        (lambda r: r[6].update({"config.lr": 0.1}), "(config not as in"),
    ],
)
def test_a_changed_file_is_refused_where_its_runs_are_already(tmp_path, capsys, change, differs):
    """Imported again, an unchanged file writes nothing, quietly; a changed one is refused,
    naming the run and the way out, and the old runs stay as they were."""
    rows = _seed("a", 1) + _seed("b", 2)
    path = write_csv(tmp_path / "curves.csv", rows)
    out = tmp_path / "runs"
    assert cli(capsys, "import-curves", path, "--out", out)[:2] == (
        0, f"2 run(s) written to {out} (0 there already)\n")  # fmt: skip
    moved = write_csv(tmp_path / "elsewhere.csv", rows)  # where the file lies is not content
    assert cli(capsys, "import-curves", moved, "--out", out)[:2] == (
        0, f"0 run(s) written to {out} (2 there already)\n")  # fmt: skip
    change(rows)
    message = f"{out / 'b'} holds another version of run 'b' ("
    err = _refused(tmp_path, capsys, write_csv(path, rows), message)
    assert differs in err and "import into another folder, or remove the old runs first" in err


def test_a_write_that_fails_midway_leaves_nothing(tmp_path, capsys, monkeypatch):
    """All or nothing: a disk error at the second run removes the first (a new folder too;
    an existing one keeps exactly what it held)."""
    import stabgap.studies.imported as imported

    real, calls = imported.write_run, []

    def failing(record, parent):
        calls.append(record.name)
        if len(calls) % 2 == 0:
            raise OSError(28, "No space left on device")
        return real(record, parent)

    monkeypatch.setattr(imported, "write_run", failing)
    path = write_csv(tmp_path / "curves.csv", _seed("a", 1) + _seed("b", 2))
    err = _refused(tmp_path, capsys, path, "(No space left on device): nothing was imported")
    assert calls == ["a", "b"]
    out = tmp_path / "old"
    monkeypatch.setattr(imported, "write_run", real)
    assert cli(capsys, "import-curves", write_csv(tmp_path / "z.csv", _seed("z", 9, group="h")),
               "--out", out)[0] == 0  # fmt: skip
    monkeypatch.setattr(imported, "write_run", failing)
    calls.clear()
    _refused(tmp_path, capsys, path, "nothing was imported", out=out)
    assert [p.name for p in out.iterdir()] == ["z"]
    assert err.startswith("stabgap: error: writing the runs into")


def test_a_seed_already_in_the_folder_under_another_run_name_is_refused(tmp_path, capsys):
    out = tmp_path / "runs"
    first = write_csv(tmp_path / "first.csv", _seed("a", 1) + _seed("b", 2))
    assert cli(capsys, "import-curves", first, "--out", out)[0] == 0
    again = write_csv(tmp_path / "again.csv", _seed("a-rerun", 1))
    _refused(
        tmp_path,
        capsys,
        again,
        f"group 'g': run {out / 'a'} already there and run 'a-rerun' of {again} are both seed "
        "1: a group holds each seed once",
    )
    # a run that moved to another group is refused as such, not as other curves
    moved = write_csv(tmp_path / "moved.csv", _seed("a", 1, group="h"))
    assert "(group not as in" in _refused(tmp_path, capsys, moved, "holds another version")


def test_a_spreadsheet_export_with_a_byte_order_mark_is_read(tmp_path, capsys):
    plain = write_csv(tmp_path / "plain.csv", _seed("a", 1) + _seed("b", 2))
    marked = tmp_path / "marked.csv"  # Excel's "CSV UTF-8": a BOM and CRLF line ends
    marked.write_bytes(
        b"\xef\xbb\xbf" + plain.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    )
    ours, theirs = import_curves(plain), import_curves(marked)
    assert [r.name for r in ours] == [r.name for r in theirs] == ["a", "b"]
    assert all(
        np.array_equal(a.acc, b.acc, equal_nan=True) for a, b in zip(ours, theirs, strict=True)
    )


def test_fractions_in_the_percent_column_are_imported_as_given_with_a_warning(tmp_path, capsys):
    rows = [{**r, "accuracy_pct": r["accuracy_pct"] / 100} for r in _seed("a", 1)]
    code, out, err = cli(capsys, "import-curves", write_csv(tmp_path / "f.csv", rows), "--out",
                         tmp_path / "runs")  # fmt: skip
    assert code == 0 and "1 run(s) written" in out
    assert err.startswith("stabgap: warning: every accuracy of every group is at most 1 %: ")
    assert "give them in the column accuracy_fraction" in err and err.count("\n") == 1
    # a file merged from two sources: the group in fractions is named
    mixed = rows + _seed("b", 1, group="h")
    code, _, err = cli(capsys, "import-curves", write_csv(tmp_path / "m.csv", mixed), "--out",
                       tmp_path / "mixed")  # fmt: skip
    assert code == 0 and "every accuracy of 'g' is at most 1 %" in err
    # percentages say nothing
    code, _, err = cli(capsys, "import-curves", write_csv(tmp_path / "p.csv", _seed("a", 1)),
                       "--out", tmp_path / "other")  # fmt: skip
    assert code == 0 and err == ""


def test_the_default_baseline_of_imported_curves_is_the_files_first_group(tmp_path, capsys):
    # "plain SGD" comes first in the file but after "SGD with ND" by name (capitals first)
    rows = [*_seed("p1", 1, group="plain SGD"), *_seed("p2", 2, group="plain SGD"),
            *_seed("n1", 1, group="SGD with ND"), *_seed("n2", 2, group="SGD with ND")]  # fmt: skip
    out = tmp_path / "runs"
    assert cli(capsys, "import-curves", write_csv(tmp_path / "c.csv", rows), "--out", out)[0] == 0
    assert cli(capsys, "report", out)[0] == 0
    text = (out / "report" / "report.md").read_text()
    assert "**plain SGD** (the first group of the first curves file imported, as" in text
    # a second file imported into the folder: the first file's first group stays the baseline
    later = [*_seed("a1", 1, group="alpha"), *_seed("a2", 2, group="alpha")]
    assert cli(capsys, "import-curves", write_csv(tmp_path / "d.csv", later), "--out", out)[0] == 0
    assert cli(capsys, "report", out)[0] == 0
    text = (out / "report" / "report.md").read_text()
    assert (
        "Baseline group: **plain SGD** (the first group of the first curves file imported" in text
    )
    # a one-task file says why nothing is compared
    one = [r for r in rows if r["step"] < 2]
    assert cli(capsys, "import-curves", write_csv(tmp_path / "one.csv", one), "--out",
               tmp_path / "one")[0] == 0  # fmt: skip
    assert cli(capsys, "report", tmp_path / "one")[0] == 0
    text = (tmp_path / "one" / "report" / "report.md").read_text()
    assert "No verdicts: the runs have one task, so no switch" in text
