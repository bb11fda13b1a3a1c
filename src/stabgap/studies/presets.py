"""Named studies: a base config, its experiments (each a few overrides) and seeds.

``paper`` is the reference protocol of docs/protocol.md, quirks included, with its 16
experiments under readable names (their reference numbers kept for importing its
results). ``quick`` is the same study scaled down to run on a laptop CPU; its scale was
calibrated by measurement (docs/results.md). Where scaling changes a value that a paper
name states (λ, width), the quick experiment is named by its role instead (``nd-weak``,
``baseline-narrow``), so that no name says something the run does not do.

Seeds: a preset's seeds are the first ``n_seeds`` of one fixed sequence,
:func:`seed_sequence`: the reference's 15 seeds, then seeds drawn from
``random.Random(2958)``. Ask a preset for more seeds than its default and you get the
next ones of that sequence, the same on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from stabgap.core.config import FIELDS, RunConfig, check_field, drop_stale, from_dict, to_dict
from stabgap.errors import StabgapError, did_you_mean

PAPER_SEEDS = (
    290353, 105883, 942000, 2958, 876171, 42775, 948129, 446869,
    9782, 153441, 72745, 777330, 372621, 94467, 812518,
)  # fmt: skip

ND_LAMBDA = 1e-5


def seed_sequence(n: int) -> tuple[int, ...]:
    """The first `n` seeds of stabgap's seed sequence (the reference's 15 come first).

    Example:
        >>> seed_sequence(2)
        (290353, 105883)
        >>> len(set(seed_sequence(40))), seed_sequence(16)[:15] == PAPER_SEEDS
        (40, True)
    """
    seeds = list(PAPER_SEEDS[:n])
    draw = random.Random(2958)
    while len(seeds) < n:
        s = draw.randrange(1, 1_000_000)
        if s not in seeds:
            seeds.append(s)
    return tuple(seeds)


# The reference's experiments, numbered as in its code: name → (number, overrides).
PAPER_EXPERIMENTS: dict[str, tuple[int, dict[str, Any]]] = {
    "baseline": (1, {}),
    "no-replay": (2, {"replay": "none"}),
    "nd-no-replay": (3, {"replay": "none", "decay_lambda": ND_LAMBDA}),
    "nd": (4, {"decay_lambda": ND_LAMBDA}),
    "nd-lambda-1e-7": (5, {"decay_lambda": 1e-7}),
    "nd-lambda-5e-5": (6, {"decay_lambda": 5e-5}),
    "baseline-lr-1e-4": (7, {"lr": 1e-4}),
    "nd-lr-1e-4": (8, {"lr": 1e-4, "decay_lambda": ND_LAMBDA}),
    "baseline-lr-1e-2": (9, {"lr": 1e-2}),
    "nd-lr-1e-2": (10, {"lr": 1e-2, "decay_lambda": ND_LAMBDA}),
    "baseline-width-1024": (11, {"hidden": [1024, 1024]}),
    "nd-width-1024": (12, {"hidden": [1024, 1024], "decay_lambda": ND_LAMBDA}),
    "baseline-width-4096": (13, {"hidden": [4096, 4096]}),
    "nd-width-4096": (14, {"hidden": [4096, 4096], "decay_lambda": ND_LAMBDA}),
    "baseline-profile": (15, {"rotations": [0]}),
    "nd-profile": (16, {"rotations": [0], "decay_lambda": ND_LAMBDA}),
}


@dataclass(frozen=True)
class Preset:
    """A study: every experiment is ``base`` plus its overrides, run for every seed."""

    name: str
    description: str
    base: RunConfig
    experiments: dict[str, dict[str, Any]]
    n_seeds: int  # how many seeds of seed_sequence() a study runs unless told otherwise
    default_experiments: tuple[str, ...]  # what `stabgap run` runs when none is named
    baseline: str = "baseline"  # the experiment the others are compared with by default
    # the fields each experiment sets that are the user's (a study file's [experiments.NAME]
    # table): refused where they do not apply, as the user's overrides are, never put back
    kept: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def seeds(self) -> tuple[int, ...]:
        """The default seeds: the first `n_seeds` of :func:`seed_sequence`."""
        return seed_sequence(self.n_seeds)

    def config(self, experiment: str, overrides: dict[str, Any] | None = None) -> RunConfig:
        """The config of `experiment`, with the user's overrides applied last."""
        if experiment not in self.experiments:
            raise StabgapError(
                f"preset '{self.name}' has no experiment '{experiment}'"
                f"{did_you_mean(experiment, self.experiments)}; "
                f"choose from: {', '.join(self.experiments)}"
            )
        overrides = {check_field(k): v for k, v in (overrides or {}).items()}
        own = self.experiments[experiment]
        values = {**to_dict(self.base), **own, **overrides}
        # A preset's own setting for a network or stream the user has swapped out (the
        # quick preset's MLP widths in a run given --model vit) goes back to its default;
        # the user's own settings are still refused where they do not apply.
        keep = set(overrides) | set(self.kept.get(experiment, ()))
        return from_dict(drop_stale(values, keep=keep))


# The reference's protocol, quirks and all (docs/protocol.md).
PAPER_BASE = RunConfig(
    rotations=(0.0, 80.0, 160.0),
    hidden=(2048, 2048),
    decay_reduction="sum",
    optimizer="adam",
    lr=1e-3,
    batches_per_task=500,
    batch_size=512,
    batch_growth="always",
    replay="full",
    batch_order="cycle",
    drop_last=False,
    eval_every=1,
    eval_tasks="seen",
    eval_subset=2000,
    eval_subset_rounding="batches",
    eval_resample="fresh",
)

# The same study at laptop scale: narrower network, smaller batches, fewer of them.
# λ is rescaled because ND is a sum over the batch and the units (calibrated: docs/results.md).
QUICK_LAMBDA = 1e-4
QUICK_BASE = PAPER_BASE.replace(
    hidden=[256, 256], batches_per_task=300, batch_size=128, eval_subset=500
)


# The quick names of the paper experiments whose names state a value that scaling changes.
QUICK_NAMES = {
    "nd-lambda-1e-7": "nd-weak",
    "nd-lambda-5e-5": "nd-strong",
    "baseline-width-1024": "baseline-narrow",
    "nd-width-1024": "nd-narrow",
    "baseline-width-4096": "baseline-wide",
    "nd-width-4096": "nd-wide",
}


def _scaled(experiments: dict[str, tuple[int, dict[str, Any]]], lam: float, widths: dict):
    """The paper's experiments with λ and widths mapped to another scale, renamed by role
    where the paper's name states the value that changed."""
    out = {}
    for name, (_, overrides) in experiments.items():
        o = dict(overrides)
        if "decay_lambda" in o:
            o["decay_lambda"] = o["decay_lambda"] / ND_LAMBDA * lam
        if "hidden" in o:
            o["hidden"] = widths[o["hidden"][0]]
        out[QUICK_NAMES.get(name, name)] = o
    return out


# --- other streams and the CNN, at quick scale ------------------------------------------------
# Calibrated by benchmarks/calibrate_streams.py (table in docs/streams-and-models.md): each stream's
# baseline with full replay shows a task-1 gap of at least 5 p.p. (permuted MNIST with the
# MLP: about 4) and ND shrinks it. ND's λ is a sum over the activations, so it is set per
# network: the CNN has some 4,700 post-ReLU units an image against the MLP's 512.
QUICK_CNN = {"model": "cnn", "channels": [4, 8], "hidden": [64], "eval_every": 2}
QUICK_CNN_LAMBDA = 1e-5


# The ViT and the reduced ResNet at a scale that runs in a minute or so here: shorter tasks,
# evaluated at every batch for the 20 after each switch and every 5th elsewhere (the
# evaluation schedule: docs/metrics.md). Both have no dense hidden layers to set.
QUICK_SHORT = {"batches_per_task": 100, "eval_every": 5, "eval_switch_window": 20}
NO_HIDDEN = {"hidden": FIELDS["hidden"].default}
QUICK_VIT = {"model": "vit", **NO_HIDDEN, "vit_patch": 7, "vit_dim": 32, "vit_depth": 2,
             "vit_heads": 2, **QUICK_SHORT}  # fmt: skip
QUICK_RESNET = {"model": "resnet", **NO_HIDDEN, "resnet_width": 8, **QUICK_SHORT}
# ND's λ for the ViT: 1e-5 shrank its gap on split MNIST (43.6 → 32.6), not on rotated MNIST
# (8.3 → 10.0): calibration table, docs/streams-and-models.md.
QUICK_VIT_LAMBDA = 1e-5
QUICK_RESNET_LAMBDA = 1e-6  # GD_1,2 32.0 → 18.8 (calibration table)


def _stream_experiments(lam: float) -> dict[str, dict[str, Any]]:
    return {
        "baseline": {},
        "nd": {"decay_lambda": lam},
        "no-replay": {"replay": "none"},
        "nd-no-replay": {"replay": "none", "decay_lambda": lam},
    }


def _stream_preset(name: str, description: str, base: RunConfig, lam: float) -> Preset:
    return Preset(
        name=name,
        description=description,
        base=base,
        experiments=_stream_experiments(lam),
        n_seeds=3,
        default_experiments=("baseline", "nd"),
    )


# --- Split CIFAR with the reduced ResNet-18, as the field's papers ran it ------------------------
# Each from its authors' repository (facts of their protocol; the data is not here, so these
# presets have not been run: README). Not reproduced: their per-channel standardisation of the
# pixels (stabgap feeds pixels in [0, 1]) and, for Hess et al., a memory with a fixed share
# per class from the start (stabgap's class-balanced memory shares among the classes seen).
RESNET_18 = {"model": "resnet", **NO_HIDDEN, "resnet_width": 20, "resnet_norm": "batch"}
CIFAR_ER = {"replay": "memory", "memory": "class-balanced", "batch_growth": "never"}
CIFAR_EVAL = {"eval_every": 1, "eval_tasks": "seen", "eval_subset": 1000,
              "eval_subset_rounding": "exact"}  # fmt: skip
# De Lange et al. (ICLR 2023), reproduce/configs/CIFAR10_ER.yaml of Mattdl/ContinualEvaluation:
# 5 tasks of 2 classes (class-incremental, label order), SGD at 0.1 with momentum 0.9, batches
# of 256 new and 256 replayed examples, 10 epochs a task (40 batches a pass over a task's
# 10,000 images, the last of 16), ER from a class-balanced memory of 1,000 with the new
# examples weighted 0.7, every task seen evaluated at every batch on 1,000 test images, 5 seeds.
CIFAR10_BASE = RunConfig(
    dataset="cifar10", stream="split", classes_per_task=2, scenario="class", **RESNET_18,
    optimizer="sgd", lr=0.1, momentum=0.9, batch_size=256, batches_per_task=400,
    batch_order="reshuffle", drop_last=False, **CIFAR_ER, memory_size=1000, replay_weight=0.7,
    **CIFAR_EVAL,
)  # fmt: skip
# Hess et al. (2024), reproduce/benchmark/split_cifar100_offline.yml and the README of
# TimmHess/TwoComplementaryPerspectivesCL: 10 tasks of 10 classes, 400 batches of 128 a task,
# SGD with momentum 0.9 (lr: their parser's default, 0.1), ER from a memory of 10,000 (their
# offline setting) with the new examples weighted 0.5 (their default), evaluated as above.
CIFAR100_BASE = CIFAR10_BASE.replace(
    dataset="cifar100", classes_per_task=10, batch_size=128, memory_size=10000,
    replay_weight=0.5,
)  # fmt: skip
# ND's λ on the ResNet at width 20 (some 97,000 post-ReLU units a 32 × 32 image), scaled from
# the quick ResNet's calibrated value by the units: not calibrated on CIFAR.
CIFAR_ND_LAMBDA = 3e-7


def _cifar_preset(name: str, description: str, base: RunConfig) -> Preset:
    no_memory = {"replay": "none", "memory": FIELDS["memory"].default,
                 "memory_size": FIELDS["memory_size"].default, "replay_weight": 0.0}  # fmt: skip
    return Preset(
        name=name,
        description=description,
        base=base,
        experiments={
            "er": {},
            "nd": {"decay_lambda": CIFAR_ND_LAMBDA},
            "er-ace": {"er_ace": True, "replay_weight": 0.0},
            "finetune": no_memory,
        },
        n_seeds=5,
        default_experiments=("er", "nd"),
        baseline="er",
    )


# --- the stability-gap example of GMvandeVen/continual-learning (StabilityGap/) -----------------
# As that script runs: plain SGD at lr 0.1 with a new optimiser each task, incremental joint
# training (full replay, batch 128·k), a new shuffled pass whenever one is used up with the
# last partial batch dropped, 500 iterations a task, and task 1 (here every task seen)
# evaluated before each update on test batches of 512 until at least 2,000 images: 2,048.
GV_BASE = PAPER_BASE.replace(
    hidden=[400, 400],
    optimizer="sgd",
    lr=0.1,
    reset_optimizer=True,
    batch_size=128,
    batch_growth="replay",
    batch_order="reshuffle",
    drop_last=True,
    eval_subset=2000,
    eval_subset_rounding="batches",
    eval_batch_size=512,
)


# --- every remedy on one protocol ----------------------------------------------------------------
# Each remedy with a strength at three values, named by the value (so that no name claims a
# value the run does not use). A plain `--preset remedies` runs the baseline and each remedy
# at the strength that benchmarks/choose_remedies.py picked on two seeds the study does not
# use (rule and figures: docs/remedies.md); `--experiments all` runs every strength.
REMEDY_STRENGTHS: dict[str, tuple[str, dict[str, Any], tuple]] = {
    "nd": ("decay_lambda", {}, (1e-5, 1e-4, 1e-3)),
    "l1": ("l1_lambda", {}, (1e-5, 1e-4, 1e-3)),
    "l2": ("l2_lambda", {}, (1e-5, 1e-4, 1e-3)),
    "ema": ("ema_decay", {}, (0.9, 0.99, 0.999)),
    "sam": ("sam_rho", {}, (0.01, 0.05, 0.2)),
    "lpr": ("lpr_omega", {}, (0.1, 1.0, 10.0)),
    "warmup": ("switch_lr_batches", {"switch_lr": "warmup"}, (25, 50, 100)),
    "low-lr": ("switch_lr_batches", {"switch_lr": "low"}, (25, 50, 100)),  # at the factor 0.1
}
# The remedies without a strength. SGD's rates: 0.1 alone, 0.01 with momentum 0.9, so that
# both take steps of the same size once momentum has built up (lr / (1 − 0.9)). The groups
# that test the findings reported on this protocol vary one field, as their studies did:
# momentum at SGD's fixed rate of 0.1, and a smaller constant learning rate
# (stabgap.analysis.claims).
REMEDY_FIXED: dict[str, dict[str, Any]] = {
    "baseline": {},
    "reset": {"reset_optimizer": True},
    "adamw": {"optimizer": "adamw", "weight_decay": 0.01},
    "sgd": {"optimizer": "sgd", "lr": 0.1},
    "sgd-momentum": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9},
    "sgd-nesterov": {"optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "nesterov": True},
    "momentum-0.5": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.5},
    "momentum-0.9": {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9},
    "lr-1e-4": {"lr": 1e-4},
}
# Chosen by benchmarks/choose_remedies.py (docs/remedies.md): the strength with the smallest
# task-1 gap among those that keep the final accuracy within 1 p.p. of the baseline's.
REMEDY_CHOSEN = {
    "nd": 1e-4,
    "l1": 1e-5,
    "l2": 1e-5,
    "ema": 0.99,
    "sam": 0.2,
    "lpr": 10.0,
    "warmup": 100,
    "low-lr": 50,
}


def remedy_name(remedy: str, value: Any) -> str:
    """An experiment's name in the `remedies` preset: the remedy and its strength."""
    text = f"{value:.0e}".replace("e-0", "e-") if 0 < value <= 1e-3 else f"{value:g}"
    return f"{remedy}-{text}"


def _remedy_experiments() -> dict[str, dict[str, Any]]:
    experiments = dict(REMEDY_FIXED)
    for remedy, (strength, extra, values) in REMEDY_STRENGTHS.items():
        for value in values:
            experiments[remedy_name(remedy, value)] = {**extra, strength: value}
    return experiments


# --- the field's methods, with bounded memories ---------------------------------------------------
# Each method at the memory sizes of the field's small and large settings (and unbounded ER:
# a reservoir larger than every example a run offers keeps them all). The strengths are the
# methods' own hyperparameters, chosen by benchmarks/choose_methods.py on two seeds the
# study does not use, by final accuracy as the methods' papers choose them (choosing by the
# gap would bias the study's findings about the gap): docs/methods.md.
MEMORY_SIZES = (200, 2000)
METHOD_STRENGTHS: dict[str, tuple[dict[str, Any], tuple[dict[str, Any], ...]]] = {
    # method: (settings, strengths to choose among)
    "der": ({}, ({"der_alpha": 0.1}, {"der_alpha": 0.3}, {"der_alpha": 1.0})),
    "derpp": (
        {},
        tuple({"der_alpha": a, "der_beta": b} for a in (0.1, 0.3) for b in (0.5, 1.0)),
    ),
    "ewc": ({}, ({"ewc_lambda": 1e2}, {"ewc_lambda": 1e3}, {"ewc_lambda": 1e4})),
    "lwf": ({}, ({"lwf_lambda": 0.3}, {"lwf_lambda": 1.0}, {"lwf_lambda": 3.0})),
}
# Chosen per stream (index into the strengths above), at M = 200.
METHOD_CHOSEN: dict[str, dict[str, int]] = {
    "split": {"der": 0, "derpp": 1, "ewc": 1, "lwf": 1},
    "rotated": {"der": 2, "derpp": 3, "ewc": 1, "lwf": 2},
}
METHOD_FIXED: dict[str, dict[str, Any]] = {
    # method: settings, at each memory size (those without a memory: once)
    "er": {"replay": "memory"},
    "er-ace": {"replay": "memory", "er_ace": True},
    "agem": {"agem": True, "memory": "task-balanced"},  # A-GEM as published
    "er-agem": {"replay": "memory", "agem": True},  # the projection added to ER
}


def strength_name(method: str, strength: dict[str, Any]) -> str:
    """An experiment's name part for a method's strength: ``der-0.3``, ``derpp-0.1-0.5``."""
    return "-".join([method, *(f"{v:g}" for v in strength.values())])


def _method_experiments(stream: str, offered: int) -> tuple[dict, tuple[str, ...]]:
    """Every experiment of a methods preset, and its default set (the chosen strengths).

    `offered`: how many examples a run offers its memory, so that ``er-all`` keeps them all.
    """
    experiments: dict[str, dict[str, Any]] = {}
    default: list[str] = []

    def add(name: str, settings: dict[str, Any], chosen: bool) -> None:
        experiments[name] = settings
        if chosen:
            default.append(name)

    for m in MEMORY_SIZES:
        for method, settings in METHOD_FIXED.items():
            add(f"{method}-{m}", {**settings, "memory_size": m}, True)
    add("er-all", {"replay": "memory", "memory_size": offered}, True)
    add("finetune", {}, True)
    for method, (settings, strengths) in METHOD_STRENGTHS.items():
        pick = METHOD_CHOSEN[stream][method]
        memory = METHODS_WITH_MEMORY.get(method)
        for i, strength in enumerate(strengths):
            name = strength_name(method, strength)
            if memory is None:
                add(name, {**settings, **strength}, i == pick)
                continue
            for m in MEMORY_SIZES:
                add(f"{name}-{m}", {**settings, **strength, memory: m}, i == pick)
    # A remedy on a method: ND on ER with the small memory.
    add("nd-er-200", {"replay": "memory", "memory_size": 200, "decay_lambda": QUICK_LAMBDA}, True)
    return experiments, tuple(default)


METHODS_WITH_MEMORY = {"der": "memory_size", "derpp": "memory_size"}


def _methods_preset(name: str, description: str, base: RunConfig, stream: str) -> Preset:
    experiments, default = _method_experiments(
        stream, base.task_count * base.batches_per_task * base.batch_size
    )
    return Preset(name, description, base, experiments, 3, default, baseline="er-200")


# The quick protocol with a fixed batch: batch_size new examples (and as many replayed).
METHODS_BASE = QUICK_BASE.replace(batch_growth="never", replay="none")


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        description="The poster's protocol exactly (docs/protocol.md): 16 experiments, 15 seeds.",
        base=PAPER_BASE,
        experiments={name: o for name, (_, o) in PAPER_EXPERIMENTS.items()},
        n_seeds=15,
        default_experiments=("baseline", "nd"),
    ),
    "quick": Preset(
        name="quick",
        description="The same study scaled for a laptop CPU (under a minute a run).",
        base=QUICK_BASE,
        experiments=_scaled(PAPER_EXPERIMENTS, QUICK_LAMBDA, {1024: [128, 128], 4096: [512, 512]}),
        n_seeds=3,
        default_experiments=("baseline", "nd"),
    ),
    "quick-permuted": _stream_preset(
        "quick-permuted",
        "Permuted MNIST (3 tasks, task 1 unpermuted), the quick MLP.",
        QUICK_BASE.replace(stream="permuted"),
        1e-5,
    ),
    "quick-split": _stream_preset(
        "quick-split",
        "Split MNIST, class-incremental (5 tasks of 2 digits), the quick MLP.",
        QUICK_BASE.replace(stream="split", eval_every=2),
        1e-5,
    ),
    "quick-cnn": _stream_preset(
        "quick-cnn",
        "Rotated MNIST with a small CNN (4 and 8 channels, then 64 units).",
        QUICK_BASE.replace(**QUICK_CNN),
        QUICK_CNN_LAMBDA,
    ),
    # Fashion-MNIST (calibrated like the streams above; docs/streams-and-models.md)
    "quick-fashion": _stream_preset(
        "quick-fashion",
        "Rotated Fashion-MNIST (0°, 80°, 160°), the quick MLP.",
        QUICK_BASE.replace(dataset="fashion-mnist"),
        1e-5,
    ),
    "quick-fashion-split": _stream_preset(
        "quick-fashion-split",
        "Split Fashion-MNIST, class-incremental (5 tasks of 2 kinds), the quick MLP.",
        QUICK_BASE.replace(dataset="fashion-mnist", stream="split", eval_every=2),
        1e-5,
    ),
    "quick-fashion-cnn": _stream_preset(
        "quick-fashion-cnn",
        "Rotated Fashion-MNIST with the small CNN (4 and 8 channels, then 64 units).",
        QUICK_BASE.replace(dataset="fashion-mnist", **QUICK_CNN),
        QUICK_CNN_LAMBDA,
    ),
    "quick-vit": _stream_preset(
        "quick-vit",
        "Rotated MNIST with a small ViT (7 × 7 patches, 2 blocks of 32 features), short tasks.",
        QUICK_BASE.replace(**QUICK_VIT),
        QUICK_VIT_LAMBDA,
    ),
    "quick-resnet": _stream_preset(
        "quick-resnet",
        "Rotated MNIST with the reduced ResNet-18 at 8 base filters, short tasks.",
        QUICK_BASE.replace(**QUICK_RESNET),
        QUICK_RESNET_LAMBDA,
    ),
    "quick-vit-split": _stream_preset(
        "quick-vit-split",
        "Split MNIST, class-incremental, with the small ViT, short tasks.",
        QUICK_BASE.replace(**QUICK_VIT, stream="split"),
        QUICK_VIT_LAMBDA,
    ),
    "quick-resnet-split": _stream_preset(
        "quick-resnet-split",
        "Split MNIST, class-incremental, with the reduced ResNet-18 at 4 base filters.",
        QUICK_BASE.replace(**{**QUICK_RESNET, "resnet_width": 4}, stream="split"),
        QUICK_RESNET_LAMBDA,  # ND did not shrink this gap at 1e-6 or 1e-7 (calibration table)
    ),
    "cifar10-split": _cifar_preset(
        "cifar10-split",
        "Split CIFAR-10 (5 tasks), reduced ResNet-18, ER with 1,000 stored: De Lange et al. "
        "2023 (needs the data: stabgap data download --dataset cifar10).",
        CIFAR10_BASE,
    ),
    "cifar100-split": _cifar_preset(
        "cifar100-split",
        "Split CIFAR-100 (10 tasks), reduced ResNet-18, ER with 10,000 stored: Hess et al. "
        "2024 (needs the data: stabgap data download --dataset cifar100).",
        CIFAR100_BASE,
    ),
    "gv-example": Preset(
        name="gv-example",
        description="The stability-gap example of GMvandeVen/continual-learning: SGD, MLP "
        "400-400, incremental joint training.",
        base=GV_BASE,
        experiments={"baseline": {}, "nd": {"decay_lambda": ND_LAMBDA}},
        n_seeds=3,
        default_experiments=("baseline",),
    ),
    "remedies": Preset(
        name="remedies",
        description="The baseline and every remedy on the quick protocol, 5 seeds.",
        base=QUICK_BASE,
        experiments=_remedy_experiments(),
        n_seeds=5,
        default_experiments=(
            *REMEDY_FIXED,
            *(remedy_name(r, v) for r, v in REMEDY_CHOSEN.items()),
        ),
    ),
    "methods": _methods_preset(
        "methods",
        "The field's methods with bounded memories (ER, ER-ACE, DER, DER++, A-GEM, online "
        "EWC, LwF) on split MNIST, class-incremental, quick scale.",
        METHODS_BASE.replace(stream="split", eval_every=2),
        "split",
    ),
    "methods-rotated": _methods_preset(
        "methods-rotated",
        "The same methods on rotated MNIST (every class in every task), quick scale.",
        METHODS_BASE,
        "rotated",
    ),
}


DEFAULT_PRESET = "quick"  # the preset of a run or study that names none


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise StabgapError(
            f"unknown preset '{name}'{did_you_mean(name, PRESETS)}: "
            f"choose from {', '.join(PRESETS)}"
        )
    return PRESETS[name]
