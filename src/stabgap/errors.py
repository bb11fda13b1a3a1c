"""The one exception type for a user's mistake.

Anything raised as :class:`StabgapError` is shown by the CLI as a single line
(no traceback): its message must name the problem and how to fix it. A name refused
among known choices offers the nearest one (:func:`did_you_mean`), the same everywhere.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class StabgapError(Exception):
    """A problem with the user's input or environment, with a one-line fix."""


def close_match(name: object, choices: Iterable[str]) -> str | None:
    """The choice a mistyped `name` most likely meant, or None.

    Case is ignored when matching (choices are lower-case, users type ``ViT``), so a name
    that differs only in case always finds its choice, however short.

    Example:
        >>> close_match("ViT", ["mlp", "cnn", "resnet", "vit"])
        'vit'
        >>> close_match("quick-vitt", ["quick", "quick-vit", "quick-split"])
        'quick-vit'
        >>> close_match("transformer", ["mlp", "cnn"]) is None
        True
    """
    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(str(choice).casefold(), str(choice))
    folded = str(name).casefold()
    if folded in by_folded:
        return by_folded[folded]
    close = difflib.get_close_matches(folded, by_folded, n=1)
    return by_folded[close[0]] if close else None


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a refused `name` among `choices`, or ""."""
    close = close_match(name, choices)
    return f" (did you mean '{close}'?)" if close is not None else ""
