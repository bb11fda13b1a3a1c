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
from stabgap.config import FIELDS, coerce, help_text
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
        if key.replace("-", "_") not in FIELDS:
            from stabgap.config import _unknown_field_message

            raise StabgapError(_unknown_field_message(key))
        overrides[key.replace("-", "_")] = parse_field(key.replace("-", "_"), text)
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
    run.add_argument(
        "--workers", type=int, default=1, help="parallel worker processes (default: 1)"
    )
    run.add_argument(
        "--stack",
        type=int,
        help="most runs trained together as one stack (default: 32 on CUDA, 1 on CPU)",
    )
    run.add_argument("--no-plot", action="store_true", help="do not save curves.png per run")
    run.add_argument("--quiet", action="store_true", help="no progress output")
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
