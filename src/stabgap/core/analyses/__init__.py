"""Why the gap: analyses measured while the network learns, each off by default.

- **Representation drift** (``drift_every``): for a fixed probe set of each earlier task's
  test images, each hidden layer's linear CKA with, and relative change from, its features
  at the last drift point before the latest task switch.
- **Head or backbone** (``head_every``): the network's accuracy on each seen task's probe
  set, and that of a nearest-mean classifier on the same penultimate features (the output
  layer's input), its means from a fixed sample of each seen task's training images (the
  data the run has seen, not a pass over it), one mean per task and class (a
  domain-incremental stream's digit at 0° and at 80° are two means), each class scored by
  its nearest mean; and that of a linear probe refitted at each point, in closed form
  (ridge regression of one-hot labels on the same sample's features). If these keep an old
  task's accuracy where the network loses it, the drop is the output layer's, not the
  features' (Łapacz et al., WACV 2025).
- **Sharpness** (``sharpness_iterations``): at each task's last point (the weights the next
  switch starts from), for every seen task's training loss on its sample, the Hessian's
  eigenvalue of largest magnitude (power iteration) and its trace (Hutchinson), from
  Hessian-vector products.
- **Gradient anatomy** (``gradients_window``): at each training batch within that many of a
  switch (before and after), the gradient of the batch's current-task examples and of its
  replayed ones (earlier tasks': the union's, the stratified share's or the memory's), at
  the step's weights: each one's norm per parameter tensor and the cosine between them. It
  is the plain cross-entropy of each part, whatever loss the run trains with (a method's
  own terms are not in it), on the trained weights (not EMA's average: the update's).
- **Loss along the path** (``path_points``): at each task's last point after the first,
  the earlier tasks' loss and accuracy on their probe sets at ``path_points`` + 2 evenly
  spaced points of the straight line from the weights at the last point before the switch
  to these (both ends included; floating buffers interpolated with the weights). A loss
  above the line joining its two ends is a barrier: SGD left the low-loss path between the
  two solutions (Kamath et al. 2024 found one that it does not take).

Drift and the head run at their own cadence of evaluation points (every k-th, and always
the last point of each task, as the activity statistics:
:func:`stabgap.core.evaluate.activity_points`), on probe sets of ``probe_size`` images a
task drawn once from the copy's own random stream (``derive_seed(seed, "probes")``). All
run in evaluation mode and in float32 (drift and the head without gradients; the
sharpness's products through ``torch.autograd.grad``, its random vectors from
``derive_seed(seed, "hessian")``), on the weights the run evaluates (EMA's average where
EMA is on, as its accuracy is measured there), and touch nothing the update uses: a run's
training is the same with them on (tests/test_analyses.py). The quantities are pure functions
(:mod:`stabgap.core.analyses.measures`); their cost is in ``stabgap cost``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from stabgap.core.analyses.measures import (
    centred_gram,
    class_means,
    hessian_top_and_trace,
    linear_cka,
    linear_probe_scores,
    nearest_mean_scores,
    part_gradients,
    relative_change,
)
from stabgap.core.evaluate import activity_points
from stabgap.core.losses import cross_entropy, per_example_cross_entropy
from stabgap.core.models import evaluating
from stabgap.core.streams import TaskStream, pixels, rows
from stabgap.errors import StabgapError
from stabgap.seeds import derive_seed

if TYPE_CHECKING:
    from stabgap.core.config import RunConfig

# What each analysis records, per copy: (points, tasks, layers) for drift, (points, tasks)
# for the head; NaN where not measured.
DRIFT = ("drift_cka", "drift_change")
HEAD = ("probe_acc", "nmc_acc", "linear_acc")
SHARPNESS = ("sharpness", "hessian_trace")  # (tasks ended, tasks): at each task's end
# (batches, parameter tensors) and (batches,): at the training batches around each switch
GRADIENTS = ("grad_new_norm", "grad_replay_norm", "grad_cosine")
# (tasks ended, points on the segment, tasks): along the line from each switch to the task's end
PATH = ("path_loss", "path_acc")
RECORDED = DRIFT + HEAD + SHARPNESS + GRADIENTS + PATH


def wanted(config: RunConfig) -> bool:
    """Whether the run measures any analysis."""
    return bool(
        config.drift_every
        or config.head_every
        or config.sharpness_iterations
        or config.gradients_window
        or config.path_points
    )


def around_switches(config: RunConfig) -> np.ndarray:
    """Which training batches the gradient anatomy reads: gradients_window batches before
    and after each switch (a boolean mask over the run's batches).

    >>> from stabgap.core.config import RunConfig
    >>> around_switches(RunConfig(batches_per_task=4, gradients_window=1)).astype(int).tolist()
    [0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0]
    """
    t = np.arange(config.total_batches)
    since = t % config.batches_per_task  # batches since the task began
    after = (t >= config.batches_per_task) & (since < config.gradients_window)
    before = (t < config.total_batches - config.batches_per_task) & (
        since >= config.batches_per_task - config.gradients_window
    )
    return after | before


def probe_count(config: RunConfig, stream: TaskStream) -> int:
    """Probe images a task: probe_size, or fewer where a task has fewer."""
    sizes = [stream.test_size(t) for t in range(1, stream.n_tasks + 1)]
    sizes += [stream.train_size(t) for t in range(1, stream.n_tasks + 1)]
    return min(config.probe_size, *sizes)


class Analyses:
    """The analyses of a stack of runs, measured at the evaluation points they choose."""

    def __init__(
        self,
        configs: Sequence[RunConfig],
        stream: TaskStream,
        model: torch.nn.Module,
        eval_steps: np.ndarray,
        device: torch.device,
    ) -> None:
        base = configs[0]
        reads_features = base.drift_every or base.head_every
        if reads_features and not (hasattr(model, "body") and hasattr(model, "output")):
            raise StabgapError(
                f"invalid config: the analyses read a network's penultimate features, which "
                f"model {base.model} does not expose (a `body` and an `output` method: "
                "docs/extending.md); leave drift_every and head_every at 0"
            )
        self.stream, self.r, per_task = stream, len(configs), base.batches_per_task
        self.drift_at = activity_points(eval_steps, per_task, base.drift_every)
        self.head_at = activity_points(eval_steps, per_task, base.head_every)
        task_of = eval_steps // per_task
        self.last_of_task = np.append(task_of[1:] != task_of[:-1], True)
        self.n = n = probe_count(base, stream)
        test, train = [], []
        for c in configs:  # each copy its own probe sets, from its own stream
            g = torch.Generator().manual_seed(derive_seed(c.seed, "probes"))
            test.append([_first(stream.test_size(t), n, g) + stream.test_offsets[t - 1]
                         for t in range(1, stream.n_tasks + 1)])  # fmt: skip
            train.append([_first(stream.train_size(t), n, g) + stream.train_offsets[t - 1]
                          for t in range(1, stream.n_tasks + 1)])  # fmt: skip
        self.test = torch.stack([torch.stack(t) for t in test]).to(device)  # (R, T, n)
        self.train = torch.stack([torch.stack(t) for t in train]).to(device)
        self.shape = (self.r, len(eval_steps), stream.n_tasks)
        self.values: dict[str, torch.Tensor] = {}  # each analysis's, once it first measures
        self.reference: list[tuple[torch.Tensor, torch.Tensor]] = []  # per layer: (h, gram)
        self.checked = False
        self.window = around_switches(base) if base.gradients_window else None
        self.iterations = base.sharpness_iterations
        self.alphas = torch.linspace(0, 1, base.path_points + 2) if base.path_points else None
        self.switch_state: dict[str, torch.Tensor] | None = None  # the weights at the switch
        self.hessian_generators = [
            torch.Generator().manual_seed(derive_seed(c.seed, "hessian")) for c in configs
        ]

    def measure(self, point: int, net: torch.nn.Module, task: int) -> None:
        """The analyses due at evaluation `point`, while training `task` (1-based)."""
        self._probe(point, net, task)
        if self.iterations and self.last_of_task[point]:
            self._sharpness(net, task)
        if self.alphas is not None and self.last_of_task[point]:
            if task > 1:
                self._path(net, task)
            self.switch_state = {k: v.detach().clone() for k, v in net.state_dict().items()}

    @torch.no_grad()
    def _probe(self, point: int, net: torch.nn.Module, task: int) -> None:
        drift, head = bool(self.drift_at[point]), bool(self.head_at[point])
        if not (drift or head):
            return
        flat = self.test[:, :task].reshape(self.r, -1)  # every seen task's probe set
        images = pixels(rows(self.stream.test_x, flat))
        with evaluating(net):
            features, hidden = net.body(images)
            if not self.checked:  # the features read are those the network's output reads
                _check_split(net, images, features)
                self.checked = True
            if drift:
                self._drift(point, task, hidden)
            if head:
                self._head(point, task, net, features, flat)

    def _drift(self, point: int, task: int, hidden: list[torch.Tensor]) -> None:
        layers = [h.float().reshape(self.r, task, self.n, -1) for h in hidden]
        self._start(DRIFT, (*self.shape, len(layers)), layers[0].device)
        if self.reference and task > 1:  # the earlier tasks, against the last switch
            for layer, (h, (before, gram)) in enumerate(zip(layers, self.reference, strict=True)):
                now = h[:, : task - 1]
                self.values["drift_cka"][:, point, : task - 1, layer] = linear_cka(
                    centred_gram(now), gram[:, : task - 1]
                )
                self.values["drift_change"][:, point, : task - 1, layer] = relative_change(
                    before[:, : task - 1], now
                )
        if self.last_of_task[point]:  # the next task's reference
            self.reference = [(h, centred_gram(h)) for h in layers]

    def _head(
        self,
        point: int,
        task: int,
        net: torch.nn.Module,
        features: torch.Tensor,
        flat: torch.Tensor,
    ) -> None:
        stream = self.stream
        self._start(HEAD, self.shape, features.device)
        labels = stream.test_y[flat]
        seen = self.train[:, :task].reshape(self.r, -1)  # the training sample of tasks seen
        sample, _ = net.body(pixels(rows(stream.train_x, seen)))
        # One mean per task and class: in a domain-incremental stream a digit at 0° and at
        # 80° are two means, not one mean of both (which would move at each switch however
        # little the features do); a class's score is its nearest mean's.
        c = stream.n_classes
        task_of = torch.arange(task, device=seen.device).repeat_interleave(self.n)
        means, present = class_means(sample.float(), stream.train_y[seen] + c * task_of, task * c)
        nearest = nearest_mean_scores(features.float(), means, present)  # (R, m, task·C)
        nmc = nearest.reshape(self.r, -1, task, c).amax(dim=2)
        linear = linear_probe_scores(sample.float(), stream.train_y[seen], c, features.float())
        for key, scores in (
            ("probe_acc", net.output(features).float()),
            ("nmc_acc", nmc),
            ("linear_acc", linear),
        ):
            scored = stream.restrict(scores, task, flat, train=False)
            right = (scored.argmax(dim=-1) == labels).reshape(self.r, task, self.n)
            self.values[key][:, point, :task] = 100.0 * right.float().mean(dim=-1)

    def before_step(self, t: int, task: int, index: torch.Tensor, model: torch.nn.Module) -> None:
        """At training batch `t` (about to update on examples `index`, (R, B)): the gradient
        of the current task's examples and of the replayed ones (earlier tasks'), at the
        step's weights, in evaluation mode (batch norm's running statistics, left alone)."""
        if self.window is None or not self.window[t]:
            return
        stream = self.stream
        params = list(model.parameters())
        with evaluating(model):
            logits = model(pixels(rows(stream.train_x, index)))[0]
            losses = per_example_cross_entropy(
                stream.restrict(logits, task, index), stream.train_y[index]
            )
            current = stream.task_of(index) == task - 1
            new, old, cosine = part_gradients(losses, current, params)
        total = len(self.window)
        self._start(GRADIENTS[:2], (self.r, total, len(params)), new.device)
        self._start(GRADIENTS[2:], (self.r, total), new.device)
        self.values["grad_new_norm"][:, t] = new
        self.values["grad_replay_norm"][:, t] = old
        self.values["grad_cosine"][:, t] = cosine

    def _sharpness(self, net: torch.nn.Module, task: int) -> None:
        """At task `task`'s last point: each seen task's training loss on its sample, its
        Hessian's top eigenvalue and trace at the weights the run evaluates."""
        stream, n_tasks = self.stream, self.shape[2]
        self._start(SHARPNESS, (self.r, n_tasks, n_tasks), self.test.device)
        params = list(net.parameters())
        wanted_grad = [p.requires_grad for p in params]  # EMA's average holds none
        for p in params:
            p.requires_grad_(True)
        try:
            with evaluating(net):
                for k in range(1, task + 1):
                    index = self.train[:, k - 1]  # (R, n): task k's training sample

                    def loss_of(index=index) -> torch.Tensor:
                        logits = net(pixels(rows(stream.train_x, index)))[0]
                        scored = stream.restrict(logits, task, index)
                        return cross_entropy(scored, stream.train_y[index])

                    top, trace = hessian_top_and_trace(
                        loss_of, params, self.iterations, self.hessian_generators
                    )
                    self.values["sharpness"][:, task - 1, k - 1] = top
                    self.values["hessian_trace"][:, task - 1, k - 1] = trace
        finally:
            for p, g in zip(params, wanted_grad, strict=True):
                p.requires_grad_(g)

    @torch.no_grad()
    def _path(self, net: torch.nn.Module, task: int) -> None:
        """At task `task`'s last point: the earlier tasks' loss and accuracy on their probe
        sets along the straight line from the weights at the last switch (α = 0) to these
        (α = 1); floating buffers (batch norm's statistics) are interpolated with them."""
        stream, n_tasks = self.stream, self.shape[2]
        self._start(PATH, (self.r, n_tasks, len(self.alphas), n_tasks), self.test.device)
        end = net.state_dict()
        between = copy.deepcopy(net).eval()
        flat = self.test[:, : task - 1].reshape(self.r, -1)  # the earlier tasks' probe sets
        images, labels = pixels(rows(stream.test_x, flat)), stream.test_y[flat]
        for a, alpha in enumerate(self.alphas.tolist()):
            between.load_state_dict(
                {k: _lerp(self.switch_state[k], v, alpha) for k, v in end.items()}
            )
            scored = stream.restrict(between(images)[0], task, flat, train=False)
            losses = per_example_cross_entropy(scored, labels).view(self.r, task - 1, self.n)
            right = (scored.argmax(dim=-1) == labels).view(self.r, task - 1, self.n)
            self.values["path_loss"][:, task - 1, a, : task - 1] = losses.mean(dim=-1)
            self.values["path_acc"][:, task - 1, a, : task - 1] = 100.0 * right.float().mean(-1)

    def _start(self, keys: tuple[str, ...], shape: tuple[int, ...], device) -> None:
        for k in keys:
            if k not in self.values:
                self.values[k] = torch.full(shape, float("nan"), device=device)

    def finish(self) -> list[dict[str, np.ndarray]]:
        """Each copy's recorded arrays (one copy to the host for the whole run)."""
        host = {k: v.cpu().numpy().astype(np.float64) for k, v in self.values.items()}
        return [{k: v[i] for k, v in host.items()} for i in range(self.r)]


def _check_split(net: torch.nn.Module, images: torch.Tensor, features: torch.Tensor) -> None:
    """Refuse a network whose forward is not output(body(x)): its body's features would not
    be what its output layer reads (a subclass that overrides forward alone)."""
    logits = net(images)[0]
    if not torch.allclose(net.output(features), logits, rtol=1e-4, atol=1e-5):
        raise StabgapError(
            f"the analyses read {type(net).__name__}'s features from its body, but its forward "
            "is not output(body(x)); define body and output, and forward as their composition "
            "(docs/extending.md)"
        )


def _lerp(start: torch.Tensor, end: torch.Tensor, alpha: float) -> torch.Tensor:
    """(1 − α)·start + α·end for floating tensors; others (counters) as they end."""
    return torch.lerp(start, end, alpha) if end.is_floating_point() else end


def _first(size: int, n: int, g: torch.Generator) -> torch.Tensor:
    """n indices of a random order of range(size)."""
    return torch.randperm(size, generator=g)[:n]
