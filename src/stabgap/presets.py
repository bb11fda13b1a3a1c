"""Named studies: a base config, its experiments (each a few overrides) and seeds.

``paper`` is the reference protocol of PROTOCOL.md, quirks included, with its 16
experiments under readable names (their reference numbers kept for importing its
results). ``quick`` is the same study scaled down to run on a laptop CPU; its scale was
calibrated by measurement (see the README). Where scaling changes a value that a paper
name states (λ, width), the quick experiment is named by its role instead (``nd-weak``,
``baseline-narrow``), so that no name says something the run does not do.

Seeds: a preset's seeds are the first ``n_seeds`` of one fixed sequence,
:func:`seed_sequence`: the reference's 15 seeds, then seeds drawn from
``random.Random(2958)``. Ask a preset for more seeds than its default and you get the
next ones of that sequence, the same on every machine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from stabgap.config import RunConfig, from_dict
from stabgap.errors import StabgapError

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

    @property
    def seeds(self) -> tuple[int, ...]:
        """The default seeds: the first `n_seeds` of :func:`seed_sequence`."""
        return seed_sequence(self.n_seeds)

    def defining_fields(self) -> tuple[str, ...]:
        """The fields that tell this preset's experiments apart (λ, replay, lr, ...)."""
        return tuple(dict.fromkeys(k for o in self.experiments.values() for k in o))

    def config(self, experiment: str, overrides: dict[str, Any] | None = None) -> RunConfig:
        """The config of `experiment`, with the user's overrides applied last."""
        if experiment not in self.experiments:
            raise StabgapError(
                f"preset '{self.name}' has no experiment '{experiment}'; "
                f"choose from: {', '.join(self.experiments)}"
            )
        return from_dict({**self.experiments[experiment], **(overrides or {})}, self.base)


# The reference's protocol, quirks and all (PROTOCOL.md).
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
# λ is rescaled because ND is a sum over the batch and the units (calibrated, README).
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


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        name="paper",
        description="The poster's protocol exactly (PROTOCOL.md): 16 experiments, 15 seeds.",
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
}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise StabgapError(f"unknown preset '{name}': choose from {', '.join(PRESETS)}")
    return PRESETS[name]
