"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009) from their official binary versions.

Each image is a record: its label byte(s) (CIFAR-100: the coarse label, then the fine one,
which is the class used here), then 3,072 bytes, the red, green and blue planes of a 32×32
image row by row. No pickle is ever read. The files are read from the folder the archive
unpacks to (``cifar-10-batches-bin/``, ``cifar-100-binary/``) or straight from the
archive itself (``cifar-10-binary.tar.gz``, ``cifar-100-binary.tar.gz``, checked by the MD5
its authors publish). Where: the run's ``data_dir``, else ``$STABGAP_CIFAR10`` /
``$STABGAP_CIFAR100``, else the user cache (``~/.cache/stabgap/cifar-10``, ...), which
``stabgap data download --dataset cifar10`` fills with the archive.

A file is checked as it is read: its size must be its records' (a truncated or foreign
file is refused, saying so) and every label within the classes.
"""

from __future__ import annotations

import functools
import hashlib
import tarfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from stabgap.atomic import atomic_write
from stabgap.core.data import DATASETS, GIVEN, Dataset, Images, missing_folders, remove_empty
from stabgap.core.data.idx import fetch_url
from stabgap.errors import StabgapError

PIXELS = 3 * 32 * 32  # bytes of one image


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
        return all((root / cls.folder / f).is_file() for f in cls.train_files + cls.test_files)

    @classmethod
    def find(cls, data_dir: str | Path | None, download: bool = False) -> Path:
        root, source = cls.where(data_dir)
        if cls.holds(root):
            return root
        if download and source != GIVEN:
            return root
        fetch = f"stabgap data download --dataset {cls.name}" + (
            f" --data-dir {root}" if source == GIVEN else ""
        )
        raise StabgapError(
            f"{cls.title} not found in {root} ({source}): put its binary archive {cls.archive} "
            f"or the folder {cls.folder}/ it unpacks to there, or fetch it with `{fetch}`"
        )

    # --- reading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, data_dir: str | Path | None, download: bool = False) -> Images:
        root = cls.find(data_dir, download)
        if not cls._unpacked(root) and not (root / cls.archive).is_file():
            cls.download(root)
        return _load(cls, root.resolve())

    @classmethod
    def read(cls, root: Path) -> Images:
        """The images, from the unpacked folder if it is there, else from the archive."""
        if cls._unpacked(root):
            payloads = {f: (root / cls.folder / f).read_bytes() for f in cls.payload_names()}
        else:
            payloads = cls._from_archive(root / cls.archive)
        train = [cls.records(payloads[f], f, cls.count(f)) for f in cls.train_files]
        test = [cls.records(payloads[f], f, cls.count(f)) for f in cls.test_files]
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
    def records(cls, payload: bytes, name: str, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (count, 3, 32, 32) uint8 and labels (count,) of one record file, checked."""
        size = cls.label_bytes + PIXELS
        if len(payload) != count * size:
            raise StabgapError(
                f"damaged {cls.title} file {name}: {len(payload)} bytes, expected {count} "
                f"records of {size} ({count * size} bytes); fetch it again with `stabgap data "
                f"download --dataset {cls.name}`"
            )
        rows = np.frombuffer(payload, dtype=np.uint8).reshape(count, size)
        labels = torch.from_numpy(rows[:, cls.label_bytes - 1].astype(np.int64))
        if int(labels.max()) >= cls.n_classes:
            raise StabgapError(
                f"damaged {cls.title} file {name}: a label of {int(labels.max())}, but it has "
                f"{cls.n_classes} classes; fetch it again with `stabgap data download "
                f"--dataset {cls.name}`"
            )
        images = torch.from_numpy(rows[:, cls.label_bytes :].copy()).view(count, 3, 32, 32)
        return images, labels

    @classmethod
    def _from_archive(cls, path: Path) -> dict[str, bytes]:
        """The record files, read from the archive's members of those names (nothing is
        extracted to disk), after its MD5 is checked."""
        problem = cls._archive_problem(path)
        if problem:
            raise StabgapError(
                f"damaged {cls.title} archive {path}: {problem}; delete it and fetch it again "
                f"with `stabgap data download --dataset {cls.name}`"
            )
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

    @classmethod
    def verify(cls, data_dir: str | Path | None) -> list[tuple[str, bool, str]]:
        root = cls.resolve(data_dir)
        if cls._unpacked(root):
            results = []
            for f in cls.payload_names():
                path = root / cls.folder / f
                try:
                    cls.records(path.read_bytes(), f, cls.count(f))
                    results.append((f, True, f"{path}: ok"))
                except StabgapError as e:
                    results.append((f, False, str(e)))
            return results
        path = root / cls.archive
        if not path.is_file():
            return [(cls.archive, False, f"missing: neither {cls.archive} nor {cls.folder}/")]
        problem = cls._archive_problem(path)
        return [(cls.archive, problem is None, f"{path}: {problem or 'ok'}")]

    # --- downloading ----------------------------------------------------------------------------
    @classmethod
    def download(cls, root: Path, timeout: float = 60) -> list[Path]:
        """Fetch the archive into `root`, kept only if its MD5 is the published one."""
        root = Path(root).expanduser()
        target = root / cls.archive
        if cls._unpacked(root) or (target.is_file() and cls._archive_problem(target) is None):
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
