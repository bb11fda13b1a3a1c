"""Reference import and the report, on the reference's real output file."""

import csv
import json
import re

import pytest
from conftest import ROOT, reference_dir

from stabgap.cli import main
from stabgap.studies.records import iter_runs

REFERENCE = reference_dir() / "reference-results-seed2958.json"


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("imported")
    assert main(["import-reference", str(REFERENCE), "--out", str(out)]) == 0
    return out


def test_import_names_runs_after_the_paper_experiments(imported):
    records = {r.experiment: r for r in iter_runs(imported)}
    assert len(records) == 14
    assert records["baseline"].config["decay_lambda"] == 0
    assert records["nd"].config["decay_lambda"] == 1e-5
    assert records["nd-no-replay"].config["replay"] == "none"
    # The reference set the width after building its network: what ran was 2048 wide.
    width = records["nd-width-4096-ran-2048"]
    assert width.config["hidden"] == [2048, 2048] and width.base == "nd-width-4096-ran-2048"
    assert width.metadata["experiment_no"] == 14
    assert width.metadata["recorded_hidden"] == [4096, 4096] and "2048" in width.metadata["note"]
    assert records["baseline"].metadata["seed"] == 2958
    assert records["baseline"].acc.shape == (1500, 3)


def test_import_twice_adds_nothing(imported, capsys):
    assert main(["import-reference", str(REFERENCE), "--out", str(imported)]) == 0
    assert "0 reference run(s) imported" in capsys.readouterr().out


def _cells(table: str, label: str) -> list[str]:
    """The cells of the Markdown table row whose first cell is `label`."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == label:
            return cells
    raise AssertionError(f"no row {label!r} in\n{table}")


@pytest.mark.slow
def test_report_table1_carries_the_reference_values(imported, tmp_path):
    report = tmp_path / "report"
    assert main(["report", str(imported), "--out", str(report)]) == 0
    expected = json.loads((reference_dir() / "reference-metrics-seed2958.json").read_text())
    table = (report / "table1.md").read_text()
    header = _cells(table, "Model")
    assert header[1:4] == [
        "GD<sub>1,3</sub> (p.p.) ↓",
        "TTR<sub>1,3</sub> (%) ↓",
        "ACC<sub>AVG,3</sub> (%) ↑",
    ]
    for label, number in (("Baseline", "1"), ("ND", "4")):
        gd, ttr, acc = _cells(table, label)[1:4]
        ref = expected[number]
        assert gd == f"{ref['gap_depth_task1']['interval3']:.1f} ± n/a"  # 18.3, one seed
        assert ttr == f"{ref['time_to_recover_task1_pct']['interval3']:.1f} ± n/a"
        assert acc == f"{ref['avg_acc_final']:.2f} ± n/a"  # 97.50
    assert len(table.strip().splitlines()) == 2 + 14  # every group has a row
    assert (report / "table1.tex").read_text().count(r"\\") == 1 + 14
    assert "Baseline" in (report / "table1.csv").read_text()


@pytest.mark.slow
def test_report_has_every_figure_as_png_and_pdf_and_answers(imported, tmp_path):
    report = tmp_path / "report"
    main(["report", str(imported), "--out", str(report)])
    figures = {p.name for p in (report / "figures").iterdir()}
    for name in (
        "task1-accuracy",
        "gap-vs-accuracy",
        "tradeoff-decay_lambda",
        "tradeoff-lr",
        "all-tasks-baseline",
        "all-tasks-nd",
        "average-accuracy",
        "gap-anatomy",
    ):
        assert {f"{name}.png", f"{name}.pdf"} <= figures
    text = (report / "report.md").read_text()
    linked = re.findall(r"!\[[^]]*\]\((figures/[^)]+\.png)\)", text)
    assert len(linked) == len(figures) // 2 and "figures/task1-accuracy.png" in linked
    assert all(
        (report / f).is_file() and (report / f).with_suffix(".pdf").is_file() for f in linked
    )
    assert "Q1." in text and "Q2." in text
    assert (report / "metrics.csv").stat().st_size > 1000


def test_report_of_an_empty_folder(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no run directories" in capsys.readouterr().err


PAPER_RECORDS = ROOT / "docs" / "results" / "gpu-h200-2026-11-26" / "table1-fp32"


def test_the_paper_records_are_tested_for_equality_and_ttr_under_each_definition(tmp_path):
    """The committed 15-seed paper-protocol runs: every GD and ACC cell equal to the
    reference's within its margin (two one-sided tests); the time to recover compared
    under every definition, adjusted with every other test of the report."""
    report = tmp_path / "report"
    assert main(["report", str(PAPER_RECORDS), "--out", str(report)]) == 0
    text = (report / "report.md").read_text()
    assert "All 6 cells with a margin are equal to the reference's" in text
    with open(report / "reference.csv") as f:
        cells = {(r["experiment"], r["metric"]): r["verdict"] for r in csv.DictReader(f)}
    assert cells[("baseline", "GD_1,3")].startswith("equal within ±1.5 (p = ")
    assert cells[("nd", "final ACC")].startswith("equal within ±0.25 (p = ")
    assert cells[("nd", "TTR_1,3 (%)")] == "no margin set: no equality claimed"
    with open(report / "time-to-recover.csv") as f:
        ttr = {r["definition"]: r["verdict"] for r in csv.DictReader(f)}
    assert ttr["robust: within 1 p.p. of the 10-batch level (stabgap's default)"] == "shorter"
    assert ttr["reference: back to the last point before the switch"].startswith(
        "not shown at n = 15 and 14"
    )
    assert ttr["robust: within 10% of the dip's own depth"].startswith("not shown at n = 15")
    # Adjusted by quantity: Q1's GD_1,3 is the comparison's (counted once); the time to
    # recover's 7 definitions are one quantity.
    assert "GD_1,3: 1, TTR_1,3: 7" in text
    assert "(95 % CI -11.80 to -9.60)" in text.split("Q1. Yes")[1]  # its only test
    assert "-0.5 (simultaneous 95 % CI over 7 tests" in text


def test_a_study_with_a_one_task_group_is_reported(tmp_path, capsys):
    """The quick preset's profiling experiments train one task: every part of the report
    that reads an interval leaves them out instead of failing (reproduce --quick did)."""
    from conftest import mnist_dir

    out = tmp_path / "runs"
    tiny = ["--batches-per-task", "8", "--hidden", "16", "--eval-subset", "50", "--quiet"]
    args = ["run", "--preset", "quick", "--experiments", "baseline,nd,baseline-profile"]
    assert main([*args, *tiny, "--seeds", "1,2,3", "--data-dir", str(mnist_dir()),
                 "--out", str(out), "--no-plot"]) == 0  # fmt: skip
    assert main(["report", str(out)]) == 0
    text = (out / "report" / "report.md").read_text()
    assert "baseline-profile" in text and "Spearman's ρ" in text
