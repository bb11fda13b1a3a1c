"""Ours against a conventional PyTorch loop written as the reference's is described.

The conventional loop (docs/protocol.md): a Dataset that rotates each sample when it is
fetched, a DataLoader over the union of the tasks seen (full replay), nn.Linear layers
and torch.optim.Adam, and for every batch a separate evaluation loop per task that
draws test batches of the training batch size until it has 2,000 images. Both loops run
the paper protocol's shapes for --batches batches per task, side by side in one process.

    python benchmarks/conventional.py --batches 5
"""

from __future__ import annotations

import argparse
import itertools

import torch
from _common import data_dir, machine, peak_rss_mib, timed
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from stabgap.core.data.mnist import load_mnist
from stabgap.core.streams import build_stream
from stabgap.core.streams.rotated import rotate
from stabgap.core.train import train_runs
from stabgap.studies.presets import get_preset


class RotatedMNIST(Dataset):
    """One task: every image rotated by `degrees` when fetched, as torchvision would."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, degrees: float) -> None:
        self.images, self.labels, self.degrees = images, labels, degrees

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        x = self.images[i : i + 1].float().div(255)
        return rotate(x, self.degrees)[0].flatten(), self.labels[i]


def conventional_run(config, mnist, batches: int) -> None:
    torch.manual_seed(config.seed)
    widths = (784, *config.hidden, 10)
    layers = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    train = [RotatedMNIST(mnist.train_images, mnist.train_labels, r) for r in config.rotations]
    test = [RotatedMNIST(mnist.test_images, mnist.test_labels, r) for r in config.rotations]
    for task in range(1, config.n_tasks + 1):
        size = config.task_batch_size(task)
        loader = DataLoader(ConcatDataset(train[:task]), batch_size=size, shuffle=True)
        for _, (x, y) in zip(range(batches), itertools.cycle(loader), strict=False):
            model.eval()
            with torch.no_grad():  # a separate evaluation loop for every task seen
                for t in test[:task]:
                    seen = 0
                    for tx, ty in DataLoader(t, batch_size=size, shuffle=True):
                        (model(tx).argmax(1) == ty).sum()
                        seen += len(ty)
                        if seen >= config.eval_subset:
                            break
            model.train()
            h, acts = x, []
            for m in model:
                h = m(h)
                if isinstance(m, nn.ReLU):
                    acts.append(h)
            loss = nn.functional.cross_entropy(h, y) + config.decay_lambda * sum(
                a.square().sum() for a in acts
            )
            opt.zero_grad()
            loss.backward()
            opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=5, help="batches per task")
    parser.add_argument("--experiment", default="nd")
    args = parser.parse_args()
    config = get_preset("paper").config(
        args.experiment, {"batches_per_task": args.batches, "data_dir": data_dir()}
    )
    mnist = load_mnist(config.data_dir)

    def ours() -> None:
        train_runs([config], build_stream(config, "cpu", mnist))  # rotation included

    ours()  # warm-up
    t_ours = timed(ours)
    t_conv = timed(lambda: conventional_run(config, mnist, args.batches))
    n = config.total_batches
    print(f"machine: {machine()}")
    print(
        f"paper '{args.experiment}' shapes, {args.batches} batches per task ({n} in all), "
        "evaluation of every seen task at every batch"
    )
    print(f"conventional loop: {t_conv / n * 1000:9.1f} ms per batch")
    print(f"stabgap:           {t_ours / n * 1000:9.1f} ms per batch (data set-up included)")
    print(f"speed-up: {t_conv / t_ours:.2f}x")
    print(f"peak memory: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
