"""The GPU campaign's tiny run on a CPU: every step runs and writes its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, mnist_dir

SWEEP = "all 16 experiments, modelled from their stacks"


@pytest.mark.slow
def test_the_campaign_runs_every_step_at_a_tiny_scale(tmp_path):
    out = tmp_path / "campaign"
    env_data = {"STABGAP_DATA": str(mnist_dir())}
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
        "kernels by kind",
        "all 16 experiments, modelled from their stacks",
        "all 16 experiments",
        "torch.compile",
        "done",
    ]
    assert results["profile (the poster's Table 1 cost columns)"]["returncode"] == 0
    assert [row["R"] for row in results["stacking"]["rows"]] == [1, 2]
    table1 = results["Table 1 study (baseline + ND, paper protocol)"]
    assert len(table1["fp32"]["runs"]) == 4  # TF32 is CUDA's: not run on a CPU, and said so
    evaluation = results["Evaluation precision"]
    assert len(evaluation["fp32, eval bf16"]["runs"]) == 4 and "tf32" not in str(evaluation)
    markdown = (out / "campaign.md").read_text()
    assert "(TF32 exists on CUDA only: [('tf32', 'tf32')] not run on cpu.)" in markdown
    assert "fp32, eval bf16 − fp32, paired over 4 runs: GD_1,3" in markdown
    assert "## stacking" in markdown and "| fp32, baseline | 2 |" in markdown
    assert len(list((out / "table1-fp32").glob("*/run.json"))) == 4


def test_the_breakdown_runs_alone_at_a_tiny_scale(tmp_path):
    """gpu_breakdown.py: kernel times by kind (none on a CPU) and the sweep's modelled time."""
    out = tmp_path / "breakdown"
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_breakdown.py"), "--tiny",
         "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "STABGAP_DATA": str(mnist_dir())},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    steps = json.loads((out / "breakdown.json").read_text())["steps"]
    assert list(steps) == ["machine", "kernels by kind", SWEEP, "done"]
    model = steps[SWEEP]
    # baseline, nd and no-replay × 2 seeds, one run a stack on a CPU; each stack's time is
    # its fixed cost plus its batches at the measured cost per batch, so more than nothing.
    assert model["stacks"] == [1] * 6 and model["modelled_s"] > 0
    assert "modelled time" in (out / "breakdown.md").read_text()


def test_kernels_are_sorted_into_kinds_by_name():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from gpu_breakdown import kernel_kind

    assert kernel_kind("void cutlass::Kernel2<cutlass_80_simt_sgemm_256x128_8x4_nn_align1>") == (
        "matmul"
    )
    assert kernel_kind("Memcpy HtoD (Pageable -> Device)") == "copy"
    assert kernel_kind("void at::native::sbtopk::gatherTopK<float, unsigned int, 2, false>") == (
        "sort/top-k"
    )
    assert kernel_kind("multi_tensor_apply_kernel<FusedAdamMathFunctor>") == "optimiser"
