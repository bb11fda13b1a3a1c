"""The `stabgap` command line. Each command is a thin shell over a Python function.

Every config field of :class:`stabgap.config.RunConfig` is a flag of ``stabgap run``
(generated from the dataclass, so ``--help`` is always complete); a user's mistake is
one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from stabgap import __version__
from stabgap.config import FIELDS, check_field, coerce, help_text
from stabgap.errors import StabgapError

STUDY_KEYS = ("preset", "experiments", "seeds")


# --- parsing config values from text ---------------------------------------------------
def parse_field(name: str, text: str) -> Any:
    """A config value from command-line text: lists are comma-separated ("2048,2048")."""
    default = FIELDS[name].default
    if isinstance(default, tuple):
        text = text.strip().strip("[]")
        value: Any = [_number(x) for x in text.split(",") if x.strip()] if text else []
    elif isinstance(default, bool):
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise StabgapError(f"--{_flag(name)} takes true or false, got '{text}'")
        value = lowered in ("true", "1", "yes")
    elif isinstance(default, int | float):
        value = _number(text)
    else:
        value = text
    return coerce(name, value)


def _number(text: str) -> int | float | str:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text  # left for coerce() to reject with the field's name


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise StabgapError(f"--seeds takes comma-separated integers, got '{text}'") from None


# --- commands ----------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    from stabgap.study import run_study

    overrides: dict[str, Any] = {}
    study: dict[str, Any] = {}
    if args.config:
        from stabgap.sweep import load_overrides_file

        values = load_overrides_file(Path(args.config))
        study = {k: values.pop(k) for k in STUDY_KEYS if k in values}
        overrides.update(values)
    for item in args.set or []:
        key, sep, text = item.partition("=")
        if not sep:
            raise StabgapError(f"--set takes FIELD=VALUE, got '{item}'")
        name = check_field(key)
        overrides[name] = parse_field(name, text)
    for name in FIELDS:
        if getattr(args, name) is not None:
            overrides[name] = parse_field(name, getattr(args, name))

    experiments = args.experiments.split(",") if args.experiments else study.get("experiments")
    seeds = _seeds(args.seeds) if args.seeds else study.get("seeds")
    preset = args.preset or study.get("preset") or "quick"
    out = Path(args.out) if args.out else _default_out(preset)
    run_study(
        preset=preset,
        experiments=experiments,
        seeds=seeds,
        n_seeds=args.n_seeds,
        overrides=overrides,
        out=out,
        workers=args.workers,
        max_stack=args.stack,
        executor=args.executor,
        ray_address=args.ray_address,
        plot=not args.no_plot,
        quiet=args.quiet,
        echo=print,
    )
    return 0


def _default_out(preset: str) -> Path:
    return Path("runs") / f"{preset}-{datetime.now():%Y%m%d-%H%M%S}"


def cmd_metrics(args: argparse.Namespace) -> int:
    from stabgap.study import metrics_of_path, metrics_table

    rows = metrics_of_path(Path(args.path))
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        print(metrics_table(rows))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from stabgap.data import download_mnist, resolve_data_dir, verify_mnist

    root = resolve_data_dir(args.data_dir)
    if args.action == "download":
        written = download_mnist(root)
        print(f"MNIST in {root}: {len(written)} file(s) downloaded, all verified")
        return 0
    results = verify_mnist(root)
    for name, ok, message in results:
        print(f"{'ok ' if ok else 'BAD'} {name}: {message}")
    if not all(ok for _, ok, _ in results):
        print(
            f"stabgap: MNIST in {root} is incomplete: run `stabgap data download`", file=sys.stderr
        )
        return 1
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from stabgap.presets import PRESETS

    for preset in PRESETS.values():
        print(f"{preset.name}: {preset.description}")
        print(f"  seeds: {', '.join(map(str, preset.seeds))}")
        for name, overrides in preset.experiments.items():
            changes = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "(base)"
            print(f"  {name:22s} {changes}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from stabgap.sweep import load_overrides_file, run_sweep, stderr_reporter, sweep_spec

    spec = sweep_spec(load_overrides_file(Path(args.spec)), source=args.spec)
    out = Path(args.out) if args.out else Path("runs") / Path(args.spec).stem
    records = run_sweep(
        spec,
        out,
        args.workers,
        args.executor,
        args.ray_address,
        args.stack,
        report=None if args.quiet else stderr_reporter(),
    )
    _print_summary(records, out)
    return 0


def _print_summary(records, out: Path) -> None:
    from stabgap.study import summary_table

    print(("\n" if sys.stderr.isatty() else "") + summary_table(records))
    print(f"\n{len(records)} run(s) in {out}")


def cmd_reproduce(args: argparse.Namespace) -> int:
    from stabgap.study import reproduce

    out = (
        Path(args.out)
        if args.out
        else Path("runs") / ("reproduce-quick" if args.quick else "reproduce-paper")
    )
    overrides = {"data_dir": args.data_dir} if args.data_dir else {}
    if args.device:
        overrides["device"] = args.device
    records, report = reproduce(
        args.quick,
        out,
        args.n_seeds,
        overrides,
        args.workers,
        args.executor,
        args.ray_address,
        args.stack,
        quiet=args.quiet,
        profile=not args.no_profile,
    )
    _print_summary(records, out)
    print(f"report: {report / 'report.md'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from stabgap.report import write_report

    out = write_report(Path(args.runs_dir), Path(args.out) if args.out else None)
    print(f"report written to {out / 'report.md'}")
    return 0


def cmd_import_reference(args: argparse.Namespace) -> int:
    from stabgap.records import is_run_dir, write_run
    from stabgap.reference import import_reference

    out = Path(args.out)
    records = import_reference(Path(args.results))
    fresh = [r for r in records if not is_run_dir(out / r.name)]
    for record in fresh:
        write_run(record, out, plot=False)
    print(
        f"{len(fresh)} reference run(s) imported into {out} "
        f"({len(records) - len(fresh)} already there)"
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
        "--executor",
        choices=("local", "ray"),
        default="local",
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
        help="most runs trained together as one stack (default: 32 on CUDA, 1 on CPU)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress output")


# --- the parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stabgap",
        description="Measure the stability gap in continual learning and what shrinks it.",
    )
    parser.add_argument("--version", action="version", version=f"stabgap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        help="run a preset's experiments for some seeds, write records, print the metrics",
        description="Run a preset's experiments × seeds. Values come from the preset, then "
        "--config FILE.toml, then --set and the field flags below (last wins).",
    )
    run.add_argument("--preset", help="study preset: quick or paper (default: quick)")
    run.add_argument(
        "--experiments",
        help="comma-separated experiment names, or 'all' "
        "(default: baseline,nd); see `stabgap presets`",
    )
    run.add_argument("--seeds", help="comma-separated seeds (default: the preset's)")
    run.add_argument("--n-seeds", type=int, help="use the preset's first N seeds")
    run.add_argument(
        "--config",
        metavar="FILE.toml",
        help="TOML file of config fields (and optionally preset, experiments, seeds)",
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="FIELD=VALUE",
        help="override any config field (repeatable)",
    )
    run.add_argument(
        "--out", help="output directory, must not exist (default: runs/<preset>-<time>)"
    )
    run.add_argument("--no-plot", action="store_true", help="do not save curves.png per run")
    _executor_options(run)
    fields = run.add_argument_group("config fields (override the preset's values)")
    for name, f in FIELDS.items():
        choices = f.metadata.get("choices")
        default = f.default
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        extra = f" {{{','.join(choices)}}}" if choices else ""
        fields.add_argument(
            f"--{_flag(name)}",
            dest=name,
            metavar="V",
            help=f"{help_text(name)}{extra} [base default: {shown}]",
        )
    run.set_defaults(func=cmd_run)

    metrics = sub.add_parser(
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

    data = sub.add_parser(
        "data",
        help="download or verify MNIST",
        description="Download MNIST (from public mirrors, checksummed) or verify a copy.",
    )
    data.add_argument("action", choices=("download", "verify"))
    data.add_argument(
        "--data-dir", help="MNIST directory (else $STABGAP_DATA, else the user cache)"
    )
    data.set_defaults(func=cmd_data)

    sweep = sub.add_parser(
        "sweep",
        help="run a grid of settings × seeds from a TOML spec, resumably",
        description="Run a sweep spec (TOML: preset, experiments, seeds or n_seeds, [set] "
        "fields for every run, [grid] lists of values to combine). Runs are named by a "
        "stamp of their config; started again, a sweep runs only what is missing.",
    )
    sweep.add_argument("spec", help="sweep spec, a TOML file")
    sweep.add_argument("--out", help="folder of the runs (default: runs/<spec name>)")
    _executor_options(sweep)
    sweep.set_defaults(func=cmd_sweep)

    reproduce = sub.add_parser(
        "reproduce",
        help="run the poster's whole study and write its report",
        description="All experiments of the paper preset × its 15 seeds as a resumable "
        "sweep, a CPU/GPU profile for the cost columns, then the report. --quick: the "
        "quick preset with 3 seeds (minutes on a laptop CPU).",
    )
    reproduce.add_argument("--quick", action="store_true", help="the quick scale, 3 seeds")
    reproduce.add_argument("--n-seeds", type=int, help="use only the first N seeds")
    reproduce.add_argument(
        "--out",
        help="folder of the runs and the report "
        "(default: runs/reproduce-quick or runs/reproduce-paper)",
    )
    reproduce.add_argument("--data-dir", help="MNIST directory")
    reproduce.add_argument("--device", help="torch device (default: cpu; 'auto' for CUDA)")
    reproduce.add_argument(
        "--no-profile", action="store_true", help="skip the timing profile (Table 1's cost columns)"
    )
    _executor_options(reproduce)
    reproduce.set_defaults(func=cmd_reproduce)

    report = sub.add_parser(
        "report",
        help="tables, figures and answers of a folder of runs",
        description="Write Table 1 (Markdown, CSV, LaTeX), the tidy metrics table, the "
        "figures (PNG, PDF) and report.md for every run below RUNS_DIR.",
    )
    report.add_argument("runs_dir", help="folder of run directories (searched recursively)")
    report.add_argument("--out", help="report folder (default: RUNS_DIR/report)")
    report.set_defaults(func=cmd_report)

    imp = sub.add_parser(
        "import-reference",
        help="turn the reference implementation's results into runs",
        description="Read results_<seed>.json files of the reference implementation and "
        "write them as run records, named after the paper preset's experiments.",
    )
    imp.add_argument("results", help="a results_<seed>.json file or a folder of them")
    imp.add_argument("--out", required=True, help="folder to write the runs into")
    imp.set_defaults(func=cmd_import_reference)

    from stabgap import cost, profile

    cost_parser = sub.add_parser(
        "cost",
        help="analytic MACs/FLOPs per batch and per run, baseline vs ND",
        description="Multiply-accumulates and FLOPs of the forward and backward pass, the ND "
        "term, the optimiser and the evaluation, per batch and for a whole paper run.",
    )
    cost.add_arguments(cost_parser)
    cost_parser.set_defaults(func=cost.command)

    profile_parser = sub.add_parser(
        "profile",
        help="time per batch (train, eval, both), baseline vs ND, CPU and CUDA",
        description="Wall time per batch (median and IQR after warm-up) and the reference's "
        "torch.profiler self-CPU / self-CUDA sums, for baseline and ND.",
    )
    profile.add_arguments(profile_parser)
    profile_parser.set_defaults(func=profile.command)

    presets = sub.add_parser("presets", help="list presets and their experiments")
    presets.set_defaults(func=cmd_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except StabgapError as e:
        print(f"stabgap: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(
            "\nstabgap: interrupted; finished runs are kept, unfinished ones left no directory",
            file=sys.stderr,
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
