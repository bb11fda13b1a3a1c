"""The analyses' quantities as pure functions of feature arrays, batched over any leading
dimensions (copies, tasks), each checked against an independent computation in
tests/test_analyses.py.

- Linear CKA (Kornblith et al. 2019, "Similarity of neural network representations
  revisited"): for the features X and Y of the same n examples (n × p and n × q), centred
  over the examples, CKA = ‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F), computed here from the n × n Gram
  matrices (⟨XXᵀ, YYᵀ⟩ = ‖YᵀX‖²_F), which is cheaper when the layers are wider than the
  probe set. 1 for the same representation up to a rotation and a scale, lower as the
  representations part.
- The relative change ‖Y − X‖_F / ‖X‖_F: how far the features moved, in units of their size.
- The nearest-mean classifier: each example goes to the class whose mean feature vector is
  nearest (Euclidean); Łapacz et al. (WACV 2025) read it on the penultimate features.
"""

from __future__ import annotations

import torch


def centred_gram(x: torch.Tensor) -> torch.Tensor:
    """(..., n, p) features → (..., n, n) Gram matrix of the features centred over the n
    examples."""
    x = x - x.mean(dim=-2, keepdim=True)
    return x @ x.transpose(-2, -1)


def linear_cka(gram_x: torch.Tensor, gram_y: torch.Tensor) -> torch.Tensor:
    """Linear CKA from two centred Gram matrices (..., n, n) of the same examples: (...).

    Example:
        >>> x = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
        >>> q, _ = torch.linalg.qr(torch.randn(8, 8, generator=torch.Generator().manual_seed(1)))
        >>> round(linear_cka(centred_gram(x), centred_gram(3 * x @ q)).item(), 6)  # rotated, scaled
        1.0
    """
    inner = (gram_x * gram_y).sum(dim=(-2, -1))
    norms = torch.linalg.matrix_norm(gram_x) * torch.linalg.matrix_norm(gram_y)
    return inner / norms


def relative_change(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """‖after − before‖_F / ‖before‖_F over the last two dimensions (examples, units)."""
    dims = (-2, -1)
    return torch.linalg.vector_norm(after - before, dim=dims) / torch.linalg.vector_norm(
        before, dim=dims
    )


def class_means(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each class's mean feature vector: features (R, n, f), labels (R, n) → means (R, C, f)
    and whether each class has an example (R, C); a class without one has mean 0.

    Example:
        >>> f = torch.tensor([[[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]]])
        >>> means, present = class_means(f, torch.tensor([[0, 0, 2]]), 3)
        >>> means[0].tolist(), present[0].tolist()
        ([[1.0, 0.0], [0.0, 0.0], [0.0, 4.0]], [True, False, True])
    """
    r, _, f = features.shape
    one_hot = torch.nn.functional.one_hot(labels, n_classes).to(features.dtype)  # (R, n, C)
    counts = one_hot.sum(dim=1)  # (R, C)
    sums = one_hot.transpose(1, 2) @ features  # (R, C, f)
    return sums / counts.clamp(min=1).unsqueeze(-1), counts > 0


def nearest_mean_scores(
    features: torch.Tensor, means: torch.Tensor, present: torch.Tensor
) -> torch.Tensor:
    """The nearest-mean classifier's scores: minus the squared distance of each example
    (R, n, f) to each class mean (R, C, f), -inf for a class without examples: (R, n, C).
    The highest score is the nearest mean, so a scenario's mask applies to them as to
    logits."""
    distance = torch.cdist(features, means).square()
    return (-distance).masked_fill(~present.unsqueeze(1), float("-inf"))


def hessian_top_and_trace(
    loss_of, params: list[torch.Tensor], iterations: int, generators: list[torch.Generator]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each copy's Hessian eigenvalue of largest magnitude (power iteration) and Hessian
    trace (Hutchinson's estimate, Rademacher vectors) of a loss, from Hessian-vector
    products.

    `loss_of()` gives the (R,) losses of the copies at `params`, each tensor (R, ...) with
    copy r's slice its own: the Hessian of their sum is block-diagonal over the copies, so
    one product serves them all, each normalised on its own slice, and copy r's random
    vectors come from generators[r] alone (a stack measures each copy as alone).
    `iterations` products for each of the two; the trace is the mean of vᵀHv over them.
    Uses ``torch.autograd.grad``: nothing is accumulated into the parameters' ``.grad``.

    Example (a quadratic ½ θᵀAθ, whose Hessian is A):
        >>> a = torch.diag(torch.tensor([3.0, 1.0, 0.5]))
        >>> theta = torch.ones(1, 3, requires_grad=True)
        >>> top, trace = hessian_top_and_trace(
        ...     lambda: 0.5 * (theta @ a * theta).sum(-1), [theta], 200,
        ...     [torch.Generator().manual_seed(0)])
        >>> round(top.item(), 4), abs(trace.item() - 4.5) < 1e-6  # Rademacher: vᵀAv = tr A
        (3.0, True)
    """
    copies = len(generators)
    grads = torch.autograd.grad(loss_of().sum(), params, create_graph=True)

    def hvp(vectors: list[torch.Tensor]) -> list[torch.Tensor]:
        dot = sum((g * v).sum() for g, v in zip(grads, vectors, strict=True))
        return list(torch.autograd.grad(dot, params, retain_graph=True))

    def per_copy(a: list[torch.Tensor], b: list[torch.Tensor]) -> torch.Tensor:
        return sum((x * y).reshape(copies, -1).sum(dim=1) for x, y in zip(a, b, strict=True))

    def draw(rademacher: bool) -> list[torch.Tensor]:
        own = [[torch.randn(p.shape[1:], generator=g) for p in params] for g in generators]
        out = []
        for k, p in enumerate(params):
            v = torch.stack([mine[k] for mine in own]).to(p.device, p.dtype)
            out.append(v.sign() if rademacher else v)
        return out

    v = draw(False)
    top = torch.zeros(copies, device=params[0].device)
    for _ in range(iterations):
        scale = per_copy(v, v).rsqrt()
        v = [x * scale.view(-1, *[1] * (x.dim() - 1)) for x in v]
        hv = hvp(v)
        top = per_copy(v, hv)  # the Rayleigh quotient of the unit vector v
        v = [h.detach() for h in hv]
    trace = sum(per_copy(z, hvp(z)) for z in (draw(True) for _ in range(iterations)))
    return top.detach(), (trace / iterations).detach()


def part_gradients(
    losses: torch.Tensor, parts: torch.Tensor, params: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The gradients of two parts of each copy's batch, compared: each part's mean loss
    (per-example `losses` (R, B), `parts` (R, B) True for the first part), its gradient's
    norm per parameter tensor (R, tensors) for each part, and the cosine between the two
    whole gradients (R,); NaN for a copy with an empty part.

    Example (one parameter w, loss_i = (w - y_i)², at w = 0: gradient -2 · mean y):
        >>> w = torch.zeros(1, 1, requires_grad=True)
        >>> y = torch.tensor([[1.0, 3.0, -2.0]])
        >>> first, second, cos = part_gradients((w - y) ** 2, torch.tensor([[1, 1, 0]]) > 0, [w])
        >>> first.tolist(), second.tolist(), cos.tolist()
        ([[4.0]], [[4.0]], [-1.0])
    """
    copies, nan = losses.shape[0], float("nan")
    norms, flats = [], []
    for mask in (parts, ~parts):
        count = mask.sum(dim=1)
        mean = (losses * mask).sum(dim=1) / count.clamp(min=1)
        grads = torch.autograd.grad(mean.sum(), params, retain_graph=True, allow_unused=True)
        per = [
            (torch.zeros_like(p) if g is None else g).reshape(copies, -1)
            for p, g in zip(params, grads, strict=True)
        ]
        empty = (count == 0).unsqueeze(1)
        norms.append(torch.stack([g.norm(dim=1) for g in per], dim=1).masked_fill(empty, nan))
        flats.append(torch.cat(per, dim=1).masked_fill(empty, nan))
    a, b = flats
    cosine = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1))
    return norms[0].detach(), norms[1].detach(), cosine.detach()


RIDGE = 1e-3  # the linear probe's ridge, in units of the features' mean squared size


def linear_probe_scores(
    train: torch.Tensor, labels: torch.Tensor, n_classes: int, probe: torch.Tensor
) -> torch.Tensor:
    """A linear probe fitted in closed form: ridge regression of one-hot labels on the
    features with a bias (train (R, n, f), labels (R, n)), λ = RIDGE · mean ‖x‖² / f, in
    float64; its scores on the probe features (R, m, f) → (R, m, C), -inf for classes
    without a training example.

    Example (two separable clusters, scored back):
        >>> x = torch.tensor([[[0.0, 1.0], [0.1, 0.9], [1.0, 0.0], [0.9, 0.1]]])
        >>> scores = linear_probe_scores(x, torch.tensor([[0, 0, 1, 1]]), 3, x)
        >>> scores.argmax(-1).tolist(), bool(torch.isinf(scores[..., 2]).all())
        ([[0, 0, 1, 1]], True)
    """
    x = torch.cat([train.double(), torch.ones_like(train[..., :1]).double()], dim=-1)
    y = torch.nn.functional.one_hot(labels, n_classes).double()
    gram = x.transpose(1, 2) @ x  # (R, f + 1, f + 1)
    ridge = RIDGE * train.double().square().sum(dim=-1).mean(dim=-1) / train.shape[-1]
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
    weights = torch.linalg.solve(gram + ridge.view(-1, 1, 1) * eye, x.transpose(1, 2) @ y)
    z = torch.cat([probe.double(), torch.ones_like(probe[..., :1]).double()], dim=-1)
    present = y.sum(dim=1) > 0  # (R, C)
    return (z @ weights).masked_fill(~present.unsqueeze(1), float("-inf"))
