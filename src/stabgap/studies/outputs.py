"""Output folders: checked before any work, and never holding anything stabgap did not write.

Every command that writes checks its output path first (:func:`check_writable`): not a
file, and a folder in which something can be created, so that no run trains for minutes
and then fails to save. A study folder (runs) may be resumed or extended, but only if
everything in it is stabgap's own (:func:`check_study_folder`); a report folder is
replaced only when it is a report that stabgap wrote (:func:`check_report_folder`),
recognised by its marker file, which lists every file of the report.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from stabgap.cost.profile import PROFILE_FILE, is_stabgap_profile
from stabgap.errors import StabgapError

RUN_FILE = "run.json"
REPORT_MARKER = ".stabgap-report.json"
# What stabgap itself puts into a study folder besides run directories.
DAMAGED = ".damaged"  # where a study folder's damaged runs are set aside, never deleted
STUDY_FILE = "study.json"  # what was asked of a study folder (see stabgap.study)
STUDY_FILES = ("table.csv", "table.parquet", STUDY_FILE)
STUDY_FOLDERS = ("report", "profile", "logs", "tensorboard")


def check_writable(path: Path, what: str = "output folder") -> None:
    """Refuse, before any work, an output folder that could not be written.

    `path` may not exist yet (it is created later, with its parents); then its nearest
    existing ancestor must be a folder in which something can be created. Nothing is left
    behind by the check.
    """
    if path.exists() and not path.is_dir():
        raise StabgapError(f"{what} {path} is a file, not a folder: choose another --out")
    ancestor = path
    while not ancestor.exists():
        if ancestor.parent == ancestor:
            break
        ancestor = ancestor.parent
    if ancestor.exists() and not ancestor.is_dir():
        raise StabgapError(
            f"{what} {path} cannot be created: {ancestor} is a file, not a folder; "
            "choose another --out"
        )
    try:  # the only sure test (root ignores permission bits; a read-only mount does not)
        before = ancestor.stat()
        probe = tempfile.mkdtemp(prefix=".stabgap-probe-", dir=ancestor)
        os.rmdir(probe)
    except OSError as e:
        reason = "it is on a read-only file system" if e.errno == errno.EROFS else e.strerror
        raise StabgapError(
            f"{what} {path} cannot be written ({reason}): choose a folder you can write to"
        ) from None
    # the probe came and went: the folder's times say so unless put back (a refused command
    # leaves the user's folder as it found it)
    with contextlib.suppress(OSError):
        os.utime(ancestor, ns=(before.st_atime_ns, before.st_mtime_ns))


def is_run_dir(path: Path) -> bool:
    return (path / RUN_FILE).is_file() and not path.name.startswith(".")


def is_report_dir(path: Path) -> bool:
    return (path / REPORT_MARKER).is_file()


def _is_temporary(entry: Path) -> bool:
    """A temporary run directory or file of an unfinished write of stabgap's (a run's,
    or :func:`stabgap.atomic.atomic_write`'s)."""
    name = entry.name
    return name.startswith(".") and (".tmp-" in name or name.endswith(".tmp"))


def is_profile_dir(path: Path) -> bool:
    """A folder holding nothing but one profile that stabgap wrote (``profile-<device>``)."""
    entries = [e for e in path.iterdir() if not _is_temporary(e)]
    return [e.name for e in entries] == [PROFILE_FILE] and is_stabgap_profile(entries[0])


def _is_ours(entry: Path) -> bool:
    """Whether stabgap writes entries like this into a study folder."""
    name = entry.name
    if _is_temporary(entry):
        return True
    if entry.is_dir():
        if name == "profile":  # reproduce's: one profile folder per device
            return all(
                _is_temporary(e) or (e.is_dir() and is_profile_dir(e)) for e in entry.iterdir()
            )
        if name == DAMAGED:  # runs a resume set aside
            return True
        if name == "logs":  # the runs' live logs
            return all(f.is_file() and f.suffix == ".jsonl" for f in entry.iterdir())
        if name == "tensorboard":  # a folder of event files per run
            files = [f for f in entry.rglob("*") if f.is_file()]
            return all(f.name.startswith("events.out.tfevents.") for f in files)
        return (
            is_run_dir(entry)
            or is_report_dir(entry)
            or (name.startswith("profile-") and is_profile_dir(entry))
            or (name in STUDY_FOLDERS and not any(entry.iterdir()))
        )
    return name in STUDY_FILES


def check_study_folder(path: Path) -> None:
    """A folder runs may be added to: new, empty, or holding only stabgap's own outputs.

    A study folder that holds runs is resumed (only missing runs are run); a folder
    with anything else in it is someone else's, and refused.
    """
    check_writable(path)
    if not path.is_dir():
        return
    if is_run_dir(path):
        raise StabgapError(
            f"output folder {path} is one run's directory: give the folder that holds the runs "
            f"({path.parent}) or a new one"
        )
    if is_report_dir(path):
        raise StabgapError(f"output folder {path} is a stabgap report: give a folder of runs")
    foreign = [e.name for e in sorted(path.iterdir()) if not _is_ours(e)]
    if foreign:
        raise StabgapError(
            f"output folder {path} holds '{foreign[0]}', which stabgap did not write: stabgap adds "
            "only to new or empty folders and to its own; move that out or choose another --out"
        )


def check_report_folder(path: Path, runs_dir: Path) -> None:
    """A report may go to a new or empty folder, or replace a report stabgap wrote there."""
    check_writable(path, "report folder")
    if path.resolve() == runs_dir.resolve() or runs_dir.resolve().is_relative_to(path.resolve()):
        raise StabgapError(
            f"report folder {path} would hold the runs it reports on: choose a folder of its "
            f"own (default: {runs_dir / 'report'})"
        )
    if not path.is_dir() or not any(path.iterdir()):
        return
    if not is_report_dir(path):
        raise StabgapError(
            f"report folder {path} is not empty and holds no stabgap report: choose a new or "
            "empty folder (a report only ever replaces an earlier report)"
        )
    written = _manifest(path)
    foreign = sorted(set(_relative_files(path)) - set(written) - {REPORT_MARKER})
    if foreign:
        raise StabgapError(
            f"report folder {path} holds a file the earlier report did not write "
            f"('{foreign[0]}'): move it away, or choose another --out"
        )
    edited = sorted(f for f, digest in written.items() if _digest(path / f) != digest)
    if edited:
        raise StabgapError(
            f"report folder {path} holds '{edited[0]}' changed since stabgap wrote it: keep "
            "your edits elsewhere, or choose another --out"
        )


def _relative_files(root: Path) -> list[str]:
    return [str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()]


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _manifest(path: Path) -> dict[str, str]:
    """The files an earlier report wrote, with the SHA-256 of each as it wrote it."""
    try:
        files = json.loads((path / REPORT_MARKER).read_text())["files"]
        return {str(f): str(d) for f, d in files.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def publish_report(built: Path, out: Path) -> None:
    """Put the finished report folder `built` in place of `out`, atomically enough.

    `out` is new, empty, or an earlier report (checked by :func:`check_report_folder`);
    the marker listing every file is written last, so a folder that has it is complete.
    """
    marker = {"files": {f: _digest(built / f) for f in sorted(_relative_files(built))}}
    (built / REPORT_MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        built.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    out.rename(old / out.name)
    built.rename(out)
    shutil.rmtree(old)  # the earlier report, every file of which it wrote itself


def new_temp_dir(next_to: Path) -> Path:
    """A fresh hidden folder beside `next_to`, to build an output in before it is published."""
    next_to.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{next_to.name}.tmp-", dir=next_to.parent))
    umask = os.umask(0)  # mkdtemp's folder is private (0700); the output is as any folder
    os.umask(umask)
    path.chmod(0o777 & ~umask)
    return path
