"""The analytic cost model against torch's own FLOP counter and the reference's numbers."""

from __future__ import annotations

import re

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from stabgap.cli import main
from stabgap.core.config import RunConfig
from stabgap.core.models.mlp import StackedMLP
from stabgap.core.remedies.decay import neuronal_decay
from stabgap.core.train import cross_entropy
from stabgap.cost import flops as cost
from stabgap.studies.presets import PAPER_BASE, get_preset

SIZES = [(784, 32, 10), (20, 16, 8, 5), (784, 64, 48, 32, 10), (3, 1, 2)]


# --- the reference's numbers ------------------------------------------------------------
def test_reference_forward_macs_match_thop():
    assert cost.reference_forward_macs() == 2_980_052_992
    assert cost.reference_forward_macs(decay=True) - cost.reference_forward_macs() == 2_097_152
    assert 2 * 2048 * 512 == 2_097_152


def test_nd_forward_overhead_is_0_070_not_0_007_percent():
    o = cost.nd_overhead()
    assert o["forward_macs"] == pytest.approx(100 * 2_097_152 / 2_980_052_992)
    assert round(o["forward_macs"], 3) == 0.070
    # The whole step dilutes ND further: the backward pass and Adam are ND-free work.
    assert 0 < o["step_macs"] < o["forward_macs"]
    assert 0 < o["step_flops"] < o["forward_flops"]


def test_thop_convention_for_other_widths():
    # thop: in_features MACs per output element of each nn.Linear, no bias, no ReLU.
    assert cost.reference_forward_macs((1024, 1024), 512) == 512 * (
        784 * 1024 + 1024 * 1024 + 1024 * 10
    )


# --- against torch.utils.flop_counter ---------------------------------------------------
def _model(sizes: tuple[int, ...], r: int) -> StackedMLP:
    return StackedMLP(sizes, [torch.Generator().manual_seed(s) for s in range(r)])


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("sizes", SIZES)
@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("r", [1, 3])
def test_forward_and_backward_matmul_flops_match_flop_counter(sizes, batch, r):
    model = _model(sizes, r)
    x = torch.rand(r, batch, sizes[0])
    y = torch.randint(0, sizes[-1], (r, batch))
    out: dict = {}

    def forward():
        out["logits"], out["hidden"] = model(x)

    def backward():
        nd = torch.full((r,), 1e-3) * neuronal_decay(out["hidden"])
        (cross_entropy(out["logits"], y) + nd).sum().backward()

    layers = cost.mlp_layers(sizes)
    assert _flops(forward) == r * cost.forward_cost(layers, batch, sizes[0]).matmul_flops
    assert _flops(backward) == r * cost.backward_cost(layers, batch).matmul_flops
    # The usual rule: backward = 2 × forward, but for the first layer's input gradient.
    fwd, bwd = cost.forward_cost(layers, batch, sizes[0]), cost.backward_cost(layers, batch)
    assert bwd.macs == 2 * fwd.macs - batch * sizes[0] * sizes[1]


@pytest.mark.parametrize("channels,hidden", [((4,), (8,)), ((3, 5), (6, 4))])
@pytest.mark.parametrize("r", [1, 2])
def test_cnn_forward_and_backward_flops_match_flop_counter(channels, hidden, r):
    from stabgap.core.models.cnn import StackedCNN

    model = StackedCNN((1, 28, 28), channels, hidden, 10, [torch.Generator()] * r)
    x, y = torch.rand(r, 5, 1, 28, 28), torch.randint(0, 10, (r, 5))
    out: dict = {}

    def forward():
        out["logits"], _ = model(x)

    config = RunConfig(model="cnn", channels=channels, hidden=hidden)
    layers = cost.model_layers(config)
    assert _flops(forward) == r * cost.forward_cost(layers, 5, 784).matmul_flops
    backward = _flops(lambda: cross_entropy(out["logits"], y).sum().backward())
    if r == 1:  # torch's counter takes a grouped convolution's backward for R full ones
        assert backward == cost.backward_cost(layers, 5).matmul_flops


@pytest.mark.parametrize("decay", [False, True])
@pytest.mark.parametrize("kind", ["adam", "sgd"])
@pytest.mark.parametrize("hidden", [(32,), (64, 48, 32)])
def test_full_training_step_matmul_flops_match_flop_counter(hidden, decay, kind, small_stream):
    from conftest import tiny_config

    from stabgap.core.remedies import Step
    from stabgap.core.train import build_parts, train_step

    config = tiny_config(hidden=hidden, optimizer=kind, decay_lambda=1e-4 if decay else 0.0)
    parts = build_parts([config], small_stream, torch.device("cpu"))
    parts.sampler.start_task(1)
    batch = parts.sampler.next()
    step = _flops(lambda: train_step(parts, batch, Step(1, 0, 0)))
    expected = cost.total(cost.train_step_costs(config, batch.shape[1]))
    assert step == expected.matmul_flops
    # ND adds MACs and FLOPs but no matrix product.
    plain = cost.total(cost.train_step_costs(config.replace(decay_lambda=0.0), batch.shape[1]))
    assert expected.matmul_flops == plain.matmul_flops
    assert expected.macs - plain.macs == (2 * batch.shape[1] * sum(hidden) if decay else 0)


# --- the optimiser's elementwise count, from the ops it really runs ---------------------
class ElementwiseFlops(TorchDispatchMode):
    """FLOPs of arithmetic aten ops: output elements × ops per element."""

    PER_ELEMENT = {
        "add": 1,
        "sub": 1,
        "mul": 1,
        "div": 1,
        "sqrt": 1,
        "neg": 1,
        "lerp": 3,
        "addcmul": 3,
        "addcdiv": 3,
    }

    def __init__(self) -> None:
        super().__init__()
        self.flops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func.overloadpacket.__name__.rstrip("_")
        if isinstance(out, torch.Tensor):  # not the profiler's record_function objects
            # a + alpha·b is two operations (a multiply-add), as the cost model counts it.
            scaled = name in ("add", "sub") and kwargs.get("alpha", 1) != 1
            self.flops += (self.PER_ELEMENT.get(name, 0) + scaled) * out.numel()
        return out


OPTIMIZER_SETTINGS = [
    {"optimizer": "adam"},
    {"optimizer": "adam", "weight_decay": 0.1},
    {"optimizer": "adamw", "weight_decay": 0.1},
    {"optimizer": "sgd"},
    {"optimizer": "sgd", "momentum": 0.9},
    {"optimizer": "sgd", "momentum": 0.9, "nesterov": True, "weight_decay": 0.1},
    {"optimizer": "rmsprop"},
    {"optimizer": "rmsprop", "momentum": 0.9},
    {"optimizer": "adagrad"},
]


@pytest.mark.parametrize("settings", OPTIMIZER_SETTINGS)
def test_optimizer_flops_match_the_ops_torch_optim_runs(settings):
    """torch.optim's single-tensor update, op by op, against the per-parameter count."""
    from stabgap.core.optim import OPTIMIZERS

    config = RunConfig(**settings)
    spec = OPTIMIZERS[config.optimizer]
    p = torch.nn.Parameter(torch.randn(40, 30))
    opt = spec.make([p], lr=1e-3, foreach=False, **spec.options(config))
    p.grad = torch.randn_like(p)
    opt.step()  # momentum buffers start as a copy of the first gradient
    with ElementwiseFlops() as counter:
        opt.step()
    expected = spec.flops_per_param(config) * p.numel()
    assert expected <= counter.flops <= expected + 20  # + a few scalar bias corrections


def test_n_parameters_matches_the_model():
    for sizes in SIZES:
        model = _model(sizes, 1)
        assert cost.n_parameters(cost.mlp_layers(sizes)) == sum(
            p.numel() for p in model.parameters()
        )


# --- whole runs -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"eval_every": 3},
        {"eval_every": 7, "eval_tasks": "all", "decay_lambda": 1e-5},
        {"replay": "none", "eval_subset": 50, "optimizer": "sgd", "momentum": 0.5},
        {"eval_subset_rounding": "batches", "batch_growth": "always", "replay": "none"},
        {"eval_repeats": 2, "eval_resample": "fresh"},  # two passes at each point
    ],
)
def test_run_cost_matches_the_matmuls_of_a_real_run(changes, small_stream):
    """The real training loop, run under torch's FLOP counter, against the model."""
    from conftest import tiny_config

    from stabgap.core.train import run_experiment

    base = dict(hidden=(8, 4), batches_per_task=10, batch_size=6, eval_subset=20)
    config = tiny_config(**{**base, **changes})
    with FlopCounterMode(display=False) as counter:
        run_experiment(config, small_stream)
    predicted = cost.total(cost.run_cost(config, test_size=small_stream.test_size(1)))
    assert counter.get_total_flops() == predicted.matmul_flops


def test_paper_protocol_run_totals():
    per_image = 784 * 2048 + 2048 * 2048 + 2048 * 10  # forward MACs of one image
    run = cost.run_cost(PAPER_BASE)
    # Task k draws 500 batches of 512·k from its pool of 60,000·k images (full replay) in
    # passes of 117 full batches and one of the remaining 96·k (drop_last off, as in the
    # reference): 4 passes and 28 batches, so 496 full batches and 4 of 96·k.
    images = (496 * 512 + 4 * 96) * (1 + 2 + 3)
    assert run["forward"].macs == images * per_image
    # evaluations of k tasks × (2048, 2048, 3072) images at all 500 batches of task k
    assert run["evaluation"].macs == 500 * (2048 + 2 * 2048 + 3 * 3072) * per_image
    nd = cost.run_cost(PAPER_BASE.replace(decay_lambda=1e-5))
    extra = cost.total(nd).macs - cost.total(run).macs
    assert extra == 2 * images * 2 * 2048  # ND forward + backward
    assert nd["evaluation"] == run["evaluation"]  # evaluation computes no ND


def test_cost_command_prints_the_table(capsys):
    assert main(["cost"]) == 0
    text = capsys.readouterr().out
    assert "2,980,052,992" in text and "2,097,152" in text
    assert "+0.0704 % MACs" in text
    assert "run total" in text and "138.002 T" in text
    shape = ["--hidden", "64,32", "--batch-size", "8", "--task", "2", "--optimizer", "sgd"]
    assert main(["cost", *shape]) == 0
    assert "MLP 784-64-32-10, batch 16, sgd" in capsys.readouterr().out


def test_cost_command_counts_a_presets_run_on_its_own_data(capsys):
    assert main(["cost", "--preset", "cifar10-split", "--task", "2"]) == 0
    text = capsys.readouterr().out
    assert "reduced ResNet-18, 20 base filters, batch norm, 10 outputs, batch 256 + 256 " in text
    assert "in this run already (256 replayed)" in text  # ER is the preset's own baseline
    assert "5 tasks × 400 batches (batches of 256, 512, 512, 512, 512 examples" in text
    expected = cost.total(cost.run_cost(get_preset("cifar10-split").config("er"))).flops
    assert f"{expected / 1e12:.3f} T" in text.split("run total")[1].split("\n")[0]
    # the user's own setting over the preset's; a field of a swapped-out network dropped
    assert main(["cost", "--preset", "quick-resnet", "--model", "mlp", "--hidden", "64"]) == 0
    assert "MLP 784-64-10, batch 128" in capsys.readouterr().out


def test_cost_command_adds_nd_at_the_lambda_the_preset_runs_it_at(capsys):
    """ND on the experiment itself (the methods preset's nd-er-200), else the preset's nd,
    else the poster's λ."""
    heads = {}
    for args in (["methods"], ["methods", "--experiment", "er-2000"], ["quick"]):
        assert main(["cost", "--preset", *args]) == 0
        heads[args[-1]] = capsys.readouterr().out.splitlines()[0]
    assert heads["methods"].endswith("ND at λ = 0.0001")  # nd-er-200's
    assert heads["er-2000"].endswith("ND at λ = 1e-05")  # no nd-er-2000: the poster's
    assert heads["quick"].endswith(f"ND at λ = {get_preset('quick').config('nd').decay_lambda:g}")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--experiment", "nd"], "--experiment names a preset's experiment: add --preset NAME"),
        (["--preset", "quick", "--experiment", "typo"], "preset 'quick' has no experiment 'typo'"),
        (["--channels", "8,8"], "channels applies to model cnn only"),
        (
            ["--preset", "quick-split", "--batch-size", "20000"],
            "batch size 20000 in task 1 is larger than task 1's training set (12665 images)",
        ),
    ],
)
def test_cost_command_refuses_what_it_cannot_count_in_one_line(capsys, args, message):
    assert main(["cost", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_cost_command_refuses_a_task_it_does_not_have(capsys):
    assert main(["cost", "--task", "4"]) == 2
    assert capsys.readouterr().err == "stabgap: error: --task must be between 1 and 3, got 4\n"


# --- the data a run's cost is counted on --------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"stream": "permuted", "n_tasks": 4},
        {"stream": "split"},
        {"stream": "split", "scenario": "domain", "classes_per_task": 5},
        {"stream": "homogeneous", "n_tasks": 3},
        {"dataset": "fashion-mnist", "stream": "split", "classes_per_task": 5},
    ],
)
def test_the_cost_model_knows_each_streams_data_without_loading_it(changes):
    """The images, the network's outputs and each task's test images, as the cost model
    reads them from the config alone, against the stream built from the real files."""
    from conftest import mnist_dir
    from test_data import FASHION_DIR

    from stabgap.core.streams import build_stream

    if "dataset" not in changes:
        config = RunConfig(data_dir=str(mnist_dir()), eval_subset=500, **changes)
    elif (FASHION_DIR / "t10k-labels-idx1-ubyte.gz").exists():  # Debian's package (CI has it)
        config = RunConfig(eval_subset=500, **changes)
    else:
        pytest.skip("Fashion-MNIST is not installed (apt install dataset-fashion-mnist)")
    stream = build_stream(config)
    shape = cost.run_shape(config)
    assert shape.image == stream.input_shape and shape.n_classes == stream.n_classes
    assert shape.test_sizes == tuple(stream.test_size(t) for t in range(1, stream.n_tasks + 1))


def test_a_colour_runs_cost_counts_its_own_images_and_classes():
    # The same ResNet on CIFAR-100's 3 × 32 × 32 images and 100 classes, and on MNIST's.
    cifar = RunConfig(dataset="cifar100", stream="split", classes_per_task=10, model="resnet")
    mnist = cifar.replace(dataset="mnist", classes_per_task=2)
    layers = cost.model_layers(cifar)
    assert cost.outputs(layers) == 100 and layers[0].macs == 32 * 32 * 20 * 3 * 9
    assert cost.model_layers(mnist)[0].macs == 28 * 28 * 20 * 1 * 9
    # The evaluation holds every task's 1,000 test images (CIFAR-100: 100 a class) at the end.
    per_image = 3 * 32 * 32 + sum(layer.outputs for layer in layers)
    m = cifar.task_eval_size(10, 1000)
    assert cost.run_memory(cifar) >= 4 * 10 * m * per_image


@pytest.mark.parametrize(
    "network",
    [
        {},
        {"model": "cnn", "channels": (4, 8), "hidden": (16,)},
        {"model": "resnet", "resnet_width": 4},
        {"model": "vit", "vit_dim": 16, "vit_depth": 2},
    ],
)
def test_nd_is_counted_on_the_units_it_acts_on(network):
    """ND's counted units (and so its FLOPs, and those of L1 and the drift analysis) are the
    hidden activations the network returns, on MNIST's and on CIFAR's images."""
    from stabgap.core.models import build_model

    for dataset in ("mnist", "cifar10"):
        config = RunConfig(dataset=dataset, **network)
        shape = cost.run_shape(config)
        net = build_model(config, shape.image, shape.n_classes, [torch.Generator()])
        _, hidden = net(torch.rand(1, 2, *shape.image))
        units = sum(h[0, 0].numel() for h in hidden)
        assert cost.hidden_units(cost.model_layers(config)) == units
        assert (
            cost.total(cost.train_step_costs(config.replace(decay_lambda=1e-5), 8)).flops
            - (cost.total(cost.train_step_costs(config, 8)).flops)
            == 2 * 2 * 8 * units
        )


@pytest.mark.parametrize(
    "changes",
    [
        {"replay": "none"},
        {"replay": "full", "batch_growth": "never"},
        {"replay": "none", "drop_last": True},
        {"replay": "memory", "memory": "class-balanced", "memory_size": 50},
        {
            "replay": "memory",
            "memory": "class-balanced",
            "memory_size": 50,
            "sam_rho": 0.05,
            "lwf_lambda": 1.0,
        },  # SAM's second pass repeats LwF's  # fmt: skip
    ],
)
def test_a_runs_cost_counts_the_smaller_batch_that_ends_each_pass(changes):
    """Split MNIST's tasks hold 10,000-12,700 training images: batches of 5,000 end each
    pass with a smaller one (unless drop_last), which the count follows, against torch's FLOP
    counter on the real loop over the real files."""
    from conftest import mnist_dir

    from stabgap.core.train import run_experiment

    settings = {"batch_size": 5000, "batches_per_task": 3, **changes}
    config = RunConfig(stream="split", hidden=(4,), eval_subset=2, data_dir=str(mnist_dir()),
                       **settings)  # fmt: skip
    with FlopCounterMode(display=False) as counter:
        run_experiment(config)
    costs = cost.run_cost(config)
    # SAM's and LwF's work is extra passes (their MACs are products); SAM's second pass
    # repeats LwF's, counted in SAM's row
    extra = sum(2 * costs[name].macs for name in ("sam", "lwf") if name in costs)
    assert counter.get_total_flops() == cost.total(costs).matmul_flops + extra


def test_sams_second_pass_computes_every_loss_term_again():
    base = RunConfig(sam_rho=0.05)
    nd = base.replace(decay_lambda=1e-5)
    step = {c: cost.total(cost.train_step_costs(c, 64)).flops for c in (base, nd)}
    without_sam = cost.train_step_costs(nd.replace(sam_rho=0.0), 64)["nd"].flops
    assert step[nd] - step[base] == 2 * without_sam  # ND at w and at w + ε


def test_the_remedies_table_says_which_the_run_has_already(capsys):
    assert main(["cost", "--preset", "remedies", "--experiment", "sam-0.2"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line}
    assert rows["sam"].rstrip().endswith("in this run already")
    assert "in this run already" not in rows["nd"]


def test_every_column_of_the_cost_tables_fits_its_widest_cell(capsys, monkeypatch):
    """A plugin may name its method longer than a column was wide (a user's
    'replay-smooth' ran into its setting: 'replay-smoothrs_lambda=1.0'): each column is as
    wide as its widest cell, two spaces from the next, the numbers under their headers."""
    from stabgap.core.remedies import REMEDIES

    long = "a-remedy-whose-name-is-longer-than-any-built-in-one"
    # L2's setting and cost under a long name: its fields are L2's (declared once), and it
    # is never a run's own (its row counts L2 at its example setting)
    alias = {"name": long, "fields": {}, "active": classmethod(lambda cls, config: False)}
    monkeypatch.setitem(REMEDIES._entries, long, type("Long", (REMEDIES["l2"],), alias))
    assert main(["cost", "--preset", "methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith(long))
    assert row.startswith(f"{long}  l2_lambda=0.0001  ")
    # every table's rows of numbers end where its header does (flush right)
    notes = ("in this run already", "nothing in task 1")
    for header in ("part ", "extension "):
        for start in (i for i, line in enumerate(lines) if line.startswith(header)):
            table = lines[start : lines.index("", start)]
            numbers = [
                line
                for line in table[1:]
                if line[-1] in "0123456789%-" and not any(n in line for n in notes)
            ]
            assert len(numbers) >= 3 and {len(line) for line in numbers} == {len(table[0])}
    # a note (in place of numbers) starts where its column does, after the widest setting
    starts = {line.index(n) for line in lines for n in notes if n in line}
    er_ace = next(line for line in lines if line.startswith("er-ace "))
    assert len(starts) == 1 and starts.pop() >= er_ace.index("replay_weight=0.0") + 17 + 2


def test_ewcs_fisher_at_the_switches_counts_its_macs_by_hand():
    """Online EWC's Fisher: at each switch, a forward and a backward pass of each of
    `ewc_samples` examples, whose products are MACs (2 FLOPs each) like every other pass."""
    config = RunConfig(stream="split", hidden=(4,), ewc_lambda=1.0, ewc_samples=3)
    row = cost.run_cost(config)["ewc at switches"]
    switches = config.task_count - 1  # 4: split MNIST's 5 tasks
    # one example through 784-4-10: 784·4 + 4·10 forward; backward the weight gradients
    # again and the hidden layer's input gradient (4·10), not the image's
    forward, backward = 784 * 4 + 4 * 10, 784 * 4 + 4 * 10 + 4 * 10
    assert row.macs == switches * 3 * (forward + backward)
    # the rest is elementwise: per example the forward's scaling, biases and ReLU
    # (784 + 2·4 + 10), the backward's (2·4 + 10), the loss (7·10 + 4) and the squared
    # gradient added (2 a parameter); per switch F ← γF + F_task and the anchor (3)
    params = 784 * 4 + 4 + 4 * 10 + 10
    elementwise = 3 * ((784 + 2 * 4 + 10) + (2 * 4 + 10) + (7 * 10 + 4) + 2 * params) + 3 * params
    assert row.flops == 2 * row.macs + switches * elementwise


def test_ewcs_fisher_macs_are_the_matmuls_of_a_real_run():
    """The real loop under torch's FLOP counter: the run's matrix products are the cost
    model's, plus 2 FLOPs for each MAC of EWC's Fisher at the switches (its penalty in the
    steps is elementwise)."""
    from conftest import mnist_dir

    from stabgap.core.train import run_experiment

    config = RunConfig(stream="split", hidden=(4,), batch_size=8, batches_per_task=2,
                       eval_subset=2, replay="none", ewc_lambda=1.0, ewc_samples=3,
                       data_dir=str(mnist_dir()))  # fmt: skip
    with FlopCounterMode(display=False) as counter:
        run_experiment(config)
    costs = cost.run_cost(config)
    assert costs["ewc"].macs == 0 and costs["ewc at switches"].macs > 0
    fisher = 2 * costs["ewc at switches"].macs
    assert counter.get_total_flops() == cost.total(costs).matmul_flops + fisher


def test_a_methods_extra_pass_scales_its_datasets_pixels():
    """SAM, A-GEM, DER and EWC each add passes over inputs of the run's own dataset: their
    input scaling is one FLOP a pixel of that dataset's images, not of MNIST's."""
    from stabgap.core.methods import METHODS
    from stabgap.core.remedies import REMEDIES
    from stabgap.cost.flops import model_layers, run_shape

    mnist = RunConfig(stream="split", hidden=(16,), sam_rho=0.05)
    cifar = mnist.replace(dataset="cifar10")
    layers = model_layers(mnist, run_shape(mnist))  # the same layers: what differs is pixels
    more = 3 * 32 * 32 - 28 * 28  # pixels a CIFAR image has beyond an MNIST one
    sam = REMEDIES["sam"]
    assert sam.step_flops(cifar, layers, 8) - sam.step_flops(mnist, layers, 8) == 8 * more
    ewc = METHODS["ewc"]
    config = mnist.replace(ewc_lambda=1.0, ewc_samples=5)
    extra = ewc.switch_flops(config.replace(dataset="cifar10"), layers)
    assert extra - ewc.switch_flops(config, layers) == 5 * more


def test_the_whole_run_table_shows_what_happens_at_the_switches(capsys):
    """EWC's Fisher passes are training, but once a switch: the whole run's table shows them
    under its training row, so the steps' share reads as per-batch cost × batches; the
    remedies table names a method the run has at the run's own setting."""
    assert main(["cost", "--preset", "methods", "--experiment", "ewc-1000"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "of which ewc at switches" in line)
    assert row.split()[5:7] == ["1.211", "G"]  # 500 samples × 4 switches of passes of one
    assert re.search(r"^ewc\s+ewc_lambda=1000\.0\s+in this run already$", out, re.M)


def test_the_remedies_table_gives_what_a_method_does_at_each_switch(capsys):
    # online EWC's Fisher at each switch, which its steps in task 1 do not show: the same
    # count the run's cost has for it, per switch
    from stabgap.cost.flops import _si, run_cost
    from stabgap.studies.presets import get_preset

    assert main(["cost", "--preset", "methods", "--experiment", "er-200"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("ewc "))
    config = get_preset("methods").config("ewc-100", {})
    per_switch = run_cost(config)["ewc at switches"].flops / (config.task_count - 1)
    assert "(steps: from task 2)" in row and row.endswith(_si(per_switch))
