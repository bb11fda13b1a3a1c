"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from their official binary versions.

Each image is a record: its label byte(s) (CIFAR-100: the coarse label, then the fine one,
which is the class used here), then 3,072 bytes, the red, green and blue planes of a 32×32
image row by row. No pickle is ever read. The files are read from the folder the archive
unpacks to (``cifar-10-batches-bin/``, ``cifar-100-binary/``) or straight from the
archive itself (``cifar-10-binary.tar.gz``, ``cifar-100-binary.tar.gz``). Where: the run's
``data_dir``, else ``$STABGAP_CIFAR10`` / ``$STABGAP_CIFAR100``, else the user cache
(``~/.cache/stabgap/cifar-10``, ...), which ``stabgap data download --dataset cifar10``
fills with the archive (read in place, never unpacked).

What is checked. The archive: the MD5 its authors publish, whenever it is read. Every record
file, as it is read: its size must be its records' (a truncated or foreign file is refused,
saying so) and every label within the classes. Of the unpacked files no checksum is
published: ``stabgap data download`` compares each with the same file in the verified archive
(fetched, or already beside them) and records their SHA-256 in ``stabgap-checksums.json``
(:data:`MANIFEST`) in the unpacked folder. That file is only a record of the comparison,
which anyone could write: ``stabgap data verify`` says the files match the SHA-256 recorded
there, no more, and a file that does not is said to differ from the record (either changed).
A record that cannot be read, or is for another archive, is ignored, saying so, and download
writes a new one in its place. Without a record, verify says the files were checked for size
and labels only, and a run reading them says so once (and still runs; runs never hash the
unpacked files). Download replaces a damaged archive, as MNIST's download replaces a damaged
file, but never writes over the unpacked files, which are the user's: a damaged one is
refused, named, with what to do.
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import sys
import tarfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from stabgap.atomic import atomic_write, write_text
from stabgap.core.data import DATASETS, GIVEN, Dataset, Images, missing_folders, remove_empty
from stabgap.core.data.idx import fetch_url
from stabgap.errors import StabgapError

PIXELS = 3 * 32 * 32  # bytes of one image
MANIFEST = "stabgap-checksums.json"
"""In the unpacked folder: the SHA-256 of each of its files, written by ``stabgap data
download`` once each was found equal to the same file in the archive of the published MD5 (a
record of that, not a proof: anyone can write such a file)."""


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def _unlike(digest: str, recorded: str) -> str:
    # The record is as easily changed as the file: which of them did is not known.
    return (
        f"SHA-256 {digest}, not the {recorded} recorded in {MANIFEST}: the file or the record "
        "has changed since"
    )


class CifarBinary(Dataset):
    """A CIFAR dataset in its binary version (class attributes, besides a dataset's).

    Attributes:
        archive, archive_md5, url: the official archive, its published MD5, where it is.
        folder: the folder the archive unpacks to.
        train_files, test_files: the record files in that folder.
        label_bytes: bytes before each image (the class is the last of them).
    """

    input_shape = (3, 32, 32)
    train_size, test_size = 50_000, 10_000
    archive: ClassVar[str] = ""
    archive_md5: ClassVar[str] = ""
    url: ClassVar[str] = ""
    folder: ClassVar[str] = ""
    train_files: ClassVar[tuple[str, ...]] = ()
    test_files: ClassVar[tuple[str, ...]] = ()
    label_bytes: ClassVar[int] = 1

    # --- where ------------------------------------------------------------------------------
    @classmethod
    def holds(cls, folder: Path) -> bool:
        return cls._unpacked(folder) or (folder / cls.archive).is_file()

    @classmethod
    def _unpacked(cls, root: Path) -> bool:
        return all((root / cls.folder / f).is_file() for f in cls.payload_names())

    @classmethod
    def _sized(cls, root: Path) -> bool:
        """Whether each unpacked file has its records' size (known without reading it)."""
        size = cls.label_bytes + PIXELS
        return all(
            (root / cls.folder / f).stat().st_size == cls.count(f) * size
            for f in cls.payload_names()
        )

    @classmethod
    def _missing(cls, root: Path) -> list[str]:
        """The files an unpacked folder in `root` lacks (none where there is no such folder)."""
        folder = root / cls.folder
        if not folder.is_dir():
            return []
        return [f for f in cls.payload_names() if not (folder / f).is_file()]

    @classmethod
    def check_folder(cls, root: Path, source: str) -> None:
        """Refuse the unpacked folder itself given as the dataset's folder: read as one, it
        would be found empty, and a download would put the archive among the user's files."""
        found = [f for f in cls.payload_names() if (root / f).is_file()]
        if not found or cls.holds(root):
            return
        where = f"{cls.title} folder {root} ({source})"
        full = root.resolve()  # "." has no name, nor its parent
        if full.name != cls.folder:
            raise StabgapError(
                f"{where} holds {', '.join(found)} itself, where they are read from its "
                f"subfolder {cls.folder}/: move them into {root / cls.folder}"
            )
        knob = f"${cls.env}" if source == cls.env_source() else "--data-dir"
        raise StabgapError(
            f"{where} is the unpacked folder {cls.folder}/ itself: point {knob} at the folder "
            f"that holds it, {full.parent}"
        )

    @classmethod
    def find(cls, data_dir: str | Path | None, download: bool = False) -> Path:
        root, source = cls.where(data_dir)
        cls.refuse_a_file(root, source)
        cls.check_folder(root, source)
        if cls.holds(root):
            return root
        missing = cls._missing(root)
        if missing:  # unpacked by the user, not to the end: theirs to finish, not a download's
            raise StabgapError(
                f"{cls.title} in {root} ({source}): {cls.folder}/ lacks {', '.join(missing)}; "
                f"{cls.repair_advice(root)}"
            )
        if download and source != GIVEN:
            return root
        cls.refuse_absent(root, source)
        raise StabgapError(
            f"{cls.title} not found in {root} ({source}): put its binary archive {cls.archive} "
            f"or the folder {cls.folder}/ it unpacks to there, or fetch it with "
            f"`{cls.fetch_into(root)}`"
        )

    # --- reading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, data_dir: str | Path | None, download: bool = False) -> Images:
        root = cls.find(data_dir, download)
        if not cls.holds(root):
            cls.download(root)
        images = _load(cls, root.resolve())
        _say_unverified(cls, root)  # once read: a file the read refuses gets its error alone
        return images

    @classmethod
    def read(cls, root: Path) -> Images:
        """The images, from the unpacked folder if it is there, else from the archive."""
        if cls._unpacked(root):
            payloads = {f: (root / cls.folder / f).read_bytes() for f in cls.payload_names()}
            damaged = {n: cls._record_problem(p, n) for n, p in payloads.items()}
            damaged = {name: problem for name, problem in damaged.items() if problem}
            if damaged:
                raise cls._refused(root, damaged, damaged=True)
        else:
            payloads = cls._from_archive(root / cls.archive)
        train = [cls.records(payloads[f], f) for f in cls.train_files]
        test = [cls.records(payloads[f], f) for f in cls.test_files]
        (tx, ty), (vx, vy) = (
            tuple(map(torch.cat, zip(*part, strict=True))) for part in (train, test)
        )
        return Images(tx, ty, vx, vy, cls.n_classes)

    @classmethod
    def payload_names(cls) -> tuple[str, ...]:
        return cls.train_files + cls.test_files

    @classmethod
    def count(cls, name: str) -> int:
        """Records in the file `name`: its split's images shared equally by its files."""
        if name in cls.train_files:
            return cls.train_size // len(cls.train_files)
        return cls.test_size // len(cls.test_files)

    @classmethod
    def _record_problem(cls, payload: bytes, name: str) -> str | None:
        """What is wrong with the record file `name` (its size, its labels), or None."""
        count, size = cls.count(name), cls.label_bytes + PIXELS
        if len(payload) != count * size:
            return (
                f"{len(payload)} bytes, expected {count} records of {size} ({count * size} bytes)"
            )
        labels = np.frombuffer(payload, dtype=np.uint8)[cls.label_bytes - 1 :: size]
        if int(labels.max()) >= cls.n_classes:
            return f"a label of {int(labels.max())}, but it has {cls.n_classes} classes"
        return None

    @classmethod
    def records(cls, payload: bytes, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (count, 3, 32, 32) uint8 and labels (count,) of one record file, once
        :meth:`_record_problem` found nothing wrong with it."""
        count, size = cls.count(name), cls.label_bytes + PIXELS
        rows = np.frombuffer(payload, dtype=np.uint8).reshape(count, size)
        labels = torch.from_numpy(rows[:, cls.label_bytes - 1].astype(np.int64))
        images = torch.from_numpy(rows[:, cls.label_bytes :].copy()).view(count, 3, 32, 32)
        return images, labels

    @classmethod
    def _from_archive(cls, path: Path) -> dict[str, bytes]:
        """The record files, read from the archive's members of those names (nothing is
        extracted to disk), after its MD5 is checked, and each file's records."""
        problem = cls._archive_problem(path)
        if problem:
            raise cls._damaged_archive(path, problem)
        payloads = cls._members(path)
        for name, payload in payloads.items():
            problem = cls._record_problem(payload, name)
            if problem:
                raise cls._damaged_archive(path, f"its {name}: {problem}")
        return payloads

    @classmethod
    def _members(cls, path: Path) -> dict[str, bytes]:
        """The record files in the archive `path`, by name, as they are there."""
        wanted = {f"{cls.folder}/{f}": f for f in cls.payload_names()}
        out = {}
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    out[wanted[member.name]] = tar.extractfile(member).read()
        missing = sorted(set(wanted.values()) - set(out))
        if missing:
            raise StabgapError(f"{cls.title} archive {path} lacks {', '.join(missing)}")
        return out

    @classmethod
    def _archive_problem(cls, path: Path) -> str | None:
        digest = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
        got = digest.hexdigest()
        return None if got == cls.archive_md5 else f"MD5 {got}, expected {cls.archive_md5}"

    # --- what went wrong, and what to do ------------------------------------------------------
    @classmethod
    def _damaged_archive(cls, path: Path, problem: str) -> StabgapError:
        return StabgapError(
            f"damaged {cls.title} archive {path}: {problem}; run `{cls.fetch_into(path.parent)}`"
            ", which replaces it with a verified copy"
        )

    @classmethod
    def _refused(cls, root: Path, problems: dict[str, str], damaged: bool) -> StabgapError:
        """One line naming each refused unpacked file with its problem, and the way out: to
        replace them where one is `damaged` (its size or labels), else first to compare
        them afresh (they differ only from their record)."""
        where = root / cls.folder
        if len(problems) == 1:
            [(name, problem)] = problems.items()
            head = f"{'damaged ' if damaged else ''}{cls.title} file {where / name}: {problem}"
        else:
            listed = "; ".join(f"{name}: {problem}" for name, problem in problems.items())
            head = f"{len(problems)} {cls.title} files in {where} refused: {listed}"
        advice = cls._replace_advice(root)
        if not damaged:
            advice = f"{cls._recheck_advice(root)}; else {advice}"
        return StabgapError(f"{head}; {advice}")

    @classmethod
    def repair_advice(cls, root: Path) -> str:
        if missing := cls._missing(root):
            put = f"put the files it lacks ({', '.join(missing)})"
            if len(missing) == len(cls.payload_names()):
                put = "put its files"
            return (
                f"{put} in {root / cls.folder}, or run "
                f"`{cls.fetch_into(root)}` to fetch the archive, which a run reads instead while "
                "that folder lacks files"
            )
        if not cls._unpacked(root):
            return super().repair_advice(root)  # the archive, which download replaces
        if cls._manifest(root)[0] is None or not cls._sized(root):
            return cls._replace_advice(root)
        # Files of the right size may differ from a record only because it changed: offer a
        # fresh comparison first.
        return f"{cls._recheck_advice(root)}; else {cls._replace_advice(root)}"

    @classmethod
    def _replace_advice(cls, root: Path) -> str:
        # The unpacked files are the user's: download reports them, never overwrites them.
        return (
            f"put intact copies in place of the damaged files in {root / cls.folder}, or "
            f"delete that folder and run `{cls.fetch_into(root)}` (runs then read the verified "
            "archive)"
        )

    @classmethod
    def _recheck_advice(cls, root: Path) -> str:
        return (
            f"if the files are intact, delete {root / cls.folder / MANIFEST} and run "
            f"`{cls.fetch_into(root)}`, which compares them with the archive again"
        )

    @classmethod
    def unverified(cls, root: Path) -> str | None:
        if not cls._unpacked(root):
            return None
        sums, ignored = cls._manifest(root)
        if sums is not None:
            return None
        fetch = cls.fetch_into(root)
        unchecked = (
            f"{cls.title} in {root}: the files of {cls.folder}/ were checked for size and labels "
            "only, not checksummed (no checksum of them is published)"
        )
        if ignored is None:
            return (
                f"{unchecked}; `{fetch}` compares them with the official archive (fetched unless "
                f"it is there) and records their SHA-256 in {cls.folder}/{MANIFEST}"
            )
        return (
            f"{unchecked}; the existing {cls.folder}/{MANIFEST} {ignored}, so it was ignored; "
            f"`{fetch}` compares them with the official archive (fetched unless it is there) "
            "and writes a new one in its place"
        )

    # --- checksums of the unpacked files -------------------------------------------------------
    @classmethod
    def _manifest(cls, root: Path) -> tuple[dict[str, str] | None, str | None]:
        """Each unpacked file's SHA-256 as recorded in :data:`MANIFEST`, or None; and, where
        that file is there but unusable (so ignored: no record), what is wrong with it."""
        path = root / cls.folder / MANIFEST
        if not path.exists():
            return None, None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            sums, md5 = record["sha256"], record["archive_md5"]
        except (OSError, ValueError, TypeError, KeyError):
            return None, "could not be read"
        if md5 != cls.archive_md5:
            return None, "is for another archive"
        if not isinstance(sums, dict) or not all(
            isinstance(sums.get(f), str) for f in cls.payload_names()
        ):
            return None, "could not be read"
        return {f: sums[f] for f in cls.payload_names()}, None

    @classmethod
    def _write_manifest(cls, root: Path, sums: dict[str, str]) -> Path:
        path = root / cls.folder / MANIFEST
        record = {
            "written_by": "stabgap data download",
            "about": f"the SHA-256 of each file here, found equal to the same file in "
            f"{cls.archive}, whose MD5 was the published one",
            "archive": cls.archive,
            "archive_md5": cls.archive_md5,
            "sha256": sums,
        }
        write_text(path, json.dumps(record, indent=1) + "\n")
        return path

    @classmethod
    def _unpacked_problem(cls, root: Path, name: str) -> tuple[str | None, str]:
        """What is wrong with the unpacked file `name` (its size, its labels), or None; and
        its SHA-256."""
        payload = (root / cls.folder / name).read_bytes()
        return cls._record_problem(payload, name), _sha256(payload)

    @classmethod
    def verify(cls, data_dir: str | Path | None) -> list[tuple[str, bool, str]]:
        root, source = cls.where(data_dir)
        cls.check_folder(root, source)
        path = root / cls.archive
        # A partly unpacked folder is what a run would read, unless the archive is there.
        if cls._unpacked(root) or (cls._missing(root) and not path.is_file()):
            sums, _ = cls._manifest(root)
            return [cls._verify_unpacked(root, name, sums) for name in cls.payload_names()]
        if not path.is_file():
            return [(cls.archive, False, f"missing: neither {cls.archive} nor {cls.folder}/")]
        problem = cls._archive_problem(path)
        return [(cls.archive, problem is None, f"{path}: {problem or 'ok, MD5 as published'}")]

    @classmethod
    def _verify_unpacked(
        cls, root: Path, name: str, sums: dict[str, str] | None
    ) -> tuple[str, bool, str]:
        """The unpacked file `name`'s (name, intact, what is wrong or how it was checked),
        against its SHA-256 in `sums` where given."""
        path = root / cls.folder / name
        if not path.is_file():
            return name, False, f"{path}: missing"
        problem, digest = cls._unpacked_problem(root, name)
        if problem is None and sums is not None and digest != sums[name]:
            problem = _unlike(digest, sums[name])
        if problem:
            return name, False, f"{path}: {problem}"
        if sums is None:
            return name, True, f"{path}: size and labels ok, not checksummed"
        return name, True, f"{path}: ok, SHA-256 as recorded in {MANIFEST}"

    # --- downloading ----------------------------------------------------------------------------
    @classmethod
    def download(cls, root: Path, timeout: float = 60) -> list[Path]:
        """Leave every file a run reads from `root` verified; the files written.

        Without the unpacked folder: the archive, fetched unless an intact one is there (a
        damaged one is replaced). With it: each of its files checked for size and labels,
        and against the SHA-256 recorded in :data:`MANIFEST` if there is a usable one, which
        ends it; else against the same file in the archive (fetched if need be), and their
        SHA-256 recorded (over an unusable record, saying so). A damaged or differing unpacked
        file is refused, never replaced."""
        root = Path(root).expanduser()
        cls.check_folder(root, GIVEN)
        if not cls._unpacked(root):
            return cls._fetch_archive(root, timeout)
        recorded, ignored = cls._manifest(root)
        sums, damaged, unlike = {}, {}, {}
        for name in cls.payload_names():
            problem, sums[name] = cls._unpacked_problem(root, name)
            if problem:
                damaged[name] = problem
            elif recorded is not None and sums[name] != recorded[name]:
                unlike[name] = _unlike(sums[name], recorded[name])
        if damaged or unlike:  # every one named, so that one repair mends them all
            raise cls._refused(root, {**damaged, **unlike}, damaged=bool(damaged))
        if recorded is not None:
            return []
        written = cls._fetch_archive(root, timeout)
        archived = {name: _sha256(p) for name, p in cls._members(root / cls.archive).items()}
        differ = [name for name in cls.payload_names() if sums[name] != archived[name]]
        if differ:
            raise StabgapError(
                f"{cls.title} in {root}: {', '.join(differ)} in {cls.folder}/ differ from the "
                f"same files in the verified archive {cls.archive}; {cls._replace_advice(root)}"
            )
        if ignored is not None:  # stabgap's own file, unusable: replacing it loses nothing
            print(
                f"stabgap: note: {cls.folder}/{MANIFEST} {ignored}, so it was replaced",
                file=sys.stderr,
            )
        return [*written, cls._write_manifest(root, sums)]

    @classmethod
    def downloaded(cls, root: Path, written: list[Path]) -> str:
        if written or not cls._unpacked(root):
            return super().downloaded(root, written)
        # Checked against the record only, which anyone can write: say no more than that.
        return f"nothing to download; the files match the SHA-256 recorded in {MANIFEST}"

    @classmethod
    def _fetch_archive(cls, root: Path, timeout: float) -> list[Path]:
        """Fetch the archive into `root`, kept only if its MD5 is the published one, unless
        an intact one is there; the files written."""
        target = root / cls.archive
        if target.is_file() and cls._archive_problem(target) is None:
            return []
        created = missing_folders(root)
        root.mkdir(parents=True, exist_ok=True)

        def fetch(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                fetch_url(cls.url, out, timeout)
            problem = cls._archive_problem(tmp)
            if problem:
                raise StabgapError(f"downloaded {cls.archive} is damaged ({problem}): try again")

        try:
            atomic_write(target, fetch)
        except BaseException as e:
            remove_empty(created)  # leave no empty folders behind a failed download
            if not isinstance(e, OSError):
                raise
            raise StabgapError(
                f"could not download {cls.url} into {root}: {e}; download the archive by "
                f"hand into {root} (or into DIR and pass --data-dir DIR / set {cls.env}=DIR)"
            ) from None
        return [target]


@functools.cache
def _say_unverified(dataset: type[CifarBinary], root: Path) -> None:
    """Note once per process and folder what a run has read unchecksummed; not in a sweep's
    worker processes, whose parent read it (and said so) before starting them."""
    note = dataset.unverified(root)
    if note and multiprocessing.parent_process() is None:
        print(f"stabgap: note: {note}", file=sys.stderr)


# Keyed on the dataset and its folder: a sweep reads it once per process.
@functools.lru_cache(maxsize=2)
def _load(dataset: type[CifarBinary], root: Path) -> Images:
    return dataset.read(root)


@DATASETS.register
class Cifar10(CifarBinary):
    """CIFAR-10: 60,000 32×32 colour images of ten classes."""

    name = "cifar10"
    title = "CIFAR-10"
    help = "32×32 colour images of 10 classes, 50,000 for training and 10,000 for testing"
    n_classes = 10
    archive = "cifar-10-binary.tar.gz"
    archive_md5 = "c32a1d4ab5d03f1284b67883e8d87530"
    url = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    folder = "cifar-10-batches-bin"
    train_files = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
    test_files = ("test_batch.bin",)
    label_bytes = 1
    env = "STABGAP_CIFAR10"
    cache_name = "cifar-10"


@DATASETS.register
class Cifar100(CifarBinary):
    """CIFAR-100: 60,000 32×32 colour images of 100 classes (the fine labels)."""

    name = "cifar100"
    title = "CIFAR-100"
    help = "32×32 colour images of 100 classes, 50,000 for training and 10,000 for testing"
    n_classes = 100
    archive = "cifar-100-binary.tar.gz"
    archive_md5 = "03b5dce01913d631647c71ecec9e9cb8"
    url = "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz"
    folder = "cifar-100-binary"
    train_files = ("train.bin",)
    test_files = ("test.bin",)
    label_bytes = 2  # the coarse label, then the fine one
    env = "STABGAP_CIFAR100"
    cache_name = "cifar-100"
