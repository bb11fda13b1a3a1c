"""How close one run comes to this machine's matmul speed (the loop's overhead).

Counts the FLOPs a paper-protocol run must do (training and evaluation, from
stabgap.cost.flops), measures the matmul rate in the same process on the run's dominant
product, and reports measured time / (FLOPs / rate). Every task is shortened to
--batches batches, keeping every shape of the paper protocol. With --eval-precision bf16
the evaluation's FLOPs are priced at the bf16 rate (measured on the evaluation's own
product) and the training's at the fp32 rate: the floor of "measure in bf16, learn in fp32".

    python benchmarks/loop_overhead.py --batches 20
    python benchmarks/loop_overhead.py --batches 20 --eval-precision bf16
"""

from __future__ import annotations

import argparse

import torch
from _common import WARM_UP, data_dir, machine, matmul_rate, peak_rss_mib, timed

from stabgap.core.models import cpu_matmul
from stabgap.core.streams import build_stream
from stabgap.core.train import train_runs
from stabgap.cost.flops import run_cost, total
from stabgap.studies.presets import get_preset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20, help="batches per task")
    parser.add_argument("--experiment", default="nd")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--eval-precision", choices=("fp32", "bf16"), default="fp32")
    args = parser.parse_args()
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
    # The rate on the products that dominate the run: hidden × hidden at the batch sizes
    # of training (512·k) and evaluation (k tasks × 2048 or 3072 images).
    rate = matmul_rate(3072, 2048, 2048)
    eval_rate = rate
    if args.eval_precision == "bf16":  # the evaluation of task 3: 3 × 3072 images
        eval_rate = matmul_rate(9216, 2048, 2048, dtype=torch.bfloat16)
    seconds = timed(lambda: train_runs([config], stream))
    floor = (flops - eval_flops) / rate + eval_flops / eval_rate
    print(f"machine: {machine()}")
    print(
        f"run: paper '{args.experiment}', {args.batches} batches per task, "
        f"{config.total_batches} batches in all"
    )
    print(f"work: {flops / 1e12:.3f} TFLOP (training + evaluation)")
    print(
        f"fp32 matmul rate (3072x2048 @ 2048x2048, {cpu_matmul.library()}): "
        f"{rate / 1e9:.1f} GFLOP/s"
    )
    if args.eval_precision == "bf16":
        print(
            f"evaluation ({eval_flops / 1e12:.3f} TFLOP) in bf16, at its rate "
            f"(9216x2048 @ 2048x2048): {eval_rate / 1e9:.1f} GFLOP/s"
        )
    print(f"matmul-bound floor: {floor:.2f} s   measured: {seconds:.2f} s")
    print(f"loop overhead: {seconds / floor:.3f}x the floor")
    full_costs = run_cost(config.replace(batches_per_task=500))
    full, full_eval = total(full_costs).flops, full_costs["evaluation"].flops
    full_floor = (full - full_eval) / rate + full_eval / eval_rate
    print(
        f"a full paper run ({full / 1e12:.1f} TFLOP) would take about "
        f"{seconds / floor * full_floor / 60:.1f} min here; its matmul-bound floor: "
        f"{full_floor / 60:.1f} min"
    )
    print(f"peak memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
