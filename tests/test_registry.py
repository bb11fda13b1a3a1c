"""One registration pattern for every kind, one seed derivation, a dataset apart from the stream."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import tiny_config
from torch import nn

from stabgap.core.config import FIELDS, RunConfig, canonical, owner_of
from stabgap.core.data import DATASETS
from stabgap.core.memories import MEMORIES
from stabgap.core.methods import METHODS
from stabgap.core.models import MODELS
from stabgap.core.optim import OPTIMIZERS
from stabgap.core.registry import registries
from stabgap.core.remedies import REMEDIES, Forward, Remedies, Remedy, in_order
from stabgap.core.streams import STREAMS, stream_identity
from stabgap.errors import StabgapError
from stabgap.seeds import derive_seed
from stabgap.studies.plan import stamp


# --- the registries ------------------------------------------------------------------------
def test_every_kind_registers_the_same_way():
    kinds = {r.kind: r for r in registries()}
    assert list(kinds) == [
        "dataset", "stream", "model", "optimizer", "memory", "remedy", "method",
    ]  # fmt: skip
    assert set(MEMORIES) == {"reservoir", "task-balanced", "class-balanced"}
    assert set(METHODS) == {"er-ace", "der", "agem", "ewc", "lwf"}
    assert set(DATASETS) == {"mnist", "fashion-mnist", "cifar10", "cifar100"}
    assert set(STREAMS) == {"rotated", "permuted", "split", "homogeneous"}
    assert set(MODELS) == {"mlp", "cnn", "resnet", "vit"} and set(OPTIMIZERS) >= {
        "sgd",
        "adam",
        "adamw",
    }
    for registry in kinds.values():
        for name, ext in registry.items():
            assert ext.name == name and ext.kind == registry.kind and ext.help, name
            if registry.selector:  # a chosen extension reads only declared fields
                declared = set(registry.declared_fields())
                assert set(ext.uses) <= declared, (name, set(ext.uses) - declared)


def test_every_field_has_one_owner_and_a_help_line():
    owners = {name: owner_of(name) for name in FIELDS}
    assert owners["rotations"] == "stream" and owners["n_tasks"] == "stream"
    assert owners["channels"] == "model" and owners["hidden"] == "model"
    assert owners["momentum"] == "optimizer" and owners["decay_lambda"] == "remedy"
    assert owners["lr"] == owners["seed"] == owners["dataset"] == "core"
    assert owners["memory_size"] == "memory" and owners["der_alpha"] == "method"
    assert all(FIELDS[n].metadata["help"] for n in FIELDS)


def test_remedies_act_in_their_declared_order_not_by_file_name():
    assert [r.name for r in in_order(REMEDIES.values())] == [
        "nd", "l1", "l2", "reset", "lpr", "sam", "switch-lr", "ema",
    ]  # fmt: skip
    assert tiny_config(ema_decay=0.9, decay_lambda=1e-4, l1_lambda=1e-5).remedies == (
        "nd",
        "l1",
        "ema",
    )


def test_a_remedy_declaring_an_early_order_acts_first(monkeypatch):
    calls = []

    def remedy(name: str, order: int) -> type[Remedy]:
        def loss_term(self, out):
            calls.append(name)

        return type(name, (Remedy,), {"name": name, "order": order, "loss_term": loss_term,
                                      "active": classmethod(lambda cls, c: True)})  # fmt: skip

    for name, order in (("zz-first", 1), ("aa-last", 999)):
        monkeypatch.setitem(REMEDIES._entries, name, remedy(name, order))
    remedies = Remedies([tiny_config(decay_lambda=1e-4)], nn.Linear(1, 1), None, "cpu")
    assert [r.name for r in remedies.all] == ["zz-first", "nd", "aa-last"]
    out = Forward(torch.zeros(1, 1, 1), [torch.ones(1, 1, 1)], nn.Linear(1, 1))
    remedies.loss_term(out)
    assert calls == ["zz-first", "aa-last"]


def test_a_missing_capability_names_who_has_it():
    message = (
        "invalid config: remedy lpr needs a network of dense layers only, which this run's "
        "dataset mnist, stream rotated, model cnn, optimizer adam do not offer (model mlp does)"
    )
    with pytest.raises(StabgapError, match=re.escape(message)):
        RunConfig(model="cnn", lpr_omega=1.0)
    RunConfig(model="mlp", lpr_omega=1.0)  # the MLP offers it


# --- the dataset apart from the stream ------------------------------------------------------
@pytest.mark.parametrize("kind", ["rotated", "permuted", "split", "homogeneous"])
def test_a_stream_named_with_its_dataset_is_the_same_run(kind):
    old, new = RunConfig(stream=f"{kind}-mnist"), RunConfig(stream=kind, dataset="mnist")
    assert old == new and stamp(old) == stamp(new)
    assert (old.stream, old.dataset) == (kind, "mnist")
    assert stream_identity(old) == stream_identity(new)


def test_a_record_of_an_earlier_schema_reads_in_todays_form():
    assert canonical({"stream": "permuted-mnist", "n_tasks": 4}) == {
        "stream": "permuted",
        "n_tasks": 4,
        "dataset": "mnist",
    }
    assert canonical({"stream": "rotated", "dataset": "mnist"}) == {
        "stream": "rotated",
        "dataset": "mnist",
    }


def test_an_old_record_is_read_with_its_dataset(tmp_path, small_stream):
    from stabgap.core.train import run_experiment
    from stabgap.studies.records import iter_runs, record_of, write_run

    config = tiny_config(batches_per_task=3)
    record = record_of(run_experiment(config, small_stream), "old", "baseline", "baseline", {})
    path = write_run(record, tmp_path).path
    info = json.loads((path / "run.json").read_text())
    info["config"]["stream"] = "rotated-mnist"  # as schema 3 wrote it
    del info["config"]["dataset"], info["stamp_schema"]
    (path / "run.json").write_text(json.dumps(info))
    (read,) = iter_runs(tmp_path)
    assert (read.config["stream"], read.config["dataset"]) == ("rotated", "mnist")


# --- one way to derive a seed ---------------------------------------------------------------
def test_the_runs_original_seeds_are_kept():
    assert [derive_seed(7, p) for p in ("init", "batches", "subsets")] == [21, 22, 23]
    import zlib

    assert derive_seed(7, "lpr") == (zlib.crc32(b"lpr") << 32) + 7  # LPR's, as before


def test_no_two_purposes_share_a_generator_even_on_a_cpu():
    """A CPU generator reads a seed's low 32 bits only: the purposes must differ there."""
    low = [derive_seed(s, p) % 2**32 for s in range(50) for p in ("init", "batches", "subsets")]
    low += [derive_seed(s, p) % 2**32 for s in range(50) for p in ("stream", "anything else")]
    assert len(set(low)) == len(low) == 250
    # the reported case: a run of seed 0 drew its initial weights from the very numbers
    # that drew stream seed 0's permutations
    assert derive_seed(0, "stream") % 2**32 != derive_seed(0, "init")
    with pytest.raises(ValueError, match="a seed is a whole number"):
        derive_seed(2**32, "init")


def test_a_streams_random_numbers_are_its_own(small_mnist):
    """Stream seed 0's permutations are no longer the numbers a seed-0 initialisation draws."""
    from stabgap.core.streams import build_stream
    from stabgap.core.streams.base import stream_generator

    config = tiny_config(stream="permuted", n_tasks=2, permute_first=True)
    stream = build_stream(config, "cpu", small_mnist)
    n = small_mnist.train_images[0].numel()
    init_order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    own = torch.randperm(n, generator=stream_generator(config))
    first = stream.train_x[: len(small_mnist.train_labels)]
    assert torch.equal(first, small_mnist.train_images.flatten(1)[:, own])
    assert not torch.equal(own, init_order)
