"""The folders are layers, and imports run one way: down (tests fail on an upward import)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "src" / "stabgap"
# Bottom to top. A module may import its own layer and those below it, never one above.
LAYERS = [
    ("stabgap", "stabgap.errors", "stabgap.atomic", "stabgap.seeds", "stabgap.text"),
    ("stabgap.metrics", "stabgap.statistics"),
    ("stabgap.core",),
    ("stabgap.cost",),
    ("stabgap.studies",),
    ("stabgap.analysis",),
    ("stabgap.study", "stabgap.cli", "stabgap.entry", "stabgap.__main__"),
]


def layer_of(module: str) -> int:
    """The layer of a module: that of the longest prefix that names one."""
    best, rank = "", -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, rank = name, i
    if rank < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return rank


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """Every stabgap module `path` imports (top-level, in functions, for type checking)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("stabgap"):
            found.append((node.lineno, node.module))
            # `from stabgap.x import y` may import the module x.y
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("stabgap")]
    return found


def _is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (
        PACKAGE.parent / relative / "__init__.py"
    ).exists()


# What the package's front door hands out when asked (stabgap.Tracker), imported lazily.
FRONT_DOOR = {"stabgap.studies.tracker", "stabgap.studies.tracker.Tracker"}


def test_every_import_runs_down_the_layers():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = module_name(path)
        for line, target in imports(path):
            if not _is_module(target) or target == "stabgap":
                continue
            if here == "stabgap" and target in FRONT_DOOR:
                continue
            if layer_of(target) > layer_of(here):
                upward.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not upward, "imports that run upward:\n" + "\n".join(upward)


@pytest.mark.parametrize("module", ["stabgap.metrics", "stabgap.statistics.comparison"])
def test_the_metrics_and_statistics_load_no_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
