"""How close one run comes to this machine's matmul speed (the loop's overhead).

Counts the FLOPs a paper-protocol run must do (training and evaluation, from
stabgap.cost.flops), measures the matmul rate in the same process on the run's dominant
product, and reports measured time / (FLOPs / rate). Every task is shortened to
--batches batches, keeping every shape of the paper protocol. With --eval-precision bf16
the evaluation's FLOPs are priced at the bf16 rate (measured on the evaluation's own
product) and the training's at the fp32 rate: the floor of "measure in bf16, learn in fp32".

The rates move by several per cent from minute to minute on a shared machine, as much as
the overhead being measured; so each of --repeats runs is priced at the rates measured
right before and after it, and the median ratio is the figure.

With --breakdown, one more run goes under torch.profiler and its CPU time is split into
the matrix products (each priced at the floor's rate: what it took beyond its share of the
floor), the 10-class output layer's products, and every other op, named by the stabgap
function that called it (backward ops by their name: autograd calls them, not stabgap).

    python benchmarks/loop_overhead.py --batches 20
    python benchmarks/loop_overhead.py --batches 20 --eval-precision bf16 --breakdown
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections import defaultdict

import torch
from _common import WARM_UP, data_dir, machine, matmul_rate, peak_rss_mib, timed

from stabgap.core.models import cpu_matmul
from stabgap.core.streams import build_stream
from stabgap.core.train import train_runs
from stabgap.cost.flops import run_cost, total
from stabgap.studies.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] + " A paper-preset run, shortened.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--batches", type=int, default=20, help="batches per task")
    parser.add_argument("--experiment", default="nd", help="the paper preset's experiment")
    threads = torch.get_num_threads()
    parser.add_argument("--threads", type=int, default=threads, help="torch's CPU threads")
    parser.add_argument(
        "--eval-precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="the evaluation's precision (the training's is fp32)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs, each beside its rates")
    parser.add_argument("--breakdown", action="store_true", help="where one run's time goes")
    args = parser.parse_args()
    for flag in ("batches", "repeats", "threads"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    torch.set_num_threads(args.threads)

    config = get_preset("paper").config(
        args.experiment,
        {
            "batches_per_task": args.batches,
            "data_dir": data_dir(),
            "eval_precision": args.eval_precision,
        },
    )
    stream = build_stream(config)
    train_runs([config.replace(**WARM_UP)], stream)  # warm-up: allocator, kernels

    costs = run_cost(config)
    flops = total(costs).flops
    eval_flops = costs["evaluation"].flops
    bf16 = args.eval_precision == "bf16"

    def measure_rates() -> None:
        # The rates on the products that dominate the run: hidden × hidden at the batch
        # sizes of training (512·k) and evaluation (k tasks × 2048 or 3072 images; task 3's
        # in bf16: 3 × 3072 images).
        rates.append(matmul_rate(3072, 2048, 2048))
        eval_rates.append(
            matmul_rate(9216, 2048, 2048, dtype=torch.bfloat16) if bf16 else rates[-1]
        )

    rates, eval_rates, seconds, ratios = [], [], [], []
    measure_rates()
    for _ in range(args.repeats):  # each run between two measurements of the rates
        seconds.append(timed(lambda: train_runs([config], stream)))
        measure_rates()
        rate, eval_rate = statistics.mean(rates[-2:]), statistics.mean(eval_rates[-2:])
        ratios.append(seconds[-1] / floor_seconds(costs, rate, eval_rate))
    rate, eval_rate = statistics.median(rates), statistics.median(eval_rates)
    floor = floor_seconds(costs, rate, eval_rate)
    print(f"machine: {machine()}")
    print(
        f"run: paper '{args.experiment}', {args.batches} batches per task, "
        f"{config.total_batches} batches in all; timed {args.repeats} time(s)"
    )
    print(f"work: {flops / 1e12:.3f} TFLOP (training + evaluation)")
    print(
        f"fp32 matmul rate (3072x2048 @ 2048x2048, {cpu_matmul.library()}): "
        f"{rate / 1e9:.1f} GFLOP/s (median; {' '.join(f'{r / 1e9:.0f}' for r in rates)})"
    )
    if bf16:
        print(
            f"evaluation ({eval_flops / 1e12:.3f} TFLOP) in bf16, at its rate "
            f"(9216x2048 @ 2048x2048): {eval_rate / 1e9:.1f} GFLOP/s "
            f"(median; {' '.join(f'{r / 1e9:.0f}' for r in eval_rates)})"
        )
    print(
        f"matmul-bound floor: {floor:.2f} s   measured: {statistics.median(seconds):.2f} s "
        f"(median; {' '.join(f'{s:.2f}' for s in seconds)})"
    )
    overhead = statistics.median(ratios)
    print(
        f"loop overhead: {overhead:.3f}x the floor "
        f"(median of each run against its own rates; {' '.join(f'{r:.3f}' for r in ratios)})"
    )
    full_costs = run_cost(config.replace(batches_per_task=500))
    full, full_floor = total(full_costs).flops, floor_seconds(full_costs, rate, eval_rate)
    print(
        f"a full paper run ({full / 1e12:.1f} TFLOP) would take about "
        f"{overhead * full_floor / 60:.1f} min here; its matmul-bound floor: "
        f"{full_floor / 60:.1f} min"
    )
    print(f"peak memory: {peak_rss_mib():.0f} MiB")
    if args.breakdown:
        print_breakdown(lambda: train_runs([config], stream), rate, eval_rate)


def floor_seconds(costs: dict, rate: float, eval_rate: float) -> float:
    """The run's matmul-bound time: the evaluation's FLOPs at `eval_rate`, the rest at
    `rate` (FLOP/s)."""
    eval_flops = costs["evaluation"].flops
    return (total(costs).flops - eval_flops) / rate + eval_flops / eval_rate


# The ops that are matrix products, and the profiler's names of the product's operands.
PRODUCTS = {"aten::mm": (0, 1), "aten::addmm": (1, 2), "mkldnn::_linear_pointwise": (0, 1)}


def product_flops(name: str, shapes: list) -> tuple[int, bool]:
    """FLOPs of one product from its operands' shapes, and whether it is a narrow one (a
    side of at most 16: the 10-class output layer's).

    >>> product_flops("aten::addmm", [[1, 2048], [512, 784], [784, 2048], [], []])
    (1644167168, False)
    >>> product_flops("mkldnn::_linear_pointwise", [[9216, 2048], [10, 2048], [10]])
    (377487360, True)
    """
    a, b = (shapes[i] for i in PRODUCTS[name])
    # _linear_pointwise takes its weight as (out, in); mm and addmm take (in, out)
    m, k, n = a[0], a[1], b[0] if name.startswith("mkldnn") else b[1]
    return 2 * m * k * n, min(m, k, n) <= 16


def caller(stack: list[str]) -> str:
    """The innermost stabgap function in a profiler stack, as file:function ('' if none).

    >>> caller(["<built-in method sum>", "src/stabgap/core/evaluate.py(161): unit_counts"])
    'evaluate.py:unit_counts'
    """
    for frame in stack:
        path, _, function = frame.partition(": ")
        if "stabgap/" in path.replace(os.sep, "/") and function:
            return f"{os.path.basename(path.split('(')[0])}:{function}"
    return ""


def print_breakdown(run, rate: float, eval_rate: float) -> None:
    """Profile one run; print where its CPU time went, largest first."""
    from torch.profiler import ProfilerActivity, profile

    try:  # Python stacks of the ops (a private option: without it the stacks stay empty)
        verbose = {"experimental_config": torch._C._profiler._ExperimentalConfig(verbose=True)}
    except AttributeError:
        verbose = {}
    with profile(
        activities=[ProfilerActivity.CPU], record_shapes=True, with_stack=True, **verbose
    ) as prof:
        run()
    spent: dict[str, float] = defaultdict(float)
    floor: dict[str, float] = defaultdict(float)
    for e in prof.events():
        seconds, where = e.self_cpu_time_total / 1e6, caller(e.stack)
        if e.name in PRODUCTS:
            flops, narrow = product_flops(e.name, e.input_shapes)
            evaluating = where == "evaluate.py:evaluate" or "evaluate.py" in " ".join(e.stack)
            key = "evaluation" if evaluating else "training"
            key += " products" + (", output layer" if narrow else "")
            floor[key] += flops / (eval_rate if evaluating else rate)
        elif "::" in e.name:  # an op: by the stabgap function that called it
            key = f"{e.name} ({where or 'autograd'})"
        else:  # Python's own time between the ops
            key = "Python"
        spent[key] += seconds
    whole = sum(spent.values())
    print(
        f"\nwhere one profiled run's time went: {whole:.2f} s in ops on the calling threads "
        "(the profiler slows a run: compare shares, not seconds)"
    )
    print("the products, against their share of the floor (their FLOPs at its rates):")
    for key in sorted(floor, key=lambda k: -spent[k]):
        print(
            f"  {spent[key]:7.3f} s  {100 * spent[key] / whole:5.1f} %  "
            f"(floor {floor[key]:6.3f} s; beyond {spent[key] - floor[key]:6.3f} s)  {key}"
        )
    print("everything else, by op and the stabgap function that called it, largest first:")
    others = sorted((k for k in spent if k not in floor), key=lambda k: -spent[k])
    for key in others[:TOP]:
        print(f"  {spent[key]:7.3f} s  {100 * spent[key] / whole:5.1f} %  {key}")
    rest = sum(spent[k] for k in others[TOP:])
    print(f"  {rest:7.3f} s  {100 * rest / whole:5.1f} %  the {len(others[TOP:])} other groups")


TOP = 14  # rows of the breakdown's "everything else"


if __name__ == "__main__":
    main()
