"""Analytic cost of training and evaluating the MLP: MACs and FLOPs per batch and per run.

The poster answered Q3 with thop's count of one forward pass (2,980,052,992 MACs for a
batch of 512) plus ND's 2·2048·512. That leaves out the backward pass, the optimiser and
the continual evaluation, which together cost far more than the forward pass, so this
module counts every part of a training step and of a run, with the reference's number
kept as :func:`reference_forward_macs`.

Conventions (R = 1 copy; a stack of R copies costs R times as much):

- A **MAC** is one multiply-accumulate ``a += x·y``. MACs are counted where the work is
  dot products: the matrix products, and ND (forward: ``Σ h²``; backward: the gradient
  ``2λ·h`` added into the gradient already flowing into ``h``, one multiply-add per
  activation with ``2λ`` a precomputed scalar). Everything else has MACs = 0.
- **FLOPs** = 2 per MAC + 1 per other elementwise operation (add, multiply, divide,
  compare, max, exp, log, sqrt alike). ``matmul_flops`` is the matrix-product part alone,
  which is exactly what ``torch.utils.flop_counter.FlopCounterMode`` counts.
- A layer ``n_in → n_out`` on a batch of B costs B·n_in·n_out MACs forward, plus B·n_out
  bias adds and (hidden layers) B·n_out ReLU maxima; the uint8 → [0, 1] scaling of the
  input is one division per pixel.
- Backward, per layer: B·n_in·n_out MACs for the weight gradient and, except for the
  first layer (the input needs no gradient), B·n_in·n_out for the gradient of its input,
  i.e. the usual "backward = 2 × forward" for every layer but the first; B·n_out adds for
  the bias gradient; B·n_out masks for each ReLU.
- Cross-entropy over C classes: forward 4 per logit (max, subtract, exp, sum) + 3 per
  sample (log, pick the target, add to the batch mean); backward 3 per logit (subtract,
  exp, scale by 1/B) + 1 per sample (subtract 1 at the target).
- Optimiser, per parameter: Adam 13 FLOPs (``m ← m + (1-β₁)(g-m)``: 3;
  ``v ← β₂v + (1-β₂)g²``: 4; ``√v / √(1-β₂ᵗ) + ε``: 3; ``p ← p - (lr/(1-β₁ᵗ))·m/denom``: 3),
  the arithmetic of :class:`stabgap.optim.StackedOptimizer` and torch.optim.Adam; SGD 2
  (``p ← p - lr·g``), 4 with momentum (``b ← μb + g`` first).
- Evaluation: a forward pass over the evaluated tasks' test subsets plus C+1 per image
  (argmax over C logits, compare with the label, count); no loss, no ND.
- Scalar work (λ·ND, Adam's bias corrections, the loss's final division) is a handful of
  FLOPs per step and is not counted.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from stabgap.config import RunConfig

N_FEATURES = 784  # 28×28 MNIST pixels
N_CLASSES = 10
TEST_SIZE = 10_000  # MNIST test images per task

ADAM_FLOPS_PER_PARAM = 13
SGD_FLOPS_PER_PARAM = 2
SGD_MOMENTUM_FLOPS_PER_PARAM = 4


@dataclass(frozen=True)
class Cost:
    """Work of one part of a computation; adds and scales like a number."""

    macs: int = 0  # multiply-accumulates (matmuls and ND)
    flops: int = 0  # all floating-point operations, 2 per MAC included
    matmul_flops: int = 0  # the matrix-product part of `flops` (FlopCounterMode's count)

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.matmul_flops + other.matmul_flops,
        )

    def __mul__(self, k: int) -> Cost:
        return Cost(self.macs * k, self.flops * k, self.matmul_flops * k)

    __rmul__ = __mul__


ZERO = Cost()


def total(costs: dict[str, Cost]) -> Cost:
    """Sum of the parts of a cost breakdown."""
    return sum(costs.values(), ZERO)


def layer_sizes(
    hidden: tuple[int, ...], n_features: int = N_FEATURES, n_classes: int = N_CLASSES
) -> tuple[int, ...]:
    """(input, *hidden, output) widths of the MLP.

    Example:
        >>> layer_sizes((2048, 2048))
        (784, 2048, 2048, 10)
    """
    return (n_features, *hidden, n_classes)


def n_parameters(sizes: tuple[int, ...]) -> int:
    """Weights and biases of an MLP with these layer widths.

    Example:
        >>> n_parameters((784, 2048, 2048, 10))
        5824522
    """
    return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


def _matmul(macs: int, other_flops: int = 0) -> Cost:
    return Cost(macs=macs, flops=2 * macs + other_flops, matmul_flops=2 * macs)


def forward_cost(sizes: tuple[int, ...], batch: int) -> Cost:
    """One forward pass of a batch: input scaling, matmuls, biases, ReLUs.

    Example:
        >>> c = forward_cost((784, 2048, 2048, 10), 512)
        >>> c.macs  # thop's count for the poster's model
        2980052992
        >>> c.flops - c.matmul_flops == 512 * (784 + 2048 + 2048 + 10 + 2048 + 2048)
        True
    """
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    macs = batch * sum(a * b for a, b in pairs)
    elementwise = batch * (sizes[0] + sum(sizes[1:]) + sum(sizes[1:-1]))
    return _matmul(macs, elementwise)


def backward_cost(sizes: tuple[int, ...], batch: int) -> Cost:
    """Back-propagation through the layers (the loss's own gradient excluded).

    Example:
        >>> c = backward_cost((784, 2048, 2048, 10), 512)
        >>> c.macs == 512 * (784 * 2048 + 2 * (2048 * 2048 + 2048 * 10))
        True
    """
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    weight_grads = batch * sum(a * b for a, b in pairs)
    input_grads = batch * sum(a * b for a, b in pairs[1:])  # the input needs no gradient
    elementwise = batch * (sum(sizes[1:]) + sum(sizes[1:-1]))  # bias sums, ReLU masks
    return _matmul(weight_grads + input_grads, elementwise)


def loss_cost(n_classes: int, batch: int) -> Cost:
    """Mean cross-entropy of a batch, forward and backward (no MACs).

    Example:
        >>> loss_cost(10, 512).flops == 512 * (4 * 10 + 3 + 3 * 10 + 1)
        True
    """
    return Cost(flops=batch * (7 * n_classes + 4))


def decay_forward_cost(hidden: tuple[int, ...], batch: int) -> Cost:
    """ND's forward term: square and sum every post-ReLU hidden activation.

    Example:
        >>> decay_forward_cost((2048, 2048), 512).macs  # the reference's 2·2048·512
        2097152
    """
    return _nd(batch * sum(hidden))


def decay_backward_cost(hidden: tuple[int, ...], batch: int) -> Cost:
    """ND's gradient, ``2λ·h`` added to each activation's incoming gradient.

    Example:
        >>> decay_backward_cost((2048, 2048), 512) == decay_forward_cost((2048, 2048), 512)
        True
    """
    return _nd(batch * sum(hidden))


def _nd(macs: int) -> Cost:
    return Cost(macs=macs, flops=2 * macs)  # elementwise, so no matmul FLOPs


def optimizer_cost(n_params: int, kind: str = "adam", momentum: float = 0.0) -> Cost:
    """One optimiser update of `n_params` parameters (per-parameter counts: module doc).

    Example:
        >>> optimizer_cost(100).flops, optimizer_cost(100, "sgd").flops
        (1300, 200)
    """
    if kind == "adam":
        per_param = ADAM_FLOPS_PER_PARAM
    elif kind == "sgd":
        per_param = SGD_MOMENTUM_FLOPS_PER_PARAM if momentum else SGD_FLOPS_PER_PARAM
    else:
        raise ValueError(f"unknown optimiser {kind!r}: adam or sgd")
    return Cost(flops=per_param * n_params)


def eval_cost(sizes: tuple[int, ...], n_images: int) -> Cost:
    """Evaluating `n_images` test images: a forward pass and the correct-answer count.

    Example:
        >>> eval_cost((784, 2048, 2048, 10), 2048).macs == 4 * 2980052992
        True
    """
    return forward_cost(sizes, n_images) + Cost(flops=n_images * (sizes[-1] + 1))


STEP_PARTS = ("forward", "loss", "decay_forward", "backward", "decay_backward", "optimizer")
PART_LABELS = {
    "forward": "forward",
    "loss": "cross-entropy (fwd+bwd)",
    "decay_forward": "ND forward",
    "backward": "backward",
    "decay_backward": "ND backward",
    "optimizer": "optimiser",
    "evaluation": "evaluation",
}


def train_step_costs(
    sizes: tuple[int, ...],
    batch: int,
    decay: bool,
    optimizer: str = "adam",
    momentum: float = 0.0,
) -> dict[str, Cost]:
    """Every part of one training step (keys :data:`STEP_PARTS`; ND parts zero if off).

    Example:
        >>> sizes = (784, 2048, 2048, 10)
        >>> base = total(train_step_costs(sizes, 512, decay=False))
        >>> nd = total(train_step_costs(sizes, 512, decay=True))
        >>> nd.macs - base.macs == 2 * 2 * 2048 * 512  # ND forward + backward
        True
    """
    hidden = sizes[1:-1]
    return {
        "forward": forward_cost(sizes, batch),
        "loss": loss_cost(sizes[-1], batch),
        "decay_forward": decay_forward_cost(hidden, batch) if decay else ZERO,
        "backward": backward_cost(sizes, batch),
        "decay_backward": decay_backward_cost(hidden, batch) if decay else ZERO,
        "optimizer": optimizer_cost(n_parameters(sizes), optimizer, momentum),
    }


def _evaluated_tasks(config: RunConfig, task: int) -> int:
    return config.n_tasks if config.eval_tasks == "all" else task


def batch_costs(
    config: RunConfig,
    task: int,
    test_size: int = TEST_SIZE,
    n_features: int = N_FEATURES,
    n_classes: int = N_CLASSES,
) -> dict[str, Cost]:
    """One training step in `task` (1-based) plus one evaluation, as the loop runs them.

    The evaluation forwards the test subsets of every evaluated task (those seen so far,
    or all): ``task_eval_size`` images each. ND is on when ``decay_lambda > 0``.

    Example:
        >>> from stabgap.presets import PAPER_BASE
        >>> c = batch_costs(PAPER_BASE, task=3)  # batch 1536; 3 tasks × 3072 test images
        >>> c["evaluation"].macs == 3 * 3072 * 5820416
        True
    """
    sizes = layer_sizes(config.hidden, n_features, n_classes)
    costs = train_step_costs(
        sizes,
        config.task_batch_size(task),
        decay=config.decay_lambda > 0,
        optimizer=config.optimizer,
        momentum=config.momentum,
    )
    m = config.task_eval_size(task, test_size)
    costs["evaluation"] = eval_cost(sizes, _evaluated_tasks(config, task) * m)
    return costs


def evaluations_in_task(config: RunConfig, task: int) -> int:
    """Evaluation points while training `task`: batches t with t % eval_every == 0.

    Example:
        >>> evaluations_in_task(RunConfig(batches_per_task=10, eval_every=4), 2)  # t=12, 16
        2
    """
    first, end = (task - 1) * config.batches_per_task, task * config.batches_per_task
    return len(range(-(-first // config.eval_every) * config.eval_every, end, config.eval_every))


def run_cost(
    config: RunConfig,
    test_size: int = TEST_SIZE,
    n_features: int = N_FEATURES,
    n_classes: int = N_CLASSES,
) -> dict[str, Cost]:
    """A whole run: each step part summed over all training steps, plus all evaluations.

    Example:
        >>> c = run_cost(RunConfig(hidden=(4,), rotations=(0, 90), batches_per_task=3,
        ...                        batch_size=2, replay="none", eval_every=2), test_size=5)
        >>> c["forward"].macs == 6 * 2 * (784 * 4 + 4 * 10)  # 6 steps of 2 images
        True
        >>> c["evaluation"].macs == (2 * 1 * 5 + 1 * 2 * 5) * (784 * 4 + 4 * 10)
        True
    """
    out = {part: ZERO for part in (*STEP_PARTS, "evaluation")}
    for task in range(1, config.n_tasks + 1):
        per_batch = batch_costs(config, task, test_size, n_features, n_classes)
        for part in STEP_PARTS:
            out[part] = out[part] + per_batch[part] * config.batches_per_task
        out["evaluation"] = out["evaluation"] + per_batch["evaluation"] * evaluations_in_task(
            config, task
        )
    return out


def reference_forward_macs(
    hidden: tuple[int, ...] = (2048, 2048), batch: int = 512, decay: bool = False
) -> int:
    """The reference's MAC count: thop on one forward pass (+ ND's term when `decay`).

    thop counts in_features MACs per output element of each nn.Linear, no bias and no
    ReLU, which is this module's forward MACs; the reference added ND's batch·Σwidths.

    Example:
        >>> reference_forward_macs(), reference_forward_macs(decay=True)
        (2980052992, 2982150144)
    """
    sizes = layer_sizes(tuple(hidden))
    macs = forward_cost(sizes, batch).macs
    return macs + (decay_forward_cost(tuple(hidden), batch).macs if decay else 0)


def pct(new: float, old: float) -> float:
    """Relative increase of `new` over `old`, in %."""
    return 100.0 * (new - old) / old


def nd_overhead(
    hidden: tuple[int, ...] = (2048, 2048),
    batch: int = 512,
    optimizer: str = "adam",
    n_features: int = N_FEATURES,
    n_classes: int = N_CLASSES,
) -> dict[str, float]:
    """ND's extra work in %: on the forward pass alone (the poster's measure) and on the
    whole training step (forward, loss, backward, ND, optimiser).

    Example:
        >>> o = nd_overhead()
        >>> round(o["forward_macs"], 4)  # the poster prints 0.007 %
        0.0704
        >>> round(o["step_macs"], 4), round(o["step_flops"], 4)
        (0.0517, 0.0514)
    """
    sizes = layer_sizes(tuple(hidden), n_features, n_classes)
    base = train_step_costs(sizes, batch, decay=False, optimizer=optimizer)
    nd = train_step_costs(sizes, batch, decay=True, optimizer=optimizer)
    fwd_base, fwd_nd = base["forward"], base["forward"] + nd["decay_forward"]
    return {
        "forward_macs": pct(fwd_nd.macs, fwd_base.macs),
        "forward_flops": pct(fwd_nd.flops, fwd_base.flops),
        "step_macs": pct(total(nd).macs, total(base).macs),
        "step_flops": pct(total(nd).flops, total(base).flops),
    }


# --- `stabgap cost` ------------------------------------------------------------------------
def parse_widths(text: str) -> tuple[int, ...]:
    """Hidden widths from the command line: "2048,2048" → (2048, 2048)."""
    try:
        widths = tuple(int(w) for w in text.strip("[]").split(",") if w.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths are comma-separated integers: {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive integers: {text!r}")
    return widths


def add_hidden_option(parser: argparse.ArgumentParser) -> None:
    """``--hidden W1,W2,...``, shared by ``stabgap cost`` and ``stabgap profile``."""
    parser.add_argument(
        "--hidden",
        type=parse_widths,
        default=(2048, 2048),
        help="hidden widths, comma-separated (default: 2048,2048)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``stabgap cost``."""
    add_hidden_option(parser)
    parser.add_argument(
        "--batch-size",
        type=int,
        default=512,
        help="training batch size in task 1; task k uses k times it, as in "
        "the paper protocol (default: 512)",
    )
    parser.add_argument(
        "--task",
        type=int,
        default=1,
        help="task (1-based) whose per-batch cost is shown (default: 1)",
    )
    parser.add_argument(
        "--optimizer",
        choices=("adam", "sgd"),
        default="adam",
        help="optimiser of the training step (default: adam)",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        default=TEST_SIZE,
        help=f"test images per task (default: {TEST_SIZE})",
    )


def command(args: argparse.Namespace) -> int:
    """Print the per-batch cost of baseline and ND and the paper protocol's run totals."""
    from stabgap.errors import StabgapError
    from stabgap.presets import ND_LAMBDA, PAPER_BASE

    if args.batch_size < 1 or args.test_size < 1:
        raise StabgapError("--batch-size and --test-size must be >= 1")
    base = PAPER_BASE.replace(
        hidden=list(args.hidden), batch_size=args.batch_size, optimizer=args.optimizer
    )
    if not 1 <= args.task <= base.n_tasks:
        raise StabgapError(f"--task must be between 1 and {base.n_tasks}, got {args.task}")
    nd = base.replace(decay_lambda=ND_LAMBDA)
    print(cost_report(base, nd, args.task, args.test_size))
    return 0


def cost_report(base: RunConfig, nd: RunConfig, task: int, test_size: int = TEST_SIZE) -> str:
    """The tables of ``stabgap cost``: per batch in `task`, then per run; base vs ND."""
    sizes = layer_sizes(base.hidden)
    b, m = base.task_batch_size(task), base.task_eval_size(task, test_size)
    k = _evaluated_tasks(base, task)
    per_b, per_nd = batch_costs(base, task, test_size), batch_costs(nd, task, test_size)
    arch = "-".join(map(str, sizes))
    lines = [
        f"Cost per batch in task {task}: MLP {arch}, batch {b}, {base.optimizer}; "
        f"evaluation of {k} task(s) × {m} test images",
        "(MAC = multiply-accumulate in matmuls and ND; FLOPs = 2·MACs + elementwise ops; "
        "see `stabgap.cost`)",
        "",
        _row("part", "base MACs", "ND MACs", "base FLOPs", "ND FLOPs", "ND +%FLOPs"),
    ]
    rows = [(PART_LABELS[p], per_b[p], per_nd[p]) for p in (*STEP_PARTS, "evaluation")]
    rows += [
        (
            "training step",
            total({p: per_b[p] for p in STEP_PARTS}),
            total({p: per_nd[p] for p in STEP_PARTS}),
        ),
        ("step + evaluation", total(per_b), total(per_nd)),
    ]
    lines += [_comparison_row(*row) for row in rows]

    o = nd_overhead(base.hidden, b, base.optimizer)
    ref = reference_forward_macs(base.hidden, base.batch_size)
    ref_nd = reference_forward_macs(base.hidden, base.batch_size, decay=True)
    poster_scale = base.hidden == (2048, 2048) and base.batch_size == 512
    lines += [
        "",
        f"ND overhead, forward pass alone: +{o['forward_macs']:.4f} % MACs "
        f"(the poster's measure), +{o['forward_flops']:.4f} % FLOPs",
        f"ND overhead, whole training step: +{o['step_macs']:.4f} % MACs, "
        f"+{o['step_flops']:.4f} % FLOPs",
        f"Reference (thop, one forward pass of a batch of {base.batch_size}): "
        f"{ref:,} MACs, ND adds {ref_nd - ref:,} = +{pct(ref_nd, ref):.4f} %"
        + (" (the poster prints 0.007 %)" if poster_scale else ""),
    ]

    run_b, run_nd = run_cost(base, test_size), run_cost(nd, test_size)
    train_b = total({p: run_b[p] for p in STEP_PARTS})
    train_nd = total({p: run_nd[p] for p in STEP_PARTS})
    tasks = range(1, base.n_tasks + 1)
    n_eval = sum(evaluations_in_task(base, t) for t in tasks)
    sizes_text = ", ".join(str(base.task_eval_size(t, test_size)) for t in tasks)
    tasks_text = ", ".join(map(str, tasks))
    lines += [
        "",
        f"Whole run, paper protocol: {base.n_tasks} tasks × {base.batches_per_task} batches "
        f"(batch {base.batch_size}·k in task k), {n_eval} evaluations of the seen tasks "
        f"({sizes_text} test images per task in tasks {tasks_text})",
        "",
        _row("part", "base MACs", "ND MACs", "base FLOPs", "ND FLOPs", "ND +%FLOPs"),
    ]
    lines += [
        _comparison_row("training", train_b, train_nd),
        _comparison_row("evaluation", run_b["evaluation"], run_nd["evaluation"]),
        _comparison_row("run total", total(run_b), total(run_nd)),
    ]
    return "\n".join(lines)


def _comparison_row(label: str, base: Cost, nd: Cost) -> str:
    """One line of the baseline-vs-ND table: MACs, FLOPs and ND's extra FLOPs in %."""
    return _row(
        label,
        _si(base.macs),
        _si(nd.macs),
        _si(base.flops),
        _si(nd.flops),
        _pct_or_dash(nd.flops, base.flops),
    )


def _row(*cells: str) -> str:
    return f"{cells[0]:<24}" + "".join(f"{c:>12}" for c in cells[1:])


def _pct_or_dash(new: int, old: int) -> str:
    return f"{pct(new, old):+.4f}" if old else "-"


def _si(n: int) -> str:
    """Compact engineering notation: 2980052992 → '2.980 G'.

    Example:
        >>> _si(2980052992), _si(0), _si(512)
        ('2.980 G', '0', '512')
    """
    if n == 0:
        return "0"
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.3f} {prefix}"
    return str(n)
