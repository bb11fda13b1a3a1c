"""Networks, each a stack of R independent copies trained side by side.

A model takes images as (R, B, *input_shape) floats and returns the logits (R, B, classes)
and every hidden activation after its ReLU (each (R, B, ...)), which is what the remedies
see (neuronal decay, L1, ...). One run is a stack of one.

Each network is one module with a small spec in :data:`MODELS`: how to build it from a
config, which config fields it reads, and its architecture as layers for the cost model
(:mod:`stabgap.cost.flops`). Adding a network is adding a module and its line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stabgap.core.fields import ConfigView
from stabgap.core.models.layers import Layer

if TYPE_CHECKING:
    import torch

    from stabgap.core.config import RunConfig


@dataclass(frozen=True)
class ModelSpec:
    """A network: how to build it, which fields it reads, its layers for the cost model.

    ``build`` and ``layers`` receive a :class:`~stabgap.core.fields.ConfigView` of the fields
    in ``uses``, not the whole config.
    """

    build: Callable[..., torch.nn.Module]  # (config, input_shape, classes, generators, device)
    uses: tuple[str, ...]
    layers: Callable[[Any, tuple[int, ...], int], list[Layer]]  # (config, input_shape, classes)


from stabgap.core.models import cnn, mlp  # noqa: E402 - they use Layer, defined above

MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(mlp.build, ("hidden",), mlp.layers),
    "cnn": ModelSpec(cnn.build, ("channels", "hidden"), cnn.layers),
}


def model_view(config: RunConfig) -> ConfigView:
    """What the config's network may read of it: the fields its spec declares."""
    spec = MODELS[config.model]
    return ConfigView(f"model {config.model}", {name: getattr(config, name) for name in spec.uses})


def build_model(
    config: RunConfig,
    input_shape: tuple[int, ...],
    n_classes: int,
    generators: list[torch.Generator],
    device: torch.device | str = "cpu",
) -> torch.nn.Module:
    """The network `config` asks for, one copy per generator (copy r from generators[r])."""
    spec = MODELS[config.model]
    return spec.build(model_view(config), input_shape, n_classes, generators, device)
