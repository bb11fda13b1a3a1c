"""The stamp schema: the version of the rules that name a run, and the defaults it pinned.

A run is named by a stamp of its stamped config fields that differ from the defaults
(:func:`stabgap.studies.plan.stamp`), so the defaults are part of a run's name. Each schema version
pins them in ``pinned_defaults.json``: a record is read with every field it lacks (one
added after it was written) at the value its schema version pinned, which is what it did
then, so adding a field forces no re-run. The current version's entry must equal the
current defaults (a test checks it): changing a default, or what a field means, bumps
:data:`STAMP_SCHEMA` and pins a new entry, and the runs of every earlier schema keep their
names and are never taken for the new ones.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

# Bumped whenever a change would give an existing stamp to a different computation (a
# default that changes, a field whose meaning changes). 3: layerwise proximal replay draws
# its samples from the examples the run has seen (it drew from the whole training sets of
# the tasks seen, unseen examples included). 4: the stream's own generator is seeded with
# derive_seed(stream_seed, "stream") (it was stream_seed itself, the very seed of the
# initialisation of a run of seed 0), so permuted and homogeneous streams hold other tasks;
# the dataset is a field apart from the stream's kind.
STAMP_SCHEMA = 4
# The schema of records that do not say theirs (written before records said it).
UNRECORDED_SCHEMA = 2


@functools.cache
def _pinned() -> dict[int, dict[str, Any]]:
    text = resources.files("stabgap.studies").joinpath("pinned_defaults.json").read_text()
    return {int(k): v for k, v in json.loads(text).items() if not k.startswith("_")}


def pinned_defaults(schema: int = STAMP_SCHEMA) -> dict[str, Any]:
    """The defaults that schema version `schema` pinned, as plain (JSON) values."""
    return dict(_pinned()[schema])


def pinned_value(name: str, schema: int, current: Any) -> Any:
    """What a record of schema `schema` that lacks field `name` ran with: the value its
    version pinned; for a field added in a later version, the value the first version
    that knows it pinned (a new field's default does what runs did before it existed);
    `current` (the field's default now) for a field no version pins (a plugin's)."""
    for version in sorted(v for v in _pinned() if v >= schema):
        if name in _pinned()[version]:
            return _pinned()[version][name]
    return current


def complete(config: dict[str, Any], schema: int, defaults: dict[str, Any]) -> dict[str, Any]:
    """A recorded config with every field of `defaults` it lacks at its pinned value.

    Example:
        >>> complete({"lr": 0.01}, 2, {"lr": 0.001, "activity_every": 10})
        {'lr': 0.01, 'activity_every': 1}
    """
    missing = {k: pinned_value(k, schema, v) for k, v in defaults.items() if k not in config}
    return {**config, **missing}
