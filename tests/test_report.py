"""Reference import and the report, on the reference's real output file."""

import csv
import json
import re
from collections import Counter

import numpy as np
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
        "task1-accuracy-1",  # 16 groups: on two figures, each with the baseline
        "task1-accuracy-2",
        "gap-vs-accuracy",
        "tradeoff-decay_lambda",
        "tradeoff-lr",
        "all-tasks-baseline",
        "all-tasks-nd",
        "average-accuracy-1",  # 16 groups: on two figures, each with the baseline
        "average-accuracy-2",
        "gap-anatomy",
    ):
        assert {f"{name}.png", f"{name}.pdf"} <= figures
    text = (report / "report.md").read_text()
    linked = re.findall(r"!\[[^]]*\]\((figures/[^)]+\.png)\)", text)
    assert len(linked) == len(figures) // 2 and "figures/task1-accuracy-1.png" in linked
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
    assert ttr["robust: within 0.5 p.p. of the 10-batch level"].endswith(  # in the column's unit
        "p.p. could not be detected with 80 % power at this level)"
    )
    # one ND seed never recovered: its time is censored, so no mean is compared; the
    # rank-sum test ranks it last, and the medians stand in for the interval
    with open(report / "time-to-recover.csv") as f:
        reference = next(r for r in csv.DictReader(f) if r["definition"].startswith("reference"))
    assert reference["verdict"] == (
        "not shown at n = 15 and 15 (rank-sum test: seeds that never recovered ranked last)"
    )
    assert reference["difference (p.p. of the interval)"].startswith(
        "median 13.6 vs 16.0, nd above"
    )
    # beside it the shift and the shifts the adjusted test accepts: 0 among them, as the
    # verdict is not significant (ties make both ends open)
    assert reference["difference (p.p. of the interval)"].endswith(
        "Hodges–Lehmann shift -0.6 (simultaneous 95 % CI over 7 tests (-7.6, +16.6))"
    )
    with open(report / "comparisons.csv") as f:
        ranked = [r for r in csv.DictReader(f) if r["test"] == "rank-sum"]
    assert [(r["name"], r["shift_ci_open_ends"]) for r in ranked] == [("TTR_1,3", "low and high")]
    assert (ranked[0]["unit"], ranked[0]["value_unit"]) == (
        "p.p. of the interval",
        "% of the interval",
    )
    assert ranked[0]["paired_n"] == ""  # no paired test of censored times
    with open(report / "groups.csv") as f:  # the median that counts the never as +inf
        column = "time_to_recover_1_3_pct_of_interval_median"
        medians = {r["group"]: round(float(r[column]), 1) for r in csv.DictReader(f)}
    assert medians == {"baseline": 16.0, "nd": 13.6}
    low, high = (
        float(ranked[0]["shift_ci_low_adjusted"]),
        float(ranked[0]["shift_ci_high_adjusted"]),
    )
    assert low < 0 < high and ranked[0]["verdict"].startswith("not shown")
    assert ttr["robust: within 10% of the dip's own depth"].startswith("not shown at n = 15")
    # Adjusted by quantity: Q1's GD_1,3 is the comparison's (counted once); the time to
    # recover's 7 definitions are one quantity, the findings' robust TTR among them, the
    # censored one included: a family is fixed before the data say who recovered.
    assert "GD_1,3: 1, TTR_1,3: 7" in text
    assert "(95 % CI -11.80 to -9.60)" in text.split("Q1. Yes")[1]  # its only test
    assert "+0.7 (simultaneous 95 % CI over 7 tests" in text


def test_a_study_with_a_one_task_group_is_reported(tmp_path, capsys):
    """The quick preset's profiling experiments train one task: every part of the report
    that reads an interval leaves them out instead of failing (reproduce --quick did; and
    again where its two profiling groups, λ = 0 and λ > 0, made a trade-off line)."""
    from conftest import mnist_dir

    out = tmp_path / "runs"
    tiny = ["--batches-per-task", "8", "--hidden", "16", "--eval-subset", "50", "--quiet"]
    args = ["run", "--preset", "quick", "--experiments", "baseline,nd,baseline-profile,nd-profile"]
    assert main([*args, *tiny, "--seeds", "1,2,3", "--data-dir", str(mnist_dir()),
                 "--out", str(out), "--no-plot"]) == 0  # fmt: skip
    assert main(["report", str(out)]) == 0
    text = (out / "report" / "report.md").read_text()
    assert "baseline-profile" in text and "Spearman's ρ" in text
    assert "; network: MLP 784-16-10; optimizer adam" in text
    assert (out / "report" / "figures" / "tradeoff-decay_lambda.png").is_file()  # baseline, nd
    # shown, not compared: their final accuracy is one task's (and they have no switch)
    assert "One-task groups are shown but not compared with the baseline (" in text
    assert "**nd-profile** against" not in text and "**nd** against baseline" in text
    with open(out / "report" / "comparisons.csv") as f:
        assert {r["group"] for r in csv.DictReader(f)} == {"nd"}


@pytest.mark.parametrize(
    "fields,network",
    [
        ({"model": "resnet", "resnet_norm": "group"}, "reduced ResNet-18, 20 base filters, group"),
        ({"model": "vit", "vit_heads": 2}, "ViT, 4×4 patches, 4 blocks of 64 features and 2 heads"),
        ({"model": "mine"}, "mine"),  # a plugin's network, not loaded here: its name
    ],
)
def test_the_protocol_names_the_network_by_what_it_reads(fields, network):
    """A ResNet's or a ViT's study is not described by the MLP's hidden widths."""
    from types import SimpleNamespace

    from stabgap.analysis.report import _protocol
    from stabgap.core.config import RunConfig, to_dict

    config = {**to_dict(RunConfig()), **fields}
    base = SimpleNamespace(config=config, imported=False, runs=[1])
    text = _protocol(base, [base])
    assert f"; network: {network}" in text and "hidden" not in text


# --- a researcher's own study: named experiments, a grid, tables that join -------------------
OWN_STUDY = """
preset = "quick"
seeds = [1, 2, 3]
batches_per_task = 6
hidden = [16]
eval_subset = 50
[experiments.baseline]
[experiments.slow-lr]
lr = 1e-4
[grid]
ema_decay = [0.0, 0.9]
"""


@pytest.fixture(scope="module")
def own_study(tmp_path_factory):
    from conftest import mnist_dir

    root = tmp_path_factory.mktemp("own")
    (root / "study.toml").write_text(OWN_STUDY)
    argv = ["sweep", root / "study.toml", "--out", root / "runs", "--quiet", "--no-plot",
            "--data-dir", mnist_dir()]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    assert main(["report", str(root / "runs"), "--out", str(root / "report")]) == 0
    return root


def _read(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_study_file_names_its_own_experiments(own_study):
    runs = list(iter_runs(own_study / "runs"))
    labels = sorted({r.experiment for r in runs})
    # what the file sets unlike the preset is named; a grid value that is the experiment's
    # own (ema_decay 0) changes nothing: not named
    c = "_batches_per_task=6_eval_subset=50_hidden=16"
    assert labels == [f"baseline{c}", f"baseline{c}_ema_decay=0.9", f"slow-lr{c}",
                      f"slow-lr{c}_ema_decay=0.9"]  # fmt: skip
    slow = [r for r in runs if r.experiment.startswith("slow-lr")]
    assert {r.config["lr"] for r in slow} == {1e-4} and {r.base for r in slow} == {"slow-lr"}


def test_every_table_of_a_report_joins_on_one_group_key(own_study):
    report = own_study / "report"
    groups = _read(report / "groups.csv")
    keys = {row["group"] for row in groups}
    assert len(keys) == 4
    for table in ("curves", "losses", "metrics"):
        assert {row["group"] for row in _read(report / f"{table}.csv")} == keys, table
    comparisons = _read(report / "comparisons.csv")
    compared = {row["group"] for row in comparisons}
    assert compared < keys and {row["baseline"] for row in comparisons} < keys
    # each comparison's metric keyed as metrics.csv keys it (these tiny networks never learn
    # task 1, so their gap metrics are not stated, with no numbers: the accuracies are)
    wc = next(row for row in comparisons if row["name"] == "WC-ACC_3")
    assert (wc["metric"], wc["task"], wc["interval"]) == ("wc_acc", "", "3")
    gd = next(row for row in comparisons if row["name"] == "GD_1,3")
    assert (gd["metric"], gd["task"], gd["interval"]) == ("gap_depth", "1", "3")
    assert gd["verdict"] == "not stated: no gap to measure" and gd["difference"] == ""
    metric_keys = {(r["metric"], r["task"], r["interval"]) for r in _read(report / "metrics.csv")}
    assert {(r["metric"], r["task"], r["interval"]) for r in comparisons} <= metric_keys
    # every statistic a number of its own, the unit in the column's name
    first = groups[0]
    for stat in ("mean", "sd", "ci95_low", "ci95_high", "n"):
        float(first[f"gap_depth_1_3_pp_{stat}"])
    assert "accuracy_pct" in _read(report / "curves.csv")[0]
    assert {
        row["unit"] for row in _read(report / "metrics.csv") if row["metric"] == "gap_depth"
    } == {"p.p."}
    # and each table the report names as having one in Parquet, where pyarrow is there
    pytest.importorskip("pyarrow", reason="needs the parquet extra: pip install -e '.[parquet]'")
    for table in ("groups", "comparisons", "curves", "losses", "metrics"):
        assert (report / f"{table}.parquet").is_file(), table


def test_tests_csv_holds_each_test_once_with_what_rebuilds_its_adjustment(own_study):
    # every test of the report's family, the comparisons with the baseline's among them:
    # each quantity's adjustment is the count of its planned rows, p_adjusted its p times it
    tests = _read(own_study / "report" / "tests.csv")
    keys = [(r["quantity"], *sorted((r["group"], r["against"])), r["measure"]) for r in tests]
    assert len(keys) == len(set(keys))
    sizes = Counter(r["quantity"] for r in tests if r["tests_adjusted_over"])
    for r in tests:
        if r["tests_adjusted_over"]:
            n = sizes[r["quantity"]]
            assert int(r["tests_adjusted_over"]) == n, r
            if r["p"]:
                assert float(r["p_adjusted"]) == pytest.approx(min(1.0, float(r["p"]) * n))
    compared = {(r["group"], r["name"]) for r in _read(own_study / "report" / "comparisons.csv")}
    listed = {(r["group"], r["measure"]) for r in tests}
    assert compared <= listed and {r["section"] for r in tests} >= {
        "Each group against the baseline"
    }


@pytest.mark.parametrize(
    "text, message",
    [
        ("[experiments.nd]\nlr = 1e-4", "[experiments.nd] redefines preset quick's own experiment"),
        ('[experiments.mine]\nfrom = "nope"', "from = 'nope': an experiment starts from one of"),
        (
            '[experiments.mine]\nlr = "fast"',
            "[experiments.mine] config field 'lr' must be a number",
        ),
        ("[experiments.mine]\nlrr = 1", "'lrr' in [experiments.mine]: not a config field (nor"),
        ("[experiments]\nmine = 3", "[experiments.mine] must be a table of config fields"),
        # a field the table's own model does not use: refused, never quietly put back
        ("[experiments.mine]\nvit_dim = 8", "experiment mine: invalid config: vit_dim applies"),
        (
            '[experiments.v]\nmodel = "vit"\nhidden = [16]',
            "experiment v: invalid config: hidden applies to model mlp, model cnn only",
        ),
        (  # a study-wide value: set it for the experiments that use it
            'hidden = [16]\n[experiments.v]\nmodel = "vit"',
            "(set hidden for the experiments that use it, in their own tables, not for the",
        ),
        ('preset = "quik"', "s.toml: unknown preset 'quik'"),
        (  # a grid point that makes no run: named, and what does run them
            'experiments = ["baseline"]\n[grid]\nmodel = ["mlp", "resnet"]\n'
            'resnet_norm = ["batch", "none"]',
            "experiment baseline, grid point model=mlp, resnet_norm=none: invalid config: "
            "resnet_norm applies to model resnet only",
        ),
    ],
)
def test_a_defined_experiment_with_a_mistake_is_refused_naming_its_table(
    tmp_path, capsys, text, message
):
    (tmp_path / "s.toml").write_text(text + "\n")
    assert main(["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "o").exists()


def test_a_defined_experiment_from_a_preset_one_still_drops_what_it_inherits():
    from stabgap.core.config import RunConfig
    from stabgap.studies.plan import study_spec

    tables = {"v": {"from": "baseline-narrow", "model": "vit", "vit_dim": 8, "vit_heads": 2}}
    spec = study_spec({"preset": "quick", "experiments": tables}, source="s.toml")
    (run,) = {s.config.replace(seed=0) for s in spec.plan()}
    # baseline-narrow's MLP widths go back to their default under the table's ViT
    assert (run.model, run.vit_dim, run.hidden) == ("vit", 8, RunConfig().hidden)


def test_run_study_takes_the_data_folder(tmp_path, monkeypatch):
    from conftest import mnist_dir

    from stabgap.study import run_study

    monkeypatch.delenv("STABGAP_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))  # nothing to find there: no download wanted
    small = {"batches_per_task": 4, "hidden": [8], "eval_subset": 50}
    records = run_study("quick", ["baseline"], seeds=[1], overrides=small, data_dir=mnist_dir())
    assert len(records) == 1 and records[0].acc.shape[1] == 3


def test_a_grid_of_two_fields_is_drawn_against_each_a_line_per_value_of_the_other(own_study):
    report = own_study / "report"
    text = (report / "report.md").read_text()
    for field in ("lr", "ema_decay"):
        assert (report / "figures" / f"tradeoff-{field}.png").is_file()
    assert "against lr, mean ± std over seeds (one line for each value of the other" in text
    # the preset's baseline, as the study ran it, is the report's baseline, and it says why
    assert "Baseline group: **baseline, ema_decay=0** (the preset's baseline;" in text


def test_every_group_asked_for_is_drawn_on_as_many_figures_as_it_takes(tmp_path, capsys):
    from conftest import mnist_dir

    from stabgap.analysis.report import MAX_CURVES

    values = ", ".join(str(0.05 * i) for i in range(MAX_CURVES + 1))  # one group too many
    (tmp_path / "s.toml").write_text(
        f"seeds = [1]\nbatches_per_task = 4\nhidden = [8]\neval_subset = 50\n"
        f'experiments = ["baseline"]\n[grid]\nema_decay = [{values}]\n'
    )
    argv = ["sweep", tmp_path / "s.toml", "--out", tmp_path / "o", "--quiet", "--no-plot",
            "--data-dir", mnist_dir()]  # fmt: skip
    assert main([str(a) for a in argv]) == 0
    assert main(["report", str(tmp_path / "o")]) == 0
    report = tmp_path / "o" / "report"
    text = (report / "report.md").read_text()
    for name in ("average-accuracy-1", "average-accuracy-2", "task1-accuracy-2"):
        assert (report / "figures" / f"{name}.png").is_file(), name
    assert "figure 2 of 2, each with the baseline" in text and "not drawn" not in text
    assert "one seed each (no band)" in text and "mean ± std over seeds (every" not in text
    assert len(list((report / "figures").glob("all-tasks-*.png"))) == MAX_CURVES + 1


def test_the_docs_example_redraws_a_figure_from_the_exported_tables(own_study, tmp_path):
    import subprocess
    import sys

    script = ROOT / "docs" / "examples" / "redraw.py"
    out = tmp_path / "redrawn.png"
    argv = [sys.executable, script, own_study / "report", "--metric", "gap_depth", "--task",
            "1", "--interval", "3", "--field", "lr", "--by", "ema_decay", "--out", out]  # fmt: skip
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.stat().st_size > 10_000  # a picture, two lines of two points


def _browser() -> str:
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("needs a headless browser: Debian's chromium (apt-get install chromium)")
    return found


def _headless(browser, tmp_path, *args) -> str:
    import subprocess

    argv = [browser, "--headless", "--no-sandbox", "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}", *args]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_report_html_draws_its_curves_offline_in_a_real_browser(own_study, tmp_path):
    browser = _browser()
    page = own_study / "report" / "report.html"
    text = page.read_text()
    # one file that needs nothing else: no fetched script, style or image
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", text)
    assert text.count("data:image/png;base64,") == len(
        list((own_study / "report" / "figures").glob("*.png"))
    )
    # the state a reader sets by hand, set by the address: task 2, one group hidden, zoomed
    # on the switch to task 3 (batch 12 of 3 tasks of 6)
    dom = _headless(
        browser,
        tmp_path,
        "--dump-dom",
        f"{page.as_uri()}#task=2&hide=slow-lr,%20ema_decay%3D0&zoom=3",
    )
    body = re.search(r"<body([^>]*)>", dom)[1]
    assert 'data-curves-drawn="3"' in body and 'data-task="2"' in body, body
    low, high = map(int, re.search(r'data-x-range="(\d+),(\d+)"', body).groups())
    assert low <= 12 < high < 18
    # the accuracy axis labelled at round values, evenly, 1, 2 or 5 × a power of ten apart
    y = [float(v) for v in re.search(r'data-y-ticks="([^"]+)"', body)[1].split(",")]
    steps = {round(b - a, 6) for a, b in zip(y, y[1:], strict=False)}
    assert 2 <= len(y) <= 7 and len(steps) == 1, y
    (step,) = steps
    assert round(step / 10 ** np.floor(np.log10(step)), 6) in (1, 2, 5), y
    assert all(abs(v / step - round(v / step)) < 1e-6 for v in y), y
    # and a picture of it, whose curves are drawn in the groups' colours
    shot = tmp_path / "shot.png"
    _headless(browser, tmp_path, "--window-size=1200,1000", f"--screenshot={shot}", page.as_uri())
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    blue = np.array([0x1F, 0x77, 0xB4]) / 255  # the first compared group's line
    assert (np.abs(pixels - blue).max(axis=-1) < 0.08).sum() > 200
    curves = json.loads(re.search(r'id="curve-data"[^>]*>(.*?)</script>', text, re.S)[1])
    colors = {g["label"]: g["color"] for g in curves["groups"]}  # the baseline's: black
    assert sorted(colors.values()) == ["#000000", "#1f77b4", "#2ca02c", "#ff7f0e"]
    # the black one is the baseline, which the page draws last (above the others)
    (base,) = [g for g in curves["groups"] if g["baseline"]]
    assert base["color"] == "#000000"


def test_report_html_draws_groups_of_other_lengths_each_to_its_end(tmp_path):
    # two groups whose tasks are 10 and 12 batches long: the axis runs to the longer's end,
    # a switch zooms on both groups' switches, and an address that names no task is the
    # default view, not a page with nothing drawn
    from types import SimpleNamespace as NS

    from stabgap.analysis.html import curve_data, write_html

    def run(per_task):
        steps = np.arange(3 * per_task)
        acc = np.full((steps.size, 3), 50.0)
        return NS(acc=acc, eval_steps=steps, ends=(per_task, 2 * per_task, 3 * per_task))

    groups = {"short": [run(10)] * 2, "long": [run(12)] * 2}
    keys = {"short": "short_batches_per_task=10", "long": "long_batches_per_task=12"}
    curves = curve_data(groups, 3, keys=keys, baseline="short")
    page = write_html(tmp_path, "# A study\n\nTwo lengths.", curves)
    browser = _browser()
    for address, drawn, drawn_from, drawn_to in (
        ("task=abc", 2, 0, 36),
        ("zoom=2", 2, 10, 16),
        ("hide=long_batches_per_task%3D12", 1, 0, 36),  # by key, as --baseline takes it
    ):
        dom = _headless(browser, tmp_path, "--dump-dom", f"{page.as_uri()}#{address}")
        body = re.search(r"<body([^>]*)>", dom)[1]
        assert f'data-curves-drawn="{drawn}"' in body and 'data-task="1"' in body, (address, body)
        low, high = map(int, re.search(r'data-x-range="(\d+),(\d+)"', body).groups())
        assert (low, high) == (drawn_from, drawn_to), (address, body)


def test_a_group_that_never_learned_task_1_is_flagged_against_chance():
    from types import SimpleNamespace as NS

    from stabgap.analysis.forgetting import unlearned_groups, unlearned_sentence
    from stabgap.core.config import RunConfig, to_dict

    def group(key, config, ends):  # each run's task-1 accuracy as task 1 ended
        runs = [NS(measure=lambda f, e=e: np.array([[e, 0.0], [0.0, 0.0]])) for e in ends]
        return NS(key=key, config=to_dict(config), runs=runs, imported=key == "imported")

    rotated = RunConfig(eval_subset=500)  # 10 digits: chance 10 %, ± 1.34 on 500 images
    split = RunConfig(stream="split", eval_subset=500)  # 2 digits a task: chance 50 %
    found = unlearned_groups(
        [
            group("flat", rotated, [11.0, 13.9, 90.0]),  # two of three within 3 SE (14.0)
            group("learnt", rotated, [14.1, 95.0]),
            group("split-flat", split, [52.0, 55.0, 60.0]),  # 50 + 3 · 2.24 = 56.7
            group("imported", RunConfig(), []),
        ]
    )
    assert set(found) == {"flat", "split-flat"}
    assert found["flat"][:2] == (2, 3) and found["split-flat"][3] == 50.0
    text = unlearned_sentence("flat", found["flat"])
    assert "task 1 was not learned in 2 of its 3 runs" in text and "chance (10.0 %)" in text


def test_a_group_is_forgotten_where_task_1_has_nothing_above_chance_left_to_drop():
    """Below half its end-of-task accuracy and at chance (within 3 SE) before the last
    switch; a run at 45 % of a 10-class task still has 35 p.p. to drop, and its gap counts."""
    from types import SimpleNamespace as NS

    from stabgap.analysis.forgetting import forgotten_groups, forgotten_sentence
    from stabgap.core.config import RunConfig, to_dict

    def group(key, config, befores, imported=False):  # task 1 before the last switch
        def run(before):
            acc = np.array([[90.0, 60.0, before, 0], [0, 90, 90, 10], [0, 0, 90, 90]])
            return NS(measure=lambda f: acc)

        runs = [run(b) for b in befores]
        return NS(key=key, config=to_dict(config), runs=runs, imported=imported)

    rotated = RunConfig(eval_subset=500)  # chance 10 %, ± 1.34 on 500 images: up to 14.0
    found = forgotten_groups(
        [
            group("still-there", rotated, [45.0, 44.0, 46.0]),
            group("gone", rotated, [8.0, 13.9, 45.0]),
            group("imported", rotated, [30.0, 40.0, 20.0], imported=True),  # the share alone
        ],
        n_tasks=4,
    )
    assert set(found) == {"gone", "imported"}
    assert found["gone"][:2] == (2, 3) and found["gone"][4] == 10.0
    assert found["imported"][4] is None
    text = forgotten_sentence("gone", found["gone"], 4)
    assert "forgotten before the last switch in 2 of its 3 runs" in text
    assert "90.0 % when task 1 ended, chance 10.0 %)" in text
    assert "chance" not in forgotten_sentence("imported", found["imported"], 4)


def test_groups_of_one_setting_under_two_names_are_said_to_be_one():
    from types import SimpleNamespace as NS

    from stabgap.analysis.groups import same_settings
    from stabgap.core.config import RunConfig, to_dict

    def group(key, seed, **fields):
        config = to_dict(RunConfig(seed=seed, **fields))
        return NS(key=key, source="stabgap", imported=False, runs=[NS(config=config)],
                  diverged=[], config=config)  # fmt: skip

    groups = [group("baseline", 1), group("mine", 2), group("nd", 1, decay_lambda=1e-5)]
    assert [[g.key for g in same] for same in same_settings(groups)] == [["baseline", "mine"]]
    from stabgap.analysis.report import _twins

    three = [*groups, group("also", 3)]
    said = _twins(three, {g.key: g.key for g in three})
    assert "**baseline** and **mine** and **also** ran the same settings" in said
    assert "three samples of one setting" in said


def test_a_label_says_the_data_and_network_and_what_two_studies_baselines_differ_in():
    """Every group 'differs as its name says': two presets' baselines reported together
    are named by their networks, a second dataset by its name; a preset's own experiments
    keep their names alone (nd's λ is what nd means)."""
    from types import SimpleNamespace as NS

    from stabgap.analysis.groups import build_groups
    from stabgap.core.config import to_dict
    from stabgap.studies.presets import get_preset

    def runs(preset, experiment, seed=1, **varied):
        config = get_preset(preset).config(experiment, {**varied, "seed": seed})
        name = "_".join([experiment, *(f"{k}={v}" for k, v in varied.items())])
        return NS(experiment=name, base=experiment, varied=varied, metadata={},
                  config=to_dict(config), diverged=False)  # fmt: skip

    def labels(*records):
        return [g.label for g in build_groups(records)]

    resnet = runs("quick-resnet", "baseline", batches_per_task=60)
    vit = runs("quick-vit", "baseline", batches_per_task=80)
    assert labels(resnet, vit) == [
        "batches_per_task=60, model=resnet, resnet_width=8",
        "batches_per_task=80, model=vit, vit_patch=7, vit_dim=32, vit_depth=2, vit_heads=2",
    ]
    assert labels(runs("quick", "baseline"), runs("quick-fashion", "nd")) == [
        "baseline, dataset=mnist",
        "nd, dataset=fashion-mnist",
    ]
    assert labels(runs("quick", "baseline"), runs("quick", "nd")) == ["baseline", "nd"]
    # runs under one experiment label that differ in science: what differs, where it applies
    resnet.experiment = vit.experiment = "baseline"
    assert [g.key for g in build_groups([resnet, vit])][0].endswith("model=resnet_resnet_width=8")
    assert labels(resnet, vit)[0] == "batches_per_task=60, model=resnet, resnet_width=8"


def _their_curves(path, groups, tasks=3):
    """A curves file as another loop writes it: 3 seeds of each group, `tasks` tasks of 6
    steps, every seen task evaluated at every step, a dip after each switch."""
    rows = []
    for g, group in enumerate(groups):
        for seed in (1, 2, 3):
            for step in range(6 * tasks):
                training = step // 6 + 1
                for task in range(1, training + 1):
                    since = step - 6 * (task - 1)
                    dip = 20 + 5 * g + seed if step % 6 == 0 and task < training else 0
                    rows.append(
                        {
                            "run": f"{group}-s{seed}",
                            "group": group,
                            "seed": seed,
                            "step": step,
                            "training": training,
                            "task": task,
                            "accuracy_pct": min(95.0, 40 + 10 * since) - dip,
                        }  # fmt: skip
                    )
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_curves_imported_into_a_study_folder_leave_it_whole(own_study, tmp_path, capsys):
    # a study folder with another loop's runs in it: its report, its metrics and the study
    # run again into it all work; the imported groups are tagged as imported, and the
    # report says what their seeds can and cannot pair
    import shutil

    from conftest import mnist_dir

    runs = tmp_path / "runs"
    shutil.copytree(own_study / "runs", runs)
    curves = _their_curves(tmp_path / "theirs.csv", ("naive", "replay"))
    assert main(["import-curves", str(curves), "--out", str(runs)]) == 0
    assert main(["report", str(runs), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "naive [imported]" in text and "replay [imported]" in text
    assert "[reference]" not in text
    assert "common random numbers" in text and "pairs runs by seed number alone" in text
    assert "a difference between an imported group and stabgap's may come from either" in text
    assert main(["metrics", str(runs)]) == 0
    argv = ["sweep", own_study / "study.toml", "--out", runs, "--quiet", "--no-plot",
            "--data-dir", mnist_dir()]  # fmt: skip
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 0
    assert len(list(iter_runs(runs))) == 12 + 6  # nothing trained again, nothing lost


def test_imported_groups_named_as_the_posters_play_none_of_its_roles(tmp_path):
    # another loop's "baseline" and "nd" are names only: no poster question is answered for
    # them, no preset baseline is claimed, and Table 1 keeps their own names
    curves = _their_curves(tmp_path / "theirs.csv", ("baseline", "nd"))
    assert main(["import-curves", str(curves), "--out", str(tmp_path / "runs")]) == 0
    assert main(["report", str(tmp_path / "runs")]) == 0
    text = (tmp_path / "runs" / "report" / "report.md").read_text()
    assert "Q1" not in text and "(the preset's baseline; another" not in text
    assert "common random numbers" not in text and "seed number alone" in text
    assert "| baseline |" in text and "| Baseline |" not in text
    # no times to compare: not even the baseline's ratio is 1
    cost = _read(tmp_path / "runs" / "report" / "cost.csv")
    assert {row["time per batch (× baseline)"] for row in cost} == {"n/a"}


def test_a_plugins_runs_reported_without_it_are_said_to_lack_it():
    # a report made where the plugin that trained some runs is not loaded says so, rather
    # than leave its FLOPs and findings out silently
    from types import SimpleNamespace

    from stabgap.analysis.report import unloaded_extensions

    runs = [
        SimpleNamespace(metadata={"remedies": ["nd", "my-clip"], "methods": []}),
        SimpleNamespace(metadata={"remedies": [], "methods": ["der", "l2-anchor"]}),
        SimpleNamespace(metadata={"source": "imported"}),
    ]
    assert unloaded_extensions(runs) == ["l2-anchor", "my-clip"]


def test_a_tradeoff_line_is_named_by_its_groups_when_its_settings_run_long():
    from types import SimpleNamespace

    from stabgap.analysis.report import _named_lines

    def group(key, size):
        return SimpleNamespace(key=key, config={"memory_size": size})

    short = {"lr=0.1": [group("a", 200)], "lr=0.01": [group("b", 200)]}
    assert _named_lines(short, "memory_size", {}) is short
    long = {
        "replay=memory, memory=reservoir, der_alpha=0.1, der_beta=1": [
            group("der-2000", 2000),
            group("der-200", 200),
        ],
        "replay=memory, memory=reservoir, der_alpha=0, der_beta=0": [group("er-200", 200)],
    }
    labels = {"der-200": "der-200", "der-2000": "der-2000", "er-200": "er-200"}
    assert list(_named_lines(long, "memory_size", labels)) == ["der-200 / der-2000", "er-200"]


def test_a_tradeoff_line_is_named_by_the_settings_it_changes_from_the_defaults():
    from stabgap.analysis.groups import _told_apart

    er, ace = [("replay", "memory"), ("der_alpha", 0.0), ("er_ace", False)], [("er_ace", True)]
    der = [("replay", "none"), ("der_alpha", 0.1), ("er_ace", False)]
    named = _told_apart([er, [*er[:2], *ace], der])
    assert named == ["replay=memory", "replay=memory, er_ace=True", "replay=none, der_alpha=0.1"]
    # a line at every default would go unnamed: then each keeps every field
    assert _told_apart([[("lr", 0.001)], [("lr", 0.01)]]) == ["lr=0.001", "lr=0.01"]


def test_groups_of_another_stream_length_than_the_baseline_are_left_out_saying_so(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["import-curves", str(_their_curves(tmp_path / "a.csv", ("short",))), "--out",
                 str(runs)]) == 0  # fmt: skip
    five = _their_curves(tmp_path / "b.csv", ("long",), tasks=5)
    assert main(["import-curves", str(five), "--out", str(runs)]) == 0
    capsys.readouterr()
    assert main(["report", str(runs), "--baseline", "long"]) == 0
    err = capsys.readouterr().err
    assert "left out, as they train another number of tasks than the baseline's 5: short (3)" in err
    text = (runs / "report" / "report.md").read_text()
    assert "Left out, as they train another number of tasks" in text and "GD<sub>1,5" in text
    # a group named to compare with a baseline of another length: one line, no report
    code = main(["report", str(runs), "--baseline", "long", "--compare", "short", "--out",
                 str(tmp_path / "r2")])  # fmt: skip
    assert code == 2 and not (tmp_path / "r2").exists()
    assert "short trains 3 tasks and the baseline long 5" in capsys.readouterr().err


def test_a_time_to_recover_differs_by_at_most_what_the_runs_ends_allow():
    # recovery is sought to the run's end: in the last interval a TTR is 0-100 % of it, in an
    # earlier one it can run past it, to the run's end and no further
    from types import SimpleNamespace as Run

    from stabgap.metrics import difference_span, recovery_span

    three = [Run(ends=(300, 600, 900))] * 2
    assert recovery_span(three, 3) == 100.0 and recovery_span(three, 2) == 200.0
    assert recovery_span([Run(ends=(5, 10, 15, 20, 25))], 5) == 100.0
    # imported runs whose tasks differ in length: the longest reach of either group's runs
    assert recovery_span([*three, Run(ends=(300, 400, 900))], 2) == 600.0
    assert recovery_span([], 2) == float("inf") and difference_span("gap_depth") == 200.0


def test_a_claims_ttr_before_the_last_interval_is_cut_where_the_runs_end():
    # the learning-rate claim's TTR_1,2: recovery at the switch's next batch, halfway or
    # near the run's end, so a Welch interval of three seeds a group passes ±200 % of the
    # interval, which no two runs of three tasks of one length can differ by
    from types import SimpleNamespace as NS

    import numpy as np

    from stabgap.analysis.claims import claim_checks
    from stabgap.metrics import Measured

    class Run(Measured):
        def __init__(self, seed: int, back: int) -> None:
            self.config, self.ends, self.eval_steps = {"seed": seed}, (10, 20, 30), np.arange(30)
            self.acc = np.full((30, 3), np.nan)
            self.acc[:, 0] = [90.0] * 10 + [50.0] * (back - 10) + [90.0] * (30 - back)
            self.acc[10:, 1], self.acc[20:, 2] = 80.0, 80.0

    groups = [
        NS(key=f"lr={lr}", config={"lr": lr}, source="", imported=False,
           runs=[Run(seed, back) for seed, back in zip((1, 2, 3), backs, strict=True)])
        for lr, backs in ((0.1, (11, 29, 20)), (0.01, (29, 11, 20)))
    ]  # fmt: skip
    [check] = claim_checks(groups, {g.key: g.key for g in groups}, 3)
    [ttr] = [c for p, c in check.tests if p.quantity == "TTR_1,2"]
    assert (ttr.mean_a, ttr.mean_b, ttr.span) == (100.0, 100.0, 200.0)
    assert ttr.interval() == (-200.0, 200.0) and ttr.cut() == ", cut to the possible ±200"


def test_the_checks_of_reported_findings_leave_out_groups_that_never_learned_task_1(
    monkeypatch,
):
    from types import SimpleNamespace as NS

    from stabgap.analysis import verdicts

    seen = {}

    def recorder(name):
        def check(groups, *_):
            seen[name] = [g.key for g in groups]
            return []

        return check

    monkeypatch.setattr(verdicts, "claim_checks", recorder("claims"))
    monkeypatch.setattr(verdicts, "gap_checks", recorder("gaps"))
    groups = [NS(key=k, base=k, runs=[1], imported=False) for k in ("flat", "learnt")]
    verdicts.judge([], groups, groups[1], [], 1, {}, unlearned={"flat": (2, 3, 11.0, 10.0)})
    assert seen == {"claims": ["learnt"], "gaps": ["learnt"]}


def test_an_imported_group_is_the_baseline_only_where_no_group_is_stabgaps():
    from types import SimpleNamespace as NS

    from stabgap.analysis.groups import default_baseline

    theirs, ours = (NS(key=k, base=k, varied={}, runs=[NS(metadata={})], diverged=[],
                       imported=k == "Baseline") for k in ("Baseline", "sgd"))  # fmt: skip
    assert default_baseline([theirs, ours])[0] is ours
    assert default_baseline([theirs]) == (theirs, "the first group by name, as no group is the "
                                          "preset's baseline; choose with --baseline")  # fmt: skip


def test_a_grid_over_every_groups_settings_takes_the_baseline_closest_to_the_presets():
    # a sweep over memory_size × dataset × sam_rho names every group by its memory size: the
    # baseline is the one that changes no more than that, on the preset's own dataset and
    # sharpness (not the first by name, a Fashion-MNIST group)
    from types import SimpleNamespace as NS

    from stabgap.analysis.groups import default_baseline

    def group(memory, dataset=None, rho=None):
        varied = {"memory_size": memory, "dataset": dataset or "mnist", "sam_rho": rho or 0}
        key = f"baseline_memory_size={memory}" + (f"_dataset={dataset}" if dataset else "")
        key += f"_sam_rho={rho}" if rho else ""
        return NS(key=key, base="baseline", varied=varied, runs=[1], imported=False)

    groups = [group(m, d, r) for d in ("fashion-mnist", None) for m in (50, 100)
              for r in (None, 0.05)]  # fmt: skip
    chosen, why = default_baseline(groups)
    assert chosen.key == "baseline_memory_size=50"
    assert why == ("the preset's baseline as close to its own settings as this study runs it, "
                   "with memory_size=50, the first of 2 as close; another with "
                   "--baseline")  # fmt: skip


def test_the_summary_reads_each_experiment_at_its_own_last_interval(tmp_path):
    # a sweep over streams of 3 and 5 tasks: each row's TTR and WC-ACC are its own last
    # interval's (they read n/a at the longest stream's), with its number of tasks beside
    from stabgap.studies.imported import import_curves
    from stabgap.study import summary_rows

    records = import_curves(_their_curves(tmp_path / "a.csv", ("short",)))
    records += import_curves(_their_curves(tmp_path / "b.csv", ("long",), tasks=5))
    header, *rows = summary_rows(records)
    assert {"tasks", "TTR_1,T %", "WC-ACC_T", "GD_1,5"} <= set(header)
    row = {cells[0]: dict(zip(header, cells, strict=True)) for cells in rows}
    assert row["short"]["tasks"] == "3" and row["long"]["tasks"] == "5"
    assert row["short"]["GD_1,5"] == "n/a" and row["short"]["WC-ACC_T"] != "n/a"
    assert row["short"]["TTR_1,T %"] != "n/a"
    header, *_ = summary_rows(records[:3])  # one length: the interval in the names
    assert "tasks" not in header and "WC-ACC_3" in header


def test_the_cost_tables_training_flops_leave_out_what_measures_a_run():
    """The report's cost table counts training: the analyses (drift, the head's probe, the
    gradient anatomy) and the evaluation measure a run and are left out, so a study with
    them on gives the ratios `stabgap cost` gives without them."""
    from stabgap.analysis.costs import training_flops
    from stabgap.core.config import RunConfig, to_dict
    from stabgap.cost.flops import run_cost

    plain = RunConfig(hidden=(16, 16), batches_per_task=5, batch_size=8, decay_lambda=1e-5)
    analysed = plain.replace(drift_every=2, head_every=2, gradients_window=3)
    costs = run_cost(analysed)
    assert costs["analyses"].flops > 0  # what the fix leaves out is there to leave out
    steps = sum(c.flops for part, c in costs.items() if part not in ("evaluation", "analyses"))
    assert training_flops(to_dict(analysed)) == steps == training_flops(to_dict(plain))
    # a plugin's field in the record of a run that did not use it costs nothing; a run that
    # trained with a remedy no loaded module defines cannot be counted here
    record = {**to_dict(plain), "rs_lambda": 0.0}
    assert training_flops(record, used=["nd"]) == steps
    assert np.isnan(training_flops(record, used=["nd", "smooth"]))


def test_the_cost_table_says_where_its_runs_were_timed_otherwise_or_on_a_busy_machine():
    # a baseline timed while other work held the cores beside a remedy timed alone, and a
    # group stacked: the table's ratios say little of the methods, and the note says why
    from types import SimpleNamespace as NS

    from stabgap.analysis.costs import timing_caveats

    def group(key, runnable, stacked=1):
        meta = {"device": "cpu", "threads": 2, "stacked_runs": stacked, "cpus": 2,
                "runnable": runnable, "train_time_s": 3.0}  # fmt: skip
        return NS(key=key, runs=[NS(metadata=dict(meta), loss=[1.0] * 30) for _ in range(3)])

    labels = {k: k for k in ("baseline", "nd", "sam")}
    calm = [group("baseline", 2), group("nd", 1.5)]
    assert timing_caveats(calm, labels) == ""  # 2 workers on 2 cores: busy, not shared
    text = timing_caveats([group("baseline", 4), group("nd", 2), group("sam", 2, 30)], labels)
    assert "runs stacked together (1, 30)" in text and "threads" not in text.split(".")[0]
    assert "3 of the 9 timed runs (baseline) trained while more threads wanted a core" in text
    assert "(up to 4 on 2 cores, their own among them)" in text
    # runs recorded before these counts were, or on a GPU, are not judged by a CPU's
    old = group("nd", 9)
    for r in old.runs:
        del r.metadata["runnable"]
    gpu = group("sam", 9)
    for r in gpu.runs:
        r.metadata["device"] = "cuda"
    assert timing_caveats([group("baseline", 1), old, gpu], labels) == ""


def test_the_protocol_sentence_speaks_of_stabgaps_other_groups_only_where_there_are_some():
    from types import SimpleNamespace as NS

    from stabgap.analysis.report import _protocol
    from stabgap.core.config import RunConfig, to_dict

    def group(imported):
        return NS(config=to_dict(RunConfig()), imported=imported, runs=[1])

    base, theirs, ours = group(False), group(True), group(False)
    assert "Each other group" not in _protocol(base, [base])
    assert "Each other group" not in _protocol(base, [base, theirs])  # the reference's
    assert "Each other group of stabgap's differs" in _protocol(base, [base, theirs, ours])
    assert _protocol(theirs, [theirs, base]) == ""  # an imported baseline: its source's config


def test_tests_csv_holds_the_within_group_correlations_as_the_report_adjusts_them():
    from types import SimpleNamespace as NS

    from stabgap.analysis.verdicts import Verdicts, family_rows
    from stabgap.statistics.comparison import Family
    from stabgap.statistics.correlation import WithinGroups

    why = NS(within={"drift": WithinGroups(0.46, 12, 4), "sharpness": WithinGroups(0.1, 3, 2)})
    v = Verdicts(Family([]), [], sparsity=NS(rho=WithinGroups(0.8, 9, 3), interval=3), why=why)
    inside, drift, sharpness = family_rows(v)
    assert inside["tests_adjusted_over"] == 1 and inside["estimate"] == 0.8
    assert inside["p_adjusted"] == pytest.approx(WithinGroups(0.8, 9, 3).p)
    # the why-the-gap section's two correlations, adjusted together (its sentence's words)
    assert drift["quantity"] == sharpness["quantity"] and drift["tests_adjusted_over"] == 2
    assert drift["p_adjusted"] == pytest.approx(2 * WithinGroups(0.46, 12, 4).p)
    assert (drift["ci_low_adjusted"], drift["ci_high_adjusted"]) == pytest.approx(
        WithinGroups(0.46, 12, 4, family=2).interval()
    )
    assert sharpness["p"] is None and sharpness["verdict"].startswith("no test: 2 runs beyond")
