"""MNIST: find, read, download and verify the four standard IDX files.

The data directory is chosen by :func:`resolve_data_dir` (explicit argument, then
``$STABGAP_DATA``, then a per-user cache). In it each file may be stored gzipped
(``name.gz``) or raw (``name``); gzip is recognised by its magic bytes, not by the
suffix. Integrity is checked on the *decompressed payload*, because the gzip
wrappers of different mirrors differ while the payloads are byte-identical.

Every failure a user can cause or fix raises :class:`~stabgap.errors.StabgapError`
with a one-line message: what is wrong, where we looked, and how to fix it.
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
from typing import BinaryIO, NamedTuple

import numpy as np
import torch

from stabgap.atomic import atomic_write
from stabgap.core.data import DATASETS, Dataset, Images
from stabgap.errors import StabgapError

N_CLASSES = 10
DATA_ENV = "STABGAP_DATA"
"""Environment variable naming the MNIST directory (used when no dir is passed)."""

_FIX = "run `stabgap data download`, pass --data-dir DIR, or set STABGAP_DATA=DIR"
_GZIP_MAGIC = b"\x1f\x8b"
_IDX_MAGIC_NDIM = {0x00000801: 1, 0x00000803: 3}  # unsigned-byte labels / images
_CHUNK = 1 << 20


class MnistFile(NamedTuple):
    """One of the four MNIST files, as its decompressed payload should be."""

    name: str  # file name without ".gz"
    size: int  # bytes of the decompressed payload
    sha256: str  # of the decompressed payload
    shape: tuple[int, ...]  # of the decoded array

    @property
    def gz(self) -> str:
        """The gzipped file name, as served by the mirrors."""
        return self.name + ".gz"


MNIST_FILES: tuple[MnistFile, ...] = (
    MnistFile(
        "train-images-idx3-ubyte",
        47040016,
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        (60000, 28, 28),
    ),
    MnistFile(
        "train-labels-idx1-ubyte",
        60008,
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        (60000,),
    ),
    MnistFile(
        "t10k-images-idx3-ubyte",
        7840016,
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        (10000, 28, 28),
    ),
    MnistFile(
        "t10k-labels-idx1-ubyte",
        10008,
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        (10000,),
    ),
)

MIRRORS: tuple[str, ...] = (
    # The bucket torchvision downloads from; yann.lecun.com itself often refuses scripts.
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)


def default_cache_dir() -> Path:
    """Return the per-user download location.

    Returns:
        ``$XDG_CACHE_HOME/stabgap/mnist``, or ``~/.cache/stabgap/mnist`` when that
        variable is unset or not absolute (as the XDG spec requires).
    """
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "stabgap" / "mnist"


def _resolve(data_dir: str | Path | None) -> tuple[Path, str]:
    """Like :func:`resolve_data_dir`, plus where the choice came from (for messages)."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser(), "given data dir"
    env = os.environ.get(DATA_ENV, "")
    if env:
        return Path(env).expanduser(), f"from ${DATA_ENV}"
    return default_cache_dir(), "default cache dir"


def resolve_data_dir(data_dir: str | Path | None) -> Path:
    """Choose the MNIST directory.

    Args:
        data_dir: Explicit directory; ``None`` (or "") falls through.

    Returns:
        ``data_dir`` if given, else ``$STABGAP_DATA`` if set, else :func:`default_cache_dir`.
        ``~`` is expanded; the directory need not exist.
    """
    return _resolve(data_dir)[0]


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == _GZIP_MAGIC


def _open_payload(path: Path) -> BinaryIO:
    """Open ``path`` for reading its decompressed payload, gzipped or not."""
    return gzip.open(path, "rb") if _is_gzip(path) else open(path, "rb")  # type: ignore[return-value]


def _corrupt(path: Path, problem: str) -> StabgapError:
    return StabgapError(
        f"corrupt MNIST file {path}: {problem}; delete it and run `stabgap data download` "
        f"to fetch a good copy, or point --data-dir / {DATA_ENV} at a directory holding one"
    )


def _read_payload(path: Path) -> bytes:
    """Read the whole decompressed payload, turning I/O failures into StabgapError."""
    try:
        with _open_payload(path) as f:
            return f.read()
    except FileNotFoundError:
        raise StabgapError(f"MNIST file {path} not found; {_FIX}") from None
    # BadGzipFile is an OSError, so it must be caught before the generic OSError below.
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise _corrupt(path, f"bad gzip data ({e})") from None
    except OSError as e:
        raise StabgapError(f"cannot read MNIST file {path}: {e.strerror or e}; {_FIX}") from None


def _parse_idx(payload: bytes, path: Path) -> torch.Tensor:
    """Decode an unsigned-byte IDX payload, checking magic, dims and total length."""
    if len(payload) < 4:
        raise _corrupt(path, f"only {len(payload)} bytes, too short for an IDX header")
    magic = int.from_bytes(payload[:4], "big")
    ndim = _IDX_MAGIC_NDIM.get(magic)
    if ndim is None:
        raise _corrupt(
            path,
            f"magic number 0x{magic:08x}, expected 0x00000803 (images) or 0x00000801 (labels)",
        )
    header = 4 + 4 * ndim
    if len(payload) < header:
        raise _corrupt(path, f"IDX header truncated ({len(payload)} of {header} bytes)")
    dims = struct.unpack(f">{ndim}I", payload[4:header])
    expected = header + math.prod(dims)
    if len(payload) != expected:
        # Shorter: truncated download; longer: wrong file or trailing junk.
        raise _corrupt(path, f"{len(payload)} bytes but its header {dims} implies {expected} bytes")
    array = np.frombuffer(payload, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())  # copy: frombuffer over bytes is read-only


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an unsigned-byte IDX file (gzipped or raw) into a tensor.

    Args:
        path: The file; gzip is detected from its content, not its name.

    Returns:
        A uint8 tensor: (N, rows, cols) for images (magic 0x803), (N,) for labels (0x801).

    Raises:
        StabgapError: The file is missing, unreadable, not valid gzip, has the wrong magic
            number, or its length does not match the dimensions in its header.
    """
    path = Path(path)
    return _parse_idx(_read_payload(path), path)


def _find(root: Path, spec: MnistFile) -> Path | None:
    """Return ``root/name.gz`` or ``root/name``, whichever exists first, else None."""
    for name in (spec.gz, spec.name):
        candidate = root / name
        if candidate.is_file():
            return candidate
    return None


def _load_file(path: Path, spec: MnistFile) -> torch.Tensor:
    payload = _read_payload(path)
    tensor = _parse_idx(payload, path)
    # Shape first: it gives a clearer message than a checksum when the wrong file is in place.
    if tuple(tensor.shape) != spec.shape:
        raise _corrupt(path, f"shape {tuple(tensor.shape)}, expected {spec.shape}")
    digest = hashlib.sha256(payload).hexdigest()
    if digest != spec.sha256:
        raise _corrupt(path, f"sha256 of payload is {digest}, expected {spec.sha256}")
    return tensor


# Keyed on the resolved directory: loading decompresses and hashes ~55 MB, and a sweep
# loads MNIST once per run in the same process. Small maxsize: each entry holds ~55 MB.
@functools.lru_cache(maxsize=2)
def _load_dir(root: Path) -> Images:
    tensors = []
    for spec in MNIST_FILES:
        path = _find(root, spec)
        if path is None:  # deleted between load_mnist's check and now
            raise StabgapError(f"MNIST file {spec.gz} not found in {root}; {_FIX}")
        tensors.append(_load_file(path, spec))
    train_images, train_labels, test_images, test_labels = tensors
    return Images(train_images, train_labels.long(), test_images, test_labels.long(), N_CLASSES)


def load_mnist(data_dir: str | Path | None = None, download: bool = False) -> Images:
    """Load MNIST, optionally downloading missing files first.

    The result is cached per resolved directory for the life of the process, so
    repeated calls are free; the returned tensors are shared, clone before editing them.

    Args:
        data_dir: Directory holding the files (see :func:`resolve_data_dir`).
        download: Download missing files into that directory from :data:`MIRRORS`.

    Returns:
        The parsed and checksum-verified data set.

    Raises:
        StabgapError: Files are missing (and ``download`` is False), corrupt, or could
            not be downloaded.
    """
    root = check_mnist(data_dir, download)
    if any(_find(root, spec) is None for spec in MNIST_FILES):
        download_mnist(root, mirrors=MIRRORS)  # read at call time so it can be overridden
    return _load_dir(root.resolve())


def check_mnist(data_dir: str | Path | None = None, download: bool = False) -> Path:
    """The MNIST folder to use, checked without reading the data (cheap, before any work).

    A folder the user named (``--data-dir``) must already hold MNIST: a mistyped path is
    an error, not a new folder with a download in it. Only the folder of $STABGAP_DATA or
    the user cache is filled by a download when `download` is true.

    Raises:
        StabgapError: MNIST is missing where it must already be.
    """
    root, source = _resolve(data_dir)
    if root.exists() and not root.is_dir():
        raise StabgapError(f"MNIST folder {root} ({source}) is a file: give the folder of MNIST")
    missing = [spec.gz for spec in MNIST_FILES if _find(root, spec) is None]
    if not missing or (download and source != "given data dir"):
        return root
    if not root.exists():
        raise StabgapError(
            f"MNIST folder {root} ({source}) does not exist: check the path, or fetch MNIST "
            f"there with `stabgap data download --data-dir {root}`"
        )
    fix = f"fetch them with `stabgap data download --data-dir {root}`"
    raise StabgapError(
        f"MNIST not found in {root} ({source}): missing {', '.join(missing)} "
        f"(or the same without .gz); {fix if source == 'given data dir' else _FIX}"
    )


def _payload_problem(path: Path, spec: MnistFile) -> str | None:
    """Stream ``path``'s payload; return what is wrong with it, or None if it is intact."""
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
        return f"sha256 of payload is {digest.hexdigest()}, expected {spec.sha256}"
    return None


def verify_mnist(data_dir: str | Path | None = None) -> list[tuple[str, bool, str]]:
    """Check presence, payload size and payload SHA-256 of each MNIST file.

    Args:
        data_dir: Directory to check (see :func:`resolve_data_dir`).

    Returns:
        One ``(name, ok, message)`` per file in :data:`MNIST_FILES` order; ``name`` is
        without ``.gz``, ``message`` says what is wrong or which file was checked.
    """
    root = resolve_data_dir(data_dir)
    results = []
    for spec in MNIST_FILES:
        path = _find(root, spec)
        if path is None:
            results.append(
                (spec.name, False, f"missing: neither {spec.gz} nor {spec.name} in {root}")
            )
            continue
        problem = _payload_problem(path, spec)
        results.append((spec.name, problem is None, f"{path}: {problem or 'ok'}"))
    return results


def _fetch(url: str, out: BinaryIO, timeout: float) -> None:
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


class _BadPayload(Exception):
    """A downloaded file whose payload is not the one expected (never renamed into place)."""


def _download_one(dest: Path, spec: MnistFile, mirrors: Sequence[str], timeout: float) -> Path:
    """Fetch one file from the first mirror that serves a valid copy; write it atomically."""
    if not os.access(dest, os.W_OK):
        raise StabgapError(
            f"cannot write into MNIST directory {dest}: permission denied; "
            f"pass --data-dir DIR or set {DATA_ENV}=DIR to a writable directory"
        )
    target = dest / spec.gz
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + spec.gz

        def fetch(tmp: Path, url: str = url) -> None:
            with open(tmp, "wb") as out:
                _fetch(url, out, timeout)
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
        f"could not download {spec.gz} into {dest}: tried {tried}; download the MNIST .gz "
        f"files by hand into {dest} (or into DIR and pass --data-dir DIR / set {DATA_ENV}=DIR)"
    )


def download_mnist(
    dest: str | Path, mirrors: Sequence[str] = MIRRORS, timeout: float = 30
) -> list[Path]:
    """Download each missing or invalid MNIST file into ``dest``.

    Each file is tried on every mirror in turn and kept only if its decompressed
    payload has the expected size and SHA-256. Downloads go to a temporary file in
    ``dest`` that is renamed into place, so an interrupted run never leaves a file
    that looks complete. Files already present and valid are not fetched again.

    Args:
        dest: Directory to download into (created if needed).
        mirrors: Base URLs; ``<mirror>/<name>.gz`` is fetched.
        timeout: Seconds for each connection attempt and each read.

    Returns:
        The paths written by this call (empty when everything was already valid).

    Raises:
        StabgapError: ``dest`` cannot be created, or no mirror served a valid copy of a file.
    """
    dest = Path(dest).expanduser()
    created = [p for p in (dest, *dest.parents) if not p.exists()]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StabgapError(
            f"cannot create MNIST directory {dest}: {e.strerror or e}; "
            f"pass --data-dir DIR or set {DATA_ENV}=DIR to a writable directory"
        ) from None
    written = []
    try:
        for spec in MNIST_FILES:
            existing = _find(dest, spec)
            if existing is not None and _payload_problem(existing, spec) is None:
                continue
            written.append(_download_one(dest, spec, mirrors, timeout))
    except BaseException:
        for folder in created:  # leave no empty folders behind a failed download
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return written


@DATASETS.register
class Mnist(Dataset):
    """MNIST, from its four IDX files."""

    name = "mnist"
    title = "MNIST"
    help = "28×28 grey digits, 60,000 for training and 10,000 for testing"
    input_shape = (1, 28, 28)
    n_classes = N_CLASSES
    train_size, test_size = 60_000, 10_000

    @classmethod
    def load(cls, data_dir: str | Path | None, download: bool = False) -> Images:
        return load_mnist(data_dir, download)

    @classmethod
    def find(cls, data_dir: str | Path | None, download: bool = False) -> Path:
        return check_mnist(data_dir, download)

    @classmethod
    def resolve(cls, data_dir: str | Path | None) -> Path:
        return resolve_data_dir(data_dir)

    @classmethod
    def download(cls, root: Path) -> list[Path]:
        return download_mnist(root)

    @classmethod
    def verify(cls, data_dir: str | Path | None) -> list[tuple[str, bool, str]]:
        return verify_mnist(data_dir)
