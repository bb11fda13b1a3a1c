"""The one config of a run: a frozen, typed dataclass, every field documented once.

The core fields are declared here; every extension (dataset, stream, model, optimiser,
remedy: :mod:`stabgap.core.registry`) declares its own in its module, and :class:`RunConfig`
gathers them all. The CLI flags (`stabgap run --help`), the TOML files, the stamps and the
run records all derive from it, so a field added anywhere shows up everywhere. A config is
validated when it is built, so no invalid config ever reaches the training loop: a field a
run would not use (a rotation of a permuted stream, a momentum for Adam) is an error, not
silently ignored.

Defaults are what a user would expect; the reference implementation's quirks (see
docs/protocol.md) are options, switched on together by the ``paper`` preset.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any, get_args, get_origin, get_type_hints

from stabgap.core.data import DATASETS
from stabgap.core.fields import AT_LEAST_ONE, COUNT, POSITIVE, option
from stabgap.core.memories import MEMORIES
from stabgap.core.methods import METHODS, uses_memory
from stabgap.core.models import MODELS
from stabgap.core.optim import OPTIMIZERS
from stabgap.core.registry import PLUGINS_ENV, check_needs, exit_on_mistake, load_extensions
from stabgap.core.remedies import REMEDIES, acting, check_points, fills, in_order
from stabgap.core.streams import STREAMS, stream_view
from stabgap.errors import StabgapError, close_match, did_you_mean

load_extensions()  # every extension's fields join the config below
# Where each dataset is found when data_dir is not given (stabgap.core.data's Dataset.where),
# said once for every --data-dir's help.
DATA_DIR_DEFAULT = (
    "the dataset's environment variable ($STABGAP_DATA for MNIST, $STABGAP_FASHION_MNIST, "
    "$STABGAP_CIFAR10, $STABGAP_CIFAR100), else a system package's folder (Fashion-MNIST: "
    "/usr/share/datasets/fashion-mnist), else the user cache (~/.cache/stabgap/)"
)
# The kinds a run chooses one of, by the config field that names it.
CHOSEN = (DATASETS, STREAMS, MODELS, OPTIMIZERS)
# Every kind that declares config fields: those, the memory (chosen by a run that keeps
# one), and the remedies and methods (any number of them at once).
DECLARING = (*CHOSEN, MEMORIES, REMEDIES, METHODS)


def _listing(registry) -> str:
    return "; ".join(f"{name}: {ext.help}" for name, ext in registry.items())


# A stream named with its dataset, as before datasets were chosen apart: "rotated-mnist".
STREAM_ALIASES = {
    f"{stream}-{dataset}": (stream, dataset) for stream in STREAMS for dataset in DATASETS
}


@dataclass(frozen=True)
class CoreConfig:
    """Everything that defines one training run of one seed, but the extensions' own fields."""

    # --- tasks -----------------------------------------------------------------------
    dataset: str = option(
        "mnist",
        f"Dataset the stream cuts its tasks from ({_listing(DATASETS)}).",
        choices=tuple(DATASETS),
    )
    stream: str = option(
        "rotated",
        f"Kind of task stream (docs/streams-and-models.md): {_listing(STREAMS)}. "
        "'rotated-mnist' and the like name the dataset too.",
        choices=tuple(STREAMS),
    )
    scenario: str = option(
        "auto",
        "How tasks share the output: 'domain' (one head, the same labels in every task), "
        "'class' (one head over every class seen so far), 'task' (only the task's own "
        "classes are scored); 'auto': the stream's own (class for split, else domain).",
        choices=("auto", "domain", "class", "task"),
    )
    # --- model -----------------------------------------------------------------------
    model: str = option("mlp", f"Network: {_listing(MODELS)}.", choices=tuple(MODELS))
    # --- optimisation ----------------------------------------------------------------
    optimizer: str = option(
        "adam",
        f"Optimiser, torch.optim's own, one parameter group per stacked copy: "
        f"{_listing(OPTIMIZERS)}.",
        choices=tuple(OPTIMIZERS),
    )
    lr: float = option(1e-3, "Learning rate.", per_copy=True, **POSITIVE)
    # --- training stream -------------------------------------------------------------
    batches_per_task: int = option(500, "Training batches (updates) per task.", **AT_LEAST_ONE)
    batch_size: int = option(
        512, "Training batch size in task 1 (see batch_growth).", **AT_LEAST_ONE
    )
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
        "of each batch from every task seen; 'memory': the current task's batch plus "
        "replay_batch_size examples from a bounded memory of memory_size (experience "
        "replay).",
        choices=("none", "full", "stratified", "memory"),
    )
    memory: str = option(
        "reservoir",
        f"Policy of the bounded replay memory (docs/methods.md): {_listing(MEMORIES)}.",
        choices=tuple(MEMORIES),
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
    eval_every: int = option(
        1, "Evaluate every this many batches, before the update.", **AT_LEAST_ONE
    )
    eval_switch_window: int = option(
        0,
        "Also evaluate at every batch for this many batches after each task switch, where "
        "the gap lives, and at each task's last batch, with eval_every > 1 elsewhere "
        "(docs/metrics.md measures what it changes); 0: every eval_every-th batch throughout.",
        **COUNT,
    )
    eval_tasks: str = option(
        "seen", "Which tasks to evaluate: those seen so far, or all.", choices=("seen", "all")
    )
    eval_subset: int = option(2000, "Test images per task at each evaluation.", **AT_LEAST_ONE)
    eval_subset_rounding: str = option(
        "exact",
        "'exact': eval_subset images; 'batches': whole batches (of eval_batch_size) until at "
        "least eval_subset (the reference's quirk: 2048 or 3072).",
        choices=("exact", "batches"),
    )
    eval_batch_size: int = option(
        0,
        "eval_subset_rounding 'batches': the size of those batches; 0: the current training "
        "batch size (the reference's quirk).",
        **COUNT,
    )
    eval_resample: str = option(
        "fresh",
        "'fresh': a new random test subset at every evaluation (the reference); "
        "'fixed': one subset per task for the whole run.",
        choices=("fresh", "fixed"),
    )
    eval_repeats: int = option(
        1,
        "Independent test subsets each point is evaluated on: 2 or more measure each "
        "metric's evaluation noise apart from the seed-to-seed spread (docs/metrics.md); "
        "the run's accuracy is then pooled over them.",
        check=lambda n: 1 <= n <= 8,
        must="a whole number from 1 to 8",
    )
    eval_precision: str = option(
        "fp32",
        "Precision of the continual evaluation alone: 'fp32', 'bf16' (autocast) or 'tf32' "
        "(CUDA). Evaluation never feeds back into training, so the training trajectory "
        "is the same whatever this is; only near-tie predictions can flip.",
        choices=("fp32", "bf16", "tf32"),
    )
    activity_every: int = option(
        10,
        "Record the hidden layers' statistics (active and dead units, Σh²) at every this "
        "many-th evaluation point, and always at the last point before each task switch and "
        "at the end; 1: at every point, 0: never. At every point they cost 10 to 13 % of a "
        "paper run (docs/metrics.md); accuracy is measured at every point regardless.",
        check=lambda n: n >= 0,
        must="0 (never) or a whole number of evaluation points >= 1",
        science=False,
    )
    # --- why the gap (stabgap.core.analyses; off by default) ------------------------------
    drift_every: int = option(
        0,
        "Representation drift: each hidden layer's linear CKA with, and relative change "
        "from, its features at the last point before the latest switch, on a probe set of "
        "every earlier task, at every this many-th evaluation point (and each task's last); "
        "0: never.",
        **COUNT,
        science=False,
    )
    head_every: int = option(
        0,
        "Head or backbone: the network's, a nearest-mean classifier's and a refitted linear "
        "probe's accuracy on the same penultimate features, on each seen task's probe set, "
        "at every this many-th evaluation point (and each task's last); 0: never.",
        **COUNT,
        science=False,
    )
    sharpness_iterations: int = option(
        0,
        "Sharpness at each task's end: the Hessian's top eigenvalue (power iteration) and "
        "trace (Hutchinson) of every seen task's loss on its sample of probe_size training "
        "images, each from this many Hessian-vector products; 0: never.",
        **COUNT,
        science=False,
    )
    gradients_window: int = option(
        0,
        "Gradient anatomy: at the training batches within this many of each switch, before "
        "and after, the gradient of the current task's examples and of the replayed ones: "
        "their norms per parameter tensor and their cosine; 0: never.",
        **COUNT,
        science=False,
    )
    path_points: int = option(
        0,
        "Loss along the path: at each task's end, the earlier tasks' loss and accuracy at "
        "this many points strictly between the weights at the switch and these, and at both "
        "ends; 0: never.",
        **COUNT,
        science=False,
    )
    probe_size: int = option(
        128,
        "Images a task in the analyses' probe sets (test images, measured on) and samples "
        "(training images: the class means, the linear probe, the sharpness's loss).",
        **AT_LEAST_ONE,
        science=False,
    )
    # --- run -------------------------------------------------------------------------
    seed: int = option(
        0,
        "Random seed: initialisation, batches and test subsets.",
        check=lambda s: 0 <= s < 2**32,
        must="a whole number from 0 to 4294967295",
        per_copy=True,
        science=False,
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
        f"The dataset's folder; unset: {DATA_DIR_DEFAULT}.",
        stamped=False,
        science=False,
    )
    compile: bool = option(
        False,
        "torch.compile the network's forward pass (for a GPU; results equal to float tolerance).",
        stamped=False,
        science=False,
    )

    def __post_init__(self) -> None:
        # Normalise user values (lists -> tuples, 1 -> 1.0, "rotated-mnist" -> "rotated" on
        # "mnist") so that equal configs compare and hash equal, then check them: no
        # invalid config exists past this point.
        for name in FIELDS:
            object.__setattr__(self, name, coerce(name, getattr(self, name)))
        _read_alias(self)
        _validate(self)

    # --- derived quantities -----------------------------------------------------------
    @property
    def task_count(self) -> int:
        """Number of tasks of the stream (rotations, n_tasks or class groups)."""
        return STREAMS.chosen(self).n_tasks(stream_view(self))

    @property
    def total_batches(self) -> int:
        return self.task_count * self.batches_per_task

    @property
    def remedies(self) -> tuple[str, ...]:
        """The remedies this run uses, by name."""
        return tuple(r.name for r in in_order(REMEDIES.values()) if r.active(self))

    @property
    def methods(self) -> tuple[str, ...]:
        """The continual-learning methods this run uses, by name."""
        return tuple(m.name for m in in_order(METHODS.values()) if m.active(self))

    @property
    def keeps_memory(self) -> bool:
        """Whether the run keeps a bounded replay memory (:mod:`stabgap.core.memories`)."""
        return uses_memory(self, [m for m in METHODS.values() if m.active(self)])

    @property
    def replay_batch(self) -> int:
        """Examples each draw from the memory takes (once it holds that many)."""
        return self.replay_batch_size or self.batch_size

    def task_batch_size(self, task: int) -> int:
        """Batch size of the current task's examples during `task` (1-based): the whole
        batch but for a bounded memory's replayed examples, which do not grow."""
        grows = self.batch_growth == "always" or (
            self.batch_growth == "replay" and self.replay in ("full", "stratified")
        )
        return self.batch_size * task if grows else self.batch_size

    def task_eval_size(self, task: int, test_size: int) -> int:
        """Test images per evaluated task while training `task` (1-based)."""
        if self.eval_subset_rounding == "exact":
            return min(self.eval_subset, test_size)
        b = self.eval_batch_size or self.task_batch_size(task)
        return min(math.ceil(self.eval_subset / b) * b, test_size)

    def replace(self, **changes: Any) -> RunConfig:
        return from_dict({**to_dict(self), **changes})


def extension_fields() -> dict[str, tuple[Any, Any]]:
    """Every extension's config fields, kind by kind, in registration order."""
    fields: dict[str, tuple[Any, Any]] = {}
    for registry in DECLARING:
        for name, declared in registry.declared_fields().items():
            if name in CoreConfig.__dataclass_fields__:
                _refuse_core_clash(registry, name)
            if name in fields:
                raise TypeError(f"config field '{name}' is declared twice")
            fields[name] = declared
    return fields


def _refuse_core_clash(registry, name: str) -> None:
    """An extension declares a field of the core config: a plugin's mistake is one line
    naming its module (the config is being built, before any command can catch it)."""
    ext = next((e for e in registry.values() if name in e.fields), None)
    where = f"{registry.kind} {ext.name}" if ext else f"every {registry.kind}"
    module = getattr(ext, "__module__", "stabgap")
    message = f"its {where} declares the config field '{name}', which the core config has"
    if not module.startswith("stabgap."):
        exit_on_mistake(f"plugin module '{module}' cannot be loaded: {message}: rename it")
    raise TypeError(message)


def owner_of(name: str) -> str:
    """Who declares field `name`: 'core', or the kind of extension ('stream', ...)."""
    for registry in DECLARING:
        if name in registry.declared_fields():
            return registry.kind
    return "core"


# The extensions' own fields, declared in their modules, complete the config.
RunConfig = dataclasses.make_dataclass(
    "RunConfig",
    [(name, hint, f) for name, (hint, f) in extension_fields().items()],
    bases=(CoreConfig,),
    frozen=True,
)
RunConfig.__module__ = __name__  # pickling (worker processes) finds it here
RunConfig.__doc__ = (
    "Everything that defines one training run of one seed: the core fields of "
    ":class:`CoreConfig` and every extension's fields."
)

FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(RunConfig)}
_HINTS = {**get_type_hints(CoreConfig), **{n: h for n, (h, _) in extension_fields().items()}}


def fields_where(role: str) -> tuple[str, ...]:
    """Names of the fields whose metadata marks them `role`: per_copy, stamped or science."""
    return tuple(name for name, f in FIELDS.items() if f.metadata[role])


@functools.cache
def _defaults() -> dict[str, Any]:
    return to_dict(RunConfig())


def defaults() -> dict[str, Any]:
    """Every field's default, as plain (JSON) values."""
    return dict(_defaults())


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


def from_record(values: dict[str, Any]) -> RunConfig:
    """The config of a run's record (its stored dict), the keys that are no field of this
    process (a plugin's not loaded, a record's own notes) left out: the checks of a config
    still apply (a plugin's model or stream not loaded is a StabgapError)."""
    return from_dict({k: v for k, v in values.items() if k in FIELDS})


def drop_stale(values: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """`values` (every field) with those that no chosen stream, model or optimiser uses put
    back to their defaults, but for the fields in `keep` (which the config then refuses)."""
    draft = object.__new__(RunConfig)  # coerced and read, not yet validated
    for name in FIELDS:
        object.__setattr__(draft, name, coerce(name, values[name]))
    _read_alias(draft)
    if any(getattr(draft, r.selector) not in r for r in CHOSEN):
        return values  # a stream or model of no such name: the config's own check says so
    stale = {f: FIELDS[f].default for f in inapplicable(draft) if f not in keep}
    return {**values, **stale}


def check_field(name: str) -> str:
    """The field's name (dashes read as underscores), or a one-line error with a hint."""
    field_name = name.replace("-", "_")
    if field_name in FIELDS:
        return field_name
    close = close_match(field_name, FIELDS)
    hint = (
        f"did you mean '{close}'?"
        if close
        else "see `stabgap run --help` for the fields (a plugin's field needs its module "
        f"named in ${PLUGINS_ENV})"
    )
    raise StabgapError(f"unknown config field '{name}': {hint}")


def coerce(name: str, value: Any) -> Any:
    """Convert a user value to the type of field `name`, or raise a one-line error."""
    hint = _HINTS[name]
    try:
        return _coerce_to(hint, value)
    except (TypeError, ValueError, OverflowError):
        return _type_error(name, hint, value)


def _type_error(name: str, hint: Any, value: Any):
    choices = FIELDS[name].metadata.get("choices")
    kind = f"one of {', '.join(choices)}" if choices else _type_name(hint)
    raise StabgapError(f"config field '{name}' must be {kind}, got {value!r}") from None


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
        if isinstance(value, bool | str) or not float(value).is_integer():
            raise TypeError
        return int(value)
    if hint is float:
        if isinstance(value, bool | str):
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
        kind = {int: "integers", float: "numbers"}[args[0]]
        return f"a list of {kind}" if args[-1] is Ellipsis else f"{len(args)} {kind}"
    if type(None) in args:
        return _type_name(next(a for a in args if a is not type(None))) + " or unset"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]


def canonical(values: dict[str, Any]) -> dict[str, Any]:
    """Recorded config values in today's form: ``stream = "rotated-mnist"`` (as records
    before schema 4 name it) becomes ``stream = "rotated"`` on ``dataset = "mnist"``.

    Example:
        >>> canonical({"stream": "split-mnist", "lr": 0.01})
        {'stream': 'split', 'lr': 0.01, 'dataset': 'mnist'}
    """
    if values.get("stream") not in STREAM_ALIASES:
        return values
    stream, dataset = STREAM_ALIASES[values["stream"]]
    return {**values, "stream": stream, "dataset": dataset}


def _read_alias(c: RunConfig) -> None:
    """``stream = "rotated-mnist"``: the stream "rotated" on the dataset "mnist"."""
    if c.stream not in STREAM_ALIASES:
        return
    stream, dataset = STREAM_ALIASES[c.stream]
    if c.dataset not in (FIELDS["dataset"].default, dataset):
        raise StabgapError(
            f"invalid config: stream '{c.stream}' names dataset {dataset}, but dataset is "
            f"'{c.dataset}': give the stream as '{stream}'"
        )
    object.__setattr__(c, "stream", stream)
    object.__setattr__(c, "dataset", dataset)


def _validate(c: RunConfig) -> None:
    """Check every field's choices and range, then what fields say together."""
    for name, f in FIELDS.items():
        value = getattr(c, name)
        choices, check = f.metadata.get("choices"), f.metadata.get("check")
        if choices and value not in choices:
            raise StabgapError(
                f"config field '{name}' must be one of {', '.join(choices)}; got {value!r}"
                + did_you_mean(value, choices)
            )
        if check is not None and not check(value):
            raise StabgapError(f"invalid config: {name} must be {f.metadata['must']}, got {value}")
    _check_applies(c)
    chosen = [registry.chosen(c) for registry in CHOSEN]
    for ext in chosen:
        ext.check(c)
    checks = [
        (len(c.hidden) >= 1 and all(w >= 1 for w in c.hidden), "hidden widths must be >= 1"),
        (
            c.eval_batch_size == 0 or c.eval_subset_rounding == "batches",
            "eval_batch_size applies to eval_subset_rounding 'batches' only (leave it at 0)",
        ),
        (
            c.eval_repeats == 1 or c.eval_resample == "fresh",
            "eval_repeats > 1 needs eval_resample 'fresh' (fixed subsets repeat themselves)",
        ),
        (
            # (a switch window evaluates each task's last batch, whatever eval_every is)
            c.eval_every <= c.batches_per_task or c.eval_switch_window > 0,
            f"eval_every ({c.eval_every}) must be <= batches_per_task ({c.batches_per_task}): "
            "at least one evaluation per task; lower eval_every, or set eval_switch_window to "
            "add each task's first batches and its last",
        ),
        (
            # every task's only point would be its first batch, before any of its updates
            # (a one-batch task evaluated at every batch is the reference's schedule: kept)
            c.eval_every != c.batches_per_task or c.eval_every == 1 or c.eval_switch_window > 0,
            f"eval_every ({c.eval_every}) equal to batches_per_task evaluates each task only "
            "before its first update, so no gap and no final accuracy can be read: lower "
            "eval_every, or set eval_switch_window to add each task's last batch",
        ),
        (
            c.eval_switch_window == 0 or c.eval_every > 1,
            "eval_switch_window adds points to a sparser schedule: with eval_every 1 every "
            "batch is evaluated already (raise eval_every, or leave the window at 0)",
        ),
        (
            c.eval_switch_window <= c.batches_per_task,
            f"eval_switch_window ({c.eval_switch_window}) must be <= batches_per_task "
            f"({c.batches_per_task}): lower it too when you shorten the tasks "
            f"(eval_switch_window={c.batches_per_task} or less)",
        ),
        (
            c.replay != "stratified" or c.task_batch_size(c.task_count) >= c.task_count,
            f"stratified replay needs at least one sample per task in every batch: batch "
            f"size {c.task_batch_size(c.task_count)} in task {c.task_count} is smaller than "
            f"its {c.task_count} tasks (raise batch_size or use batch_growth='replay')",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise StabgapError(f"invalid config: {message}")
    active = [r for r in acting() if r.active(c)]
    check_points(active)
    _check_replay_weight(c, active)
    for remedy in acting():
        remedy.check(c)
    _check_memory(c)
    check_needs(c, chosen + active)


def _owners(c: RunConfig) -> dict[str, list[tuple[str, bool]]]:
    """Each field a stream, model or optimiser uses: (who, whether the run chose it)."""
    owners: dict[str, list[tuple[str, bool]]] = {}
    for registry in CHOSEN:
        chosen = registry.chosen(c)
        for name, ext in registry.items():
            for f in ext.uses:
                owners.setdefault(f, []).append((f"{registry.kind} {name}", ext is chosen))
    return owners


def applies(c: RunConfig, name: str) -> bool:
    """Whether field `name` means anything to this run: a core field, or one that its chosen
    stream, model or optimiser uses (``hidden`` does not, in a ViT run)."""
    uses = _owners(c).get(name)
    return uses is None or any(used for _, used in uses)


def inapplicable(c: RunConfig) -> dict[str, str]:
    """The fields set away from their defaults that no chosen stream, model or optimiser
    uses, each with the extensions that would (e.g. ``hidden`` in a ViT run)."""
    return {
        name: ", ".join(who for who, _ in uses)
        for name, uses in _owners(c).items()
        if _set(c, name) and not any(used for _, used in uses)
    }


def _check_applies(c: RunConfig) -> None:
    """A field set away from its default must be one this run uses (honour it or refuse)."""
    for name, which in inapplicable(c).items():
        raise StabgapError(
            f"invalid config: {name} applies to {which} only; this run has "
            + ", ".join(f"{r.kind} {getattr(c, r.selector)}" for r in CHOSEN)
            + f" (leave {name} at its default)"
        )


def _check_memory(c: RunConfig) -> None:
    """The memory's fields apply to a run that keeps one. (A method's own settings, such
    as LwF's temperature, are not refused where its strength is 0: a sweep's copies with
    and without it share them.)"""
    if not c.keeps_memory:
        unused = [name for name in ("memory", *MEMORIES.shared) if _set(c, name)]
        if unused:
            raise StabgapError(
                f"invalid config: {', '.join(unused)} applies to a run that keeps a replay "
                "memory only (replay 'memory', or a method that draws from one: "
                + ", ".join(m.name for m in METHODS.values() if m.memory_use)
                + f"); leave {unused[0]} at its default"
            )


def _check_replay_weight(c: RunConfig, active: list) -> None:
    """replay_weight weighs plain experience replay's loss: a method with a loss of its own
    (ER-ACE) would leave it unused."""
    if not c.replay_weight:
        return
    if c.replay != "memory":
        raise StabgapError(
            "invalid config: replay_weight weighs the loss of replay 'memory' only; set "
            "replay = 'memory' or leave replay_weight at 0"
        )
    own = [r.name for r in active if fills(r, "data_loss")]
    if own:
        raise StabgapError(
            f"invalid config: replay_weight weighs experience replay's own loss, which "
            f"{own[0]} replaces; leave replay_weight at 0 with {own[0]}"
        )


def _set(c: RunConfig, name: str) -> bool:
    return getattr(c, name) != FIELDS[name].default


def cautions(c: RunConfig) -> list[str]:
    """What the run's chosen extensions and active remedies warn of (see
    :meth:`~stabgap.core.registry.Extension.caution`)."""
    using = [registry.chosen(c) for registry in CHOSEN]
    using += [MEMORIES.chosen(c)] if c.keeps_memory else []
    using += [r for r in acting() if r.active(c)]
    return [text for ext in using if (text := ext.caution(c))]


def help_text(name: str) -> str:
    """A field's help; a field shared by a kind's extensions names those that read it."""
    text = FIELDS[name].metadata["help"]
    for registry in DECLARING:
        if name in registry.shared:
            users = [ext for ext, cls in registry.items() if name in cls.uses]
            if users:  # (a shared field may be read by the loop, not by the policies)
                text += f" Read by the {registry.plural} {', '.join(users)}."
    return text
