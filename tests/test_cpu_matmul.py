"""The CPU's float32 products through MKL or, on request, oneDNN; bf16 evaluation through
oneDNN's fused op; and the kept freed memory."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT, mnist_dir, tiny_config
from torch.utils.flop_counter import FlopCounterMode

from stabgap.core.models import cpu_matmul, mlp
from stabgap.core.models.mlp import StackedMLP
from stabgap.core.streams import pixels
from stabgap.core.train import run_experiment

ONEDNN = cpu_matmul._ONEDNN_WORKS
needs_onednn = pytest.mark.skipif(not ONEDNN, reason="this torch build has no oneDNN linear op")


@pytest.fixture
def use(monkeypatch):
    """use('mkl') / use('onednn'): the library this test's products go through."""

    def choose(name: str) -> None:
        monkeypatch.setenv(cpu_matmul.ENV, name)
        cpu_matmul.library.cache_clear()

    yield choose
    monkeypatch.delenv(cpu_matmul.ENV, raising=False)
    cpu_matmul.library.cache_clear()


def test_mkl_is_the_default_and_onednn_is_chosen_by_name(use):
    assert cpu_matmul.library() == "mkl"
    use("onednn")
    assert cpu_matmul.library() == ("onednn" if ONEDNN else "mkl")


@needs_onednn
def test_torchs_flop_counter_counts_onednns_products(use):
    # stabgap.cost.flops is tested against that counter (tests/test_cost.py)
    use("onednn")
    x, w, b = torch.ones(5, 7), torch.ones(7, 3), torch.ones(1, 3)
    with FlopCounterMode(display=False) as counter:
        cpu_matmul.affine(x, w, b)
        cpu_matmul.product(x.T, torch.ones(5, 3))  # its transposed way: 3 < 7 columns
    assert counter.get_total_flops() == 2 * 5 * 7 * 3 * 2


# (rows, inner, columns): the MLP's shapes, a 10-class layer, and odd sizes.
SHAPES = [(64, 784, 256), (512, 2048, 10), (7, 33, 5), (1, 3, 1)]


def _error(got: torch.Tensor, exact: torch.Tensor) -> float:
    return (got.double() - exact).abs().max().item()


@needs_onednn
@pytest.mark.parametrize("shape", SHAPES)
def test_onednn_products_are_as_accurate_as_mkls(use, shape):
    # Against the same products in float64: oneDNN's float32 error is MKL's, to a small
    # factor (they sum in other orders), on the forward's product and the backward's two.
    m, k, n = shape
    g = torch.Generator().manual_seed(0)
    x, w, b, gy = (torch.randn(s, generator=g) for s in ((m, k), (k, n), (1, n), (m, n)))
    cases = {
        "affine": (
            lambda: cpu_matmul.affine(x, w, b),
            torch.addmm(b.double(), x.double(), w.double()),
        ),
        "input gradient": (lambda: cpu_matmul.product(gy, w.T), gy.double() @ w.double().T),
        "weight gradient": (lambda: cpu_matmul.product(x.T, gy), x.double().T @ gy.double()),
    }
    for name, (compute, exact) in cases.items():
        use("mkl")
        mkl = _error(compute(), exact)
        use("onednn")
        got = compute()
        assert got.is_contiguous() and got.shape == exact.shape, name
        assert _error(got, exact) <= 4 * mkl + 1e-6, name


@needs_onednn
def test_onednn_really_computes_the_products(use):
    # Only oneDNN's op is seen, no aten matmul: the products did not fall back to MKL.
    use("onednn")
    model = StackedMLP((20, 16, 5), [torch.Generator().manual_seed(1)])
    x = torch.rand(1, 8, 20)
    with torch.profiler.profile() as prof:
        model(x)[0].sum().backward()
    names = {e.name for e in prof.events()}
    assert "mkldnn::_linear_pointwise" in names
    assert not names & {"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"}


def test_mkl_on_request_is_torchs_own_matmul_to_the_bit(use):
    use("mkl")
    g = torch.Generator().manual_seed(2)
    x, w, b, gy = (torch.randn(s, generator=g) for s in ((9, 30), (30, 12), (1, 12), (9, 12)))
    assert torch.equal(cpu_matmul.affine(x, w, b), torch.addmm(b, x, w))
    assert torch.equal(cpu_matmul.product(x.T, gy), torch.mm(x.T, gy))


@pytest.mark.parametrize("library", ["onednn", "mkl"])
@pytest.mark.parametrize("copies", [1, 3])
def test_stacked_gradients_equal_autograds_of_plain_products(use, library, copies):
    if library == "onednn" and not ONEDNN:
        pytest.skip("this torch build has no oneDNN linear op")
    use(library)
    model = StackedMLP((12, 9, 4), [torch.Generator().manual_seed(s) for s in range(copies)])
    x = torch.rand(copies, 6, 12)
    logits, _ = model(x)
    (logits.square().sum()).backward()
    for r in range(copies):
        params = [*model.weights, *model.biases]
        w1, w2, b1, b2 = (p.detach()[r].clone().requires_grad_() for p in params)
        plain = (x[r] @ w1 + b1).relu() @ w2 + b2
        torch.testing.assert_close(logits[r], plain.detach())
        plain.square().sum().backward()
        got = [p.grad[r] for p in params]
        for mine, theirs in zip(got, (w1.grad, w2.grad, b1.grad, b2.grad), strict=True):
            torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("library", ["mkl", "onednn"])
def test_each_run_records_the_library_that_trained_it(use, library):
    use(library)
    result = run_experiment(tiny_config(batches_per_task=2))
    assert result.metadata["cpu_matmul"] == cpu_matmul.library()


def test_a_mistyped_library_is_one_line_before_any_work(tmp_path):
    out = tmp_path / "study"
    env = {**os.environ, cpu_matmul.ENV: "mlk", "STABGAP_DATA": str(mnist_dir())}
    done = subprocess.run(
        [sys.executable, "-m", "stabgap.cli", "run", "--preset", "quick", "--n-seeds", "1",
         "--out", str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "stabgap: error: STABGAP_CPU_MATMUL='mlk' is not a CPU matmul library (did you mean "
        "'mkl'?): set it to mkl or onednn, or unset it"
    ]
    assert not out.exists()


# A 64 MB block made and freed 30 times: the page faults of each, and the memory held.
_REALLOCATE = """
import resource, sys, torch
from stabgap.core.device import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
faults, held = [], []
for _ in range(30):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(16 * 2**20).sum()  # 64 MB of ones, freed at once
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    held.append(int(open("/proc/self/statm").read().split()[1]) * 4096)
print(sum(faults[-10:]), held[-1] - held[-11])  # over the last ten rounds alike
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_kept_memory_is_reused_without_page_faults():
    def last_ten(mode: str) -> tuple[int, int]:
        done = subprocess.run(
            [sys.executable, "-c", _REALLOCATE, mode], capture_output=True, text=True, check=True
        )
        faults, growth = map(int, done.stdout.split())
        return faults, growth

    # Given back to the kernel, 64 MB come back as 16,384 fresh 4 KB pages every time.
    assert last_ten("default")[0] >= 10 * 16_000
    # Kept, they are reused (after a few rounds, in which the small tensors made between
    # them settle in: here 2 to 5, once more than 9 in a CI run), and what the process holds
    # stops growing.
    faults, growth = last_ten("keep")
    assert faults < 1_000
    assert growth < 8 * 2**20


def test_a_study_resumed_with_another_library_says_so(tmp_path, capsys, use):
    from test_cli import TINY, run_cli

    def study(seeds: str) -> str:
        args = ("run", *TINY, "--seeds", seeds, "--experiments", "baseline")
        code, _, err = run_cli(capsys, *args, "--data-dir", mnist_dir(), "--out", tmp_path)
        assert code == 0, err
        return err

    use("mkl")
    assert "warning" not in study("1")
    use("onednn")
    if not ONEDNN:  # the request falls back to MKL: nothing is mixed
        assert "warning" not in study("1,2")
        return
    assert study("1,2").strip() == (
        f"stabgap: warning: {tmp_path} holds finished runs computed with mkl (1 run); the 1 "
        "new run will be computed with onednn. The two libraries sum in other orders, and "
        "runs of the two part by rounding: set STABGAP_CPU_MATMUL=mkl to keep this study to "
        "one library"
    )
    use("mkl")  # seed 1 is MKL's, seed 2 oneDNN's: a mixed study
    assert study("1,2,3").strip() == (
        f"stabgap: warning: {tmp_path} holds finished runs computed with mkl (1 run) and "
        "onednn (1 run); the 1 new run will be computed with mkl. The two libraries sum in "
        "other orders, and runs of the two part by rounding: compare only runs of one "
        "library (cpu_matmul in each run.json)"
    )
    # The folder's runs are counted, not only those of the command's own plan; and the
    # study's table names each run's library.
    assert "computed with mkl (2 runs) and onednn (1 run); the 1 new run" in study("4")
    with open(tmp_path / "table.csv", newline="") as f:
        by_seed = {row["seed"]: row["cpu_matmul"] for row in csv.DictReader(f)}
    assert by_seed == {"1": "mkl", "2": "onednn", "3": "mkl", "4": "mkl"}


def test_the_command_that_finishes_an_interrupted_study_keeps_its_library(use, tmp_path):
    from stabgap.cli import _interrupted
    from stabgap.studies.sweep import StudyInterrupted

    cut = StudyInterrupted(1, 4, tmp_path)
    use("onednn")
    expected = "onednn" if ONEDNN else "mkl"
    assert _interrupted(cut, ["run", "--seeds", "1,2"], tmp_path).endswith(
        f"to run the rest: STABGAP_CPU_MATMUL={expected} stabgap run --seeds 1,2 --out {tmp_path}"
    )
    use("mkl")
    os.environ.pop(cpu_matmul.ENV)  # unset, as most users leave it: nothing to repeat
    assert _interrupted(cut, ["run"], tmp_path).endswith(f": stabgap run --out {tmp_path}")


# Evaluation in bf16: oneDNN's bf16 matmul with the bias and ReLU fused, in place of
# autocast's batched matmul, its bias copy and its ReLU pass.

needs_bf16 = pytest.mark.skipif(
    not cpu_matmul.bf16_fused(), reason="this CPU has no native bf16 matmul in oneDNN"
)


def _bf16_pass(model: StackedMLP, x: torch.Tensor):
    bf16 = torch.autocast("cpu", dtype=torch.bfloat16)
    with torch.no_grad(), bf16, torch.profiler.profile() as prof:
        logits, hidden = model(x)
    return [logits, *hidden], {e.name for e in prof.events()}


@needs_bf16
@pytest.mark.parametrize("copies", [1, 3])
def test_bf16_evaluation_is_autocasts_result_to_the_bit(monkeypatch, copies):
    g = [torch.Generator().manual_seed(10 + r) for r in range(copies)]
    model = StackedMLP((784, 512, 384, 10), g)
    x = torch.rand(copies, 700, 784, generator=g[0])
    fused, names = _bf16_pass(model, x)
    assert "mkldnn::_linear_pointwise" in names
    assert not names & {"aten::baddbmm", "aten::addmm", "aten::relu_", "aten::clamp_min_"}
    monkeypatch.setattr(mlp, "BATCHED", True)  # autocast's batched matmul, as before
    autocast, names = _bf16_pass(model, x)
    assert "aten::baddbmm" in names
    for got, want in zip(fused, autocast, strict=True):
        assert got.dtype == want.dtype == torch.bfloat16
        assert torch.equal(got, want)


def test_bf16_training_keeps_autocasts_matmul_and_its_gradients():
    # The fused op has no gradient: with autograd on (training in bf16), autocast's stays.
    model = StackedMLP((20, 16, 5), [torch.Generator().manual_seed(1)])
    with torch.autocast("cpu", dtype=torch.bfloat16), torch.profiler.profile() as prof:
        logits, _ = model(torch.rand(1, 8, 20))
    logits.float().sum().backward()
    assert "aten::baddbmm" in {e.name for e in prof.events()}
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in model.weights)


def test_bf16_pixels_are_float32_pixels_rounded_to_bf16():
    every = torch.arange(256, dtype=torch.uint8)
    assert torch.equal(pixels(every, torch.bfloat16), pixels(every).to(torch.bfloat16))


@needs_bf16
def test_a_run_evaluated_in_bf16_is_the_same_with_autocasts_matmul(small_stream, monkeypatch):
    config = tiny_config(seed=3, eval_precision="bf16", activity_every=1)
    fused = run_experiment(config, small_stream)
    monkeypatch.setattr(cpu_matmul, "bf16_fused", lambda: False)
    autocast = run_experiment(config, small_stream)
    np.testing.assert_array_equal(fused.acc, autocast.acc)
    np.testing.assert_array_equal(fused.loss, autocast.loss)
    assert fused.activity.keys() == autocast.activity.keys() and fused.activity
    for name, values in fused.activity.items():
        np.testing.assert_array_equal(values, autocast.activity[name], name)
