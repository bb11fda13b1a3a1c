"""Runs on their way to another process or machine: as plain values, rebuilt on arrival.

A config is sent as its fields' values and rebuilt by :func:`stabgap.core.config.from_dict` where
it arrives, so a field the receiving process does not know (a remedy plugin that is not
loaded there) is an error there, never a field silently dropped: a pickled config would
arrive without it and train as another run under its name.
"""

from __future__ import annotations

from typing import Any

from stabgap.core.config import from_dict, to_dict
from stabgap.core.registry import PLUGINS_ENV
from stabgap.errors import StabgapError
from stabgap.studies.plan import RunSpec


def spec_payload(spec: RunSpec) -> dict[str, Any]:
    """A run to do, as plain values (what crosses to a worker)."""
    return {
        "name": spec.name,
        "experiment": spec.experiment,
        "base": spec.base,
        "varied": spec.varied,
        "config": to_dict(spec.config),
    }


def spec_from_payload(payload: dict[str, Any], where: str) -> RunSpec:
    """The run of :func:`spec_payload`, rebuilt and checked in this process (`where`, for
    messages: "a worker process", "this Ray worker")."""
    try:
        config = from_dict(payload["config"])
    except StabgapError as e:
        raise StabgapError(
            f"run {payload['name']} reached {where} with a config it cannot rebuild ({e}); a "
            f"field of a plugin needs that plugin loaded there too ({PLUGINS_ENV})"
        ) from None
    return RunSpec(
        payload["name"], payload["experiment"], config, payload["base"], payload["varied"]
    )
