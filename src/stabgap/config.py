"""The one config of a run: a frozen, typed dataclass, every field documented here once.

The CLI flags (`stabgap run --help`), the TOML config files and the run records are all
derived from :class:`RunConfig`, so a field added here shows up everywhere. A config is
validated when it is built, so no invalid config ever reaches the training loop.

Defaults are what a user would expect; the reference implementation's quirks (see
`PROTOCOL.md`) are options, switched on together by the ``paper`` preset.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin, get_type_hints

from stabgap.errors import StabgapError


def option(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    *,
    per_copy: bool = False,
    stamped: bool = True,
    science: bool = True,
) -> Any:
    """A config field with its documentation, allowed values and role attached.

    Args:
        per_copy: the copies of one stacked computation may differ in this field (a seed,
            a strength such as λ); every other field is shared by the whole stack.
        stamped: part of a run's identity, its stamp (see :func:`stabgap.plan.stamp`);
            where and how fast it ran (device, data folder) is not.
        science: part of what an experiment is, as reports compare it; the seed is a
            replicate of the same experiment, not another one.
    """
    metadata = {
        "help": help,
        "choices": choices,
        "per_copy": per_copy,
        "stamped": stamped,
        "science": science,
    }
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines one training run of one seed."""

    # --- tasks -----------------------------------------------------------------------
    stream: str = option(
        "rotated-mnist",
        "Task stream: each task is one rotation of all of MNIST (domain-incremental).",
        choices=("rotated-mnist",),
    )
    rotations: tuple[float, ...] = option(
        (0.0, 80.0, 160.0),
        "Rotation of each task in degrees, counter-clockwise; one task per angle.",
    )
    # --- model -----------------------------------------------------------------------
    hidden: tuple[int, ...] = option(
        (2048, 2048), "Widths of the MLP's hidden layers (ReLU after each)."
    )
    # --- neuronal decay --------------------------------------------------------------
    decay_lambda: float = option(
        0.0,
        "Neuronal decay strength λ: loss = cross-entropy + λ·ND; 0 turns it off.",
        per_copy=True,
    )
    decay_reduction: str = option(
        "sum",
        "How ND pools the squared post-ReLU hidden activations over the batch: 'sum' "
        "(the reference; its weight grows with the batch size) or 'mean' (per sample).",
        choices=("sum", "mean"),
    )
    # --- optimisation ----------------------------------------------------------------
    optimizer: str = option("adam", "Optimiser.", choices=("adam", "sgd"))
    lr: float = option(1e-3, "Learning rate.", per_copy=True)
    betas: tuple[float, float] = option((0.9, 0.999), "Adam's betas.")
    momentum: float = option(0.0, "SGD momentum.")
    reset_optimizer: bool = option(
        False, "Reset the optimiser's state at each task switch (the reference keeps it)."
    )
    # --- training stream -------------------------------------------------------------
    batches_per_task: int = option(500, "Training batches (updates) per task.")
    batch_size: int = option(512, "Training batch size in task 1 (see batch_growth).")
    batch_growth: str = option(
        "replay",
        "Batch size in task k: 'replay' = batch_size·k when replaying, else batch_size; "
        "'always' = batch_size·k also without replay (the reference's quirk); "
        "'never' = batch_size throughout.",
        choices=("replay", "always", "never"),
    )
    replay: str = option(
        "full",
        "'none': batches from the current task only; 'full': uniform over the union of "
        "all tasks seen (the reference's perfect replay); 'stratified': an equal share "
        "of each batch from every task seen.",
        choices=("none", "full", "stratified"),
    )
    batch_order: str = option(
        "reshuffle",
        "'reshuffle': a new shuffled pass whenever one is used up; 'cycle': shuffle once "
        "per task and cycle through that same order (the reference's quirk).",
        choices=("reshuffle", "cycle"),
    )
    drop_last: bool = option(
        False, "Drop the last, smaller batch of each pass (the reference keeps it)."
    )
    # --- continual evaluation --------------------------------------------------------
    eval_every: int = option(1, "Evaluate every this many batches, before the update.")
    eval_tasks: str = option(
        "seen", "Which tasks to evaluate: those seen so far, or all.", choices=("seen", "all")
    )
    eval_subset: int = option(2000, "Test images per task at each evaluation.")
    eval_subset_rounding: str = option(
        "exact",
        "'exact': eval_subset images; 'batches': whole batches of the current training "
        "batch size until at least eval_subset (the reference's quirk: 2048 or 3072).",
        choices=("exact", "batches"),
    )
    eval_resample: str = option(
        "fresh",
        "'fresh': a new random test subset at every evaluation (the reference); "
        "'fixed': one subset per task for the whole run.",
        choices=("fresh", "fixed"),
    )
    eval_precision: str = option(
        "fp32",
        "Precision of the continual evaluation alone: 'fp32', 'bf16' (autocast) or 'tf32' "
        "(CUDA). Evaluation never feeds back into training, so the training trajectory "
        "is the same whatever this is; only near-tie predictions can flip.",
        choices=("fp32", "bf16", "tf32"),
    )
    # --- run -------------------------------------------------------------------------
    seed: int = option(
        0, "Random seed: initialisation, batches and test subsets.", per_copy=True, science=False
    )
    device: str = option(
        "auto",
        "Torch device: 'auto' (CUDA when there is a GPU, else the CPU), 'cpu', 'cuda', "
        "'cuda:1', ...",
        stamped=False,
        science=False,
    )
    precision: str = option(
        "fp32",
        "Precision of the training step: 'fp32' (exact float32 matmuls, also on a GPU), "
        "'tf32' (CUDA TensorFloat-32) or 'bf16' (autocast).",
        choices=("fp32", "tf32", "bf16"),
    )
    data_dir: str | None = option(
        None,
        "MNIST directory (else $STABGAP_DATA, else the user cache).",
        stamped=False,
        science=False,
    )

    def __post_init__(self) -> None:
        # Normalise user values (lists -> tuples, 1 -> 1.0) so that equal configs compare
        # and hash equal, then check ranges: no invalid config exists past this point.
        for name in FIELDS:
            object.__setattr__(self, name, coerce(name, getattr(self, name)))
        _validate(self)

    # --- derived quantities -----------------------------------------------------------
    @property
    def n_tasks(self) -> int:
        return len(self.rotations)

    @property
    def total_batches(self) -> int:
        return self.n_tasks * self.batches_per_task

    def task_batch_size(self, task: int) -> int:
        """Training batch size during `task` (1-based)."""
        grows = self.batch_growth == "always" or (
            self.batch_growth == "replay" and self.replay != "none"
        )
        return self.batch_size * task if grows else self.batch_size

    def task_eval_size(self, task: int, test_size: int) -> int:
        """Test images per evaluated task while training `task` (1-based)."""
        if self.eval_subset_rounding == "exact":
            return min(self.eval_subset, test_size)
        b = self.task_batch_size(task)
        return min(math.ceil(self.eval_subset / b) * b, test_size)

    def replace(self, **changes: Any) -> RunConfig:
        return from_dict({**to_dict(self), **changes})


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(RunConfig)}
_HINTS = get_type_hints(RunConfig)


def fields_where(role: str) -> tuple[str, ...]:
    """Names of the fields whose metadata marks them `role`: per_copy, stamped or science."""
    return tuple(name for name, f in FIELDS.items() if f.metadata[role])


def to_dict(config: RunConfig) -> dict[str, Any]:
    """Plain, JSON/TOML-friendly dict (tuples become lists)."""
    return {
        k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()
    }


def from_dict(values: dict[str, Any], base: RunConfig | None = None) -> RunConfig:
    """Build a config from user values (TOML, JSON, CLI), on top of `base`."""
    for name in values:
        check_field(name)
    base_values = dataclasses.asdict(base) if base is not None else {}
    return RunConfig(**{**base_values, **values})


def check_field(name: str) -> str:
    """The field's name (dashes read as underscores), or a one-line error with a hint."""
    field_name = name.replace("-", "_")
    if field_name in FIELDS:
        return field_name
    close = difflib.get_close_matches(field_name, FIELDS, n=1)
    hint = f"did you mean '{close[0]}'?" if close else "see `stabgap run --help` for the fields"
    raise StabgapError(f"unknown config field '{name}': {hint}")


def coerce(name: str, value: Any) -> Any:
    """Convert a user value to the type of field `name`, or raise a one-line error."""
    hint = _HINTS[name]
    try:
        return _coerce_to(hint, value)
    except (TypeError, ValueError):
        return _type_error(name, hint, value)


def _type_error(name: str, hint: Any, value: Any):
    raise StabgapError(f"config field '{name}' must be {_type_name(hint)}, got {value!r}") from None


def _coerce_to(hint: Any, value: Any) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
            raise TypeError
        item = args[0]
        items = tuple(_coerce_to(item, v) for v in value)
        if args[-1] is not Ellipsis and len(items) != len(args):
            raise ValueError
        return items
    if type(None) in args:  # Optional[X]
        if value is None:
            return None
        return _coerce_to(next(a for a in args if a is not type(None)), value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if hint is int:
        if isinstance(value, bool) or not float(value).is_integer():
            raise TypeError
        return int(value)
    if hint is float:
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TypeError
        return value
    raise TypeError


def _type_name(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        return "a list of " + {int: "integers", float: "numbers"}[args[0]]
    if type(None) in args:
        return _type_name(next(a for a in args if a is not type(None))) + " or unset"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]


def _validate(c: RunConfig) -> None:
    """Check every field's range and choices; the first problem is a one-line error."""
    for name, f in FIELDS.items():
        value = getattr(c, name)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise StabgapError(
                f"config field '{name}' must be one of {', '.join(choices)}; got {value!r}"
            )
    checks = [
        (len(c.rotations) >= 1, "rotations must list at least one angle (one task each)"),
        (all(math.isfinite(r) for r in c.rotations), "rotations must be finite numbers"),
        (len(c.hidden) >= 1 and all(w >= 1 for w in c.hidden), "hidden widths must be >= 1"),
        (
            c.decay_lambda >= 0 and math.isfinite(c.decay_lambda),
            f"decay_lambda must be a finite number >= 0, got {c.decay_lambda}",
        ),
        (c.lr > 0 and math.isfinite(c.lr), f"lr must be a positive finite number, got {c.lr}"),
        (all(0 <= b < 1 for b in c.betas), "betas must be in [0, 1)"),
        (0 <= c.momentum < 1, "momentum must be in [0, 1)"),
        (c.batches_per_task >= 1, "batches_per_task must be >= 1"),
        (c.batch_size >= 1, "batch_size must be >= 1"),
        (c.eval_every >= 1, "eval_every must be >= 1"),
        (
            c.eval_every <= c.batches_per_task,
            "eval_every must be <= batches_per_task (at least one evaluation per task)",
        ),
        (c.eval_subset >= 1, "eval_subset must be >= 1"),
        (
            c.replay != "stratified" or c.task_batch_size(c.n_tasks) >= c.n_tasks,
            f"stratified replay needs at least one sample per task in every batch: batch "
            f"size {c.task_batch_size(c.n_tasks)} in task {c.n_tasks} is smaller than its "
            f"{c.n_tasks} tasks (raise batch_size or use batch_growth='replay')",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise StabgapError(f"invalid config: {message}")


def help_text(name: str) -> str:
    f = FIELDS[name]
    return f.metadata["help"]
