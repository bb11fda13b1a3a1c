"""Run records: one directory per run, written atomically, read back as :class:`RunRecord`.

A run directory holds

- ``run.json``: the run's name, experiment, full resolved config, metadata, divergence,
  and the stamp schema its name was made by (:mod:`stabgap.studies.schema`);
- ``curves.npz``: ``acc`` (points, tasks), ``eval_steps`` (each point's batch), ``boundaries``
  (where each task's interval ends, in points) and ``task_ends`` (the same in batches),
  ``loss``; when
  the loss has terms beyond cross-entropy, ``loss_penalty`` (their sum); with
  ``eval_repeats`` > 1, ``acc_repeats`` (repeats, points, tasks); and what the hidden
  layers did at each evaluation, ``active_fraction``, ``mean_square``, ``dead_fraction``
  (points, tasks, layers; see :mod:`stabgap.core.evaluate`);
- ``metrics.json``: the metric rows (see :mod:`stabgap.metrics`);
- ``curves.png``: every task's accuracy curve with the task switches marked (drawn by the
  caller's `draw`, so that records need no plotting).

It is built under a hidden temporary name and renamed into place when complete, so an
interrupted run leaves no directory that looks finished, and readers skip hidden names.
A record is read with every config field it lacks (one added after it was written) at
the value its stamp schema pinned: what the run did before the field existed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stabgap.core.analyses import RECORDED
from stabgap.core.config import canonical, defaults, to_dict
from stabgap.core.curves import STATISTICS
from stabgap.core.train import RunResult
from stabgap.errors import StabgapError
from stabgap.metrics import Measured, MetricRow, compute_metrics
from stabgap.studies.outputs import DAMAGED, RUN_FILE, is_report_dir, is_run_dir
from stabgap.studies.schema import STAMP_SCHEMA, UNRECORDED_SCHEMA, complete


@dataclass(frozen=True)
class RunRecord(Measured):
    """A finished run as stored on disk (or imported from the reference)."""

    name: str
    experiment: str
    config: dict[str, Any]
    acc: np.ndarray  # (points, tasks) %
    boundaries: tuple[int, ...]
    eval_steps: np.ndarray
    loss: np.ndarray | None
    metadata: dict[str, Any]
    diverged: bool = False
    path: Path | None = None
    penalty: np.ndarray | None = None  # (batches,) the loss's terms beyond cross-entropy
    acc_repeats: np.ndarray | None = None  # (repeats, points, tasks), with eval_repeats > 1
    activity: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    analyses: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # why the gap
    base: str = ""  # the preset experiment it started from ("" where unknown)
    varied: dict[str, Any] = dataclasses.field(default_factory=dict)  # what its label adds
    stamp_schema: int = STAMP_SCHEMA  # the version of the rules its name was stamped by
    task_ends: tuple[int, ...] | None = None  # where each task ends, in batches (None: derived)

    @property
    def ends(self) -> tuple[int, ...]:
        """Where each task's interval ends, in batches (the unit of ``eval_steps``).

        Records from before they said it: evaluated at every batch (every reference run,
        and stabgap's with eval_every 1) their point counts are batches; otherwise their
        tasks are ``batches_per_task`` long.
        """
        if self.task_ends is not None:
            return self.task_ends
        if np.array_equal(self.eval_steps, np.arange(len(self.eval_steps))):
            return self.boundaries
        per_task = int(self.config["batches_per_task"])
        return tuple(per_task * k for k in range(1, len(self.boundaries) + 1))

    @property
    def metrics(self) -> list[MetricRow]:
        return compute_metrics(self.acc, self.ends, steps=self.eval_steps)


def record_of(
    result: RunResult, name: str, experiment: str, base: str = "", varied: dict | None = None
) -> RunRecord:
    return RunRecord(
        name=name,
        experiment=experiment,
        base=base or experiment,
        varied=dict(varied or {}),
        config=to_dict(result.config),
        acc=result.acc,
        boundaries=result.boundaries,
        task_ends=result.ends,
        eval_steps=result.eval_steps,
        loss=result.loss,
        penalty=result.penalty,
        acc_repeats=result.acc_repeats,
        activity=dict(result.activity),
        analyses=dict(result.analyses),
        metadata=result.metadata,
        diverged=result.diverged,
    )


Draw = Callable[[RunRecord, Path], object]  # draws a run's picture into a file


def write_run(
    record: RunRecord, parent: str | os.PathLike[str], draw: Draw | None = None
) -> RunRecord:
    """Write `record` to ``parent/record.name`` atomically; returns it with its path.

    A run of that name already there is the same run (the name holds its stamp), written
    meanwhile by another process working in the same folder: it is kept, not replaced.

    Args:
        draw: draws the run's ``curves.png`` (the analysis layer's
            :func:`stabgap.analysis.plots.plot_run`); None for no picture.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / record.name
    if is_run_dir(final):
        return read_run(final)
    for stale in parent.glob(f".{record.name}.tmp-*"):
        if not _writer_alive(stale):  # left by a killed earlier attempt, not a live one
            shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{record.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # this process's own, from an interrupted write
    tmp.mkdir()
    try:
        info = {
            "name": record.name,
            "stamp_schema": record.stamp_schema,
            "experiment": record.experiment,
            "base_experiment": record.base or record.experiment,
            "varied": record.varied,
            "config": record.config,
            "metadata": record.metadata,
            "diverged": record.diverged,
        }
        _write_json(tmp / RUN_FILE, info)
        arrays = {
            "acc": record.acc,
            "eval_steps": record.eval_steps,
            "boundaries": np.asarray(record.boundaries),
            "task_ends": np.asarray(record.ends),
        }
        if record.loss is not None:
            arrays["loss"] = record.loss
        if record.penalty is not None:
            arrays["loss_penalty"] = record.penalty
        if record.acc_repeats is not None:
            arrays["acc_repeats"] = record.acc_repeats
        arrays.update(record.activity)
        arrays.update(record.analyses)
        np.savez_compressed(tmp / "curves.npz", **arrays)
        _write_json(tmp / "metrics.json", metric_dicts(record.metrics))
        if draw is not None:
            draw(record, tmp / "curves.png")
        _fsync_dir(tmp)
        try:
            os.rename(tmp, final)  # atomic: the run appears complete or not at all
        except OSError:
            if not is_run_dir(final):
                raise
            shutil.rmtree(tmp)  # another process published the same run first
            return read_run(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(record, path=final)


def find_run(parent: str | os.PathLike[str], name: str) -> Path | None:
    """The finished run of `name` (``<label>-seed<seed>-<stamp>``) under `parent`, or None.

    A run written under another label with the same seed and stamp computed the same thing
    (the stamp hashes its whole config): a run named before its label said every field it
    changes (``baseline-seed1-<stamp>`` for what is now ``baseline_ema_decay=0.9-seed1-...``)
    is found, so a study of older names resumes without re-running it.
    """
    parent = Path(parent)
    path = parent / name
    if is_run_dir(path):
        return path
    suffix = name[name.rindex("-seed") :]
    found = sorted(p for p in parent.glob(f"*{suffix}") if is_run_dir(p))
    return found[0] if found else None


def _writer_alive(tmp: Path) -> bool:
    """Whether the process named in a temporary run directory (``...tmp-<pid>``) still runs."""
    try:
        pid = int(tmp.name.rsplit("-", 1)[1])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError):
        return False
    except PermissionError:
        return True  # it exists, under another user
    return pid != os.getpid()


def metric_dicts(rows: list[MetricRow]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rows]


def read_run(path: str | os.PathLike[str]) -> RunRecord:
    """Read one run directory (a :class:`~pathlib.Path` or a str)."""
    path = Path(path)
    info = read_info(path)
    try:
        with np.load(path / "curves.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["acc"], arrays["boundaries"], arrays["eval_steps"]  # noqa: B018 - every run's
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        # (numpy's own words for a damaged file may suggest allow_pickle: not a fix here)
        why = f"no {e}" if isinstance(e, KeyError) else type(e).__name__
        raise DamagedRun(path, f"its curves.npz cannot be read ({why})") from None
    _check_metrics(path)
    schema = info["stamp_schema"]
    return RunRecord(
        name=info["name"],
        experiment=info["experiment"],
        config=info["config"],
        acc=arrays["acc"],
        boundaries=tuple(int(b) for b in arrays["boundaries"]),
        task_ends=tuple(int(b) for b in arrays["task_ends"]) if "task_ends" in arrays else None,
        eval_steps=arrays["eval_steps"],
        loss=arrays.get("loss"),
        penalty=arrays.get("loss_penalty"),
        acc_repeats=arrays.get("acc_repeats"),
        activity={k: arrays[k] for k in STATISTICS if k in arrays},
        analyses={k: arrays[k] for k in RECORDED if k in arrays},
        metadata=info["metadata"],
        diverged=info.get("diverged", False),
        path=path,
        base=info.get("base_experiment", info["experiment"]),
        varied=info.get("varied", {}),
        stamp_schema=schema,
    )


def _check_metrics(path: Path) -> None:
    """Refuse a run whose metrics.json is not the list of rows it was written as. Nothing
    here reads it (the metrics are measured again from the curves), but a reader of the
    folder does, and a run is reused whole or run again, never left half-readable."""
    try:
        rows = json.loads((path / "metrics.json").read_text())
    except (OSError, ValueError) as e:
        raise DamagedRun(path, f"its metrics.json cannot be read ({type(e).__name__})") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DamagedRun(path, "its metrics.json cannot be read (not a list of metric rows)")


def read_info(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One run directory's run.json (config completed as :func:`read_run` does, metadata,
    stamp schema), without its curves."""
    path = Path(path)
    file = path / RUN_FILE
    try:  # only reading and parsing the file can make it damaged, never a bug of ours
        info = json.loads(file.read_text())
    except (OSError, ValueError) as e:  # (a UnicodeDecodeError is a ValueError)
        raise DamagedRun(path, f"its {RUN_FILE} cannot be read ({type(e).__name__})") from None
    if not isinstance(info, dict):
        raise DamagedRun(path, f"its {RUN_FILE} cannot be read (not a JSON object)")
    for key, kind in (("name", str), ("experiment", str), ("metadata", dict), ("config", dict)):
        if key not in info:
            raise DamagedRun(path, f"its {RUN_FILE} cannot be read (no '{key}')")
        if not isinstance(info[key], kind):
            raise DamagedRun(
                path, f"its {RUN_FILE} cannot be read ('{key}' is not a {kind.__name__})"
            )
    info.setdefault("stamp_schema", UNRECORDED_SCHEMA)
    if info["metadata"].get("imported"):  # the source's own settings, not a stabgap config
        info["pinned"] = []
        return info
    info["pinned"] = sorted(set(defaults()) - set(info["config"]))  # read at the pinned value
    info["config"] = canonical(complete(info["config"], info["stamp_schema"], defaults()))
    return info


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One run directory's metadata (device, timings, matmul library), without its curves."""
    return read_info(path)["metadata"]


class DamagedRun(StabgapError):
    """A run directory whose files cannot be read (a disk error, a copy cut short)."""

    def __init__(self, path: str | os.PathLike[str], why: str) -> None:
        super().__init__(
            f"run {path} is damaged: {why}; move it out of the way, or resume its study, "
            "which sets it aside and runs it again"
        )
        self.path, self.why = Path(path), why


def set_aside(path: Path, out: Path) -> Path:
    """Move a damaged run of `out` into ``out/.damaged/`` (a free name), to be run again."""
    target = out / DAMAGED / path.name
    n = 1
    while target.exists():
        n += 1
        target = out / DAMAGED / f"{path.name}.{n}"
    target.parent.mkdir(exist_ok=True)
    os.rename(path, target)
    return target


def iter_runs(
    root: str | os.PathLike[str], damaged: list[DamagedRun] | None = None
) -> Iterator[RunRecord]:
    """Every complete run at or below `root`, in a stable (sorted) order.

    Hidden folders (unfinished writes, runs set aside) and stabgap's report folders are not
    searched. A damaged run raises :class:`DamagedRun`, or, given a `damaged` list, is
    added to it and left out.
    """
    for path in run_dirs(root):
        try:
            yield read_run(path)
        except DamagedRun as e:
            if damaged is None:
                raise
            damaged.append(e)


def run_dirs(root: str | os.PathLike[str]) -> Iterator[Path]:
    """The folders of :func:`iter_runs`, without reading them."""
    root = Path(root)
    if is_run_dir(root):
        yield root
        return
    for run_file in sorted(root.rglob(RUN_FILE)):
        parts = run_file.relative_to(root).parts
        if any(part.startswith(".") for part in parts):
            continue
        if any(is_report_dir(root.joinpath(*parts[:i])) for i in range(1, len(parts))):
            continue
        yield run_file.parent


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, allow_nan=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _fsync_dir(path: Path) -> None:
    """Flush the files' contents before the rename publishes them."""
    for f in path.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
