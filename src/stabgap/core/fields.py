"""How a config field is declared: its default, its documentation, its checks and its role.

Fields are declared where they belong: the core ones in :mod:`stabgap.core.config`, a remedy's
own in its module under :mod:`stabgap.core.remedies`. :class:`stabgap.core.config.RunConfig` gathers
them all, and the CLI flags, TOML files, stamps and run records follow from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import field
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin

from stabgap.errors import StabgapError

SCALARS = (bool, int, float, str)


def option(
    default: Any,
    help: str,
    choices: tuple[str, ...] | None = None,
    *,
    check: Callable[[Any], bool] | None = None,
    must: str = "",
    per_copy: bool = False,
    stamped: bool = True,
    science: bool = True,
) -> Any:
    """A config field with its documentation, allowed values and role attached.

    Args:
        choices: the allowed values of a string field.
        check: a test of the value, with `must` saying what it must be
            ("a finite number >= 0"): a failed test is a one-line error.
        per_copy: the copies of one stacked computation may differ in this field (a seed,
            a strength such as λ); every other field is shared by the whole stack.
        stamped: part of a run's identity, its stamp (see :func:`stabgap.studies.plan.stamp`);
            where and how fast it ran (device, data folder) is not.
        science: part of what an experiment is, as reports compare it; the seed is a
            replicate of the same experiment, not another one.
    """
    metadata = {
        "help": help,
        "choices": choices,
        "check": check,
        "must": must,
        "per_copy": per_copy,
        "stamped": stamped,
        "science": science,
    }
    return field(default=default, metadata=metadata)


def supported_type(hint: Any) -> bool:
    """Whether a field's declared type is one a config can read from TOML and the command
    line: bool, int, float or str; a tuple of them (``tuple[float, ...]``, a list; or of a
    fixed length, ``tuple[float, float]``); or one of these ``| None``.

    Example:
        >>> supported_type(tuple[float, ...]), supported_type(tuple), supported_type(list)
        (True, False, False)
    """
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        items = args[:-1] if args[-1:] == (Ellipsis,) else args
        return bool(items) and all(item in SCALARS for item in items)
    if origin in (Union, UnionType) and NoneType in args:
        rest = [a for a in args if a is not NoneType]
        return len(rest) == 1 and supported_type(rest[0])
    return hint in SCALARS


def non_negative(x: float) -> bool:
    return math.isfinite(x) and x >= 0


def positive(x: float) -> bool:
    return math.isfinite(x) and x > 0


def unit_interval(x: float) -> bool:
    """In [0, 1): a decay or momentum coefficient."""
    return 0 <= x < 1


NON_NEGATIVE = {"check": non_negative, "must": "a finite number >= 0"}
POSITIVE = {"check": positive, "must": "a positive finite number"}
COUNT = {"check": lambda n: n >= 0, "must": "a whole number >= 0"}
AT_LEAST_ONE = {"check": lambda n: n >= 1, "must": "a whole number >= 1"}
FRACTION = {"check": unit_interval, "must": "a number in [0, 1)"}


class UndeclaredField(StabgapError, AttributeError):
    """An extension read a config field it does not declare it uses (a one-line error)."""


class ConfigView:
    """The config as one extension sees it: only the fields it declares it reads.

    A stream is built, and its tasks counted, from a view of the run's config holding the
    stream's declared fields (and its scenario), and a network from a view of the model's;
    so the declaration is all that makes one stream differ from another, and what a
    sweep's stream cache and the loop's check key on. A builder that reads a field it did
    not declare fails here, in the tests, instead of silently building another stream
    under the same key.

    Example:
        >>> view = ConfigView("stream demo", {"rotations": (0.0, 90.0)})
        >>> view.rotations
        (0.0, 90.0)
        >>> view.n_tasks  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        stabgap.core.fields.UndeclaredField: stream demo reads config field 'n_tasks', which ...
    """

    def __init__(self, owner: str, values: dict[str, Any]) -> None:
        object.__setattr__(self, "_owner", owner)
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        raise UndeclaredField(
            f"{object.__getattribute__(self, '_owner')} reads config field '{name}', which it "
            "does not declare: add it to its uses"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a config view is read-only")

    def items(self) -> Iterator[tuple[str, Any]]:
        """The declared fields and their values, sorted by name."""
        return iter(sorted(self._values.items()))
