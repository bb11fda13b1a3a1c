"""Read the results files written by the reference implementation (zkkv/neuronal-decay).

A results file is a JSON object with one entry per experiment number. Each entry holds
``performances`` (one accuracy curve per task; task ``k``'s curve starts at the point where
task ``k`` begins, ``switch_indices[k-2]``, or 0 for task 1), ``switch_indices`` (the
cumulative point counts at the ends of the task intervals), ``parameters``,
``use_perfect_replay`` and ``seed``. :func:`load_reference_results` turns it into
:class:`ReferenceRun` objects whose ``acc`` matrix is what :mod:`stabgap.metrics` takes.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from stabgap.errors import StabgapError

__all__ = ["ReferenceRun", "load_reference_results"]

_FIX = "expected a results file written by the reference implementation"


@dataclass(frozen=True, eq=False)
class ReferenceRun:
    """One experiment of a reference results file.

    Equality is identity (``eq=False``): comparing numpy arrays field by field has no single
    truth value.

    Attributes:
        experiment_no: The experiment's number (1-based, as in the protocol's table).
        seed: The random seed of the run.
        acc: Accuracies in %, shape (points, tasks), float64, NaN before a task's interval
            (the reference evaluates only the tasks seen so far). Read-only.
        boundaries: Cumulative point counts at the ends of the intervals (``switch_indices``).
        parameters: The reference's ``parameters`` object, as read.
        replay: Whether the run used full ("perfect") replay.
    """

    experiment_no: int
    seed: int
    acc: np.ndarray
    boundaries: tuple[int, ...]
    parameters: dict[str, Any]
    replay: bool


def _is_int(value: Any) -> bool:
    # JSON true/false load as bool, which is a subclass of int: never a valid count or seed.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field(entry: dict[str, Any], name: str, where: str) -> Any:
    if name not in entry:
        raise StabgapError(f"{where} lacks the field '{name}'; {_FIX}")
    return entry[name]


def _parse_run(entry: Any, where: str) -> ReferenceRun:
    """Build one :class:`ReferenceRun`, raising :class:`StabgapError` on any malformed field."""
    if not isinstance(entry, dict):
        raise StabgapError(f"{where} is not a JSON object; {_FIX}")

    experiment_no = _field(entry, "experiment_no", where)
    if not _is_int(experiment_no):
        raise StabgapError(f"{where}: 'experiment_no' must be an integer; {_FIX}")
    seed = _field(entry, "seed", where)
    if not _is_int(seed):
        raise StabgapError(f"{where}: 'seed' must be an integer; {_FIX}")
    parameters = _field(entry, "parameters", where)
    if not isinstance(parameters, dict):
        raise StabgapError(f"{where}: 'parameters' must be a JSON object; {_FIX}")
    replay = _field(entry, "use_perfect_replay", where)
    if not isinstance(replay, bool):
        raise StabgapError(f"{where}: 'use_perfect_replay' must be true or false; {_FIX}")

    switch = _field(entry, "switch_indices", where)
    if (
        not isinstance(switch, list)
        or not switch
        or not all(_is_int(s) for s in switch)
        or switch[0] <= 0
        or any(b <= a for a, b in zip(switch[:-1], switch[1:], strict=True))
    ):
        raise StabgapError(
            f"{where}: 'switch_indices' must be a non-empty list of positive, strictly "
            f"increasing integers; {_FIX}"
        )
    boundaries = tuple(switch)

    performances = _field(entry, "performances", where)
    if not isinstance(performances, list) or len(performances) != len(boundaries):
        raise StabgapError(
            f"{where}: 'performances' must be a list with one curve per task "
            f"({len(boundaries)} tasks from 'switch_indices'); {_FIX}"
        )

    n_points = boundaries[-1]
    acc = np.full((n_points, len(boundaries)), np.nan, dtype=np.float64)
    for k, curve in enumerate(performances, start=1):
        # Task k is evaluated only from its own interval on: from s_{k-1} to the end.
        start = 0 if k == 1 else boundaries[k - 2]
        expected = n_points - start
        if not isinstance(curve, list) or len(curve) != expected:
            got = len(curve) if isinstance(curve, list) else type(curve).__name__
            raise StabgapError(
                f"{where}: task {k}'s curve in 'performances' has {got} points, expected "
                f"{expected} (from 'switch_indices'); {_FIX}"
            )
        if not all(v is None or _is_number(v) for v in curve):
            raise StabgapError(f"{where}: task {k}'s curve holds non-numeric values; {_FIX}")
        values = np.array([math.nan if v is None else v for v in curve], dtype=np.float64)
        acc[start:, k - 1] = values

    acc.flags.writeable = False
    return ReferenceRun(
        experiment_no=experiment_no,
        seed=seed,
        acc=acc,
        boundaries=boundaries,
        parameters=parameters,
        replay=replay,
    )


def load_reference_results(path: str | os.PathLike[str]) -> dict[int, ReferenceRun]:
    """Load a reference results file.

    Args:
        path: The JSON file, e.g. ``reference-results-seed2958.json``.

    Returns:
        The runs keyed by experiment number, in increasing order.

    Raises:
        StabgapError: If the file cannot be read, is not valid JSON, or lacks a field (the
            message is one line naming the file and the problem).
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise StabgapError(
            f"cannot read reference results file {name}: {exc.strerror or exc}"
        ) from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are both ValueErrors
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise StabgapError(f"{name} is not valid JSON ({detail}); {_FIX}") from exc
    if not isinstance(data, dict) or not data:
        raise StabgapError(
            f"{name} must hold a non-empty JSON object with one entry per experiment; {_FIX}"
        )

    runs: dict[int, ReferenceRun] = {}
    for key, entry in data.items():
        run = _parse_run(entry, f"{name}: experiment '{key}'")
        if run.experiment_no in runs:
            raise StabgapError(
                f"{name}: experiment number {run.experiment_no} appears twice; {_FIX}"
            )
        runs[run.experiment_no] = run
    return dict(sorted(runs.items()))


# Experiments 11-14 of the reference set the width on a copy of the parameters after the
# network was built, so all four ran 2048 wide while their files record 1024 and 4096
# (docs/protocol.md). Imported, they keep the recorded width as such and say what ran.
REFERENCE_WIDTH_AS_RUN = 2048
_WIDTH_EXPERIMENTS = (11, 12, 13, 14)


def import_reference(results: str | os.PathLike[str]) -> tuple[list, list[tuple[str, str]]]:
    """The reference's runs as stabgap run records, to sit beside ours in tables and plots.

    Args:
        results: a ``results_<seed>.json`` file, or a folder searched for them.

    Returns:
        The records, and the files of a folder that were skipped with why (a JSON file
        that is not a results file). A single file given by name must be one.

    Each experiment number becomes the ``paper`` preset's experiment of that number, its
    config taken from the preset and checked against the file's parameters (a mismatch
    is an error: the file would then not be what its number says). The width
    experiments are recorded as what the reference really ran (see
    :data:`REFERENCE_WIDTH_AS_RUN`), under a name that says so.
    """
    from pathlib import Path

    path = Path(results)
    if not path.exists():
        raise StabgapError(f"{path} does not exist: give a results JSON file or a folder of them")
    if path.is_file():
        return _import_file(path), []
    records, skipped = [], []
    for file in sorted(p for p in path.rglob("*.json") if not p.name.startswith(".")):
        try:
            records += _import_file(file)
        except StabgapError as e:
            skipped.append((str(file), str(e).removeprefix(f"{file}: ").removeprefix(f"{file} ")))
    if not records:
        why = f" (skipped {len(skipped)}: {skipped[0][1]})" if skipped else ""
        raise StabgapError(f"no reference results files found in {path}{why}")
    return records, skipped


def _import_file(file) -> list:
    from stabgap.studies.presets import PAPER_EXPERIMENTS, get_preset
    from stabgap.studies.records import RunRecord

    names = {number: name for name, (number, _) in PAPER_EXPERIMENTS.items()}
    paper = get_preset("paper")
    records = []
    for number, run in load_reference_results(file).items():
        if number not in names:
            raise StabgapError(f"{file}: experiment {number} is not one of the paper's 16")
        config = paper.config(names[number], {"seed": run.seed})
        _check_parameters(file, number, run, config)
        name, metadata = names[number], {}
        if number in _WIDTH_EXPERIMENTS:
            recorded = config.hidden
            config = config.replace(hidden=[REFERENCE_WIDTH_AS_RUN] * len(recorded))
            name = f"{name}-ran-{REFERENCE_WIDTH_AS_RUN}"
            metadata = {
                "recorded_hidden": list(recorded),
                "note": f"the reference records width {recorded[0]} but set it after building "
                f"the network, so it ran {REFERENCE_WIDTH_AS_RUN} wide (docs/protocol.md)",
            }
        records.append(
            RunRecord(
                name=f"{name}-seed{run.seed}-reference",
                experiment=name,
                base=name,  # the width runs keep their "-ran-2048" in every label
                config={**_config_dict(config), "device": "reference"},
                acc=np.array(run.acc),
                boundaries=run.boundaries,
                eval_steps=np.arange(run.acc.shape[0]),
                loss=None,
                metadata={
                    "source": "reference implementation",
                    "file": str(file),
                    "experiment_no": number,
                    "seed": run.seed,
                    **metadata,
                },
            )
        )
    return records


def _config_dict(config) -> dict[str, Any]:
    from stabgap.core.config import to_dict

    return to_dict(config)


def _check_parameters(file, number: int, run: ReferenceRun, config) -> None:
    p = run.parameters
    expected = {
        "learning_rate": config.lr,
        "decay_lambda": config.decay_lambda,
        "n_neurons": config.hidden[0],
        "batch_size": config.batch_size,
        "n_batches_per_task": config.batches_per_task,
    }
    for key, want in expected.items():
        if key in p and not math.isclose(float(p[key]), float(want)):
            raise StabgapError(
                f"{file}: experiment {number} has {key}={p[key]}, but the "
                f"paper's experiment of that number has {want}"
            )
    if run.replay != (config.replay == "full"):
        raise StabgapError(f"{file}: experiment {number}'s replay does not match the paper's")
