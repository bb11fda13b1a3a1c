"""Tests for the tidy tables, summaries over seeds and Table 1.

(stabgap.analysis.tables, stabgap.statistics.summary, stabgap.analysis.table1)

Runs are synthetic RunRecord objects built in memory (no training): three tasks, three points
per interval, with a task-1 curve whose gap depth and recovery are set by hand.
"""

from __future__ import annotations

import csv
import io
import math
import random

import numpy as np
import pytest

from stabgap.analysis.table1 import table1
from stabgap.analysis.tables import BASE_COLUMNS, read_table, tidy_rows, write_table
from stabgap.core.config import FIELDS, RunConfig, to_dict
from stabgap.errors import StabgapError
from stabgap.metrics import compute_metrics
from stabgap.statistics.summary import GroupSummary, format_mean_std, summarize
from stabgap.studies.records import RunRecord

NAN = math.nan
B3 = (3, 6, 9)
T_975_DF2 = 4.302652729911275  # Student t, 97.5 % quantile, 2 degrees of freedom (tables: 4.303)
T_975_DF3 = 3.182446305284263  # ... 3 degrees of freedom (tables: 3.182)


def make_acc(gd13: float, recover: bool = True, final: tuple[float, float] = (90.0, 96.0)):
    """Accuracy (9 points, 3 tasks) with GD_{1,3} = gd13 (> 1) and TTR_{1,3} 33.3 % or undefined.

    Task 1 ends interval 2 at 92; interval 3 drops to 92 - gd13 at its first point, then gets
    back to 92 at the next point (TTR = 1/3 of the interval) or stays at 91 (never recovers).
    The final ACC is (last task-1 value + final[0] + final[1]) / 3.
    """
    t1 = [80, 85, 90, 88, 90, 92, 92 - gd13, 92 if recover else 91, 93 if recover else 91]
    t2 = [NAN] * 3 + [40, 70, 88, 80, 85, final[0]]
    t3 = [NAN] * 6 + [30, 60, final[1]]
    return np.column_stack([t1, t2, t3]).astype(np.float64)


def make_record(
    experiment: str,
    seed: int,
    gd13: float,
    recover: bool = True,
    diverged: bool = False,
    decay_lambda: float = 0.0,
) -> RunRecord:
    config = RunConfig(seed=seed, decay_lambda=decay_lambda, batches_per_task=3)
    return RunRecord(
        name=f"{experiment}-s{seed}",
        experiment=experiment,
        config=to_dict(config),
        acc=make_acc(gd13, recover),
        boundaries=B3,
        eval_steps=np.arange(9),
        loss=None,
        metadata={"seed": seed, "device": "cpu"},
        diverged=diverged,
    )


def records() -> list[RunRecord]:
    return [
        make_record("baseline", 1, 16.0),
        make_record("baseline", 2, 15.0, recover=False),
        make_record("baseline", 3, 18.0),
        make_record("nd", 1, 5.0, decay_lambda=1e-5),
        make_record("nd", 2, 6.0, decay_lambda=1e-5),
        make_record("nd", 3, 8.0, decay_lambda=1e-5),
        make_record("nd", 4, 30.0, diverged=True, decay_lambda=1e-5),
    ]


def pick(rows, **where):
    return [r for r in rows if all(r[k] == v for k, v in where.items())]


def find(summaries, experiment, metric, task=None, interval=None) -> GroupSummary:
    [s] = [
        s
        for s in summaries
        if (s.experiment, s.metric, s.task, s.interval) == (experiment, metric, task, interval)
    ]
    return s


# --------------------------------------------------------------------------------------------
# tidy_rows
# --------------------------------------------------------------------------------------------


def test_synthetic_curve_has_the_intended_metrics():
    by_name = {(m.metric, m.task, m.interval): m.value for m in compute_metrics(make_acc(7), B3)}
    assert by_name[("gap_depth", 1, 3)] == 7.0
    assert by_name[("time_to_recover", 1, 3)] == pytest.approx(100 / 3)
    assert by_name[("avg_acc_final", None, None)] == pytest.approx((93 + 90 + 96) / 3)
    undefined = compute_metrics(make_acc(7, recover=False), B3)
    assert [m.value for m in undefined if m.metric == "time_to_recover" and m.task == 1][1] is None


def test_tidy_rows_one_row_per_metric_with_config_columns():
    rec = make_record("nd", 7, 5.0, decay_lambda=1e-5)
    rows = tidy_rows([rec])
    assert len(rows) == len(rec.metrics)
    row = pick(rows, metric="gap_depth", task=1, interval=3)[0]
    assert list(row)[: len(BASE_COLUMNS)] == list(BASE_COLUMNS)
    assert (row["run"], row["experiment"], row["seed"], row["diverged"]) == (
        "nd-s7",
        "nd",
        7,
        False,
    )
    assert row["value"] == 5.0
    # Every config field is a column ("seed" once), lists flattened to strings.
    assert set(FIELDS) <= set(row)
    assert row["hidden"] == "2048,2048"
    assert row["rotations"] == "0.0,80.0,160.0"
    assert row["decay_lambda"] == 1e-5
    assert row["data_dir"] is None
    # A metric over all tasks has task and interval None.
    assert pick(rows, metric="avg_acc_final")[0]["task"] is None


def test_tidy_rows_seed_falls_back_to_config():
    rec = make_record("nd", 7, 5.0)
    rec = RunRecord(**{**rec.__dict__, "metadata": {}})
    assert {r["seed"] for r in tidy_rows([rec])} == {7}


def test_diverged_run_keeps_its_rows_with_undefined_values():
    rec = make_record("nd", 4, 30.0, diverged=True)
    rows = tidy_rows([rec])
    assert len(rows) == len(rec.metrics)
    assert all(r["diverged"] is True and r["value"] is None for r in rows)


# --------------------------------------------------------------------------------------------
# write_table / read_table
# --------------------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path):
    rows = tidy_rows(records())
    written = write_table(rows, tmp_path / "sub" / "metrics")
    assert written[0] == tmp_path / "sub" / "metrics.csv"
    back = read_table(written[0])
    assert back == rows  # types too: ints, floats (exactly), bools, None
    # No temporary file is left behind.
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == sorted(p.name for p in written)


def test_csv_has_empty_cells_for_undefined(tmp_path):
    rows = tidy_rows([make_record("baseline", 2, 15.0, recover=False)])
    [path] = [p for p in write_table(rows, tmp_path / "t") if p.suffix == ".csv"]
    table = list(csv.DictReader(io.StringIO(path.read_text())))
    [ttr] = [
        r
        for r in table
        if r["metric"] == "time_to_recover" and (r["task"], r["interval"]) == ("1", "3")
    ]
    assert ttr["value"] == ""
    assert ttr["hidden"] == "2048,2048"


def test_write_table_overwrites_atomically(tmp_path):
    write_table([{"a": 1}], tmp_path / "t")
    write_table([{"a": 2, "b": None}], tmp_path / "t")
    assert (tmp_path / "t.csv").read_text() == "a,b\n2,\n"


def test_parquet_round_trip(tmp_path):
    pytest.importorskip("pyarrow", reason="needs the parquet extra: pip install -e '.[parquet]'")
    rows = tidy_rows(records())
    written = write_table(rows, tmp_path / "metrics")
    assert [p.suffix for p in written] == [".csv", ".parquet"]
    assert read_table(written[1]) == rows


# --------------------------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------------------------


def test_summarize_hand_computed_mean_std_ci():
    summaries = summarize(tidy_rows(records()))
    gd = find(summaries, "nd", "gap_depth", 1, 3)
    # values 5, 6, 8 (the diverged seed 4 is left out): mean 19/3,
    # sample variance ((5-19/3)^2 + (6-19/3)^2 + (8-19/3)^2) / 2 = (16/9 + 1/9 + 25/9) / 2 = 7/3
    assert gd.n == 3
    assert gd.mean == pytest.approx(19 / 3)
    assert gd.std == pytest.approx(math.sqrt(7 / 3))
    half = T_975_DF2 * math.sqrt(7 / 3) / math.sqrt(3)
    assert gd.ci95_low == pytest.approx(19 / 3 - half)
    assert gd.ci95_high == pytest.approx(19 / 3 + half)
    assert gd.seeds == (1, 2, 3)
    assert gd.values == (5.0, 6.0, 8.0)
    assert (gd.n_undefined, gd.n_diverged, gd.undefined_seeds) == (1, 1, (4,))


def test_summarize_leaves_out_and_counts_undefined_ttr():
    ttr = find(summarize(tidy_rows(records())), "baseline", "time_to_recover", 1, 3)
    assert (ttr.n, ttr.n_undefined, ttr.n_diverged) == (2, 1, 0)
    assert ttr.undefined_seeds == (2,)
    assert ttr.mean == pytest.approx(100 / 3)
    assert ttr.std == 0.0
    assert ttr.by_seed() == {1: pytest.approx(100 / 3), 3: pytest.approx(100 / 3), 2: None}


def test_summarize_against_independent_numpy():
    rng = np.random.default_rng(0)
    values = rng.normal(10, 2, size=4)
    rows = [{"g": "x", "seed": i, "value": float(v)} for i, v in enumerate(values)]
    [s] = summarize(rows, by=("g",))
    assert s.mean == pytest.approx(np.mean(values))
    assert s.std == pytest.approx(np.std(values, ddof=1))
    assert s.ci95_high - s.mean == pytest.approx(T_975_DF3 * np.std(values, ddof=1) / 2)


def test_summarize_small_groups_give_nan():
    rows = [
        {"g": "one", "seed": 1, "value": 3.0},
        {"g": "none", "seed": 1, "value": None},
        {"g": "none", "seed": 2, "value": NAN},
    ]
    one, none = (summarize(rows, by=("g",))[i] for i in (1, 0))
    assert one.get("g") == "one" and none.get("g") == "none"
    assert one.mean == 3.0 and math.isnan(one.std) and math.isnan(one.ci95_low)
    assert none.n == 0 and none.n_undefined == 2 and math.isnan(none.mean)


def test_summarize_order_is_deterministic():
    rows = tidy_rows(records())
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    assert summarize(shuffled) == summarize(rows)
    keys = [(s.experiment, s.metric) for s in summarize(rows)]
    assert keys == sorted(keys)


def test_by_seed_refuses_duplicate_seeds():
    rows = [{"g": "x", "seed": 1, "value": 1.0}, {"g": "x", "seed": 1, "value": 2.0}]
    [s] = summarize(rows, by=("g",))
    with pytest.raises(StabgapError, match="more than once"):
        s.by_seed()


# --------------------------------------------------------------------------------------------
# Formatting and Table 1
# --------------------------------------------------------------------------------------------


def test_format_mean_std():
    assert format_mean_std(16.3612, 1.4401, 2) == "16.36 ± 1.44"
    assert format_mean_std(97.668, 0.168, 1) == "97.7 ± 0.2"
    assert format_mean_std(5.0, NAN, 2) == "5.00 ± n/a"
    assert format_mean_std(NAN, NAN) == "n/a"


COST = {
    "baseline": {"CPU time (ms) ↓": "18.01 ± 0.61", "CUDA time (ms) ↓": "14.60 ± 0.16"},
    "nd": {"CPU time (ms) ↓": "19.21 ± 1.20", "CUDA time (ms) ↓": "15.85 ± 0.48"},
}


def test_table1_cells():
    t = table1(summarize(tidy_rows(records())), cost=COST)
    # Final ACC: (93 + 90 + 96) / 3 = 93 for seeds 1 and 3, (91 + 90 + 96) / 3 for seed 2.
    acc = [93.0, 277 / 3, 93.0]
    assert t.rows[0] == (
        "Baseline",
        "16.3 ± 1.5",  # 16, 15, 18
        "33.3 ± 0.0 (1 of 3 never recovered; median 33.3)",  # seed 2 never recovers
        f"{np.mean(acc):.2f} ± {np.std(acc, ddof=1):.2f}",  # 92.78 ± 0.38
        "18.01 ± 0.61",
        "14.60 ± 0.16",
    )
    assert t.rows[1][:2] == ("ND", "6.3 ± 1.5 (1 left out)")  # the diverged seed
    assert t.header()[:4] == ["Model", "GD_{1,3} (p.p.) ↓", "TTR_{1,3} (%) ↓", "ACC_{AVG,3} (%) ↑"]


def test_table1_markdown():
    md = table1(summarize(tidy_rows(records())), cost=COST).markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| Model | GD<sub>1,3</sub> (p.p.) ↓ | TTR<sub>1,3</sub> (%) ↓")
    assert lines[0].endswith("| CPU time (ms) ↓ | CUDA time (ms) ↓ |")
    assert lines[1] == "| --- | --- | --- | --- | --- | --- |"
    assert lines[2].startswith(
        "| Baseline | 16.3 ± 1.5 | 33.3 ± 0.0 (1 of 3 never recovered; median 33.3) | "
    )
    assert len(lines) == 4


def test_table1_csv_parses_back():
    text = table1(summarize(tidy_rows(records())), digits={"gd": 2}).csv()
    header, *body = list(csv.reader(io.StringIO(text)))
    assert header == ["Model", "GD_{1,3} (p.p.) ↓", "TTR_{1,3} (%) ↓", "ACC_{AVG,3} (%) ↑"]
    assert body[0][:2] == ["Baseline", "16.33 ± 1.53"]
    assert [r[0] for r in body] == ["Baseline", "ND"]


def test_table1_latex():
    tex = table1(summarize(tidy_rows(records())), cost=COST).latex()
    assert tex.startswith("\\begin{tabular}{lccccc}\n\\toprule\n")
    assert "GD$_{1,3}$ (p.p.) $\\downarrow$" in tex
    assert "TTR$_{1,3}$ (\\%) $\\downarrow$" in tex
    assert (
        "Baseline & 16.3 $\\pm$ 1.5 & 33.3 $\\pm$ 0.0 (1 of 3 never recovered; median 33.3) &"
        in tex
    )
    assert tex.rstrip().endswith("\\bottomrule\n\\end{tabular}")
    # a λ sweep's labels, in what plain pdflatex reads (with booktabs for the rules)
    from stabgap.analysis.table1 import _latex_escape

    assert _latex_escape("λ=0.0001, ρ=0.05 ×2") == "$\\lambda$=0.0001, $\\rho$=0.05 $\\times$2"
    assert all(ord(ch) < 128 for ch in _latex_escape("λαβργω≈×∞±↓↑−"))


def test_table1_interval_task_and_missing_experiment():
    summaries = summarize(tidy_rows(records()))
    t = table1(summaries, experiments=("baseline", "nd", "ghost"), interval=2)
    assert t.header()[1] == "GD_{1,2} (p.p.) ↓"
    assert t.header()[3] == "ACC_{AVG,3} (%) ↑"  # ACC stays the final one
    assert t.rows[0][1] == "2.0 ± 0.0"  # GD_{1,2} = 90 - 88 in every run
    assert t.rows[2] == ("ghost", "n/a", "n/a", "n/a")
    with pytest.raises(StabgapError, match="no gap of task 1 in interval 1"):
        table1(summaries, interval=1)
    assert table1(summaries, task=2).header()[1] == "GD_{2,3} (p.p.) ↓"
    assert table1(summaries).render("latex") == table1(summaries).latex()
    with pytest.raises(StabgapError, match="unknown table format"):
        table1(summaries).render("html")
