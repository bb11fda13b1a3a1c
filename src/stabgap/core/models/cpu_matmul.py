"""The dense layers' float32 matrix products on a CPU: MKL's, or oneDNN's on request.

torch sends a CPU float32 matmul to MKL's sgemm. The same torch build also ships oneDNN
(for its bf16 matmuls and its convolutions), and reaches oneDNN's float32 matmul through
the op that torch.compile uses for linear layers, ``mkldnn::_linear_pointwise``. On the
2-core AMD EPYC of our first measurements oneDNN ran the paper MLP's products 1.1 × faster
(the 10-class output layer 3-9 ×), a paper run's training 11-12 % faster; on a later one
(CPU family 26, AVX-512) 2.1 ×: there MKL does not reach the CPU's speed
(``benchmarks/cpu_matmul.py products``, docs/performance.md).

Both are IEEE float32 arithmetic, but they sum in other orders, so a run trained with one
is not the run trained with the other, as on two machines. Paired over seeds at quick scale
no metric moves beyond the noise (ND over 60 seeds, the baseline over 15; an ACC shift seen
on the first 30 seeds did not come back on 30 fresh ones). MKL stays the default, so that
studies begun with it keep comparing runs computed alike; ``STABGAP_CPU_MATMUL=onednn``
chooses oneDNN for a whole study. Every run records which library computed it
(``cpu_matmul`` in its metadata). Other dtypes, and builds without oneDNN's op, use torch's
own matmul.

Evaluation in bf16 (``eval_precision='bf16'``) is oneDNN's in either case: torch computes a
CPU bf16 matmul with oneDNN. :func:`bf16_affine` calls that matmul directly, with the bias
and the ReLU done in its output pass, and gives autocast's numbers to the bit without its
separate bias copy and ReLU pass over each (images × width) activation.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable

import torch

from stabgap.errors import StabgapError, did_you_mean

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
            f"{ENV}={asked!r} is not a CPU matmul library{did_you_mean(asked, LIBRARIES)}: "
            "set it to mkl or onednn, or unset it"
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


def _linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, then: str = "none"
) -> torch.Tensor:
    """x @ weight.T + bias through oneDNN, then `then` ('none' or 'relu') on each output:
    x (B, in), weight (out, in), bias (out,)."""
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, then, [None], "")


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


def bf16_affine(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, relu: bool) -> torch.Tensor:
    """x @ w + b, then ReLU if `relu`, in bf16 as autocast computes it: x (B, in), w (in, out),
    b (1, out), each cast to bf16 (as autocast casts them), the products summed in float32
    and rounded to bf16 once. Only where :func:`bf16_fused` (no autograd: evaluation)."""
    bf16 = torch.bfloat16
    return _linear(x.to(bf16), w.T.to(bf16), b.view(-1).to(bf16), "relu" if relu else "none")


def bf16_fused() -> bool:
    """Whether :func:`bf16_affine` may stand in for autocast's bf16 matmul on this CPU."""
    return _BF16_SAME


def _bf16_same() -> bool:
    """Whether torch's own CPU bf16 matmul is oneDNN's here (on CPUs without native bf16
    support torch uses its own kernel) and the fused op gives its numbers on a probe."""
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
        g = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(shape, generator=g) for shape in ((6, 40), (40, 5), (1, 5)))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            want = torch.baddbmm(b[None], x[None], w[None])[0].relu_()
        return torch.equal(bf16_affine(x, w, b, relu=True), want)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def per_copy(make: Callable[[int], torch.Tensor], copies: int) -> torch.Tensor:
    """The (R, ...) tensor of R per-copy results ``make(r)``; one copy's is not copied."""
    if copies == 1:
        return make(0).unsqueeze_(0)  # in place: a view would trouble autograd's checks
    return torch.stack([make(r) for r in range(copies)])


def _count_linear_flops() -> None:
    """Let torch's FLOP counter count oneDNN's products as it counts its own matmuls
    (``stabgap.cost.flops`` is tested against that counter); left alone where torch has no
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
_BF16_SAME = _bf16_same()
