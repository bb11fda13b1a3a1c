"""Tests for stabgap.core.data.mnist: reading, finding, downloading and verifying MNIST.

The real files come from ``$STABGAP_TEST_DATA`` or ``<repo>/../shared/data/mnist``.
Downloads are served by a local ``http.server`` on 127.0.0.1; nothing else is contacted.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import re
import shutil
import socket
import struct
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from stabgap.core.data import Images
from stabgap.core.data import mnist as data
from stabgap.core.data.mnist import (
    MNIST_FILES,
    default_cache_dir,
    download_mnist,
    load_mnist,
    read_idx,
    resolve_data_dir,
    verify_mnist,
)
from stabgap.errors import StabgapError

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC = {spec.name: spec for spec in MNIST_FILES}
TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = (spec.name for spec in MNIST_FILES)


def _shared_dir() -> Path:
    return Path(os.environ.get("STABGAP_TEST_DATA") or REPO_ROOT.parent / "shared/data/mnist")


@pytest.fixture(scope="module")
def shared_dir() -> Path:
    root = _shared_dir()
    if not all((root / spec.gz).is_file() for spec in MNIST_FILES):
        pytest.skip(f"MNIST test data not found in {root} (set STABGAP_TEST_DATA)")
    return root


@pytest.fixture(scope="module")
def mnist(shared_dir: Path) -> Images:
    return load_mnist(shared_dir)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # A user's proxy would send 127.0.0.1 requests elsewhere; their data dir must not leak in.
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("STABGAP_DATA", raising=False)


def _payload(path: Path) -> bytes:
    with gzip.open(path, "rb") as f:
        return f.read()


def _idx(values: bytes, *dims: int) -> bytes:
    """Build an unsigned-byte IDX payload (labels if one dim, images if three)."""
    magic = 0x801 if len(dims) == 1 else 0x803
    return struct.pack(f">I{len(dims)}I", magic, *dims) + values


def _one_line(err: pytest.ExceptionInfo[StabgapError]) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


# --- reading the real files -------------------------------------------------------------


def test_file_table_matches_shared_readme(shared_dir: Path) -> None:
    readme = (shared_dir / "README.md").read_text()
    rows = re.findall(r"\| (\S+)\.gz \| (\d+) \| ([0-9a-f]{64}) \|", readme)
    assert {name: (int(size), sha) for name, size, sha in rows} == {
        spec.name: (spec.size, spec.sha256) for spec in MNIST_FILES
    }


def test_read_idx_real_files(shared_dir: Path) -> None:
    images = read_idx(shared_dir / f"{TEST_IMAGES}.gz")
    labels = read_idx(str(shared_dir / f"{TEST_LABELS}.gz"))
    assert images.shape == (10000, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (10000,) and labels.dtype == torch.uint8
    assert int(images.min()) == 0 and int(images.max()) == 255
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]  # the well-known first test digits


def test_load_mnist_real(mnist: Images) -> None:
    assert mnist.train_images.shape == (60000, 28, 28)
    assert mnist.test_images.shape == (10000, 28, 28)
    assert mnist.train_images.dtype == mnist.test_images.dtype == torch.uint8
    assert mnist.train_labels.shape == (60000,) and mnist.test_labels.shape == (10000,)
    assert mnist.train_labels.dtype == mnist.test_labels.dtype == torch.int64
    for labels in (mnist.train_labels, mnist.test_labels):
        assert int(labels.min()) == 0 and int(labels.max()) == 9
    assert int(mnist.train_labels[0]) == 5
    assert torch.bincount(mnist.train_labels)[1] == 6742
    assert torch.bincount(mnist.test_labels)[1] == 1135


def test_decoded_arrays_match_verified_checksums(mnist: Images, shared_dir: Path) -> None:
    arrays = {
        TRAIN_IMAGES: mnist.train_images,
        TRAIN_LABELS: mnist.train_labels,
        TEST_IMAGES: mnist.test_images,
        TEST_LABELS: mnist.test_labels,
    }
    for name, tensor in arrays.items():
        # Re-encode the decoded array as IDX: it must hash to the published payload digest.
        payload = _idx(tensor.to(torch.uint8).numpy().tobytes(), *tensor.shape)
        assert hashlib.sha256(payload).hexdigest() == SPEC[name].sha256, name
    report = verify_mnist(shared_dir)
    assert [name for name, _, _ in report] == list(arrays)
    assert all(ok for _, ok, _ in report), report


def test_load_mnist_is_cached(shared_dir: Path, mnist: Images) -> None:
    assert load_mnist(shared_dir) is mnist
    assert load_mnist(str(shared_dir) + "/") is mnist  # keyed on the resolved path


def test_raw_files_load_like_gz(tmp_path: Path, shared_dir: Path, mnist: Images) -> None:
    for spec in MNIST_FILES:
        (tmp_path / spec.name).write_bytes(_payload(shared_dir / spec.gz))
    assert all(ok for _, ok, _ in verify_mnist(tmp_path))
    raw = load_mnist(tmp_path)
    assert raw is not mnist
    assert torch.equal(raw.train_images, mnist.train_images)
    assert torch.equal(raw.test_labels, mnist.test_labels)


def test_gzip_detected_by_content_not_suffix(tmp_path: Path, shared_dir: Path) -> None:
    path = tmp_path / "labels.gz"  # raw bytes under a .gz name
    path.write_bytes(_payload(shared_dir / f"{TEST_LABELS}.gz"))
    assert read_idx(path)[:3].tolist() == [7, 2, 1]


# --- broken files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (gzip.compress(_idx(bytes(range(10)), 10))[:-12], "gzip"),  # truncated gzip
        (_idx(bytes(range(10)), 10)[:-1], "implies 18 bytes"),  # truncated raw
        (_idx(bytes(range(10)), 10) + b"\0", "implies 18 bytes"),  # trailing bytes
        (struct.pack(">II", 0x804, 1) + b"\0", "magic number 0x00000804"),
        (struct.pack(">I", 0x803) + b"\0" * 8, "header truncated"),
        (b"\0\0", "too short"),
    ],
    ids=["truncated-gz", "truncated-raw", "trailing-bytes", "wrong-magic", "short-header", "tiny"],
)
def test_read_idx_rejects_corrupt(tmp_path: Path, content: bytes, problem: str) -> None:
    path = tmp_path / "bad-idx"
    path.write_bytes(content)
    with pytest.raises(StabgapError) as err:
        read_idx(path)
    message = _one_line(err)
    assert str(path) in message and problem in message
    assert "stabgap data download" in message


def test_read_idx_missing_file(tmp_path: Path) -> None:
    with pytest.raises(StabgapError) as err:
        read_idx(tmp_path / "nope.gz")
    assert str(tmp_path / "nope.gz") in _one_line(err)


def test_read_idx_small_valid_images(tmp_path: Path) -> None:
    path = tmp_path / "img"
    path.write_bytes(gzip.compress(_idx(bytes(range(12)), 3, 2, 2)))
    images = read_idx(path)
    assert images.shape == (3, 2, 2)
    assert images[2].tolist() == [[8, 9], [10, 11]]


def test_load_mnist_missing_names_dir_and_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABGAP_DATA", str(tmp_path))
    with pytest.raises(StabgapError) as err:
        load_mnist()
    message = _one_line(err)
    assert str(tmp_path) in message and "$STABGAP_DATA" in message
    assert all(spec.gz in message for spec in MNIST_FILES)
    assert "stabgap data download" in message and "--data-dir" in message


def _copy_with(tmp_path: Path, shared_dir: Path, name: str, payload: bytes) -> Path:
    """Copy the real files to tmp_path, replacing ``name`` with ``payload`` (gzipped)."""
    for spec in MNIST_FILES:
        shutil.copy(shared_dir / spec.gz, tmp_path / spec.gz)
    (tmp_path / f"{name}.gz").write_bytes(gzip.compress(payload, compresslevel=1))
    return tmp_path / f"{name}.gz"


def test_load_mnist_rejects_checksum_mismatch(tmp_path: Path, shared_dir: Path) -> None:
    payload = bytearray(_payload(shared_dir / f"{TEST_LABELS}.gz"))
    payload[-1] = (payload[-1] + 1) % 10  # still a well-formed label file
    bad = _copy_with(tmp_path, shared_dir, TEST_LABELS, bytes(payload))
    assert read_idx(bad).shape == (10000,)  # structurally fine ...
    with pytest.raises(StabgapError) as err:
        load_mnist(tmp_path)  # ... but not MNIST
    message = _one_line(err)
    assert str(bad) in message and "sha256" in message
    # the fix downloads into this folder, not into the default one
    assert f"`stabgap data download --data-dir {tmp_path}`" in message
    report = {name: (ok, msg) for name, ok, msg in verify_mnist(tmp_path)}
    assert report[TEST_LABELS][0] is False and "sha256" in report[TEST_LABELS][1]
    assert all(report[spec.name][0] for spec in MNIST_FILES[:3])


def test_load_mnist_rejects_wrong_shape(tmp_path: Path, shared_dir: Path) -> None:
    bad = _copy_with(tmp_path, shared_dir, TEST_LABELS, _idx(bytes(5), 5))
    with pytest.raises(StabgapError) as err:
        load_mnist(tmp_path)
    message = _one_line(err)
    assert str(bad) in message and "shape (5,), expected (10000,)" in message
    report = {name: (ok, msg) for name, ok, msg in verify_mnist(tmp_path)}
    assert report[TEST_LABELS] == (False, f"{bad}: payload is 13 bytes, expected 10008")


def test_a_corrupt_file_in_the_default_folder_gets_the_plain_command(
    tmp_path: Path, shared_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = _copy_with(tmp_path, shared_dir, TEST_LABELS, _idx(bytes(5), 5))
    monkeypatch.setenv("STABGAP_DATA", str(tmp_path))
    with pytest.raises(StabgapError) as err:
        load_mnist()
    assert f"corrupt MNIST file {bad}: " in _one_line(err)
    assert "run `stabgap data download` to fetch a good copy" in _one_line(err)


def test_the_download_command_says_verified_only_of_what_it_checked(
    tmp_path: Path,
    shared_dir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from stabgap.cli import main

    assert main(["data", "download", "--data-dir", str(shared_dir)]) == 0
    assert capsys.readouterr().out == f"MNIST in {shared_dir}: nothing to download; all verified\n"
    _copy_with(tmp_path, shared_dir, TEST_LABELS, b"junk")  # a file it cannot fetch here
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))
    assert main(["data", "download", "--data-dir", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert "verified" not in out and "could not download t10k-labels-idx1-ubyte.gz" in err


def test_verify_mnist_reports_missing_and_corrupt(tmp_path: Path, shared_dir: Path) -> None:
    shutil.copy(shared_dir / f"{TRAIN_LABELS}.gz", tmp_path)
    (tmp_path / TEST_LABELS).write_bytes(b"\x1f\x8bnot really gzip")
    report = verify_mnist(tmp_path)
    assert [name for name, _, _ in report] == [spec.name for spec in MNIST_FILES]
    status = {name: (ok, msg) for name, ok, msg in report}
    assert status[TRAIN_LABELS][0] is True
    assert status[TEST_LABELS][0] is False and "gzip" in status[TEST_LABELS][1]
    for name in (TRAIN_IMAGES, TEST_IMAGES):
        assert status[name][0] is False
        assert "missing" in status[name][1] and str(tmp_path) in status[name][1]


# --- where the data is looked for -----------------------------------------------------------


def test_resolve_data_dir_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resolve_data_dir(None) == tmp_path / "xdg/stabgap/mnist"
    monkeypatch.setenv("STABGAP_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert resolve_data_dir(str(tmp_path / "arg")) == tmp_path / "arg"
    monkeypatch.setenv("STABGAP_DATA", "")  # empty means unset
    assert resolve_data_dir(None) == tmp_path / "xdg/stabgap/mnist"


def test_default_cache_dir_without_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert default_cache_dir() == tmp_path / ".cache/stabgap/mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/dir")  # the XDG spec says ignore it
    assert default_cache_dir() == tmp_path / ".cache/stabgap/mnist"
    assert resolve_data_dir("~/mnist") == tmp_path / "mnist"


def test_load_mnist_from_env(
    shared_dir: Path, mnist: Images, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STABGAP_DATA", str(shared_dir))
    assert load_mnist() is mnist


# --- downloading from a local server --------------------------------------------------------


class _Server:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(_Handler, self, directory=str(root))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, server_state: _Server, *args, **kwargs) -> None:
        self.state = server_state
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        self.state.requests.append(self.path)
        if self.path.startswith("/truncated/"):
            # Announce the whole file, send half, hang up: a dropped connection.
            body = (self.state.root / "good" / Path(self.path).name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Server]:
    root = tmp_path_factory.mktemp("mirror")
    (root / "good").mkdir()
    for spec in MNIST_FILES:
        shutil.copy(shared_dir / spec.gz, root / "good")
    # A well-formed gzip whose payload differs from MNIST by one label.
    (root / "bad").mkdir()
    payload = bytearray(_payload(shared_dir / f"{TRAIN_LABELS}.gz"))
    payload[-1] = (payload[-1] + 1) % 10
    (root / "bad" / f"{TRAIN_LABELS}.gz").write_bytes(gzip.compress(bytes(payload)))
    srv = _Server(root)
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture(scope="module")
def dead_url() -> str:
    # A port that was free a moment ago: connecting to it is refused at once.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def _only_train_images(dest: Path, shared_dir: Path) -> None:
    """Pre-seed a valid first file so a download starts with the small train labels."""
    dest.mkdir(exist_ok=True)
    shutil.copy(shared_dir / f"{TRAIN_IMAGES}.gz", dest)


def test_download_falls_back_and_skips_valid_files(
    tmp_path: Path,
    server: _Server,
    dead_url: str,
    mnist: Images,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing, good = f"{server.url}/nowhere/", f"{server.url}/good/"
    monkeypatch.setattr(data, "MIRRORS", (dead_url, missing, good))
    dest = tmp_path / "new" / "mnist"  # created on demand: $STABGAP_DATA's folder
    monkeypatch.setenv("STABGAP_DATA", str(dest))
    server.requests.clear()

    loaded = load_mnist(None, download=True)

    assert torch.equal(loaded.train_images, mnist.train_images)
    assert torch.equal(loaded.test_labels, mnist.test_labels)
    assert sorted(p.name for p in dest.iterdir()) == sorted(spec.gz for spec in MNIST_FILES)
    assert all(ok for _, ok, _ in verify_mnist(dest))
    for spec in MNIST_FILES:  # 404 on the second mirror, then served by the third
        assert server.requests.count(f"/nowhere/{spec.gz}") == 1
        assert server.requests.count(f"/good/{spec.gz}") == 1

    server.requests.clear()
    assert download_mnist(dest, mirrors=(good,)) == []  # all valid: nothing fetched
    assert server.requests == []


def test_a_named_folder_is_never_created_nor_downloaded_into(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))
    typo = tmp_path / "mnsit"
    with pytest.raises(StabgapError, match="does not exist: check the path"):
        load_mnist(typo, download=True)
    assert not typo.exists()
    typo.mkdir()
    with pytest.raises(StabgapError, match="stabgap data download --data-dir"):
        load_mnist(typo, download=True)
    assert list(typo.iterdir()) == []


def test_download_replaces_invalid_file_only(
    tmp_path: Path, server: _Server, shared_dir: Path
) -> None:
    for spec in MNIST_FILES:
        shutil.copy(shared_dir / spec.gz, tmp_path)
    (tmp_path / f"{TEST_LABELS}.gz").write_bytes(b"junk")
    server.requests.clear()
    assert download_mnist(tmp_path, mirrors=(f"{server.url}/good",)) == [
        tmp_path / f"{TEST_LABELS}.gz"
    ]
    assert server.requests == [f"/good/{TEST_LABELS}.gz"]
    assert all(ok for _, ok, _ in verify_mnist(tmp_path))


def test_download_rejects_corrupt_mirror(tmp_path: Path, server: _Server, shared_dir: Path) -> None:
    _only_train_images(tmp_path, shared_dir)
    bad = f"{server.url}/bad/"
    with pytest.raises(StabgapError) as err:
        download_mnist(tmp_path, mirrors=(bad,))
    message = _one_line(err)
    assert f"{TRAIN_LABELS}.gz" in message and f"{bad}{TRAIN_LABELS}.gz" in message
    assert "sha256" in message and str(tmp_path) in message
    # Nothing but the pre-seeded file: the rejected download left no trace.
    assert [p.name for p in tmp_path.iterdir()] == [f"{TRAIN_IMAGES}.gz"]


def test_interrupted_download_leaves_no_file(
    tmp_path: Path, server: _Server, shared_dir: Path
) -> None:
    _only_train_images(tmp_path, shared_dir)
    with pytest.raises(StabgapError) as err:
        download_mnist(tmp_path, mirrors=(f"{server.url}/truncated/",), timeout=5)
    assert "incomplete download" in _one_line(err)
    assert [p.name for p in tmp_path.iterdir()] == [f"{TRAIN_IMAGES}.gz"]


def test_download_all_mirrors_fail(
    tmp_path: Path, server: _Server, dead_url: str, shared_dir: Path
) -> None:
    _only_train_images(tmp_path, shared_dir)
    missing = f"{server.url}/nowhere/"
    with pytest.raises(StabgapError) as err:
        download_mnist(tmp_path, mirrors=(dead_url, missing), timeout=5)
    message = _one_line(err)
    assert f"{TRAIN_LABELS}.gz" in message and str(tmp_path) in message
    assert f"{dead_url}{TRAIN_LABELS}.gz" in message
    assert f"{missing}{TRAIN_LABELS}.gz (HTTP 404" in message
    assert "by hand" in message and "--data-dir" in message
    assert [p.name for p in tmp_path.iterdir()] == [f"{TRAIN_IMAGES}.gz"]
    with pytest.raises(StabgapError, match="no mirrors given"):
        download_mnist(tmp_path, mirrors=())


def test_download_dest_not_creatable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StabgapError) as err:
        download_mnist(blocker / "mnist", mirrors=("http://127.0.0.1:9/",))
    assert str(blocker / "mnist") in _one_line(err)


# --- Fashion-MNIST: the same format, its own files and places -------------------------------
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
    reason="Fashion-MNIST absent: apt-get install dataset-fashion-mnist (CI installs it)",
)


@needs_fashion
def test_fashion_mnist_is_read_from_debians_package_and_verified(monkeypatch):
    from stabgap.core.data import DATASETS

    monkeypatch.delenv("STABGAP_FASHION_MNIST", raising=False)
    fashion = DATASETS["fashion-mnist"]
    assert fashion.where(None) == (FASHION_DIR, "installed by a system package")
    images = fashion.load(None)
    assert images.train_images.shape == (60000, 28, 28) and images.test_images.shape == (
        10000,
        28,
        28,
    )
    assert torch.bincount(images.train_labels).tolist() == [6000] * 10
    assert torch.bincount(images.test_labels).tolist() == [1000] * 10
    assert all(ok for _, ok, _ in fashion.verify(None))
    mnist = DATASETS["mnist"].load(_shared_dir())
    assert not torch.equal(images.train_images[:100], mnist.train_images[:100])


def test_fashion_mnist_is_looked_for_in_order(tmp_path, monkeypatch):
    """The run's folder, then $STABGAP_FASHION_MNIST, then a system package's, then the
    cache; MNIST's $STABGAP_DATA is not Fashion-MNIST's."""
    from stabgap.core.data import DATASETS

    fashion = DATASETS["fashion-mnist"]
    system = tmp_path / "system"
    system.mkdir()
    for spec in fashion.files:
        (system / spec.gz).write_bytes(b"")
    monkeypatch.setattr(fashion, "system_dirs", (str(tmp_path / "none"), str(system)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("STABGAP_DATA", str(tmp_path / "mnist"))
    monkeypatch.setenv("STABGAP_FASHION_MNIST", str(tmp_path / "env"))
    assert fashion.where(tmp_path / "mine") == (tmp_path / "mine", "given data dir")
    assert fashion.where(None)[0] == tmp_path / "env"
    monkeypatch.delenv("STABGAP_FASHION_MNIST")
    assert fashion.where(None) == (system, "installed by a system package")
    monkeypatch.setattr(fashion, "system_dirs", ())
    assert fashion.where(None)[0] == tmp_path / "xdg" / "stabgap" / "fashion-mnist"


def test_a_corrupt_fashion_mnist_file_names_the_dataset_and_its_command(tmp_path):
    from stabgap.core.data import DATASETS

    fashion = DATASETS["fashion-mnist"]
    for spec in fashion.files:
        (tmp_path / spec.name).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x02ab")
    with pytest.raises(StabgapError) as e:
        fashion.load(tmp_path)
    message = str(e.value)
    assert message.startswith("corrupt Fashion-MNIST file") and "\n" not in message
    assert f"`stabgap data download --dataset fashion-mnist --data-dir {tmp_path}`" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StabgapError, match="Fashion-MNIST not found in .*: missing train-"):
        fashion.find(empty, download=True)  # a folder the user named is never filled


@needs_fashion
def test_a_run_trains_on_real_fashion_mnist_through_the_cli(tmp_path, monkeypatch):
    """Split Fashion-MNIST, class-incremental: named by its classes, learnt above chance."""
    import json

    from stabgap.cli import main

    monkeypatch.delenv("STABGAP_FASHION_MNIST", raising=False)
    code = main(["run", "--dataset", "fashion-mnist", "--stream", "split", "--replay", "none",
                 "--hidden", "32", "--batches-per-task", "25", "--batch-size", "64",
                 "--eval-subset", "300", "--eval-every", "5", "--experiments", "baseline",
                 "--seeds", "1", "--quiet", "--no-plot", "--out", str(tmp_path / "f")])  # fmt: skip
    assert code == 0
    (run,) = (tmp_path / "f").glob("*/run.json")
    record = json.loads(run.read_text())
    assert record["config"]["dataset"] == "fashion-mnist"
    assert record["metadata"]["task_names"][:2] == ["classes 0-1", "classes 2-3"]
    curves = np.load(run.parent / "curves.npz")
    acc = curves["acc"]
    first_end = 25 // 5  # task 1's last point
    assert acc[first_end - 1, 0] > 80  # T-shirts against trousers: learnt in 25 batches


def test_mnist_where_fashion_mnist_is_expected_is_named_and_never_replaced(tmp_path, shared_dir):
    """The two share file names and sizes: MNIST's intact files in Fashion-MNIST's place are
    said to be MNIST's, and no download replaces them."""
    from stabgap.core.data import DATASETS

    fashion = DATASETS["fashion-mnist"]
    for f in shared_dir.iterdir():
        shutil.copy(f, tmp_path / f.name)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(StabgapError, match="is MNIST's file, not Fashion-MNIST's") as refused:
        fashion.load(tmp_path)
    # the way out of a study of both datasets: one variable each, no --data-dir for all
    assert "sets STABGAP_DATA and STABGAP_FASHION_MNIST and no --data-dir" in str(refused.value)
    assert all(
        "this is MNIST's file, not Fashion-MNIST's" in m for _, _, m in fashion.verify(tmp_path)
    )
    with pytest.raises(StabgapError, match="download Fashion-MNIST into another folder"):
        fashion.download(tmp_path, mirrors=())
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_verify_without_a_data_dir_says_which_folder_it_looked_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No path of the user's to check: the default folder is named as such, with the command
    that fills it; a variable's folder sends the user to the variable."""
    from stabgap.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["data", "verify"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "check the path" not in err
    assert err.endswith(
        f"MNIST is not in its default folder {tmp_path / 'cache/stabgap/mnist'}, which does "
        "not exist: fetch it with `stabgap data download`, or give its folder with --data-dir\n"
    )
    monkeypatch.setenv("STABGAP_DATA", str(tmp_path / "nowhere"))
    assert main(["data", "verify"]) == 2
    assert capsys.readouterr().err.endswith(
        f"MNIST folder {tmp_path / 'nowhere'} (from $STABGAP_DATA) does not exist: check that "
        f"variable, or fetch it with `stabgap data download`\n"
    )
