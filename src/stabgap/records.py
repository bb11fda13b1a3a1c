"""Run records: one directory per run, written atomically, read back as :class:`RunRecord`.

A run directory holds

- ``run.json``: the run's name, experiment, full resolved config, metadata, divergence;
- ``curves.npz``: ``acc`` (points, tasks), ``eval_steps``, ``boundaries``, ``loss``;
- ``metrics.json``: the metric rows (see :mod:`stabgap.metrics`);
- ``curves.png``: every task's accuracy curve with the task switches marked.

It is built under a hidden temporary name and renamed into place when complete, so an
interrupted run leaves no directory that looks finished, and readers skip hidden names.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stabgap.config import to_dict
from stabgap.errors import StabgapError
from stabgap.metrics import MetricRow, compute_metrics
from stabgap.train import RunResult

RUN_FILE = "run.json"


@dataclass(frozen=True)
class RunRecord:
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

    @property
    def metrics(self) -> list[MetricRow]:
        return compute_metrics(self.acc, self.boundaries)


def record_of(result: RunResult, name: str, experiment: str) -> RunRecord:
    return RunRecord(
        name=name,
        experiment=experiment,
        config=to_dict(result.config),
        acc=result.acc,
        boundaries=result.boundaries,
        eval_steps=result.eval_steps,
        loss=result.loss,
        metadata=result.metadata,
        diverged=result.diverged,
    )


def write_run(record: RunRecord, parent: Path, plot: bool = True) -> RunRecord:
    """Write `record` to ``parent/record.name`` atomically; returns it with its path."""
    parent.mkdir(parents=True, exist_ok=True)
    final = parent / record.name
    if final.exists():
        raise StabgapError(f"run directory {final} already exists: remove it or pick another --out")
    for stale in parent.glob(f".{record.name}.tmp-*"):  # left by a killed earlier attempt
        shutil.rmtree(stale, ignore_errors=True)
    tmp = parent / f".{record.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        info = {
            "name": record.name,
            "experiment": record.experiment,
            "config": record.config,
            "metadata": record.metadata,
            "diverged": record.diverged,
        }
        _write_json(tmp / RUN_FILE, info)
        arrays = {
            "acc": record.acc,
            "eval_steps": record.eval_steps,
            "boundaries": np.asarray(record.boundaries),
        }
        if record.loss is not None:
            arrays["loss"] = record.loss
        np.savez_compressed(tmp / "curves.npz", **arrays)
        _write_json(tmp / "metrics.json", metric_dicts(record.metrics))
        if plot:
            from stabgap.plots import plot_run  # matplotlib only when a plot is wanted

            plot_run(record, tmp / "curves.png")
        _fsync_dir(tmp)
        os.rename(tmp, final)  # atomic: the run appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dataclasses.replace(record, path=final)


def metric_dicts(rows: list[MetricRow]) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in rows]


def read_run(path: Path) -> RunRecord:
    """Read one run directory."""
    try:
        info = json.loads((path / RUN_FILE).read_text())
        with np.load(path / "curves.npz", allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, KeyError) as e:
        raise StabgapError(f"{path} is not a readable run directory ({e})") from None
    return RunRecord(
        name=info["name"],
        experiment=info["experiment"],
        config=info["config"],
        acc=arrays["acc"],
        boundaries=tuple(int(b) for b in arrays["boundaries"]),
        eval_steps=arrays["eval_steps"],
        loss=arrays.get("loss"),
        metadata=info["metadata"],
        diverged=info.get("diverged", False),
        path=path,
    )


def is_run_dir(path: Path) -> bool:
    return (path / RUN_FILE).is_file() and not path.name.startswith(".")


def iter_runs(root: Path) -> Iterator[RunRecord]:
    """Every complete run at or below `root`, in a stable (sorted) order."""
    if is_run_dir(root):
        yield read_run(root)
        return
    for run_file in sorted(root.rglob(RUN_FILE)):
        if not any(part.startswith(".") for part in run_file.relative_to(root).parts):
            yield read_run(run_file.parent)


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
