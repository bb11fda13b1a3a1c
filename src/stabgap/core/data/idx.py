"""Datasets stored as the four IDX files of MNIST's format: find, read, download, verify.

MNIST and Fashion-MNIST (same format, same sizes) are each an :class:`IdxDataset` that
declares its files, mirrors and the places it is looked for. Each file may be stored
gzipped (``name.gz``) or raw (``name``); gzip is recognised by its magic bytes, not by the
suffix. Integrity is checked on the *decompressed payload*, because the gzip wrappers of
different mirrors differ while the payloads are byte-identical.

Where a dataset is read from: the folder the run names (``data_dir``), else the folder its
environment variable names, else the first of its system folders that holds it (a Debian
package's), else a per-user cache, which a download fills. Every failure a user can cause
or fix raises :class:`~stabgap.errors.StabgapError` with a one-line message: what is wrong,
where we looked, and how to fix it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import math
import os
import struct
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, ClassVar, NamedTuple

import numpy as np
import torch

from stabgap.atomic import atomic_write
from stabgap.core.data import GIVEN, Dataset, Images, missing_folders, remove_empty
from stabgap.errors import StabgapError

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_MAGIC_NDIM = {0x00000801: 1, 0x00000803: 3}  # unsigned-byte labels / images
_CHUNK = 1 << 20


class IdxFile(NamedTuple):
    """One of a dataset's four files, as its decompressed payload should be."""

    name: str  # file name without ".gz"
    size: int  # bytes of the decompressed payload
    sha256: str  # of the decompressed payload
    shape: tuple[int, ...]  # of the decoded array

    @property
    def gz(self) -> str:
        """The gzipped file name, as served by the mirrors."""
        return self.name + ".gz"


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _open_payload(path: Path) -> BinaryIO:
    """Open ``path`` for reading its decompressed payload, gzipped or not."""
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")  # type: ignore[return-value]


def _parse_idx(payload: bytes, path: Path, corrupt) -> torch.Tensor:
    """Decode an unsigned-byte IDX payload, checking magic, dims and total length."""
    if len(payload) < 4:
        raise corrupt(path, f"only {len(payload)} bytes, too short for an IDX header")
    magic = int.from_bytes(payload[:4], "big")
    ndim = _IDX_MAGIC_NDIM.get(magic)
    if ndim is None:
        raise corrupt(
            path,
            f"magic number 0x{magic:08x}, expected 0x00000803 (images) or 0x00000801 (labels)",
        )
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise corrupt(path, f"IDX header truncated ({len(payload)} of {header} bytes)")
    dims = struct.unpack(f">{ndim}I", payload[4:header])
    expected = header + math.prod(dims)
    if len(payload) != expected:
        # Shorter: truncated download; longer: wrong file or trailing junk.
        raise corrupt(path, f"{len(payload)} bytes but its header {dims} implies {expected} bytes")
    array = np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())  # copy: frombuffer over bytes is read-only


def _find(root: Path, spec: IdxFile) -> Path | None:
    """Return ``root/name.gz`` or ``root/name``, whichever exists first, else None."""
    for name in (spec.gz, spec.name):
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def _payload_problem(path: Path, spec: IdxFile, dataset: type | None = None) -> str | None:
    """Stream ``path``'s payload; return what is wrong with it, or None if it is intact (for
    `dataset`: a file of another dataset is named as such)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with _open_payload(path) as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        return f"bad gzip data ({e})"
    except OSError as e:
        return f"cannot read ({e.strerror or e})"
    if size != spec.size:
        return f"payload is {size} bytes, expected {spec.size}"
    if digest.hexdigest() != spec.sha256:
        other = None if dataset is None else _owner(spec, digest.hexdigest(), dataset)
        if other is not None:
            return f"this is {other.title}'s file, not {dataset.title}'s"
        return f"sha256 of payload is {digest.hexdigest()}, expected {spec.sha256}"
    return None


def fetch_url(url: str, out: BinaryIO, timeout: float) -> None:
    """Stream ``url`` into ``out``, failing if the body is shorter than announced."""
    request = urllib.request.Request(url, headers={"User-Agent": "stabgap"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        announced = response.headers.get("Content-Length")
        received = 0
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            received += len(chunk)
    # http.client returns a short body silently when the connection drops mid-read.
    if announced is not None and announced.isdigit() and received != int(announced):
        raise OSError(f"incomplete download, got {received} of {announced} bytes")


def _owner(spec: IdxFile, digest: str, this: type) -> type | None:
    """The other IDX dataset whose file of this name has this payload, if any (MNIST's
    files where Fashion-MNIST's are expected: same names, same sizes)."""
    from stabgap.core.data import DATASETS

    for other in DATASETS.values():
        if other is this or not issubclass(other, IdxDataset):
            continue
        if any(f.name == spec.name and f.sha256 == digest for f in other.files):
            return other
    return None


class _BadPayload(Exception):
    """A downloaded file whose payload is not the one expected (never renamed into place)."""


class IdxDataset(Dataset):
    """A dataset of four IDX files (class attributes, besides a dataset's).

    Attributes:
        files: train images, train labels, test images, test labels.
    """

    files: ClassVar[tuple[IdxFile, ...]] = ()

    @classmethod
    def mirrors(cls) -> Sequence[str]:
        """Base URLs it is downloaded from (``<mirror>/<name>.gz``)."""
        raise NotImplementedError

    # --- where ------------------------------------------------------------------------------
    @classmethod
    def holds(cls, folder: Path) -> bool:
        return all(_find(folder, spec) for spec in cls.files)

    @classmethod
    def _fix(cls) -> str:
        return f"run `{cls.fetch_command()}`, pass --data-dir DIR, or set {cls.env}=DIR"

    @classmethod
    def _corrupt(cls, path: Path, problem: str) -> StabgapError:
        return StabgapError(
            f"corrupt {cls.title} file {path}: {problem}; delete it and run "
            f"`{cls.fetch_into(path.parent)}` to fetch a good copy, or point --data-dir / "
            f"{cls.env} at a directory holding one"
        )

    # --- reading ------------------------------------------------------------------------------
    @classmethod
    def read_payload(cls, path: Path) -> bytes:
        """Read the whole decompressed payload, turning I/O failures into StabgapError."""
        try:
            with _open_payload(path) as f:
                return f.read()
        except FileNotFoundError:
            raise StabgapError(f"{cls.title} file {path} not found; {cls._fix()}") from None
        # BadGzipFile is an OSError, so it must be caught before the generic OSError below.
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise cls._corrupt(path, f"bad gzip data ({e})") from None
        except OSError as e:
            raise StabgapError(
                f"cannot read {cls.title} file {path}: {e.strerror or e}; {cls._fix()}"
            ) from None

    @classmethod
    def read_idx(cls, path: str | Path) -> torch.Tensor:
        """An unsigned-byte IDX file (gzipped or raw) as a tensor: (N, rows, cols) for
        images (magic 0x803), (N,) for labels (0x801)."""
        path = Path(path)
        return _parse_idx(cls.read_payload(path), path, cls._corrupt)

    @classmethod
    def _load_file(cls, path: Path, spec: IdxFile) -> torch.Tensor:
        payload = cls.read_payload(path)
        tensor = _parse_idx(payload, path, cls._corrupt)
        # Shape first: a clearer message than a checksum when the wrong file is in place.
        if tuple(tensor.shape) != spec.shape:
            raise cls._corrupt(path, f"shape {tuple(tensor.shape)}, expected {spec.shape}")
        digest = hashlib.sha256(payload).hexdigest()
        if digest != spec.sha256:
            other = _owner(spec, digest, cls)
            if other is not None:  # intact, but another dataset's: not to be deleted
                raise cls._not_ours(path, other)
            raise cls._corrupt(path, f"sha256 of payload is {digest}, expected {spec.sha256}")
        return tensor

    @classmethod
    def _not_ours(cls, path: Path, other: type) -> StabgapError:
        return StabgapError(
            f"{path} is {other.title}'s file, not {cls.title}'s (the two share file names): "
            f"point {cls.env} (or, for {cls.title}'s runs alone, --data-dir) at a folder of "
            f"{cls.title}, and keep that one; a study of both datasets sets {other.env} and "
            f"{cls.env} and no --data-dir"
        )

    @classmethod
    def load(cls, data_dir: str | Path | None, download: bool = False) -> Images:
        """The parsed and checksum-verified dataset, missing files downloaded first when
        `download`; cached per folder for the life of the process (shared tensors: clone
        before editing them)."""
        root = cls.find(data_dir, download)
        if any(_find(root, spec) is None for spec in cls.files):
            cls.download(root)
        return _load_dir(cls, root.resolve())

    @classmethod
    def find(cls, data_dir: str | Path | None, download: bool = False) -> Path:
        """The folder to use, checked without reading the data (cheap, before any work).

        A folder the user named (``--data-dir``) must already hold the dataset: a mistyped
        path is an error, not a new folder with a download in it. Only the folder of the
        environment variable or the user cache is filled by a download."""
        root, source = cls.where(data_dir)
        cls.refuse_a_file(root, source)
        missing = [spec.gz for spec in cls.files if _find(root, spec) is None]
        if not missing or (download and source != GIVEN):
            return root
        cls.refuse_absent(root, source)
        fix = f"fetch them with `{cls.fetch_into(root)}`"
        raise StabgapError(
            f"{cls.title} not found in {root} ({source}): missing {', '.join(missing)} "
            f"(or the same without .gz); {fix if source == GIVEN else cls._fix()}"
        )

    @classmethod
    def verify(cls, data_dir: str | Path | None) -> list[tuple[str, bool, str]]:
        """Each file's (name without .gz, intact, what is wrong or which file was checked):
        presence, payload size and payload SHA-256."""
        root = cls.resolve(data_dir)
        results = []
        for spec in cls.files:
            path = _find(root, spec)
            if path is None:
                results.append(
                    (spec.name, False, f"missing: neither {spec.gz} nor {spec.name} in {root}")
                )
                continue
            problem = _payload_problem(path, spec, cls)
            results.append((spec.name, problem is None, f"{path}: {problem or 'ok'}"))
        return results

    # --- downloading ----------------------------------------------------------------------------
    @classmethod
    def download(
        cls, root: Path, mirrors: Sequence[str] | None = None, timeout: float = 30
    ) -> list[Path]:
        """Download each missing or invalid file into ``root`` (created if needed), each
        tried on every mirror in turn and kept only if its decompressed payload has the
        expected size and SHA-256, written to a temporary file renamed into place (an
        interrupted download never leaves a file that looks complete). The files written."""
        dest = Path(root).expanduser()
        created = missing_folders(dest)
        try:
            dest.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StabgapError(
                f"cannot create {cls.title} directory {dest}: {e.strerror or e}; "
                f"pass --data-dir DIR or set {cls.env}=DIR to a writable directory"
            ) from None
        written = []
        try:
            for spec in cls.files:
                existing = _find(dest, spec)
                problem = None if existing is None else _payload_problem(existing, spec, cls)
                if existing is not None and problem is None:
                    continue
                if problem is not None and problem.startswith("this is "):
                    raise StabgapError(  # intact, another dataset's: never replaced
                        f"{existing}: {problem}; download {cls.title} into another folder "
                        f"(--data-dir DIR or {cls.env}=DIR)"
                    )
                urls = cls.mirrors() if mirrors is None else mirrors
                written.append(cls._download_one(dest, spec, urls, timeout))
        except BaseException:
            remove_empty(created)  # leave no empty folders behind a failed download
            raise
        return written

    @classmethod
    def _download_one(
        cls, dest: Path, spec: IdxFile, mirrors: Sequence[str], timeout: float
    ) -> Path:
        """Fetch one file from the first mirror that serves a valid copy; write it atomically."""
        if not os.access(dest, os.W_OK):
            raise StabgapError(
                f"cannot write into {cls.title} directory {dest}: permission denied; "
                f"pass --data-dir DIR or set {cls.env}=DIR to a writable directory"
            )
        target = dest / spec.gz
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + spec.gz

            def fetch(tmp: Path, url: str = url) -> None:
                with open(tmp, "wb") as out:
                    fetch_url(url, out, timeout)
                problem = _payload_problem(tmp, spec)
                if problem is not None:
                    raise _BadPayload(problem)  # checked before it is renamed into place

            try:
                atomic_write(target, fetch)
                return target
            except _BadPayload as e:
                failures.append(f"{url} ({e})")
            except urllib.error.HTTPError as e:  # before URLError: it is a subclass
                e.close()  # it holds the open error response
                failures.append(f"{url} (HTTP {e.code} {e.reason})")
            except urllib.error.URLError as e:
                failures.append(f"{url} ({e.reason})")
            except (http.client.HTTPException, OSError, ValueError) as e:
                failures.append(f"{url} ({type(e).__name__}: {e})")
        tried = "; ".join(failures) or "no mirrors given"
        raise StabgapError(
            f"could not download {spec.gz} into {dest}: tried {tried}; download the "
            f"{cls.title} .gz files by hand into {dest} (or into DIR and pass --data-dir DIR / "
            f"set {cls.env}=DIR)"
        )


# Keyed on the dataset and its resolved folder: loading decompresses and hashes ~55 MB, and
# a sweep loads it once per run in the same process. Small maxsize: each entry is ~55 MB.
@functools.lru_cache(maxsize=2)
def _load_dir(dataset: type[IdxDataset], root: Path) -> Images:
    tensors = []
    for spec in dataset.files:
        path = _find(root, spec)
        if path is None:  # deleted between the check and now
            raise StabgapError(
                f"{dataset.title} file {spec.gz} not found in {root}; {dataset._fix()}"
            )
        tensors.append(dataset._load_file(path, spec))
    train_images, train_labels, test_images, test_labels = tensors
    n = dataset.n_classes
    return Images(train_images, train_labels.long(), test_images, test_labels.long(), n)
