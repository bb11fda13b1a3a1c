"""Config values from command-line text, shared by the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stabgap.core.config import FIELDS, check_field, coerce
from stabgap.errors import StabgapError


def parse_field(name: str, text: str) -> Any:
    """A config value from command-line text: lists are comma-separated ("2048,2048")."""
    default = FIELDS[name].default
    if isinstance(default, tuple):
        text = text.strip().strip("[]")
        items = text.split(",") if text else []
        if any(not x.strip() for x in items):
            raise StabgapError(f"--{flag(name)} has an empty item in '{text}'")
        value: Any = [_number(x) for x in items]
    elif isinstance(default, bool):
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise StabgapError(f"--{flag(name)} takes true or false, got '{text}'")
        value = lowered in ("true", "1", "yes")
    elif isinstance(default, int | float):
        value = _number(text)
    elif name == "data_dir" and text:
        value = str(Path(text).expanduser().resolve())  # a path on the command line: from here
    else:
        value = text
    return coerce(name, value)


def _number(text: str) -> int | float | str:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text  # left for coerce() to reject with the field's name


def flag(name: str) -> str:
    return name.replace("_", "-")


def parse_seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise StabgapError(f"--seeds takes comma-separated integers, got '{text}'") from None


def field_assignment(item: str, option: str = "--set") -> tuple[str, Any]:
    """``FIELD=VALUE`` from the command line, checked: the field's name and its value."""
    key, sep, text = item.partition("=")
    if not sep:
        raise StabgapError(f"{option} takes FIELD=VALUE, got '{item}'")
    name = check_field(key)
    return name, parse_field(name, text)
