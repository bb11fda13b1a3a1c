"""Does the baseline pay for the remedies it does not use? And what does each remedy (or
each continual-learning method) cost?

Times the training alone (one evaluation a task) of a preset's default runs, side by side in
one process, alternating, medians over --repeats:

- with `--preset remedies` (the default), a bare PyTorch loop of the same work as the
  baseline (nn.Linear layers, torch.optim.Adam, the same batch sizes, indices drawn once up
  front): what the baseline would cost with no remedy machinery at all;
- the preset's baseline (the remedies': stabgap's loop with every extension point in place
  but no remedy on; the methods': ER with M = 200);
- each run of the preset's default set.

Prints ms per training batch and each as × the baseline's.

    python benchmarks/remedy_overhead.py --batches 100 --repeats 5
    python benchmarks/remedy_overhead.py --preset methods --batches 60 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics

import torch
from _common import data_dir, machine, timed
from torch import nn

from stabgap.core.streams import build_stream
from stabgap.core.train import train_stack
from stabgap.studies.presets import get_preset


def bare_loop(config, stream) -> None:
    """The baseline's training steps written plainly: same shapes, same optimiser."""
    torch.manual_seed(config.seed)
    widths = [784, *config.hidden]
    layers: list[nn.Module] = []
    for a, b in zip(widths, widths[1:], strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(widths[-1], 10))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    x_all = stream.train_x
    y_all = stream.train_y
    for task in range(1, config.task_count + 1):
        seen = int(stream.train_offsets[task])
        batch = config.task_batch_size(task)
        idx = torch.randint(0, seen, (config.batches_per_task, batch))
        for t in range(config.batches_per_task):
            x = x_all[idx[t]].float().div_(255).flatten(1)
            loss = nn.functional.cross_entropy(model(x), y_all[idx[t]])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=100, help="batches per task")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--preset", choices=("remedies", "methods", "methods-rotated"),
                        default="remedies")  # fmt: skip
    args = parser.parse_args()
    preset = get_preset(args.preset)
    extra = {"data_dir": data_dir(), "batches_per_task": args.batches}
    # Two evaluations a task, out of the way: what is timed is the training alone
    # (train_time_s); eval_every = batches would be refused (no point after any update).
    extra["eval_every"] = max(1, args.batches // 2)
    configs = {name: preset.config(name, extra) for name in preset.default_experiments}
    stream = build_stream(configs[preset.baseline])

    def ours(name: str) -> float:
        (r,) = train_stack([configs[name]], stream)
        return r.metadata["train_time_s"] / len(r.loss)

    def bare() -> float:
        base = configs["baseline"]
        return timed(lambda: bare_loop(base, stream)) / base.total_batches

    measures = {n: (lambda n=n: ours(n)) for n in configs}
    if args.preset == "remedies":
        measures = {"bare PyTorch loop": bare, **measures}
    for f in measures.values():  # warm-up
        f()
    times: dict[str, list[float]] = {name: [] for name in measures}
    names = list(measures)
    for i in range(args.repeats):
        for name in names if i % 2 == 0 else names[::-1]:
            times[name].append(measures[name]())
    base = statistics.median(times[preset.baseline])
    print(f"machine: {machine()}")
    print(f"{args.preset} preset, {args.batches} batches a task, {args.repeats} repeats (medians)")
    print("| run | ms per training batch | × baseline |")
    print("| --- | --- | --- |")
    for name in names:
        ms = statistics.median(times[name])
        print(f"| {name} | {1000 * ms:.2f} | {ms / base:.3f} |")


if __name__ == "__main__":
    main()
