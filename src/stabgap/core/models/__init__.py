"""Networks, each a stack of R independent copies trained side by side.

A model takes images as (R, B, *input_shape) floats and returns the logits (R, B, classes)
and every hidden activation after its ReLU (each (R, B, ...)), which is what the remedies
see (neuronal decay, L1, ...). One run is a stack of one.

Each network is one module here registering a :class:`Model` in :data:`MODELS`: how to
build it from the fields it uses, and its architecture as layers for the cost model
(:mod:`stabgap.cost.flops`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from stabgap.core.fields import ConfigView, option
from stabgap.core.models.layers import Layer
from stabgap.core.registry import Extension, Registry

if TYPE_CHECKING:
    import torch

    from stabgap.core.config import RunConfig

# A capability: every layer is dense (a weight matrix and a bias, `model.weights` and
# `model.biases`), which layerwise proximal replay needs.
DENSE_ONLY = "a network of dense layers only"


class Model(Extension):
    """A network: how to build it, and its layers for the cost model.

    Its class methods receive a :class:`~stabgap.core.fields.ConfigView` of the fields in
    ``uses``, not the whole config.
    """

    @classmethod
    def build(
        cls,
        config: Any,
        input_shape: tuple[int, ...],
        n_classes: int,
        generators: list[torch.Generator],
        device: torch.device | str = "cpu",
    ) -> torch.nn.Module:
        """R copies of the network, copy r initialised from generators[r]."""
        raise NotImplementedError

    @classmethod
    def layers(cls, config: Any, input_shape: tuple[int, ...], n_classes: int) -> list[Layer]:
        """The network's layers, for counting its cost."""
        raise NotImplementedError

    @classmethod
    def describe(cls, config: Any, input_shape: tuple[int, ...], n_classes: int) -> str:
        """The architecture in a few words, for the cost table's header."""

        def value(v: Any) -> str:
            return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)

        fields = ", ".join(f"{name} {value(getattr(config, name))}" for name in cls.uses)
        return f"{cls.name}: {fields}, {n_classes} outputs" if fields else cls.name


SHARED_FIELDS = {
    "hidden": (
        tuple[int, ...],
        option((2048, 2048), "Widths of the dense hidden layers (ReLU after each)."),
    ),
}

MODELS: Registry[type[Model]] = Registry(
    "model", "stabgap.core.models", selector="model", shared=SHARED_FIELDS
)


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """The network in evaluation mode for the block (batch norm normalises with its running
    statistics and never updates them), back in training mode after, whatever happens: how
    everything that reads the network between updates runs it."""
    model.eval()
    try:
        yield model
    finally:
        model.train()


def model_view(config: RunConfig) -> ConfigView:
    """What the config's network may read of it: the fields it uses."""
    return MODELS.view(config)


def build_model(
    config: RunConfig,
    input_shape: tuple[int, ...],
    n_classes: int,
    generators: list[torch.Generator],
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """The network `config` asks for, one copy per generator (copy r from generators[r])."""
    model = MODELS.chosen(config)
    return model.build(model_view(config), input_shape, n_classes, generators, device)
