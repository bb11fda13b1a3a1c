"""The presets beyond the poster's: each runs through the CLI and gets a complete report."""

import csv
from pathlib import Path

import pytest
from test_cli import run_cli

from stabgap.studies.presets import (
    PRESETS,
    REMEDY_CHOSEN,
    REMEDY_STRENGTHS,
    get_preset,
    remedy_name,
)
from stabgap.studies.records import iter_runs

NEEDS_FASHION = pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist (CI installs it)",
)
SMALL = ["--batches-per-task", "8", "--eval-subset", "60", "--seeds", "1,2,3", "--no-plot"]


def test_every_experiment_of_every_preset_is_a_valid_config():
    for preset in PRESETS.values():
        for name in preset.experiments:
            preset.config(name)  # raises on a field that does not apply or a bad value
        assert set(preset.default_experiments) <= set(preset.experiments)


def test_a_network_swapped_in_drops_the_presets_settings_for_the_old_one_not_the_users():
    """--model vit on the quick preset: the preset's MLP widths go back to their default
    (the ViT has none); widths the user gives are still refused, in one line."""
    from stabgap.core.config import FIELDS
    from stabgap.errors import StabgapError

    preset = get_preset("quick")
    assert preset.config("baseline").hidden != FIELDS["hidden"].default
    vit = preset.config("baseline", {"model": "vit"})
    assert vit.hidden == FIELDS["hidden"].default and vit.lr == preset.config("baseline").lr
    with pytest.raises(StabgapError, match="hidden applies to model mlp, model cnn only"):
        preset.config("baseline", {"model": "vit", "hidden": [64]})


def test_the_remedies_preset_runs_each_chosen_strength_by_default():
    preset = get_preset("remedies")
    for remedy, value in REMEDY_CHOSEN.items():
        assert value in REMEDY_STRENGTHS[remedy][2]
        assert remedy_name(remedy, value) in preset.default_experiments
    assert preset.n_seeds == 5
    assert remedy_name("nd", 1e-4) == "nd-1e-4" and remedy_name("ema", 0.99) == "ema-0.99"


def test_gv_example_is_the_protocol_of_the_stability_gap_example():
    c = get_preset("gv-example").config("baseline")
    assert (c.rotations, c.hidden) == ((0.0, 80.0, 160.0), (400, 400))
    assert (c.optimizer, c.lr) == ("sgd", 0.1)
    assert c.reset_optimizer and c.replay == "full" and c.batch_order == "reshuffle"
    assert [c.task_batch_size(k) for k in (1, 2, 3)] == [128, 256, 384] and c.drop_last
    assert (c.batches_per_task, c.eval_every, c.eval_subset) == (500, 1, 2000)
    # the script tests batches of 512 until it has at least 2,000 images: 2,048 in every task
    assert [c.task_eval_size(k, 10_000) for k in (1, 2, 3)] == [2048, 2048, 2048]


@pytest.mark.parametrize(
    "preset,extra,tasks",
    [
        ("quick-permuted", [], 3),
        ("quick-split", [], 5),
        pytest.param("quick-fashion-split", [], 5, marks=NEEDS_FASHION),
        ("quick-cnn", ["--channels", "2,4", "--hidden", "16"], 3),
        ("gv-example", ["--experiments", "baseline,nd", "--hidden", "32,32"], 3),
    ],
)
def test_each_stream_preset_runs_and_is_reported(tmp_path, capsys, preset, extra, tasks):
    out, report = tmp_path / "runs", tmp_path / "report"
    code, _, err = run_cli(capsys, "run", "--preset", preset, *SMALL, *extra, "--out", out)
    assert code == 0, err
    runs = list(iter_runs(out))
    assert len(runs) == 6 and {r.acc.shape[1] for r in runs} == {tasks}
    code, _, err = run_cli(capsys, "report", out, "--out", report)
    assert code == 0, err
    text = (report / "report.md").read_text()
    assert f"GD_1,{tasks}" in text and "**nd** against baseline" in text
    with open(report / "groups.csv") as f:
        assert [row["group"] for row in csv.DictReader(f)] == ["baseline", "nd"]


def study_report(capsys, tmp_path, preset: str, chosen: list[str], batches: int = 8):
    """`chosen` experiments of `preset` at a small scale, run and reported through the CLI:
    report.md's text and the report's folder."""
    out, report = tmp_path / "runs", tmp_path / "report"
    small = [*SMALL, "--hidden", "32,32", "--experiments", ",".join(chosen)]
    small += ["--batches-per-task", str(batches)]  # (the last one given wins)
    code, _, err = run_cli(capsys, "run", "--preset", preset, *small, "--out", out)
    assert code == 0, err
    code, _, err = run_cli(capsys, "report", out, "--out", report)
    assert code == 0, err
    return (report / "report.md").read_text(), report


def test_a_remedies_study_reports_cost_and_checks_the_reported_findings(tmp_path, capsys):
    chosen = ["baseline", "sgd", "momentum-0.9", "sgd-momentum", "lr-1e-4", "low-lr-50", "lpr-1"]
    # long enough a task for every group to learn task 1: the findings are not checked on a
    # group that did not (its gap is noise around chance)
    text, report = study_report(capsys, tmp_path, "remedies", chosen, batches=100)
    # The findings as reported: momentum at SGD's fixed rate; a smaller constant rate (not
    # a lowered rate after the switch, which is a remedy without that claim); LPR.
    assert "**momentum-0.9** against sgd (they differ in momentum only)" in text
    assert "**lr-1e-4** against baseline (they differ in lr only)" in text
    assert "**lpr-1** against baseline (they differ in lpr_omega only)" in text
    # SGD with momentum 0.9 at 0.01 and at 0.1 differ in the rate alone: one more such pair
    assert "**sgd-momentum** against momentum-0.9 (they differ in lr only)" in text
    assert (
        text.count("Reported on this protocol (") == 4
        and "**low-lr-50** against baseline (" not in text
    )
    with open(report / "cost.csv") as f:
        cost = {row["group"]: row for row in csv.DictReader(f)}
    assert cost["baseline"]["time per batch (× baseline)"] == "1 (the baseline)"
    # LPR's preconditioner products cost FLOPs; SGD's update fewer than Adam's.
    assert float(cost["lpr-1"]["training FLOPs (× baseline)"]) > 1
    assert float(cost["sgd"]["training FLOPs (× baseline)"]) < 1
    assert float(cost["low-lr-50"]["training FLOPs (× baseline)"]) == 1


def test_the_methods_presets_run_each_method_at_both_memory_sizes_by_default():
    from stabgap.studies.presets import METHOD_CHOSEN, METHOD_STRENGTHS, strength_name

    for name, stream in (("methods", "split"), ("methods-rotated", "rotated")):
        preset = get_preset(name)
        assert preset.config("er-200").stream == stream
        chosen = preset.default_experiments
        for method in ("er", "er-ace", "agem", "er-agem"):
            assert {f"{method}-200", f"{method}-2000"} <= set(chosen)
        for method, (_, strengths) in METHOD_STRENGTHS.items():
            picked = strength_name(method, strengths[METHOD_CHOSEN[stream][method]])
            assert any(e.startswith(picked) for e in chosen), picked
        er_all = preset.config("er-all")  # keeps every example a run offers it
        assert er_all.memory_size == er_all.total_batches * er_all.batch_size
        nd = preset.config("nd-er-200")  # a remedy on a method
        assert nd.decay_lambda > 0 and nd.replay == "memory" and nd.memory_size == 200
        assert preset.config("agem-200").memory == "task-balanced"
        assert preset.config("er-agem-200").replay == "memory"


def test_a_methods_study_runs_and_tests_the_methods_findings(tmp_path, capsys):
    chosen = ["er-200", "er-ace-200", "er-agem-200", "der-0.3-200", "ewc-1000", "lwf-1"]
    text, report = study_report(capsys, tmp_path, "methods", chosen)
    assert "Baseline group: **er-200** (the preset's baseline" in text
    assert "**er-ace-200** against er-200 (they differ in er_ace only)" in text
    assert "**er-agem-200** against er-200 (they differ in agem only)" in text
    for group in chosen:  # every method's gap against its own noise floor
        assert f"Ours, **{group}**: GD_1,2 minus what evaluation noise alone" in text
    assert "## The replay memories" in text and (report / "memory.csv").exists()
    # LwF without replay forgets split MNIST's first pair: its last gap measures nothing
    assert "**lwf-1**: task 1 was forgotten before the last switch" in text
    assert "**er-200**: task 1 was forgotten" not in text
