"""How the time to recover's verdict depends on its definition (the poster's open question).

The reference's TTR waits for the curve to reach its single last point before the switch
again: one noisy point decides it, and many seeds never recover. The robust one measures
recovery to a 10-batch level within a tolerance; but with a fixed tolerance a shallower
dip is within it sooner, so a remedy that only makes the gap shallower would seem to
recover faster. So the comparison is shown under several definitions: the reference's,
the robust one at fixed tolerances, and at tolerances relative to each dip's own depth
(recovered once that share of the drop is regained), which compare dips of any depth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stabgap.metrics import recovery_span, time_to_recover, time_to_recover_robust
from stabgap.statistics.comparison import Comparison, compare


@dataclass(frozen=True)
class Definition:
    name: str  # how the table says it
    metric: str  # the comparison's metric name (shared with the comparisons table's)
    value: Callable  # (record, interval) -> TTR in % of the interval, NaN if never


def definitions(interval: int) -> list[Definition]:
    """The definitions compared, the reference's first."""
    j = interval

    def robust(tolerance: float, of_depth: bool = False):
        return lambda r: r.measure(
            time_to_recover_robust, 1, j, tolerance=tolerance, of_depth=of_depth
        )

    return [
        Definition(
            "reference: back to the last point before the switch",
            f"TTR_1,{j}",
            lambda r: r.measure(time_to_recover, 1, j),
        ),
        *(
            Definition(
                f"robust: within {t:g} p.p. of the 10-batch level"
                + (" (stabgap's default)" if t == 1 else ""),
                f"TTR_1,{j} robust" + ("" if t == 1 else f", within {t:g} p.p."),
                robust(t),
            )
            for t in (0.0, 0.5, 1.0, 2.0)
        ),
        *(
            Definition(
                f"robust: within {f:.0%} of the dip's own depth",
                f"TTR_1,{j} robust, within {f:.0%} of the depth",
                robust(f, of_depth=True),
            )
            for f in (0.1, 0.25)
        ),
    ]


def ttr_tests(
    base, group, labels: dict[str, str], interval: int
) -> list[tuple[Definition, Comparison]]:
    """`group` against `base` on every definition: (definition, comparison) pairs."""

    def by_seed(g, d: Definition) -> dict:
        out = {}
        for r in g.runs:
            v = d.value(r)
            out[r.config["seed"]] = None if v != v else v  # NaN: never recovered
        return out

    return [
        (
            d,
            compare(
                by_seed(base, d),
                by_seed(group, d),
                labels[base.key],
                labels[group.key],
                metric=d.metric,
                quantity=f"TTR_1,{interval}",
                censored=True,
                span=recovery_span(base.runs + group.runs, interval),
            ),
        )
        for d in definitions(interval)
    ]
