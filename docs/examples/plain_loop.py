"""A plain PyTorch loop, not stabgap's, whose curves stabgap then measures and reports.

Three tasks of a toy problem (points in the plane, each task's classes rotated), a small
MLP trained by SGD at two learning rates for three seeds; before every batch each task seen
so far is evaluated, and the accuracies go to a curves file (docs/curves-format.md):

    python docs/examples/plain_loop.py curves.csv
    stabgap import-curves curves.csv --out runs/plain
    stabgap report runs/plain
"""

import csv
import math
import sys

import torch

BATCHES, BATCH = 60, 64  # per task


def task_data(task: int, n: int, g: torch.Generator):
    """Two classes, the halves of the plane, turned by 60° more in each task."""
    x = torch.randn(n, 2, generator=g)
    angle = math.radians(60 * (task - 1))
    normal = torch.tensor([math.cos(angle), math.sin(angle)])
    return x, (x @ normal > 0).long()


def main(path: str) -> None:
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["run", "group", "seed", "step", "training", "task", "accuracy_pct", "config.lr"])
        for lr in (0.01, 0.1):  # the first group in the file: the report's baseline
            for seed in (1, 2, 3):
                g = torch.Generator().manual_seed(seed)
                model = torch.nn.Sequential(
                    torch.nn.Linear(2, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2)
                )
                opt = torch.optim.SGD(model.parameters(), lr=lr)
                tests = [task_data(k, 500, g) for k in (1, 2, 3)]
                step = 0
                for task in (1, 2, 3):
                    for _ in range(BATCHES):
                        with torch.no_grad():  # every task seen so far, before the update
                            for k in range(1, task + 1):
                                x, y = tests[k - 1]
                                acc = (model(x).argmax(1) == y).float().mean().item() * 100
                                out.writerow([f"lr{lr}-seed{seed}", f"sgd lr={lr}", seed, step,
                                              task, k, acc, lr])
                        x, y = task_data(task, BATCH, g)
                        opt.zero_grad()
                        torch.nn.functional.cross_entropy(model(x), y).backward()
                        opt.step()
                        step += 1
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "curves.csv")
