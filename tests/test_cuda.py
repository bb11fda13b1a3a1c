"""On a GPU: the same science as on a CPU, stacked runs as one computation, nothing drawn
on the host. Skipped without CUDA; benchmarks/gpu_campaign.py runs them when a GPU is lent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import assert_a_stack_equals_its_copies, tiny_config

from stabgap.core.streams import build_stream
from stabgap.core.train import run_experiment, train_stack

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA absent: GPU path not run"),
]


@pytest.fixture(scope="module")
def gpu_stream(small_mnist):
    return build_stream(tiny_config(device="cuda"), "cuda", small_mnist)


def test_a_gpu_stack_equals_its_runs_alone_to_float_tolerance(gpu_stream):
    configs = [
        tiny_config(device="cuda", seed=s, decay_lambda=lam) for s, lam in ((1, 0), (2, 1e-3))
    ]
    stacked = train_stack(configs, gpu_stream)
    for c, together in zip(configs, stacked, strict=True):
        alone = run_experiment(c, gpu_stream)
        np.testing.assert_allclose(together.loss, alone.loss, rtol=1e-3)
        assert np.nanmax(np.abs(together.acc - alone.acc)) <= 2.0
        assert together.metadata["device"].startswith("cuda")
        assert together.metadata["device_reason"] == "asked for cuda"


def test_a_gpu_run_learns_as_on_a_cpu(small_mnist, gpu_stream):
    cpu_stream = build_stream(tiny_config(), "cpu", small_mnist)
    cpu = run_experiment(tiny_config(seed=3, device="cpu"), cpu_stream)
    gpu = run_experiment(tiny_config(seed=3, device="cuda"), gpu_stream)
    # Other batches (the GPU draws its own), so not equal; but the same learning.
    assert abs(gpu.acc[-1].mean() - cpu.acc[-1].mean()) < 15


def test_a_stream_on_the_wrong_device_is_refused_before_training(small_mnist):
    cpu_stream = build_stream(tiny_config(), "cpu", small_mnist)
    with pytest.raises(ValueError, match="build it with build_stream"):
        run_experiment(tiny_config(device="cuda"), cpu_stream)


def test_gpu_precision_settings_are_exactly_what_the_config_says(gpu_stream):
    fp32 = run_experiment(tiny_config(seed=4, device="cuda"), gpu_stream)
    tf32 = run_experiment(tiny_config(seed=4, device="cuda", precision="tf32"), gpu_stream)
    bf16 = run_experiment(tiny_config(seed=4, device="cuda", eval_precision="bf16"), gpu_stream)
    np.testing.assert_array_equal(bf16.loss, fp32.loss)  # evaluation never feeds training
    assert not np.array_equal(tf32.loss, fp32.loss) or torch.cuda.get_device_capability()[0] < 8


def test_the_stack_size_fits_the_gpus_memory():
    from stabgap.studies.presets import PAPER_BASE
    from stabgap.studies.sweep import default_stack_size

    wide = PAPER_BASE.replace(device="cuda", hidden=[4096, 4096])
    assert 1 <= default_stack_size(wide) <= 64


@pytest.mark.parametrize("model", ["resnet-batch", "resnet-group", "resnet-none", "vit"])
def test_the_new_models_stack_on_a_gpu_as_their_copies_alone(model):
    # The stacked ResNet (grouped convolutions, per-copy batch norm) and ViT (batched
    # attention) on the GPU, in IEEE float32 as a run computes them: each copy's logits,
    # hidden activations and gradients are those of the same network alone.
    from stabgap.core.device import cuda_matmul_precision
    from stabgap.core.models.resnet import StackedResNet
    from stabgap.core.models.vit import StackedViT

    def build(*seeds):
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        if model == "vit":
            return StackedViT((3, 8, 8), 4, 16, 2, 4, 10, generators, "cuda")
        return StackedResNet((3, 16, 16), 8, model.split("-")[1], 10, generators, "cuda")

    side = 8 if model == "vit" else 16
    x = torch.rand(2, 5, 3, side, side, device="cuda")
    with cuda_matmul_precision("ieee"):
        assert_a_stack_equals_its_copies(build(1, 2), [build(1), build(2)], x)
