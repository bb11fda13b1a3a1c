"""Analytic cost of training and evaluating a network: MACs and FLOPs per batch and per run.

The poster answered Q3 with thop's count of one forward pass (2,980,052,992 MACs for a
batch of 512) plus ND's 2·2048·512. That leaves out the backward pass, the optimiser and
the continual evaluation, which together cost far more than the forward pass, so this
module counts every part of a training step and of a run, for any network (its layers,
:func:`stabgap.core.models.Layer`) and any remedy (its own ``step_flops``), with the
reference's number kept as :func:`reference_forward_macs`.

Conventions (R = 1 copy; a stack of R copies costs R times as much):

- A **MAC** is one multiply-accumulate ``a += x·y``, counted where the work is dot
  products: the matrix products and convolutions, and ND (``Σ h²`` forward, ``2λ·h`` added
  into the incoming gradient backward, one multiply-add per activation).
- **FLOPs** = 2 per MAC + 1 per other elementwise operation (add, multiply, divide,
  compare, max, exp, log, sqrt alike). ``matmul_flops`` is the matrix-product (and
  convolution) part alone, which is exactly what ``torch.utils.flop_counter.FlopCounterMode``
  counts.
- A layer costs its MACs per image (dense: in·out; conv: out positions · out channels ·
  in channels · k²), plus one bias add and, when followed by one, one ReLU per output;
  a conv layer's 2×2 max-pooling 3 comparisons per pooled output. The uint8 → [0, 1]
  scaling of the input is one division per pixel.
- Backward, per layer: its MACs again for the weight gradient and, except for the first
  layer (the image needs no gradient), again for the gradient of its input, i.e. the usual
  "backward = 2 × forward" for every layer but the first; one add per output for the bias
  gradient, one mask per ReLU output, one routing per pooled output.
- Cross-entropy over C classes: forward 4 per logit (max, subtract, exp, sum) + 3 per
  sample (log, pick the target, add to the batch mean); backward 3 per logit (subtract,
  exp, scale by 1/B) + 1 per sample (subtract 1 at the target).
- Optimiser: per parameter, the count of :data:`stabgap.core.optim.OPTIMIZERS` (Adam 13:
  ``m``: 3, ``v``: 4, ``√v/√(1-β₂ᵗ) + ε``: 3, the step: 3).
- Remedies and methods: each declares the FLOPs it adds to a training step
  (``step_flops``, with its MACs ``step_macs``) and, where it acts at a task switch, to
  each switch (``switch_flops`` and ``switch_macs``: online EWC's Fisher). Replay from a
  bounded memory adds its examples to the step's batch; storing into the memory and drawing
  from it are index operations, not counted.
- Evaluation: a forward pass over the evaluated tasks' test subsets (each of
  ``eval_repeats`` subsets) plus C+1 per image (argmax over C logits, compare with the
  label, count); no loss, no remedy.
- Scalar work (λ·ND, Adam's bias corrections, the loss's final division) is a handful of
  FLOPs per step and is not counted.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from stabgap.core.analyses.cost import analyses_cost
from stabgap.core.config import RunConfig
from stabgap.core.data import DATASETS
from stabgap.core.device import memory_bytes
from stabgap.core.evaluate import evaluation_steps
from stabgap.core.memories import replayed_examples
from stabgap.core.methods import METHODS
from stabgap.core.models import MODELS, Layer, model_view
from stabgap.core.models.layers import (  # noqa: F401 - the cost model's parts, here too
    IMAGE,
    ZERO,
    Cost,
    backward_cost,
    dense_layers,
    extra_pass_flops,
    forward_cost,
    hidden_units,
    loss_cost,
    matmul_cost,
    outputs,
    total,
)
from stabgap.core.optim import OPTIMIZERS
from stabgap.core.remedies import REMEDIES
from stabgap.core.streams import STREAMS, stream_view
from stabgap.errors import StabgapError
from stabgap.text import aligned

N_CLASSES = 10  # MNIST's, for the reference's own count (reference_forward_macs)


@dataclass(frozen=True)
class RunShape:
    """What the cost model needs of a run's data, known from its config without the files:
    the dataset's image, the network's outputs (the stream's head) and each task's training
    and test images."""

    image: tuple[int, ...]
    n_classes: int
    train_sizes: tuple[int, ...]
    test_sizes: tuple[int, ...]

    def evaluated_test_size(self, config: RunConfig, task: int) -> int:
        """The test images of the smallest evaluated task while training `task`: what caps
        the evaluation subsets, as in the training loop."""
        return min(self.test_sizes[: _evaluated_tasks(config, task)])


def run_shape(config: RunConfig, test_size: int | None = None) -> RunShape:
    """`config`'s :class:`RunShape`; `test_size`: at most that many test images a task.

    Example:
        >>> shape = run_shape(RunConfig(dataset="cifar100", stream="split", classes_per_task=50))
        >>> shape.image, shape.n_classes, shape.train_sizes, shape.test_sizes
        ((3, 32, 32), 100, (25000, 25000), (5000, 5000))
        >>> run_shape(RunConfig(stream="split", scenario="domain")).test_sizes[:2]
        (2115, 2042)
    """
    stream, view = STREAMS.chosen(config), stream_view(config)
    train, test = stream.sizes(view, train=True), stream.sizes(view, train=False)
    if test_size is not None:
        test = tuple(min(test_size, size) for size in test)
    return RunShape(DATASETS.chosen(config).input_shape, stream.head(view), train, test)


def task_batches(config: RunConfig, task: int, shape: RunShape) -> Counter[int]:
    """How many of `task`'s batches hold how many of the current examples (the memory's
    replayed ones aside), as the sampler draws them: each pass over the pool ends in a
    smaller batch unless ``drop_last``; stratified replay always fills its batch.

    Example:
        >>> shape = run_shape(RunConfig(stream="split"))  # task 1: 12,665 digits 0 and 1
        >>> task_batches(RunConfig(stream="split", batch_size=5000, batches_per_task=3),
        ...              1, shape)
        Counter({5000: 2, 2665: 1})
    """
    size, count = config.task_batch_size(task), config.batches_per_task
    if config.replay == "stratified":
        return Counter({size: count})
    # the examples its batches are drawn from: every task's so far with full replay
    pool = sum(shape.train_sizes[:task]) if config.replay == "full" else shape.train_sizes[task - 1]
    sizes: Counter[int] = Counter()
    position = pool  # a pass starts at the task's first batch
    for _ in range(count):
        if position >= pool or (config.drop_last and position + size > pool):
            position = 0
        sizes[min(size, pool - position)] += 1
        position += size
    return sizes


def mlp_layers(sizes: tuple[int, ...]) -> list[Layer]:
    """The layers of an MLP with these widths, input first and output last."""
    return dense_layers(sizes)


def model_layers(config: RunConfig, shape: RunShape | None = None) -> list[Layer]:
    """The layers of the network `config` asks for, on its data's images and classes."""
    shape = shape or run_shape(config)
    return MODELS.chosen(config).layers(model_view(config), shape.image, shape.n_classes)


def n_parameters(layers: list[Layer]) -> int:
    """Weights and biases.

    Example:
        >>> n_parameters(mlp_layers((784, 2048, 2048, 10)))
        5824522
    """
    return sum(layer.params for layer in layers)


def decay_forward_cost(hidden: tuple[int, ...], batch: int) -> Cost:
    """ND's forward term on an MLP: square and sum every post-ReLU hidden activation.

    Example:
        >>> decay_forward_cost((2048, 2048), 512).macs  # the reference's 2·2048·512
        2097152
    """
    macs = batch * sum(hidden)
    return Cost(macs=macs, flops=2 * macs)  # elementwise, so no matmul FLOPs


def eval_cost(layers: list[Layer], n_images: int, pixels: int, n_classes: int) -> Cost:
    """Evaluating `n_images` test images: a forward pass and the correct-answer count.

    Example:
        >>> eval_cost(mlp_layers((784, 2048, 2048, 10)), 2048, 784, 10).macs == 4 * 2980052992
        True
    """
    return forward_cost(layers, n_images, pixels) + Cost(flops=n_images * (n_classes + 1))


STEP_PARTS = ("forward", "loss", "backward", "optimizer")
PART_LABELS = {
    "forward": "forward",
    "loss": "cross-entropy (fwd+bwd)",
    "backward": "backward",
    "optimizer": "optimiser",
    "evaluation": "evaluation",
}


def train_step_costs(
    config: RunConfig, batch: int, task: int = 1, shape: RunShape | None = None
) -> dict:
    """Every part of one training step in `task`: :data:`STEP_PARTS`, then one per active
    remedy or method that acts in that task (``acts_in``).

    Example:
        >>> base = RunConfig(hidden=(2048, 2048))
        >>> nd = total(train_step_costs(base.replace(decay_lambda=1e-5), 512))
        >>> nd.flops - total(train_step_costs(base, 512)).flops == 2 * 2 * 2 * 2048 * 512
        True
    """
    shape = shape or run_shape(config)
    layers = model_layers(config, shape)
    n_classes, pixels = outputs(layers), math.prod(shape.image)
    optimizer = OPTIMIZERS.chosen(config)
    parts = {
        "forward": forward_cost(layers, batch, pixels),
        "loss": loss_cost(n_classes, batch),
        "backward": backward_cost(layers, batch),
        "optimizer": Cost(
            flops=optimizer.flops_per_param(OPTIMIZERS.view(config)) * n_parameters(layers)
        ),
    }
    acting = [remedy for remedy in _extensions(config) if remedy.acts_in(config, task)]
    for remedy in acting:
        parts[remedy.name] = Cost(
            macs=remedy.step_macs(config, layers, batch),
            flops=remedy.step_flops(config, layers, batch),
        )
    for repeater in (r for r in acting if r.loss_passes > 1):
        # its extra passes compute every loss term again: counted as its own work
        again = total({r.name: parts[r.name] for r in acting if r.in_loss()})
        parts[repeater.name] = parts[repeater.name] + again * (repeater.loss_passes - 1)
    return parts


def _extensions(config: RunConfig) -> list:
    """The run's remedies, then its methods, as classes: what each adds to the cost."""
    return [*(REMEDIES[n] for n in config.remedies), *(METHODS[n] for n in config.methods)]


def _evaluated_tasks(config: RunConfig, task: int) -> int:
    return config.task_count if config.eval_tasks == "all" else task


def batch_costs(config: RunConfig, task: int, test_size: int | None = None) -> dict[str, Cost]:
    """One training step in `task` (1-based) plus one evaluation, as the loop runs them.

    The evaluation forwards the test subsets of every evaluated task (those seen so far,
    or all): ``task_eval_size`` images each, capped by the smallest evaluated task's test
    images (the dataset's, or `test_size`).

    Example:
        >>> from stabgap.studies.presets import PAPER_BASE
        >>> c = batch_costs(PAPER_BASE, task=3)  # batch 1536; 3 tasks × 3072 test images
        >>> c["evaluation"].macs == 3 * 3072 * 5820416
        True
    """
    shape = run_shape(config, test_size)
    batch = config.task_batch_size(task) + replayed_examples(config, task)
    costs = train_step_costs(config, batch, task, shape)
    costs["evaluation"] = evaluation_cost(config, task, shape)
    return costs


def evaluation_cost(config: RunConfig, task: int, shape: RunShape) -> Cost:
    """One evaluation point while training `task` (see :func:`batch_costs`): each of its
    `eval_repeats` passes, on independent subsets."""
    layers = model_layers(config, shape)
    m = config.task_eval_size(task, shape.evaluated_test_size(config, task))
    n_images = _evaluated_tasks(config, task) * m * config.eval_repeats
    return eval_cost(layers, n_images, math.prod(shape.image), outputs(layers))


def evaluations_in_task(config: RunConfig, task: int) -> int:
    """Evaluation points while training `task`: those of the loop's schedule
    (:func:`stabgap.core.evaluate.evaluation_steps`) in the task's batches.

    Example:
        >>> evaluations_in_task(RunConfig(batches_per_task=10, eval_every=4), 2)  # t=12, 16
        2
        >>> evaluations_in_task(RunConfig(batches_per_task=10, eval_every=4,
        ...                               eval_switch_window=3), 2)  # t=10-12, 16, 19
        5
    """
    per_task = config.batches_per_task
    steps = evaluation_steps(
        config.total_batches, per_task, config.eval_every, config.eval_switch_window
    )
    return int(((steps >= (task - 1) * per_task) & (steps < task * per_task)).sum())


# The parts of a run's cost that measure the run rather than train it.
MEASURING = ("evaluation", "analyses")


def training(costs: dict[str, Cost]) -> Cost:
    """A run's training in its :func:`run_cost`: every part but those that measure it."""
    return total({p: c for p, c in costs.items() if p not in MEASURING})


def run_cost(config: RunConfig, test_size: int | None = None) -> dict[str, Cost]:
    """A whole run: each step part summed over all training steps, plus all evaluations.

    Example:
        >>> c = run_cost(RunConfig(hidden=(4,), rotations=(0, 90), batches_per_task=3,
        ...                        batch_size=2, replay="none", eval_every=2), test_size=5)
        >>> c["forward"].macs == 6 * 2 * (784 * 4 + 4 * 10)  # 6 steps of 2 images
        True
        >>> c["evaluation"].macs == (2 * 1 * 5 + 1 * 2 * 5) * (784 * 4 + 4 * 10)
        True
    """
    out: dict[str, Cost] = {}
    shape = run_shape(config, test_size)
    evaluations = ZERO
    for task in range(1, config.task_count + 1):
        replayed = replayed_examples(config, task)
        for size, count in task_batches(config, task, shape).items():
            for part, cost in train_step_costs(config, size + replayed, task, shape).items():
                out[part] = out.get(part, ZERO) + cost * count
        per_point = evaluation_cost(config, task, shape)
        evaluations = evaluations + per_point * evaluations_in_task(config, task)
    out["evaluation"] = evaluations
    layers = model_layers(config, shape)
    for extension in _extensions(config):
        per_switch = Cost(
            macs=extension.switch_macs(config, layers),
            flops=extension.switch_flops(config, layers),
        )
        if per_switch != ZERO:
            out[f"{extension.name} at switches"] = per_switch * (config.task_count - 1)
    analysed = analyses_cost(config, layers, shape.image, min(shape.test_sizes))
    if analysed != ZERO:
        out["analyses"] = analysed
    return out


FLOAT_BYTES = 4


def least_memory(config: RunConfig) -> int:
    """Bytes one copy holds whatever it runs: its float32 parameters and their gradients.

    Example: the paper MLP's 5.8 M parameters, 2 × 4 bytes each.

        >>> from stabgap.studies.presets import PAPER_BASE
        >>> least_memory(PAPER_BASE)
        46596176
    """
    return 2 * FLOAT_BYTES * n_parameters(model_layers(config))


def check_memory(config: RunConfig, device, what: str) -> None:
    """Refuse, before any work, a network whose weights and gradients alone exceed the
    device's memory (a width with zeros too many): it would fail at its first step, or be
    killed by the system, after every run planned before it. `what`: the run, for the
    message ("experiment nd")."""
    total = memory_bytes(device)
    try:
        need = least_memory(config)
    except (NotImplementedError, KeyError):  # a plugin's network the cost model cannot size
        return
    if total is not None and need > total:
        where = "GPU" if device.type == "cuda" else "machine"
        raise StabgapError(
            f"{what}: the network {architecture(config)} needs {gib(need)} for its weights "
            f"and gradients alone, more than this {where}'s {gib(total)}: choose a smaller "
            "network"
        )


def gib(n_bytes: float) -> str:
    """Bytes in GiB, as a person reads them ("0.3 GiB", "1,234 GiB")."""
    return f"{n_bytes / 2**30:,.{1 if n_bytes < 10 * 2**30 else 0}f} GiB"


def run_memory(config: RunConfig, test_size: int | None = None) -> int:
    """Device memory one copy of a stacked run needs at its peak, in bytes (an estimate).

    Parameters, their gradients and the optimiser's state (Adam: two moments), the copies
    some remedies keep (SAM's step, EMA's average, LPR's matrices), and the larger of the
    activations kept for a training step's backward pass (pre- and post-ReLU of every
    layer for the largest batch) and those of an evaluation (every layer of every
    evaluated task's subset is alive at once). The task data is shared by the copies and
    not counted.

    Example: a paper-protocol copy needs a quarter of a GiB, most of it the evaluation of
    three tasks of 3072 images; at widths 4096, 0.6 GiB, so 32 copies need some 20 GiB.

        >>> from stabgap.studies.presets import PAPER_BASE
        >>> round(run_memory(PAPER_BASE) / 2**30, 2), round(
        ...     run_memory(PAPER_BASE.replace(hidden=[4096, 4096])) / 2**30, 2)
        (0.25, 0.61)
    """
    shape = run_shape(config, test_size)
    layers = model_layers(config, shape)
    params = n_parameters(layers)
    moments = {"adam": 2, "adamw": 2, "rmsprop": 2, "sgd": 1, "adagrad": 1}[config.optimizer]
    kept = (2 + moments) * params
    kept += params * (("sam" in config.remedies) + ("ema" in config.remedies))
    if "lpr" in config.remedies:
        kept += sum((layer.params // layer.outputs) ** 2 for layer in layers)
    tasks = config.task_count
    batch = config.task_batch_size(tasks) + replayed_examples(config, tasks)
    per_image = math.prod(shape.image) + sum(layer.outputs for layer in layers)
    train = 2 * batch * per_image
    m = config.task_eval_size(tasks, shape.evaluated_test_size(config, tasks))  # the last task
    evaluation = _evaluated_tasks(config, tasks) * m * per_image
    return FLOAT_BYTES * (kept + max(train, evaluation))


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
    layers = mlp_layers((784, *hidden, N_CLASSES))
    macs = forward_cost(layers, batch, 784).macs
    return macs + (decay_forward_cost(tuple(hidden), batch).macs if decay else 0)


def pct(new: float, old: float) -> float:
    """Relative increase of `new` over `old`, in %."""
    return 100.0 * (new - old) / old


def nd_overhead(
    hidden: tuple[int, ...] = (2048, 2048), batch: int = 512, optimizer: str = "adam"
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
    base = RunConfig(hidden=hidden, optimizer=optimizer)
    plain = train_step_costs(base, batch)
    with_nd = total(train_step_costs(base.replace(decay_lambda=1.0), batch))
    nd = decay_forward_cost(tuple(hidden), batch)  # ND's MACs: forward, and backward alike
    forward = plain["forward"]
    return {
        "forward_macs": pct(forward.macs + nd.macs, forward.macs),
        "forward_flops": pct(forward.flops + nd.flops, forward.flops),
        "step_macs": pct(total(plain).macs + 2 * nd.macs, total(plain).macs),
        "step_flops": pct(with_nd.flops, total(plain).flops),
    }


def cost_report(
    base: RunConfig, nd: RunConfig, task: int, test_size: int | None = None, title: str = ""
) -> str:
    """The tables of ``stabgap cost``: per batch in `task`, then per run; base vs ND (the
    same run with ND's term); `title`: what run it is, a line above them."""
    shape = run_shape(base, test_size)
    b = base.task_batch_size(task)
    m = base.task_eval_size(task, shape.evaluated_test_size(base, task))
    k = _evaluated_tasks(base, task)
    per_b, per_nd = batch_costs(base, task, test_size), batch_costs(nd, task, test_size)
    arch = architecture(base, shape)
    replayed = replayed_examples(base, task)
    batch_text = f"batch {b}" + (f" + {replayed} replayed" if replayed else "")
    lines = [title] if title else []
    lines += [
        f"Cost per batch in task {task}: {arch}, {batch_text}, {base.optimizer}; "
        f"evaluation of {k} task(s) × {m} test images"
        + (f" × {base.eval_repeats} repeats" if base.eval_repeats > 1 else ""),
        "(MAC = multiply-accumulate in matmuls, convolutions and ND; FLOPs = 2·MACs + "
        "elementwise ops; see `stabgap.cost.flops`)",
        "",
    ]
    labels = {**PART_LABELS, "nd": "ND (fwd+bwd)"}
    # the step's parts, then the run's own remedies and methods, then the evaluation
    step = [*STEP_PARTS, *(p for p in per_nd if p not in (*STEP_PARTS, "evaluation", "nd")), "nd"]
    step_b = total({p: per_b.get(p, ZERO) for p in step})
    step_nd = total({p: per_nd[p] for p in step})
    lines += aligned(
        [
            COMPARISON_HEAD,
            *(_comparison_row(labels.get(p, p), per_b.get(p, ZERO), per_nd[p]) for p in step),
            _comparison_row("evaluation", per_b["evaluation"], per_nd["evaluation"]),
            _comparison_row("training step", step_b, step_nd),
            _comparison_row("step + evaluation", total(per_b), total(per_nd)),
        ]
    )
    if base.model == "mlp" and shape.image == IMAGE:  # the poster's measures, on MNIST's size
        o = nd_overhead(base.hidden, b, base.optimizer)  # its forward pass: no remedy acts
        ref = reference_forward_macs(base.hidden, base.batch_size)
        ref_nd = reference_forward_macs(base.hidden, base.batch_size, decay=True)
        poster_scale = base.hidden == (2048, 2048) and base.batch_size == 512
        lines += [
            "",
            f"ND overhead, forward pass alone: +{o['forward_macs']:.4f} % MACs "
            f"(the poster's measure), +{o['forward_flops']:.4f} % FLOPs",
            f"ND overhead, whole training step: +{pct(step_nd.macs, step_b.macs):.4f} % MACs, "
            f"+{pct(step_nd.flops, step_b.flops):.4f} % FLOPs",
            f"Reference (thop, one forward pass of a batch of {base.batch_size}): "
            f"{ref:,} MACs, ND adds {ref_nd - ref:,} = +{pct(ref_nd, ref):.4f} %"
            + (" (the poster prints 0.007 %)" if poster_scale else ""),
        ]

    run_b, run_nd = run_cost(base, test_size), run_cost(nd, test_size)
    train_b, train_nd = training(run_b), training(run_nd)
    tasks = range(1, base.task_count + 1)
    n_eval = sum(evaluations_in_task(base, t) for t in tasks)
    sizes_text = ", ".join(
        str(base.task_eval_size(t, shape.evaluated_test_size(base, t))) for t in tasks
    )
    batches_text = ", ".join(
        str(base.task_batch_size(t) + replayed_examples(base, t)) for t in tasks
    )
    tasks_text = ", ".join(map(str, tasks))
    if any(len(task_batches(base, t, shape)) > 1 for t in tasks):
        tasks_text += "; each pass's last batch smaller"
    seen = "all tasks" if base.eval_tasks == "all" else "the seen tasks"
    lines += [
        "",
        f"Whole run: {base.task_count} tasks × {base.batches_per_task} batches "
        f"(batches of {batches_text} examples in tasks {tasks_text}), {n_eval} evaluations "
        f"of {seen} ({sizes_text} test images per task"
        + (f", {base.eval_repeats} times" if base.eval_repeats > 1 else "")
        + ")",
        "",
    ]
    # what happens once per switch (EWC's Fisher) is in the training; shown beside it so
    # that the steps' share reads as per-batch cost × batches
    switches = [p for p in run_b if p.endswith(" at switches")]
    lines += aligned(
        [
            COMPARISON_HEAD,
            _comparison_row("training", train_b, train_nd),
            *(_comparison_row(f"  of which {p}", run_b[p], run_nd.get(p, ZERO)) for p in switches),
            _comparison_row("evaluation", run_b["evaluation"], run_nd["evaluation"]),
            *(
                [_comparison_row("analyses", run_b["analyses"], run_nd.get("analyses", ZERO))]
                if "analyses" in run_b
                else []
            ),
            _comparison_row("run total", total(run_b), total(run_nd)),
        ]
    )
    return "\n".join(lines)


def remedy_report(base: RunConfig, task: int) -> str:
    """Every remedy's and method's extra FLOPs per training step, at its example setting,
    and what replaying from a bounded memory adds."""
    own = base.task_batch_size(task)
    batch = own + replayed_examples(base, task)  # the step as this run takes it
    plain = total(train_step_costs(base, batch, task)).flops
    lines = [
        f"Remedies and methods: extra FLOPs per training step in task {task} (batch {batch}), "
        "each at its example setting",
        "",
    ]
    rows = [("extension", "setting", "extra FLOPs", "+% of a step", "at each switch")]

    def at_switch(remedy, config: RunConfig) -> int:
        """What it does once per switch (EWC's Fisher), beside its steps."""
        return remedy.switch_flops(config, model_layers(config))

    def added(name: str, setting: str, extra: int, switch: int) -> None:
        step = f"{pct(plain + extra, plain):+.3f}%"
        rows.append((name, setting, _si(extra), step, _si(switch)))

    memory = {"replay": "memory", "batch_growth": "never"}
    if base.replay == "memory":  # the run replays from its memory already
        already = f"{batch - own} replayed" if batch > own else "from task 2: none to replay yet"
        rows.append(("er", "replay=memory", f"in this run already ({already})"))
    elif replayed := replayed_examples(base.replace(**memory), task):
        extra = total(train_step_costs(base, batch + replayed, task)).flops - plain
        added("er", f"replay=memory, {replayed} replayed", extra, 0)
    for name, remedy in (*REMEDIES.items(), *METHODS.items()):
        setting = ", ".join(f"{k}={v}" for k, v in remedy.example.items())
        if name in (*base.remedies, *base.methods):  # at the run's own setting
            own = ", ".join(f"{k}={getattr(base, k)}" for k in remedy.example)
            rows.append((name, own, "in this run already"))
            continue
        try:
            config = base.replace(**remedy.example)
        except StabgapError as e:  # e.g. a remedy not made for this network
            rows.append((name, setting, f"not here: {str(e).split(': ', 1)[-1]}"))
            continue
        if not remedy.acts_in(config, task):
            if switch := at_switch(remedy, config):  # its steps from task 2, its switches now
                added(name, f"{setting} (steps: from task 2)", 0, switch)
            else:
                rows.append((name, setting, f"nothing in task {task}: it acts from task 2"))
            continue
        # with the run's own remedies acting on it too (SAM computes a loss term twice)
        extra = total(train_step_costs(config, batch, task)).flops - plain
        added(name, setting, extra, at_switch(remedy, config))
    lines += aligned(rows, left=2)
    lines.append(
        "(each row is what it adds to the step at its setting, and once at each switch where "
        "it works there; a method on replay, such as ER-ACE, adds that to ER's row)"
    )
    return "\n".join(lines)


ANALYSES_EXAMPLE = {"drift_every": 10, "head_every": 10}


def analyses_report(base: RunConfig, test_size: int | None = None) -> str:
    """What the why-the-gap analyses add to a whole run, at an example cadence."""
    plain = total(run_cost(base, test_size)).flops
    config = base.replace(**ANALYSES_EXAMPLE)
    extra = total(run_cost(config, test_size)).flops - plain
    setting = ", ".join(f"{k}={v}" for k, v in ANALYSES_EXAMPLE.items())
    return (
        f"Why-the-gap analyses ({setting}, probe_size={config.probe_size}): "
        f"{_si(extra)} FLOPs a run, {pct(plain + extra, plain):+.3f}% (off: nothing)"
    )


def architecture(config: RunConfig, shape: RunShape | None = None) -> str:
    """A run's network in a few words, from the fields it reads ("MLP 784-2048-2048-10",
    "reduced ResNet-18, 20 base filters, ..."): as `stabgap cost`, the report and a profile
    name it. `shape`: the run's (default: from its config)."""
    shape = shape or run_shape(config)
    return MODELS.chosen(config).describe(model_view(config), shape.image, shape.n_classes)


def _comparison_row(label: str, base: Cost, nd: Cost) -> tuple[str, ...]:
    """One row of the baseline-vs-ND table: MACs, FLOPs and ND's extra FLOPs in %."""
    return (
        label,
        _si(base.macs),
        _si(nd.macs),
        _si(base.flops),
        _si(nd.flops),
        _pct_or_dash(nd.flops, base.flops),
    )


COMPARISON_HEAD = ("part", "base MACs", "ND MACs", "base FLOPs", "ND FLOPs", "ND +%FLOPs")


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
