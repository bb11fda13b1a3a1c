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


# How alike a typo and its choice must be (difflib's ratio): its default for a plain typo
# ('mlk': mkl), more where a name begins several choices and must single one out.
LIKENESS, LIKENESS_AMONG_BEGUN = 0.6, 0.75
# Words users type for a choice that spelling alone would not find ('gpu' is a letter from
# 'cpu', the opposite of what is meant).
SAID_FOR = {"gpu": "cuda"}


def close_match(name: object, choices: Iterable[str]) -> str | None:
    """The choice a mistyped `name` most likely meant, or None.

    Case is ignored (choices are lower-case, users type ``ViT``). A name cut short names
    the one choice it begins (``repro``: reproduce); where it begins several, the most alike
    of those; else the most alike of all. None where that is not alike enough, or where two
    are equally alike (no one choice was meant; the error's list has them all).

    Example:
        >>> close_match("ViT", ["mlp", "cnn", "resnet", "vit"])
        'vit'
        >>> close_match("quick-vitt", ["quick", "quick-vit", "quick-split"])
        'quick-vit'
        >>> close_match("import-ref", ["import-reference", "import-curves", "report"])
        'import-reference'
        >>> close_match("import", ["import-reference", "import-curves", "report"]) is None
        True
        >>> close_match("baselin", ["baseline", "baseline-lr-1e-4", "nd"])
        'baseline'
        >>> close_match("baseline-lr", ["baseline-lr-1e-4", "baseline-lr-1e-2"]) is None
        True
        >>> close_match("mlk", ["mkl", "onednn"])
        'mkl'
        >>> close_match("transformer", ["mlp", "cnn"]) is None
        True
        >>> close_match("GPU", ["cpu", "cuda", "all"])
        'cuda'

    A name inside several choices names none of them (``profile``: baseline-profile or
    nd-profile?), and a choice that ends the name after more letters is another thing, not
    a typo (``emnist``, ``kmnist``: not mnist), unless the letter before it doubles its first
    (``nnd``: nd, its n typed twice):

        >>> close_match("profile", ["baseline-profile", "nd-profile", "nd"]) is None
        True
        >>> close_match("emnist", ["mnist", "fashion-mnist", "cifar10"]) is None
        True
        >>> close_match("nnd", ["baseline", "nd", "nd-weak", "nd-strong"])
        'nd'
    """
    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(str(choice).casefold(), str(choice))
    folded = str(name).casefold()
    folded = SAID_FOR.get(folded, folded) if SAID_FOR.get(folded) in by_folded else folded
    if folded in by_folded:
        return by_folded[folded]
    begun = [c for c in by_folded if c.startswith(folded)]
    if len(begun) == 1:
        return by_folded[begun[0]]
    if not begun and sum(folded in c for c in by_folded) > 1:
        return None
    variants = {  # emnist ends with mnist; nnd, with nd after a doubled n, is a typo
        c for c in by_folded if folded.endswith(c) and folded != c[0] + c
    }
    pool, cutoff = (begun, LIKENESS_AMONG_BEGUN) if begun else (list(by_folded), LIKENESS)
    pool = [c for c in pool if c not in variants]
    scored = sorted(
        ((difflib.SequenceMatcher(None, folded, c).ratio(), c) for c in pool), reverse=True
    )
    if not scored or scored[0][0] < cutoff or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return by_folded[scored[0][1]]


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a refused `name` among `choices`, or ""."""
    close = close_match(name, choices)
    return f" (did you mean '{close}'?)" if close is not None else ""
