import dataclasses

import numpy as np
import pytest
from conftest import tiny_config

from stabgap.analysis import plots
from stabgap.core.train import run_experiment
from stabgap.studies.records import (
    DamagedRun,
    find_run,
    iter_runs,
    read_info,
    read_metadata,
    read_run,
    record_of,
    run_dirs,
    write_run,
)


@pytest.fixture
def record(small_stream):
    return record_of(run_experiment(tiny_config(seed=9), small_stream), "exp-seed9", "exp")


def test_round_trip_keeps_everything(tmp_path, record):
    written = write_run(record, tmp_path, plots.plot_run)
    back = read_run(written.path)
    np.testing.assert_array_equal(back.acc, record.acc)
    np.testing.assert_array_equal(back.loss, record.loss)
    assert back.boundaries == record.boundaries and back.config == record.config
    assert back.metadata == record.metadata and back.experiment == "exp"
    assert [m.value for m in back.metrics] == [m.value for m in record.metrics]
    assert (
        back.activity.keys()
        == record.activity.keys()
        == {
            "active_fraction",
            "mean_square",
            "dead_fraction",
        }
    )
    for name, values in record.activity.items():
        np.testing.assert_array_equal(back.activity[name], values)


def test_records_are_read_and_written_by_a_str_path_as_by_a_path(tmp_path, record):
    # docs/studies.md reads a run by its folder's name as a str: once a TypeError of our
    # own (str / "run.json") was reported as a damaged run, with advice to move it away.
    written = write_run(record, str(tmp_path))
    folder = str(written.path)
    back = read_run(folder)
    assert back.path == written.path and back.name == "exp-seed9"
    np.testing.assert_array_equal(back.acc, record.acc)
    assert read_info(folder)["name"] == "exp-seed9" and read_metadata(folder) == record.metadata
    assert [r.name for r in iter_runs(str(tmp_path))] == ["exp-seed9"]
    assert list(run_dirs(str(tmp_path))) == [written.path]
    assert find_run(str(tmp_path), "exp-seed9") == written.path


@pytest.mark.parametrize(
    "text, why",
    [
        ("{", "JSONDecodeError"),
        ("[1, 2]", "not a JSON object"),
        ('{"name": "x"}', "no 'experiment'"),
        ('{"name": "x", "experiment": "e", "metadata": [], "config": {}}', "'metadata' is not"),
    ],
)
def test_only_a_run_json_that_cannot_be_read_or_parsed_is_damaged(tmp_path, record, text, why):
    written = write_run(record, tmp_path)
    (written.path / "run.json").write_text(text)
    with pytest.raises(DamagedRun, match=f"its run.json cannot be read \\({why}") as e:
        read_run(str(written.path))
    assert e.value.path == written.path and "\n" not in str(e.value)


def test_interrupted_write_leaves_no_directory_that_looks_complete(tmp_path, record, monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the plot was drawn

    monkeypatch.setattr(plots, "plot_run", crash)
    with pytest.raises(KeyboardInterrupt):
        write_run(record, tmp_path, plots.plot_run)
    assert list(tmp_path.iterdir()) == []
    assert list(iter_runs(tmp_path)) == []


def test_leftover_temporary_directories_are_ignored(tmp_path, record):
    (tmp_path / ".exp-seed9.tmp-123").mkdir()
    (tmp_path / ".exp-seed9.tmp-123" / "run.json").write_text("{")
    write_run(record, tmp_path)
    assert [r.name for r in iter_runs(tmp_path)] == ["exp-seed9"]


def test_an_existing_run_is_never_overwritten(tmp_path, record):
    first = write_run(record, tmp_path)
    before = (first.path / "run.json").read_bytes()
    changed = dataclasses.replace(record, metadata={**record.metadata, "wall_time_s": -1})
    again = write_run(changed, tmp_path)  # the same name: the run is done
    assert again.path == first.path and (first.path / "run.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [record.name]  # no temporary left


def test_a_live_writers_temporary_folder_is_left_alone(tmp_path, record):
    import subprocess

    other = subprocess.Popen(["sleep", "30"])  # a live process, as another sweep would be
    try:
        live = tmp_path / f".{record.name}.tmp-{other.pid}"
        live.mkdir()
        dead = tmp_path / f".{record.name}.tmp-999999999"
        dead.mkdir()
        write_run(record, tmp_path)
        assert live.is_dir() and not dead.exists()
    finally:
        other.kill()


def test_curves_file_holds_no_pickles(tmp_path, record):
    path = write_run(record, tmp_path).path
    with np.load(path / "curves.npz", allow_pickle=False) as z:
        assert set(z.files) == {
            "acc",
            "eval_steps",
            "boundaries",
            "task_ends",
            "loss",
            "active_fraction",
            "mean_square",
            "dead_fraction",
        }


def test_a_run_trained_again_from_its_record_gives_its_numbers(tmp_path):
    # The recipe of docs/studies.md ("One run again, from its record"), to the bit.
    import torch
    from conftest import mnist_dir

    from stabgap.cli import main
    from stabgap.core.config import from_dict
    from stabgap.core.train import train_runs

    tiny = ["--batches-per-task", "6", "--hidden", "16", "--eval-subset", "50", "--quiet"]
    where = ["--data-dir", str(mnist_dir()), "--out", str(tmp_path), "--no-plot"]
    assert (
        main(["run", "--preset", "quick", "--experiments", "nd", "--seeds", "5", *tiny, *where])
        == 0
    )
    (folder,) = [p for p in tmp_path.iterdir() if (p / "run.json").is_file()]
    record = read_run(str(folder))  # as the recipe names it, by a str
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(record.metadata["threads"])  # the sums' order follows them
        (again,) = train_runs([from_dict(record.config)])
    finally:
        torch.set_num_threads(threads)
    assert np.array_equal(again.acc, record.acc, equal_nan=True)
    assert np.array_equal(again.loss, record.loss) and np.array_equal(again.penalty, record.penalty)
