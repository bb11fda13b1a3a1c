"""What the analyses cost a run, in the cost model's conventions (:mod:`stabgap.cost.flops`).

At a drift or head point while training task k: one forward pass of the k probe sets
(shared by both analyses); drift adds, for each hidden activation of p units, the centred
Gram matrix of each earlier task's probe set (n²·p MACs a task; at a task's last point,
of every seen task, kept as the next reference) and the relative change (n·p, elementwise);
the head adds a forward pass of the k training samples, their class sums and the distance
of each probe image to each class mean (C·f MACs an image each), and the linear probe's
normal equations and solve. The hidden activations' sizes are the outputs of the layers
followed by a nonlinearity: exact for the MLP, the CNN and the ViT, an upper bound for the
ResNet (whose blocks' inner convolutions are counted as if they were read).

The sharpness: :func:`_sharpness_cost` (an estimate). The gradient anatomy:
:func:`_gradients_cost`. The loss along the path: a forward pass of the earlier tasks'
probe sets at each point of the segment (the interpolation itself, a few operations a
weight, is not counted).
"""

from __future__ import annotations

import math

import numpy as np

from stabgap.core.analyses import around_switches
from stabgap.core.evaluate import activity_points, evaluation_steps
from stabgap.core.memories import replayed_examples
from stabgap.core.models.layers import (
    ZERO,
    Cost,
    Layer,
    backward_cost,
    forward_cost,
    matmul_cost,
)


def analyses_cost(config, layers: list[Layer], image: tuple[int, ...], test_size: int) -> Cost:
    """The analyses' work over a whole run (ZERO when they are off).

    Example:
        >>> from stabgap.core.config import RunConfig
        >>> from stabgap.core.models.layers import dense_layers
        >>> c = RunConfig(rotations=(0, 90), hidden=(4,), batches_per_task=2, eval_every=1,
        ...               drift_every=1, probe_size=3)
        >>> # 4 points; at each a forward of the seen probes (3, 3, 6, 6 images); Grams of
        >>> # the reference (3 at t=1, 6 at t=3) and of task 1 at t=2 and t=3
        >>> cost = analyses_cost(c, dense_layers((784, 4, 10)), (1, 28, 28), 100)
        >>> cost.macs == 18 * (784 * 4 + 4 * 10) + (9 * 4) * (1 + 2 + 1 + 1)
        True
    """
    total = _sharpness_cost(config, layers, image, test_size)
    total = total + _gradients_cost(config, layers, image)
    if config.path_points:  # at each task's end after the first: the earlier tasks' probes
        n = min(config.probe_size, test_size)
        probes = sum(k - 1 for k in range(2, config.task_count + 1)) * n
        total = total + forward_cost(layers, probes, math.prod(image)) * (config.path_points + 2)
    if not (config.drift_every or config.head_every):
        return total
    per_task = config.batches_per_task
    steps = evaluation_steps(
        config.total_batches, per_task, config.eval_every, config.eval_switch_window
    )
    drift = activity_points(steps, per_task, config.drift_every)
    head = activity_points(steps, per_task, config.head_every)
    task_of = steps // per_task + 1
    last = np.append(task_of[1:] != task_of[:-1], True)
    n = min(config.probe_size, test_size)
    units = [layer.outputs for layer in layers if layer.acted_on]
    features, classes = layers[-1].macs // layers[-1].outputs, layers[-1].outputs
    pixels = math.prod(image)
    for point in np.flatnonzero(drift | head):
        k = int(task_of[point])
        total = total + forward_cost(layers, k * n, pixels)
        if drift[point]:
            grams = (k - 1) + (k if last[point] else 0)  # earlier tasks', then the reference
            total = total + matmul_cost(grams * n * n * sum(units), 3 * (k - 1) * n * sum(units))
        if head[point]:
            total = total + forward_cost(layers, k * n, pixels)
            # the class sums, then every probe image's distance to every class mean; the
            # linear probe's Gram matrix, its solve (a third of d³ for the factorisation),
            # its right-hand side and its scores (d: the features and a bias)
            d = features + 1
            probe = k * n * d * d + d**3 // 3 + 2 * k * n * d * classes
            total = total + matmul_cost(2 * k * n * classes * features + probe)
    return total


def _sharpness_cost(config, layers: list[Layer], image: tuple[int, ...], test_size: int) -> Cost:
    """At each task's end, for each seen task: one gradient pass with its graph kept, then
    2·iterations Hessian-vector products, each counted as two forward and backward passes
    (double back-propagation's usual cost; an estimate, not a count of its operations)."""
    if not config.sharpness_iterations:
        return ZERO
    n = min(config.probe_size, test_size)
    one = forward_cost(layers, n, math.prod(image)) + backward_cost(layers, n)
    tasks = config.task_count
    losses = tasks * (tasks + 1) // 2  # task k's end measures k losses
    return one * (losses * (1 + 4 * config.sharpness_iterations))


def _gradients_cost(config, layers: list[Layer], image: tuple[int, ...]) -> Cost:
    """At each batch of the gradient anatomy's windows: a forward pass of the batch (its
    replayed examples included) and two backward passes, one for each part's mean loss."""
    if not config.gradients_window:
        return ZERO
    total = ZERO
    for t in np.flatnonzero(around_switches(config)):
        task = int(t) // config.batches_per_task + 1
        batch = config.task_batch_size(task) + replayed_examples(config, task)
        total = total + forward_cost(layers, batch, math.prod(image))
        total = total + backward_cost(layers, batch) * 2
    return total
