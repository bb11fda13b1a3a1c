"""The GPU campaign's tiny run on a CPU: every step runs and writes its figures."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, mnist_dir


def test_the_campaign_runs_every_step_at_a_tiny_scale(tmp_path):
    out = tmp_path / "campaign"
    env_data = {"STABGAP_DATA": str(mnist_dir())}
    import os

    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_campaign.py"), "--tiny", "--compile",
         "--out", str(out)],
        capture_output=True, text=True, timeout=900, env={**os.environ, **env_data},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "campaign.json").read_text())["steps"]
    assert list(results) == [
        "machine",
        "cuda tests",
        "profile (the poster's Table 1 cost columns)",
        "stacking",
        "Table 1 study (baseline + ND, paper protocol)",
        "Evaluation precision",
        "all 16 experiments",
        "torch.compile",
        "done",
    ]
    assert results["profile (the poster's Table 1 cost columns)"]["returncode"] == 0
    assert [row["R"] for row in results["stacking"]["rows"]] == [1, 2]
    table1 = results["Table 1 study (baseline + ND, paper protocol)"]
    assert len(table1["fp32"]["runs"]) == len(table1["tf32"]["runs"]) == 4
    evaluation = results["Evaluation precision"]
    assert len(evaluation["fp32, eval bf16"]["runs"]) == len(evaluation["fp32, eval tf32"]["runs"])
    markdown = (out / "campaign.md").read_text()
    assert "fp32, eval bf16 − fp32, paired over 4 runs: GD_1,3" in markdown
    assert "## stacking" in markdown and "| fp32, baseline | 2 |" in markdown
    assert len(list((out / "table1-fp32").glob("*/run.json"))) == 4
