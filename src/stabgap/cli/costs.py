"""`stabgap cost` (counted MACs and FLOPs) and `stabgap profile` (measured time per batch)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

from stabgap.cli.values import field_assignment
from stabgap.core.config import RunConfig, owner_of
from stabgap.errors import StabgapError
from stabgap.studies.presets import ND_LAMBDA


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``cost`` and ``profile`` through the parser's `command(name, **kwargs)`."""
    cost = command(
        "cost",
        help="analytic MACs/FLOPs per batch and per run, baseline vs ND and every remedy",
        description="Multiply-accumulates and FLOPs of the forward and backward pass, the ND "
        "term, the optimiser and the evaluation, per batch and for a whole run (the paper "
        "protocol's, or a preset's on its own data); then what each remedy adds to a "
        "training step.",
    )
    _cost_arguments(cost)
    cost.set_defaults(func=cost_command)

    profile = command(
        "profile",
        help="time per batch (train, eval, both), baseline vs a remedy (ND by default)",
        description="Wall time per batch (median and IQR after warm-up) and the reference's "
        "torch.profiler self-CPU / self-CUDA sums, for the baseline and a treatment: ND by "
        "default, or any remedy's fields with --treatment FIELD=VALUE. The poster's profiling "
        "runs by default, or task 1 of any preset's run (--preset), on synthetic images of "
        "its dataset's shape (task 1: no replay from a bounded memory is timed).",
    )
    _profile_arguments(profile)
    profile.set_defaults(func=profile_command)


def parse_widths(text: str) -> tuple[int, ...]:
    """Widths from the command line: "2048,2048" → (2048, 2048)."""
    try:
        widths = tuple(int(w) for w in text.strip("[]").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"widths are comma-separated integers: {text!r}") from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"widths must be positive integers: {text!r}")
    return widths


def _at_least(value: int, least: int, flag: str) -> None:
    if value < least:
        raise StabgapError(f"{flag} must be >= {least}, got {value}")


# --- `stabgap cost` ------------------------------------------------------------------------
def _preset_arguments(parser: argparse.ArgumentParser, preset: str, experiment: str) -> None:
    """--preset and --experiment (their help: `preset`, `experiment`), and --hidden."""
    from stabgap.studies.presets import PRESETS

    parser.add_argument("--preset", choices=tuple(PRESETS), metavar="NAME", help=preset)
    parser.add_argument("--experiment", help=experiment)
    parser.add_argument(
        "--hidden",
        type=parse_widths,
        help="hidden widths, comma-separated (default: 2048,2048, or the preset's)",
    )


def _preset_run(args: argparse.Namespace, given: dict) -> tuple[RunConfig, str, float, str]:
    """The run that --preset and --experiment name, with the flags' fields (`given`) set:
    (config, what it is in a title, ND's λ for it, where that λ comes from: the run's own,
    else the preset's nd-<experiment> or nd experiment's, else the poster's)."""
    from stabgap.studies.presets import PAPER_BASE, get_preset

    if args.preset is None:
        if args.experiment is not None:
            raise StabgapError("--experiment names a preset's experiment: add --preset NAME")
        run, name, nd_lambda = PAPER_BASE.replace(**given), "the paper protocol", ND_LAMBDA
        whence = "the poster's"
    else:
        preset = get_preset(args.preset)
        experiment = args.experiment or preset.baseline
        run, name = preset.config(experiment, given), f"preset {preset.name}, {experiment}"
        # ND on this experiment (the methods presets' nd-er-200), else the preset's nd
        nd_named = [e for e in (f"nd-{experiment}", "nd") if e in preset.experiments]
        if nd_named:
            nd_lambda = preset.config(nd_named[0]).decay_lambda
            whence = f"the preset's {nd_named[0]} experiment's"
        else:
            nd_lambda = ND_LAMBDA
            whence = f"the poster's: preset {preset.name} has no nd-{experiment} or nd experiment"
    if run.decay_lambda:
        nd_lambda, whence = run.decay_lambda, "the run's own"
    return run, name, nd_lambda, whence


def _cost_arguments(parser: argparse.ArgumentParser) -> None:
    from stabgap.core.models import MODELS
    from stabgap.core.optim import OPTIMIZERS

    _preset_arguments(
        parser,
        "count a run of this preset (`stabgap presets` lists them; default: the paper "
        "protocol), on its dataset, network, batches, memory and evaluation schedule",
        "the preset's experiment to count (default: its baseline): the base columns without "
        "ND, the ND columns with ND at its own λ, else that of the preset's nd experiment, "
        "else 1e-5",
    )
    parser.add_argument("--model", choices=tuple(MODELS), help="network (default: mlp)")
    parser.add_argument(
        "--channels",
        type=parse_widths,
        help="cnn: conv channels, comma-separated (default: 32,64)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        help="training batch size in task 1; task k uses k times it in the paper protocol "
        "(default: 512, or the preset's)",
    )
    parser.add_argument(
        "--task",
        type=int,
        default=1,
        help="task (1-based) whose per-batch cost is shown (default: 1)",
    )
    parser.add_argument(
        "--optimizer",
        choices=tuple(OPTIMIZERS),
        help="optimiser of the training step (default: adam, or the preset's)",
    )
    parser.add_argument(
        "--test-size",
        type=int,
        help="at most this many test images per task, which caps the evaluation subsets "
        "(2048, 2048, 3072 in the paper protocol); default: each task's own (10,000 on "
        "rotated MNIST, about 2,000 on split MNIST)",
    )


# `stabgap cost`'s and `stabgap profile`'s flags that set a run's field of the same name
_COST_FIELDS = ("hidden", "model", "channels", "batch_size", "optimizer")
_PROFILE_FIELDS = ("hidden", "batch_size")


def _given(args: argparse.Namespace, fields: tuple[str, ...]) -> dict:
    """The run's fields that the command line set (a flag left out leaves the run's own)."""
    return {f: getattr(args, f) for f in fields if getattr(args, f) is not None}


def cost_command(args: argparse.Namespace) -> int:
    """Print the per-batch cost of baseline and ND, every remedy's, and a run's totals."""
    from stabgap.core.streams import check_sizes
    from stabgap.cost.flops import analyses_report, cost_report, remedy_report, run_shape

    if args.batch_size is not None:
        _at_least(args.batch_size, 1, "--batch-size")
    if args.test_size is not None:
        _at_least(args.test_size, 1, "--test-size")
    run, counted, nd_lambda, _ = _preset_run(args, _given(args, _COST_FIELDS))
    if not 1 <= args.task <= run.task_count:
        raise StabgapError(f"--task must be between 1 and {run.task_count}, got {args.task}")
    shape = run_shape(run)
    check_sizes(run, shape.train_sizes, shape.test_sizes)  # what a run would refuse
    # The base columns: the run without ND; the ND columns: with its own λ, else the preset's.
    base, nd = run.replace(decay_lambda=0.0), run.replace(decay_lambda=nd_lambda)
    title = f"Counted: {counted}; the ND columns add ND at λ = {nd_lambda:g}" + (
        " (its own)" if run.decay_lambda else ""
    )
    print(cost_report(base, nd, args.task, args.test_size, title))
    print()
    print(remedy_report(base, args.task))
    print()
    print(analyses_report(base, args.test_size))
    return 0


# --- `stabgap profile` -----------------------------------------------------------------------
def _profile_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda", "all"),
        default="all",
        help="where to run: cpu (a CPU-only run), cuda, or all: cpu and, "
        "when present, cuda (default: all)",
    )
    parser.add_argument("--out", metavar="DIR", help="also write DIR/profile-<device>/profile.json")
    parser.add_argument(
        "--batches",
        type=int,
        default=20,
        help="batches per timed repeat and in the profiled span (default: 20)",
    )
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats for the median and IQR (default: 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed batches before each measurement (default: 3)"
    )
    _preset_arguments(
        parser,
        "time task 1 of a run of this preset (`stabgap presets` lists them; default: the "
        "poster's profiling runs): its network, batch and evaluation subset, on synthetic "
        "images of its dataset's shape",
        "the preset's experiment to time (default: its baseline); with the default "
        "treatment, the experiment without ND against it with ND at its own λ, else that of "
        "the preset's nd experiment, else 1e-5",
    )
    parser.add_argument(
        "--batch-size", type=int, help="training batch size (default: 512, or the preset's)"
    )
    parser.add_argument(
        "--treatment",
        action="append",
        metavar="FIELD=VALUE",
        help="a config field set on the baseline for the treated run, e.g. sam_rho=0.05 "
        f"(repeatable; default: ND, decay_lambda={ND_LAMBDA:g} or the preset's λ)",
    )
    parser.add_argument(
        "--label", help="the treatment's name in the table (default: nd for ND, else its fields)"
    )
    parser.add_argument(
        "--nd-lambda",
        type=float,
        help=f"λ of the ND run (default: {ND_LAMBDA:g}, or the preset's); the same as "
        "--treatment decay_lambda=λ",
    )


def treatment(args: argparse.Namespace, nd_lambda: float = ND_LAMBDA) -> dict:
    """The fields of the treated run, from --treatment and --nd-lambda (default: ND at
    `nd_lambda`)."""
    fields = dict(field_assignment(item, "--treatment") for item in args.treatment or [])
    for name in fields:
        if name in ("dataset", "stream") or owner_of(name) in ("dataset", "stream"):
            raise StabgapError(
                f"--treatment {name}: a profile times one task of synthetic images, the same "
                "for both runs: treat a model's, an optimiser's or a remedy's field"
            )
    if args.nd_lambda is not None:
        if not (math.isfinite(args.nd_lambda) and args.nd_lambda > 0):
            raise StabgapError(
                f"--nd-lambda must be a positive finite number, got {args.nd_lambda}"
            )
        if "decay_lambda" in fields:
            raise StabgapError("give λ once: --nd-lambda or --treatment decay_lambda=..., not both")
        fields["decay_lambda"] = args.nd_lambda
    return fields or {"decay_lambda": nd_lambda}


def profile_command(args: argparse.Namespace) -> int:
    """Profile the baseline and a treatment on the chosen devices; print, maybe write, files."""
    import torch

    from stabgap.core.device import resolve_device
    from stabgap.cost.profile import PROFILE_FILE, profile_config, profile_table, write_profile
    from stabgap.study import profile_base

    for name in ("batches", "repeats"):
        _at_least(getattr(args, name), 1, f"--{name}")
    if args.batch_size is not None:
        _at_least(args.batch_size, 1, "--batch-size")
    _at_least(args.warmup, 0, "--warmup")
    given = _given(args, _PROFILE_FIELDS)
    if args.preset is None and args.experiment is None:
        config, name = profile_base().replace(**given), "the poster's profiling runs (task 0°)"
        nd_lambda, whence = ND_LAMBDA, "the poster's"
    else:
        config, name, nd_lambda, whence = _preset_run(args, given)
        name += ", task 1"
    fields = treatment(args, nd_lambda)
    notes = []
    if set(fields) == {"decay_lambda"}:
        config = config.replace(decay_lambda=0.0)  # ND against the same run without it
        if not (args.treatment or args.nd_lambda):
            notes.append(f"ND at λ = {nd_lambda:g}: {whence}")
    if fields == {} or config.replace(**fields) == config:
        raise StabgapError(
            "the treatment leaves the baseline unchanged: set a remedy's field to another value"
        )
    notes += _profile_notes(config, config.replace(**fields))
    if args.out:
        from stabgap.studies.outputs import check_study_folder

        check_study_folder(Path(args.out))  # a new or empty folder, or one of stabgap's
    if args.device == "all":
        devices = [torch.device("cpu")] + (
            [torch.device("cuda")] if torch.cuda.is_available() else []
        )
    else:
        devices = [resolve_device(args.device)]
    results = []
    for device in devices:
        found = profile_config(
            config,
            device,
            args.batches,
            args.warmup,
            args.repeats,
            treatment=fields,
            label=args.label,
            run_name=name,
        )
        if args.out:
            folder = Path(args.out) / f"profile-{device.type}"
            replaced = (folder / PROFILE_FILE).exists()
            path = write_profile(found, folder)
            print(f"wrote {path}" + (" (in place of the profile there)" if replaced else ""))
        results += found
    print(profile_table(results))
    for note in notes:
        print(f"note: {note}")
    return 0


def _profile_notes(base: RunConfig, treated: RunConfig) -> list[str]:
    """What a reader of the profile of `base` against `treated` must know, beyond the table."""
    from stabgap.cost.flops import batch_costs, total

    notes = []
    if base.eval_every > 1:
        window = base.eval_switch_window
        after = f" (and at each of the {window} batches after a switch)" if window else ""
        notes.append(
            f"these runs evaluate once every {base.eval_every} batches{after}: 'both' is an "
            "evaluated batch, not every batch"
        )
    # task 1's training step and evaluation, as the cost model counts them (a reservoir's
    # replay included: it fills within task 1)
    if total(batch_costs(base, 1)).flops == total(batch_costs(treated, 1)).flops:
        notes.append(
            "the cost model counts the same work for both runs in task 1: a field that acts "
            "from task 2 on (a memory's, EWC's, LwF's, A-GEM's) or on the schedule "
            "(batches_per_task, eval_every) changes nothing a profile times, so a difference "
            "here may be noise (a precision or a library can change the time alone)"
        )
    return notes
