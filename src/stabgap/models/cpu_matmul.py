"""The dense layers' float32 matrix products on a CPU: MKL's, or oneDNN's on request.

torch sends a CPU float32 matmul to MKL's sgemm. The same torch build also ships oneDNN
(for its bf16 matmuls and its convolutions), and reaches oneDNN's float32 matmul through
the op that torch.compile uses for linear layers, ``mkldnn::_linear_pointwise``. On the
2-core AMD EPYC of our measurements oneDNN runs the paper MLP's products 1.1 × faster
(the 10-class output layer 3-9 ×), a paper run's training 13 % faster
(``benchmarks/cpu_matmul.py``, docs/performance.md).

Both are IEEE float32 arithmetic, but they sum in other orders, so a run trained with one
is not the run trained with the other; and over 30 seeds at quick scale ND's final ACC came
out 0.19 p.p. higher with oneDNN (95 % CI +0.06 to +0.31; the baseline's metrics did not
move). Until that is understood, MKL stays the default, so that every study keeps comparing
runs computed alike; ``STABGAP_CPU_MATMUL=onednn`` chooses oneDNN for a whole study. Every
run records which library computed it (``cpu_matmul`` in its metadata). Other dtypes, and
builds without oneDNN's op, use torch's own matmul.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import torch

from stabgap.errors import StabgapError

LIBRARIES = ("mkl", "onednn")
ENV = "STABGAP_CPU_MATMUL"


@functools.cache
def library() -> str:
    """'mkl' or 'onednn': what computes the CPU's float32 dense layers in this process.

    MKL unless ``STABGAP_CPU_MATMUL=onednn`` asks for oneDNN and this build has its op
    ('mkl' names torch's own CPU matmul, whatever BLAS the build has).
    """
    asked = os.environ.get(ENV, "mkl").strip().lower()
    if asked not in LIBRARIES:
        raise StabgapError(
            f"{ENV}={asked!r} is not a CPU matmul library: set it to mkl or onednn, or unset it"
        )
    if asked == "onednn" and _ONEDNN_WORKS:
        return "onednn"
    return "mkl"


def _onednn_works() -> bool:
    """Whether this build has oneDNN's linear op and it computes a known product."""
    try:
        got = _linear(torch.ones(2, 3), torch.full((4, 3), 2.0), None)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
    return torch.equal(got, torch.full((2, 4), 6.0))


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """x @ weight.T + bias through oneDNN: x (B, in), weight (out, in), bias (out,)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [None], "")


def _onednn(x: torch.Tensor) -> bool:
    # Under torch.compile, Inductor chooses the kernels itself (it cannot lower this op
    # as called here).
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and library() == "onednn"
        and not _compiling()
    )


def _compiling() -> bool:
    is_compiling = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(is_compiling and is_compiling())


def affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """x @ w + b as a new tensor: x (B, in), w (in, out), b (1, out)."""
    if _onednn(x):
        return _linear(x, w.T, b.view(-1))  # w.T: a view, which oneDNN reads as it is
    return torch.addmm(b, x, w)


def product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b as a new contiguous tensor (a and b may be transposed views)."""
    if not _onednn(a):
        return torch.mm(a, b)
    if b.shape[1] < a.shape[0]:
        # oneDNN is slow at few output columns (the gradient of the 10-class layer's
        # weights: 2048 × 10, 5 × slower than its transpose), so compute (bᵀaᵀ)ᵀ there.
        return _linear(b.T, a, None).T.contiguous()
    return _linear(a, b.T, None)


def per_copy(make: Callable[[int], torch.Tensor], copies: int) -> torch.Tensor:
    """The (R, ...) tensor of R per-copy results ``make(r)``; one copy's is not copied."""
    if copies == 1:
        return make(0).unsqueeze_(0)  # in place: a view would trouble autograd's checks
    return torch.stack([make(r) for r in range(copies)])


def _count_linear_flops() -> None:
    """Let torch's FLOP counter count oneDNN's products as it counts its own matmuls
    (``stabgap.cost`` is tested against that counter); left alone where torch has no
    such counter or already counts this op."""
    try:
        from torch.utils.flop_counter import flop_registry, register_flop_formula

        op = torch.ops.mkldnn._linear_pointwise
    except (ImportError, AttributeError, RuntimeError):
        return
    if op in flop_registry:
        return

    @register_flop_formula(op)
    def _(x_shape, w_shape, *_, **__) -> int:
        return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]  # (…, in) @ (out, in)ᵀ


_count_linear_flops()
# Tried once, at import: tried at the first product instead, the probe would be counted by
# whatever FLOP counter or dispatch mode that product runs under.
_ONEDNN_WORKS = _onednn_works()
