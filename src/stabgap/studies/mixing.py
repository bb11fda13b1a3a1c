"""Before a study folder gets new runs: is each reused run the run its name says, and are
the new runs computed as the finished ones were?

A run's name is a stamp of what it computes (:func:`stabgap.studies.plan.stamp`), so resuming a
study reuses the runs it finds under the names it plans. :func:`check_resumed` makes sure
each one recorded the planned config: a run whose config differs (a name shared by two
computations) is an error, never a silent reuse.

Where and how a run computes is not in its name, yet it moves the numbers: a CPU sums a
product's terms in an order that follows the thread count and the matmul library, a
seed draws its batches and test subsets from the generator of the device it runs on (a
GPU run of a seed is another draw than its CPU run), and torch.compile fuses operations
into kernels of its own. Every run records these (``device``, ``threads``, ``cpu_matmul``
in its metadata, ``compile`` in its config), and :func:`mix_warnings` says, before any
training, when the new runs would be computed otherwise than the finished runs of the
folder.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stabgap.core.config import FIELDS, RunConfig, to_dict
from stabgap.core.models import cpu_matmul
from stabgap.errors import StabgapError
from stabgap.studies.records import DamagedRun, find_run, read_info, run_dirs
from stabgap.studies.schema import STAMP_SCHEMA


def check_resumed(specs: Sequence, out: Path) -> None:
    """Refuse to reuse a finished run of `out` whose recorded config is not the planned one.

    Fields a record lacks are read at the value its stamp schema pinned (a field added
    later), so a record from before a field existed is still reused.
    """
    for spec in specs:
        path = find_run(out, spec.name)
        if path is None:
            continue
        try:
            info = read_info(path)
        except DamagedRun:
            continue  # set aside and run again (stabgap.studies.sweep.execute)
        planned, stored = to_dict(spec.config), info["config"]
        differ = [
            f"{name}={stored.get(name)!r}"
            + (" (not in its record: its schema's default)" if name in info["pinned"] else "")
            + f" (planned: {planned[name]!r})"
            for name, f in FIELDS.items()
            if f.metadata["stamped"] and stored.get(name) != planned[name]
        ]
        if info["stamp_schema"] != STAMP_SCHEMA:
            differ.insert(0, f"stamp schema {info['stamp_schema']} (planned: {STAMP_SCHEMA})")
        if differ:
            raise StabgapError(
                f"{path} holds a run of the planned name that computed something else: "
                f"{'; '.join(differ[:3])}{' ...' if len(differ) > 3 else ''}; it is not "
                f"reused: move it out of {out}, or choose another --out"
            )


@dataclass(frozen=True)
class Aspect:
    """One thing about how a run computes that moves its numbers but not its name."""

    key: str
    verb: str  # "computed with"
    unit: str  # after a value: " CPU thread" (made plural where it counts more than one)
    why: str  # why runs that differ in it differ
    keep: str  # how to keep a study to one value ({} is the value)
    one: str  # "one library"
    field: str  # where each run.json says it


ASPECTS = (
    Aspect(
        "device",
        "computed on a",
        "",
        "a seed draws its batches and test subsets from the generator of the device it runs "
        "on, so a seed's CPU and GPU runs are different draws (docs/studies.md, 'Threads, "
        "devices and what a seed reproduces')",
        "set the runs' device to {}",
        "one kind of device",
        "device in each run.json",
    ),
    Aspect(
        "threads",
        "computed with",
        " CPU thread",
        "a CPU sums a product's terms in an order that follows its thread count, and runs "
        "of the two part by rounding",
        "pass --threads {}",
        "one thread count",
        "threads in each run.json",
    ),
    Aspect(
        "compile",
        "computed with torch.compile",
        "",
        "compiled kernels sum in their own order, and runs of the two part by rounding",
        "set compile to {}",
        "one way",
        "compile in each run.json's config",
    ),
    Aspect(
        "cpu_matmul",
        "computed with",
        "",
        "the two libraries sum in other orders, and runs of the two part by rounding",
        f"set {cpu_matmul.ENV}={{}}",
        "one library",
        "cpu_matmul in each run.json",
    ),
)
DEVICE_KINDS = {"cpu": "CPU", "cuda": "GPU"}
DEVICE_OPTION = {"CPU": "cpu", "GPU": "cuda"}


def computed_by(metadata: dict, compiled: bool = False) -> dict[str, str]:
    """How a finished run computed, from its metadata (and its config's ``compile``): each
    :data:`ASPECTS` key it has.

    Example:
        >>> computed_by({"device": "cpu", "threads": 2, "cpu_matmul": "onednn"})
        {'device': 'CPU', 'threads': '2', 'compile': 'off', 'cpu_matmul': 'onednn'}
        >>> computed_by({"device": "cuda:0", "threads": 16}, compiled=True)
        {'device': 'GPU', 'compile': 'on'}
    """
    kind = DEVICE_KINDS.get(str(metadata.get("device", "")).split(":")[0])
    if kind is None:
        return {}  # not computed by stabgap here (an imported reference run)
    out = {"device": kind, "compile": "on" if compiled else "off"}
    if kind == "CPU":
        out["cpu_matmul"] = str(metadata.get("cpu_matmul", "mkl"))  # earlier runs: MKL's
        if metadata.get("threads") is not None:
            out["threads"] = str(metadata["threads"])
    return {a.key: out[a.key] for a in ASPECTS if a.key in out}


def planned(config: RunConfig, device: str, threads: int) -> dict[str, str]:
    """How a new run of `config` will compute: on `device` ('cpu' or 'cuda'), with
    `threads`."""
    meta = {"device": device, "threads": threads}
    if device == "cpu":
        meta["cpu_matmul"] = cpu_matmul.library()
    return computed_by(meta, config.compile)


def mix_warnings(
    todo: Sequence, out: Path, threads: int, device_of: Callable[[RunConfig], str]
) -> list[str]:
    """One sentence for each way the new runs `todo` would be computed otherwise than the
    finished runs in `out` (any of its studies); none when they agree.

    Args:
        threads: the CPU threads each new run gets.
        device_of: the device type ('cpu' or 'cuda') a config's run will compute on.
    """
    new = [planned(s.config, device_of(s.config), threads) for s in todo]
    if not new:
        return []
    done = []
    for path in run_dirs(out):
        try:
            info = read_info(path)
            done.append(computed_by(info["metadata"], bool(info["config"].get("compile"))))
        except StabgapError:
            continue  # not this command's to judge: the study reads it as it is
    warnings = []
    for aspect in ASPECTS:
        coming = Counter(n[aspect.key] for n in new if aspect.key in n)
        before = Counter(d[aspect.key] for d in done if aspect.key in d)
        if not coming or set(before) <= set(coming):
            continue
        now = coming.most_common(1)[0][0]
        count = sum(coming.values())
        keep = (
            f"{aspect.keep.format(_option(aspect, next(iter(before))))} to keep this study to "
            f"{aspect.one}"
            if len(before) == 1
            else f"compare only runs of {aspect.one} ({aspect.field})"
        )
        before_text = " and ".join(
            f"{_value(aspect, v)} ({_runs(n)})" for v, n in sorted(before.items())
        )
        warnings.append(
            f"{out} holds finished runs {aspect.verb} {before_text}; the {_runs(count, 'new')} "
            f"will be {aspect.verb} {_value(aspect, now)}. {aspect.why[0].upper()}"
            f"{aspect.why[1:]}: {keep}"
        )
    return warnings


def mixed_sentences(records: Sequence) -> list[str]:
    """One sentence for each way the finished runs `records` (:class:`RunRecord`) were
    computed in more than one way (a report's runs, say: 1 and 2 CPU threads); none where
    they agree. Runs stabgap did not compute (imported) are left out."""
    done = [computed_by(r.metadata, bool(r.config.get("compile"))) for r in records]
    said = []
    for aspect in ASPECTS:
        seen = Counter(d[aspect.key] for d in done if aspect.key in d)
        if len(seen) < 2:
            continue
        values = " and ".join(f"{_value(aspect, v)} ({_runs(n)})" for v, n in sorted(seen.items()))
        said.append(
            f"The runs were {aspect.verb} {values}: {aspect.why}. This report takes them as "
            f"they are ({aspect.field})."
        )
    return said


def _runs(n: int, what: str = "") -> str:
    """'1 run', '3 new runs'."""
    return f"{n} {what + ' ' if what else ''}run{'s' * (n != 1)}"


def _value(aspect: Aspect, value: str) -> str:
    """A value with its unit: "2 CPU threads", "1 CPU thread", "GPU"."""
    plural = aspect.unit and value != "1"
    return f"{value}{aspect.unit}{'s' * bool(plural)}"


def _option(aspect: Aspect, value: str) -> str:
    if aspect.key == "device":
        return DEVICE_OPTION.get(value, value)
    if aspect.key == "compile":
        return {"on": "true", "off": "false"}[value]
    return value
