"""Re-draw a report's figure from its exported tables, in your own style.

Any metric of `metrics.csv` (one row per run × metric × task × interval, every config field a
column, the group as the report names it) against any config field the study swept, the
mean over seeds with its standard deviation, one line per value of another field:

    python docs/examples/redraw.py runs/own/report --metric gap_depth --task 1 --interval 3 \\
        --field lr --by ema_decay --out gap-vs-lr.png

The tables join on `group`: with pandas, `curves.merge(groups, on="group")` puts every
point of every curve beside its group's statistics.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path, help="a report folder (stabgap report's --out)")
    parser.add_argument("--metric", default="gap_depth", help="a metric of metrics.csv")
    parser.add_argument("--task", default="1", help="its task ('' for none)")
    parser.add_argument("--interval", default="", help="its interval ('' for none)")
    parser.add_argument("--field", required=True, help="the config field on the x axis")
    parser.add_argument("--by", help="a config field whose values are separate lines")
    parser.add_argument("--out", type=Path, default=Path("redrawn.png"))
    args = parser.parse_args(argv)

    with open(args.report / "metrics.csv", newline="") as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if r["metric"] == args.metric
            and r["task"] == args.task
            and r["interval"] == args.interval
            and r["value"] != ""  # undefined (never recovered, diverged)
        ]
    if not rows:
        raise SystemExit(
            f"no values of {args.metric} (task {args.task!r}, interval "
            f"{args.interval!r}) in {args.report / 'metrics.csv'}"
        )
    unit = rows[0]["unit"]
    lines: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        line = f"{args.by}={r[args.by]}" if args.by else args.metric
        lines[line][float(r[args.field])].append(float(r["value"]))

    fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
    for line, points in sorted(lines.items()):
        xs = sorted(points)
        means = [statistics.fmean(points[x]) for x in xs]
        sds = [statistics.stdev(points[x]) if len(points[x]) > 1 else 0.0 for x in xs]
        ax.errorbar(xs, means, yerr=sds, marker="o", capsize=3, label=line)
    ax.set_xlabel(args.field)
    ax.set_ylabel(f"{args.metric} ({unit}), mean ± sd over seeds")
    ax.legend(frameon=False, fontsize=8)
    fig.savefig(args.out, dpi=150)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
