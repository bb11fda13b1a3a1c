"""The ResNet's and the ViT's time per training batch, alone and stacked, against torch's
own modules, and the evaluation schedule's saving on a whole run.

Part 1: one training step (forward, cross-entropy, backward, SGD update) of a batch of
32 × 32 colour images, for stabgap's stacked network at R = 1 and R copies, against the
floor: the same network built from torch's own modules (nn.Conv2d and nn.BatchNorm2d; nn.
TransformerEncoderLayer), one copy, times R. Medians of --repeats, side by side in one
process. The FLOPs are stabgap's cost model's; GFLOP/s is FLOPs / time.

Part 2: a whole quick-resnet run (rotated MNIST, the ResNet at 8 base filters) evaluated at
every batch and with the preset's schedule (every 5th batch, every batch for 20 after each
switch): wall time and the evaluation's FLOPs (`stabgap cost`'s count), one seed each.

On a GPU (``--device cuda``; ``auto``, the default, takes one where there is one) each step
is timed to the GPU's end of it, and stacking is where it pays: ``--copies 1,4,16,64`` draws
the curve.

    python benchmarks/model_speed.py
    python benchmarks/model_speed.py --copies 4 --batch 64 --skip-run
    python benchmarks/model_speed.py --device cuda --copies 1,4,16,64
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _common import data_dir, machine, median_time, timed
from torch import nn

from stabgap.core.config import RunConfig
from stabgap.core.device import resolve_device
from stabgap.core.models import build_model
from stabgap.core.models.layers import backward_cost, forward_cost, loss_cost
from stabgap.core.models.resnet import ResNet, plan
from stabgap.core.models.vit import ViT
from stabgap.core.train import run_experiment
from stabgap.cost.flops import run_cost
from stabgap.errors import StabgapError
from stabgap.studies.presets import get_preset

SHAPE = (3, 32, 32)
CLASSES = 10


class TorchResNet(nn.Module):
    """The reduced ResNet-18 from torch's modules: the floor of stabgap's."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.roles = [role for role, *_ in plan(width, SHAPE)]
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, stride=s, padding=k // 2, bias=False)
            for _, c_in, c_out, k, s, _ in plan(width, SHAPE)
        )
        self.norms = nn.ModuleList(nn.BatchNorm2d(c.out_channels) for c in self.convs)
        self.fc = nn.Linear(self.convs[-1].out_channels, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def layer(k: int, x: torch.Tensor) -> torch.Tensor:
            return self.norms[k](self.convs[k](x))

        x, k = F.relu(layer(0, x)), 1
        while k < len(self.convs):
            shortcut = k + 2 < len(self.convs) and self.roles[k + 2] == "shortcut"
            y = layer(k + 1, F.relu(layer(k, x)))
            x = F.relu(y + (layer(k + 2, x) if shortcut else x))
            k += 3 if shortcut else 2
        return self.fc(x.mean(dim=(-2, -1)))


class TorchViT(nn.Module):
    """The small ViT from torch's modules (a patchifying conv, pre-norm encoder layers)."""

    def __init__(self, patch: int, dim: int, depth: int, heads: int) -> None:
        super().__init__()
        tokens = (SHAPE[1] // patch) * (SHAPE[2] // patch) + 1
        self.patches = nn.Conv2d(SHAPE[0], dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.zeros(1, tokens, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.0, activation="gelu",
                                           batch_first=True, norm_first=True)  # fmt: skip
        self.blocks = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1) + self.position
        return self.head(self.norm(self.blocks(x)[:, 0]))


def step_time(net: nn.Module, stacked: bool, copies: int, args) -> float:
    """Median seconds of one SGD step on a batch of random images and labels."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    shape = (copies, args.batch, *SHAPE) if stacked else (args.batch, *SHAPE)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(args.device)
    y = torch.randint(0, CLASSES, shape[: 2 if stacked else 1]).to(args.device)

    def step() -> None:
        optimizer.zero_grad()
        logits = net(x)[0] if stacked else net(x)
        F.cross_entropy(logits.reshape(-1, CLASSES), y.reshape(-1)).backward()
        optimizer.step()
        if args.device.type == "cuda":  # a GPU works on after the call returns
            torch.cuda.synchronize(args.device)

    return median_time(step, args.repeats, warmup=2)


def compare(name: str, config: RunConfig, floor: nn.Module, args) -> None:
    layers = (ResNet if config.model == "resnet" else ViT).layers(config, SHAPE, CLASSES)
    flops = (forward_cost(layers, args.batch, 3072) + backward_cost(layers, args.batch)
             + loss_cost(CLASSES, args.batch)).flops  # fmt: skip
    alone = step_time(floor.to(args.device), False, 1, args)
    for r in args.copies:
        gens = [torch.Generator().manual_seed(s) for s in range(r)]
        net = build_model(config, SHAPE, CLASSES, gens, args.device)
        t = step_time(net, True, r, args)
        print(
            f"| {name} | {r} | {t * 1e3 / r:.1f} | {alone * 1e3:.1f} | {t / (r * alone):.2f}× "
            f"| {flops / 1e9:.2f} | {r * flops / t / 1e9:.1f} |",
            flush=True,
        )


def whole_run(args) -> None:
    print("\n| quick-resnet run, 1 seed | evaluated | wall s | evaluation GFLOP | run GFLOP |")
    print("| --- | --- | --- | --- | --- |")
    where = {"data_dir": data_dir(), "device": str(args.device)}
    scheduled = get_preset("quick-resnet").config("baseline", where)
    every = scheduled.replace(eval_every=1, eval_switch_window=0)
    for label, config in (("every batch", every), ("preset schedule", scheduled)):
        costs = run_cost(config)
        seconds = timed(lambda c=config: run_experiment(c))
        evaluation = costs["evaluation"].flops / 1e9
        whole = sum(c.flops for c in costs.values()) / 1e9
        print(f"| | {label} | {seconds:.0f} | {evaluation:.0f} | {whole:.0f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument(
        "--copies", default="1,4", help="the stack sizes R measured, comma-separated"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-run", action="store_true", help="part 1 only")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    args = parser.parse_args()
    try:
        args.copies = [int(r) for r in args.copies.split(",")]
        args.device = resolve_device(args.device)
    except ValueError:
        parser.error(f"--copies {args.copies!r}: give stack sizes as whole numbers, e.g. 1,4")
    except StabgapError as e:
        parser.error(str(e))
    for flag in ("batch", "repeats"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if min(args.copies) < 1:
        parser.error("--copies: every stack size must be at least 1")
    torch.manual_seed(0)
    where = torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else machine()
    print(f"machine: {where}; batch {args.batch} of 3 × 32 × 32 images, {CLASSES} classes")
    print("\n| network | R | ms a copy | torch's modules, ms | ratio | GFLOP a copy | GFLOP/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    resnet = RunConfig(model="resnet", hidden=(2048, 2048))
    compare("ResNet-18, width 20", resnet, TorchResNet(20), args)
    vit = RunConfig(model="vit", hidden=(2048, 2048))
    compare("ViT 4×4 patches, 4 × 64", vit, TorchViT(4, 64, 4, 4), args)
    if not args.skip_run:
        whole_run(args)


if __name__ == "__main__":
    main()
