"""The `stabgap` command line. Each command is a thin shell over a Python function.

Every config field of :class:`stabgap.core.config.RunConfig` is a flag of ``stabgap run``
(generated from the dataclass, so ``--help`` is always complete); a user's mistake is
one line on stderr and exit status 2, never a traceback, and it comes before any work.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import re
import shlex
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from stabgap import __version__
from stabgap.cli.values import field_assignment, flag, parse_field, parse_seeds
from stabgap.core.config import DATA_DIR_DEFAULT, FIELDS, help_text, owner_of
from stabgap.core.data import DATASETS
from stabgap.core.registry import PLUGINS_ENV
from stabgap.entry import INTERRUPTED, INTERRUPTED_STATUS
from stabgap.errors import StabgapError, close_match, did_you_mean
from stabgap.studies.presets import DEFAULT_PRESET, PRESETS
from stabgap.studies.sweep import EXECUTORS, MAX_GPU_STACK, RunsFailed, StudyInterrupted


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors that name the command and where its help is."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")

    def _check_value(self, action, value):  # noqa: D102 - argparse's hook for choices
        # argparse's own message lists the choices but offers none: a refused choice (a
        # command, --executor, --preset, --model) gets the did-you-mean of every other name
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            hint = did_you_mean(value, map(str, action.choices))
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint} (choose from {choices})"
            )


GIVEN = "given_fields"  # the config fields of --set and the field flags, in their order


class InOrder(argparse.Action):
    """A field flag or ``--set`` (appended): stored as argparse would, and also recorded in
    command-line order (``GIVEN``), so that of a field given twice the last one wins."""

    def __call__(self, parser, namespace, values, option_string=None):  # noqa: D102
        if self.dest == "set":
            values = [*(getattr(namespace, "set", None) or []), values]
            text = values[-1]
        else:
            text = values
        setattr(namespace, self.dest, values)
        setattr(namespace, GIVEN, [*getattr(namespace, GIVEN, []), (self.dest, text)])


# --- commands ----------------------------------------------------------------------------
def study_values(args: argparse.Namespace) -> tuple[dict[str, Any], str, Path | None]:
    """The study asked for by `run`: its TOML file, then the command line on top of it.

    Returns the values for :func:`stabgap.studies.plan.study_spec`, where they came from, and the
    folder a relative data_dir of the file is read from. ``--experiments`` is not among them:
    study_spec takes it as the experiments picked.
    """
    from stabgap.studies.plan import load_toml

    values: dict[str, Any] = {}
    base_dir = None
    source = "the command line"
    if args.config:
        values = load_toml(Path(args.config))
        base_dir = Path(args.config).resolve().parent
        source = args.config
    if not isinstance(values.setdefault("set", {}), dict):
        raise StabgapError(f"{source}: [set] must be a table of config fields")
    cli: dict[str, Any] = {}
    seed_flag = "--seed"  # how the command line gave a seed, for a message
    for dest, text in getattr(args, GIVEN, []):  # in command-line order: the last one wins
        name, value = field_assignment(text) if dest == "set" else (dest, parse_field(dest, text))
        cli[name] = value
        if name == "seed":
            seed_flag = f"--set {text}" if dest == "set" else "--seed"

    # Seeds: the command line's choice replaces the file's, whichever form each took.
    asked = [f for f, v in (("--seeds", args.seeds), ("--n-seeds", args.n_seeds)) if v is not None]
    asked += [seed_flag] if "seed" in cli else []
    if len(asked) > 1:
        raise StabgapError(f"give one of --seeds, --n-seeds and --seed, not {' and '.join(asked)}")
    if asked:
        for key in ("seeds", "n_seeds", "seed"):
            values.pop(key, None)
            values["set"].pop(key, None)
        if args.seeds is not None:
            values["seeds"] = parse_seeds(args.seeds)
        elif args.n_seeds is not None:
            values["n_seeds"] = args.n_seeds
        else:
            values["seeds"] = [cli.pop("seed")]
    for name, value in cli.items():  # the command line beats the file, its grid included
        values.pop(name, None)
        grid = values.get("grid")
        if isinstance(grid, dict) and name in grid:
            print(
                f"stabgap: note: {name} = {value!r} from the command line replaces {source}'s "
                f"[grid] {name} = {grid.pop(name)!r}: one value, not a sweep over them",
                file=sys.stderr,
            )
        values["set"][name] = value
    if args.preset:
        values["preset"] = args.preset
    return values, source, base_dir


def cmd_run(args: argparse.Namespace) -> int:
    from stabgap.studies.plan import study_spec
    from stabgap.study import run_spec

    values, source, base_dir = study_values(args)
    # --experiments picks among the file's experiments and the preset's: a file's own
    # [experiments.NAME] tables stay, or the experiments they define would be unknown
    spec = study_spec(values, source=source, base_dir=base_dir, picked=args.experiments)
    out = Path(args.out) if args.out else _default_out(spec.preset)
    args.resume_out = out
    run_spec(spec, out, plot=not args.no_plot, echo=print, **_how(args))
    return 0


def _how(args: argparse.Namespace) -> dict[str, Any]:
    """The executor options shared by run, sweep and reproduce."""
    return dict(
        workers=args.workers,
        max_stack=args.stack,
        executor=args.executor,
        ray_address=args.ray_address,
        threads=args.threads,
        quiet=args.quiet,
        tensorboard=args.tensorboard,
    )


def _default_out(preset: str) -> Path:
    return Path("runs") / f"{preset}-{datetime.now():%Y%m%d-%H%M%S}"


def cmd_metrics(args: argparse.Namespace) -> int:
    from stabgap.studies.records import iter_runs
    from stabgap.study import metrics_of_path, metrics_table

    path = Path(args.path)
    rows = metrics_of_path(path)
    if path.is_dir():
        for record in iter_runs(path, damaged=[]):  # (metrics_of_path named the damaged)
            if record.diverged:
                why = record.metadata.get("divergence", "diverged")
                print(f"stabgap: note: run {record.name} diverged ({why})", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(metrics_table(rows))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from stabgap.core.data import DATASETS, GIVEN

    dataset = DATASETS[args.dataset]
    label = dataset.title
    root, source = dataset.where(args.data_dir)
    if args.action == "download":
        dataset.check_folder(root, source)
        written = dataset.download(root)
        print(f"{label} in {root}: {dataset.downloaded(root, written)}")
        return 0
    if not root.is_dir():
        if root.exists():
            raise StabgapError(f"{label} folder {root} is a file, not a folder: check the path")
        fetch = dataset.fetch_into(root)
        if source == GIVEN:
            raise StabgapError(
                f"{label} folder {root} does not exist: check the path, or fetch it with `{fetch}`"
            )
        if source == dataset.env_source():
            raise StabgapError(
                f"{label} folder {root} ({source}) does not exist: check that "
                f"variable, or fetch it with `{fetch}`"
            )
        # No path of the user's to check: the default folder is absent until a download.
        raise StabgapError(
            f"{label} is not in its default folder {root}, which does not exist: fetch it with "
            f"`{fetch}`, or give its folder with --data-dir"
        )
    dataset.check_folder(root, source)
    results = dataset.verify(root)
    for name, ok, message in results:
        print(f"{'ok ' if ok else 'BAD'} {name}: {message}")
    note = dataset.unverified(root)
    if note and all(ok for _, ok, _ in results):
        print(f"stabgap: note: {note}", file=sys.stderr)
    if not all(ok for _, ok, _ in results):
        if any("not " + label in message for _, _, message in results):  # another's files
            print(
                f"stabgap: {root} holds another dataset's files: point --data-dir at a folder "
                f"of {label} (nothing there is to be deleted)",
                file=sys.stderr,
            )
            return 1
        advice = dataset.repair_advice(root)
        if all(re.search(r"(^|: )missing(:|$)", message) for *_, message in results):
            print(f"stabgap: no {label} in {root}: {advice}", file=sys.stderr)  # none, not damaged
        else:
            print(f"stabgap: {label} in {root} is damaged or incomplete: {advice}", file=sys.stderr)
        return 1
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from stabgap.core.config import RunConfig, to_dict
    from stabgap.studies.presets import PRESETS

    defaults = to_dict(RunConfig())
    for preset in PRESETS.values():
        print(f"{preset.name}: {preset.description}")
        base = to_dict(preset.base)
        shown = ["stream", "model", "hidden", "optimizer", "lr", "batches_per_task"]
        shown += ["batch_size", "replay", "eval_subset", "eval_every"]
        if preset.base.model == "cnn":
            shown.insert(2, "channels")
        if preset.base.model not in ("mlp", "cnn"):  # the networks without dense widths
            shown.remove("hidden")
        print("  base: " + ", ".join(f"{k}={_show(base[k])}" for k in shown))
        # every other setting in which the preset departs from a plain run (the reference's
        # quirks in the paper's scale and in the quick ones)
        unlike = [k for k in base if k not in shown and base[k] != defaults[k]]
        if unlike:
            print("  unlike the defaults: " + ", ".join(f"{k}={_show(base[k])}" for k in unlike))
        print(f"  seeds ({preset.n_seeds} by default): {', '.join(map(str, preset.seeds))}")
        for name, overrides in preset.experiments.items():
            changes = ", ".join(f"{k}={_show(v)}" for k, v in overrides.items()) or "(base)"
            mark = "*" if name in preset.default_experiments else " "
            print(f"  {mark} {name:22s} {changes}")
    print("(* run when no --experiments is given; --experiments all runs every one)")
    return 0


def _show(value: Any) -> str:
    from stabgap.studies.plan import short

    return short(value)


def cmd_sweep(args: argparse.Namespace) -> int:
    from stabgap.studies.plan import load_study
    from stabgap.study import run_spec

    spec = load_study(Path(args.spec))
    if args.data_dir:
        data_dir = parse_field("data_dir", args.data_dir)
        spec = dataclasses.replace(spec, overrides={**spec.overrides, "data_dir": data_dir})
    out = Path(args.out) if args.out else Path("runs") / Path(args.spec).stem
    args.resume_out = out
    run_spec(spec, out, plot=not args.no_plot, echo=print, **_how(args))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from stabgap.study import reproduce

    out = (
        Path(args.out)
        if args.out
        else Path("runs") / ("reproduce-quick" if args.quick else "reproduce-paper")
    )
    args.resume_out = out
    overrides: dict[str, Any] = {}
    if args.data_dir:
        overrides["data_dir"] = parse_field("data_dir", args.data_dir)
    if args.device:
        overrides["device"] = args.device
    records, report = reproduce(
        args.quick, out, args.n_seeds, overrides, profile=not args.no_profile, **_how(args)
    )
    from stabgap.study import summary_table

    print(summary_table(records))
    print(f"\n{len(records)} run(s) in {out}\nreport: {report / 'report.md'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from stabgap.analysis.report import write_report

    out = write_report(
        Path(args.runs_dir),
        Path(args.out) if args.out else None,
        baseline=args.baseline,
        compare=args.compare,
    )
    print(f"report written to {out / 'report.md'}")
    return 0


def cmd_import_curves(args: argparse.Namespace) -> int:
    from stabgap.studies.imported import import_curves, scale_doubt, write_runs
    from stabgap.studies.outputs import check_study_folder

    out = Path(args.out)
    check_study_folder(out)
    records = import_curves(Path(args.file))  # every row checked before anything is written
    written, there = write_runs(records, out)  # and against the folder: all or none
    print(f"{written} run(s) written to {out} ({there} there already)")
    if doubt := scale_doubt(records):
        print(f"stabgap: warning: {doubt}", file=sys.stderr)
    return 0


def cmd_import_reference(args: argparse.Namespace) -> int:
    from stabgap.studies.imported import write_runs
    from stabgap.studies.outputs import check_study_folder
    from stabgap.studies.reference import import_reference

    out = Path(args.out)
    check_study_folder(out)
    records, skipped = import_reference(Path(args.results))
    written, there = write_runs(records, out)  # all or none; a changed file is refused
    for path, why in skipped:
        print(f"skipped {path}: {why}", file=sys.stderr)
    print(
        f"{written} reference run(s) imported into {out} "
        f"({there} already there, {len(skipped)} file(s) skipped)"
    )
    return 0


def _executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        help="parallel worker processes on this machine (default: 1)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads per run (default: this machine's cores, shared between workers); "
        "their float32 products: $STABGAP_CPU_MATMUL=mkl (default) or onednn (faster, runs "
        "differ by rounding: one library per study: docs/performance.md)",
    )
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=EXECUTORS[0],
        help="local processes, or tasks on a Ray cluster (default: local)",
    )
    p.add_argument(
        "--ray-address",
        help="Ray cluster to join (e.g. auto or "
        "ray://host:10001); default: start a local Ray instance",
    )
    p.add_argument(
        "--stack",
        type=int,
        help="most runs trained together as one stack, on a GPU only: on a CPU runs train "
        "one after another whatever --stack says (docs/performance.md); default on a GPU: as "
        f"many as fit in 80 %% of its free memory, at most {MAX_GPU_STACK}",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument(
        "--tensorboard",
        action="store_true",
        help="also write TensorBoard event files to OUT/tensorboard/ (each run's live log "
        "is in OUT/logs/ in any case; neither on Ray)",
    )


@functools.cache
def _preset_bases() -> dict[str, tuple]:
    """Each preset's base config, as a dict, with the fields its network or stream uses; the
    default preset first. Read once, for every field flag the parser describes."""
    from stabgap.core.config import FIELDS, applies, to_dict

    ordered = sorted(PRESETS.values(), key=lambda p: p.name != DEFAULT_PRESET)
    return {p.name: (to_dict(p.base), {f for f in FIELDS if applies(p.base, f)}) for p in ordered}


def _field_default(name: str) -> str:
    """A field's default as `run --help` shows it: the presets' values where they differ."""
    from stabgap.studies.plan import short

    # A preset whose network or stream does not use the field is left out (the ViT's
    # presets under --hidden), but for the default preset: its value is what a plain run
    # given that network (--model resnet) uses.
    values = {
        preset: base[name]
        for preset, (base, used) in _preset_bases().items()
        if preset == DEFAULT_PRESET or name in used
    }
    shown = {k: "unset" if v is None else short(v) for k, v in values.items()}
    if len(set(shown.values())) == 1:
        return f"default: {next(iter(shown.values()))}"
    by_value: dict[str, list[str]] = {}  # presets that agree share one entry
    for preset, value in shown.items():
        by_value.setdefault(value, []).append(preset)
    return "; ".join(f"{', '.join(names)}: {v}" for v, names in by_value.items())


# --- the parser --------------------------------------------------------------------------
def build_parser() -> Parser:
    parser = Parser(
        prog="stabgap",
        description="Measure the stability gap in continual learning and what shrinks it.",
    )
    parser.add_argument("--version", action="version", version=f"stabgap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    parser.commands = {}

    def command(name: str, **kwargs) -> Parser:
        p = sub.add_parser(name, **kwargs)
        parser.commands[name] = p
        return p

    run = command(
        "run",
        help="run a preset's experiments for some seeds, write records, print the metrics",
        description="Run a preset's experiments × seeds. Values come from the preset, then "
        "--config FILE.toml, then --set and the field flags below (of a field given more "
        "than once, the last on the command line wins). Into a folder of earlier runs (the "
        "same --out), only the missing runs are run.",
    )
    run.add_argument(
        "--preset",
        metavar="NAME",
        help=f"study preset: {', '.join(PRESETS)} (default: {DEFAULT_PRESET}; "
        "`stabgap presets` lists their experiments)",
    )
    run.add_argument(
        "--experiments",
        help="comma-separated experiment names, or 'all' (default: the preset's starred "
        "ones in `stabgap presets`; "
        f"{DEFAULT_PRESET}: {','.join(PRESETS[DEFAULT_PRESET].default_experiments)})",
    )
    run.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    run.add_argument("--n-seeds", type=int, help="the first N seeds of the preset's seed sequence")
    run.add_argument(
        "--config",
        metavar="FILE.toml",
        help="TOML study file: config fields, and optionally preset, experiments, seeds or "
        "n_seeds, [set], [grid] (the same file as `stabgap sweep` takes)",
    )
    run.add_argument(
        "--set",
        action=InOrder,
        metavar="FIELD=VALUE",
        help="override any config field (repeatable; with the field flags, the last wins)",
    )
    run.add_argument(
        "--out",
        help="output folder: new, empty, or one of earlier runs to resume "
        "(default: runs/<preset>-<time>)",
    )
    run.add_argument("--no-plot", action="store_true", help="do not save curves.png per run")
    _executor_options(run)
    groups = {}  # the fields by who declares them: the core, then each kind of extension
    for name, f in FIELDS.items():
        owner = owner_of(name)
        if owner not in groups:
            title = "config fields" if owner == "core" else f"{owner} fields"
            groups[owner] = run.add_argument_group(f"{title} (override the preset's values)")
        choices = f.metadata.get("choices")
        extra = f" {{{','.join(choices)}}}" if choices else ""
        seed_note = " Same as --seeds N." if name == "seed" else ""
        shown = "default: the preset's seeds" if name == "seed" else _field_default(name)
        groups[owner].add_argument(
            f"--{flag(name)}",
            dest=name,
            action=InOrder,
            metavar="V",
            # argparse expands %-formats in help: a field's own '%' must reach it doubled
            help=f"{help_text(name)}{seed_note}{extra} [{shown}]".replace("%", "%%"),
        )
    run.set_defaults(func=cmd_run)

    metrics = command(
        "metrics",
        help="metrics of a run directory, a folder of runs, or a reference file",
        description="Compute the stability-gap metrics of a run directory, every run below "
        "a folder, or a results_<seed>.json file of the reference implementation.",
    )
    metrics.add_argument("path", help="run directory, folder of runs, or reference JSON")
    metrics.add_argument(
        "--json",
        action="store_true",
        help='print JSON rows {"run", "metric", "task", "interval", "value"}',
    )
    metrics.set_defaults(func=cmd_metrics)

    data = command(
        "data",
        help="download or verify a dataset (MNIST, Fashion-MNIST, CIFAR-10, CIFAR-100)",
        description="Download a dataset (from public mirrors, checksummed) or verify a copy.",
    )
    data.add_argument("action", choices=("download", "verify"))
    data.add_argument(
        "--dataset",
        choices=tuple(DATASETS),
        default=FIELDS["dataset"].default,
        help=f"which dataset (default: {FIELDS['dataset'].default})",
    )
    data.add_argument(
        "--data-dir",
        help="its folder (else its variable: $STABGAP_DATA for MNIST, $STABGAP_FASHION_MNIST, "
        "$STABGAP_CIFAR10, $STABGAP_CIFAR100; else a system package's folder; else the user "
        "cache)",
    )
    data.set_defaults(func=cmd_data)

    sweep = command(
        "sweep",
        help="run a grid of settings × seeds from a TOML spec, resumably",
        description="Run a study file (TOML: preset, experiments, seeds or n_seeds, config "
        "fields, [set], [grid] lists of values to combine, and for the report baseline and "
        "compare). Runs are named by a stamp of their config; started again, a sweep runs "
        "only what is missing.",
    )
    sweep.add_argument("spec", help="study file, TOML")
    sweep.add_argument("--out", help="folder of the runs (default: runs/<spec name>)")
    sweep.add_argument(
        "--data-dir",
        help=f"the dataset's folder, for every run (default: the file's data_dir, else "
        f"{DATA_DIR_DEFAULT})",
    )
    sweep.add_argument("--no-plot", action="store_true", help="do not save curves.png per run")
    _executor_options(sweep)
    sweep.set_defaults(func=cmd_sweep)

    reproduce = command(
        "reproduce",
        help="run the poster's whole study and write its report",
        description="All experiments of the paper preset × its 15 seeds as a resumable "
        "sweep, a CPU/GPU profile for the cost columns, then the report. --quick: the "
        "quick preset with 3 seeds (minutes on a laptop CPU).",
    )
    reproduce.add_argument("--quick", action="store_true", help="the quick scale, 3 seeds")
    reproduce.add_argument("--n-seeds", type=int, help="the first N seeds of the seed sequence")
    reproduce.add_argument(
        "--out",
        help="folder of the runs and the report "
        "(default: runs/reproduce-quick or runs/reproduce-paper)",
    )
    reproduce.add_argument(  # the paper's and the quick preset's runs are all on MNIST
        "--data-dir", help="MNIST's folder (default: $STABGAP_DATA, else the user cache)"
    )
    reproduce.add_argument(
        "--device", help="torch device (default: auto, a CUDA GPU when there is one)"
    )
    reproduce.add_argument(
        "--no-profile", action="store_true", help="skip the timing profile (Table 1's cost columns)"
    )
    _executor_options(reproduce)
    reproduce.set_defaults(func=cmd_reproduce)

    report = command(
        "report",
        help="tables, figures and answers of a folder of runs",
        description="Write Table 1 (Markdown, CSV, LaTeX) with every group of runs, the "
        "comparisons with the baseline group, the tidy metrics table, the figures (PNG, PDF) "
        "and report.md for every run below RUNS_DIR. A report only ever replaces an earlier "
        "report.",
    )
    report.add_argument("runs_dir", help="folder of run directories (searched recursively)")
    report.add_argument("--out", help="report folder (default: RUNS_DIR/report)")
    report.add_argument(
        "--baseline",
        metavar="GROUP",
        help="the group the others are compared with (default: the study file's, else the "
        "preset's baseline as the study ran it, else the first group: a curves file's first)",
    )
    report.add_argument(
        "--compare",
        metavar="G1,G2",
        action="append",
        help="groups to compare with the baseline, comma-separated or the option repeated "
        "(a label holding a comma is named whole); default: every other group",
    )
    report.set_defaults(func=cmd_report)

    imp = command(
        "import-reference",
        help="turn the reference implementation's results into runs",
        description="Read results_<seed>.json files of the reference implementation and "
        "write them as run records, named after the paper preset's experiments.",
    )
    imp.add_argument("results", help="a results_<seed>.json file or a folder of them")
    imp.add_argument("--out", required=True, help="folder to write the runs into")
    imp.set_defaults(func=cmd_import_reference)

    curves = command(
        "import-curves",
        help="turn anyone's continual-evaluation curves into runs",
        description="Read a curves file (docs/curves-format.md: one row per evaluation of "
        "one task; CSV, JSON lines or Parquet) and write its runs as stabgap run records, "
        "so that metrics, report and every figure work on them.",
    )
    curves.add_argument("file", help="the curves file (.csv, .jsonl, .parquet)")
    curves.add_argument("--out", required=True, help="folder to write the runs into")
    curves.set_defaults(func=cmd_import_curves)

    from stabgap.cli import costs

    costs.add_commands(command)

    presets = command(
        "presets",
        help="list presets and their experiments",
        description="Each preset: its base settings, every setting in which it departs from "
        "stabgap's defaults, its seeds, and its experiments (what each changes; * those run "
        "when no --experiments is given).",
    )
    presets.set_defaults(func=cmd_presets)
    return parser


def _join_dashed_values(argv: list[str], parser: Parser) -> list[str]:
    """``--decay-lambda -1e-4`` → ``--decay-lambda=-1e-4``.

    argparse takes a value starting with '-' for an option unless it looks like a plain
    negative number, so ``-1e-4``, ``-inf`` or ``-30,0,30`` would be read as a missing
    value. A word after an option that takes a value, which is not itself an option of
    the command, is that option's value.
    """
    options: set[str] = set()
    takes_value: set[str] = set()
    for p in parser.commands.values():
        for action in p._actions:
            options.update(action.option_strings)
            if action.nargs != 0:
                takes_value.update(action.option_strings)
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        nxt = argv[i + 1] if i + 1 < len(argv) else None
        if (
            word in takes_value
            and nxt is not None
            and nxt.startswith("-")
            and nxt != "--"
            and nxt.split("=")[0] not in options
        ):
            out.append(f"{word}={nxt}")
            i += 2
            continue
        out.append(word)
        i += 1
    return out


# What users type as flags that are a sweep file's tables.
SWEEP_FILE_TABLES = ("--grid", "--set")


def _parse(parser: Parser, argv: list[str]) -> argparse.Namespace:
    """Parse, with an unknown option named by its own command and a near match offered,
    and an empty value refused (it would otherwise mean a default, or this folder)."""
    args, extras = parser.parse_known_args(argv)
    command = parser.commands[args.command]
    if extras:
        known = [o for a in command._actions for o in a.option_strings]
        word = extras[0].split("=")[0]
        # matched without their dashes, which every option shares ('--format' is not '--out')
        bare = {o.lstrip("-"): o for o in known}
        close = bare.get(close_match(word.lstrip("-"), bare) or "")
        hint = f"; did you mean {close}?" if close else ""
        if not close and word.startswith("--") and "--set" in known:  # it takes fields
            hint = (
                f"; a plugin's options need its module named in ${PLUGINS_ENV} (docs/extending.md)"
            )
        if word in SWEEP_FILE_TABLES:  # a table of a sweep file, not a flag
            hint = (
                f"; a sweep file's [{word[2:]}] table does that (docs/studies.md): write one "
                "and run `stabgap sweep FILE`"
            )
        command.error(f"unrecognized argument {extras[0]!r}{hint}")
    for action in command._actions:
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            name = action.option_strings[0] if action.option_strings else action.dest
            command.error(f"{name} is empty: give a value, or leave it out for its default")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = None
    try:  # the parsing too: Ctrl-C while it builds the presets' help is one line as well
        parser = build_parser()
        args = _parse(parser, _join_dashed_values(argv, parser))
        return args.func(args)
    except RunsFailed as e:
        if e.details:
            print(e.details, file=sys.stderr, end="")
        print(f"stabgap: error: {e}", file=sys.stderr)
        return 1
    except StabgapError as e:
        print(f"stabgap: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except StudyInterrupted as e:
        print(
            f"\nstabgap: {_interrupted(e, argv, getattr(args, 'resume_out', None))}",
            file=sys.stderr,
        )
        return INTERRUPTED_STATUS
    except KeyboardInterrupt:
        print(f"\n{INTERRUPTED}", file=sys.stderr)
        return INTERRUPTED_STATUS


def _interrupted(e, argv: list[str], out: Path | None) -> str:
    """What Ctrl-C left behind, and the exact command that finishes the job."""
    resume = list(argv)
    if out is not None and "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        resume += ["--out", str(out)]
    from stabgap.core.models import cpu_matmul

    where = f" in {e.out}" if e.out is not None else ""
    # The rest must be computed by the same matmul library as the runs already done.
    env = f"{cpu_matmul.ENV}={cpu_matmul.library()} " if os.environ.get(cpu_matmul.ENV) else ""
    return (
        f"interrupted: {e.finished} of {e.total} runs finished and kept{where}; "
        f"to run the rest: {env}stabgap {shlex.join(resume)}"
    )


if __name__ == "__main__":
    sys.exit(main())
